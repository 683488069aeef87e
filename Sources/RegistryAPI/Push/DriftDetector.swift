import KubernetesClient
import RegistryCore

/// Compares live objects with the rendering by content, not layout: the API server regroups
/// Endpoints subsets and adds defaults and its own metadata, so each object is reduced to what
/// the registry decides (type, ports, addresses with their readiness, our labels) before comparing.
enum DriftDetector {
    static func drift(_ service: ExternalService, api: KubernetesAPI) throws(KubernetesError) -> [JSONValue] {
        var drift: [JSONValue] = []
        let rendering = ManifestRenderer.render(service)
        var renderedSlices = Set<String>()
        for object in rendering.objects {
            guard case .object(let root) = object, case .string(let kindName)? = root["kind"], let kind = ResourceKind(kind: kindName) else { continue }
            let name = PushEngine.name(object)
            if kind == .endpointSlice { renderedSlices.insert(name) }
            let reference = "\(kindName)/\(service.namespace)/\(name)"
            guard let live = try api.get(kind, namespace: service.namespace, name: name)?.object else {
                drift.append(entry(reference, "(object)", expected: .string("present"), actual: .string("missing")))
                continue
            }
            let expected = essence(kind, object)
            let actual = essence(kind, live)
            for key in expected.keys.sorted() where expected[key] != actual[key] {
                drift.append(entry(reference, key, expected: expected[key]!, actual: actual[key] ?? .null))
            }
        }
        for slice in try api.list(.endpointSlice, namespace: service.namespace, labelSelector: "kubernetes.io/service-name=\(service.name)")
        where PushEngine.isOurs(slice) && !renderedSlices.contains(PushEngine.name(slice)) {
            drift.append(
                entry("EndpointSlice/\(service.namespace)/\(PushEngine.name(slice))", "(object)", expected: .string("absent"), actual: .string("present")))
        }
        return drift
    }

    static func entry(_ object: String, _ field: String, expected: JSONValue, actual: JSONValue) -> JSONValue {
        .object(JSONObject([("object", .string(object)), ("field", .string(field)), ("expected", expected), ("actual", actual)]))
    }

    private static func member(_ value: JSONValue?, _ key: String) -> JSONValue? {
        if case .object(let object)? = value { return object[key] }
        return nil
    }

    private static func items(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { return items }
        return []
    }

    private static func text(_ value: JSONValue?, default fallback: String = "") -> String {
        if case .string(let text)? = value { return text }
        if case .number(let number)? = value { return number }
        if case .bool(let flag)? = value { return flag ? "true" : "false" }
        return fallback
    }

    /// Port lines `name/protocol/port[/appProtocol]`, sorted.
    private static func ports(_ value: JSONValue?, withTarget: Bool = false) -> JSONValue {
        let lines = items(value).map { port -> String in
            var line = "\(text(member(port, "name")))/\(text(member(port, "protocol"), default: "TCP"))/\(text(member(port, "port")))"
            if withTarget { line += "->\(text(member(port, "targetPort"), default: text(member(port, "port"))))" }
            if let app = member(port, "appProtocol") { line += "/\(text(app))" }
            return line
        }
        return .array(lines.sorted().map(JSONValue.string))
    }

    /// The fields that matter, by kind, as comparable values.
    static func essence(_ kind: ResourceKind, _ object: JSONValue) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        let labels = PushEngine.labels(object)
        fields["metadata.labels[app.kubernetes.io/managed-by]"] = labels["app.kubernetes.io/managed-by"].map(JSONValue.string) ?? .null
        switch kind {
        case .service:
            let spec = member(object, "spec")
            fields["spec.type"] = .string(text(member(spec, "type"), default: "ClusterIP"))
            fields["spec.clusterIP=None"] = .bool(text(member(spec, "clusterIP")) == "None")
            fields["spec.externalName"] = .string(text(member(spec, "externalName")))
            var hasSelector = false
            if case .object(let selector)? = member(spec, "selector") { hasSelector = !selector.isEmpty }
            fields["spec.selector"] = .bool(hasSelector)
            fields["spec.ports"] = ports(member(spec, "ports"), withTarget: true)
        case .endpoints:
            var lines: [String] = []
            for subset in items(member(object, "subsets")) {
                let portLines = items(member(subset, "ports")).map {
                    "\(text(member($0, "name")))/\(text(member($0, "protocol"), default: "TCP"))/\(text(member($0, "port")))"
                }.sorted().joined(separator: ",")
                for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                    for address in items(member(subset, field)) {
                        lines.append("\(text(member(address, "ip"))) ready=\(ready) hostname=\(text(member(address, "hostname"))) ports=\(portLines)")
                    }
                }
            }
            fields["subsets"] = .array(lines.sorted().map(JSONValue.string))
            fields["metadata.labels[endpointslice.kubernetes.io/skip-mirror]"] =
                labels["endpointslice.kubernetes.io/skip-mirror"].map(JSONValue.string) ?? .null
        case .endpointSlice:
            fields["addressType"] = .string(text(member(object, "addressType")))
            fields["ports"] = ports(member(object, "ports"))
            let lines = items(member(object, "endpoints")).map { endpoint -> String in
                let conditions = member(endpoint, "conditions")
                let addresses = items(member(endpoint, "addresses")).map { text($0) }.joined(separator: ",")
                return "\(addresses) ready=\(text(member(conditions, "ready"), default: "true")) hostname=\(text(member(endpoint, "hostname"))) zone=\(text(member(endpoint, "zone")))"
            }
            fields["endpoints"] = .array(lines.sorted().map(JSONValue.string))
            fields["metadata.labels[kubernetes.io/service-name]"] = labels["kubernetes.io/service-name"].map(JSONValue.string) ?? .null
        }
        return fields
    }
}
