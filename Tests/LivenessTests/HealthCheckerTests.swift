import Foundation
import Logging
import RegistryCore
import RegistryStorage
import Synchronization
import Testing

@testable import Liveness

/// A prober that never touches the network: answers from a table, optionally slowly, and
/// records concurrency and call times.
final class FakeProber: BlockingProber {
    struct State {
        var failing: Set<ProbeTarget> = []
        var calls: [ProbeTarget: [ContinuousClock.Instant]] = [:]
        var current = 0
        var maxConcurrent = 0
    }

    let state = Mutex(State())
    let delay: Duration

    init(delay: Duration = .zero) {
        self.delay = delay
    }

    func setFailing(_ targets: Set<ProbeTarget>) { state.withLock { $0.failing = targets } }

    func probeSynchronously(_ target: ProbeTarget, check: HealthCheck) -> Result<Void, ProbeFailure> {
        let fail = state.withLock { state in
            state.current += 1
            state.maxConcurrent = max(state.maxConcurrent, state.current)
            state.calls[target, default: []].append(ContinuousClock.now)
            return state.failing.contains(target)
        }
        if delay > .zero { Thread.sleep(forTimeInterval: Double(delay.components.attoseconds) / 1e18 + Double(delay.components.seconds)) }
        state.withLock { $0.current -= 1 }
        return fail ? .failure(.refused("fake")) : .success(())
    }
}

final class Changes: Sendable {
    let keys = Mutex<[ServiceKey]>([])
}

/// Polls `condition` every 20 ms for up to `seconds`.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return condition()
}

func service(_ ips: [String], check: HealthCheck?, ready: [Bool]? = nil) -> ExternalService {
    ExternalService(
        namespace: "default", name: "rgw", ports: [ServicePort(port: 80, targetPort: 8080)],
        addresses: EndpointAddressList(ips.enumerated().map { EndpointAddress(ip: $1, ready: ready?[$0] ?? true) }), healthCheck: check)
}

@Suite(.serialized) struct HealthCheckerTests {
    let logger = Logger(label: "test")

    func checker(_ prober: FakeProber, maxInFlight: Int = 8) -> HealthChecker {
        var configuration = HealthChecker.Configuration()
        configuration.maxInFlight = maxInFlight
        return HealthChecker(prober: prober, configuration: configuration, logger: logger)
    }

    @Test func unknownStartIsReadyUnlessStartUnhealthy() {
        let checker = checker(FakeProber())
        let check = HealthCheck(type: .tcp, intervalSeconds: 60, timeoutSeconds: 1)
        let plain = service(["192.0.2.1"], check: check)
        checker.update(namespace: "default", name: "rgw", service: plain)
        #expect(checker.effective(plain).addresses.map(\.ready) == [true])
        var strict = check
        strict.startUnhealthy = true
        let cautious = service(["192.0.2.1"], check: strict)
        checker.update(namespace: "default", name: "rgw", service: cautious)
        #expect(checker.effective(cautious).addresses.map(\.ready) == [false])
        #expect(checker.report(namespace: "default", name: "rgw")?.addresses.map(\.health.state) == [.unknown])
        // Without a check, addresses are ready as registered.
        let unchecked = service(["192.0.2.1", "192.0.2.2"], check: nil, ready: [true, false])
        #expect(checker.effective(unchecked) == unchecked)
    }

