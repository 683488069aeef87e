import TestSupport
import Dispatch
import Foundation
import Synchronization
import Testing

@testable import PostgresStorage

@Suite struct PoolTests {
    /// Eight threads share a pool of two: never more than two server sessions.
    @Test func neverOpensMoreThanItsBound() throws {
        let pool = PostgresConnectionPool(settings: try TestPostgres.shared().createDatabase(), maximumConnections: 2)
        let sessions = Mutex<Set<Int>>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do {
                for _ in 0..<3 {
                    let pid = try pool.withConnection { connection in
                        try connection.query("SELECT pg_backend_pid(), pg_sleep(0.02)").rows[0].int(0)
                    }
                    sessions.withLock { _ = $0.insert(pid) }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect((1...2).contains(sessions.withLock { $0.count }))
        #expect(pool.openConnections <= 2)
    }

    /// With every connection in use, a caller gets `unavailable` after the acquire timeout
    /// instead of waiting for ever; once a connection is back, it gets one.
    @Test func givesUpAfterTheAcquireTimeout() throws {
        let pool = PostgresConnectionPool(
            settings: try TestPostgres.shared().createDatabase(), maximumConnections: 1, acquireTimeout: .milliseconds(200))
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let holder = Thread {
            _ = try? pool.withConnection { _ in
                holding.signal()
                release.wait()
            }
        }
        holder.start()
        holding.wait()
        let error = try #require(throws: PostgresError.self) { try pool.withConnection { _ in () } }
        #expect(error.kind == .unavailable)
        release.signal()
        #expect(try pool.withConnection { try $0.query("SELECT 1").rows.count } == 1)
    }

    /// A session the server ended is noticed when the connection is handed out again and
    /// replaced by a new one.
    @Test func replacesAConnectionTheServerClosed() throws {
        let settings = try TestPostgres.shared().createDatabase()
        let pool = PostgresConnectionPool(settings: settings, maximumConnections: 1)
        let first = try pool.withConnection { try $0.query("SELECT pg_backend_pid()").rows[0].int(0) }
        let admin = try PostgresConnection(settings: settings)
        #expect(try admin.query("SELECT pg_terminate_backend($1::int)", [.integer(first)]).rows[0].bool(0))
        // Gone (or a zombie): its socket is closed. (Its pg_stat_activity row goes a little earlier.)
        try waitUntil {
            guard let stat = try? String(contentsOfFile: "/proc/\(first)/stat", encoding: .utf8) else { return true }
            return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
        }
        let second = try pool.withConnection { try $0.query("SELECT pg_backend_pid()").rows[0].int(0) }
        #expect(second != first)
        #expect(pool.openConnections == 1)
    }

    /// A connection given back inside a transaction (the caller threw before COMMIT) is rolled
    /// back before anyone else gets it.
    @Test func rollsBackAConnectionGivenBackInATransaction() throws {
        let pool = PostgresConnectionPool(settings: try TestPostgres.shared().createDatabase(), maximumConnections: 1)
        try pool.withConnection { try $0.execute("CREATE TABLE t (n bigint)") }
        struct Abandon: Error {}
        #expect(throws: Abandon.self) {
            try pool.withConnection { connection in
                try connection.execute("BEGIN")
                try connection.query("INSERT INTO t VALUES (1)")
                throw Abandon()
            }
        }
        let (inTransaction, count) = try pool.withConnection { connection in
            (connection.inTransaction, try connection.query("SELECT count(*) FROM t").rows[0].int(0))
        }
        #expect(!inTransaction)
        #expect(count == 0)
    }

    /// The server restarts: the pool's idle connection is dead, the next caller gets a new one.
    /// The server stops: callers get a connection or unavailable error promptly (no hang).
    /// It starts again: the pool connects again after its back-off.
    @Test func reconnectsAfterTheServerRestarts() throws {
        let server = try TestPostgres()
        defer { server.destroy() }
        let pool = PostgresConnectionPool(
            settings: try server.settings(), maximumConnections: 2, acquireTimeout: .seconds(1), initialBackoff: .milliseconds(50),
            maximumBackoff: .milliseconds(200))
        let before = try pool.withConnection { try $0.query("SELECT pg_backend_pid()").rows[0].int(0) }
        try server.restart()
        let after = try pool.withConnection { try $0.query("SELECT pg_backend_pid()").rows[0].int(0) }
        #expect(after != before)

        // A statement running when the server dies ends with a connection error, not a hang.
        let running = DispatchSemaphore(value: 0)
        let outcome = Mutex<PostgresError?>(nil)
        let sleeper = Thread {
            do {
                try pool.withConnection { connection in
                    running.signal()
                    try connection.query("SELECT pg_sleep(60)")
                }
            } catch let error as PostgresError {
                outcome.withLock { $0 = error }
            } catch {
                outcome.withLock { $0 = PostgresError(kind: .other, message: "\(error)") }
            }
            running.signal()
        }
        sleeper.start()
        running.wait()
        let observer = try PostgresConnection(settings: try server.settings())
        try waitUntil { try observer.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'").rows[0].int(0) == 1 }
        try server.stop()
        #expect(running.wait(timeout: .now() + 20) == .success, "the statement hung after the server died")
        #expect(outcome.withLock { $0?.kind } == .connection)

        let started = ContinuousClock.now
        let error = try #require(throws: PostgresError.self) { try pool.withConnection { try $0.query("SELECT 1") } }
        #expect([.connection, .unavailable].contains(error.kind))
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(pool.openConnections == 0)

        try server.start()
        try waitUntil { (try? pool.withConnection { try $0.query("SELECT 1").rows.count }) == 1 }
    }
}

extension PoolTests {
    /// Four threads increment one counter by read-then-write in repeatable read transactions:
    /// the conflicts are serialization failures, retried, and no increment is lost.
    @Test func retriesSerializationFailuresWithoutLosingUpdates() throws {
        let pool = PostgresConnectionPool(settings: try TestPostgres.shared().createDatabase(), maximumConnections: 4)
        try pool.withConnection { try $0.execute("CREATE TABLE counter (n bigint NOT NULL); INSERT INTO counter VALUES (0)") }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<5 {
                do {
                    try pool.transaction(.repeatableRead, attempts: 100) { connection in
                        let n = try connection.query("SELECT n FROM counter").rows[0].int(0)
                        try connection.query("UPDATE counter SET n = $1", [.integer(n + 1)])
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(try pool.withConnection { try $0.query("SELECT n FROM counter").rows[0].int(0) } == 20)
    }

    /// After a failed connection attempt the pool backs off: a caller whose acquire timeout ends
    /// before the next attempt is due gets `unavailable` at once, without trying to connect.
    @Test func backsOffAfterAFailedConnectionAttempt() throws {
        let server = try TestPostgres.shared()
        var settings = try server.settings()
        settings.port = server.port == 65535 ? 65534 : server.port + 1
        let pool = PostgresConnectionPool(
            settings: settings, maximumConnections: 2, acquireTimeout: .milliseconds(500), initialBackoff: .seconds(60),
            maximumBackoff: .seconds(60))
        let first = try #require(throws: PostgresError.self) { try pool.withConnection { _ in () } }
        #expect(first.kind == .connection)
        let started = ContinuousClock.now
        let second = try #require(throws: PostgresError.self) { try pool.withConnection { _ in () } }
        #expect(second.kind == .unavailable)
        #expect(second.message.contains("next attempt in"))
        #expect(ContinuousClock.now - started < .seconds(30), "it waited for the back-off instead of failing at once")
        #expect(pool.openConnections == 0)
    }
}

/// Polls `condition` every 50 ms for up to 20 s; throws if it never holds.
func waitUntil(_ condition: () throws -> Bool) throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
        if try condition() { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
    throw TestPostgresError(description: "condition not met within 20 s")
}
