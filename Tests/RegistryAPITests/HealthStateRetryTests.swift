import Foundation
import Liveness
import Logging
import RegistryCore
import RegistryResources
import RegistryStorage
import Synchronization
import Testing

@testable import RegistryAPI

/// The leader's writes of health state (issue 16) when the database refuses some of them: a
/// verdict that does not change again must still reach the store, or the followers and the next
/// leader keep an older one for as long as the address stays as it is.
@Suite struct HealthStatePersisterTests {
    static let key = ServiceKey(namespace: "default", name: "rgw")
    /// Probed on 192.0.2.10:80 every second; one failure makes it unhealthy.
    static let service = ExternalService(
        namespace: key.namespace, name: key.name, ports: [ServicePort(port: 80)],
        addresses: EndpointAddressList([EndpointAddress(ip: "192.0.2.10")]),
        healthCheck: HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1, unhealthyThreshold: 1))

    /// A store, and a checker that holds one service with a health check on 192.0.2.10 (never
    /// started: nothing is probed, the address stays `unknown`).
    static func parts() throws -> (store: ServiceStore, liveness: HealthChecker, dns: DNSRefresher) {
        let directory = FileManager.default.temporaryDirectory.appending(path: "persister-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try ServiceStore(
            path: directory.appending(path: "p.sqlite").path(), migrations: try Migration.parse(RegistryResources.migrations))
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let liveness = HealthChecker(prober: TableProber(), logger: logger)
        liveness.update(namespace: key.namespace, name: key.name, service: service)
        return (store, liveness, DNSRefresher(resolver: TableResolver(), logger: logger))
    }

    /// Counts the writes tried and fails the first `failures` of them like an unreachable database.
    final class FlakySave: Sendable {
        let attempts = Atomic<Int>(0)
        let failures: Int
        let store: ServiceStore

        init(failures: Int, store: ServiceStore) {
            self.failures = failures
            self.store = store
        }

        func save(_ snapshots: [ServiceKey: [UInt8]?]) throws {
            let attempt = attempts.add(1, ordering: .sequentiallyConsistent).newValue
            if attempt <= failures {
                throw StoreError.fault(StorageFault(reason: .unavailable, message: "the database does not answer (test)"))
            }
            try store.saveHealthStates(snapshots)
        }
    }

    /// One change, three failed writes: the fourth try (after the backoff, with no further
    /// change) stores the snapshot, and nothing is written after it.
    @Test func aFailedWriteIsRetriedWithoutAnotherChange() throws {
        let (store, liveness, dns) = try Self.parts()
        let flaky = FlakySave(failures: 3, store: store)
        let persister = HealthStatePersister(
            store: store, liveness: liveness, dns: dns, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
            save: { try flaky.save($0) }, firstRetryDelay: .milliseconds(20), maxRetryDelay: .milliseconds(80))
        persister.resume()
        persister.changed([Self.key])
        #expect(eventually(10) { (try? store.healthStates(of: [Self.key]))?[Self.key] != nil })
        let stored = try #require(try store.healthStates(of: [Self.key])[Self.key])
        #expect(String(decoding: stored, as: UTF8.self).contains("192.0.2.10"))
        Thread.sleep(forTimeInterval: 0.3)
        #expect(flaky.attempts.load(ordering: .sequentiallyConsistent) == 4)
    }

    /// A leader whose first load of the registrations failed: the services a late load brings
    /// continue from their stored verdicts, which no write of `unknown` replaces — also when the
    /// late load fails after a first page (`failsPartway`).
    @Test(arguments: [false, true])
    func aLateLoadContinuesFromTheStoredVerdicts(failsPartway: Bool) throws {
        let (store, _, dns) = try Self.parts()
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        // The last leader's verdict: 192.0.2.10 unhealthy.
        let failing = TableProber()
        failing.failing.withLock { $0 = [ProbeTarget(ip: "192.0.2.10", port: 80)] }
        let previous = HealthChecker(prober: failing, logger: logger)
        previous.update(namespace: Self.key.namespace, name: Self.key.name, service: Self.service)
        previous.start()
        defer { previous.shutdown(deadline: .seconds(1)) }
        #expect(eventually(10) { String(decoding: previous.snapshot(of: Self.key) ?? [], as: UTF8.self).contains(#""unhealthy""#) })
        try store.saveHealthStates([Self.key: StoredLiveness.snapshot(of: Self.key, liveness: previous, dns: dns)])

        let liveness = HealthChecker(prober: TableProber(), logger: logger)
        let persister = HealthStatePersister(store: store, liveness: liveness, dns: dns, logger: logger)
        liveness.onChange { keys in persister.changed(keys) }
        persister.resume(registrationsLoaded: false)
        // Kept although the checker does not know the service yet.
        #expect(try store.healthStates(of: [Self.key])[Self.key] != nil)
        let result = persister.loadingLate { _ throws(StoreError) in
            liveness.update(namespace: Self.key.namespace, name: Self.key.name, service: Self.service)
            if failsPartway { throw StoreError.fault(StorageFault(reason: .unavailable, message: "the second page failed (test)")) }
        }
        #expect(result.brought == [Self.key] && result.restored == [Self.key])
        #expect((result.failure != nil) == failsPartway)
        #expect(String(decoding: liveness.snapshot(of: Self.key) ?? [], as: UTF8.self).contains(#""unhealthy""#))
        // `pause()` writes what is pending before it returns: the restored verdict.
        persister.pause()
        let stored = try #require(try store.healthStates(of: [Self.key])[Self.key])
        #expect(String(decoding: stored, as: UTF8.self).contains(#"unhealthy"#))
    }

    /// A replica that stops leading drops what failed: no retry writes after `pause()`.
    @Test func noRetryOnceLeadingStopped() throws {
        let (store, liveness, dns) = try Self.parts()
        let flaky = FlakySave(failures: .max, store: store)
        let persister = HealthStatePersister(
            store: store, liveness: liveness, dns: dns, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
            save: { try flaky.save($0) }, firstRetryDelay: .milliseconds(50), maxRetryDelay: .milliseconds(50))
        persister.resume()
        persister.changed([Self.key])
        #expect(eventually(10) { flaky.attempts.load(ordering: .sequentiallyConsistent) >= 2 })
        persister.pause()
        let attempts = flaky.attempts.load(ordering: .sequentiallyConsistent)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(flaky.attempts.load(ordering: .sequentiallyConsistent) == attempts)
    }
}

