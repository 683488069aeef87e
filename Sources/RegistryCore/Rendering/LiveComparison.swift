/// Who owns an object in a cluster, by the label Kubernetes uses for its kind.
///
/// An object is the registry's only when it carries the registry's manager label **for its
/// kind**: `endpointslice.kubernetes.io/managed-by: endpoint-registry` on EndpointSlices
/// (kubernetes/api discovery/v1 `LabelManagedBy`), `app.kubernetes.io/managed-by:
/// endpoint-registry` on Services and Endpoints. The EndpointSlice mirroring controller copies
/// every label of an Endpoints object onto the slices it makes (kubernetes/kubernetes
/// pkg/controller/endpointslicemirroring/utils.go `newEndpointSlice`), including
/// `app.kubernetes.io/managed-by`, but sets its own `endpointslice.kubernetes.io/managed-by`
/// (`endpointslicemirroring-controller.k8s.io`): such slices are never ours.
public enum Ownership {
    public static let managedByLabel = "app.kubernetes.io/managed-by"
    public static let sliceManagedByLabel = "endpointslice.kubernetes.io/managed-by"
    /// The managed-by value of the EndpointSlice mirroring controller's slices.
    public static let mirroringController = "endpointslicemirroring-controller.k8s.io"
    /// The managed-by value of the EndpointSlice controller's slices.
    public static let sliceController = "endpointslice-controller.k8s.io"

    /// The label that names an object's manager for `kind` (`Service`, `Endpoints`, `EndpointSlice`).
    public static func label(forKind kind: String) -> String {
        kind == "EndpointSlice" ? sliceManagedByLabel : managedByLabel
    }

    /// `<label>=endpoint-registry`: the label selector that lists our objects of `kind`.
    public static func selector(forKind kind: String) -> String {
        "\(label(forKind: kind))=\(ManifestRenderer.managerName)"
    }

    /// Whether the registry owns `object` (by its `kind` and labels).
    public static func isOurs(_ object: JSONValue) -> Bool {
        LiveObject.labels(object)[label(forKind: LiveObject.kind(object))] == ManifestRenderer.managerName
    }
}

/// Read access to the parts of a Kubernetes object that comparisons need.
public enum LiveObject {
    public static func kind(_ object: JSONValue) -> String { string(member(object, "kind")) ?? "" }
    public static func name(_ object: JSONValue) -> String { string(member(member(object, "metadata"), "name")) ?? "" }
    public static func namespace(_ object: JSONValue) -> String { string(member(member(object, "metadata"), "namespace")) ?? "" }
    public static func resourceVersion(_ object: JSONValue) -> String? { string(member(member(object, "metadata"), "resourceVersion")) }
    /// `Kind/namespace/name`.
    public static func reference(_ object: JSONValue) -> String { "\(kind(object))/\(namespace(object))/\(name(object))" }

    public static func labels(_ object: JSONValue) -> [String: String] { strings(member(member(object, "metadata"), "labels")) }
    public static func annotations(_ object: JSONValue) -> [String: String] { strings(member(member(object, "metadata"), "annotations")) }

    /// The non-empty `spec.selector` of a Service, if any.
    public static func selector(_ object: JSONValue) -> [String: String]? {
        let selector = strings(member(member(object, "spec"), "selector"))
        return selector.isEmpty ? nil : selector
    }

    /// `spec.clusterIP` of a Service.
    public static func clusterIP(_ object: JSONValue) -> String? { string(member(member(object, "spec"), "clusterIP")) }

    static func member(_ value: JSONValue?, _ key: String) -> JSONValue? {
        if case .object(let object)? = value { return object[key] }
        return nil
    }

    static func string(_ value: JSONValue?) -> String? {
        if case .string(let text)? = value { return text }
        return nil
    }

    static func strings(_ value: JSONValue?) -> [String: String] {
        guard case .object(let map)? = value else { return [:] }
        var result: [String: String] = [:]
        for member in map { if case .string(let text) = member.value { result[member.key] = text } }
        return result
    }

