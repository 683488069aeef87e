import Foundation
import Logging
import Synchronization
import Testing

@testable import Liveness
import RegistryCore
import RegistryStorage

/// Answers from a table; never sends a query.
final class FakeResolver: Resolver {
    let answers = Mutex<[String: Result<[String], ResolveFailure>]>([:])
    let ttls = Mutex<[String: Int]>([:])
    let queries = Mutex<[String]>([])

    func resolve(_ host: String) -> Result<ResolvedAddresses, ResolveFailure> {
        queries.withLock { $0.append(host) }
        let ttl = ttls.withLock { $0[host] }
        return answers.withLock { $0[host] ?? .failure(.notFound) }.map { ResolvedAddresses(addresses: $0, ttlSeconds: ttl) }
    }
}

/// Answers 192.0.2.9 for every name but `blocked`, whose lookup waits until `release()`.
final class BlockingResolver: Resolver {
    let blocked: String
    let started = Mutex<[String]>([])
    private let gate = DispatchSemaphore(value: 0)

    init(blocked: String) { self.blocked = blocked }

    func release() { gate.signal() }

    func resolve(_ host: String) -> Result<ResolvedAddresses, ResolveFailure> {
        started.withLock { $0.append(host) }
        if host == blocked { gate.wait() }
        return .success(ResolvedAddresses(addresses: ["192.0.2.9"]))
    }
}

/// Answers each name with its own address after `delay` seconds; counts the lookups done.
final class SlowResolver: Resolver {
    let delay: Double
    let queries = Mutex(0)

    init(delay: Double) { self.delay = delay }

    func resolve(_ host: String) -> Result<ResolvedAddresses, ResolveFailure> {
        Thread.sleep(forTimeInterval: delay)
        let count = queries.withLock { count in
            count += 1
            return count
        }
        return .success(ResolvedAddresses(addresses: ["192.0.2.\(count)"]))
    }
}

final class Clock: Sendable {
    let time = Mutex(Date(timeIntervalSince1970: 1_000_000))
    func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
}

@Suite struct DNSRefresherTests {
    let start = Date(timeIntervalSince1970: 1_000_000)

    @Test func keepsTheLastGoodAnswerThroughFailuresAndNXDOMAINForTheGracePeriod() {
        var resolution = HostResolution()
        do {
            let changed = resolution.record(.success(["192.0.2.2", "192.0.2.1", "2001:DB8::1"]), at: start, graceSeconds: 300)
            #expect(changed)
        }
        #expect(resolution.addresses == ["192.0.2.1", "192.0.2.2", "2001:db8::1"])
        // A failure keeps the last good answer and reports the error.
        do {
            let changed = resolution.record(.failure(.failed("SERVFAIL")), at: start + 30, graceSeconds: 300)
            #expect(!changed)
        }
        #expect(resolution.addresses.count == 3 && resolution.error == .failed("SERVFAIL") && resolution.resolvedAt == start)
        // NXDOMAIN: kept within the grace period, then none.
        do {
            let changed = resolution.record(.failure(.notFound), at: start + 60, graceSeconds: 300)
            #expect(!changed)
        }
        do {
            let changed = resolution.record(.failure(.notFound), at: start + 359, graceSeconds: 300)
            #expect(!changed)
        }
        #expect(resolution.addresses.count == 3 && !resolution.expired)
        do {
            let changed = resolution.record(.failure(.notFound), at: start + 360, graceSeconds: 300)
            #expect(changed)
        }
        #expect(resolution.addresses.isEmpty && resolution.expired && resolution.notFoundSince == start + 60)
        // The name comes back.
        do {
            let changed = resolution.record(.success(["192.0.2.9"]), at: start + 400, graceSeconds: 300)
            #expect(changed)
        }
        #expect(resolution.addresses == ["192.0.2.9"] && resolution.error == nil && !resolution.expired)
    }

    @Test func dropsAddressesTheAPIServerRefuses() {
        var resolution = HostResolution()
        _ = resolution.record(.success(["127.0.0.1", "169.254.1.1", "fe80::1", "192.0.2.1"]), at: start, graceSeconds: 300)
        #expect(resolution.addresses == ["192.0.2.1"])
        #expect(Set(resolution.dropped.keys) == ["127.0.0.1", "169.254.1.1", "fe80::1"])
    }

