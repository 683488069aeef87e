import Foundation
import Logging
import RegistryCore
import Testing

@testable import Liveness

/// Many silent listeners of Tests/HostileBackend/silent_listeners.py on 127.0.0.1 (loopback
/// only: nothing leaves the machine); closed with the value.
final class SilentListeners {
    private let process = Process()
    private let input = Pipe()
    let ports: [Int]

    init(_ mode: String, count: Int) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", HostileBackend.repository.appending(path: "Tests/HostileBackend/silent_listeners.py").path(), mode, "\(count)",
        ]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        while !text.hasSuffix("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let ports = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").dropFirst().compactMap { Int($0) }
        guard text.hasPrefix("PORTS "), ports.count == count else {
            process.terminate()
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "silent listeners did not start: \(text.prefix(200))"])
        }
        self.ports = ports
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
    }
}

/// Issue 13's capacity case: many backends go silent at once (a zone lost). Probes are
/// asynchronous, so a probe waiting for a silent backend holds no thread and every address
/// still gets its verdict within about `intervalSeconds × unhealthyThreshold` plus its timeout.
/// With the former blocking probers (64 worker threads, each held for the 1 s timeout), 600
/// silent addresses would be probed at 64/s: a round ~9.4 s, the last verdict after ~19 s.
@Suite(.serialized) struct SilentBackendsTests {
    let logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning  // not 1,200 "address is unhealthy" lines
        return logger
    }()

    /// A connect that is never answered (the listener's accept queue is full, so its SYNs are
    /// dropped) fails `timeout` at the probe's deadline, neither at once nor much later.
    @Test func aBlackholedConnectTimesOutAtItsDeadline() throws {
        try expectTimeoutAtDeadline(listening: "full-backlog", type: .tcp)
    }

    /// An HTTP backend that takes the request and never answers fails `timeout` at the deadline.
    @Test func aSilentHTTPBackendTimesOutAtItsDeadline() throws {
        try expectTimeoutAtDeadline(listening: "silent-http", type: .http)
    }

    /// Probes one listener of `kind` with a 1 s timeout: `timeout`, neither at once nor much later.
    private func expectTimeoutAtDeadline(listening kind: String, type: HealthCheck.Kind) throws {
        let listeners = try SilentListeners(kind, count: 1)
        let check = HealthCheck(type: type, intervalSeconds: 10, timeoutSeconds: 1)
        let started = ContinuousClock.now
        let result = SocketProber().probe(ProbeTarget(ip: "127.0.0.1", port: listeners.ports[0]), check: check)
        let elapsed = ContinuousClock.now - started
        #expect(result.failureValue == .timeout)
        #expect(elapsed >= .milliseconds(900))
        #expect(elapsed < .seconds(10))
    }

    /// 600 silent addresses, far more than the probers' threads (one event loop each for tcp and
    /// libcurl): every one turns unhealthy within interval × unhealthyThreshold + timeout +
    /// slack (2 × 2 + 1 s, asserted with 12 s), and probes stayed within `maxInFlight`.
    @Test(arguments: [("silent-http", HealthCheck.Kind.http), ("full-backlog", HealthCheck.Kind.tcp)])
    func manySilentBackendsAllTurnUnhealthyInTime(mode: String, type: HealthCheck.Kind) throws {
        let count = 600
        let listeners = try SilentListeners(mode, count: count)
        let checker = HealthChecker(prober: SocketProber(), logger: logger)
        let check = HealthCheck(type: type, intervalSeconds: 2, timeoutSeconds: 1, unhealthyThreshold: 2)
        let service = ExternalService(
            namespace: "default", name: "zone", ports: [ServicePort(port: 80, targetPort: 8080)],
            addresses: EndpointAddressList(listeners.ports.map { EndpointAddress(ip: "127.0.0.1", port: $0) }), healthCheck: check)
        checker.start()
        defer { checker.shutdown(deadline: .seconds(5)) }
        let started = ContinuousClock.now
        checker.update(namespace: "default", name: "zone", service: service)
        var maxInFlight = 0
        let allUnhealthy = eventually(12) {
            maxInFlight = max(maxInFlight, checker.inFlight)
            return checker.counts().first?.unhealthy == count
        }
        let elapsed = ContinuousClock.now - started
        #expect(allUnhealthy, "\(checker.counts().first.map { "\($0.unhealthy) of \(count)" } ?? "none") unhealthy after \(elapsed)")
        #expect(maxInFlight <= HealthChecker.Configuration().maxInFlight)
        let report = try #require(checker.report(namespace: "default", name: "zone"))
        #expect(report.addresses.allSatisfy { $0.health.lastError == "\(ProbeFailure.timeout)" })
    }

    /// Shutdown with probes waiting on silent backends: it returns once they reach their
    /// deadline (bounded by the timeout), and no result is applied afterwards.
    @Test func shutdownWaitsForSilentProbesThenNothingChanges() throws {
        let listeners = try SilentListeners("silent-http", count: 50)
        let checker = HealthChecker(prober: SocketProber(), logger: logger)
        let check = HealthCheck(type: .http, intervalSeconds: 2, timeoutSeconds: 1, unhealthyThreshold: 1)
        let service = ExternalService(
            namespace: "default", name: "zone", ports: [ServicePort(port: 80, targetPort: 8080)],
            addresses: EndpointAddressList(listeners.ports.map { EndpointAddress(ip: "127.0.0.1", port: $0) }), healthCheck: check)
        checker.start()
        checker.update(namespace: "default", name: "zone", service: service)
        #expect(eventually(10) { checker.inFlight > 0 })
        #expect(checker.shutdown(deadline: .seconds(10)))
        #expect(checker.inFlight == 0)
        let report = checker.report(namespace: "default", name: "zone")
        Thread.sleep(forTimeInterval: 2.5)
        #expect(checker.report(namespace: "default", name: "zone") == report)
    }
}
