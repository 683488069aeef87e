import Foundation
import KubernetesClient
import Reconciler
import RegistryCore
import Synchronization

/// An in-memory API server for one cluster: server-side apply with the defaults the real one
/// writes, `spec.clusterIP` allocated and immutable, label-selector lists, a request log, and
/// injectable failures or a hang.
final class InMemoryCluster: ClusterClient, Sendable {
    struct State {
        var objects: [String: JSONValue] = [:]
        var version = 100
        var requests: [String] = []
        /// Fails every call with this status while set.
        var failure: KubeStatus? = nil
        var hang = false
        /// Hangs only requests starting with this (e.g. "APPLY").
        var hangPrefix: String? = nil
    }

    let name: String
    let state = Mutex(State())
    private let release = HangGate()

    init(name: String = "test") { self.name = name }

    private func key(_ kind: ResourceKind, _ namespace: String, _ name: String) -> String { "\(kind.rawValue)/\(namespace)/\(name)" }

    private func enter(_ request: String, object: String) throws(KubernetesError) {
        let (failure, hang) = state.withLock { state in
            state.requests.append(request)
            return (state.failure, state.hang || state.hangPrefix.map { request.hasPrefix($0) } == true)
        }
        if hang { release.waitWhile { self.state.withLock { $0.hang || $0.hangPrefix.map { request.hasPrefix($0) } == true } } }
        if let failure { throw KubernetesError(object: object, cluster: name, cause: .status(failure)) }
    }

    var requests: [String] { state.withLock { $0.requests } }
    func resetRequests() { state.withLock { $0.requests = [] } }
    func object(_ kind: ResourceKind, _ namespace: String, _ name: String) -> JSONValue? { state.withLock { $0.objects[key(kind, namespace, name)] } }
    var keys: [String] { state.withLock { $0.objects.keys.sorted() } }

    func put(_ object: JSONValue) {
        let kind = ResourceKind(kind: LiveObject.kind(object))!
        state.withLock { $0.objects[key(kind, LiveObject.namespace(object), LiveObject.name(object))] = object }
    }

    func remove(_ kind: ResourceKind, _ namespace: String, _ name: String) {
        state.withLock { _ = $0.objects.removeValue(forKey: key(kind, namespace, name)) }
    }

    func fail(_ status: KubeStatus?) { state.withLock { $0.failure = status } }

    func hangRequests(startingWith prefix: String?) {
        state.withLock { $0.hangPrefix = prefix }
        release.broadcast()
    }

    func setHang(_ hang: Bool) {
        state.withLock { $0.hang = hang }
        release.broadcast()
    }

    func get(_ kind: ResourceKind, namespace: String, name: String) throws(KubernetesError) -> JSONValue? {
        try enter("GET \(kind.rawValue)/\(namespace)/\(name)", object: key(kind, namespace, name))
        return object(kind, namespace, name)
    }

    func list(_ kind: ResourceKind, namespace: String, labelSelector: String) throws(KubernetesError) -> [JSONValue] {
        try enter("LIST \(kind.rawValue)/\(namespace)?\(labelSelector)", object: "\(kind.rawValue)/\(namespace)/*")
        let wanted = labelSelector.split(separator: ",").map { $0.split(separator: "=", maxSplits: 1).map(String.init) }
        return state.withLock { state in
            state.objects.keys.sorted().filter { $0.hasPrefix("\(kind.rawValue)/\(namespace)/") }.compactMap { state.objects[$0] }.filter { object in
                let labels = LiveObject.labels(object)
                return wanted.allSatisfy { $0.count == 2 && labels[$0[0]] == $0[1] }
            }
        }
    }

