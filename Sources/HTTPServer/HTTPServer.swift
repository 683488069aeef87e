internal import CMicroHTTPD
import Foundation
import Synchronization

/// Settings of the transport. Defaults are safe for an internal service on a small machine.
public struct HTTPServerConfiguration: Sendable {
    /// Numeric IPv4 or IPv6 address to bind (`127.0.0.1`, `0.0.0.0`, `::`).
    public var host: String = "127.0.0.1"
    /// TCP port; 0 lets the kernel pick one (see `HTTPServer.port`).
    public var port: UInt16 = 8478
    /// Worker threads answering requests.
    public var threads: Int = 4
    /// Largest request body accepted, in bytes.
    public var maxBodyBytes: Int = 4 << 20
    /// Connections served at once; further ones are refused by the kernel backlog.
    public var connectionLimit: Int = 1000
    /// Seconds an idle or stalled connection is kept.
    public var connectionTimeoutSeconds: Int = 30
    /// Per-connection memory for headers and buffers (libmicrohttpd's pool), in bytes.
    public var connectionMemoryLimit: Int = 32 << 10
    /// PEM certificate and key; both set turns TLS on.
    public var tlsCertificatePEM: String?
    public var tlsKeyPEM: String?

    public init() {}
}

/// Errors starting the server.
public enum HTTPServerError: Error, CustomStringConvertible {
    case invalidHost(String)
    case startFailed(host: String, port: UInt16)

    public var description: String {
        switch self {
        case .invalidHost(let host): "'\(host)' is not a numeric IPv4 or IPv6 address"
        case .startFailed(let host, let port):
            "could not listen on \(host):\(port) (address in use, or not available on this machine)"
        }
    }
}

/// An HTTP/1.1 server on libmicrohttpd: epoll, an internal polling thread and a worker pool.
///
/// Bodies are accumulated up to `maxBodyBytes`; beyond that the rest is discarded as it arrives
/// and the handler's `bodyTooLarge` answers, so an oversized upload never sits in memory.
public final class HTTPServer: Sendable {
    private let daemon: Daemon
    private let context: ServerContext
    /// The port actually bound (differs from the configuration when it asked for 0).
    public let port: UInt16

    public init(configuration: HTTPServerConfiguration, handler: any HTTPHandler) throws(HTTPServerError) {
        let context = ServerContext(handler: handler, maxBodyBytes: configuration.maxBodyBytes)
        let unmanaged = Unmanaged.passRetained(context)
        let pointer = unmanaged.toOpaque()
        let started: OpaquePointer? = configuration.host.withCString { host in
            let cert = configuration.tlsCertificatePEM.map { strdup($0) } ?? nil
            let key = configuration.tlsKeyPEM.map { strdup($0) } ?? nil
            defer {
                free(cert)
                free(key)
            }
            return CMicroHTTPD_start(
                host, configuration.port, UInt32(max(1, configuration.threads)),
                UInt32(max(1, configuration.connectionLimit)), UInt32(max(0, configuration.connectionTimeoutSeconds)),
                max(8 << 10, configuration.connectionMemoryLimit),
                accessHandler, pointer, completedHandler, pointer, cert, key)
        }
        guard let started else {
            unmanaged.release()
            if !isNumericAddress(configuration.host) {
                throw .invalidHost(configuration.host)
            }
            throw .startFailed(host: configuration.host, port: configuration.port)
        }
        self.daemon = Daemon(pointer: started)
        self.context = context
        self.port = CMicroHTTPD_boundPort(started)
    }

    /// Requests that have started and not yet completed.
    public var requestsInFlight: Int { context.inFlight.withLock { $0 } }

