public import Foundation
public import RegistryCore
import Synchronization

/// A kubeconfig user's `exec` credential plugin (client-go's `ExecConfig`), with what the plugin
/// is told about its cluster (`KUBERNETES_EXEC_INFO`'s `spec.cluster`).
public struct ExecConfig: Sendable, Equatable {
    /// `client.authentication.k8s.io/v1` or `client.authentication.k8s.io/v1beta1`.
    public var apiVersion: String
    /// The program: an absolute path, a path relative to the kubeconfig (when it holds a `/`), or
    /// a name looked up in `PATH`. Run directly, never through a shell.
    public var command: String
    public var args: [String]
    /// Added to the server's own environment (a name given here wins).
    public var env: [ExecEnvVar]
    /// Shown when the command cannot be found.
    public var installHint: String?
    public var provideClusterInfo: Bool
    /// `Never`, `IfAvailable` or `Always` (the registry is never interactive).
    public var interactiveMode: String?
    /// `spec.cluster` of `KUBERNETES_EXEC_INFO` when `provideClusterInfo` is true.
    public var cluster: ExecClusterInfo

    public init(
        apiVersion: String, command: String, args: [String] = [], env: [ExecEnvVar] = [], installHint: String? = nil,
        provideClusterInfo: Bool = false, interactiveMode: String? = nil, cluster: ExecClusterInfo
    ) {
        self.apiVersion = apiVersion
        self.command = command
        self.args = args
        self.env = env
        self.installHint = installHint
        self.provideClusterInfo = provideClusterInfo
        self.interactiveMode = interactiveMode
        self.cluster = cluster
    }

    /// The API versions client-go still runs (v1alpha1 was removed in Kubernetes 1.24).
    public static let supportedVersions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]
}

