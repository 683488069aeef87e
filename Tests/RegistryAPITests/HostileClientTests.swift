import Foundation
import HTTPServer
import RegistryAPI
import TestSupport
import Testing

private let hostileTokens: [(name: String, role: String, namespaces: String, token: String)] = [
    ("reader", "viewer", #"["*"]"#, "viewer-token-0123456789"),
    ("writer", "editor", #"["team-*"]"#, "editor-token-0123456789"),
]

private func send(_ port: UInt16, _ raw: String) throws -> (response: ClientResponse, closed: Bool) {
    let client = try RawHTTPClient(port: port, timeoutSeconds: 10)
    try client.send(Array(raw.utf8))
    let response = try client.readResponse()
    return (response, client.isClosedByServer())
}

/// The registry under the attacks of issue 9, scaled down (see scripts/bench for full size).
@Suite struct HostileClientTests {
    @Test func resolvesTheLimitSettings() throws {
        let configuration = try ServerSettings.resolve(
            arguments: ["--connection-limit-per-client", "0", "--header-timeout", "5"],
            environment: [
                "ENDPOINT_REGISTRY_CONNECTION_LIMIT_PER_CLIENT": "7", "ENDPOINT_REGISTRY_BODY_TIMEOUT": "20", "ENDPOINT_REGISTRY_WRITE_TIMEOUT": "30",
                "ENDPOINT_REGISTRY_REQUEST_BODY_BUDGET_BYTES": "\(32 << 20)", "ENDPOINT_REGISTRY_HEADER_TIMEOUT": "9",
            ])
        #expect(configuration.http.connectionLimitPerClient == 0 && configuration.http.headerTimeoutSeconds == 5)
        #expect(configuration.http.bodyTimeoutSeconds == 20 && configuration.http.writeTimeoutSeconds == 30)
        #expect(configuration.http.requestBodyBudgetBytes == 32 << 20)
        let defaults = try ServerSettings.resolve(arguments: [], environment: [:])
        #expect(defaults.http.connectionLimitPerClient == 100 && defaults.http.headerTimeoutSeconds == 10)
        #expect(defaults.http.requestBodyBudgetBytes == 64 << 20 && defaults.http.maxHeaderBytes == 8192)
        // A budget smaller than one body could never admit the largest body.
        #expect(throws: ConfigurationError.self) {
            _ = try ServerSettings.resolve(arguments: [], environment: ["ENDPOINT_REGISTRY_REQUEST_BODY_BUDGET_BYTES": "1048576"])
        }
        #expect(throws: ConfigurationError.self) {
            _ = try ServerSettings.resolve(arguments: [], environment: ["ENDPOINT_REGISTRY_HEADER_TIMEOUT": "0"])
        }
    }

    @Test func refusedFramingIsProblemJSONWithARequestID() throws {
        let server = try TestServer()
        for (raw, status, type) in [
            ("POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "malformed-request"),
            ("POST /v1/services HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported-transfer-coding"),
            ("GET /v1/services HTTP/1.1\r\nHost: x\r\nX-Evil: a\u{0}b\r\n\r\n", 400, "malformed-request"),
            ("GET /v1/services HTTP/1.1\r\n\r\n", 400, "malformed-request"),
        ] {
            let (response, closed) = try send(server.port, raw)
            #expect(response.status == status, "\(raw)")
            #expect(response.header("Content-Type") == "application/problem+json")
            #expect(response.header("X-Request-Id") != nil)
            #expect((response.json?["type"] as? String)?.hasSuffix(type) == true, "\(response.text)")
            #expect(response.json?["requestId"] as? String == response.header("X-Request-Id"))
            #expect(closed)
        }
    }

    /// The reviewer's request: a `Transfer-Encoding` a proxy reads as chunked and libmicrohttpd
    /// would not is refused at once (before its body), and the pipelined request is not served.
    @Test func aTransferEncodingNotExactlyChunkedIsRefusedBeforeItsBody() throws {
        let server = try TestServer()
        for value in ["chunked ", "Chunked\t", "gzip, chunked", "chunked, chunked"] {
            let client = try RawHTTPClient(port: server.port, timeoutSeconds: 10)
            try client.send(
                Array(
                    "POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: \(value)\r\n\r\n".utf8))
            let response = try client.readResponse()
            #expect(response.status == 400, "\(value)")
            #expect(response.header("Content-Type") == "application/problem+json")
            #expect(response.header("Connection")?.lowercased() == "close")
            #expect((response.json?["detail"] as? String)?.contains("Transfer-Encoding") == true, "\(response.text)")
            try? client.send(Array("2\r\n{}\r\n0\r\n\r\nGET /v1/leader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            #expect(client.readToEnd().isEmpty, "\(value)")
        }
        #expect(try server.client().request("GET", "/v1/services").json?["items"] as? [Any] != nil)
    }

    @Test func aPercentEncodedNULNeverShortensAPathOrQuery() throws {
        let server = try TestServer()
        let client = try server.client()
        for name in ["ab", "abc"] {
            #expect(try client.request("POST", "/v1/services", json: #"{"name":"\#(name)","ports":[{"port":80}]}"#).status == 201)
        }
        let (deleted, _) = try send(server.port, "DELETE /v1/services/default/ab%00c HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(deleted.status == 400)
        #expect(deleted.json?["detail"] as? String == "the request target contains a percent-encoded NUL (%00)")
        let (listed, _) = try send(server.port, "GET /v1/services?limit=5&namespace=default%00x HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(listed.status == 400)
        // In the query, the parameter is named.
        let errors = listed.json?["errors"] as? [[String: Any]]
        #expect(errors?.first?["field"] as? String == "namespace")
        #expect(listed.json?["detail"] as? String == "the query parameter \"namespace\" contains a percent-encoded NUL (%00)")
        // An unknown parameter's name, however long, is cut in the answer.
        let long = String(repeating: "q", count: 5_000)
        let unknown = try server.client().request("GET", "/v1/services?\(long)=1")
        #expect(unknown.status == 400)
        #expect((unknown.json?["detail"] as? String)?.utf8.count ?? .max < 400)
        #expect(((unknown.json?["errors"] as? [[String: Any]])?.first?["field"] as? String)?.hasSuffix("…") == true)
        #expect(try server.client().request("GET", "/v1/services/default/ab").status == 200)
        #expect(try server.client().request("GET", "/v1/services/default/abc").status == 200)
    }

    @Test func routesTheAbsoluteForm() throws {
        let server = try TestServer()
        let response = try server.client().request("GET", "http://127.0.0.1:\(server.port)/v1/services?namespace=default")
        #expect(response.status == 200)
        #expect(response.json?["items"] != nil)
    }

    @Test func answersHEADOnEveryGETRoute() throws {
        let server = try TestServer()
        let client = try server.client()
        #expect(
            try client.request("POST", "/v1/services", json: #"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"}]}"#).status == 201)
        for route in server.service.application.router.routes where route.method == "GET" {
            let path = route.template.replacingOccurrences(of: "{namespace}", with: "default").replacingOccurrences(of: "{name}", with: "web")
            let get = try client.request("GET", path)
            let head = try client.request("HEAD", path)
            #expect(head.status == get.status, "\(path)")
            #expect(head.header("Content-Type") == get.header("Content-Type"), "\(path)")
            if route.operationID != "getMetrics" {
                #expect(head.header("Content-Length") == get.header("Content-Length"), "\(path)")
            }
            #expect(head.header("X-Request-Id") != nil)
        }
        // No body followed any HEAD answer: the connection is still in step.
        #expect(try client.request("GET", "/healthz").json?["status"] as? String == "ok")
        let wrong = try client.request("DELETE", "/healthz")
        #expect(wrong.header("Allow") == "GET, HEAD")
    }

    @Test func tooLargeHeadersAre431ProblemJSON() throws {
        let server = try TestServer()
        let response = try server.client().request("GET", "/v1/services", headers: ["X-Big": String(repeating: "a", count: 10_000)])
        #expect(response.status == 431)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(response.header("X-Request-Id") != nil)
        #expect(response.json?["limit"] as? Int == 8192)
    }

    @Test func uploadsAreRefusedBeforeTheirBodyWithoutTheRight() throws {
        let path = try writeTokensFile(hostileTokens)
        let server = try TestServer { $0.tokensFile = path }
        for (headers, target, status) in [
            ("", "/v1/services", 401),
            ("Authorization: Bearer not-a-token-at-all-000\r\n", "/v1/services", 401),
            ("Authorization: Bearer viewer-token-0123456789\r\n", "/v1/services", 403),
            ("Authorization: Bearer editor-token-0123456789\r\n", "/v1/services/other/x", 403),
        ] {
            let method = target == "/v1/services" ? "POST" : "PUT"
            // Headers only: the answer comes although not one of the 4 MiB was sent.
            let (response, closed) = try send(
                server.port, "\(method) \(target) HTTP/1.1\r\nHost: x\r\n\(headers)Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n")
            #expect(response.status == status, "\(headers) \(target)")
            #expect(response.header("Content-Type") == "application/problem+json")
            #expect(closed)
        }
        #expect(server.service.server.bufferedBodyBytes == 0)
        // An allowed upload still goes through.
        let allowed = try server.client().request(
            "PUT", "/v1/services/team-a/x", headers: ["Authorization": "Bearer editor-token-0123456789"], json: #"{"ports":[{"port":80}]}"#)
        #expect(allowed.status == 201)
    }

    @Test(arguments: [
        "Bearer  ", "Bearer \u{A0}", "Bearer \u{A0}\u{A0}", "Bearer \t", "bearer", "Bearer", "Basic dmlld2VyOg==",
        "Bearer viewer-token-0123456789\u{A0}",
    ])
    func emptyAndOddTokensNeverAuthenticate(authorization: String) throws {
        // Even a file that held the empty string's digest could not be matched: such a file is refused.
        let path = try writeTokensFile(hostileTokens)
        let server = try TestServer { $0.tokensFile = path }
        let response = try server.client().request("GET", "/v1/services", headers: ["Authorization": authorization])
        #expect(response.status == 401)
        #expect(try server.client().request("GET", "/v1/services", headers: ["Authorization": "Bearer   viewer-token-0123456789"]).status == 200)
    }

    @Test(arguments: [
        ("sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "the empty string"),
        ("sha256: 01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b", "a lone newline"),
        ("token: short", "at least 16 characters"),
        ("token: \"sixteen chars with spaces\"", "visible ASCII"),
    ])
    func theTokensFileRefusesSecretsThatAreNone(entry: String, reason: String) throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "tokens-\(UUID().uuidString).yaml").path()
        try "tokens:\n- name: ci\n  role: admin\n  namespaces: [\"*\"]\n  \(entry)\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try TokenAuthenticator(path: path)
            Issue.record("the file was accepted")
        } catch {
            #expect(error.description.contains("tokens[0] (ci)"), "\(error)")
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    @Test func aFailedReloadKeepsTheTokensAndSaysSoInTheMetrics() throws {
        let path = try writeTokensFile(hostileTokens)
        let server = try TestServer { $0.tokensFile = path }
        let viewer = ["Authorization": "Bearer viewer-token-0123456789"]
        func metric(_ name: String) throws -> Double? {
            let text = try server.client().request("GET", "/metrics", headers: viewer).text
            return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        #expect(try metric("endpoint_registry_tokens_reload_success") == 1)
        let loaded = try #require(try metric("endpoint_registry_tokens_last_reload_success_timestamp_seconds"))
        #expect(abs(loaded - Date().timeIntervalSince1970) < 600)
        // A revocation saved together with a typo: nothing changes, and the metric says so.
        try "tokens:\n- name: reader\n  role: viewer\n  namespaces: [\"*\"]\n  token: [oops\n".write(toFile: path, atomically: true, encoding: .utf8)
        server.service.reloadTokens()
        #expect(try metric("endpoint_registry_tokens_reload_success") == 0)
        #expect(try metric("endpoint_registry_tokens_last_reload_success_timestamp_seconds") == loaded)
        _ = try writeTokensFile(hostileTokens)
    }
}

/// Attacks on the real process, with its memory measured.
@Suite(.serialized) struct HostileClientProcessTests {
    /// Resident memory of a process, from /proc/<pid>/status, in bytes.
    private func residentBytes(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// 150 connections that each declare a 4 MiB body without a token, and 60 with a token that
    /// send half of a 1 MiB body and stall: the first are refused before their body, the second
    /// are held to the body budget; the process stays under 200 MB and /healthz keeps answering.
    @Test(.timeLimit(.minutes(2)))
    func bodiesNeverOutgrowTheBudget() throws {
        let path = try writeTokensFile(hostileTokens)
        let server = try ServerProcess([
            "--tokens-file", path, "--durability", "normal", "--request-body-budget-bytes", "\(16 << 20)", "--connection-limit-per-client", "0",
            "--log-level", "notice",
        ])
        let ceiling = 200 << 20
        var unauthenticated: [RawHTTPClient] = []
        for _ in 0..<150 {
            let client = try RawHTTPClient(port: server.port, timeoutSeconds: 10)
            try client.send(Array("POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n".utf8))
            try? client.send([UInt8](repeating: 0x20, count: 64 << 10))
            unauthenticated.append(client)
        }
        #expect(unauthenticated.prefix(20).allSatisfy { (try? $0.readResponse().status) == 401 })
        var stalled: [RawHTTPClient] = []
        var refused = 0
        for _ in 0..<60 {
            let client = try RawHTTPClient(port: server.port, timeoutSeconds: 10)
            try client.send(
                Array(
                    "PUT /v1/services/team-a/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer editor-token-0123456789\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
                        .utf8))
            try? client.send([UInt8](repeating: 0x20, count: 512 << 10))
            stalled.append(client)
        }
        Thread.sleep(forTimeInterval: 1)
        for client in stalled.suffix(30) {
            if let response = try? client.readResponse(), response.status == 503 {
                refused += 1
                #expect(response.header("Retry-After") == "1")
            }
        }
        #expect(refused > 0, "the 16 MiB budget holds at most 16 of the 1 MiB bodies")
        let healthy = try RawHTTPClient(port: server.port, source: "127.0.0.2", timeoutSeconds: 10)
        #expect(try healthy.request("GET", "/healthz").status == 200)
        let resident = residentBytes(server.process.processIdentifier)
        #expect(resident > 0 && resident < ceiling, "resident \(resident) bytes")
    }

    /// 60 clients ask for the same 9 MB of manifests and never read them: the process holds the
    /// rendering once (streamed to each through its bounded buffer), not once per client, and
    /// disconnects them at the write deadline.
    @Test(.timeLimit(.minutes(2)))
    func clientsThatNeverReadShareOneCopy() throws {
        let server = try ServerProcess(["--durability", "normal", "--write-timeout", "3", "--connection-limit-per-client", "0"])
        let addresses = (0..<4000).map { #"{"ip":"10.\#($0 / 250).\#($0 % 250).1","ports":{"p":\#(1000 + $0 % 50)}}"# }
        for index in 0..<24 {
            let body =
                #"{"name":"big-\#(index)","ports":[{"name":"p","port":80}],"endpointsMode":"both","addresses":[\#(addresses.joined(separator: ","))]}"#
            let created = try RawHTTPClient(port: server.port).request("POST", "/v1/services", json: body)
            try #require(created.status == 201, "\(created.text.prefix(300))")
        }
        let manifests = try RawHTTPClient(port: server.port).request("GET", "/v1/manifests?format=yaml")
        #expect(manifests.status == 200)
        let size = manifests.body.count
        #expect(size > 8 << 20)
        let before = residentBytes(server.process.processIdentifier)
        let readers = try (0..<60).map { _ in try RawHTTPClient(port: server.port, timeoutSeconds: 10, receiveBufferBytes: 4096) }
        for reader in readers { try reader.send(Array("GET /v1/manifests?format=yaml HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) }
        Thread.sleep(forTimeInterval: 1.5)
        let during = residentBytes(server.process.processIdentifier)
        #expect(during - before < size + (16 << 20), "manifests of \(size) bytes; resident \(before) -> \(during)")
        #expect(try RawHTTPClient(port: server.port, source: "127.0.0.2").request("GET", "/healthz").status == 200)
        // Past the write deadline the non-readers are gone (reading ends before the whole body).
        Thread.sleep(forTimeInterval: 3)
        #expect(readers.prefix(5).allSatisfy { $0.readToEnd().count < size }, "\(size)")
    }

    /// What libmicrohttpd says about requests it refuses itself (an HTTP/2 preface, thousands of
    /// headers) goes through the log as one JSON line each, at `notice`, bounded.
    @Test func libraryMessagesAreLogLines() throws {
        let server = try ServerProcess(["--durability", "normal", "--log-format", "json"])
        let preface = try RawHTTPClient(port: server.port, timeoutSeconds: 5)
        try preface.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
        _ = preface.readToEnd()
        let crowded = try RawHTTPClient(port: server.port, timeoutSeconds: 5)
        try? crowded.send(Array(("GET /healthz HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-A: b\r\n", count: 2000) + "\r\n").utf8))
        _ = crowded.readToEnd()
        #expect(try RawHTTPClient(port: server.port).request("GET", "/healthz").status == 200)
        var library: [[String: Any]] = []
        #expect(
            eventually(5) {
                library = server.logText.split(separator: "\n").compactMap {
                    (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
                }.filter { $0["source"] as? String == "libmicrohttpd" }
                return library.count >= 2
            }, "\(server.logText)")
        for line in server.logText.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] != nil, "not JSON: \(line)")
        }
        #expect(library.allSatisfy { $0["level"] as? String == "notice" })
        #expect(library.allSatisfy { ($0["message"] as? String)?.utf8.count ?? 0 <= 520 })
    }

    @Test func logsEscapeWhatClientsSend() throws {
        let server = try ServerProcess(["--durability", "normal"])
        let client = try RawHTTPClient(port: server.port)
        _ = try client.request("GET", "/v1/x%0D%0A2026-01-01T00:00:00.000Z%20info%20GET%20/forged%20200%1B[31m\"q\"")
        _ = try client.request("GET", "/healthz", headers: ["X-Request-Id": "id\"with=quote"])
        Thread.sleep(forTimeInterval: 0.3)
        let log = server.logText
        #expect(!log.contains("\u{1B}"))
        #expect(!log.contains("\r"))
        #expect(!log.split(separator: "\n").contains { $0.contains("GET /forged") && !$0.contains("/v1/x") })
        #expect(log.contains("GET /v1/x%0D%0A2026-01-01T00:00:00.000Z%20info%20GET%20/forged%20200%1B[31m%22q%22 404"), "\(log)")
        #expect(log.contains(#"requestId="id\"with=quote""#), "\(log)")
    }
}
