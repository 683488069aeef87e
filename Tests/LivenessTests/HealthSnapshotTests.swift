import Foundation
import Logging
import RegistryCore
import RegistryStorage
import Testing

@testable import Liveness

/// Issue 16: a new leader continues from the health the old one stored.
@Suite(.serialized) struct HealthSnapshotTests {
    let logger = Logger(label: "test")
    let key = ServiceKey(namespace: "default", name: "rgw")

    /// Probes until every address of `registered` has a verdict, stops, and returns the
    /// checker's report and snapshot.
    func measured(_ registered: ExternalService, failing: Set<ProbeTarget>) throws -> (HealthChecker.ServiceReport, [UInt8]) {
        let prober = FakeProber()
        prober.setFailing(failing)
        let checker = HealthChecker(prober: prober, logger: logger)
        checker.start()
        checker.update(namespace: "default", name: "rgw", service: registered)
        let settled = eventually {
            checker.report(namespace: "default", name: "rgw")?.addresses.allSatisfy { $0.health.state != .unknown } == true
        }
        #expect(checker.shutdown(deadline: .seconds(5)))
        #expect(settled)
        return (try #require(checker.report(namespace: "default", name: "rgw")), try #require(checker.snapshot(of: key)))
    }

    @Test func aNewCheckerContinuesFromTheSnapshot() throws {
        let check = HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 1)
        let registered = service(["192.0.2.1", "192.0.2.2"], check: check)
        let (report, snapshot) = try measured(registered, failing: [ProbeTarget(ip: "192.0.2.2", port: 8080)])
        #expect(report.addresses.map(\.health.state) == [.healthy, .unhealthy])

        // Another checker (a new leader), never started: the registration loaded, then restored.
        let next = HealthChecker(prober: FakeProber(), logger: logger)
        next.update(namespace: "default", name: "rgw", service: registered)
        #expect(next.effective(registered).addresses.map(\.ready) == [true, true])
        let epoch = next.epoch(namespace: "default", name: "rgw")
        #expect(next.restore([key: snapshot, ServiceKey(namespace: "default", name: "gone"): snapshot]) == [key])
        #expect(next.report(namespace: "default", name: "rgw") == report)
        #expect(next.report(namespace: "default", name: "rgw")?.addresses[1].health.lastError == "connection refused: fake")
        #expect(next.effective(registered).addresses.map(\.ready) == [true, false])
        #expect(next.epoch(namespace: "default", name: "rgw") > epoch)
        // Its own snapshot is the same document.
        #expect(next.snapshot(of: key) == snapshot)
        #expect(next.snapshot(of: ServiceKey(namespace: "default", name: "gone")) == nil)
    }

    @Test func theFailOpenConditionIsRestored() throws {
        var check = HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 1)
        check.failOpen = true
        let registered = service(["192.0.2.1", "192.0.2.2"], check: check)
        let failing: Set<ProbeTarget> = [ProbeTarget(ip: "192.0.2.1", port: 8080), ProbeTarget(ip: "192.0.2.2", port: 8080)]
        let prober = FakeProber()
        prober.setFailing(failing)
        let checker = HealthChecker(prober: prober, logger: logger)
        checker.start()
        checker.update(namespace: "default", name: "rgw", service: registered)
        let settled = eventually { checker.report(namespace: "default", name: "rgw")?.conditions.first?.type == "allBackendsUnhealthy" }
        #expect(checker.shutdown(deadline: .seconds(5)))
        #expect(settled)
        let report = try #require(checker.report(namespace: "default", name: "rgw"))
        let snapshot = try #require(checker.snapshot(of: key))

        let next = HealthChecker(prober: FakeProber(), logger: logger)
        next.update(namespace: "default", name: "rgw", service: registered)
        next.restore([key: snapshot])
        let restored = try #require(next.report(namespace: "default", name: "rgw"))
        #expect(restored.conditions == report.conditions)
        #expect(restored.events == report.events)
        #expect(restored.addresses.allSatisfy { $0.health.state == .unhealthy })
        #expect(next.effective(registered).addresses.map(\.ready) == [true, true])
    }

    @Test func aChangedCheckOrANewAddressStartsFromUnknown() throws {
        let check = HealthCheck(type: .tcp, intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 1)
        let registered = service(["192.0.2.1", "192.0.2.2"], check: check)
        let (_, snapshot) = try measured(registered, failing: [ProbeTarget(ip: "192.0.2.2", port: 8080)])

        // The check changed since the snapshot: nothing is restored.
        var changed = check
        changed.unhealthyThreshold = 4
        let other = HealthChecker(prober: FakeProber(), logger: logger)
        other.update(namespace: "default", name: "rgw", service: service(["192.0.2.1", "192.0.2.2"], check: changed))
        #expect(other.restore([key: snapshot]).isEmpty)
        #expect(other.report(namespace: "default", name: "rgw")?.addresses.map(\.health.state) == [.unknown, .unknown])

        // Same check, one address gone and one new: the one kept is restored, the new one unknown.
        let next = HealthChecker(prober: FakeProber(), logger: logger)
        next.update(namespace: "default", name: "rgw", service: service(["192.0.2.2", "192.0.2.3"], check: check))
        #expect(next.restore([key: snapshot]) == [key])
        #expect(next.report(namespace: "default", name: "rgw")?.addresses.map(\.health.state) == [.unhealthy, .unknown])

        // Not a snapshot: ignored (and logged).
        let garbled = HealthChecker(prober: FakeProber(), logger: logger)
        garbled.update(namespace: "default", name: "rgw", service: registered)
        #expect(garbled.restore([key: Array("{\"check\":1}".utf8)]).isEmpty)
        #expect(garbled.report(namespace: "default", name: "rgw")?.addresses.map(\.health.state) == [.unknown, .unknown])
    }

    @Test func addressHealthContinuesFromStoredValues() {
        let since = Date(timeIntervalSince1970: 1_700_000_000)
        var health = AddressHealth(
            state: .unhealthy, since: since, lastCheck: since.addingTimeInterval(5), lastError: "timeout", consecutive: 3, lastSucceeded: false)
        // One more failure counts on; one success does not yet make it healthy (threshold 2).
        #expect(health.record(success: false, error: "timeout", at: since.addingTimeInterval(10), healthyThreshold: 2, unhealthyThreshold: 3) == nil)
        #expect(health.consecutive == 4)
        #expect(health.record(success: true, error: nil, at: since.addingTimeInterval(15), healthyThreshold: 2, unhealthyThreshold: 3) == nil)
        #expect(health.state == .unhealthy && health.consecutive == 1)
        #expect(health.record(success: true, error: nil, at: since.addingTimeInterval(20), healthyThreshold: 2, unhealthyThreshold: 3) == .unhealthy)
        #expect(health.state == .healthy)
    }
}
