import Foundation
public import RegistryCore

/// The kinds the registry writes, with their REST paths.
public enum ResourceKind: String, Sendable, CaseIterable {
    case service = "Service"
    case endpoints = "Endpoints"
    case endpointSlice = "EndpointSlice"

    /// The kind's `apiVersion`.
    public var apiVersion: String { self == .endpointSlice ? "discovery.k8s.io/v1" : "v1" }

    var collection: String {
        switch self {
        case .service: "/api/v1/namespaces/%@/services"
        case .endpoints: "/api/v1/namespaces/%@/endpoints"
        case .endpointSlice: "/apis/discovery.k8s.io/v1/namespaces/%@/endpointslices"
        }
    }

    public init?(kind: String) {
        self.init(rawValue: kind)
    }

    func path(namespace: String, name: String? = nil) -> String {
        let base = String(format: collection, namespace.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? namespace)
        guard let name else { return base }
        return base + "/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)
    }
}

/// A decoded Kubernetes `Status` (the body of API errors).
public struct KubeStatus: Sendable, Equatable {
    public struct Cause: Sendable, Equatable {
        public var reason: String
        public var message: String
        public var field: String

        public init(reason: String, message: String, field: String) {
            self.reason = reason
            self.message = message
            self.field = field
        }
    }

    public var code: Int
    public var reason: String
    public var message: String
    public var causes: [Cause]
    public var retryAfterSeconds: Int?

    public init(code: Int, reason: String, message: String, causes: [Cause] = [], retryAfterSeconds: Int? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = causes
        self.retryAfterSeconds = retryAfterSeconds
    }

    static func decode(_ body: [UInt8], status: Int) -> KubeStatus {
        guard case .object(let object)? = try? JSONParser.parse(body), object["kind"] == .string("Status") else {
            let text = String(decoding: body.prefix(300), as: UTF8.self)
            return KubeStatus(code: status, reason: "", message: text.isEmpty ? "HTTP \(status)" : text, causes: [], retryAfterSeconds: nil)
        }
        func string(_ value: JSONValue?) -> String { if case .string(let text)? = value { return text } else { return "" } }
        var causes: [Cause] = []
        var retryAfter: Int? = nil
        if case .object(let details)? = object["details"] {
            if case .array(let items)? = details["causes"] {
                for case .object(let cause) in items {
                    causes.append(Cause(reason: string(cause["reason"]), message: string(cause["message"]), field: string(cause["field"])))
                }
            }
            retryAfter = details["retryAfterSeconds"]?.intValue
        }
        return KubeStatus(
            code: object["code"]?.intValue ?? status, reason: string(object["reason"]), message: string(object["message"]), causes: causes,
            retryAfterSeconds: retryAfter)
    }
}

/// A failed call, always naming the object (`Kind/namespace/name`) and the cluster first.
public struct KubernetesError: Error, Sendable, CustomStringConvertible {
    public enum Cause: Sendable {
        case status(KubeStatus)
        case transport(TransportError)
        case invalidResponse(String)
        case unusable(String)
        /// The exec credential plugin gave no credential (failed, hung, printed something else).
        case credentials(String)
    }

    public var object: String
    public var cluster: String
    public var cause: Cause

    public init(object: String, cluster: String, cause: Cause) {
        self.object = object
        self.cluster = cluster
        self.cause = cause
    }

    /// The API server's `Status`, when it answered with one.
    public var status: KubeStatus? {
        if case .status(let status) = cause { return status }
        return nil
    }

    public var httpStatus: Int? {
        if case .status(let status) = cause { return status.code }
        return nil
    }

    public var description: String {
        let prefix = "\(object) on cluster \(cluster): "
        switch cause {
        case .status(let status):
            var text = prefix + (status.reason.isEmpty ? "" : "\(status.reason): ") + status.message
            if !status.causes.isEmpty {
                text += " (" + status.causes.map { "\($0.field.isEmpty ? "" : $0.field + ": ")\($0.message)" }.joined(separator: "; ") + ")"
            }
            return text
        case .transport(let error): return prefix + error.description
        case .invalidResponse(let message): return prefix + message
        case .unusable(let reason): return prefix + reason
        case .credentials(let message): return prefix + "getting credentials: " + message
        }
    }
}

/// The result of a server-side apply.
public struct ApplyResult: Sendable {
    public var object: JSONValue
    /// 201: the apply created the object.
    public var created: Bool
    /// `Warning` headers (code 299) the API server sent.
    public var warnings: [String]

    public init(object: JSONValue, created: Bool, warnings: [String] = []) {
        self.object = object
        self.created = created
        self.warnings = warnings
    }
}

