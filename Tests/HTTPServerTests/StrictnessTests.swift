import Foundation
import HTTPServer
import TestSupport
import Testing

/// Refuses uploads to `/protected` without `Authorization` before the body is read, like the
/// registry does for routes that need a token.
struct GatedEchoHandler: HTTPHandler {
    func handle(_ request: HTTPRequest) -> HTTPResponse { EchoHandler().handle(request) }
    func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse { EchoHandler().bodyTooLarge(request, limit: limit) }
    func admit(_ request: HTTPRequest) -> HTTPResponse? {
        request.path.hasPrefix("/protected") && request.headers["Authorization"] == nil ? HTTPResponse(status: 401) : nil
    }
}

private func startServer(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> HTTPServer {
    var configuration = HTTPServerConfiguration()
    configuration.port = 0
    configuration.threads = 2
    configuration.maxBodyBytes = 1 << 20
    configure(&configuration)
    return try HTTPServer(configuration: configuration, handler: GatedEchoHandler())
}

/// Sends raw bytes and returns everything the server answers until it closes the connection.
private func exchange(_ port: UInt16, _ raw: String) throws -> String {
    let client = try RawHTTPClient(port: port, timeoutSeconds: 5)
    try client.send(Array(raw.utf8))
    return String(decoding: client.readToEnd(), as: UTF8.self)
}

private func statusLines(_ text: String) -> [String] {
    text.components(separatedBy: "\r\n").filter { $0.hasPrefix("HTTP/1.") }
}

@Suite struct StrictnessTests {
    /// Each shape that lets two HTTP parsers disagree about a request is refused once, with the
    /// connection closed, and nothing hidden after it is served.
    @Test(arguments: [
        (
            "content-length and chunked",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            400
        ),
        ("two content-lengths", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\nhi", 400),
        ("repeated equal content-length", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", 400),
        ("bare LF", "GET /a HTTP/1.1\nHost: x\n\n", 400),
        ("bare LF after one header", "GET /a HTTP/1.1\r\nHost: x\nX-Test: y\r\n\r\n", 400),
        ("missing host", "GET /a HTTP/1.1\r\n\r\n", 400),
        ("two hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        ("NUL in a value", "GET /a HTTP/1.1\r\nHost: x\r\nX-Test: a\u{0}b\r\n\r\n", 400),
        ("control character in a value", "GET /a HTTP/1.1\r\nHost: x\r\nX-Test: a\u{1B}b\r\n\r\n", 400),
        ("obsolete line folding", "GET /a HTTP/1.1\r\nHost: x\r\nX-Test: a\r\n b\r\n\r\n", 400),
        ("unknown transfer coding", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc", 501),
        ("chunked not last", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
        ("percent-encoded NUL in the path", "DELETE /a/b%00c HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("percent-encoded NUL in the query", "GET /a?namespace=default%00x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("space in the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        // libmicrohttpd reads the query past a raw NUL; the recorded target stops at it.
        ("raw NUL before the query", "GET /a\u{0}?namespace=x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("raw NUL inside the path", "GET /a\u{0}b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("raw non-ASCII in the target", "GET /v1/é HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("a method that is not a token", "actor=admin /a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("a method with non-ASCII", "GÉT /a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("absolute form with a quote in the authority", "GET http://evil\"\\/a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("absolute form with a % that starts no escape in the authority", "GET http://exa%mple/a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("absolute form with two @ in the authority", "GET http://a@b@c/a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        // A proxy that maps `_` to `-` would frame these by the field this server ignores.
        (
            "transfer coding spelled with an underscore",
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            400
        ),
        ("content length spelled with an underscore", "POST /a HTTP/1.1\r\nHost: x\r\ncontent_length: 40\r\n\r\nhi", 400),
    ])
    func refusesSmugglingShapes(name: String, raw: String, status: Int) throws {
        let server = try startServer()
        let answer = try exchange(server.port, raw)
        let lines = statusLines(answer)
        #expect(lines.count == 1, "\(name): \(answer)")
        #expect(lines.first?.hasPrefix("HTTP/1.1 \(status)") == true, "\(name): \(answer)")
        #expect(answer.lowercased().contains("connection: close"), "\(name)")
        #expect(!answer.contains("/smuggled"), "\(name)")
    }

    /// Other field names with `_` are the application's business (only the framing fields
    /// spelled so are refused).
    @Test func otherUnderscoreNamesPass() throws {
        let server = try startServer()
        let answer = try exchange(server.port, "GET /a HTTP/1.1\r\nHost: x\r\nX_Custom_Field: 1\r\nConnection: close\r\n\r\n")
        #expect(statusLines(answer) == ["HTTP/1.1 200 OK"], "\(answer)")
    }

    /// libmicrohttpd 0.9.75 reads a body as chunked only for a first `Transfer-Encoding` field of
    /// exactly `chunked`; any other value a proxy could read as chunked is refused before the body,
    /// so the request neither hangs nor swallows what is pipelined after it.
    @Test(arguments: [
        "chunked ", "chunked\t", "Chunked ", "CHUNKED  ", "chunked, chunked", "gzip, chunked", "chunked;q=1", "chunked,", ",chunked",
        "chunked,,", "\"chunked\"", "chun\u{212A}ed", "chunked\r\nTransfer-Encoding: chunked", "gzip\r\nTransfer-Encoding: chunked",
        "chunked\r\nTransfer-Encoding: gzip", "", "gzip, ", "x y",
    ])
    func refusesATransferEncodingThatIsNotExactlyChunked(value: String) throws {
        let server = try startServer()
        let client = try RawHTTPClient(port: server.port, timeoutSeconds: 10)
        // The headers alone: the answer must come before any body byte is sent.
        try client.send(Array("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(value)\r\n\r\n".utf8))
        let response = try client.readResponse()
        #expect(response.status == 400, "\(value)")
        #expect(response.header("Connection")?.lowercased() == "close", "\(value)")
        // What follows (a body, a pipelined request) is never read as anything.
        try? client.send(Array("2\r\n{}\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let rest = String(decoding: client.readToEnd(), as: UTF8.self)
        #expect(statusLines(rest).isEmpty, "\(value): \(rest)")
    }

    /// Exactly `chunked`, in any ASCII case (as libmicrohttpd compares it), is read as chunked;
    /// a list of codings without chunked is one the server does not implement (501).
    @Test func acceptsChunkedInAnyCaseAndAnswersOtherCodings501() throws {
        let server = try startServer()
        for value in ["chunked", "Chunked", "CHUNKED"] {
            let answer = try exchange(
                server.port,
                "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(value)\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                    + "GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(answer.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "\(value): \(answer)")
            #expect(answer.contains("POST /a ? x=- body=5"), "\(value): \(answer)")
            #expect(answer.contains("GET /next"), "\(value): \(answer)")
        }
        for value in ["gzip", "gzip, deflate", "identity"] {
            let answer = try exchange(server.port, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(value)\r\n\r\n")
            #expect(statusLines(answer) == ["HTTP/1.1 501 Not Implemented"], "\(value): \(answer)")
        }
    }

    /// libmicrohttpd 0.9.75 answers a Content-Length it cannot parse itself, before any hook, and
    /// writes its status line twice; the request never reaches the handler and the connection closes.
    @Test(arguments: ["-1", "+2", "0x2", "2, 2"])
    func aMalformedContentLengthNeverReachesTheHandler(value: String) throws {
        let server = try startServer()
        let answer = try exchange(
            server.port, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \(value)\r\n\r\nhiGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(statusLines(answer).allSatisfy { $0.hasPrefix("HTTP/1.1 400") }, "\(answer)")
        #expect(!answer.contains("body="), "\(answer)")
    }

    @Test func acceptsTheAbsoluteForm() throws {
        let server = try startServer()
        let client = try RawHTTPClient(port: server.port)
        let response = try client.request("GET", "http://localhost:8080/v1/x%20y?a=1")
        #expect(response.status == 200)
        #expect(response.text.hasPrefix("GET /v1/x y ?a=1"))
        #expect(try client.request("GET", "http://localhost").text.hasPrefix("GET / ?"))
    }

    @Test func refusesAnUnauthenticatedUploadBeforeItsBody() throws {
        let server = try startServer()
        let client = try RawHTTPClient(port: server.port, timeoutSeconds: 5)
        // Only the headers: the answer comes without a single body byte sent.
        try client.send(Array("POST /protected HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".utf8))
        let response = try client.readResponse()
        #expect(response.status == 401)
        #expect(response.header("Connection")?.lowercased() == "close")
        #expect(client.isClosedByServer())
        #expect(server.bufferedBodyBytes == 0)
    }

    @Test func limitsBodiesBufferedAtOnce() throws {
        let server = try startServer {
            $0.maxBodyBytes = 64 << 10
            $0.requestBodyBudgetBytes = 100 << 10
        }
        // One upload holds 60 KiB of the 100 KiB budget while it is being sent...
        let first = try RawHTTPClient(port: server.port)
        try first.send(Array("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \(60 << 10)\r\n\r\nabc".utf8))
        Thread.sleep(forTimeInterval: 0.2)
        // ...so a second one of the same size does not fit: 503 with Retry-After, at once.
        let second = try RawHTTPClient(port: server.port, timeoutSeconds: 5)
        try second.send(Array("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \(60 << 10)\r\n\r\n".utf8))
        let refused = try second.readResponse()
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") == "1")
        // A small one fits, and once the first completes its share is given back.
        #expect(try RawHTTPClient(port: server.port).request("POST", "/a", body: Array(repeating: 1, count: 1000)).status == 200)
        try first.send([UInt8](repeating: 0x61, count: (60 << 10) - 3))
        #expect(try first.readResponse().status == 200)
        // The share is given back when libmicrohttpd reports the request complete, just after the answer.
        let deadline = Date().addingTimeInterval(5)
        while server.bufferedBodyBytes > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(server.bufferedBodyBytes == 0)
        #expect(try RawHTTPClient(port: server.port).request("POST", "/a", body: Array(repeating: 1, count: 60 << 10)).status == 200)
    }

    /// Slow headers and idle sockets from one address neither exhaust the server nor hold their
    /// slot past the header deadline; a second address keeps being answered throughout.
    @Test(.timeLimit(.minutes(1)))
    func slowAndIdleClientsDoNotStarveOthers() throws {
        let server = try startServer {
            $0.connectionLimit = 60
            $0.connectionLimitPerClient = 40
            $0.headerTimeoutSeconds = 2
            $0.connectionTimeoutSeconds = 30
        }
        var attackers: [RawHTTPClient] = []
        for index in 0..<40 {
            guard let client = try? RawHTTPClient(port: server.port, timeoutSeconds: 5) else { continue }
            if index % 2 == 0 { try? client.send(Array("GET /slow HTTP/1.1\r\nHost: x\r\n".utf8)) }
            attackers.append(client)
        }
        #expect(attackers.count == 40)
        // Accepted by the server's threads, not only by the kernel: a connection the kernel holds
        // in the listen backlog is not counted yet, and the next one could be accepted first.
        let deadline = Date().addingTimeInterval(5)
        while server.connections < attackers.count && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        // The attacker's connections beyond its per-client limit are answered 503 (not dropped silently).
        let over = try RawHTTPClient(port: server.port, timeoutSeconds: 5)
        let refused = try over.request("GET", "/x")
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") != nil)
        // Another client is served meanwhile, and the trickle does not extend the header deadline.
        let started = Date()
        var answered = 0
        while Date().timeIntervalSince(started) < 3.5 {
            for attacker in attackers.prefix(20) { try? attacker.send(Array("X-Trickle: 1\r\n".utf8)) }
            let other = try RawHTTPClient(port: server.port, source: "127.0.0.2", timeoutSeconds: 10)
            if try other.request("GET", "/healthz").status == 200 { answered += 1 }
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(answered >= 5)
        // Past the header deadline every attacker connection has been closed.
        #expect(attackers.prefix(10).allSatisfy { $0.isClosedByServer() })
        #expect(server.connections <= 5)
    }

    @Test(.timeLimit(.minutes(1)))
    func answersAFullServerWith503() throws {
        let server = try startServer {
            $0.connectionLimit = 10
            $0.connectionLimitPerClient = 0
            $0.headerTimeoutSeconds = 30
        }
        let holders = try (0..<10).map { _ in try RawHTTPClient(port: server.port) }
        Thread.sleep(forTimeInterval: 0.2)
        let late = try RawHTTPClient(port: server.port, timeoutSeconds: 5)
        let response = try late.request("GET", "/x")
        #expect(response.status == 503)
        #expect(response.header("Retry-After") == "1")
        #expect(late.isClosedByServer())
        #expect(holders.count == 10)
    }

    /// A client that stops reading a large response is disconnected at the write deadline, and
    /// the body is streamed from one shared buffer rather than copied per connection.
    @Test(.timeLimit(.minutes(1)))
    func disconnectsSlowReaders() throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.threads = 2
        configuration.writeTimeoutSeconds = 1
        configuration.connectionLimitPerClient = 0
        let body = [UInt8](repeating: 0x61, count: 8 << 20)
        let server = try HTTPServer(configuration: configuration, handler: FixedHandler(body: body))
        let readers = try (0..<20).map { _ in try RawHTTPClient(port: server.port, timeoutSeconds: 5, receiveBufferBytes: 4096) }
        for reader in readers { try reader.send(Array("GET /big HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) }
        Thread.sleep(forTimeInterval: 0.5)
        #expect(server.connections == 20)
        let deadline = Date().addingTimeInterval(10)
        while server.connections > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        #expect(server.connections == 0)
        // A reader that keeps up gets the whole body.
        let reader = try RawHTTPClient(port: server.port)
        #expect(try reader.request("GET", "/big").body.count == body.count)
    }

    @Test func answersHEADWithoutABody() throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        let server = try HTTPServer(configuration: configuration, handler: FixedHandler(body: Array(repeating: 0x61, count: 100_000)))
        let client = try RawHTTPClient(port: server.port, timeoutSeconds: 5)
        let head = try client.request("HEAD", "/big")
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "100000")
        // Nothing followed the headers: the next answer on the connection is the next request's.
        #expect(try client.request("GET", "/big").body.count == 100_000)
    }
}

/// Answers every request with the same large body (shared, as a render cache would).
struct FixedHandler: HTTPHandler {
    let body: [UInt8]
    func handle(_ request: HTTPRequest) -> HTTPResponse { HTTPResponse(status: 200, body: body) }
    func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse { HTTPResponse(status: 413) }
}
