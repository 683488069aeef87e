import Foundation
import HTTPServer
import Synchronization
import TestSupport
import Testing

/// `/slow` answers through a deferred response completed from another thread when `release`
/// is called; every other path answers at once.
final class DeferringHandler: HTTPHandler {
    let pending = Mutex<[DeferredResponse]>([])

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard request.path == "/slow" else { return HTTPResponse(status: 200, body: Array("ok".utf8)) }
        let deferred = DeferredResponse()
        pending.withLock { $0.append(deferred) }
        return .deferred(deferred)
    }

    func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse { HTTPResponse(status: 413) }

    var waiting: Int { pending.withLock { $0.count } }

    func release() {
        let all = pending.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for (index, deferred) in all.enumerated() {
            DispatchQueue.global().async { deferred.complete(HTTPResponse(status: 200, body: Array("late \(index)".utf8))) }
        }
    }
}

@Suite struct DeferredResponseTests {
    /// A server on an ephemeral port with two workers and a `DeferringHandler`.
    private func deferringServer() throws -> (DeferringHandler, HTTPServer) {
        let handler = DeferringHandler()
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.threads = 2
        return (handler, try HTTPServer(configuration: configuration, handler: handler))
    }

    @Test func theFirstCompletionWins() {
        let deferred = DeferredResponse()
        #expect(!deferred.isCompleted)
        #expect(deferred.complete(HTTPResponse(status: 200)))
        #expect(!deferred.complete(HTTPResponse(status: 500)))
        let seen = Mutex<Int?>(nil)
        deferred.whenComplete { response in seen.withLock { $0 = response.status } }
        #expect(seen.withLock { $0 } == 200)
    }

    @Test func suspendedRequestsHoldNoWorkerThread() throws {
        let (handler, server) = try deferringServer()
        // More waiting requests than worker threads.
        var slow: [RawHTTPClient] = []
        for _ in 0..<6 {
            let client = try RawHTTPClient(port: server.port)
            try client.send(Array("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            slow.append(client)
        }
        let deadline = Date().addingTimeInterval(10)
        while handler.waiting < 6, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(handler.waiting == 6)
        // The workers are free: other requests, on new and kept-alive connections, are answered.
        let fast = try RawHTTPClient(port: server.port)
        for _ in 0..<5 { #expect(try fast.request("GET", "/healthz").status == 200) }
        handler.release()
        for client in slow {
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.text.hasPrefix("late "))
            // The connection stays usable after a deferred answer.
            #expect(try client.request("GET", "/again").text == "ok")
        }
        server.shutdown(deadline: .seconds(2))
    }

    @Test func shutdownAnswersSuspendedRequests() throws {
        let (handler, server) = try deferringServer()
        let client = try RawHTTPClient(port: server.port)
        try client.send(Array("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        // Generous: the whole suite shares two cores with this server's workers.
        let deadline = Date().addingTimeInterval(60)
        while handler.waiting < 1, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        try #require(handler.waiting == 1)
        server.shutdown(deadline: .milliseconds(200))
        #expect(try client.readResponse().status == 503)
    }

    /// Once shutting down, an answer closes its connection: a client on a kept-alive connection
    /// cannot hold the shutdown until its deadline by sending one request after another.
    @Test func answersDuringShutdownCloseTheirConnection() throws {
        let (handler, server) = try deferringServer()
        let client = try RawHTTPClient(port: server.port)
        let other = try RawHTTPClient(port: server.port)
        #expect(try other.request("GET", "/first").status == 200)
        try client.send(Array("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let deadline = Date().addingTimeInterval(10)
        while handler.waiting < 1, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        let stopped = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            server.shutdown(deadline: .seconds(60))
            stopped.signal()
        }
        // The other kept-alive connection is answered until the shutdown has begun, then told
        // to close.
        var closed = false
        for _ in 0..<1000 where !closed && Date() < deadline {
            let response = try other.request("GET", "/again")
            closed = response.header("Connection")?.lowercased() == "close"
        }
        #expect(closed)
        #expect(other.isClosedByServer())
        handler.release()
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.header("Connection")?.lowercased() == "close")
        #expect(client.isClosedByServer())
        // Nothing else in flight: the shutdown ends long before its deadline.
        #expect(stopped.wait(timeout: .now() + 30) == .success)
    }
}