    @Test func refresherResolvesNewNamesAndTellsWhatChanged() {
        let resolver = FakeResolver()
        let clock = Clock()
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"), now: { clock.time.withLock { $0 } })
        let changed = Mutex<[String]>([])
        refresher.onChange { namespace, name in changed.withLock { $0.append("\(namespace)/\(name)") } }
        resolver.answers.withLock { $0["db.example.test"] = .success(["192.0.2.5"]) }
        let settings = DNSRefresher.Settings(refreshSeconds: 30, graceSeconds: 300)
        refresher.update(namespace: "default", name: "db", hosts: ["db.example.test"], settings: settings)
        #expect(refresher.refreshDue().count == 1)
        #expect(changed.withLock { $0 } == ["default/db"])
        #expect(refresher.resolution(namespace: "default", name: "db", host: "db.example.test")?.addresses == ["192.0.2.5"])
        // Not due again before its interval: no query.
        #expect(refresher.refreshDue().isEmpty)
        #expect(resolver.queries.withLock { $0.count } == 1)
        // Forgotten when no longer used.
        refresher.update(namespace: "default", name: "db", hosts: [], settings: settings)
        #expect(refresher.resolution(namespace: "default", name: "db", host: "db.example.test") == nil)
    }

    /// The schedule (a heap with stale items skipped): each name once per round, a shorter
    /// `dnsRefreshSeconds` brings a name forward, a removed name is not resolved, a name added
    /// again is resolved once, and the same name in two services is two entries.
    @Test func theScheduleResolvesEachDueNameOnceAndForgetsRemovedOnes() {
        let resolver = FakeResolver()
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"), jitter: 0)
        let names = (0..<50).map { "h\($0).example.test" }
        resolver.answers.withLock { answers in for (index, name) in names.enumerated() { answers[name] = .success(["192.0.2.\(index + 1)"]) } }
        let slow = DNSRefresher.Settings(refreshSeconds: 3600, graceSeconds: 300)
        refresher.update(namespace: "default", name: "a", hosts: Set(names), settings: slow)
        refresher.update(namespace: "default", name: "b", hosts: [names[0]], settings: slow)
        refresher.refreshDue()
        #expect(resolver.queries.withLock { $0.count } == 51)
        #expect(Set(resolver.queries.withLock { $0 }) == Set(names))
        #expect(refresher.addresses(namespace: "default", name: "b") == [names[0]: ["192.0.2.1"]])
        #expect(refresher.resolvingServices == [ServiceKey(namespace: "default", name: "a"), ServiceKey(namespace: "default", name: "b")])
        // Nothing due; then a name removed and added again is resolved once, at once.
        refresher.update(namespace: "default", name: "a", hosts: Set(names.dropFirst()), settings: slow)
        refresher.update(namespace: "default", name: "a", hosts: Set(names), settings: slow)
        resolver.queries.withLock { $0 = [] }
        refresher.refreshDue()
        #expect(resolver.queries.withLock { $0 } == [names[0]])
        // Removed names are not resolved again, however often they were rescheduled.
        refresher.update(namespace: "default", name: "a", hosts: [], settings: slow)
        refresher.update(namespace: "default", name: "b", hosts: [], settings: slow)
        #expect(refresher.hostCount == 0 && refresher.resolvingServices.isEmpty)
        // A shorter interval applies at once: due within 5 s instead of an hour.
        refresher.update(namespace: "default", name: "c", hosts: [names[1]], settings: slow)
        refresher.refreshDue()
        refresher.update(namespace: "default", name: "c", hosts: [names[1]], settings: .init(refreshSeconds: 5, graceSeconds: 300))
        let next = refresher.reports(namespace: "default", name: "c")[names[1]]?.nextAttempt
        #expect(next.map { $0.timeIntervalSinceNow <= 6 } == true)
    }

    /// A name whose lookup hangs (servers that do not answer, up to the resolver's deadline)
    /// holds up one refresher thread, not the other names.
    @Test func aHangingLookupDoesNotHoldUpTheOtherNames() {
        let resolver = BlockingResolver(blocked: "hang.example.test")
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"))
        let settings = DNSRefresher.Settings(refreshSeconds: 30, graceSeconds: 300)
        refresher.start()
        refresher.update(namespace: "default", name: "a", hosts: ["hang.example.test"], settings: settings)
        #expect(eventually { resolver.started.withLock { $0.contains("hang.example.test") } })
        refresher.update(namespace: "default", name: "b", hosts: ["ok.example.test"], settings: settings)
        #expect(eventually { refresher.resolution(namespace: "default", name: "b", host: "ok.example.test")?.addresses == ["192.0.2.9"] })
        resolver.release()
        #expect(refresher.shutdown(deadline: .seconds(5)))
    }