    @Test func unhealthyLeavesAndComesBackAndDrainWins() throws {
        let prober = FakeProber()
        let checker = checker(prober)
        let changes = Changes()
        checker.onChange { keys in changes.keys.withLock { $0 += keys } }
        let check = HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 2)
        let registered = service(["192.0.2.1", "192.0.2.2", "192.0.2.3"], check: check, ready: [true, true, false])
        prober.setFailing([ProbeTarget(ip: "192.0.2.2", port: 8080)])
        checker.start()
        defer { checker.shutdown(deadline: .seconds(5)) }
        checker.update(namespace: "default", name: "rgw", service: registered)
        #expect(
            eventually {
                checker.effective(registered).addresses.map(\.ready) == [true, false, false]
                    && checker.report(namespace: "default", name: "rgw")?.addresses.allSatisfy { $0.health.state != .unknown } == true
            })
        let report = try #require(checker.report(namespace: "default", name: "rgw"))
        #expect(report.addresses.map(\.health.state) == [.healthy, .unhealthy, .healthy])
        #expect(report.addresses[1].health.lastError == "connection refused: fake")
        #expect(report.events.contains { $0.target?.ip == "192.0.2.2" && $0.to == "unhealthy" })
        #expect(changes.keys.withLock { $0.contains(ServiceKey(namespace: "default", name: "rgw")) })
        let epoch = checker.epoch(namespace: "default", name: "rgw")
        prober.setFailing([])
        #expect(eventually { checker.effective(registered).addresses.map(\.ready) == [true, true, false] })
        // The epoch moves on just after the verdict is visible (`evaluate` follows the transition).
        #expect(eventually { checker.epoch(namespace: "default", name: "rgw") > epoch })
        // Removing the check forgets the state.
        checker.update(namespace: "default", name: "rgw", service: service(["192.0.2.1"], check: nil))
        #expect(checker.report(namespace: "default", name: "rgw") == nil)
    }

    @Test func failOpenWhenEveryAddressIsUnhealthy() throws {
        let prober = FakeProber()
        let checker = checker(prober)
        var check = HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 1)
        let targets: Set<ProbeTarget> = [ProbeTarget(ip: "192.0.2.1", port: 8080), ProbeTarget(ip: "192.0.2.2", port: 8080)]
        prober.setFailing(targets)
        checker.start()
        defer { checker.shutdown(deadline: .seconds(5)) }
        let open = service(["192.0.2.1", "192.0.2.2"], check: check)
        checker.update(namespace: "default", name: "rgw", service: open)
        #expect(eventually { checker.report(namespace: "default", name: "rgw")?.conditions.first?.type == "allBackendsUnhealthy" })
        #expect(checker.effective(open).addresses.map(\.ready) == [true, true])
        let report = try #require(checker.report(namespace: "default", name: "rgw"))
        #expect(report.addresses.allSatisfy { $0.health.state == .unhealthy })
        #expect(report.events.contains { $0.target == nil && $0.to == "allBackendsUnhealthy" })
        // One recovers: the condition clears, and the dead one is not ready any more.
        prober.setFailing([ProbeTarget(ip: "192.0.2.2", port: 8080)])
        #expect(eventually { checker.report(namespace: "default", name: "rgw")?.conditions.isEmpty == true })
        #expect(eventually { checker.effective(open).addresses.map(\.ready) == [true, false] })
        // failOpen: false renders none.
        prober.setFailing(targets)
        check.failOpen = false
        let closed = service(["192.0.2.1", "192.0.2.2"], check: check)
        checker.update(namespace: "default", name: "rgw", service: closed)
        #expect(eventually { checker.effective(closed).addresses.map(\.ready) == [false, false] })
        #expect(checker.report(namespace: "default", name: "rgw")?.conditions.isEmpty == true)
    }

    /// The event log keeps the newest `maxEventsPerService` events, oldest first.
    @Test func theEventLogIsBounded() throws {
        let prober = FakeProber()
        var configuration = HealthChecker.Configuration()
        configuration.maxEventsPerService = 4
        let checker = HealthChecker(prober: prober, configuration: configuration, logger: logger)
        let check = HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 1)
        let ips = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        let registered = service(ips, check: check)
        checker.start()
        defer { checker.shutdown(deadline: .seconds(5)) }
        checker.update(namespace: "default", name: "rgw", service: registered)
        // 3 events (unknown -> healthy), then 3 (healthy -> unhealthy) and the condition: 7 in all.
        #expect(eventually { checker.report(namespace: "default", name: "rgw")?.addresses.allSatisfy { $0.health.state == .healthy } == true })
        prober.setFailing(Set(ips.map { ProbeTarget(ip: $0, port: 8080) }))
        #expect(eventually { checker.report(namespace: "default", name: "rgw")?.conditions.isEmpty == false })
        let events = try #require(checker.report(namespace: "default", name: "rgw")?.events)
        #expect(events.count == 4)
        #expect(events.last?.to == HealthChecker.Condition.allBackendsUnhealthy)
        #expect(events.dropLast().allSatisfy { $0.to == "unhealthy" })
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.time <= $1.time })
    }

    /// 200 addresses, probes that take 20 ms, 4 in flight at most: never more, and every
    /// address is probed; first probes are spread over the interval rather than fired at once.
    @Test func boundedInFlightAndSpread() throws {
        let prober = FakeProber(delay: .milliseconds(20))
        let checker = checker(prober, maxInFlight: 4)
        let check = HealthCheck(type: .tcp, intervalSeconds: 2, timeoutSeconds: 1)
        let ips = (1...200).map { "10.0.\($0 / 250).\($0 % 250 + 1)" }
        let started = ContinuousClock.now
        checker.start()
        defer { checker.shutdown(deadline: .seconds(5)) }
        checker.update(namespace: "default", name: "rgw", service: service(ips, check: check))
        #expect(eventually(15) { prober.state.withLock { $0.calls.count } == 200 })
        let (maxConcurrent, firsts) = prober.state.withLock { ($0.maxConcurrent, $0.calls.values.compactMap(\.first)) }
        #expect(maxConcurrent <= 4)
        #expect(checker.inFlight <= 4)
        // 200 × 20 ms / 4 = 1 s of work: spread, the first probes span well over half a second.
        let span = firsts.max()! - firsts.min()!
        #expect(span > .milliseconds(500))
        #expect(firsts.min()! - started < .seconds(2))
    }

    @Test func slowProbesKeepTheirScheduleAndShutdownStopsThem() {
        let prober = FakeProber(delay: .milliseconds(100))
        let checker = checker(prober, maxInFlight: 2)
        let check = HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1)
        checker.start()
        checker.start()  // once per process: a second start does nothing
        checker.update(namespace: "default", name: "rgw", service: service(["192.0.2.1", "192.0.2.2"], check: check))
        #expect(eventually { prober.state.withLock { $0.calls.values.allSatisfy { $0.count >= 2 } && $0.calls.count == 2 } })
        #expect(checker.shutdown(deadline: .seconds(5)))
        let count = prober.state.withLock { $0.calls.values.reduce(0) { $0 + $1.count } }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(prober.state.withLock { $0.calls.values.reduce(0) { $0 + $1.count } } == count)
    }

    /// Stopped (this replica no longer leads) and started again (it leads again): probing
    /// resumes with the addresses it knew, with as many workers as before.
    @Test func startsAgainAfterShutdown() {
        let prober = FakeProber()
        let checker = checker(prober, maxInFlight: 2)
        let check = HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1)
        checker.start()
        checker.update(namespace: "default", name: "rgw", service: service(["192.0.2.1", "192.0.2.2"], check: check))
        #expect(eventually { prober.state.withLock { $0.calls.count == 2 } })
        #expect(checker.shutdown(deadline: .seconds(5)))
        let count = prober.state.withLock { $0.calls.values.reduce(0) { $0 + $1.count } }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(prober.state.withLock { $0.calls.values.reduce(0) { $0 + $1.count } } == count)
        checker.start()
        #expect(eventually { prober.state.withLock { $0.calls.values.reduce(0) { $0 + $1.count } } >= count + 2 })
        #expect(checker.shutdown(deadline: .seconds(5)))
    }
}
