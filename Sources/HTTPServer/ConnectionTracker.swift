internal import CMicroHTTPD
import Foundation
import Synchronization

/// Bounds on connections that libmicrohttpd does not enforce itself: admission against the
/// connection limits (so that a client over a limit is answered 503 instead of being dropped),
/// and deadlines for the phases of a request, measured from the start of the phase, which
/// trickling bytes do not extend (libmicrohttpd's own timeout restarts on every byte).
///
/// A deadline measures the client, not the server: each worker thread serves its connections
/// one event at a time, so while it runs a handler (or is not scheduled), its other connections
/// wait through no fault of their own. A connection is therefore not ended while the kernel holds
/// bytes it sent that the server has not read yet (receiving phases), or while the server has
/// nothing waiting in the kernel for it to read (sending phase).
///
/// A watchdog thread checks the deadlines a few times a second and ends an overdue connection
/// with `shutdown(2)`; libmicrohttpd then sees the socket closed and frees the connection. The
/// descriptor stays valid meanwhile: libmicrohttpd reports the close (`closed(_:)`, taking the
/// same lock) before it closes the descriptor.
final class ConnectionTracker: Sendable {
    struct Limits: Sendable {
        var connections: Int
        var perClient: Int
        /// Between requests on a kept-alive connection, until the next request line.
        var idleTimeout: Duration
        var headerTimeout: Duration
        var bodyTimeout: Duration
        var writeTimeout: Duration
    }

    let limits: Limits
    private let state = Mutex(Registry())
    private let stopped = Atomic<Bool>(false)

    private struct Registry {
        var connections: [ObjectIdentifier: TrackedConnection] = [:]
        var perAddress: [String: Int] = [:]
    }

    init(limits: Limits) {
        self.limits = limits
        let thread = Thread { [weak self] in
            while let tracker = self, !tracker.stopped.load(ordering: .relaxed) {
                tracker.enforceDeadlines()
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        thread.name = "http-deadlines"
        thread.start()
    }

    /// Stops the watchdog (within one tick).
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Records a new connection and decides whether it is admitted.
    func opened(socket: Int32, address: String) -> TrackedConnection {
        state.withLock { registry in
            let total = registry.connections.count + 1
            let fromAddress = registry.perAddress[address, default: 0] + 1
            let admission: TrackedConnection.Admission =
                total > limits.connections
                ? .refused(.serverFull(limit: limits.connections))
                : (limits.perClient > 0 && fromAddress > limits.perClient)
                    ? .refused(.clientConnectionLimit(limit: limits.perClient)) : .admitted
            let connection = TrackedConnection(socket: socket, address: address, admission: admission)
            registry.connections[ObjectIdentifier(connection)] = connection
            registry.perAddress[address] = fromAddress
            return connection
        }
    }

    /// Forgets a connection; called by libmicrohttpd before it closes the socket.
    func closed(_ connection: TrackedConnection) {
        state.withLock { registry in
            registry.connections[ObjectIdentifier(connection)] = nil
            let remaining = registry.perAddress[connection.address, default: 1] - 1
            registry.perAddress[connection.address] = remaining > 0 ? remaining : nil
        }
    }

    /// Number of open connections.
    var count: Int { state.withLock { $0.connections.count } }

    private func enforceDeadlines() {
        let now = TrackedConnection.coarseNanoseconds()
        state.withLock { registry in
            for connection in registry.connections.values {
                let (phase, since) = connection.currentPhase
                let limit: Duration? =
                    switch phase {
                    case .idle: limits.idleTimeout
                    case .awaitingHeaders: limits.headerTimeout
                    case .receivingBody: limits.bodyTimeout
                    case .sending: limits.writeTimeout
                    case .handling, .ending: nil
                    }
                guard let limit, Duration.nanoseconds(now - since) > limit else { continue }
                switch phase {
                case .idle, .awaitingHeaders, .receivingBody:
                    // The client has sent what the server has not read: the server is behind.
                    if CMicroHTTPD_unreadBytes(connection.socket) > 0 { continue }
                case .sending:
                    // Nothing waits for the client to read: the server is behind.
                    if CMicroHTTPD_unsentBytes(connection.socket) == 0 { continue }
                case .handling, .ending:
                    continue
                }
                connection.end()
                _ = shutdown(connection.socket, Int32(SHUT_RDWR))
            }
        }
    }
}

/// One connection as the tracker sees it. Its phase is set by the worker thread serving it and
/// read by the watchdog, both through one atomic word (the phase and when it began).
final class TrackedConnection: Sendable {
    enum Admission: Sendable {
        case admitted
        case refused(HTTPRejection)
    }

    enum Phase: UInt64, Sendable {
        /// After a response on a kept-alive connection, until the next request line.
        case idle
        /// From the accept, or the next request line, until the header section is in.
        case awaitingHeaders
        case receivingBody
        /// The handler is working; no deadline (it holds a worker thread, not a slot of the client's).
        case handling
        case sending
        /// Past a deadline, shut down.
        case ending
    }

    let socket: Int32
    let address: String
    let admission: Admission
    /// The phase (low 3 bits) and when it began (`coarseNanoseconds()`, the bits above): read
    /// and changed without a lock, several times per request.
    private let phase: Atomic<UInt64>

    init(socket: Int32, address: String, admission: Admission) {
        self.socket = socket
        self.address = address
        self.admission = admission
        phase = Atomic(Self.packed(.awaitingHeaders, at: Self.coarseNanoseconds()))
    }

    /// The phase and when it began (`coarseNanoseconds()`).
    var currentPhase: (Phase, Int64) { Self.unpacked(phase.load(ordering: .acquiring)) }

    func enter(_ next: Phase) {
        change { current in current == .ending ? nil : next }
    }

    /// A request line arrived: a kept-alive connection starts its header deadline now.
    func requestLineReceived() {
        change { current in current == .idle ? .awaitingHeaders : nil }
    }

    /// Past a deadline: no phase follows.
    func end() {
        phase.store(Self.packed(.ending, at: Self.coarseNanoseconds()), ordering: .releasing)
    }

    /// Sets the phase `next(current)` gives, starting now; nothing when it gives nil.
    private func change(_ next: (Phase) -> Phase?) {
        var current = phase.load(ordering: .relaxed)
        while let phase = next(Self.unpacked(current).0) {
            let (exchanged, original) = self.phase.compareExchange(
                expected: current, desired: Self.packed(phase, at: Self.coarseNanoseconds()), ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }

    private static func packed(_ phase: Phase, at nanoseconds: Int64) -> UInt64 {
        UInt64(nanoseconds) << 3 | phase.rawValue
    }

    private static func unpacked(_ word: UInt64) -> (Phase, Int64) {
        (Phase(rawValue: word & 7) ?? .ending, Int64(word >> 3))
    }

    /// `CLOCK_MONOTONIC_COARSE` in nanoseconds: a few nanoseconds to read (the phases change
    /// several times per request), exact to a scheduler tick (1–4 ms), far finer than deadlines
    /// of seconds checked every 100 ms.
    static func coarseNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}

/// The budget of request-body bytes buffered across all connections at once.
final class BodyBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// Takes `bytes` from the budget; false (and nothing taken) when they do not fit.
    func reserve(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ bytes: Int) {
        if bytes > 0 { used.subtract(bytes, ordering: .relaxed) }
    }

    var inUse: Int { used.load(ordering: .relaxed) }
}