/// The health checker's targets from registrations and DNS changes: a read that fails after a
/// DNS change is tried again until it can, with what is registered then; commits and DNS changes
/// in any order never leave the checker with an older view than the newest.
@Suite struct LivenessTargetsTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Revision `revision` of `uid` with a TCP check of port 80 on `ips`.
    static func record(_ uid: String, _ revision: Int, _ ips: [String], name: String = HealthStatePersisterTests.key.name) -> ServiceRecord {
        ServiceRecord(
            service: ExternalService(
                namespace: HealthStatePersisterTests.key.namespace, name: name, ports: [ServicePort(port: 80)],
                addresses: EndpointAddressList(ips.map { EndpointAddress(ip: $0) }),
                healthCheck: HealthCheck(type: .tcp, intervalSeconds: 5, timeoutSeconds: 1)),
            uid: uid, revision: revision, createdAt: "2026-12-05T00:00:00Z", updatedAt: "2026-12-05T00:00:00Z")
    }

    /// The IPs the checker probes for the service `key`, sorted.
    static func probed(_ liveness: HealthChecker, _ key: ServiceKey = HealthStatePersisterTests.key) -> [String] {
        (liveness.report(namespace: key.namespace, name: key.name)?.addresses.map(\.target.ip) ?? []).sorted()
    }

    @Test func aFailedReadIsRetriedUntilTheCheckerHasTheTargets() throws {
        let (store, liveness, dns) = try HealthStatePersisterTests.parts()
        let key = HealthStatePersisterTests.key
        let reads = Atomic<Int>(0)
        let readable = Atomic<Bool>(true)
        // What the store holds: first 192.0.2.10; then (standing for a name that now resolves
        // elsewhere, the same revision) 192.0.2.20.
        let stored = Mutex(Self.record("u1", 1, ["192.0.2.10"]))
        let sync = LivenessTargets(
            store: store, liveness: liveness, dns: dns, logger: Self.logger,
            read: { _ in
                reads.add(1, ordering: .sequentiallyConsistent)
                guard readable.load(ordering: .sequentiallyConsistent) else {
                    throw StoreError.fault(StorageFault(reason: .unavailable, message: "the database does not answer (test)"))
                }
                return stored.withLock { $0 }
            }, firstRetryDelay: .milliseconds(20), maxRetryDelay: .milliseconds(40))
        sync.follow(Self.record("u1", 1, ["192.0.2.10"]), key: key)
        #expect(Self.probed(liveness) == ["192.0.2.10"])
        stored.withLock { $0 = Self.record("u1", 1, ["192.0.2.20"]) }
        readable.store(false, ordering: .sequentiallyConsistent)
        let before = reads.load(ordering: .sequentiallyConsistent)
        sync.resolutionChanged(namespace: key.namespace, name: key.name)
        // The read failed: the checker still has the old address, and the read is tried again.
        #expect(Self.probed(liveness) == ["192.0.2.10"])
        #expect(eventually(10) { reads.load(ordering: .sequentiallyConsistent) >= before + 3 })
        readable.store(true, ordering: .sequentiallyConsistent)
        #expect(eventually(10) { Self.probed(liveness) == ["192.0.2.20"] })
        // Once it succeeded, nothing more is read.
        Thread.sleep(forTimeInterval: 0.1)
        let done = reads.load(ordering: .sequentiallyConsistent)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(reads.load(ordering: .sequentiallyConsistent) == done)
    }

    /// The observers of two commits may run out of order (a synchronous write's run after its
    /// fsync; an observer's own write runs those of the writes it commits first): an older
    /// revision is skipped, and a record whose order cannot be told from it (another uid, a
    /// deletion, a service not followed yet) is checked against the store.
    @Test func commitsFollowedOutOfOrderLeaveTheNewestApplied() throws {
        let (store, liveness, dns) = try HealthStatePersisterTests.parts()
        let key = HealthStatePersisterTests.key
        liveness.update(namespace: key.namespace, name: key.name, service: nil)
        let stored = Mutex<ServiceRecord?>(nil)
        let reads = Atomic<Int>(0)
        let targets = LivenessTargets(
            store: store, liveness: liveness, dns: dns, logger: Self.logger,
            read: { _ in
                reads.add(1, ordering: .sequentiallyConsistent)
                return stored.withLock { $0 }
            })
        // Created (revision 1), then changed (2): revision 2's observer first.
        stored.withLock { $0 = Self.record("u1", 2, ["192.0.2.12"]) }
        targets.follow(Self.record("u1", 2, ["192.0.2.12"]), key: key)
        targets.follow(Self.record("u1", 1, ["192.0.2.11"]), key: key)
        #expect(Self.probed(liveness) == ["192.0.2.12"])
        // Known revisions of the same uid are ordered without a read.
        let afterCreation = reads.load(ordering: .sequentiallyConsistent)
        stored.withLock { $0 = Self.record("u1", 3, ["192.0.2.13"]) }
        targets.follow(Self.record("u1", 3, ["192.0.2.13"]), key: key)
        #expect(reads.load(ordering: .sequentiallyConsistent) == afterCreation)
        #expect(Self.probed(liveness) == ["192.0.2.13"])
        // Deleted and created again (uid u2): the deletion's observer last.
        stored.withLock { $0 = Self.record("u2", 1, ["192.0.2.21"]) }
        targets.follow(Self.record("u2", 1, ["192.0.2.21"]), key: key)
        targets.follow(nil, key: key)
        #expect(Self.probed(liveness) == ["192.0.2.21"])
        // Deleted: a change of the deleted registration whose observer comes last is not applied.
        stored.withLock { $0 = nil }
        targets.follow(nil, key: key)
        #expect(Self.probed(liveness).isEmpty)
        targets.follow(Self.record("u2", 2, ["192.0.2.22"]), key: key)
        #expect(Self.probed(liveness).isEmpty)
        #expect(targets.followedCount == 0)
        // A service with neither a health check nor `host` names is not followed (no entry, no read).
        var plain = Self.record("u3", 1, ["192.0.2.31"])
        plain.service.healthCheck = nil
        let beforePlain = reads.load(ordering: .sequentiallyConsistent)
        targets.follow(plain, key: key)
        #expect(reads.load(ordering: .sequentiallyConsistent) == beforePlain && targets.followedCount == 0)
    }

    /// A service registered with a `host` address while its first answer arrives: the commit's
    /// update and the DNS change's update race, in every round. However they interleave, the
    /// checker ends up probing the resolved IP; were the commit's view (with the answers known
    /// when it began: none) applied after the change's, no later answer (the same) would bring
    /// the IP back and it would stay unprobed (seen as `unknown` for as long as the name
    /// resolves). The service's 2,000 fixed IPs make each update take long enough for the two
    /// to overlap.
    @Test func aCommitRacingTheFirstAnswerNeverTakesTheResolvedIPAway() throws {
        let (store, _, _) = try HealthStatePersisterTests.parts()
        let resolver = TableResolver()
        let liveness = HealthChecker(prober: TableProber(), logger: Self.logger)
        let dns = DNSRefresher(resolver: resolver, logger: Self.logger)
        let registrations = Mutex<[ServiceKey: ServiceRecord]>([:])
        let targets = LivenessTargets(
            store: store, liveness: liveness, dns: dns, logger: Self.logger, read: { key in registrations.withLock { $0[key] } })
        dns.onChange { namespace, name in targets.resolutionChanged(namespace: namespace, name: name) }
        let fixed = (0..<2000).map { EndpointAddress(ip: "198.51.\(100 + $0 / 250).\($0 % 250 + 1)") }
        for round in 0..<100 {
            let (host, ip) = ("db-\(round).registry.test", "192.0.2.\(round % 250 + 1)")
            resolver.answers.withLock { $0[host] = .success([ip]) }
            var registration = Self.record("u\(round)", 1, [], name: "db-\(round)")
            registration.service.addresses = EndpointAddressList(fixed + [EndpointAddress(host: host)])
            let record = registration
            let key = ServiceKey(namespace: record.service.namespace, name: record.service.name)
            registrations.withLock { $0[key] = record }
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                if index == 0 {
                    targets.follow(record, key: key)
                } else {
                    // The refresher's side: resolves the name as soon as the commit made it due.
                    let limit = ContinuousClock.now.advanced(by: .seconds(10))
                    while dns.resolution(namespace: key.namespace, name: key.name, host: host)?.resolvedAt == nil, ContinuousClock.now < limit {
                        dns.refreshDue()
                    }
                }
            }
            let probed = Self.probed(liveness, key)
            #expect(probed.count == 2001 && probed.contains(ip), "round \(round): \(probed.count) targets")
            if !probed.contains(ip) { break }
        }
    }
}