/// How often and how long to retry: only 429 (honouring Retry-After), 5xx and connection errors.
public struct RetryPolicy: Sendable {
    public var attempts = 4
    public var initialBackoff = Duration.milliseconds(200)
    public var maxBackoff = Duration.seconds(5)
    public var timeout = Duration.seconds(10)
    /// How long an exec credential plugin may run before it is killed.
    public var execTimeout = Duration.seconds(30)

    public init() {}
}

/// A client of one API server: server-side apply with a fixed field manager, get, list, delete.
public final class KubernetesAPI: Sendable {
    public static let fieldManager = "endpoint-registry"
    public let target: ClusterTarget
    private let transport: any HTTPTransport
    private let retry: RetryPolicy
    private let credentials: ExecCredentialProvider
    private let withdrawn: (@Sendable () -> String?)?

    /// - Parameter withdrawn: asked before every attempt; a reason (e.g. the cluster was removed
    ///   from the kubeconfig by a reload) stops the call with `Cause.unusable`.
    public init(
        target: ClusterTarget, transport: any HTTPTransport = CurlTransport(), retry: RetryPolicy = RetryPolicy(),
        credentials: ExecCredentialProvider = .shared, withdrawn: (@Sendable () -> String?)? = nil
    ) {
        self.target = target
        self.transport = transport
        self.retry = retry
        self.credentials = credentials
        self.withdrawn = withdrawn
    }

    /// Server-side apply: `PATCH` with `application/apply-patch+yaml` (JSON is YAML), the field
    /// manager `endpoint-registry` and `force=true`, so the registry takes over fields it owns.
    public func apply(_ object: JSONValue, dryRun: Bool) throws(KubernetesError) -> ApplyResult {
        let (kind, namespace, name) = try identity(object)
        var query = "fieldManager=\(KubernetesAPI.fieldManager)&force=true&fieldValidation=Strict"
        if dryRun { query += "&dryRun=All" }
        let reference = "\(kind.rawValue)/\(namespace)/\(name)"
        let response = try call(
            "PATCH", kind.path(namespace: namespace, name: name) + "?" + query, object: reference, body: JSONWriter.bytes(object),
            contentType: "application/apply-patch+yaml")
        let applied = try decodeObject(response.body, kind: kind, name: name, reference: reference)
        return ApplyResult(object: applied, created: response.status == 201, warnings: KubernetesAPI.warnings(response))
    }

    /// The object, or nil when it does not exist: only a 404 whose body is the API server's
    /// `Status` with reason `NotFound` says so. A 2xx answer that is not the object asked for
    /// (not JSON, trailing bytes, another kind or name, larger than `maxObjectResponseBytes`) is
    /// an error (`Cause.invalidResponse`), never "absent": the caller would otherwise create
    /// over, or take over, what exists.
    public func get(_ kind: ResourceKind, namespace: String, name: String) throws(KubernetesError) -> (object: JSONValue, warnings: [String])? {
        let reference = "\(kind.rawValue)/\(namespace)/\(name)"
        do {
            let response = try call("GET", kind.path(namespace: namespace, name: name), object: reference)
            return (try decodeObject(response.body, kind: kind, name: name, reference: reference), KubernetesAPI.warnings(response))
        } catch  where KubernetesAPI.isNotFound(error) {
            return nil
        }
    }

