public import KubernetesClient
public import RegistryCore

/// The calls the reconciler makes to one cluster. Blocking: they run on the reconciler's own
/// worker threads, never on a request thread. Tests give an in-memory fake.
public protocol ClusterClient: Sendable {
    /// The cluster's name (a kubeconfig context, or `in-cluster`).
    var name: String { get }
    /// The object, or nil when it does not exist.
    func get(_ kind: ResourceKind, namespace: String, name: String) throws(KubernetesError) -> JSONValue?
    /// Objects of `kind` in `namespace` matching an equality label selector (`k=v[,k=v]`).
    func list(_ kind: ResourceKind, namespace: String, labelSelector: String) throws(KubernetesError) -> [JSONValue]
    /// Server-side apply with the registry's field manager and `force`.
    func apply(_ object: JSONValue, dryRun: Bool) throws(KubernetesError) -> ApplyResult
    /// JSON merge patch of an existing object (to drop fields another manager owns).
    func mergePatch(_ kind: ResourceKind, namespace: String, name: String, patch: JSONValue) throws(KubernetesError) -> JSONValue
    /// Deletes an object; a missing one counts as deleted. Returns the API server's warnings.
    @discardableResult
    func delete(_ kind: ResourceKind, namespace: String, name: String, dryRun: Bool) throws(KubernetesError) -> [String]
    /// The server's version (`gitVersion`), for probes.
    func version() throws(KubernetesError) -> String
}

/// The real client: `KubernetesAPI` over libcurl, with one quick retry per call for a blip
/// (200 ms); longer back-off is the work queue's, so no worker sleeps for long inside a call.
public struct KubernetesClusterClient: ClusterClient {
    let api: KubernetesAPI
    public var name: String { api.target.name }

    /// - Parameter withdrawn: asked before every call; a reason (the cluster was removed by a
    ///   kubeconfig reload) stops the work with that message.
    public init(
        target: ClusterTarget, transport: any HTTPTransport = CurlTransport(), timeout: Duration = .seconds(10),
        withdrawn: (@Sendable () -> String?)? = nil
    ) {
        var retry = RetryPolicy()
        retry.attempts = 2
        retry.initialBackoff = .milliseconds(200)
        retry.maxBackoff = .milliseconds(500)
        retry.timeout = timeout
        api = KubernetesAPI(target: target, transport: transport, retry: retry, withdrawn: withdrawn)
    }

    public func get(_ kind: ResourceKind, namespace: String, name: String) throws(KubernetesError) -> JSONValue? {
        try api.get(kind, namespace: namespace, name: name)?.object
    }

    public func list(_ kind: ResourceKind, namespace: String, labelSelector: String) throws(KubernetesError) -> [JSONValue] {
        try api.list(kind, namespace: namespace, labelSelector: labelSelector)
    }

    public func apply(_ object: JSONValue, dryRun: Bool) throws(KubernetesError) -> ApplyResult {
        try api.apply(object, dryRun: dryRun)
    }

    public func mergePatch(_ kind: ResourceKind, namespace: String, name: String, patch: JSONValue) throws(KubernetesError) -> JSONValue {
        try api.mergePatch(kind, namespace: namespace, name: name, patch: patch)
    }

    @discardableResult
    public func delete(_ kind: ResourceKind, namespace: String, name: String, dryRun: Bool) throws(KubernetesError) -> [String] {
        try api.delete(kind, namespace: namespace, name: name, dryRun: dryRun)
    }

    public func version() throws(KubernetesError) -> String {
        try api.version()
    }
}
