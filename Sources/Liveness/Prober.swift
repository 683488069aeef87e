import Dispatch
public import RegistryCore
import Synchronization

/// One thing to probe: an IP (canonical text) and a TCP port.
public struct ProbeTarget: Sendable, Hashable, CustomStringConvertible {
    public var ip: String
    public var port: Int

    public init(ip: String, port: Int) {
        self.ip = ip
        self.port = port
    }

    public var description: String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
}

/// Why a probe failed; `reason` is the metric label.
public enum ProbeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The connection was refused or the host unreachable.
    case refused(String)
    /// No answer within `timeoutSeconds`.
    case timeout
    /// The TLS handshake or certificate verification failed.
    case tls(String)
    /// The response status is not one of `expectedStatuses`.
    case status(Int)
    /// Anything else (malformed response, local resource exhaustion).
    case other(String)

    /// `refused`, `timeout`, `tls`, `status` or `other`.
    public var reason: String {
        switch self {
        case .refused: "refused"
        case .timeout: "timeout"
        case .tls: "tls"
        case .status: "status"
        case .other: "other"
        }
    }

    public var description: String {
        switch self {
        case .refused(let detail): "connection refused: \(detail)"
        case .timeout: "timed out"
        case .tls(let detail): "TLS: \(detail)"
        case .status(let code): "unexpected HTTP status \(code)"
        case .other(let detail): detail
        }
    }
}

/// Probes one target with one check without holding the caller's thread: `start` begins the
/// probe and returns at once; `completion` is called exactly once, with the verdict, within about
/// `check.timeoutSeconds` (on a thread of the prober's, or on the caller's before `start`
/// returns when the probe fails at once, e.g. an invalid target). Implementations must be safe
/// to call from many threads at once. The health checker bounds how many are in flight.
public protocol Prober: Sendable {
    func start(_ target: ProbeTarget, check: HealthCheck, completion: @escaping @Sendable (Result<Void, ProbeFailure>) -> Void)
}

extension Prober {
    /// Probes and waits for the verdict (tests, tools); blocks the calling thread for at most
    /// about `check.timeoutSeconds`.
    public func probe(_ target: ProbeTarget, check: HealthCheck) -> Result<Void, ProbeFailure> {
        let verdict = Verdict()
        start(target, check: check) { verdict.set($0) }
        return verdict.wait()
    }
}

/// A prober that blocks the calling thread for its probe (test fakes, simple tables): `start`
/// runs `probeSynchronously` on a dispatch queue, so it holds a pool thread while it runs.
public protocol BlockingProber: Prober {
    func probeSynchronously(_ target: ProbeTarget, check: HealthCheck) -> Result<Void, ProbeFailure>
}

extension BlockingProber {
    public func start(_ target: ProbeTarget, check: HealthCheck, completion: @escaping @Sendable (Result<Void, ProbeFailure>) -> Void) {
        DispatchQueue.global().async { completion(self.probeSynchronously(target, check: check)) }
    }
}

/// One probe's verdict, handed from the completion to a waiting thread.
private final class Verdict: Sendable {
    private let result = Mutex<Result<Void, ProbeFailure>?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    func set(_ value: Result<Void, ProbeFailure>) {
        result.withLock { $0 = value }
        ready.signal()
    }

    func wait() -> Result<Void, ProbeFailure> {
        ready.wait()
        return result.withLock { $0 } ?? .failure(.other("no verdict"))
    }
}
