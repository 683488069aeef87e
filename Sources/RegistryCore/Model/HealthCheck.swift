/// How the registry checks that each address of a service is alive (issue 13). Opt-in per
/// service: without one, addresses are ready as registered.
///
/// JSON shape (defaults shown):
/// `{"type": "tcp"|"http"|"https", "port": 8080 | "web", "path": "/", "host": "example.org",
///   "expectedStatuses": ["200-399"], "tlsSkipVerify": false, "intervalSeconds": 10,
///   "timeoutSeconds": 2, "healthyThreshold": 2, "unhealthyThreshold": 3,
///   "startUnhealthy": false, "failOpen": true}`
public struct HealthCheck: Sendable, Equatable {
    /// What a probe does: `tcp` connects (success: the connection is accepted); `http`/`https`
    /// send `GET path` and compare the response status with `expectedStatuses`.
    public enum Kind: String, Sendable, CaseIterable {
        case tcp
        case http
        case https
    }

    /// The port probed: a number, or the name of a service port (probing each address's
    /// backend port for it).
    public enum Port: Sendable, Equatable {
        case number(Int)
        case name(String)
    }

    public static let defaultIntervalSeconds = 10
    public static let defaultTimeoutSeconds = 2
    public static let defaultHealthyThreshold = 2
    public static let defaultUnhealthyThreshold = 3
    /// RFC 9110 §15: 2xx (successful) and 3xx (redirection), as Kubernetes' httpGet probe.
    public static let defaultExpectedStatuses: [ClosedRange<Int>] = [200...399]

    public var type: Kind
    /// `nil`: each address's backend port for the first service port.
    public var port: Port?
    /// Request target for `http`/`https`; `nil` means `/`.
    public var path: String?
    /// `Host` header (and TLS SNI) for `http`/`https`; `nil`: the address itself.
    public var host: String?
    /// Status codes counted as healthy, as inclusive ranges; `nil`: 200–399.
    public var expectedStatuses: [ClosedRange<Int>]?
    /// `https` only: do not verify the backend's certificate.
    public var tlsSkipVerify: Bool
    /// Seconds between two probes of one address.
    public var intervalSeconds: Int
    /// Seconds a probe may take before it counts as failed; less than `intervalSeconds`.
    public var timeoutSeconds: Int
    /// Consecutive successes that make an address healthy.
    public var healthyThreshold: Int
    /// Consecutive failures that make an address unhealthy.
    public var unhealthyThreshold: Int
    /// `true`: a new address is rendered not-ready until its first verdict.
    public var startUnhealthy: Bool
    /// `true`: when every address is unhealthy, all are rendered ready (condition
    /// `allBackendsUnhealthy`).
    public var failOpen: Bool

    public init(
        type: Kind, port: Port? = nil, path: String? = nil, host: String? = nil, expectedStatuses: [ClosedRange<Int>]? = nil,
        tlsSkipVerify: Bool = false, intervalSeconds: Int = HealthCheck.defaultIntervalSeconds,
        timeoutSeconds: Int = HealthCheck.defaultTimeoutSeconds, healthyThreshold: Int = HealthCheck.defaultHealthyThreshold,
        unhealthyThreshold: Int = HealthCheck.defaultUnhealthyThreshold, startUnhealthy: Bool = false, failOpen: Bool = true
    ) {
        self.type = type
        self.port = port
        self.path = path
        self.host = host
        self.expectedStatuses = expectedStatuses
        self.tlsSkipVerify = tlsSkipVerify
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = timeoutSeconds
        self.healthyThreshold = healthyThreshold
        self.unhealthyThreshold = unhealthyThreshold
        self.startUnhealthy = startUnhealthy
        self.failOpen = failOpen
    }

    /// The status ranges in force (the default when none are given).
    public var effectiveExpectedStatuses: [ClosedRange<Int>] { expectedStatuses ?? HealthCheck.defaultExpectedStatuses }

    /// Whether `status` counts as healthy.
    public func accepts(status: Int) -> Bool { effectiveExpectedStatuses.contains { $0.contains(status) } }

    /// The port to probe on `address`, or `nil` when the service has no port to default to or
    /// names an unknown port.
    public func probePort(for address: EndpointAddress, servicePorts: [ServicePort]) -> Int? {
        switch port {
        case .number(let number)?: return number
        case .name(let name)?:
            guard let index = servicePorts.firstIndex(where: { $0.name == name }) else { return nil }
            return address.backendPorts(for: servicePorts)[index]
        case nil:
            // The backend port of the first service port the address serves.
            return address.backendPorts(for: servicePorts).compactMap { $0 }.first
        }
    }

    /// Text form of a status range: `200` or `200-399`.
    public static func text(_ range: ClosedRange<Int>) -> String {
        range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
    }

    /// Parses `200` or `200-399`; `nil` when malformed or reversed.
    public static func statusRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let low = Int(parts[0]), let high = Int(parts[parts.count - 1]), low <= high
        else { return nil }
        return low...high
    }
}