    /// Keys of `metadata.<field>` that the field manager `manager` set by server-side apply,
    /// read from `metadata.managedFields[].fieldsV1` (`f:metadata` → `f:labels` → `f:<key>`).
    static func appliedKeys(_ object: JSONValue, field: String, manager: String) -> Set<String> {
        guard case .array(let entries)? = member(member(object, "metadata"), "managedFields") else { return [] }
        var keys = Set<String>()
        for entry in entries where string(member(entry, "manager")) == manager && string(member(entry, "operation")) == "Apply" {
            if case .object(let fields)? = member(member(member(entry, "fieldsV1"), "f:metadata"), "f:\(field)") {
                for key in fields.keys where key.hasPrefix("f:") { keys.insert(String(key.dropFirst(2))) }
            }
        }
        return keys
    }
}

/// One field that differs between what the registry renders and what a cluster holds.
public struct FieldDifference: Sendable, Equatable {
    /// `Kind/namespace/name`.
    public var object: String
    /// A path such as `metadata.labels[app]`, `spec.ports`, `endpoints`, or `(object)` when the
    /// whole object is missing (`expected: "present"`) or should not exist (`expected: "absent"`).
    public var field: String
    public var expected: JSONValue
    public var actual: JSONValue

    public init(object: String, field: String, expected: JSONValue, actual: JSONValue) {
        self.object = object
        self.field = field
        self.expected = expected
        self.actual = actual
    }

    /// `{"object", "field", "expected", "actual"}`.
    public var json: JSONValue {
        .object(JSONObject([("object", .string(object)), ("field", .string(field)), ("expected", expected), ("actual", actual)]))
    }
}

/// The one semantic comparison of a rendering with the live objects of a cluster, used by the
/// diff route and the reconciler alike. Pure.
///
/// Both sides get the API server's defaults first (kubernetes/kubernetes
/// pkg/apis/core/v1/defaults.go `SetDefaults_Service`, `SetDefaults_EndpointPort`;
/// pkg/apis/discovery/v1/defaults.go `SetDefaults_EndpointPort`), then every field the registry
/// renders is compared: labels and annotations (keys we render, plus keys our field manager
/// applied before and no longer renders), the Service `spec` (and any `selector`, which the
/// registry never sets), Endpoints `subsets` as the set of (address, readiness, ports) the API
/// server would repack them into (pkg/api/endpoints/util.go `RepackSubsets`), and EndpointSlice
/// `addressType`, `ports` and `endpoints` as sets. Server-managed fields (`uid`,
/// `resourceVersion`, `managedFields`, `creationTimestamp`, `status`, an allocated `clusterIP`,
/// `ipFamilies`, `ipFamilyPolicy`) are ignored.
public enum LiveComparison {
    /// Differences between `rendering` (objects of one service) and `live` (every object of
    /// that service found in the cluster: its Service, its Endpoints, the slices labelled with
    /// its name, whoever made them). Our objects the rendering no longer has are reported
    /// `expected: "absent"`; other managers' slices are ignored.
    public static func compare(rendering: [JSONValue], live: [JSONValue], manager: String = ManifestRenderer.managerName) -> [FieldDifference] {
        var differences: [FieldDifference] = []
        var liveByKey: [String: JSONValue] = [:]
        for object in live { liveByKey["\(LiveObject.kind(object))/\(LiveObject.name(object))"] = object }
        var rendered = Set<String>()
        for object in rendering {
            let key = "\(LiveObject.kind(object))/\(LiveObject.name(object))"
            rendered.insert(key)
            differences += compare(rendered: object, live: liveByKey[key], manager: manager)
        }
        for object in live where !rendered.contains("\(LiveObject.kind(object))/\(LiveObject.name(object))") {
            guard LiveObject.kind(object) != "Service", Ownership.isOurs(object) else { continue }
            differences.append(
                FieldDifference(object: LiveObject.reference(object), field: "(object)", expected: .string("absent"), actual: .string("present")))
        }
        return differences
    }

