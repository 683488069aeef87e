import Coordination
import TestSupport
import Dispatch
import Foundation
import Logging
import Synchronization
import RegistryStorage
import Testing

@testable import PostgresStorage

@Suite struct LeaderLeaseTests {
    /// A migrated database and a pool on it.
    private func migratedPool() throws -> PostgresConnectionPool {
        let pool = PostgresConnectionPool(settings: try TestPostgres.shared().createDatabase(), maximumConnections: 4)
        try pool.withConnection { try PostgresMigrator.bundled().migrate($0) }
        return pool
    }

    /// Three replicas try at once: exactly one leads; the others are refused while its term runs.
    @Test func exactlyOneOfThreeContendersLeads() throws {
        let pool = try migratedPool()
        let leases = ["a", "b", "c"].map { PostgresLeaderLease(pool: pool, holder: $0, ttl: .seconds(30)) }
        let terms = Mutex<[LeaderTerm]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { index in
            do {
                if let term = try leases[index].acquire() { terms.withLock { $0.append(term) } }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let won = terms.withLock { $0 }
        #expect(won.count == 1)
        let leader = try #require(won.first)
        #expect(leader.generation == 1)
        #expect(leader.isValid)
        for lease in leases where lease.holder != leader.holder {
            #expect(try lease.acquire() == nil)
        }
        let status = try #require(try leases[0].status())
        #expect(status.holder == leader.holder && status.generation == 1 && status.isHeld)
        #expect(status.expiresInMilliseconds > 0 && status.expiresInMilliseconds <= 30_000)
    }

    /// Renewing keeps the term (same generation); releasing lets another take over at once, with
    /// the next generation; the old holder's renewal then fails.
    @Test func renewKeepsTheTermAndReleaseHandsItOver() throws {
        let pool = try migratedPool()
        let first = PostgresLeaderLease(pool: pool, holder: "first", ttl: .seconds(30))
        let second = PostgresLeaderLease(pool: pool, holder: "second", ttl: .seconds(30))
        let term = try #require(try first.acquire())
        let renewed = try #require(try first.renew(term))
        #expect(renewed.generation == term.generation)
        #expect(renewed.validUntil >= term.validUntil)
        #expect(try second.acquire() == nil)
        try first.release(renewed)
        let taken = try #require(try second.acquire())
        #expect(taken.generation == term.generation + 1)
        #expect(try first.renew(renewed) == nil)
        #expect(try first.acquire() == nil)
    }

    /// A holder that stops renewing: others are refused until the TTL has run out by the
    /// database's clock, then one takes over with the next generation; the old holder's own
    /// view (`validUntil`) had ended before that, and its late renewal fails.
    @Test func anExpiredLeaseIsTakenOver() throws {
        let pool = try migratedPool()
        let ttl = Duration.milliseconds(800)
        let stale = PostgresLeaderLease(pool: pool, holder: "stale", ttl: ttl)
        let others = ["x", "y"].map { PostgresLeaderLease(pool: pool, holder: $0, ttl: ttl) }
        let old = try #require(try stale.acquire())
        #expect(try others[0].acquire() == nil)
        var taken: LeaderTerm?
        var takenAt = ContinuousClock.now
        try waitUntil {
            for lease in others {
                if let term = try lease.acquire() {
                    taken = term
                    takenAt = .now
                    return true
                }
            }
            return false
        }
        let newTerm = try #require(taken)
        #expect(newTerm.generation == old.generation + 1)
        #expect(old.validUntil <= takenAt, "the old holder believed it led until after the take-over")
        #expect(!old.isValid)
        #expect(try stale.renew(old) == nil)
        // Whoever did not win is still refused while the new term runs.
        let loser = try #require(others.first { $0.holder != newTerm.holder })
        #expect(try loser.acquire() == nil)
    }

    /// The same holder acquiring again (a restarted replica with the same identity, or after its
    /// term expired) starts a new term: the old term can no longer be renewed.
    @Test func acquiringAgainStartsANewTerm() throws {
        let pool = try migratedPool()
        let lease = PostgresLeaderLease(pool: pool, holder: "solo", ttl: .milliseconds(300))
        let first = try #require(try lease.acquire())
        let second = try #require(try lease.acquire())
        #expect(second.generation == first.generation + 1)
        #expect(try lease.renew(first) == nil)
        try waitUntil { try lease.status()?.isHeld == false }
        #expect(try lease.renew(second) == nil, "an expired term cannot be renewed")
        let third = try #require(try lease.acquire())
        #expect(third.generation == second.generation + 1)
    }

    /// Fencing: a write carrying the current term commits; one carrying an old term is refused
    /// and leaves nothing behind.
    @Test func fencingRefusesWritesOfAnOldTerm() throws {
        let pool = try migratedPool()
        let first = PostgresLeaderLease(pool: pool, holder: "first", ttl: .seconds(30))
        let second = PostgresLeaderLease(pool: pool, holder: "second", ttl: .seconds(30))
        try pool.withConnection { try $0.execute("CREATE TABLE applied (generation bigint)") }
        func write(_ term: LeaderTerm) throws {
            try pool.withConnection { connection in
                try connection.transaction {
                    try PostgresLeaderLease.fence(connection, term: term)
                    try connection.query("INSERT INTO applied VALUES ($1)", [.integer(term.generation)])
                }
            }
        }
        let old = try #require(try first.acquire())
        try write(old)
        try first.release(old)
        let new = try #require(try second.acquire())
        let error = try #require(throws: PostgresError.self) { try write(old) }
        #expect(error.kind == .fenced)
        try write(new)
        let generations = try pool.withConnection { connection in
            try connection.query("SELECT generation FROM applied ORDER BY generation").rows.map { try $0.int(0) }
        }
        #expect(generations == [old.generation, new.generation])
    }
}

/// `PostgresLeaderLease` driving `LeaderElector`s (module Coordination), several replicas on
/// one real database.
@Suite struct LeaderElectionTests {
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    private func migratedPool() throws -> PostgresConnectionPool {
        let pool = PostgresConnectionPool(settings: try TestPostgres.shared().createDatabase(), maximumConnections: 8)
        try pool.withConnection { try PostgresMigrator.bundled().migrate($0) }
        return pool
    }

    /// A lease that can be cut off from the database, as a partitioned or frozen replica is:
    /// its renewals and releases then fail without reaching the database.
    final class SeverableLease: LeaderLease {
        struct Severed: Error {}
        let inner: PostgresLeaderLease
        let severed = Atomic<Bool>(false)
        init(_ inner: PostgresLeaderLease) { self.inner = inner }
        var holder: String { inner.holder }
        var ttl: Duration { inner.ttl }
        func acquire() throws(PostgresError) -> LeaderTerm? {
            guard !severed.load(ordering: .sequentiallyConsistent) else { throw PostgresError(kind: .other, message: "severed") }
            return try inner.acquire()
        }
        func renew(_ term: LeaderTerm) throws(PostgresError) -> LeaderTerm? {
            guard !severed.load(ordering: .sequentiallyConsistent) else { throw PostgresError(kind: .other, message: "severed") }
            return try inner.renew(term)
        }
        func release(_ term: LeaderTerm) throws(PostgresError) {
            guard !severed.load(ordering: .sequentiallyConsistent) else { throw PostgresError(kind: .other, message: "severed") }
            try inner.release(term)
        }
        func status() throws(PostgresError) -> LeaderLeaseStatus? { try inner.status() }
    }

    /// Terms as the callbacks saw them: who started and stopped leading, and when.
    final class Timeline: Sendable {
        let entries = Mutex<[(holder: String, event: String, at: ContinuousClock.Instant)]>([])
        func callbacks(_ holder: String) -> LeaderElector.Callbacks {
            LeaderElector.Callbacks(
                onStartedLeading: { _ in self.entries.withLock { $0.append((holder, "started", .now)) } },
                onStoppedLeading: { self.entries.withLock { $0.append((holder, "stopped", .now)) } })
        }
        /// Never two leaders at once: every start comes after the previous leader's stop.
        var overlaps: Bool {
            var leading: String?
            for entry in entries.withLock({ $0 }) {
                if entry.event == "started" {
                    if leading != nil { return true }
                    leading = entry.holder
                } else if entry.holder == leading {
                    leading = nil
                }
            }
            return false
        }
    }

    private func until(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < end {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition()
    }

    /// Two electors on one database: exactly one leads; when the leader is cut off (no more
    /// renewals, no release), it stops leading, and only then the other takes over, within the
    /// TTL of the leader's last renewal (plus the retry period and its jitter).
    @Test func exactlyOneLeadsAndACutOffLeaderIsReplacedWithinTheTTL() throws {
        let pool = try migratedPool()
        // The safety margin (a tenth: 400 ms) is what lets the cut-off leader's stop come before
        // the other's start even on a loaded machine.
        let ttl = Duration.seconds(4)
        let leases = ["a", "b"].map { SeverableLease(PostgresLeaderLease(pool: pool, holder: $0, ttl: ttl)) }
        let timeline = Timeline()
        let electors = leases.map { LeaderElector(lease: $0, logger: logger, callbacks: timeline.callbacks($0.holder)) }
        defer { electors.forEach { $0.stop() } }
        electors.forEach { $0.start() }
        #expect(until(10) { electors.contains { $0.isLeading } })
        Thread.sleep(forTimeInterval: 1)
        #expect(electors.filter(\.isLeading).count == 1)
        let leaderIndex = try #require(electors.firstIndex { $0.isLeading })
        let follower = electors[1 - leaderIndex]
        #expect(until(10) { follower.observedLeader == leases[leaderIndex].holder })
        let cutAt = ContinuousClock.now
        leases[leaderIndex].severed.store(true, ordering: .sequentiallyConsistent)
        #expect(until(20) { follower.isLeading })
        let tookOverAt = ContinuousClock.now
        // The last renewal came at most a third of the TTL before the cut; the follower asks
        // every retry period (2/15 of the TTL) plus up to 1.2 times that in jitter.
        #expect(tookOverAt - cutAt < ttl + ttl * 2 / 15 * 2.2 + .seconds(3))
        #expect(!electors[leaderIndex].isLeading)
        #expect(!timeline.overlaps)
        let status = try #require(try leases[0].status())
        #expect(status.holder == follower.identity && status.isHeld && status.generation == 2)
    }

    /// A clean stop releases the lease: the other replica takes over long before the TTL.
    @Test func aStoppedLeaderHandsOverAtOnce() throws {
        let pool = try migratedPool()
        let ttl = Duration.seconds(30)
        let leases = ["a", "b"].map { PostgresLeaderLease(pool: pool, holder: $0, ttl: ttl) }
        let timeline = Timeline()
        // Asking often (not every 4 s, the default for this TTL) shows the release, not the retry.
        var configuration = LeaderElector.Configuration(ttl: ttl)
        configuration.retryPeriod = .milliseconds(200)
        let electors = leases.map {
            LeaderElector(lease: $0, configuration: configuration, logger: logger, callbacks: timeline.callbacks($0.holder))
        }
        defer { electors.forEach { $0.stop() } }
        electors[0].start()
        #expect(until(10) { electors[0].isLeading })
        electors[1].start()
        Thread.sleep(forTimeInterval: 0.5)
        #expect(!electors[1].isLeading)
        let stoppedAt = ContinuousClock.now
        electors[0].stop()
        #expect(until(20) { electors[1].isLeading })
        // A third of the TTL: with the lease left to expire it would take the whole TTL.
        #expect(ContinuousClock.now - stoppedAt < ttl / 3)
        #expect(!timeline.overlaps)
        #expect(try leases[1].status()?.generation == 2)
    }
}
