import Foundation
import KubernetesClient
import RegistryCore
import RegistryStorage

/// What happened to one object in one cluster.
struct ObjectOutcome: Sendable {
    enum Action: String, Sendable { case created, configured, unchanged, deleted, failed, conflict }
    var kind: String
    var name: String
    var action: Action
    var warnings: [String] = []
    var error: String? = nil

    var json: JSONValue {
        var object = JSONObject([("kind", .string(kind)), ("name", .string(name)), ("action", .string(action.rawValue))])
        if !warnings.isEmpty { object["warnings"] = .array(warnings.map(JSONValue.string)) }
        if let error {
            object["error"] = .object(
                JSONObject([
                    ("type", .string("urn:problem-type:endpoint-registry:\(action == .conflict ? "conflict" : "kubernetes-error")")),
                    ("title", .string(action == .conflict ? "Conflict" : "Kubernetes API error")),
                    ("status", .integer(action == .conflict ? 409 : 502)), ("detail", .string(error)),
                ]))
        }
        return .object(object)
    }
}

/// One cluster's part of a push.
struct ClusterOutcome: Sendable {
    var cluster: String
    var objects: [ObjectOutcome]
    var error: String? = nil

    var succeeded: Bool { error == nil && !objects.contains { $0.action == .failed || $0.action == .conflict } }

    var json: JSONValue {
        var object = JSONObject([
            ("cluster", .string(cluster)), ("status", .string(succeeded ? "success" : "failure")), ("objects", .array(objects.map(\.json))),
        ])
        if let error { object["error"] = .string(error) }
        return .object(object)
    }
}

/// Pushes rendered services to clusters with server-side apply, Service first; prunes what this
/// registry pushed before and no longer renders; deletes on cascade. Only objects labelled
/// `app.kubernetes.io/managed-by: endpoint-registry` are ever overwritten or deleted; another
/// owner's object is a conflict unless the request adopts it.
struct PushEngine: Sendable {
    static let managedBy = "app.kubernetes.io/managed-by"

    let clusters: Clusters
    let store: ServiceStore

    static func labels(_ object: JSONValue) -> [String: String] {
        guard case .object(let root) = object, case .object(let metadata)? = root["metadata"], case .object(let labels)? = metadata["labels"]
        else { return [:] }
        var result: [String: String] = [:]
        for member in labels { if case .string(let value) = member.value { result[member.key] = value } }
        return result
    }

    static func name(_ object: JSONValue) -> String {
        if case .object(let root) = object, case .object(let metadata)? = root["metadata"], case .string(let name)? = metadata["name"] { return name }
        return ""
    }

    static func resourceVersion(_ object: JSONValue) -> String? {
        if case .object(let root) = object, case .object(let metadata)? = root["metadata"], case .string(let version)? = metadata["resourceVersion"] {
            return version
        }
        return nil
    }

    /// Ours by the manager label of the object's kind (see `Ownership`): mirrored slices, which
    /// copy the Endpoints' `app.kubernetes.io/managed-by`, are not.
    static func isOurs(_ object: JSONValue) -> Bool { Ownership.isOurs(object) }

