import Foundation
import HTTPServer
import Liveness
import RegistryCore
import RegistryStorage

/// Handlers that render registrations to Kubernetes manifests and import manifests back.
struct ManifestHandlers: Sendable {
    let store: ServiceStore
    let cache: RenderCache
    /// `clusters` of services new to the registry on import (`--default-clusters`).
    var defaultClusters: [String] = []
    /// Effective readiness of health-checked addresses (issue 13).
    var liveness: HealthChecker? = nil
    /// The addresses `host` addresses resolve to (issue 13).
    var dns: DNSRefresher? = nil

    /// The output format: `?format=` wins, then `Accept` (RFC 9110 §12.5.1: the media ranges in
    /// order of their `q`, `q=0` refused). JSON, the contract's first media type, when there is no
    /// `Accept` or it takes anything (`*/*`, `application/*`), as the Kubernetes API server answers
    /// JSON unless asked for YAML; YAML for `application/yaml` (or `application/x-yaml`,
    /// `text/yaml`, `text/*`). 406 when the client accepts neither.
    private func format(_ request: HTTPRequest) throws(APIError) -> ManifestFormat {
        if let text = request.queryValue("format") {
            guard let format = ManifestFormat(rawValue: text) else {
                throw .badRequest("format must be yaml or json, not \"\(text)\"", field: "format")
            }
            return format
        }
        guard let accept = request.headers.list("Accept"), !accept.trimmingCharacters(in: .whitespaces).isEmpty else { return .json }
        var ranges: [(type: String, quality: Double, index: Int)] = []
        for (index, element) in accept.split(separator: ",").enumerated() {
            let parts = element.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let type = parts.first, !type.isEmpty else { continue }
            var quality = 1.0
            for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
                quality = Double(parameter.dropFirst(2)) ?? 1.0
            }
            if quality > 0 { ranges.append((type, quality, index)) }
        }
        ranges.sort { $0.quality != $1.quality ? $0.quality > $1.quality : $0.index < $1.index }
        for range in ranges {
            switch range.type {
            case "application/json", "*/*", "application/*": return .json
            case "application/yaml", "application/x-yaml", "text/yaml", "text/*": return .yaml
            default: continue
            }
        }
        throw .notAcceptable("manifests are served as application/json or application/yaml, not \(accept)")
    }

    private func mode(_ request: HTTPRequest) throws(APIError) -> EndpointsMode? {
        guard let text = request.queryValue("endpoints") else { return nil }
        guard let mode = EndpointsMode(rawValue: text) else {
            throw .badRequest("endpoints must be endpoints, endpointslices or both, not \"\(text)\"", field: "endpoints")
        }
        return mode
    }

    /// The rendering of `version`, from the cache or rendered now; nil if the service is gone.
    private func rendered(_ version: ServiceVersion, mode: EndpointsMode?, format: ManifestFormat) throws -> RenderedService? {
        let epochs = self.epochs(version.key)
        let key = RenderCache.Key(version: version, mode: mode, format: format, healthEpoch: epochs.health, dnsEpoch: epochs.dns)
        if let hit = cache.cached(key) { return hit }
        guard let record = try store.record(namespace: version.key.namespace, name: version.key.name) else { return nil }
        let current = ServiceVersion(key: version.key, uid: record.uid, revision: record.revision)
        return cache.rendered(RenderCache.Key(version: current, mode: mode, format: format, healthEpoch: epochs.health, dnsEpoch: epochs.dns)) {
            RenderCache.render(effective(record.service), mode: mode, format: format)
        }
    }

    /// What is rendered for a registration: its `host` addresses resolved, then the effective
    /// readiness of health checks applied (as the reconciler's view).
    private func effective(_ service: ExternalService) -> ExternalService {
        let resolved = dns?.resolved(service) ?? service
        return liveness?.effective(resolved) ?? resolved
    }

    /// Change when health checks change what is rendered ready, and when `host` addresses
    /// resolve to other addresses (0 without).
    private func epochs(_ key: ServiceKey) -> (health: Int, dns: Int) {
        (liveness?.epoch(namespace: key.namespace, name: key.name) ?? 0, dns?.epoch(namespace: key.namespace, name: key.name) ?? 0)
    }

    /// The entity tag suffix of the epochs (empty when both are 0, so that tags of services
    /// without health checks or host addresses stay what they were).
    private static func epochSuffix(_ epochs: (health: Int, dns: Int)) -> String {
        (epochs.health == 0 ? "" : "-h\(epochs.health)") + (epochs.dns == 0 ? "" : "-d\(epochs.dns)")
    }

    /// The body is sent from the cached renderings themselves (segments), so that many clients
    /// reading the same large manifests share one copy of them.
    private func response(_ format: ManifestFormat, _ items: [RenderedService], etag: String?) -> HTTPResponse {
        var segments: [[UInt8]]
        switch format {
        case .yaml:
            segments = items.map(\.bytes).filter { !$0.isEmpty }
        case .json:
            segments = [Array(#"{"apiVersion":"v1","kind":"List","items":["#.utf8)]
            var first = true
            for item in items where !item.bytes.isEmpty {
                if !first { segments.append([UInt8(ascii: ",")]) }
                segments.append(item.bytes)
                first = false
            }
            segments.append(Array("]}\n".utf8))
        }
        if segments.isEmpty { segments = [[]] }
        // RFC 9110 §12.5.5: the representation depends on Accept.
        var headers = HTTPHeaders([("Content-Type", format.mediaType), ("Vary", "Accept")])
        if let etag { headers.add("ETag", etag) }
        for warning in items.flatMap(\.warnings) {
            headers.add("Warning", "299 - \"\(warning.replacingOccurrences(of: "\"", with: "'"))\"")
        }
        return HTTPResponse(status: 200, headers: headers, segments: segments)
    }

    /// - Remark: HTTP `GET /v1/services/{namespace}/{name}/manifests`
    func getServiceManifests(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        let format = try format(context.request)
        let mode = try mode(context.request)
        guard let version = try store.version(namespace: namespace, name: name),
            let rendered = try rendered(version, mode: mode, format: format)
        else { throw StoreError.notFound(namespace: namespace, name: name) }
        let etag =
            "\"\(version.revision)-\(version.uid.prefix(8))-\(mode?.rawValue ?? "default")-\(format.rawValue)\(Self.epochSuffix(epochs(version.key)))\""
        if try RequestChecks.readPreconditions(context.request, etag: etag) { return Responses.notModified(etag: etag) }
        return response(format, [rendered], etag: etag)
    }

    /// - Remark: HTTP `GET /v1/manifests`
    func listManifests(_ context: RequestContext) throws -> HTTPResponse {
        let request = context.request
        let format = try format(request)
        let mode = try mode(request)
        let namespace = try ServiceHandlers.namespaceFilter(context)
        let selector = try LabelSelector(parsing: request.queryValue("labelSelector") ?? "")
        let scope = context.principal.scope
        let versions = try store.versions(namespace: namespace, selector: selector, allowed: scope.allows)
        // The output is a function of the listed (uid, revision) pairs, the mode and the format
        // (rendering is deterministic), so their digest is the entity tag: any write to a listed
        // service, and any creation or deletion in the listed set, changes it.
        var identity = "\(mode?.rawValue ?? "default") \(format.rawValue)\n"
        // Plus the health and DNS epochs: a change of effective readiness or of resolved addresses
        // changes the output without a new revision.
        for version in versions {
            identity += "\(version.key.namespace)/\(version.key.name) \(version.uid) \(version.revision)\(Self.epochSuffix(epochs(version.key)))\n"
        }
        let etag = Responses.digestETag(Array(identity.utf8))
        if try RequestChecks.readPreconditions(request, etag: etag) { return Responses.notModified(etag: etag) }
        let items = try versions.compactMap { try rendered($0, mode: mode, format: format) }
        return response(format, items, etag: etag)
    }

    /// - Remark: HTTP `POST /v1/import`
    func importManifests(_ context: RequestContext) throws -> HTTPResponse {
        let request = context.request
        let dryRun = try ServiceHandlers.flag(request, "dryRun")
        var policy = ImportConflictPolicy.fail
        if let text = request.queryValue("onConflict") {
            guard let parsed = ImportConflictPolicy(rawValue: text) else {
                throw APIError.badRequest("onConflict must be fail, skip or replace, not \"\(text)\"", field: "onConflict")
            }
            policy = parsed
        }
        let strict = try ServiceHandlers.flag(request, "strict")
        let defaultNamespace = try ServiceHandlers.namespaceFilter(context) ?? ExternalService.defaultNamespace
        let type = RequestChecks.mediaType(request.headers["Content-Type"])
        let documents: [JSONValue]
        switch type {
        case "application/json":
            documents = [try JSONParser.parse(request.body)]
        case "application/yaml", "application/x-yaml", "text/yaml":
            documents = try ManifestDocuments.parseYAML(bytes: request.body)
        default:
            throw APIError.unsupportedMediaType(got: request.headers["Content-Type"], accepted: ["application/yaml", "application/json"])
        }
        // RFC 9110 §13.2.1: the preconditions come after what would fail without them.
        try RequestChecks.checkPreconditionsWithoutEntity(request, hasRepresentation: false)
        let plan: ImportPlan
        switch ManifestImporter.plan(ManifestDocuments.objects(documents), defaultNamespace: defaultNamespace) {
        case .success(let value): plan = value
        case .failure(let failure): throw failure
        }
        if strict {
            let dropped = plan.warnings.filter(\.notKept)
            if !dropped.isEmpty {
                throw ValidationFailure(dropped.map { FieldViolation($0.path, .forbidden, "?strict=true: \($0.message)") })
            }
        }
        for service in plan.services { try ServiceHandlers.checkScope(context.principal, service.namespace) }
        let outcomes = try store.importServices(
            plan.services, onConflict: policy, dryRun: dryRun, audit: context.audit, defaultClusters: defaultClusters)
        let body = JSONValue.object(
            JSONObject([
                ("dryRun", .bool(dryRun)), ("onConflict", .string(policy.rawValue)),
                (
                    "services",
                    .array(
                        outcomes.map { outcome in
                            .object(
                                JSONObject([
                                    ("namespace", .string(outcome.key.namespace)), ("name", .string(outcome.key.name)),
                                    ("action", .string(outcome.action.rawValue)), ("revision", .integer(outcome.revision)),
                                ]))
                        })
                ),
                (
                    "refused",
                    .array(
                        plan.refused.map { refused in
                            var object = JSONObject([("document", .string(refused.path)), ("kind", .string(refused.kind))])
                            if let namespace = refused.namespace { object["namespace"] = .string(namespace) }
                            if let name = refused.name { object["name"] = .string(name) }
                            object["reason"] = .string(refused.reason)
                            return .object(object)
                        })
                ),
                (
                    "warnings",
                    .array(
                        plan.warnings.map { warning in
                            .object(
                                JSONObject([
                                    ("field", .string(warning.path)), ("message", .string(warning.message)), ("notKept", .bool(warning.notKept)),
                                ]))
                        })
                ),
            ]))
        var response = Responses.json(200, body)
        for warning in plan.warnings { response.headers.add("Warning", Responses.warningValue(warning.description)) }
        return response
    }
}