    func apply(_ object: JSONValue, dryRun: Bool) throws(KubernetesError) -> ApplyResult {
        let kind = ResourceKind(kind: LiveObject.kind(object))!
        let objectKey = key(kind, LiveObject.namespace(object), LiveObject.name(object))
        try enter("APPLY \(objectKey)", object: objectKey)
        return try state.withLock { state throws(KubernetesError) -> ApplyResult in
            let previous = state.objects[objectKey]
            guard case .object(var root) = LiveComparison.withDefaults(object), case .object(var metadata)? = root["metadata"] else {
                throw KubernetesError(object: objectKey, cluster: name, cause: .invalidResponse("bad object"))
            }
            if kind == .service, case .object(var spec)? = root["spec"] {
                let old = previous.flatMap(LiveObject.clusterIP)
                if spec["type"] != .string("ExternalName") {
                    if let wanted = LiveObject.clusterIP(object), let old, wanted != old {
                        throw KubernetesError(
                            object: objectKey, cluster: name,
                            cause: .status(
                                KubeStatus(
                                    code: 422, reason: "Invalid",
                                    message:
                                        "Service \"\(LiveObject.name(object))\" is invalid: spec.clusterIP: Invalid value: \"\(wanted)\": field is immutable",
                                    causes: [KubeStatus.Cause(reason: "FieldValueInvalid", message: "field is immutable", field: "spec.clusterIP")])))
                    }
                    if spec["clusterIP"] == nil {
                        state.version += 1
                        spec["clusterIP"] = .string(old ?? "10.96.0.\(state.version % 250)")
                    }
                }
                // A selector set by someone else survives an apply that does not mention it.
                if let selector = previous.flatMap({ LiveObjectAccessForTests.spec($0, "selector") }) { spec["selector"] = selector }
                root["spec"] = .object(spec)
            }
            var changed = true
            if let previous, case .object(let old) = previous {
                var comparable = old
                if case .object(var oldMeta)? = old["metadata"] {
                    oldMeta["resourceVersion"] = nil
                    oldMeta["uid"] = nil
                    comparable["metadata"] = .object(oldMeta)
                }
                changed = LiveComparison.canonical(.object(comparable)) != LiveComparison.canonical(.object(root))
                metadata["uid"] = LiveObject.member(previous, "metadata", "uid")
                metadata["resourceVersion"] = LiveObject.member(previous, "metadata", "resourceVersion")
            } else {
                metadata["uid"] = .string(UUID().uuidString)
            }
            if changed {
                state.version += 1
                metadata["resourceVersion"] = .string(String(state.version))
            }
            root["metadata"] = .object(metadata)
            if !dryRun { state.objects[objectKey] = .object(root) }
            return ApplyResult(object: .object(root), created: previous == nil)
        }
    }

    func mergePatch(_ kind: ResourceKind, namespace: String, name: String, patch: JSONValue) throws(KubernetesError) -> JSONValue {
        let objectKey = key(kind, namespace, name)
        try enter("PATCH \(objectKey)", object: objectKey)
        return state.withLock { state in
            let patched = MergePatch.apply(patch, to: state.objects[objectKey] ?? .null)
            state.objects[objectKey] = patched
            return patched
        }
    }

    func delete(_ kind: ResourceKind, namespace: String, name: String, dryRun: Bool) throws(KubernetesError) -> [String] {
        let objectKey = key(kind, namespace, name)
        try enter("DELETE \(objectKey)", object: objectKey)
        if !dryRun {
            state.withLock { state in
                state.objects[objectKey] = nil
                // The API server deletes a Service's Endpoints with it (pkg/registry/core/service/storage).
                if kind == .service { state.objects[key(.endpoints, namespace, name)] = nil }
            }
        }
        return []
    }

    func version() throws(KubernetesError) -> String {
        try enter("GET /version", object: "version")
        return "v1.37.0-memory"
    }
}

extension LiveObject {
    static func member(_ object: JSONValue, _ first: String, _ second: String) -> JSONValue? {
        guard case .object(let root) = object, case .object(let inner)? = root[first] else { return nil }
        return inner[second]
    }
}

enum LiveObjectAccessForTests {
    static func spec(_ object: JSONValue, _ field: String) -> JSONValue? { LiveObject.member(object, "spec", field) }
}

/// Waits for a predicate to turn false, woken by `broadcast`.
final class HangGate: Sendable {
    private let generation = Mutex(0)

    func broadcast() { generation.withLock { $0 += 1 } }

    func waitWhile(_ predicate: () -> Bool) {
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while predicate(), ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
    }
}