    /// While names keep falling due (a long backlog), the changes found so far are told at
    /// least every `notifyEvery`, not once the backlog is done.
    @Test func changesAreToldWhileTheBacklogIsResolved() {
        let resolver = SlowResolver(delay: 0.2)
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"))
        let told = Mutex<[String: Int]>([:])
        refresher.onChange { _, name in
            let done = resolver.queries.withLock { $0 }
            told.withLock { $0[name] = $0[name] ?? done }
        }
        let settings = DNSRefresher.Settings(refreshSeconds: 30, graceSeconds: 300)
        refresher.update(namespace: "default", name: "first", hosts: ["h0.example.test"], settings: settings)
        refresher.update(
            namespace: "default", name: "rest", hosts: Set((1..<10).map { "h\($0).example.test" }), settings: settings)
        refresher.refreshDue()
        // "first" was told after at most about notifyEvery (3 lookups of 0.2 s), not after all 10.
        #expect((told.withLock { $0["first"] } ?? 10) < 10)
        #expect(told.withLock { $0["rest"] } != nil)
    }

    @Test func refresherThreadStartsAndStops() {
        let resolver = FakeResolver()
        resolver.answers.withLock { $0["a.example.test"] = .success(["192.0.2.7"]) }
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"))
        refresher.start()
        refresher.update(namespace: "default", name: "a", hosts: ["a.example.test"], settings: .init(refreshSeconds: 30, graceSeconds: 300))
        #expect(eventually { refresher.resolution(namespace: "default", name: "a", host: "a.example.test")?.addresses == ["192.0.2.7"] })
        #expect(refresher.shutdown(deadline: .seconds(5)))
    }

    /// Stopped and started again (leadership lost, then regained): names are resolved again.
    @Test func refresherStartsAgainAfterShutdown() {
        let resolver = FakeResolver()
        resolver.answers.withLock { $0["a.example.test"] = .success(["192.0.2.7"]) }
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"))
        refresher.start()
        #expect(refresher.shutdown(deadline: .seconds(5)))
        refresher.update(namespace: "default", name: "a", hosts: ["a.example.test"], settings: .init(refreshSeconds: 30, graceSeconds: 300))
        Thread.sleep(forTimeInterval: 0.3)
        #expect(resolver.queries.withLock { $0.isEmpty })
        refresher.start()
        #expect(eventually { refresher.resolution(namespace: "default", name: "a", host: "a.example.test")?.addresses == ["192.0.2.7"] })
        #expect(refresher.shutdown(deadline: .seconds(5)))
    }

    @Test func theNextResolutionHonoursTheTTLWithinTheFloorAndTheServiceInterval() throws {
        let resolver = FakeResolver()
        let clock = Clock()
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"), jitter: 0, now: { clock.time.withLock { $0 } })
        let settings = DNSRefresher.Settings(refreshSeconds: 30, graceSeconds: 300)
        resolver.answers.withLock {
            $0["short.example.test"] = .success(["192.0.2.1"])
            $0["zero.example.test"] = .success(["192.0.2.2"])
            $0["long.example.test"] = .success(["192.0.2.3"])
            $0["none.example.test"] = .success(["192.0.2.4"])
        }
        resolver.ttls.withLock { $0 = ["short.example.test": 12, "zero.example.test": 0, "long.example.test": 86_400] }
        refresher.update(
            namespace: "default", name: "db", hosts: ["short.example.test", "zero.example.test", "long.example.test", "none.example.test"],
            settings: settings)
        refresher.refreshDue()
        let reports = refresher.reports(namespace: "default", name: "db")
        func delay(_ host: String) throws -> Double {
            try #require(reports[host]?.nextAttempt).timeIntervalSince(clock.time.withLock { $0 })
        }
        // Within a second: the wall clock is fixed, the monotonic one moves a little.
        #expect(abs(try delay("short.example.test") - 12) < 1)
        #expect(abs(try delay("zero.example.test") - 5) < 1)
        #expect(abs(try delay("long.example.test") - 30) < 1)
        #expect(abs(try delay("none.example.test") - 30) < 1)
        #expect(reports["short.example.test"]?.resolution.ttlSeconds == 12)
    }

    @Test func conditionsNameTheFailingAndMissingHostsAndTheGracePeriod() {
        let resolver = FakeResolver()
        let clock = Clock()
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"), jitter: 0, now: { clock.time.withLock { $0 } })
        resolver.answers.withLock {
            $0["a.example.test"] = .success(["192.0.2.1"])
            $0["b.example.test"] = .success(["192.0.2.2"])
        }
        refresher.update(
            namespace: "ns", name: "svc", hosts: ["a.example.test", "b.example.test"], settings: .init(refreshSeconds: 5, graceSeconds: 0))
        refresher.refreshDue()
        #expect(refresher.conditions(namespace: "ns", name: "svc").isEmpty)
        let epoch = refresher.epoch(namespace: "ns", name: "svc")
        #expect(epoch > 0)
        resolver.answers.withLock {
            $0["a.example.test"] = .failure(.failed("SERVFAIL"))
            $0["b.example.test"] = .failure(.notFound)
        }
        // Make both due now (a shorter interval applies at once; 0 is not allowed, so re-add them).
        refresher.update(namespace: "ns", name: "svc", hosts: [], settings: .init(refreshSeconds: 5, graceSeconds: 0))
        refresher.update(
            namespace: "ns", name: "svc", hosts: ["a.example.test", "b.example.test"], settings: .init(refreshSeconds: 5, graceSeconds: 0))
        refresher.refreshDue()
        let conditions = refresher.conditions(namespace: "ns", name: "svc")
        #expect(conditions.map(\.type) == [DNSCondition.resolutionFailed, DNSCondition.nameNotFound])
        #expect(conditions.first?.message.contains("a.example.test") == true)
        // Grace 0: the NXDOMAIN name renders none at once; re-added names have no last answer.
        #expect(conditions.last?.reason == "GracePeriodExpired")
        #expect(refresher.addresses(namespace: "ns", name: "svc") == ["a.example.test": [], "b.example.test": []])
    }

