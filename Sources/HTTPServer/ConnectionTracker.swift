import Foundation
import Synchronization

/// Bounds on connections that libmicrohttpd does not enforce itself: admission against the
/// connection limits (so that a client over a limit is answered 503 instead of being dropped),
/// and deadlines for the phases of a request, measured from the start of the phase, which
/// trickling bytes do not extend (libmicrohttpd's own timeout restarts on every byte).
///
/// A deadline measures the client, not the server: each worker thread serves its connections
/// one event at a time, so while it runs a handler, its other connections wait through no fault
/// of their own. A connection's phase therefore counts from the later of its start and the end
/// of its worker's last handler call, and not at all while that worker is in a handler.
///
/// A watchdog thread checks the deadlines a few times a second and ends an overdue connection
/// with `shutdown(2)`; libmicrohttpd then sees the socket closed and frees the connection. The
/// descriptor stays valid meanwhile: libmicrohttpd reports the close (`closed(_:)`, taking the
/// same lock) before it closes the descriptor.
final class ConnectionTracker: Sendable {
    struct Limits: Sendable {
        var connections: Int
        var perClient: Int
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
        var workers: [UInt: WorkerClock] = [:]
    }

    init(limits: Limits) {
        self.limits = limits
        let thread = Thread { [weak self] in
            while let tracker = self, !tracker.stopped.load(ordering: .relaxed) {
                tracker.enforceDeadlines(now: .now)
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        thread.name = "http-deadlines"
        thread.start()
    }

    /// Stops the watchdog (within one tick).
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Records a new connection and decides whether it is admitted.
    /// Called on the worker thread that accepted the connection (and serves it from then on).
    func opened(socket: Int32, address: String) -> TrackedConnection {
        let thread = UInt(pthread_self())
        return state.withLock { registry in
            let worker = registry.workers[thread] ?? WorkerClock()
            registry.workers[thread] = worker
            let total = registry.connections.count + 1
            let fromAddress = registry.perAddress[address, default: 0] + 1
            let admission: TrackedConnection.Admission =
                total > limits.connections
                ? .refused(.serverFull(limit: limits.connections))
                : (limits.perClient > 0 && fromAddress > limits.perClient)
                    ? .refused(.clientConnectionLimit(limit: limits.perClient)) : .admitted
            let connection = TrackedConnection(socket: socket, address: address, admission: admission, worker: worker)
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

    private func enforceDeadlines(now: ContinuousClock.Instant) {
        state.withLock { registry in
            for connection in registry.connections.values {
                let (phase, phaseStart) = connection.phase.withLock { $0 }
                let (busy, lastBusyEnd) = connection.worker.state.withLock { $0 }
                if busy { continue }
                let since = max(phaseStart, lastBusyEnd)
                let limit: Duration? =
                    switch phase {
                    case .awaitingHeaders: limits.headerTimeout
                    case .receivingBody: limits.bodyTimeout
                    case .sending: limits.writeTimeout
                    case .handling, .ending: nil
                    }
                guard let limit, now - since > limit else { continue }
                connection.phase.withLock { $0 = (.ending, now) }
                _ = shutdown(connection.socket, Int32(SHUT_RDWR))
            }
        }
    }
}

/// One connection as the tracker sees it. Its phase is set by the worker thread serving it and
/// read by the watchdog, under `phase`'s lock.
final class TrackedConnection: Sendable {
    enum Admission: Sendable {
        case admitted
        case refused(HTTPRejection)
    }

    enum Phase: Sendable {
        /// From the accept, or the end of the previous response, until the header section is in.
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
    let worker: WorkerClock
    let phase: Mutex<(Phase, ContinuousClock.Instant)>

    init(socket: Int32, address: String, admission: Admission, worker: WorkerClock) {
        self.socket = socket
        self.address = address
        self.admission = admission
        self.worker = worker
        phase = Mutex((.awaitingHeaders, .now))
    }

    func enter(_ next: Phase) {
        phase.withLock { current in
            if case .ending = current.0 { return }
            current = (next, .now)
        }
    }
}

/// Whether a worker thread is in a handler, and when it last left one.
final class WorkerClock: Sendable {
    let state = Mutex<(busy: Bool, lastBusyEnd: ContinuousClock.Instant)>((false, .now))

    /// Runs `body` (a handler call) marked as busy.
    func busy<T>(_ body: () -> T) -> T {
        state.withLock { $0.busy = true }
        defer { state.withLock { $0 = (false, .now) } }
        return body()
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
