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
/// DNS change is tried again until it can, with what is registered then; a commit and a DNS
/// change at the same time never leave the checker with the older view.
@Suite struct LivenessTargetsTests {
    @Test func aFailedReadIsRetriedUntilTheCheckerHasTheTargets() throws {
        let (store, liveness, dns) = try HealthStatePersisterTests.parts()
        let key = HealthStatePersisterTests.key
        let reads = Atomic<Int>(0)
        let readable = Atomic<Bool>(false)
        let moved = ExternalService(
            namespace: key.namespace, name: key.name, ports: [ServicePort(port: 80)],
            addresses: EndpointAddressList([EndpointAddress(ip: "192.0.2.20")]),
            healthCheck: HealthCheck(type: .tcp, intervalSeconds: 5, timeoutSeconds: 1))
        let sync = LivenessTargets(
            store: store, liveness: liveness, dns: dns, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
            read: { _ in
                reads.add(1, ordering: .sequentiallyConsistent)
                guard readable.load(ordering: .sequentiallyConsistent) else {
                    throw StoreError.fault(StorageFault(reason: .unavailable, message: "the database does not answer (test)"))
                }
                return moved
            }, firstRetryDelay: .milliseconds(20), maxRetryDelay: .milliseconds(40))
        sync.resolutionChanged(namespace: key.namespace, name: key.name)
        // The read failed: the checker still has the old address, and the read is tried again.
        #expect(String(decoding: liveness.snapshot(of: key) ?? [], as: UTF8.self).contains("192.0.2.10"))
        #expect(eventually(10) { reads.load(ordering: .sequentiallyConsistent) >= 3 })
        readable.store(true, ordering: .sequentiallyConsistent)
        #expect(
            eventually(10) {
                let snapshot = String(decoding: liveness.snapshot(of: key) ?? [], as: UTF8.self)
                return snapshot.contains("192.0.2.20") && !snapshot.contains("192.0.2.10")
            })
        // Once it succeeded, nothing more is read.
        Thread.sleep(forTimeInterval: 0.1)
        let done = reads.load(ordering: .sequentiallyConsistent)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(reads.load(ordering: .sequentiallyConsistent) == done)
    }

    /// A service registered with a `host` address while its first answer arrives: the commit's
    /// update (with the answers known when it began: none) and the DNS change's update race, in
    /// every round. However they interleave, the checker ends up probing the resolved IP; were
    /// the commit's view applied after the change's, no later answer (the same) would bring the
    /// IP back and it would stay unprobed (seen as `unknown` for as long as the name resolves).
    /// The service's 2,000 fixed IPs make each update take long enough for the two to overlap.
    @Test func aCommitRacingTheFirstAnswerNeverTakesTheResolvedIPAway() throws {
        let (store, _, _) = try HealthStatePersisterTests.parts()
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let resolver = TableResolver()
        let liveness = HealthChecker(prober: TableProber(), logger: logger)
        let dns = DNSRefresher(resolver: resolver, logger: logger)
        let registrations = Mutex<[ServiceKey: ExternalService]>([:])
        let targets = LivenessTargets(store: store, liveness: liveness, dns: dns, logger: logger, read: { key in registrations.withLock { $0[key] } })
        dns.onChange { namespace, name in targets.resolutionChanged(namespace: namespace, name: name) }
        let fixed = (0..<2000).map { EndpointAddress(ip: "198.51.\(100 + $0 / 250).\($0 % 250 + 1)") }
        for round in 0..<100 {
            let (host, ip) = ("db-\(round).registry.test", "192.0.2.\(round % 250 + 1)")
            resolver.answers.withLock { $0[host] = .success([ip]) }
            let service = ExternalService(
                namespace: "default", name: "db-\(round)", ports: [ServicePort(port: 80)],
                addresses: EndpointAddressList(fixed + [EndpointAddress(host: host)]),
                healthCheck: HealthCheck(type: .tcp, intervalSeconds: 5, timeoutSeconds: 1))
            registrations.withLock { $0[ServiceKey(namespace: service.namespace, name: service.name)] = service }
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                if index == 0 {
                    targets.follow(service, namespace: service.namespace, name: service.name)
                } else {
                    // The refresher's side: resolves the name as soon as the commit made it due.
                    let limit = ContinuousClock.now.advanced(by: .seconds(10))
                    while dns.resolution(namespace: service.namespace, name: service.name, host: host)?.resolvedAt == nil,
                        ContinuousClock.now < limit
                    {
                        dns.refreshDue()
                    }
                }
            }
            let probed = liveness.report(namespace: service.namespace, name: service.name)?.addresses.map(\.target.ip) ?? []
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
