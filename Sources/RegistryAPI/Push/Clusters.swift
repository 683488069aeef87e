public import KubernetesClient

/// The clusters the registry can push to, read once at start-up from kubeconfig files and, in a
/// pod, the in-cluster configuration.
public struct Clusters: Sendable {
    public let targets: [ClusterTarget]
    let transport: any HTTPTransport
    let retry: RetryPolicy

    public init(targets: [ClusterTarget], transport: any HTTPTransport = CurlTransport(), retry: RetryPolicy = RetryPolicy()) {
        self.targets = targets
        self.transport = transport
        self.retry = retry
    }

    public static let none = Clusters(targets: [])

    func target(named name: String) -> ClusterTarget? { targets.first { $0.name == name } }

    func api(_ target: ClusterTarget) -> KubernetesAPI { KubernetesAPI(target: target, transport: transport, retry: retry) }
}
