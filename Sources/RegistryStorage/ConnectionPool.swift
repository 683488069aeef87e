import Foundation
import Synchronization

/// Lets one connection travel between threads inside a lock or a pool.
/// Why @unchecked Sendable is safe: a box is only ever reachable through `ConnectionPool`
/// (checked out to one caller at a time) or the writer's `Mutex`, never by two threads at once.
final class ConnectionBox: @unchecked Sendable {
    let connection: any SQLConnection
    init(_ connection: any SQLConnection) { self.connection = connection }
}

/// Read connections, one per concurrent reader: SQLite's WAL (and PostgreSQL's MVCC) lets
/// readers run in parallel with each other and with the writer, and each caller gets a
/// connection no one else is using.
///
/// Without `maximum` the pool holds at most as many connections as there were readers at once,
/// which the server's worker and background threads bound. With `maximum` (PostgreSQL, whose
/// server allows only so many connections) a reader that finds `maximum` connections in use
/// waits for one to come back, for at most `acquireTimeout`, then fails with
/// `StoreError.fault` (`.unavailable`: the API answers 503 with `Retry-After`), never an endless
/// wait. A thread that already holds a connection (a read inside a read) is never made to wait
/// for a second one, which could otherwise wait on itself: it may exceed `maximum`.
final class ConnectionPool: Sendable {
    private struct State {
        var idle: [ConnectionBox] = []
        /// Connections open (idle or in use).
        var open = 0
        /// Connections in use, by the thread holding them.
        var holders: [UInt: Int] = [:]
    }

    private let state = Mutex(State())
    /// Signalled when a connection comes back (with `maximum`).
    private let returned = NSCondition()
    private let open: @Sendable () throws -> any SQLConnection
    let maximum: Int?
    let acquireTimeout: Duration

    init(maximum: Int? = nil, acquireTimeout: Duration = .seconds(5), open: @escaping @Sendable () throws -> any SQLConnection) {
        self.maximum = maximum.map { max(1, $0) }
        self.acquireTimeout = acquireTimeout
        self.open = open
    }

    /// Connections open now (idle or in use).
    var openConnections: Int { state.withLock { $0.open } }

    /// Closes the connections no one is using (at shutdown; a later reader opens a new one).
    func closeIdle() {
        state.withLock { state in
            state.open -= state.idle.count
            state.idle.removeAll()
        }
        returned.broadcast()
    }

    func with<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        let thread = UInt(pthread_self())
        let box = try checkOut(thread)
        defer { checkIn(box, thread) }
        return try body(box.connection)
    }

    /// An idle connection, a new one (its slot taken before it is opened, outside the lock),
    /// or, at `maximum`, one that comes back within `acquireTimeout`.
    private func checkOut(_ thread: UInt) throws -> ConnectionBox {
        // Set when the reader first has to wait (most never do: no clock read on their path).
        var waitUntil: Date?
        while true {
            enum Step {
                case reuse(ConnectionBox)
                case openNew
                case wait
            }
            let step = state.withLock { state -> Step in
                if let box = state.idle.popLast() {
                    if maximum != nil { state.holders[thread, default: 0] += 1 }
                    return .reuse(box)
                }
                if let maximum, state.open >= maximum, state.holders[thread] == nil { return .wait }
                state.open += 1
                if maximum != nil { state.holders[thread, default: 0] += 1 }
                return .openNew
            }
            switch step {
            case .reuse(let box):
                return box
            case .openNew:
                do {
                    return ConnectionBox(try open())
                } catch {
                    release(thread)
                    throw error
                }
            case .wait:
                let deadline =
                    waitUntil
                    ?? Date().addingTimeInterval(Double(acquireTimeout.components.seconds) + Double(acquireTimeout.components.attoseconds) / 1e18)
                returned.lock()
                // Checked again under the condition's lock: a connection may have come back
                // between the pool's lock and this one (its return signals under this lock).
                let stillFull = state.withLock { state in state.idle.isEmpty && state.open >= (maximum ?? .max) }
                waitUntil = deadline
                if stillFull { _ = returned.wait(until: deadline) }
                returned.unlock()
                if stillFull && Date() >= deadline {
                    throw StoreError.fault(
                        StorageFault(
                            reason: .unavailable,
                            message:
                                "no database connection became free within \(acquireTimeout) (all \(maximum ?? 0) read connections in use; see --database-max-connections)"
                        ))
                }
            }
        }
    }

    private func checkIn(_ box: ConnectionBox, _ thread: UInt) {
        box.connection.resetStatements()
        state.withLock { state in
            state.idle.append(box)
            if maximum != nil { Self.leave(&state, thread) }
        }
        if maximum != nil { signal() }
    }

    /// A connection that could not be opened: its slot is given back.
    private func release(_ thread: UInt) {
        state.withLock { state in
            state.open -= 1
            if maximum != nil { Self.leave(&state, thread) }
        }
        if maximum != nil { signal() }
    }

    private static func leave(_ state: inout State, _ thread: UInt) {
        if let held = state.holders[thread], held > 1 { state.holders[thread] = held - 1 } else { state.holders[thread] = nil }
    }

    private func signal() {
        returned.lock()
        returned.signal()
        returned.unlock()
    }
}