    /// Stops accepting connections, lets in-flight requests finish for up to `deadline`,
    /// then closes every connection and joins the worker threads.
    public func shutdown(deadline: Duration = .seconds(10)) {
        daemon.quiesceAndStop {
            let clock = ContinuousClock()
            let end = clock.now.advanced(by: deadline)
            while context.inFlight.withLock({ $0 }) > 0, clock.now < end {
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
    }

    deinit {
        daemon.quiesceAndStop {}
        Unmanaged.passUnretained(context).release()
    }
}

private func isNumericAddress(_ host: String) -> Bool {
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
}

/// Owns the `MHD_Daemon` pointer; stopping happens once, under a lock.
private final class Daemon: Sendable {
    // Why Sendable is safe: the pointer is only touched inside `state`'s lock.
    private let state: Mutex<OpaquePointerBox?>

    init(pointer: OpaquePointer) {
        state = Mutex(OpaquePointerBox(pointer))
    }

    func quiesceAndStop(waitingFor drain: () -> Void) {
        state.withLock { box in
            guard let pointer = box?.pointer else { return }
            box = nil
            let listener = MHD_quiesce_daemon(pointer)
            drain()
            MHD_stop_daemon(pointer)
            if listener >= 0 { close(listener) }
        }
    }
}

/// Wraps a C pointer so it can live inside a `Mutex`.
private struct OpaquePointerBox: @unchecked Sendable {
    // Why @unchecked Sendable is safe: only `Daemon` holds one, and only inside its Mutex.
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// State shared by every callback of one server, reached through libmicrohttpd's `cls` pointer.
private final class ServerContext: Sendable {
    let handler: any HTTPHandler
    let maxBodyBytes: Int
    let inFlight = Mutex(0)

    init(handler: any HTTPHandler, maxBodyBytes: Int) {
        self.handler = handler
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Per-request state kept in libmicrohttpd's `con_cls` slot between the calls of one request.
/// libmicrohttpd serves one connection on one thread at a time, so it is never shared.
private final class RequestState {
    var request: HTTPRequest
    var bodyBytesSeen = 0
    var oversized = false

    init(request: HTTPRequest) {
        self.request = request
    }
}

@available(*, unavailable)
extension RequestState: Sendable {}

private let accessHandler: MHD_AccessHandlerCallback = {
    cls, connection, url, method, _, uploadData, uploadDataSize, requestSlot in
    guard let cls, let connection, let requestSlot, let uploadDataSize else { return .NO }
    let context = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()

    guard let slot = requestSlot.pointee else {
        // First call: headers only. Answering now would force `Connection: close`, so only
        // record the request, except when the declared body is already too large.
        let request = HTTPRequest(
            method: method.map { String(cString: $0) } ?? "",
            path: url.map { String(cString: $0) } ?? "/",
            query: collectQuery(connection),
            headers: collectHeaders(connection))
        let state = RequestState(request: request)
        requestSlot.pointee = Unmanaged.passRetained(state).toOpaque()
        context.inFlight.withLock { $0 += 1 }
        if let length = request.headers["Content-Length"].flatMap(Int.init), length > context.maxBodyBytes {
            state.oversized = true
            return queue(context.handler.bodyTooLarge(request, limit: context.maxBodyBytes), on: connection)
        }
        return .YES
    }

    let state = Unmanaged<RequestState>.fromOpaque(slot).takeUnretainedValue()
    let size = uploadDataSize.pointee
    if size > 0 {
        state.bodyBytesSeen += size
        if state.bodyBytesSeen > context.maxBodyBytes {
            state.oversized = true
            state.request.body = []
        } else if let uploadData {
            uploadData.withMemoryRebound(to: UInt8.self, capacity: size) { bytes in
                state.request.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: size))
            }
        }
        uploadDataSize.pointee = 0
        return .YES
    }

    let response =
        state.oversized
        ? context.handler.bodyTooLarge(state.request, limit: context.maxBodyBytes)
        : context.handler.handle(state.request)
    return queue(response, on: connection)
}

private let completedHandler: MHD_RequestCompletedCallback = { cls, _, requestSlot, _ in
    guard let cls, let requestSlot, let slot = requestSlot.pointee else { return }
    Unmanaged<RequestState>.fromOpaque(slot).release()
    requestSlot.pointee = nil
    Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue().inFlight.withLock { $0 -= 1 }
}

private func queue(_ response: HTTPResponse, on connection: OpaquePointer) -> MHD_Result {
    let created = response.body.withUnsafeBytes { bytes in
        MHD_create_response_from_buffer(bytes.count, UnsafeMutableRawPointer(mutating: bytes.baseAddress), .RESPMEM_MUST_COPY)
    }
    guard let created else { return .NO }
    defer { MHD_destroy_response(created) }
    for (name, value) in response.headers {
        _ = MHD_add_response_header(created, name, value)
    }
    return MHD_queue_response(connection, UInt32(response.status), created)
}

/// Collects values of one kind through `MHD_get_connection_values`' iterator.
private final class ValueCollector {
    var pairs: [(String, String?)] = []
}

private func collect(_ connection: OpaquePointer, kind: MHD_ValueKind) -> [(String, String?)] {
    let collector = ValueCollector()
    let pointer = Unmanaged.passUnretained(collector).toOpaque()
    _ = MHD_get_connection_values(
        connection, kind,
        { cls, _, key, value in
            guard let cls, let key else { return .YES }
            let collector = Unmanaged<ValueCollector>.fromOpaque(cls).takeUnretainedValue()
            collector.pairs.append((String(cString: key), value.map { String(cString: $0) }))
            return .YES
        }, pointer)
    return withExtendedLifetime(collector) { collector.pairs }
}

private func collectHeaders(_ connection: OpaquePointer) -> HTTPHeaders {
    HTTPHeaders(collect(connection, kind: .HEADER_KIND).map { (name: $0.0, value: $0.1 ?? "") })
}

private func collectQuery(_ connection: OpaquePointer) -> [(name: String, value: String?)] {
    collect(connection, kind: .GET_ARGUMENT_KIND).map { (name: $0.0, value: $0.1) }
}