/// The backoff of background retries.
@Suite struct RetryTimerTests {
    /// Failures while a retry waits add none; the delay doubles up to the maximum; a success
    /// starts it over; after `stop()` nothing runs.
    @Test func oneRetryWaitsAtATimeAndStopEndsThem() {
        // The queue is held while the failures are told, so that no retry runs in between
        // however slow this thread is.
        let queue = DispatchQueue(label: "test")
        let timer = RetryTimer(queue: queue, first: .milliseconds(30), maximum: .milliseconds(60))
        let runs = Atomic<Int>(0)
        queue.suspend()
        let delays = (0..<5).map { _ in timer.failed { runs.add(1, ordering: .sequentiallyConsistent) } }
        queue.resume()
        #expect(delays == [.milliseconds(30), .milliseconds(60), .milliseconds(60), .milliseconds(60), .milliseconds(60)])
        #expect(eventually(5) { runs.load(ordering: .sequentiallyConsistent) == 1 })
        Thread.sleep(forTimeInterval: 0.2)
        #expect(runs.load(ordering: .sequentiallyConsistent) == 1)
        timer.succeeded()
        queue.suspend()
        #expect(timer.failed { runs.add(1, ordering: .sequentiallyConsistent) } == .milliseconds(30))
        timer.stop()
        queue.resume()
        Thread.sleep(forTimeInterval: 0.2)
        #expect(runs.load(ordering: .sequentiallyConsistent) == 1)
        #expect(timer.failed { runs.add(1, ordering: .sequentiallyConsistent) } == nil)
        Thread.sleep(forTimeInterval: 0.1)
        #expect(runs.load(ordering: .sequentiallyConsistent) == 1)
    }
}
