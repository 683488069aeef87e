// Service spec fields beyond ports and addresses (issue 12): IP families, session affinity,
// traffic policies and the NodePort / LoadBalancer fields. Kept in this file (and in clearly
// marked blocks of ExternalService) so that other model additions merge without conflict.
// Names and values are Kubernetes' own (core/v1 `ServiceSpec`).

/// `spec.ipFamilyPolicy` (core/v1 `IPFamilyPolicy`).
public enum IPFamilyPolicy: String, Sendable, CaseIterable {
    case singleStack = "SingleStack"
    case preferDualStack = "PreferDualStack"
    case requireDualStack = "RequireDualStack"
}

/// `spec.sessionAffinity` (core/v1 `ServiceAffinity`).
public enum SessionAffinity: String, Sendable, CaseIterable {
    case none = "None"
    case clientIP = "ClientIP"
}

/// `spec.internalTrafficPolicy` and `spec.externalTrafficPolicy` (core/v1
/// `ServiceInternalTrafficPolicy`, `ServiceExternalTrafficPolicy`).
public enum TrafficPolicy: String, Sendable, CaseIterable {
    case cluster = "Cluster"
    case local = "Local"
}

/// `spec.trafficDistribution` (core/v1): `PreferClose` since Kubernetes 1.30 (alpha; beta
/// 1.31), `PreferSameZone` and `PreferSameNode` since 1.33 (alpha; beta 1.34).
public enum TrafficDistribution: String, Sendable, CaseIterable {
    case preferClose = "PreferClose"
    case preferSameZone = "PreferSameZone"
    case preferSameNode = "PreferSameNode"
}

/// The Service spec fields of issue 12, all optional with the API server's defaults.
public struct ServiceSpecFields: Sendable, Equatable {
    /// nil: chosen from the addresses when rendering (see `ManifestRenderer.ipFamilies`).
    public var ipFamilyPolicy: IPFamilyPolicy?
    /// Empty: chosen from the addresses (or by the API server).
    public var ipFamilies: [IPAddress.Family] = []
    public var sessionAffinity: SessionAffinity = .none
    /// `spec.sessionAffinityConfig.clientIP.timeoutSeconds`; only with `ClientIP` (default 10800).
    public var sessionAffinityTimeoutSeconds: Int?
    public var publishNotReadyAddresses = false
    /// nil for ExternalName; the API server's default `Cluster` otherwise.
    public var internalTrafficPolicy: TrafficPolicy?
    public var trafficDistribution: TrafficDistribution?
    /// NodePort and LoadBalancer only (default `Cluster`).
    public var externalTrafficPolicy: TrafficPolicy?
    /// LoadBalancer only.
    public var loadBalancerClass: String?
    /// LoadBalancer only: CIDRs allowed to reach the load balancer.
    public var loadBalancerSourceRanges: [String] = []
    /// LoadBalancer only (default true).
    public var allocateLoadBalancerNodePorts: Bool?

    public init() {}

    /// The registration's JSON names of these fields.
    static let fieldNames: Set<String> = [
        "ipFamilyPolicy", "ipFamilies", "sessionAffinity", "sessionAffinityTimeoutSeconds", "publishNotReadyAddresses",
        "internalTrafficPolicy", "trafficDistribution", "externalTrafficPolicy", "loadBalancerClass", "loadBalancerSourceRanges",
        "allocateLoadBalancerNodePorts",
    ]

    /// The API server's default client-IP affinity timeout (core/v1 `DefaultClientIPServiceAffinitySeconds`).
    public static let defaultSessionAffinityTimeoutSeconds = 10800
    /// core `MaxClientIPServiceAffinitySeconds`.
    public static let maxSessionAffinityTimeoutSeconds = 86400
}
