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
    /// Connections served at once; a connection beyond it is answered 503 and closed (up to a
    /// reserve of `connectionReserve`, beyond which libmicrohttpd stops accepting until a slot frees).
    public var connectionLimit: Int = 1000
    /// Connections one client address may have open; beyond it, 503 and close. 0: no limit.
    public var connectionLimitPerClient: Int = 100
    /// Seconds an idle or stalled connection is kept (restarts on every byte received or sent);
    /// also the most a kept-alive connection waits for its next request line, bytes or not.
    public var connectionTimeoutSeconds: Int = 30
    /// Seconds from the accept (on a kept-alive connection, from the request line) to a complete
    /// header section; not extended by trickling bytes.
    public var headerTimeoutSeconds: Int = 10
    /// Seconds to receive a whole request body, from the end of the header section.
    public var bodyTimeoutSeconds: Int = 60
    /// Seconds to send a whole response; a client that reads slower is disconnected.
    public var writeTimeoutSeconds: Int = 60
    /// Per-connection memory for headers and buffers (libmicrohttpd's pool), in bytes. The
    /// request line and headers may use a quarter of it (`maxHeaderBytes`).
    public var connectionMemoryLimit: Int = 32 << 10
    /// Request-body bytes buffered across all connections at once; a body that does not fit
    /// is answered 503 with `Retry-After`.
    public var requestBodyBudgetBytes: Int = 64 << 20
    /// PEM certificate and key; both set turns TLS on.
    public var tlsCertificatePEM: String?
    public var tlsKeyPEM: String?

    public init() {}

    /// Largest request line plus header section accepted (431 beyond).
    public var maxHeaderBytes: Int { max(8 << 10, connectionMemoryLimit) / 4 }

    /// Connections over `connectionLimit` that are still accepted to be answered 503.
    var connectionReserve: Int { max(16, connectionLimit / 10) }
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
/// Every request's line and headers are checked first (`RequestFraming`, `HeaderSection`);
/// refused ones are answered through the handler's `reject` and the connection is closed. A
/// request that announces a body is shown to the handler's `admit` before any body byte is read,
/// and its body must fit the global `BodyBudget`. Bodies are accumulated up to `maxBodyBytes`;
/// beyond that the rest is discarded as it arrives and the handler's `bodyTooLarge` answers, so
/// an oversized upload never sits in memory. Connection admission and the header, body and write
/// deadlines are kept by `ConnectionTracker`.
public final class HTTPServer: Sendable {
    private let daemon: Daemon
    private let context: ServerContext
    /// The port actually bound (differs from the configuration when it asked for 0).
    public let port: UInt16

