public import RegistryCore

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

/// Probes one target with one check; blocks the calling thread for at most about
/// `check.timeoutSeconds`. Implementations must be safe to call from many threads at once.
public protocol Prober: Sendable {
    func probe(_ target: ProbeTarget, check: HealthCheck) -> Result<Void, ProbeFailure>
}
