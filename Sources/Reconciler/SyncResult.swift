public import KubernetesClient
public import RegistryCore

/// What happened to one object in one cluster.
public struct ObjectResult: Sendable {
    public enum Action: String, Sendable {
        case created, configured, unchanged, deleted, failed, conflict
        /// Deleted and created again: the change was one the API server refuses in place
        /// (`spec.clusterIP` is immutable, so ClusterIP ↔ Headless).
        case recreated
    }

    public var kind: String
    public var name: String
    public var action: Action
    public var warnings: [String]
    public var error: String?

    public init(kind: String, name: String, action: Action, warnings: [String] = [], error: String? = nil) {
        self.kind = kind
        self.name = name
        self.action = action
        self.warnings = warnings
        self.error = error
    }

    public var json: JSONValue {
        var object = JSONObject([("kind", .string(kind)), ("name", .string(name)), ("action", .string(action.rawValue))])
        if !warnings.isEmpty { object["warnings"] = .array(warnings.map(JSONValue.string)) }
        if let error {
            let conflict = action == .conflict
            object["error"] = .object(
                JSONObject([
                    ("type", .string("urn:problem-type:endpoint-registry:\(conflict ? "conflict" : "kubernetes-error")")),
                    ("title", .string(conflict ? "Conflict" : "Kubernetes API error")), ("status", .integer(conflict ? 409 : 502)),
                    ("detail", .string(error)),
                ]))
        }
        return .object(object)
    }
}

/// Why a reconcile of one service in one cluster failed.
public enum SyncError: Error, Sendable, CustomStringConvertible {
    /// The API server refused or could not be reached.
    case kubernetes(KubernetesError)
    /// An object exists and belongs to someone else (`adopt` takes it over).
    case conflict(String)
    /// The cluster is not configured (or not usable).
    case unknownCluster(String)
    /// The service no longer exists.
    case serviceGone(String)
    /// The registry's own database failed.
    case store(String)
    /// The reconciler is shutting down.
    case shuttingDown

    public var description: String {
        switch self {
        case .kubernetes(let error): error.description
        case .conflict(let message): message
        case .unknownCluster(let name): "no usable cluster named \"\(name)\""
        case .serviceGone(let name): "service \(name) no longer exists"
        case .store(let message): "the registry's database failed: \(message)"
        case .shuttingDown: "the server is shutting down"
        }
    }

    /// The Kubernetes `Status` reason (`Conflict`, `Invalid`, `Forbidden`, …) or a transport
    /// reason (`Timeout`, `ConnectionFailed`).
    public var reason: String {
        switch self {
        case .kubernetes(let error):
            switch error.cause {
            case .status(let status): return status.reason.isEmpty ? "HTTP\(status.code)" : status.reason
            case .transport(.timeout): return "Timeout"
            case .transport(.tls): return "TLSFailed"
            case .transport(.connection): return "ConnectionFailed"
            case .transport(.proxy): return "ProxyFailed"
            case .transport(.responseTooLarge): return "ResponseTooLarge"
            case .invalidResponse: return "InvalidResponse"
            case .unusable: return "ClusterUnusable"
            case .credentials: return "CredentialsFailed"
            }
        case .conflict: return "Conflict"
        case .unknownCluster: return "UnknownCluster"
        case .serviceGone: return "NotFound"
        case .store: return "StoreFailed"
        case .shuttingDown: return "ShuttingDown"
        }
    }

    /// The API server's `message` when it gave one, else the description.
    public var message: String {
        if case .kubernetes(let error) = self, let status = error.status { return status.message }
        return description
    }

    /// Whether trying again later may succeed: 429, 5xx, timeouts and connection failures.
    public var retryable: Bool {
        guard case .kubernetes(let error) = self else { return false }
        switch error.cause {
        case .status(let status): return status.code == 429 || status.code >= 500
        // An answer beyond the registry's bound will be as large next time.
        case .transport(.responseTooLarge): return false
        case .transport: return true
        // An exec plugin that failed or hung may well succeed later (a token service back up).
        case .credentials: return true
        case .invalidResponse, .unusable: return false
        }
    }

    /// `Retry-After` of a 429 (or `details.retryAfterSeconds`).
    public var retryAfter: Duration? {
        if case .kubernetes(let error) = self, let seconds = error.status?.retryAfterSeconds { return .seconds(seconds) }
        return nil
    }

    /// A problem+json object with the Kubernetes reason and message.
    public var problem: JSONValue {
        let conflict: Bool
        if case .conflict = self { conflict = true } else { conflict = false }
        var object = JSONObject([
            ("type", .string("urn:problem-type:endpoint-registry:\(conflict ? "conflict" : "kubernetes-error")")),
            ("title", .string(conflict ? "Conflict" : "Kubernetes API error")), ("status", .integer(conflict ? 409 : 502)),
            ("detail", .string(description)), ("reason", .string(reason)), ("message", .string(message)),
        ])
        if case .kubernetes(let error) = self, let status = error.status { object["code"] = .integer(status.code) }
        return .object(object)
    }
}

/// One service in one cluster after a reconcile (or a push, which is one).
public struct SyncResult: Sendable {
    public var cluster: String
    public var objects: [ObjectResult]
    public var error: SyncError?
    /// True for a dry run: nothing was written.
    public var dryRun: Bool

    public init(cluster: String, objects: [ObjectResult] = [], error: SyncError? = nil, dryRun: Bool = false) {
        self.cluster = cluster
        self.objects = objects
        self.error = error
        self.dryRun = dryRun
    }

    public var succeeded: Bool { error == nil && !objects.contains { $0.action == .failed || $0.action == .conflict } }

    /// Whether anything was (or, dry, would be) written.
    public var changed: Bool { objects.contains { $0.action != .unchanged } }

    /// `{"cluster", "status": "success"|"failure", "objects": [...], "error"?}`.
    public var json: JSONValue {
        var object = JSONObject([
            ("cluster", .string(cluster)), ("status", .string(succeeded ? "success" : "failure")), ("objects", .array(objects.map(\.json))),
        ])
        if let error { object["error"] = .string(error.description) }
        return .object(object)
    }
}
