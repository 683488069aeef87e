public import KubernetesClient
import Synchronization

/// The clusters the registry can push to, read at start-up from kubeconfig files and, in a pod,
/// the in-cluster configuration, and replaced as a whole when SIGHUP reloads the kubeconfig (the
/// `Reconciler`'s clients are replaced with it).
/// Copies share one set: every handler reads the current snapshot.
public struct Clusters: Sendable {
    /// The set every copy shares.
    private final class Current: Sendable {
        let targets: Mutex<[ClusterTarget]>
        init(_ targets: [ClusterTarget]) { self.targets = Mutex(targets) }
    }

    private let current: Current
    let transport: any HTTPTransport
    let retry: RetryPolicy

    /// The clusters now (a snapshot; a reload does not change an array already read).
    public var targets: [ClusterTarget] { current.targets.withLock { $0 } }

    public init(targets: [ClusterTarget], transport: any HTTPTransport = CurlTransport(), retry: RetryPolicy = RetryPolicy()) {
        self.current = Current(targets)
        self.retry = retry
        self.transport = transport
    }

    public static var none: Clusters { Clusters(targets: []) }

    /// What a reload changed, by cluster name.
    public struct Change: Sendable, Equatable {
        public var added: [String]
        public var changed: [String]
        public var removed: [String]
        public var isEmpty: Bool { added.isEmpty && changed.isEmpty && removed.isEmpty }
    }

    /// Replaces the set; work still running for a removed cluster stops before its next call.
    @discardableResult
    public func replace(with targets: [ClusterTarget]) -> Change {
        let previous = current.targets.withLock { current in
            let previous = current
            current = targets
            return previous
        }
        let before = Dictionary(previous.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Set(targets.map(\.name))
        return Change(
            added: targets.map(\.name).filter { before[$0] == nil },
            changed: targets.filter { target in before[target.name].map { $0 != target } ?? false }.map(\.name),
            removed: previous.map(\.name).filter { !after.contains($0) })
    }

    func target(named name: String) -> ClusterTarget? { targets.first { $0.name == name } }

    /// A client of `target`; its calls stop with a clear error once a reload removed the cluster.
    func api(_ target: ClusterTarget) -> KubernetesAPI {
        KubernetesAPI(target: target, transport: transport, retry: retry, withdrawn: withdrawal(of: target.name))
    }

    /// Whether the cluster `name` was removed by a reload: nil while it is in the set, else the
    /// reason work for it stops.
    func withdrawal(of name: String) -> @Sendable () -> String? {
        let current = self.current
        return {
            current.targets.withLock { targets in targets.contains { $0.name == name } }
                ? nil : "cluster \(name) was removed from the kubeconfig by a reload (SIGHUP); work for it stopped"
        }
    }
}
