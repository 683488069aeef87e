import KubernetesClient
import RegistryCore

/// The writes of one reconcile: bring one service's objects in one cluster to the rendering, or
/// remove them. Pure logic over a `ClusterClient`; no state of its own.
enum ClusterSync {
    /// The service's live objects: its Service and Endpoints (by name, whoever owns them) and
    /// every slice labelled with its name. Three reads.
    static func readLive(_ client: any ClusterClient, namespace: String, name: String) throws(KubernetesError) -> [JSONValue] {
        var live: [JSONValue] = []
        if let object = try client.get(.service, namespace: namespace, name: name) { live.append(object) }
        if let object = try client.get(.endpoints, namespace: namespace, name: name) { live.append(object) }
        live += try client.list(.endpointSlice, namespace: namespace, labelSelector: "kubernetes.io/service-name=\(name)")
        return live
    }

    /// Differences between the rendering and the cluster.
    static func diff(_ service: ExternalService, client: any ClusterClient) throws(KubernetesError) -> [FieldDifference] {
        let live = try readLive(client, namespace: service.namespace, name: service.name)
        return LiveComparison.compare(rendering: ManifestRenderer.render(service).objects, live: live)
    }

    private static func key(_ object: JSONValue) -> String { "\(LiveObject.kind(object))/\(LiveObject.name(object))" }

    /// Applies the rendering: Service first (deleted and re-created when the change is one the
    /// API server refuses in place; its selector removed when it has one), then the endpoint
    /// objects, then our objects the rendering no longer has are deleted. Another owner's
    /// object is a conflict unless `adopt`. Nothing is written when the live objects already
    /// equal the rendering.
    static func ensure(_ service: ExternalService, client: any ClusterClient, adopt: Bool, dryRun: Bool) -> SyncResult {
        let cluster = client.name
        let rendering = ManifestRenderer.render(service).objects
        let live: [JSONValue]
        do {
            live = try readLive(client, namespace: service.namespace, name: service.name)
        } catch {
            return SyncResult(cluster: cluster, error: .kubernetes(error), dryRun: dryRun)
        }
        var liveByKey: [String: JSONValue] = [:]
        for object in live { liveByKey[key(object)] = object }
        let differences = LiveComparison.compare(rendering: rendering, live: live)
        if differences.isEmpty {
            return SyncResult(
                cluster: cluster, objects: rendering.map { ObjectResult(kind: LiveObject.kind($0), name: LiveObject.name($0), action: .unchanged) },
                dryRun: dryRun)
        }
        // Another owner's objects are left alone unless adopted.
        let foreign = rendering.filter { object in liveByKey[key(object)].map { !Ownership.isOurs($0) } ?? false }
        if !foreign.isEmpty && !adopt {
            var objects: [ObjectResult] = []
            var messages: [String] = []
            for object in rendering {
                guard foreign.contains(where: { key($0) == key(object) }) else {
                    objects.append(ObjectResult(kind: LiveObject.kind(object), name: LiveObject.name(object), action: .unchanged))
                    continue
                }
                var message =
                    "\(LiveObject.kind(object))/\(service.namespace)/\(LiveObject.name(object)) on cluster \(cluster) exists and is not managed by endpoint-registry"
                if let liveObject = liveByKey[key(object)], let selector = LiveObject.selector(liveObject) {
                    let text = selector.keys.sorted().map { "\($0)=\(selector[$0]!)" }.joined(separator: ",")
                    message +=
                        "; it has a selector (\(text)), so the cluster's endpoints controller would overwrite the registry's Endpoints"
                        + " (push with \"adopt\": true to take it over: the registry then removes the selector)"
                } else {
                    message += "; push with \"adopt\": true to take it over"
                }
                messages.append(message)
                objects.append(ObjectResult(kind: LiveObject.kind(object), name: LiveObject.name(object), action: .conflict, error: message))
            }
            return SyncResult(cluster: cluster, objects: objects, error: .conflict(messages.joined(separator: "; ")), dryRun: dryRun)
        }
        var objects: [ObjectResult] = []
        var serviceWarnings: [String] = []
        var recreate = false
        let liveService = liveByKey["Service/\(service.name)"]
        do {
            if let liveService, let selector = LiveObject.selector(liveService) {
                // Server-side apply cannot drop a field another manager owns: a merge patch can.
                let text = selector.keys.sorted().map { "\($0)=\(selector[$0]!)" }.joined(separator: ",")
                if !dryRun {
                    _ = try client.mergePatch(
                        .service, namespace: service.namespace, name: service.name,
                        patch: .object(JSONObject([("spec", .object(JSONObject([("selector", .null)])))])))
                }
                serviceWarnings.append(
                    "removed spec.selector (\(text)): with a selector the cluster's endpoints controller overwrites the registry's Endpoints")
            }
            if let liveService, immutableChange(live: liveService, service: service) {
                // spec.clusterIP is immutable (ClusterIP ↔ Headless): delete and create again.
                if !dryRun { try client.delete(.service, namespace: service.namespace, name: service.name, dryRun: false) }
                recreate = true
            }
        } catch {
            return SyncResult(
                cluster: cluster, objects: [ObjectResult(kind: "Service", name: service.name, action: .failed, error: error.description)],
                error: .kubernetes(error), dryRun: dryRun)
        }
        var firstError: SyncError? = nil
        for object in rendering {
            let kind = LiveObject.kind(object)
            let name = LiveObject.name(object)
            let before = liveByKey[key(object)].flatMap(LiveObject.resourceVersion)
            do {
                // A dry run of a re-created Service would meet the immutable field: skip it.
                if dryRun && recreate && kind == "Service" {
                    objects.append(ObjectResult(kind: kind, name: name, action: .recreated, warnings: serviceWarnings))
                    continue
                }
                let result = try client.apply(object, dryRun: dryRun)
                let action: ObjectResult.Action =
                    recreate && kind == "Service"
                    ? .recreated
                    : (result.created || before == nil ? .created : (LiveObject.resourceVersion(result.object) == before ? .unchanged : .configured))
                objects.append(
                    ObjectResult(kind: kind, name: name, action: action, warnings: (kind == "Service" ? serviceWarnings : []) + result.warnings))
            } catch {
                objects.append(ObjectResult(kind: kind, name: name, action: .failed, error: error.description))
                if firstError == nil { firstError = .kubernetes(error) }
                // Without its Service the rest would be orphans: stop here.
                if kind == "Service" { return SyncResult(cluster: cluster, objects: objects, error: firstError, dryRun: dryRun) }
            }
        }
        // Prune: our objects for this service that the rendering no longer has (a mode change,
        // fewer slices). Other managers' slices (mirroring, EndpointSlice controller) are never touched.
        let keep = Set(rendering.map(key))
        for object in live.sorted(by: { key($0) < key($1) }) where !keep.contains(key(object)) && Ownership.isOurs(object) {
            guard let kind = ResourceKind(kind: LiveObject.kind(object)), kind != .service else { continue }
            let name = LiveObject.name(object)
            do {
                let warnings = try client.delete(kind, namespace: service.namespace, name: name, dryRun: dryRun)
                objects.append(ObjectResult(kind: kind.rawValue, name: name, action: .deleted, warnings: warnings))
            } catch {
                objects.append(ObjectResult(kind: kind.rawValue, name: name, action: .failed, error: error.description))
                if firstError == nil { firstError = .kubernetes(error) }
            }
        }
        return SyncResult(cluster: cluster, objects: objects, error: firstError, dryRun: dryRun)
    }