    /// Objects of a kind in a namespace matching a label selector. The answer must be a list
    /// (`{"items": [...]}`) of objects with a name, within `maxListResponseBytes`; anything else
    /// is `Cause.invalidResponse`. Items get the `kind` and `apiVersion` the API server leaves
    /// out of list items (as client-go's typed lists have them); an item of another kind is an error.
    public func list(_ kind: ResourceKind, namespace: String, labelSelector: String) throws(KubernetesError) -> [JSONValue] {
        let selector = labelSelector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? labelSelector
        let reference = "\(kind.rawValue)/\(namespace)/*"
        let response = try call(
            "GET", kind.path(namespace: namespace) + "?labelSelector=" + selector, object: reference,
            maxResponseBytes: KubernetesAPI.maxListResponseBytes)
        let parsed: JSONValue
        do { parsed = try JSONParser.parse(response.body) } catch {
            throw invalid(reference, "the list answered is not valid JSON (\(error))")
        }
        guard case .object(let list) = parsed, case .array(let items)? = list["items"] else {
            throw invalid(reference, "the answer is not a list: it has no \"items\" array")
        }
        var objects: [JSONValue] = []
        objects.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard let object = typed(item, kind: kind), LiveObject.name(object) != "" else {
                throw invalid(reference, "items[\(index)] of the list answered is not a \(kind.rawValue) with metadata.name")
            }
            objects.append(object)
        }
        return objects
    }

    /// JSON merge patch (RFC 7396, `application/merge-patch+json`) of an existing object, e.g.
    /// `{"spec": {"selector": null}}` to remove a field another manager owns. Returns the object.
    public func mergePatch(_ kind: ResourceKind, namespace: String, name: String, patch: JSONValue) throws(KubernetesError) -> JSONValue {
        let reference = "\(kind.rawValue)/\(namespace)/\(name)"
        let response = try call(
            "PATCH", kind.path(namespace: namespace, name: name) + "?fieldManager=\(KubernetesAPI.fieldManager)", object: reference,
            body: JSONWriter.bytes(patch), contentType: "application/merge-patch+json")
        return try decodeObject(response.body, kind: kind, name: name, reference: reference)
    }

    /// Deletes an object; a missing one (404 with the API server's `NotFound` Status) counts as
    /// deleted. Returns the warnings.
    @discardableResult
    public func delete(_ kind: ResourceKind, namespace: String, name: String, dryRun: Bool) throws(KubernetesError) -> [String] {
        do {
            let response = try call(
                "DELETE", kind.path(namespace: namespace, name: name) + (dryRun ? "?dryRun=All" : ""), object: "\(kind.rawValue)/\(namespace)/\(name)"
            )
            return KubernetesAPI.warnings(response)
        } catch  where KubernetesAPI.isNotFound(error) {
            return []
        }
    }

    /// The server's version (`gitVersion` of `GET /version`); an answer without one is an error.
    public func version() throws(KubernetesError) -> String {
        let response = try call("GET", "/version", object: "version")
        guard case .object(let object)? = try? JSONParser.parse(response.body), case .string(let version)? = object["gitVersion"] else {
            throw invalid("version", "the answer to GET /version is not JSON with a gitVersion")
        }
        return version
    }

    /// Most bytes of the answer to a call about one object (get, apply, merge patch, delete,
    /// version, and every error answer): 8 MiB. The API server stores at most 1.5 MiB per object
    /// (etcd's default request limit); its JSON, with managed fields, stays well within this.
    public static let maxObjectResponseBytes = 8 << 20
    /// Most bytes of the answer to a list (the objects of one kind in one namespace with the
    /// registry's labels, or the slices of one service): 64 MiB, some 4,000 EndpointSlices of
    /// 100 endpoints.
    public static let maxListResponseBytes = 64 << 20

    /// A 404 the API server means: its `Status` with reason `NotFound` (any other 404, e.g. a
    /// proxy's page, is an error, not a missing object).
    static func isNotFound(_ error: KubernetesError) -> Bool {
        guard let status = error.status else { return false }
        return status.code == 404 && status.reason == "NotFound"
    }

    private func invalid(_ reference: String, _ message: String) -> KubernetesError {
        KubernetesError(object: reference, cluster: target.name, cause: .invalidResponse(message))
    }

    /// `value` as an object of `kind`: a missing `kind` (list items have none) is filled in with
    /// its `apiVersion`; nil when it is not an object or names another kind.
    private func typed(_ value: JSONValue, kind: ResourceKind) -> JSONValue? {
        guard case .object(var object) = value else { return nil }
        switch object["kind"] {
        case nil, .null?, .string("")?:
            object["kind"] = .string(kind.rawValue)
            if object["apiVersion"] == nil { object["apiVersion"] = .string(kind.apiVersion) }
        case .string(kind.rawValue)?:
            break
        default:
            return nil
        }
        return .object(object)
    }

    /// The one object a 2xx answer must hold: JSON with nothing after it, an object of `kind`
    /// (see `typed`) named `name`.
    private func decodeObject(_ body: [UInt8], kind: ResourceKind, name: String, reference: String) throws(KubernetesError) -> JSONValue {
        let parsed: JSONValue
        do { parsed = try JSONParser.parse(body) } catch {
            throw invalid(reference, "the answer is not valid JSON (\(error))")
        }
        guard let object = typed(parsed, kind: kind) else { throw invalid(reference, "the answer is not a \(kind.rawValue) object") }
        guard LiveObject.name(object) == name else {
            throw invalid(reference, "the answer is not the object \(name) (its metadata.name is \"\(LiveObject.name(object))\")")
        }
        return object
    }

    private func identity(_ object: JSONValue) throws(KubernetesError) -> (ResourceKind, String, String) {
        guard case .object(let root) = object, case .string(let kindName)? = root["kind"], let kind = ResourceKind(kind: kindName),
            case .object(let metadata)? = root["metadata"], case .string(let name)? = metadata["name"],
            case .string(let namespace)? = metadata["namespace"]
        else {
            throw KubernetesError(
                object: "?", cluster: target.name, cause: .invalidResponse("not a Service, Endpoints or EndpointSlice with name and namespace"))
        }
        return (kind, namespace, name)
    }

    /// Warning headers of code 299, their quoted text unquoted.
    static func warnings(_ response: KubeResponse) -> [String] {
        response.headerValues("Warning").compactMap { header in
            guard header.hasPrefix("299 ") else { return nil }
            guard let first = header.firstIndex(of: "\""), let last = header.lastIndex(of: "\""), first < last else { return header }
            return String(header[header.index(after: first)..<last]).replacingOccurrences(of: "\\\"", with: "\"")
        }
    }

    /// One call with authentication, timeouts and bounded retries.
    private func call(
        _ method: String, _ path: String, object: String, body: [UInt8] = [], contentType: String? = nil,
        maxResponseBytes: Int = KubernetesAPI.maxObjectResponseBytes
    ) throws(KubernetesError)
        -> KubeResponse
    {
        if let reason = target.unusableReason { throw KubernetesError(object: object, cluster: target.name, cause: .unusable(reason)) }
        var backoff = retry.initialBackoff
        var reloadedToken = false
        var rejected: ExecCredential? = nil
        var attempt = 0
        while true {
            attempt += 1
            if let reason = withdrawn?() { throw KubernetesError(object: object, cluster: target.name, cause: .unusable(reason)) }
            var tls = target.tls
            var headers: [(String, String)] = [("Accept", "application/json"), ("User-Agent", "endpoint-registry")]
            if let contentType { headers.append(("Content-Type", contentType)) }
            switch target.auth {
            case .token(let token): headers.append(("Authorization", "Bearer \(token)"))
            case .tokenFile(let path):
                if let token = TokenFileCache.shared.token(at: path, forceReload: reloadedToken) {
                    headers.append(("Authorization", "Bearer \(token)"))
                }
            case .none, .clientCertificate, .exec: break
            }
            var used: ExecCredential? = nil
            if case .exec(let config) = target.auth {
                do {
                    used = try credentials.credential(config, timeout: retry.execTimeout, rejected: rejected)
                } catch {
                    throw KubernetesError(object: object, cluster: target.name, cause: .credentials(error.message))
                }
                switch used?.secret {
                case .token(let token)?: headers.append(("Authorization", "Bearer \(token)"))
                case .clientCertificate(let certificate, let key)?:
                    tls.clientCertificatePEM = certificate
                    tls.clientKeyPEM = key
                case nil: break
                }
            }
            let request = KubeRequest(
                method: method, url: target.server + path, headers: headers, body: body, timeout: retry.timeout, proxy: target.proxyURL,
                maxResponseBytes: maxResponseBytes)
            let response: KubeResponse
            do throws(TransportError) {
                response = try transport.send(request, tls: tls)
                // Also for transports that do not apply the bound themselves.
                if response.body.count > maxResponseBytes { throw TransportError.responseTooLarge(maxResponseBytes) }
            } catch {
                // A bound exceeded is the answer, not a blip: asking again would give the same.
                if case .responseTooLarge = error {
                    throw KubernetesError(object: object, cluster: target.name, cause: .transport(error))
                }
                if attempt < retry.attempts {
                    Thread.sleep(forTimeInterval: seconds(backoff))
                    backoff = min(backoff * 2, retry.maxBackoff)
                    continue
                }
                throw KubernetesError(object: object, cluster: target.name, cause: .transport(error))
            }
            if (200..<300).contains(response.status) { return response }
            if response.status == 401, case .tokenFile = target.auth, !reloadedToken {
                reloadedToken = true
                continue
            }
            // client-go's exec authenticator drops a credential the server rejected and runs the plugin again, once.
            if response.status == 401, case .exec = target.auth, rejected == nil, let used {
                rejected = used
                continue
            }
            let retryable = response.status == 429 || (500..<600).contains(response.status)
            if retryable && attempt < retry.attempts {
                var wait = backoff
                if let header = response.headerValues("Retry-After").first, let secondsValue = Int(header) {
                    wait = min(.seconds(secondsValue), retry.maxBackoff)
                }
                Thread.sleep(forTimeInterval: seconds(wait))
                backoff = min(backoff * 2, retry.maxBackoff)
                continue
            }
            var status = KubeStatus.decode(response.body, status: response.status)
            if status.retryAfterSeconds == nil, let header = response.headerValues("Retry-After").first { status.retryAfterSeconds = Int(header) }
            throw KubernetesError(object: object, cluster: target.name, cause: .status(status))
        }
    }

    private func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