    /// Pushes one service to one cluster.
    func push(_ record: ServiceRecord, to target: ClusterTarget, dryRun: Bool, adopt: Bool) -> ClusterOutcome {
        let api = clusters.api(target)
        let service = record.service
        let rendering = ManifestRenderer.render(service)
        var outcomes: [ObjectOutcome] = []
        do {
            // What is there now: to tell created/configured/unchanged apart, find other owners,
            // and know what to prune.
            var existing: [String: JSONValue] = [:]
            if let live = try api.get(.service, namespace: service.namespace, name: service.name) {
                existing["Service/\(service.name)"] = live.object
            }
            if let live = try api.get(.endpoints, namespace: service.namespace, name: service.name) {
                existing["Endpoints/\(service.name)"] = live.object
            }
            for slice in try api.list(.endpointSlice, namespace: service.namespace, labelSelector: "kubernetes.io/service-name=\(service.name)") {
                existing["EndpointSlice/\(PushEngine.name(slice))"] = slice
            }
            let rendered = rendering.objects.map { object -> (key: String, kind: String, name: String, object: JSONValue) in
                let kind: String
                if case .object(let root) = object, case .string(let value)? = root["kind"] { kind = value } else { kind = "" }
                return ("\(kind)/\(PushEngine.name(object))", kind, PushEngine.name(object), object)
            }
            // Another owner's object is left alone unless adopted; the Service decides for all.
            let foreign = rendered.filter { item in existing[item.key].map { !PushEngine.isOurs($0) } ?? false }
            if !foreign.isEmpty && !adopt {
                for item in rendered {
                    let isForeign = foreign.contains { $0.key == item.key }
                    outcomes.append(
                        ObjectOutcome(
                            kind: item.kind, name: item.name, action: isForeign ? .conflict : .unchanged,
                            error: isForeign
                                ? "\(item.kind)/\(service.namespace)/\(item.name) on cluster \(target.name) exists and is not managed by endpoint-registry; push with \"adopt\": true to take it over"
                                : nil))
                }
                return ClusterOutcome(cluster: target.name, objects: outcomes)
            }
            for item in rendered {
                let before = existing[item.key].flatMap(PushEngine.resourceVersion)
                do {
                    let result = try api.apply(item.object, dryRun: dryRun)
                    let action: ObjectOutcome.Action =
                        result.created || before == nil ? .created : (PushEngine.resourceVersion(result.object) == before ? .unchanged : .configured)
                    outcomes.append(ObjectOutcome(kind: item.kind, name: item.name, action: action, warnings: result.warnings))
                } catch {
                    outcomes.append(ObjectOutcome(kind: item.kind, name: item.name, action: .failed, error: "\(error)"))
                    // Without its Service the rest would be orphans: stop here.
                    if item.kind == "Service" { return ClusterOutcome(cluster: target.name, objects: outcomes) }
                }
            }
            // Prune: our objects for this service that the rendering no longer has.
            let keep = Set(rendered.map(\.key))
            for (key, object) in existing.sorted(by: { $0.key < $1.key }) where !keep.contains(key) && PushEngine.isOurs(object) {
                let kindName = String(key.prefix { $0 != "/" })
                guard let kind = ResourceKind(kind: kindName), kind != .service else { continue }
                let name = PushEngine.name(object)
                do {
                    let warnings = try api.delete(kind, namespace: service.namespace, name: name, dryRun: dryRun)
                    outcomes.append(ObjectOutcome(kind: kindName, name: name, action: .deleted, warnings: warnings))
                } catch {
                    outcomes.append(ObjectOutcome(kind: kindName, name: name, action: .failed, error: "\(error)"))
                }
            }
        } catch {
            return ClusterOutcome(cluster: target.name, objects: outcomes, error: "\(error)")
        }
        return ClusterOutcome(cluster: target.name, objects: outcomes)
    }

    /// Deletes a service's objects (ours only) from one cluster.
    func deleteEverywhere(namespace: String, name: String, from target: ClusterTarget) -> ClusterOutcome {
        let api = clusters.api(target)
        var outcomes: [ObjectOutcome] = []
        do {
            var found: [(ResourceKind, JSONValue)] = []
            for slice in try api.list(.endpointSlice, namespace: namespace, labelSelector: "kubernetes.io/service-name=\(name)") {
                found.append((.endpointSlice, slice))
            }
            if let endpoints = try api.get(.endpoints, namespace: namespace, name: name) { found.append((.endpoints, endpoints.object)) }
            if let service = try api.get(.service, namespace: namespace, name: name) { found.append((.service, service.object)) }
            for (kind, object) in found {
                let objectName = PushEngine.name(object)
                guard PushEngine.isOurs(object) else {
                    outcomes.append(ObjectOutcome(kind: kind.rawValue, name: objectName, action: .unchanged))
                    continue
                }
                do {
                    let warnings = try api.delete(kind, namespace: namespace, name: objectName, dryRun: false)
                    outcomes.append(ObjectOutcome(kind: kind.rawValue, name: objectName, action: .deleted, warnings: warnings))
                } catch {
                    outcomes.append(ObjectOutcome(kind: kind.rawValue, name: objectName, action: .failed, error: "\(error)"))
                }
            }
        } catch {
            return ClusterOutcome(cluster: target.name, objects: outcomes, error: "\(error)")
        }
        return ClusterOutcome(cluster: target.name, objects: outcomes)
    }
}