    /// Differences of one rendered object with its live counterpart (nil: missing).
    public static func compare(rendered: JSONValue, live: JSONValue?, manager: String = ManifestRenderer.managerName) -> [FieldDifference] {
        let reference = LiveObject.reference(rendered)
        guard let live else {
            return [FieldDifference(object: reference, field: "(object)", expected: .string("present"), actual: .string("missing"))]
        }
        var differences: [FieldDifference] = []
        func differ(_ field: String, _ expected: JSONValue, _ actual: JSONValue) {
            if canonical(expected) != canonical(actual) {
                differences.append(FieldDifference(object: reference, field: field, expected: expected, actual: actual))
            }
        }
        for field in ["labels", "annotations"] {
            let expected = LiveObject.strings(LiveObject.member(LiveObject.member(rendered, "metadata"), field))
            let actual = LiveObject.strings(LiveObject.member(LiveObject.member(live, "metadata"), field))
            var keys = Set(expected.keys)
            // Keys we applied before and no longer render are removed by the next apply: drift.
            keys.formUnion(LiveObject.appliedKeys(live, field: field, manager: manager).filter { actual[$0] != nil })
            for key in keys.sorted() {
                differ("metadata.\(field)[\(key)]", expected[key].map(JSONValue.string) ?? .null, actual[key].map(JSONValue.string) ?? .null)
            }
        }
        let kind = LiveObject.kind(rendered)
        let expected = withDefaults(rendered)
        let actual = withDefaults(live)
        switch kind {
        case "Service":
            let expectedSpec = LiveObject.member(expected, "spec")
            let actualSpec = LiveObject.member(actual, "spec")
            if case .object(let spec)? = expectedSpec {
                for key in spec.keys.sorted() {
                    let want = spec[key] ?? .null
                    var have = LiveObject.member(actualSpec, key) ?? .null
                    if key == "ports" { have = sortedArray(withoutAllocatedNodePorts(have, rendered: want)) }
                    differ("spec.\(key)", key == "ports" ? sortedArray(want) : want, have)
                }
                // A ClusterIP Service that became headless (or the reverse) in the cluster.
                if spec["clusterIP"] == nil, LiveObject.string(LiveObject.member(actualSpec, "clusterIP")) == "None" {
                    differences.append(
                        FieldDifference(object: reference, field: "spec.clusterIP", expected: .string("(allocated)"), actual: .string("None")))
                }
            }
            if let selector = LiveObject.selector(live) {
                differences.append(
                    FieldDifference(object: reference, field: "spec.selector", expected: .null, actual: ManifestRenderer.sortedStrings(selector)))
            }
        case "Endpoints":
            differ("subsets", .array(expandedSubsets(expected).map(JSONValue.string)), .array(expandedSubsets(actual).map(JSONValue.string)))
        case "EndpointSlice":
            differ("addressType", LiveObject.member(expected, "addressType") ?? .null, LiveObject.member(actual, "addressType") ?? .null)
            differ("ports", sortedArray(LiveObject.member(expected, "ports")), sortedArray(LiveObject.member(actual, "ports")))
            differ("endpoints", sortedArray(LiveObject.member(expected, "endpoints")), sortedArray(LiveObject.member(actual, "endpoints")))
        default:
            break
        }
        return differences
    }

    /// Live Service ports without the `nodePort`s the cluster allocated for ports rendered
    /// without one (NodePort and LoadBalancer services): allocation is not drift.
    static func withoutAllocatedNodePorts(_ live: JSONValue, rendered: JSONValue) -> JSONValue {
        guard case .array(let items) = live, case .array(let wanted) = rendered else { return live }
        let pinned = Set(
            wanted.compactMap { port -> String? in
                guard case .object(let object) = port, object["nodePort"] != nil else { return nil }
                return "\(object["protocol"] ?? .null)/\(object["port"] ?? .null)"
            })
        return .array(
            items.map { port in
                guard case .object(var object) = port, !pinned.contains("\(object["protocol"] ?? .null)/\(object["port"] ?? .null)") else {
                    return port
                }
                object["nodePort"] = nil
                return .object(object)
            })
    }

