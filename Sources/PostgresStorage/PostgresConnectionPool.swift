import Dispatch
import Foundation
import Synchronization

/// Lets one connection travel between threads inside the pool.
/// Why @unchecked Sendable is safe: a box is only reachable through the pool's idle list (under
/// its mutex) or by the one caller that checked it out, never by two threads at once.
final class PostgresConnectionBox: @unchecked Sendable {
    let connection: PostgresConnection
    init(_ connection: PostgresConnection) { self.connection = connection }
}

/// At most `maximumConnections` connections to one database, shared by the server's worker
/// threads: a caller gets a connection no one else is using for the length of
/// `withConnection`.
///
/// - A caller waits at most `acquireTimeout` for a free connection, then gets
///   `PostgresError.Kind.unavailable` (the API answers 503), never an endless wait.
/// - A connection found broken when it is handed out (the server restarted or ended the
///   session) or given back broken or inside a transaction is closed, and a new one is opened.
/// - After a failed connection attempt the pool waits before the next one, doubling the wait
///   from `initialBackoff` up to `maximumBackoff` (with up to 20 % random extra, so that
///   replicas do not retry in step); callers whose acquire timeout ends before the next attempt
///   get `unavailable` at once instead of hammering a database that is down.
public final class PostgresConnectionPool: Sendable {
    public let settings: PostgresConnectionSettings
    public let maximumConnections: Int
    public let acquireTimeout: Duration
    public let initialBackoff: Duration
    public let maximumBackoff: Duration

    private struct State {
        var idle: [PostgresConnectionBox] = []
        var open = 0
        var failures = 0
        var nextAttempt: ContinuousClock.Instant?
        var lastFailure: PostgresError?
    }

    private let slots: DispatchSemaphore
    private let state = Mutex(State())

    public init(
        settings: PostgresConnectionSettings, maximumConnections: Int = 10, acquireTimeout: Duration = .seconds(5),
        initialBackoff: Duration = .milliseconds(100), maximumBackoff: Duration = .seconds(5)
    ) {
        precondition(maximumConnections >= 1, "a pool needs at least one connection")
        self.settings = settings
        self.maximumConnections = maximumConnections
        self.acquireTimeout = acquireTimeout
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        slots = DispatchSemaphore(value: maximumConnections)
    }

    /// Connections open now (in use or idle).
    public var openConnections: Int { state.withLock { $0.open } }

    /// Runs `body` with a connection of its own. Throws `PostgresError` (`unavailable` when no
    /// connection could be had in time, `connection` when the database cannot be reached) or
    /// whatever `body` throws.
    @discardableResult
    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let deadline = ContinuousClock.now + acquireTimeout
        let (seconds, attoseconds) = acquireTimeout.components
        let wait = DispatchTime.now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        guard slots.wait(timeout: wait) == .success else {
            throw PostgresError(
                kind: .unavailable, message: "no database connection became free within \(acquireTimeout) (all \(maximumConnections) in use)")
        }
        defer { slots.signal() }
        let box = try checkOut(deadline: deadline)
        defer { checkIn(box) }
        return try body(box.connection)
    }

    /// Runs `body` in a transaction on a connection of its own and commits. When the
    /// transaction fails with a serialization failure or a deadlock (SQLSTATE 40001, 40P01:
    /// nothing of it was committed), runs it again from the start, up to `attempts` times in
    /// all, after a short random pause, as PostgreSQL advises for its repeatable read and
    /// serializable levels (https://www.postgresql.org/docs/15/mvcc-serialization-failure-handling.html).
    /// Other errors, including a lost connection (whose COMMIT may or may not have happened),
    /// are thrown at once. `body` must do nothing outside the database that a retry would repeat.
    @discardableResult
    public func transaction<T>(
        _ isolation: PostgresIsolation = .readCommitted, attempts: Int = 5, _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        var attempt = 1
        while true {
            do {
                return try withConnection { connection in try connection.transaction(isolation) { try body(connection) } }
            } catch let error as PostgresError where error.kind == .serialization && attempt < attempts {
                attempt += 1
                Thread.sleep(forTimeInterval: Double.random(in: 0.001...0.01) * Double(attempt))
            }
        }
    }

    /// An idle connection that still works, or a new one. The caller holds a slot, so opening
    /// one keeps the number of connections within the bound.
    private func checkOut(deadline: ContinuousClock.Instant) throws(PostgresError) -> PostgresConnectionBox {
        while let box = state.withLock({ $0.idle.popLast() }) {
            if box.connection.isUsable { return box }
            state.withLock { $0.open -= 1 }
        }
        while true {
            let (nextAttempt, failures, lastFailure) = state.withLock { ($0.nextAttempt, $0.failures, $0.lastFailure) }
            if let nextAttempt, nextAttempt > .now {
                guard nextAttempt <= deadline else {
                    let reason = lastFailure.map { ": \($0.message)" } ?? ""
                    throw PostgresError(
                        kind: .unavailable,
                        message: "the database could not be reached (\(failures) failed attempt\(failures == 1 ? "" : "s") in a row\(reason)); "
                            + "next attempt in \(nextAttempt - .now)")
                }
                Thread.sleep(forTimeInterval: Self.seconds(nextAttempt - .now))
            }
            do {
                let connection = try PostgresConnection(settings: settings)
                state.withLock {
                    $0.open += 1
                    $0.failures = 0
                    $0.nextAttempt = nil
                    $0.lastFailure = nil
                }
                return PostgresConnectionBox(connection)
            } catch {
                let retry = state.withLock { state in
                    state.failures += 1
                    state.lastFailure = error
                    let retry = ContinuousClock.now + backoff(afterFailures: state.failures)
                    state.nextAttempt = max(state.nextAttempt ?? retry, retry)
                    return state.nextAttempt ?? retry
                }
                if retry > deadline { throw error }
            }
        }
    }

    private func checkIn(_ box: PostgresConnectionBox) {
        if box.connection.inTransaction { box.connection.rollBackQuietly() }
        if box.connection.isUsable {
            state.withLock { $0.idle.append(box) }
        } else {
            state.withLock { $0.open -= 1 }
        }
    }

    /// `initialBackoff` doubled per failure after the first, at most `maximumBackoff`, plus up to 20 %.
    private func backoff(afterFailures failures: Int) -> Duration {
        var wait = initialBackoff
        for _ in 1..<max(failures, 1) where wait < maximumBackoff { wait *= 2 }
        wait = min(wait, maximumBackoff)
        return wait + wait * Double.random(in: 0..<0.2)
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
