import Foundation
import HTTPServer
import Synchronization
import TestSupport
import Testing

/// `/stream` answers with a `ResponseStream` the test writes to; every other path answers at once.
final class StreamingHandler: HTTPHandler {
    let streams = Mutex<[ResponseStream]>([])
    let capacity: Int

    init(capacity: Int = 1 << 20) { self.capacity = capacity }

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard request.path == "/stream" else { return HTTPResponse(status: 200, body: Array("ok".utf8)) }
        let stream = ResponseStream(capacity: capacity)
        streams.withLock { $0.append(stream) }
        return .stream(headers: HTTPHeaders([("Content-Type", "application/x-test")]), stream)
    }

    func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse { HTTPResponse(status: 413) }

    func waitForStreams(_ count: Int) -> [ResponseStream] {
        let deadline = Date().addingTimeInterval(10)
        while streams.withLock({ $0.count }) < count, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        return streams.withLock { $0 }
    }
}

@Suite struct ResponseStreamTests {
    private func server(_ handler: StreamingHandler, threads: Int = 1) throws -> HTTPServer {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.threads = threads
        return try HTTPServer(configuration: configuration, handler: handler)
    }

    private func open(_ port: UInt16) throws -> RawHTTPClient {
        let client = try RawHTTPClient(port: port, timeoutSeconds: 10)
        try client.send(Array("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        return client
    }

    @Test func waitingStreamsHoldNoWorkerThreadAndDeliverEachWrite() throws {
        let handler = StreamingHandler()
        let server = try server(handler, threads: 1)
        // More open streams than worker threads, all waiting for bytes.
        let clients = try (0..<4).map { _ in try open(server.port) }
        let streams = handler.waitForStreams(4)
        #expect(streams.count == 4)
        for client in clients {
            let head = try client.readHead()
            #expect(head.status == 200 && head.header("Transfer-Encoding")?.lowercased() == "chunked")
        }
        // The one worker still answers other requests.
        let other = try RawHTTPClient(port: server.port)
        #expect(try other.request("GET", "/other").text == "ok")
        // Writes from another thread reach each client, in order.
        for round in 0..<3 {
            for (index, stream) in streams.enumerated() {
                DispatchQueue.global().async { #expect(stream.write(Array("\(index):\(round)\n".utf8)) == .written) }
            }
            for (index, client) in clients.enumerated() {
                #expect(try client.readChunk().map { String(decoding: $0, as: UTF8.self) } == "\(index):\(round)\n")
            }
        }
        // finish() ends the body with the terminating chunk; the connection stays usable.
        streams[0].finish(with: Array("bye\n".utf8))
        #expect(try clients[0].readChunk().map { String(decoding: $0, as: UTF8.self) } == "bye\n")
        #expect(try clients[0].readChunk() == nil)
        #expect(try clients[0].request("GET", "/again").text == "ok")
        #expect(streams[0].write([1]) == .closed)
    }

    @Test func aFullBufferRefusesWritesAndAClosedClientEndsTheStream() throws {
        let handler = StreamingHandler(capacity: 8)
        let server = try server(handler)
        var client: RawHTTPClient? = try open(server.port)
        let stream = try #require(handler.waitForStreams(1).first)
        let closed = Mutex(false)
        stream.onClose { closed.withLock { $0 = true } }
        // A write larger than the capacity is taken when nothing waits.
        #expect(stream.write(Array(repeating: 65, count: 8)) == .written)
        #expect(stream.write(Array(repeating: 66, count: 1 << 20), force: true) == .written)
        _ = try client?.readHead()
        client = nil
        // The transport notices the client is gone at its next look at the connection.
        let deadline = Date().addingTimeInterval(10)
        while !closed.withLock({ $0 }), Date() < deadline {
            stream.probe()
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(closed.withLock { $0 })
        #expect(stream.write([1]) == .closed)
        let refusing = ResponseStream(capacity: 4)
        #expect(refusing.write([1, 2, 3]) == .written)
        #expect(refusing.write([4, 5]) == .full)
        #expect(refusing.write([4]) == .written)
    }

    @Test func shutdownEndsOpenStreams() throws {
        let handler = StreamingHandler()
        let server = try server(handler, threads: 2)
        let clients = try (0..<3).map { _ in try open(server.port) }
        #expect(handler.waitForStreams(3).count == 3)
        for client in clients { #expect(try client.readHead().status == 200) }
        server.shutdown(deadline: .seconds(5))
        for client in clients { #expect(try client.readChunk() == nil) }
    }
}