    public init(configuration: HTTPServerConfiguration, handler: any HTTPHandler) throws(HTTPServerError) {
        let tracker = ConnectionTracker(
            limits: ConnectionTracker.Limits(
                connections: max(1, configuration.connectionLimit), perClient: max(0, configuration.connectionLimitPerClient),
                idleTimeout: .seconds(max(1, configuration.connectionTimeoutSeconds)),
                headerTimeout: .seconds(max(1, configuration.headerTimeoutSeconds)), bodyTimeout: .seconds(max(1, configuration.bodyTimeoutSeconds)),
                writeTimeout: .seconds(max(1, configuration.writeTimeoutSeconds))))
        let context = ServerContext(
            handler: handler, maxBodyBytes: configuration.maxBodyBytes, maxHeaderBytes: configuration.maxHeaderBytes, tracker: tracker,
            budget: BodyBudget(limit: max(configuration.maxBodyBytes, configuration.requestBodyBudgetBytes)))
        let unmanaged = Unmanaged.passRetained(context)
        let pointer = unmanaged.toOpaque()
        context.messages.slot.pointee.context = pointer
        let perClient = max(0, configuration.connectionLimitPerClient)
        let started: OpaquePointer? = configuration.host.withCString { host in
            let cert = configuration.tlsCertificatePEM.map { strdup($0) } ?? nil
            let key = configuration.tlsKeyPEM.map { strdup($0) } ?? nil
            defer {
                free(cert)
                free(key)
            }
            var settings = CMicroHTTPD_Settings(
                host: host, port: configuration.port, threadPoolSize: UInt32(max(1, configuration.threads)),
                connectionLimit: UInt32(max(1, configuration.connectionLimit) + configuration.connectionReserve),
                perAddressConnectionLimit: UInt32(perClient == 0 ? 0 : perClient + max(8, perClient / 4)),
                connectionTimeoutSeconds: UInt32(max(0, configuration.connectionTimeoutSeconds)),
                connectionMemoryLimit: max(8 << 10, configuration.connectionMemoryLimit),
                handler: accessHandler, completed: completedHandler, notifyConnection: connectionNotifier, uriLog: targetRecorder,
                context: pointer, logger: UnsafePointer(context.messages.slot), tlsCertificatePEM: UnsafePointer(cert),
                tlsKeyPEM: UnsafePointer(key))
            return CMicroHTTPD_start(&settings)
        }
        guard let started else {
            tracker.stop()
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
    public var requestsInFlight: Int { context.inFlight.load(ordering: .relaxed) }

    /// Open connections.
    public var connections: Int { context.tracker.count }

    /// Request-body bytes currently reserved from the budget.
    public var bufferedBodyBytes: Int { context.budget.inUse }

    /// Stops accepting connections, lets in-flight requests finish for up to `deadline`,
    /// then closes every connection and joins the worker threads.
    public func shutdown(deadline: Duration = .seconds(10)) {
        // From now on every answer closes its connection: a client on a kept-alive connection
        // would otherwise go on sending requests, each one in flight, until the deadline.
        context.draining.store(true, ordering: .relaxed)
        daemon.quiesceAndStop {
            context.finishStreams()
            let clock = ContinuousClock()
            let end = clock.now.advanced(by: deadline)
            while context.inFlight.load(ordering: .relaxed) > 0, clock.now < end {
                Thread.sleep(forTimeInterval: 0.01)
            }
            context.resumeAllSuspended()
        }
        context.tracker.stop()
    }

    deinit {
        daemon.quiesceAndStop {
            context.finishStreams()
            context.resumeAllSuspended()
        }
        context.tracker.stop()
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
    // Why @unchecked Sendable is safe: the pointer is only used inside a Mutex: `Daemon`'s, or a
    // `SuspendedConnection`'s for `MHD_resume_connection`, which libmicrohttpd allows from any
    // thread ("It is safe to resume a suspended connection at any time").
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// State shared by every callback of one server, reached through libmicrohttpd's `cls` pointer.
private final class ServerContext: Sendable {
    let handler: any HTTPHandler
    let maxBodyBytes: Int
    let maxHeaderBytes: Int
    let tracker: ConnectionTracker
    let budget: BodyBudget
    /// Where libmicrohttpd's messages go (to `handler.libraryMessage`).
    let messages = MessageLogger()
    /// Requests being answered (a graceful stop waits for none); an atomic, not a lock: every
    /// request changes it twice, from every worker thread.
    let inFlight = Atomic<Int>(0)
    /// Set at shutdown: answers carry `Connection: close`.
    let draining = Atomic<Bool>(false)
    /// Connections waiting for a deferred response; nil once stopping (no more suspensions).
    let suspended = Mutex<[ObjectIdentifier: SuspendedConnection]?>([:])
    /// Streamed responses being sent; nil once stopping (a new one is finished at once).
    let streams = Mutex<[ObjectIdentifier: ResponseStream]?>([:])

    func register(_ stream: ResponseStream) {
        let registered = streams.withLock { table -> Bool in
            guard table != nil else { return false }
            table?[ObjectIdentifier(stream)] = stream
            return true
        }
        if !registered { stream.finish() }
    }

    func unregister(_ stream: ResponseStream) {
        streams.withLock { _ = $0?.removeValue(forKey: ObjectIdentifier(stream)) }
    }

    /// Ends every streamed response after what it has buffered (at shutdown; libmicrohttpd must
    /// not stop with a connection suspended waiting for stream bytes) and refuses new ones.
    func finishStreams() {
        let open = streams.withLock { table -> [ResponseStream] in
            defer { table = nil }
            return Array((table ?? [:]).values)
        }
        for stream in open { stream.finish() }
        guard !open.isEmpty else { return }
        // A finished stream's connection is resumed at once; wait until libmicrohttpd has taken
        // every one up again (it may not stop with one still suspended).
        let end = ContinuousClock.now.advanced(by: .seconds(2))
        while open.contains(where: \.isSuspended), ContinuousClock.now < end { Thread.sleep(forTimeInterval: 0.005) }
    }

    static let unavailable = HTTPResponse(
        status: 503, headers: HTTPHeaders([("Content-Type", "application/problem+json"), ("Connection", "close")]),
        body: Array(#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"the server is shutting down"}"#.utf8))

    /// libmicrohttpd must not stop with suspended connections: from now on deferred responses
    /// are answered 503 at once, and the waiting ones get 503 and a moment to be sent.
    func resumeAllSuspended() {
        let waiting = suspended.withLock { table -> [SuspendedConnection] in
            defer { table = nil }
            return Array((table ?? [:]).values)
        }
        for connection in waiting { _ = connection.resume(with: ServerContext.unavailable) }
        guard !waiting.isEmpty else { return }
        // Every resume called (here or by the thread that completed the response) has returned:
        // libmicrohttpd must not stop with a connection still suspended, nor while a resume
        // still signals the daemon. Not bounded: the call only takes a lock and writes a byte.
        while waiting.contains(where: { !$0.isToldToResume }) { Thread.sleep(forTimeInterval: 0.001) }
        // Until each 503 has been written (libmicrohttpd reports the request completed), for
        // at most 5 s: stopping the daemon closes a connection whose answer is still queued,
        // and on a starved machine (a test suite on two cores) the worker can take a second.
        let end = ContinuousClock.now.advanced(by: .seconds(5))
        while waiting.contains(where: { !$0.isCompleted }), ContinuousClock.now < end { Thread.sleep(forTimeInterval: 0.005) }
    }

    init(handler: any HTTPHandler, maxBodyBytes: Int, maxHeaderBytes: Int, tracker: ConnectionTracker, budget: BodyBudget) {
        self.handler = handler
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.tracker = tracker
        self.budget = budget
    }
}

/// The `CMicroHTTPD_Logger` libmicrohttpd's messages are handed to (`messageRelay`, with the
/// server's context), in memory of its own that lives as long as the `ServerContext` owning it,
/// which outlives the daemon.
final class MessageLogger: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `slot` is written once, before the daemon starts (its
    // context), and only read afterwards, by libmicrohttpd's threads through the shim.
    let slot: UnsafeMutablePointer<CMicroHTTPD_Logger>

    init() {
        slot = .allocate(capacity: 1)
        slot.initialize(to: CMicroHTTPD_Logger(handler: messageRelay, context: nil))
    }

    deinit {
        slot.deinitialize(count: 1)
        slot.deallocate()
    }
}

/// Hands one message of libmicrohttpd (formatted by the shim, at most 511 bytes) to the handler,
/// without its line ending; `…` marks a message that was cut.
private let messageRelay: CMicroHTTPD_MessageHandler = { cls, message, length, truncated in
    guard let cls, let message else { return }
    let context = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()
    var bytes = Array(UnsafeRawBufferPointer(start: message, count: length))
    while let last = bytes.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { bytes.removeLast() }
    guard !bytes.isEmpty else { return }
    context.handler.libraryMessage(String(decoding: bytes, as: UTF8.self) + (truncated != 0 ? "…" : ""))
}

/// A connection suspended until its deferred response arrives (from any thread).
private final class SuspendedConnection: Sendable {
    private let connection: OpaquePointerBox
    private let state = Mutex<(resumed: Bool, response: HTTPResponse?)>((false, nil))
    /// Set once `MHD_resume_connection` has returned (see `resume(with:)`).
    private let told = Atomic<Bool>(false)

    init(_ connection: OpaquePointer) {
        self.connection = OpaquePointerBox(connection)
    }

    /// Resumes the connection once, with `response` to send; false if already resumed.
    ///
    /// libmicrohttpd is told after the lock is released: it wakes the connection's worker,
    /// which at once takes the response (`take()`, the same lock) and would otherwise wait for
    /// this thread to leave `MHD_resume_connection`. The flag set under the lock keeps the call
    /// to one; the connection stays suspended (and its pointer valid) until that call, and a
    /// stopping server waits until it has returned (`isToldToResume`) before it stops the daemon.
    func resume(with response: HTTPResponse) -> Bool {
        let first = state.withLock { state in
            guard !state.resumed else { return false }
            state.resumed = true
            state.response = response
            return true
        }
        if first {
            MHD_resume_connection(connection.pointer)
            told.store(true, ordering: .releasing)
        }
        return first
    }

    /// Whether `MHD_resume_connection` was called and has returned (it does not block for long:
    /// it takes libmicrohttpd's lock and wakes the daemon).
    var isToldToResume: Bool { told.load(ordering: .acquiring) }

    /// The response to send, once resumed.
    func take() -> HTTPResponse? {
        state.withLock { state in
            defer { state.response = nil }
            return state.response
        }
    }

    /// Set by the request's completion (`completedHandler`): its answer was written, or the
    /// connection ended first.
    private let completed = Atomic<Bool>(false)

    func markCompleted() { completed.store(true, ordering: .releasing) }

    /// Resumed, and the request completed since.
    var isCompleted: Bool { isToldToResume && completed.load(ordering: .acquiring) }
}

/// Per-request state kept in libmicrohttpd's `con_cls` slot between the calls of one request,
/// created when the request line arrives (`targetRecorder`). libmicrohttpd serves one
/// connection on one thread at a time, so it is never shared.
private final class RequestState {
    /// The request target exactly as received.
    let rawTarget: [UInt8]
    var request = HTTPRequest(method: "", path: "/")
    /// Set by the first access-handler call (headers complete).
    var started = false
    var counted = false
    var bodyBytesSeen = 0
    var oversized = false
    /// Body bytes taken from the budget, given back when the request completes.
    var reserved = 0
    var overBudget = false
    /// Set while the connection waits for a deferred response.
    var suspension: SuspendedConnection?
    /// The suspension the deferred response came through, told when the request completes.
    var resumedFrom: SuspendedConnection?

    init(rawTarget: [UInt8]) {
        self.rawTarget = rawTarget
    }
}

@available(*, unavailable)
extension RequestState: Sendable {}

/// Records the raw target of each request (libmicrohttpd's URI log callback) and creates the
/// request's state.
private let targetRecorder: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?) -> UnsafeMutableRawPointer? = {
    _, uri, connection in
    let raw = uri.map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) } ?? []
    if let connection { trackedConnection(connection)?.requestLineReceived() }
    return Unmanaged.passRetained(RequestState(rawTarget: raw)).toOpaque()
}

private let connectionNotifier: MHD_NotifyConnectionCallback = { cls, connection, socketContext, event in
    guard let cls, let connection, let socketContext else { return }
    let context = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()
    switch event {
    case .CONNECTION_NOTIFY_STARTED:
        var address = [CChar](repeating: 0, count: 64)
        CMicroHTTPD_clientAddress(connection, &address, address.count)
        let tracked = context.tracker.opened(
            socket: CMicroHTTPD_socket(connection), address: String(decoding: address.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        )
        socketContext.pointee = Unmanaged.passRetained(tracked).toOpaque()
    default:
        guard let slot = socketContext.pointee else { return }
        let tracked = Unmanaged<TrackedConnection>.fromOpaque(slot)
        context.tracker.closed(tracked.takeUnretainedValue())
        tracked.release()
        socketContext.pointee = nil
    }
}

private func trackedConnection(_ connection: OpaquePointer) -> TrackedConnection? {
    CMicroHTTPD_socketContext(connection).map { Unmanaged<TrackedConnection>.fromOpaque($0).takeUnretainedValue() }
}

private let accessHandler: MHD_AccessHandlerCallback = {
    cls, connection, url, method, version, uploadData, uploadDataSize, requestSlot in
    guard let cls, let connection, let requestSlot, let uploadDataSize else { return .NO }
    let context = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()
    if requestSlot.pointee == nil {
        requestSlot.pointee = Unmanaged.passRetained(RequestState(rawTarget: [])).toOpaque()
    }
    guard let slot = requestSlot.pointee else { return .NO }
    let state = Unmanaged<RequestState>.fromOpaque(slot).takeUnretainedValue()
    let tracked = trackedConnection(connection)

    guard state.started else {
        // First call: request line and headers only. Answering now closes the connection, so
        // only refusals answer here; everything else waits for the final call.
        state.started = true
        state.counted = true
        context.inFlight.add(1, ordering: .relaxed)
        return intake(state, connection: connection, url: url, method: method, version: version, context: context, tracked: tracked)
    }

    let size = uploadDataSize.pointee
    if size > 0 {
        state.bodyBytesSeen += size
        if state.bodyBytesSeen > context.maxBodyBytes {
            state.oversized = true
            state.request.body = []
        } else if !state.overBudget, let uploadData {
            // A chunked body's size is unknown up front: take budget as it arrives.
            let needed = state.bodyBytesSeen - state.reserved
            if needed > 0 {
                if context.budget.reserve(needed) {
                    state.reserved += needed
                } else {
                    state.overBudget = true
                    state.request.body = []
                }
            }
            if !state.overBudget {
                uploadData.withMemoryRebound(to: UInt8.self, capacity: size) { bytes in
                    state.request.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: size))
                }
            }
        }
        uploadDataSize.pointee = 0
        return .YES
    }

    if let suspension = state.suspension {
        // Resumed: the deferred response has arrived.
        state.suspension = nil
        state.resumedFrom = suspension
        context.suspended.withLock { _ = $0?.removeValue(forKey: ObjectIdentifier(suspension)) }
        guard let response = suspension.take() else { return .NO }
        return queue(response, on: connection, tracked: tracked, context: context)
    }
    tracked?.enter(.handling)
    let respond = {
        if state.oversized { return context.handler.bodyTooLarge(state.request, limit: context.maxBodyBytes) }
        if state.overBudget {
            return closing(context.handler.reject(state.request, reason: .bodyBudgetExhausted(budget: context.budget.limit)))
        }
        // Not read again: moved out of the state rather than copied (a copy counts a
        // reference to each of its strings and arrays, and releases them all again).
        var request = HTTPRequest(method: "", path: "/")
        swap(&request, &state.request)
        return context.handler.handle(request)
    }
    let response = respond()
    if let deferred = response.deferred {
        // Free this worker thread: suspend until the response is there.
        // Suspended before it is registered: only a suspended connection may be resumed.
        let suspension = SuspendedConnection(connection)
        state.suspension = suspension
        MHD_suspend_connection(connection)
        let registered = context.suspended.withLock { table -> Bool in
            guard table != nil else { return false }
            table?[ObjectIdentifier(suspension)] = suspension
            return true
        }
        guard registered else {
            // Stopping: no new suspensions.
            _ = suspension.resume(with: ServerContext.unavailable)
            return .YES
        }
        deferred.whenComplete { final in _ = suspension.resume(with: final) }
        return .YES
    }
    return queue(response, on: connection, tracked: tracked, context: context)
}

/// The first call of a request: builds it, makes the transport's checks, and answers refusals.
private func intake(
    _ state: RequestState, connection: OpaquePointer, url: UnsafePointer<CChar>?, method: UnsafePointer<CChar>?,
    version: UnsafePointer<CChar>?, context: ServerContext, tracked: TrackedConnection?
) -> MHD_Result {
    let versionText = version.map { KnownStrings.versions.string($0) } ?? ""
    let rawFields = HeaderSection.rawFields(connection)
    let afterTarget = url.flatMap { url in version.flatMap { HeaderSection.afterTarget(url: url, recorded: state.rawTarget.count, version: $0) } }
    // Built in the request's state and read from there: no copy of its counted fields.
    state.request = HTTPRequest(
        method: method.map { KnownStrings.methods.string($0) } ?? "",
        path: url.map { String(cString: $0) } ?? "/",
        version: versionText,
        // Most requests have no query: no pass over libmicrohttpd's values for one. (The
        // recorded target stops at a raw NUL, libmicrohttpd's query does not: read it then.)
        query: state.rawTarget.isEmpty || state.rawTarget.contains(UInt8(ascii: "?")) || afterTarget != .separatorOnly
            ? collectQuery(connection) : [],
        headers: HTTPHeaders(rawFields.map { (name: KnownStrings.fieldNames.string($0.0), value: String(cString: $0.1)) }))
    state.request.remoteAddress = tracked?.address ?? ""
    // The path as sent, also for a refused target: the decoded one stops at a `%00`.
    if !state.rawTarget.isEmpty {
        // Most paths have nothing to decode: then the one string serves as both.
        let rawPath = RequestFraming.pathBytes(of: state.rawTarget)
        if !RequestFraming.bytes(rawPath, equal: state.request.path) { state.request.rawPath = String(decoding: rawPath, as: UTF8.self) }
    }
    var rejection: HTTPRejection?
    switch RequestFraming.target(state.rawTarget) {
    case .failure(let reason):
        rejection = reason
    case .success(let target):
        if case .absolute(let encodedPath) = target { state.request.path = RequestFraming.percentDecoded(encodedPath) }
        rejection = nil
    }
    if rejection == nil, afterTarget == .nulInTarget {
        // RFC 9112 §3.2: no NUL in a target (`%00` is refused too); read up to it, the
        // request would be another one.
        rejection = .malformed("the request target contains a space or a control character")
    }
    if rejection == nil { rejection = RequestFraming.method(state.request.method) }
    func refuse(_ reason: HTTPRejection) -> MHD_Result {
        queue(closing(context.handler.reject(state.request, reason: reason)), on: connection, tracked: tracked)
    }
    if let rejection { return refuse(rejection) }
    let headerSize = CMicroHTTPD_headerSize(connection)
    if headerSize > context.maxHeaderBytes { return refuse(.headerSectionTooLarge(limit: context.maxHeaderBytes)) }
    var wholeValues: [Int: String] = [:]
    if let method, let version,
        let problem = HeaderSection.check(rawFields, start: method, size: headerSize, version: version, wholeValues: &wholeValues)
    {
        for (index, value) in wholeValues { state.request.headers.replaceValue(at: index, with: value) }
        return refuse(problem)
    }
    let body: RequestFraming.Body
    switch RequestFraming.body(version: versionText, headers: state.request.headers) {
    case .failure(let reason): return refuse(reason)
    case .success(let framing): body = framing
    }
    if case .refused(let reason)? = tracked?.admission { return refuse(reason) }
    switch body {
    case .none:
        tracked?.enter(.handling)
        return .YES
    case .length, .chunked:
        // Who may send comes first (a stranger learns nothing of the limits), then the limits.
        if let early = context.handler.admit(state.request) {
            return queue(closing(early), on: connection, tracked: tracked)
        }
        if case .length(let length) = body, length > context.maxBodyBytes {
            state.oversized = true
            return queue(context.handler.bodyTooLarge(state.request, limit: context.maxBodyBytes), on: connection, tracked: tracked)
        }
        if case .length(let length) = body {
            guard context.budget.reserve(length) else { return refuse(.bodyBudgetExhausted(budget: context.budget.limit)) }
            state.reserved = length
        }
        tracked?.enter(.receivingBody)
        return .YES
    }
}

/// Adds `Connection: close` unless present (libmicrohttpd closes after an early answer anyway).
private func closing(_ response: HTTPResponse) -> HTTPResponse {
    var response = response
    if response.headers["Connection"] == nil { response.headers.add("Connection", "close") }
    return response
}

private let completedHandler: MHD_RequestCompletedCallback = { cls, connection, requestSlot, _ in
    guard let cls, let requestSlot, let slot = requestSlot.pointee else { return }
    let context = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()
    let state = Unmanaged<RequestState>.fromOpaque(slot)
    context.budget.release(state.takeUnretainedValue().reserved)
    if state.takeUnretainedValue().counted { context.inFlight.subtract(1, ordering: .relaxed) }
    state.takeUnretainedValue().suspension?.markCompleted()
    state.takeUnretainedValue().resumedFrom?.markCompleted()
    state.release()
    requestSlot.pointee = nil
    if let connection { trackedConnection(connection)?.enter(.idle) }
}

/// Bodies up to this size are copied into libmicrohttpd's response; larger ones are streamed
/// from the one shared buffer, through the connection's own bounded write buffer.
private let streamingThreshold = 16 << 10

private func queue(_ response: HTTPResponse, on connection: OpaquePointer, tracked: TrackedConnection?, context: ServerContext? = nil) -> MHD_Result {
    // Shutting down: the connection ends after this answer (RFC 9112 §9.6).
    let response = context?.draining.load(ordering: .relaxed) == true ? closing(response) : response
    let created: OpaquePointer?
    let size = response.bodyCount
    if let stream = response.stream, let context {
        let body = StreamBody(stream: stream, connection: connection, tracked: tracked, context: context)
        let box = Unmanaged.passRetained(body).toOpaque()
        // MHD_SIZE_UNKNOWN: chunked transfer coding for HTTP/1.1.
        created = MHD_create_response_from_callback(UInt64.max, 16 << 10, readStream, box, releaseStream)
        if created == nil {
            Unmanaged<StreamBody>.fromOpaque(box).release()
        } else {
            context.register(stream)
        }
    } else if size > streamingThreshold || response.segmentCount > 1 {
        let box = Unmanaged.passRetained(ResponseBody(response.segments)).toOpaque()
        created = MHD_create_response_from_callback(UInt64(size), 32 << 10, readResponseBody, box, releaseResponseBody)
        if created == nil { Unmanaged<ResponseBody>.fromOpaque(box).release() }
    } else {
        created = response.body.withUnsafeBytes { bytes in
            MHD_create_response_from_buffer(bytes.count, UnsafeMutableRawPointer(mutating: bytes.baseAddress), .RESPMEM_MUST_COPY)
        }
    }
    guard let created else { return .NO }
    defer { MHD_destroy_response(created) }
    for (name, value) in response.headers {
        // Explicitly: the implicit conversion of a small string (most names and values) to a
        // C string allocates a copy; `withCString` puts it on the stack.
        _ = name.withCString { name in value.withCString { value in MHD_add_response_header(created, name, value) } }
    }
    let result = MHD_queue_response(connection, UInt32(response.status), created)
    tracked?.enter(.sending)
    return result
}

/// A streamed body (`ResponseStream`) and the connection it is sent on, reached through the
/// content reader's `cls`. Used only by the thread serving the connection.
private final class StreamBody {
    let stream: ResponseStream
    let connection: OpaquePointerBox
    let tracked: TrackedConnection?
    let context: ServerContext
    let socket: Int32

    init(stream: ResponseStream, connection: OpaquePointer, tracked: TrackedConnection?, context: ServerContext) {
        self.stream = stream
        self.connection = OpaquePointerBox(connection)
        self.tracked = tracked
        self.context = context
        self.socket = CMicroHTTPD_socket(connection)
    }
}

@available(*, unavailable)
extension StreamBody: Sendable {}

/// Hands libmicrohttpd the stream's buffered bytes; with none, suspends the connection (the
/// next write resumes it) instead of answering 0, which libmicrohttpd would poll in a loop.
private let readStream: MHD_ContentReaderCallback = { cls, _, buffer, max in
    guard let cls, let buffer else { return -2 }
    let body = Unmanaged<StreamBody>.fromOpaque(cls).takeUnretainedValue()
    let connection = body.connection
    let socket = body.socket
    let pulled = body.stream.pull(
        into: UnsafeMutableRawBufferPointer(start: buffer, count: max),
        peerClosed: { socket >= 0 && CMicroHTTPD_peerClosed(socket) != 0 },
        suspend: { MHD_suspend_connection(connection.pointer) },
        resume: { MHD_resume_connection(connection.pointer) })
    switch pulled {
    case .bytes(let count):
        // Progress: the write deadline restarts (a long stream is not one slow response).
        body.tracked?.enter(.sending)
        return count
    case .end: return -1
    case .abort: return -2
    case .wait: return 0
    }
}

private let releaseStream: MHD_ContentReaderFreeCallback = { cls in
    guard let cls else { return }
    let body = Unmanaged<StreamBody>.fromOpaque(cls).takeRetainedValue()
    body.context.unregister(body.stream)
    body.stream.connectionEnded()
}

/// A response body shared by reference with the handler's result (no copy per connection),
/// read by libmicrohttpd in order; `start` is where each segment begins in the body.
private final class ResponseBody {
    let segments: [[UInt8]]
    let starts: [Int]
    /// The segment holding the last position read (reads are sequential).
    var current = 0

    init(_ segments: [[UInt8]]) {
        self.segments = segments
        var offset = 0
        starts = segments.map { segment in
            defer { offset += segment.count }
            return offset
        }
    }
}

@available(*, unavailable)
extension ResponseBody: Sendable {}

private let readResponseBody: MHD_ContentReaderCallback = { cls, position, buffer, max in
    guard let cls, let buffer else { return -2 }
    let body = Unmanaged<ResponseBody>.fromOpaque(cls).takeUnretainedValue()
    let offset = Int(position)
    if body.current >= body.segments.count || offset < body.starts[body.current] { body.current = 0 }
    while body.current < body.segments.count && offset >= body.starts[body.current] + body.segments[body.current].count {
        body.current += 1
    }
    guard body.current < body.segments.count else { return -1 }
    let segment = body.segments[body.current]
    let inSegment = offset - body.starts[body.current]
    let count = min(max, segment.count - inSegment)
    segment.withUnsafeBytes { bytes in
        UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + inSegment, byteCount: count)
    }
    return count
}

private let releaseResponseBody: MHD_ContentReaderFreeCallback = { cls in
    guard let cls else { return }
    Unmanaged<ResponseBody>.fromOpaque(cls).release()
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

private func collectQuery(_ connection: OpaquePointer) -> [(name: String, value: String?)] {
    collect(connection, kind: .GET_ARGUMENT_KIND).map { (name: $0.0, value: $0.1) }
}
