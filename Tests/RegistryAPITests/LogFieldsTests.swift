import Foundation
import TestSupport
import Testing

/// JSON log lines carry typed fields a pipeline can filter on.
@Suite(.serialized) struct LogFieldsTests {
    @Test func requestLinesHaveTypedFields() throws {
        let server = try ServerProcess(["--log-format", "json"])
        let client = try RawHTTPClient(port: server.port)
        #expect(try client.request("GET", "/v1/services/default/missing", headers: ["User-Agent": "log-test/1"]).status == 404)
        let lines = stopped(server)
        let request = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /v1/services/default/missing") == true })
        #expect(request["status"] as? Int == 404)
        #expect(request["durationMs"] is Double || request["durationMs"] is Int)
        #expect(request["bytes"] as? Int ?? 0 > 0)
        #expect(request["method"] as? String == "GET")
        #expect(request["path"] as? String == "/v1/services/default/missing")
        #expect(request["route"] as? String == "/v1/services/{namespace}/{name}")
        #expect(request["remoteAddress"] as? String == "127.0.0.1")
        #expect(request["userAgent"] as? String == "log-test/1")
        #expect(request["actor"] as? String == "anonymous")
        #expect((request["requestId"] as? String)?.isEmpty == false)
    }

    /// The `path` field is written as README says, like the message: percent-encoded (bytes that
    /// are not visible ASCII, `"`, `%`, `\`), so a decoded `%` is never read as an escape.
    @Test func thePathFieldIsPercentEncoded() throws {
        let server = try ServerProcess(["--log-format", "json"])
        let client = try RawHTTPClient(port: server.port)
        #expect(try client.request("GET", "/a%2541").status == 404)
        #expect(try client.request("GET", "/b%22%C3%A9%20c%25").status == 404)
        let lines = stopped(server)
        let first = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /a") == true })
        #expect(first["path"] as? String == "/a%2541")
        #expect(first["message"] as? String == "GET /a%2541 404")
        let second = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /b") == true })
        #expect(second["path"] as? String == "/b%22%C3%A9%20c%25")
    }

    /// Every byte of the path sent is in the log and in a problem's `instance`: a byte that is
    /// not UTF-8 stays `%FF` (not U+FFFD's `%EF%BF%BD`), and a `%00` (refused) truncates neither.
    @Test func thePathKeepsEveryByteSent() throws {
        let server = try ServerProcess(["--log-format", "json"])
        let client = try RawHTTPClient(port: server.port)
        #expect(try client.request("GET", "/c%FFd/x").status == 404)
        let refused = try client.request("GET", "/v1/services/a%00b/x")
        #expect(refused.status == 400)
        #expect(refused.json?["instance"] as? String == "/v1/services/a%00b/x")
        let lines = stopped(server)
        let invalid = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /c") == true })
        #expect(invalid["path"] as? String == "/c%FFd/x")
        let nul = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /v1/services/a") == true })
        #expect(nul["path"] as? String == "/v1/services/a%00b/x")
        #expect(nul["status"] as? Int == 400)
    }

