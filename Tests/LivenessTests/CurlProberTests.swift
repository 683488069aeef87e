import Foundation
import RegistryCore
import Testing

@testable import Liveness

/// One misbehaving backend of Tests/HostileBackend/hostile_backend.py on 127.0.0.1 (loopback
/// only: nothing leaves the machine); stopped with the value.
final class HostileBackend {
    private let process = Process()
    private let input = Pipe()
    let port: Int

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    init(_ mode: String, certificate: (cert: String, key: String)? = nil) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["python3", HostileBackend.repository.appending(path: "Tests/HostileBackend/hostile_backend.py").path(), mode]
            + (certificate.map { [$0.cert, $0.key] } ?? [])
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "PORT ", with: "")) else {
            process.terminate()
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "hostile backend did not start: \(line)"])
        }
        self.port = port
    }

    var target: ProbeTarget { ProbeTarget(ip: "127.0.0.1", port: port) }

    deinit {
        try? input.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
    }
}

/// The libcurl prober against backends that misbehave (issue 13's hostile cases), on loopback.
@Suite struct CurlProberTests {
    let prober = CurlProber()

    func check(_ type: HealthCheck.Kind = .http, timeout: Int = 2, host: String? = nil, tlsSkipVerify: Bool = false) -> HealthCheck {
        HealthCheck(type: type, host: host, tlsSkipVerify: tlsSkipVerify, intervalSeconds: 10, timeoutSeconds: timeout)
    }

    /// Probes and measures; the bound asserted by callers is a generous liveness bound.
    func probe(_ backend: HostileBackend, _ check: HealthCheck) -> (Result<Void, ProbeFailure>, Double) {
        let started = Date()
        let result = prober.probe(backend.target, check: check)
        return (result, Date().timeIntervalSince(started))
    }

    @Test func aGoodBackendIsHealthy() throws {
        let backend = try HostileBackend("ok")
        #expect(probe(backend, check()).0.failureValue == nil)
    }

    /// A 200 followed by a body that never ends is judged by its status, not timed out.
    @Test func anEndlessBodyIsJudgedByItsStatus() throws {
        let backend = try HostileBackend("endless-body")
        let (result, _) = probe(backend, check(timeout: 3))
        #expect(result.failureValue == nil, "\(String(describing: result.failureValue))")
    }

    /// Header lines that never end fail the probe (libcurl's 300 KiB limit), not at the timeout.
    @Test func endlessHeadersFailWithoutWaitingForTheTimeout() throws {
        let backend = try HostileBackend("endless-headers")
        let (result, seconds) = probe(backend, check(timeout: 60))
        #expect(result.failureValue?.reason == "other", "\(String(describing: result.failureValue))")
        #expect(seconds < 30)
    }

    @Test func aHugeHeaderLineFails() throws {
        let backend = try HostileBackend("huge-header")
        let (result, _) = probe(backend, check(timeout: 5))
        #expect(result.failureValue != nil)
        #expect(result.failureValue?.reason != "timeout", "\(String(describing: result.failureValue))")
    }

    /// Accepts and never answers: a timeout, within about `timeoutSeconds`.
    @Test func aSilentBackendTimesOut() throws {
        let backend = try HostileBackend("silent")
        let (result, seconds) = probe(backend, check(timeout: 1))
        #expect(result.failureValue == .timeout)
        #expect(seconds < 30)
        // tcp only needs the connection accepted.
        #expect(probe(backend, check(.tcp, timeout: 1)).0.failureValue == nil)
    }

    /// An IPv6 literal as `host` is sent bracketed (RFC 9110 §7.2).
    @Test func anIPv6HostHeaderIsBracketed() throws {
        let backend = try HostileBackend("host=[2001:db8::1]")
        let (result, _) = probe(backend, check(host: "2001:db8::1"))
        #expect(result.failureValue == nil, "\(String(describing: result.failureValue))")
        let named = try HostileBackend("host=rgw.example.org")
        #expect(probe(named, check(host: "rgw.example.org")).0.failureValue == nil)
    }

    /// A self-signed certificate fails verification (reason `tls`) unless `tlsSkipVerify`.
    @Test func anUntrustedCertificateIsATLSFailureUnlessSkipped() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "prober-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (cert, key) = (directory.appending(path: "cert.pem").path(), directory.appending(path: "key.pem").path())
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert,
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0)
        let backend = try HostileBackend("ok", certificate: (cert, key))
        let (result, _) = probe(backend, check(.https))
        #expect(result.failureValue?.reason == "tls", "\(String(describing: result.failureValue))")
        #expect(probe(backend, check(.https, tlsSkipVerify: true)).0.failureValue == nil)
    }
}