    /// `object` with the values the API server defaults, and with the meaning of absent
    /// endpoint conditions spelled out (discovery/v1 `EndpointConditions`: `ready` and
    /// `serving` nil mean true, `terminating` nil means false).
    public static func withDefaults(_ object: JSONValue) -> JSONValue {
        guard case .object(var root) = object else { return object }
        switch LiveObject.kind(object) {
        case "Service":
            guard case .object(var spec)? = root["spec"] else {
                root["spec"] = .object(JSONObject([("type", .string("ClusterIP")), ("sessionAffinity", .string("None"))]))
                return withDefaults(.object(root))
            }
            if spec["type"] == nil { spec["type"] = .string("ClusterIP") }
            if spec["sessionAffinity"] == nil { spec["sessionAffinity"] = .string("None") }
            if spec["internalTrafficPolicy"] == nil, spec["type"] != .string("ExternalName") {
                spec["internalTrafficPolicy"] = .string("Cluster")
            }
            if case .array(let ports)? = spec["ports"] {
                spec["ports"] = .array(
                    ports.map { port in
                        guard case .object(var item) = port else { return port }
                        if item["protocol"] == nil { item["protocol"] = .string("TCP") }
                        if item["targetPort"] == nil || item["targetPort"] == .integer(0) || item["targetPort"] == .string("") {
                            item["targetPort"] = item["port"]
                        }
                        if item["name"] == .string("") { item["name"] = nil }
                        return .object(item)
                    })
            }
            root["spec"] = .object(spec)
        case "Endpoints":
            if case .array(let subsets)? = root["subsets"] {
                root["subsets"] = .array(
                    subsets.map { subset in
                        guard case .object(var item) = subset else { return subset }
                        if case .array(let ports)? = item["ports"] { item["ports"] = .array(ports.map { defaultedPort($0, emptyName: false) }) }
                        return .object(item)
                    })
            }
        case "EndpointSlice":
            if case .array(let ports)? = root["ports"] { root["ports"] = .array(ports.map { defaultedPort($0, emptyName: true) }) }
            if case .array(let endpoints)? = root["endpoints"] {
                root["endpoints"] = .array(
                    endpoints.map { endpoint in
                        guard case .object(var item) = endpoint else { return endpoint }
                        var conditions = JSONObject()
                        if case .object(let given)? = item["conditions"] { conditions = given }
                        if conditions["ready"] == nil || conditions["ready"] == .null { conditions["ready"] = .bool(true) }
                        if conditions["serving"] == nil || conditions["serving"] == .null { conditions["serving"] = conditions["ready"] }
                        if conditions["terminating"] == .bool(false) || conditions["terminating"] == .null { conditions["terminating"] = nil }
                        item["conditions"] = .object(conditions)
                        return .object(item)
                    })
            }
        default:
            break
        }
        return .object(root)
    }

    private static func defaultedPort(_ port: JSONValue, emptyName: Bool) -> JSONValue {
        guard case .object(var item) = port else { return port }
        if item["protocol"] == nil { item["protocol"] = .string("TCP") }
        if emptyName, item["name"] == nil { item["name"] = .string("") }
        if !emptyName, item["name"] == .string("") { item["name"] = nil }
        return .object(item)
    }

    /// Endpoints subsets as the sorted set of `ip ready hostname ports` lines: equal for every
    /// layout the API server's repacking could give.
    static func expandedSubsets(_ object: JSONValue) -> [String] {
        guard case .array(let subsets)? = LiveObject.member(object, "subsets") else { return [] }
        var lines = Set<String>()
        for subset in subsets {
            var ports: [String] = []
            if case .array(let items)? = LiveObject.member(subset, "ports") { ports = items.map(canonical).sorted() }
            let portText = ports.joined(separator: ",")
            for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                guard case .array(let addresses)? = LiveObject.member(subset, field) else { continue }
                for address in addresses {
                    let ip = LiveObject.string(LiveObject.member(address, "ip")) ?? ""
                    let hostname = LiveObject.string(LiveObject.member(address, "hostname")) ?? ""
                    lines.insert("\(ip) ready=\(ready) hostname=\(hostname) ports=[\(portText)]")
                }
            }
        }
        return lines.sorted()
    }

    static func sortedArray(_ value: JSONValue?) -> JSONValue {
        guard case .array(let items)? = value else { return .array([]) }
        return .array(items.map { (canonical($0), $0) }.sorted { $0.0 < $1.0 }.map(\.1))
    }

    /// JSON text with object keys sorted: equal for equal meanings.
    public static func canonical(_ value: JSONValue) -> String {
        JSONWriter.string(sortedKeys(value))
    }

    static func sortedKeys(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            return .object(JSONObject(object.keys.sorted().map { ($0, sortedKeys(object[$0] ?? .null)) }))
        case .array(let items):
            return .array(items.map(sortedKeys))
        default:
            return value
        }
    }
}
