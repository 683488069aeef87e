public import KubernetesClient

/// The clusters the registry can push to, read once at start-up from kubeconfig files and, in a
/// pod, the in-cluster configuration. Calls to them go through the `Reconciler`'s clients.
public struct Clusters: Sendable {
    public let targets: [ClusterTarget]
    let transport: any HTTPTransport

    public init(targets: [ClusterTarget], transport: any HTTPTransport = CurlTransport()) {
        self.targets = targets
        self.transport = transport
    }

    public static let none = Clusters(targets: [])

    func target(named name: String) -> ClusterTarget? { targets.first { $0.name == name } }
}