/// One `env` entry of an exec plugin.
public struct ExecEnvVar: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The cluster as an exec plugin sees it (client-go's `clientauthentication.Cluster`).
public struct ExecClusterInfo: Sendable, Equatable {
    public var server: String
    public var tlsServerName: String?
    public var insecureSkipTLSVerify: Bool
    public var certificateAuthorityData: [UInt8]?
    public var proxyURL: String?
    /// The cluster's `extensions` entry named `client.authentication.k8s.io/exec`, as JSON.
    public var config: JSONValue?

    public init(
        server: String, tlsServerName: String? = nil, insecureSkipTLSVerify: Bool = false, certificateAuthorityData: [UInt8]? = nil,
        proxyURL: String? = nil, config: JSONValue? = nil
    ) {
        self.server = server
        self.tlsServerName = tlsServerName
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.certificateAuthorityData = certificateAuthorityData
        self.proxyURL = proxyURL
        self.config = config
    }
}

/// A credential an exec plugin returned (`ExecCredential.status`).
public struct ExecCredential: Sendable, Equatable {
    public enum Secret: Sendable, Equatable {
        case token(String)
        case clientCertificate(certificatePEM: [UInt8], keyPEM: [UInt8])
    }

    public var secret: Secret
    /// `status.expirationTimestamp`; nil: valid until a 401 says otherwise.
    public var expiration: Date?
}

/// Why an exec plugin gave no credential. The message names the command, never what it printed
/// on stdout; stderr is trimmed and stripped of the configured `env` values.
public struct ExecPluginError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Runs exec credential plugins as client-go does (`plugin/pkg/client/auth/exec/exec.go`) and
/// caches what they return until `expirationTimestamp` (less `refreshMargin`), or until the API
/// server answers 401. One plugin per configuration runs at a time, and callers that waited for a
/// run that failed get its error instead of running (and waiting for) the plugin again; plugins
/// of other clusters run independently. Never interactive: stdin is empty and
/// `spec.interactive` is false.
public final class ExecCredentialProvider: Sendable {
    public static let shared = ExecCredentialProvider()
    /// Refresh this long before `expirationTimestamp`.
    public static let refreshMargin: TimeInterval = 10
    /// At most this much of the plugin's stderr is shown.
    static let stderrLimit = 400

    /// One slot per configuration, holding its cached credential and its last failure; a plugin
    /// runs inside its lock.
    private final class Slot: Sendable {
        struct State {
            var credential: ExecCredential?
            var failure: (error: ExecPluginError, at: ContinuousClock.Instant)?
        }

        let state = Mutex(State())
    }

    private let slots = Mutex<[String: Slot]>([:])

    public init() {}

    private func slot(for config: ExecConfig) -> Slot {
        let key = ExecCredentialProvider.key(config)
        return slots.withLock { slots in
            if let slot = slots[key] { return slot }
            let slot = Slot()
            slots[key] = slot
            return slot
        }
    }

    static func key(_ config: ExecConfig) -> String {
        var parts = [config.apiVersion, config.command] + config.args + config.env.map { "\($0.name)=\($0.value)" }
        if config.provideClusterInfo { parts.append(config.cluster.server) }
        return parts.joined(separator: "\u{0}")
    }

    /// The cached credential, or a fresh one from the plugin. `rejected` is a credential the API
    /// server answered 401 to: it is dropped (if still cached) and the plugin runs again.
    public func credential(_ config: ExecConfig, timeout: Duration, rejected: ExecCredential? = nil) throws(ExecPluginError) -> ExecCredential {
        let slot = slot(for: config)
        let asked = ContinuousClock.now
        let result: Result<ExecCredential, ExecPluginError> = slot.state.withLock { state in
            if let failure = state.failure, failure.at > asked { return .failure(failure.error) }
            if let current = state.credential, current != rejected {
                if let expiration = current.expiration {
                    if Date().addingTimeInterval(ExecCredentialProvider.refreshMargin) < expiration { return .success(current) }
                } else {
                    return .success(current)
                }
            }
            state.credential = nil
            let fresh = Result { () throws(ExecPluginError) -> ExecCredential in try ExecPluginRunner.run(config, timeout: timeout) }
            switch fresh {
            case .success(let credential): state = Slot.State(credential: credential, failure: nil)
            case .failure(let error): state.failure = (error, ContinuousClock.now)
            }
            return fresh
        }
        return try result.get()
    }
}

/// Runs one plugin process and decodes its `ExecCredential`.
enum ExecPluginRunner {
    static let outputLimit = 1 << 20

    static func run(_ config: ExecConfig, timeout: Duration) throws(ExecPluginError) -> ExecCredential {
        let name = config.command
        guard let executable = locate(config.command) else {
            var message = "exec plugin: executable \(name) not found"
            if let hint = config.installHint, !hint.isEmpty { message += "\n\n" + hint }
            throw ExecPluginError(message: message)
        }
        var environment = ProcessInfo.processInfo.environment
        for variable in config.env { environment[variable.name] = variable.value }
        environment["KUBERNETES_EXEC_INFO"] = String(decoding: JSONWriter.bytes(execInfo(config)), as: UTF8.self)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = config.args
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            throw ExecPluginError(message: "exec plugin \(name) could not be started: \(error.localizedDescription)")
        }
        let output = PipeCollector(stdout.fileHandleForReading, limit: outputLimit)
        let errors = PipeCollector(stderr.fileHandleForReading, limit: outputLimit)
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        if exited.wait(timeout: .now() + seconds) == .timedOut {
            let pid = process.processIdentifier
            // Its children too, when it leads its own process group (never the server's group).
            if getpgid(pid) == pid { kill(-pid, SIGKILL) } else { kill(pid, SIGKILL) }
            _ = exited.wait(timeout: .now() + 2)
            throw ExecPluginError(
                message: "exec plugin \(name) did not finish within \(format(seconds)) and was killed" + excerpt(errors.collected(wait: 0.2), config))
        }
        let stdoutBytes = output.collected(wait: 2)
        let stderrText = excerpt(errors.collected(wait: 0.5), config)
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let how = process.terminationReason == .exit ? "exit status \(process.terminationStatus)" : "signal \(process.terminationStatus)"
            throw ExecPluginError(message: "exec plugin \(name) failed: \(how)" + stderrText)
        }
        return try decode(stdoutBytes, config: config, stderr: stderrText)
    }

    /// Where the command is: a path as given, else the first executable in `PATH` (exec.LookPath).
    static func locate(_ command: String) -> String? {
        if command.contains("/") { return FileManager.default.isExecutableFile(atPath: command) ? command : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + command
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
        }
        return nil
    }

    /// `KUBERNETES_EXEC_INFO`: an `ExecCredential` with `spec.interactive` false and, when asked
    /// for, `spec.cluster`.
    static func execInfo(_ config: ExecConfig) -> JSONValue {
        var spec = JSONObject([("interactive", .bool(false))])
        if config.provideClusterInfo {
            let info = config.cluster
            var cluster = JSONObject([("server", .string(info.server))])
            if let name = info.tlsServerName { cluster["tls-server-name"] = .string(name) }
            if info.insecureSkipTLSVerify { cluster["insecure-skip-tls-verify"] = .bool(true) }
            if let ca = info.certificateAuthorityData { cluster["certificate-authority-data"] = .string(Data(ca).base64EncodedString()) }
            if let proxy = info.proxyURL { cluster["proxy-url"] = .string(proxy) }
            if let extra = info.config { cluster["config"] = extra }
            spec = JSONObject([("cluster", .object(cluster)), ("interactive", .bool(false))])
        }
        return .object(JSONObject([("kind", .string("ExecCredential")), ("apiVersion", .string(config.apiVersion)), ("spec", .object(spec))]))
    }

    /// Reads the plugin's `ExecCredential`; what it printed is never quoted (it may hold secrets).
    static func decode(_ bytes: [UInt8], config: ExecConfig, stderr: String) throws(ExecPluginError) -> ExecCredential {
        let name = config.command
        guard case .object(let root)? = try? JSONParser.parse(bytes) else {
            throw ExecPluginError(message: "exec plugin \(name) printed something that is not an ExecCredential (not JSON)" + stderr)
        }
        guard case .string(let kind)? = root["kind"], kind == "ExecCredential" else {
            throw ExecPluginError(
                message: "exec plugin \(name) printed something that is not an ExecCredential (kind is not ExecCredential)" + stderr)
        }
        guard case .string(let version)? = root["apiVersion"], version == config.apiVersion else {
            throw ExecPluginError(
                message:
                    "exec plugin \(name) is configured to use API version \(config.apiVersion), plugin returned version \(root["apiVersion"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "none")"
            )
        }
        guard case .object(let status)? = root["status"] else {
            throw ExecPluginError(message: "exec plugin \(name) didn't return a status field")
        }
        func string(_ key: String) -> String? { if case .string(let text)? = status[key], !text.isEmpty { text } else { nil } }
        var expiration: Date? = nil
        if let stamp = string("expirationTimestamp") {
            guard let date = ISO8601DateFormatter().date(from: stamp) ?? fractionalFormatter().date(from: stamp) else {
                throw ExecPluginError(message: "exec plugin \(name) returned an expirationTimestamp that is not RFC 3339")
            }
            expiration = date
        }
        let certificate = string("clientCertificateData")
        let key = string("clientKeyData")
        if (certificate == nil) != (key == nil) {
            throw ExecPluginError(
                message: "exec plugin \(name) returned only one of clientCertificateData and clientKeyData; it must return both or neither")
        }
        if let token = string("token") {
            return ExecCredential(secret: .token(token), expiration: expiration)
        }
        if let certificate, let key {
            return ExecCredential(
                secret: .clientCertificate(certificatePEM: Array(certificate.utf8), keyPEM: Array(key.utf8)), expiration: expiration)
        }
        throw ExecPluginError(message: "exec plugin \(name) didn't return a token or cert/key pair")
    }

    static func fractionalFormatter() -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }

    /// `: <stderr>`, trimmed to its last `stderrLimit` characters, with the configured env
    /// values (which may be secrets) replaced by `<redacted>`; empty when stderr is.
    static func excerpt(_ bytes: [UInt8], _ config: ExecConfig) -> String {
        var text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        for variable in config.env where variable.value.count >= 4 { text = text.replacingOccurrences(of: variable.value, with: "<redacted>") }
        if text.count > ExecCredentialProvider.stderrLimit { text = "…" + String(text.suffix(ExecCredentialProvider.stderrLimit)) }
        text = text.split(whereSeparator: \.isNewline).joined(separator: " | ")
        return text.isEmpty ? "" : "; stderr: \(text)"
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
    }
}

/// Reads a pipe to its end (or `limit` bytes) on its own thread, so that a plugin writing a lot
/// never blocks on a full pipe; a grandchild keeping the pipe open cannot block the caller,
/// which waits a bounded time.
private final class PipeCollector: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle, limit: Int) {
        let thread = Thread { [self] in read(handle, limit: limit) }
        thread.start()
    }

    private func read(_ handle: FileHandle, limit: Int) {
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            bytes.withLock { collected in
                if collected.count < limit { collected.append(contentsOf: chunk.prefix(limit - collected.count)) }
            }
        }
        done.signal()
    }

    func collected(wait seconds: Double) -> [UInt8] {
        _ = done.wait(timeout: .now() + seconds)
        return bytes.withLock { $0 }
    }
}