    /// A long path is written whole once per line, in the `path` field; the message shows its
    /// first 256 bytes and `…` (a 6,000-byte path made a line of twice its size).
    @Test func aLongPathIsWrittenOncePerLine() throws {
        let server = try ServerProcess(["--log-format", "json"])
        let client = try RawHTTPClient(port: server.port)
        let path = "/v1/services/" + String(repeating: "a", count: 6_000)
        #expect(try client.request("GET", path).status == 404)
        let escaped = "/v2/" + String(repeating: "x", count: 250) + "%20" + String(repeating: "b", count: 300)
        #expect(try client.request("GET", escaped).status == 404)
        let method = String(repeating: "M", count: 5_000)
        let refusedMethod = try RawHTTPClient(port: server.port).request(method, "/v1/services")
        let methodStatus = refusedMethod.status
        #expect((refusedMethod.json?["detail"] as? String)?.hasPrefix(String(repeating: "M", count: 32) + "… is not allowed here") == true)
        _ = stopped(server)
        let rawLine = try #require(server.logText.split(separator: "\n").first { $0.contains("GET /v1/services/aaa") })
        #expect(rawLine.utf8.count < 6_000 + 1_000)
        let lines = jsonLines(server)
        let long = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /v1/services/aaa") == true })
        #expect(long["path"] as? String == path)
        #expect(long["message"] as? String == "GET " + path.prefix(256) + "… 404")
        // Never cut inside an escape: `%20` at bytes 254–256 is left out of the message whole.
        let cut = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /v2/") == true })
        #expect(cut["path"] as? String == escaped)
        #expect(cut["message"] as? String == "GET /v2/" + String(repeating: "x", count: 250) + "… 404")
        let longMethod = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("MMM") == true })
        #expect(longMethod["message"] as? String == String(repeating: "M", count: 32) + "… /v1/services \(methodStatus)")
        #expect(longMethod["method"] as? String == method)
    }

    /// The logged path is a path: an absolute-form target's scheme and authority are left out,
    /// also when the target is refused (as in a problem's `instance`); an escaped `/`, `?` or
    /// `#` stays escaped, so that `/a%2Fb` is not logged as the other path `/a/b`.
    @Test func theLoggedPathIsThePathAsSent() throws {
        let server = try ServerProcess(["--log-format", "json"])
        let client = try RawHTTPClient(port: server.port)
        let refused = try client.request("GET", "http://example.com:80/v1/q%00r?x=1")
        #expect(refused.status == 400)
        #expect(refused.json?["instance"] as? String == "/v1/q%00r")
        // A refused target closes its connection.
        #expect(try RawHTTPClient(port: server.port).request("GET", "HTTPS://example.com/v1/s%2Ft%3Fu%23v%41").status == 400)
        let otherScheme = try RawHTTPClient(port: server.port).request("GET", "ftp://example.com/v1/w?x=1")
        #expect(otherScheme.status == 400)
        #expect(otherScheme.json?["instance"] as? String == "/v1/w")
        let lines = stopped(server)
        let absolute = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /v1/q") == true })
        #expect(absolute["path"] as? String == "/v1/q%00r")
        let escaped = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /v1/s") == true })
        #expect(escaped["path"] as? String == "/v1/s%2Ft%3Fu%23vA")
        let ftp = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("GET /v1/w") == true })
        #expect(ftp["path"] as? String == "/v1/w")
        #expect(!server.logText.contains("example.com"))
    }

    /// A header value with a NUL is refused (400), and logged whole: libmicrohttpd's value
    /// stops at the NUL, which would hide the rest of what the client sent.
    @Test func aHeaderValueWithANULIsLoggedWhole() throws {
        let server = try ServerProcess(["--log-format", "json"])
        let client = try RawHTTPClient(port: server.port)
        try client.send(Array("GET /v1/services HTTP/1.1\r\nHost: x\r\nUser-Agent: shown\u{0}hidden/1\r\n\r\n".utf8))
        #expect(try client.readResponse().status == 400)
        // A bare LF ends a line (refused too): the field after it is not taken into the value.
        let other = try RawHTTPClient(port: server.port)
        try other.send(Array("GET /v1/services/lf HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nUser-Agent: lf/1\nX-Next: 2\r\n\r\n".utf8))
        #expect(try other.readResponse().status == 400)
        _ = stopped(server)
        let line = try #require(jsonLines(server).first { ($0["message"] as? String)?.hasPrefix("GET /v1/services") == true })
        #expect(line["status"] as? Int == 400)
        #expect(line["userAgent"] as? String == "shown\u{0}hidden/1")
        let bareLF = try #require(jsonLines(server).first { ($0["message"] as? String)?.hasPrefix("GET /v1/services/lf") == true })
        #expect(bareLF["userAgent"] as? String == "lf/1")
    }

    /// Stops `server` (SIGTERM, then waits for it to exit) and returns its JSON log lines.
    private func stopped(_ server: ServerProcess) -> [[String: Any]] {
        server.signal(SIGTERM)
        server.process.waitUntilExit()
        return jsonLines(server)
    }

    /// The server's JSON log lines, parsed.
    private func jsonLines(_ server: ServerProcess) -> [[String: Any]] {
        server.logText.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }
}