    @Test func resolvedViewExpandsHostsAndDropsSpecialUseAddresses() {
        let resolver = FakeResolver()
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"))
        resolver.answers.withLock { $0["db.example.test"] = .success(["192.0.2.5", "127.0.0.1", "fe80::1", "2001:db8::5"]) }
        let service = ExternalService(
            namespace: "default", name: "db", ports: [ServicePort(port: 5432)],
            addresses: [EndpointAddress(ip: "192.0.2.1"), EndpointAddress(host: "db.example.test", zone: "z1")])
        // Before the first answer: the host renders nothing.
        #expect(refresher.resolved(service).addresses.map(\.ip) == ["192.0.2.1"])
        refresher.update(namespace: "default", name: "db", hosts: service.hosts, settings: .init(service))
        refresher.refreshDue()
        let resolved = refresher.resolved(service)
        #expect(resolved.addresses.map(\.ip) == ["192.0.2.1", "192.0.2.5", "2001:db8::5"])
        #expect(resolved.addresses.dropFirst().allSatisfy { $0.zone == "z1" && $0.host == "db.example.test" })
        #expect(
            Set(refresher.resolution(namespace: "default", name: "db", host: "db.example.test")?.dropped.keys ?? [:].keys) == [
                "127.0.0.1", "fe80::1",
            ])
    }
}

/// Issue 16: the answers survive a change of leader (snapshot, then restore into another refresher).
@Suite struct DNSSnapshotTests {
    let key = ServiceKey(namespace: "ns", name: "db")
    let settings = DNSRefresher.Settings(refreshSeconds: 30, graceSeconds: 300)

    @Test func aNewRefresherTakesTheStoredAnswersUnlessItsOwnAreNewer() throws {
        let resolver = FakeResolver()
        resolver.answers.withLock { $0["db.example.test"] = .success(["192.0.2.7"]) }
        let clock = Clock()
        let first = DNSRefresher(resolver: resolver, logger: Logger(label: "test"), now: { clock.time.withLock { $0 } })
        first.update(namespace: "ns", name: "db", hosts: ["db.example.test"], settings: settings)
        #expect(first.snapshot(of: key) == nil, "nothing attempted yet: nothing to store")
        first.refreshDue()
        let snapshot = try #require(first.snapshot(of: key))

        // The next leader cannot resolve the name: the stored answer is what it renders.
        let failing = FakeResolver()
        failing.answers.withLock { $0["db.example.test"] = .failure(.failed("SERVFAIL")) }
        let next = DNSRefresher(resolver: failing, logger: Logger(label: "test"), now: { clock.time.withLock { $0 } })
        next.update(namespace: "ns", name: "db", hosts: ["db.example.test"], settings: settings)
        let told = Mutex<[String]>([])
        next.onChange { namespace, name in told.withLock { $0.append("\(namespace)/\(name)") } }
        #expect(next.restore([key: snapshot, ServiceKey(namespace: "ns", name: "gone"): snapshot]) == [key])
        #expect(next.addresses(namespace: "ns", name: "db") == ["db.example.test": ["192.0.2.7"]])
        #expect(told.withLock { $0 } == ["ns/db"])
        #expect(next.epoch(namespace: "ns", name: "db") == 1)
        // Its own later attempt keeps the last good answer; an older snapshot does not replace it.
        clock.advance(60)
        next.refreshDue()
        #expect(next.resolution(namespace: "ns", name: "db", host: "db.example.test")?.error == .failed("SERVFAIL"))
        #expect(next.restore([key: snapshot]).isEmpty)
        #expect(next.addresses(namespace: "ns", name: "db") == ["db.example.test": ["192.0.2.7"]])
        // Not a snapshot: ignored.
        #expect(next.restore([key: Array("[]".utf8)]).isEmpty)
    }
}
