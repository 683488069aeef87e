import Foundation
import HTTPServer
import TestSupport
import Testing

/// Echoes what the transport delivered: method, path, query, a header and the body length.
struct EchoHandler: HTTPHandler {
    func handle(_ request: HTTPRequest) -> HTTPResponse {
        let query = request.query.map { "\($0.name)=\($0.value ?? "<nil>")" }.joined(separator: "&")
        let text = "\(request.method) \(request.path) ?\(query) x=\(request.headers["x-test"] ?? "-") body=\(request.body.count)"
        var response = HTTPResponse(status: 200, body: Array(text.utf8))
        response.headers.add("Content-Type", "text/plain")
        return response
    }

    func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse {
        HTTPResponse(status: 413, body: Array("over \(limit)".utf8))
    }
}

func startEchoServer(maxBodyBytes: Int = 1024) throws -> HTTPServer {
    var configuration = HTTPServerConfiguration()
    configuration.port = 0
    configuration.threads = 2
    configuration.maxBodyBytes = maxBodyBytes
    return try HTTPServer(configuration: configuration, handler: EchoHandler())
}

@Suite struct HTTPServerTests {
    @Test func bindsAnEphemeralPortAndDeliversRequests() throws {
        let server = try startEchoServer()
        #expect(server.port != 0)
        let client = try RawHTTPClient(port: server.port)
        let response = try client.request("POST", "/a/b?x=1&flag&y=%20z", headers: ["X-Test": "yes"], body: Array("hello".utf8))
        #expect(response.status == 200)
        #expect(response.text == "POST /a/b ?x=1&flag=<nil>&y= z x=yes body=5")
    }

    @Test func keepsConnectionsAliveAcrossRequests() throws {
        let server = try startEchoServer()
        let client = try RawHTTPClient(port: server.port)
        for index in 0..<20 {
            let response = try client.request("GET", "/n/\(index)")
            #expect(response.status == 200)
            #expect(response.header("Connection")?.lowercased() != "close")
        }
    }

    @Test func accumulatesBodiesArrivingInPieces() throws {
        let server = try startEchoServer(maxBodyBytes: 100_000)
        let client = try RawHTTPClient(port: server.port)
        let body = [UInt8](repeating: UInt8(ascii: "a"), count: 50_000)
        try client.send(Array("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8))
        for chunk in stride(from: 0, to: body.count, by: 7_000) {
            try client.send(Array(body[chunk..<min(chunk + 7_000, body.count)]))
            Thread.sleep(forTimeInterval: 0.005)
        }
        let response = try client.readResponse()
        #expect(response.text.hasSuffix("body=50000"))
    }

    @Test func rejectsADeclaredOversizedBodyBeforeReadingIt() throws {
        let server = try startEchoServer(maxBodyBytes: 1024)
        let client = try RawHTTPClient(port: server.port)
        try client.send(Array("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".utf8))
        let response = try client.readResponse()
        #expect(response.status == 413)
        #expect(response.text == "over 1024")
    }

    @Test func rejectsAChunkedBodyThatGrowsTooLarge() throws {
        let server = try startEchoServer(maxBodyBytes: 1024)
        let client = try RawHTTPClient(port: server.port)
        var request = Array("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        for _ in 0..<4 { request += Array("400\r\n".utf8) + [UInt8](repeating: 0x41, count: 1024) + Array("\r\n".utf8) }
        request += Array("0\r\n\r\n".utf8)
        try client.send(request)
        let response = try client.readResponse()
        #expect(response.status == 413)
    }

    @Test func servesManyClientsConcurrently() async throws {
        let server = try startEchoServer()
        let port = server.port
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<16 {
                group.addTask {
                    let client = try RawHTTPClient(port: port)
                    var ok = 0
                    for round in 0..<25 where try client.request("GET", "/c/\(index)/\(round)").status == 200 { ok += 1 }
                    return ok
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(statuses == 400)
    }

    @Test func refusesAnAddressThatIsNotNumeric() {
        var configuration = HTTPServerConfiguration()
        configuration.host = "localhost"
        #expect(throws: HTTPServerError.self) { _ = try HTTPServer(configuration: configuration, handler: EchoHandler()) }
    }

    @Test func shutsDownCleanly() throws {
        let server = try startEchoServer()
        let port = server.port
        server.shutdown(deadline: .seconds(1))
        #expect(throws: (any Error).self) { _ = try RawHTTPClient(port: port).request("GET", "/") }
    }
}