    /// Whether the live Service differs from the rendering in a field the API server will not
    /// change in place: `spec.clusterIP` between an allocated address and `None`
    /// (kubernetes/kubernetes pkg/apis/core/validation `ValidateServiceUpdate`: "field is
    /// immutable"). Changes to or from ExternalName are allowed by the API server.
    static func immutableChange(live: JSONValue, service: ExternalService) -> Bool {
        guard service.type != .externalName, LiveObjectAccess.spec(live, "type") != .string("ExternalName") else { return false }
        guard let clusterIP = LiveObject.clusterIP(live), !clusterIP.isEmpty else { return false }
        return (clusterIP == "None") != (service.type == .headless)
    }

    /// Deletes our objects of the service (slices, Endpoints, then the Service); others' are kept.
    static func remove(namespace: String, name: String, client: any ClusterClient) -> SyncResult {
        let cluster = client.name
        var objects: [ObjectResult] = []
        let live: [JSONValue]
        do {
            live = try readLive(client, namespace: namespace, name: name)
        } catch {
            return SyncResult(cluster: cluster, error: .kubernetes(error))
        }
        let order = ["EndpointSlice": 0, "Endpoints": 1, "Service": 2]
        var firstError: SyncError? = nil
        for object in live.sorted(by: { (order[LiveObject.kind($0)] ?? 3, key($0)) < (order[LiveObject.kind($1)] ?? 3, key($1)) }) {
            guard Ownership.isOurs(object), let kind = ResourceKind(kind: LiveObject.kind(object)) else { continue }
            let objectName = LiveObject.name(object)
            do {
                let warnings = try client.delete(kind, namespace: namespace, name: objectName, dryRun: false)
                objects.append(ObjectResult(kind: kind.rawValue, name: objectName, action: .deleted, warnings: warnings))
            } catch {
                objects.append(ObjectResult(kind: kind.rawValue, name: objectName, action: .failed, error: error.description))
                if firstError == nil { firstError = .kubernetes(error) }
            }
        }
        return SyncResult(cluster: cluster, objects: objects, error: firstError)
    }
}

/// Small readers of live objects the reconciler needs beyond `LiveObject`.
enum LiveObjectAccess {
    static func spec(_ object: JSONValue, _ field: String) -> JSONValue? {
        guard case .object(let root) = object, case .object(let spec)? = root["spec"] else { return nil }
        return spec[field]
    }
}
