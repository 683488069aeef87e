import Foundation
import Logging
import Synchronization
import Testing

@testable import Liveness

/// Answers from a table; never sends a query.
final class FakeResolver: Resolver {
    let answers = Mutex<[String: Result<[String], ResolveFailure>]>([:])
    let queries = Mutex<[String]>([])

    func resolve(_ host: String) -> Result<[String], ResolveFailure> {
        queries.withLock { $0.append(host) }
        return answers.withLock { $0[host] ?? .failure(.notFound) }
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

    @Test func refresherThreadStartsAndStops() {
        let resolver = FakeResolver()
        resolver.answers.withLock { $0["a.example.test"] = .success(["192.0.2.7"]) }
        let refresher = DNSRefresher(resolver: resolver, logger: Logger(label: "test"))
        refresher.start()
        refresher.update(namespace: "default", name: "a", hosts: ["a.example.test"], settings: .init(refreshSeconds: 30, graceSeconds: 300))
        #expect(eventually { refresher.resolution(namespace: "default", name: "a", host: "a.example.test")?.addresses == ["192.0.2.7"] })
        #expect(refresher.shutdown(deadline: .seconds(5)))
    }
}
