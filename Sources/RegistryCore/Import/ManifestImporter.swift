/// An object of an import that does not become (part of) a registration, and why.
public struct RefusedObject: Sendable, Equatable {
    public var path: String
    public var kind: String
    public var namespace: String?
    public var name: String?
    public var reason: String
}

/// What an import would register, and what it leaves out.
public struct ImportPlan: Sendable {
    public var services: [ExternalService]
    public var refused: [RefusedObject]
}

/// Turns hand-written manifests back into registrations: Services without selector (ClusterIP,
/// headless or ExternalName) with their Endpoints (same name) and/or EndpointSlices (label
/// `kubernetes.io/service-name`). Slices win over Endpoints when both are given, since they are
/// what kube-proxy reads. Objects that are not external services are refused with a reason; an
/// object that is malformed fails the whole import, naming the document and field.
public enum ManifestImporter {
    public static func plan(_ objects: [ManifestDocuments.Object], defaultNamespace: String = ExternalService.defaultNamespace)
        -> Result<ImportPlan, ValidationFailure>
    {
        // Types first: a value of the wrong JSON type is the root cause of whatever else would
        // go wrong with its object, so it is reported alone (every one of them, at once).
        var typeErrors: [FieldViolation] = []
        for object in objects where typeErrors.count <= ValidationFailure.maxReported {
            guard case .object(let fields) = object.value else { continue }
            typeErrors += KubernetesType.of(kind: fields["kind"]?.stringValue).violations(of: object.value, at: object.path)
        }
        guard typeErrors.isEmpty else { return .failure(ValidationFailure(typeErrors)) }
        var builder = Builder(defaultNamespace: defaultNamespace)
        for object in objects { builder.classify(object) }
        return builder.finish()
    }
}

private struct Key: Hashable, Comparable {
    var namespace: String
    var name: String
    static func < (lhs: Key, rhs: Key) -> Bool { (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name) }
}

/// Backends collected for one service: (ip, hostname, zone, ready, backend port per service port).
private struct Backend {
    var ip: String
    var hostname: String?
    var zone: String?
    var ready: Bool
    var ports: [Int]
}

private struct Builder {
    let defaultNamespace: String
    var violations: [FieldViolation] = []
    var refused: [RefusedObject] = []
    var services: [Key: (path: String, object: JSONObject)] = [:]
    var endpoints: [Key: (path: String, object: JSONObject)] = [:]
    var slices: [Key: [(path: String, object: JSONObject)]] = [:]

    init(defaultNamespace: String) {
        self.defaultNamespace = defaultNamespace
    }

    /// Violations beyond `ValidationFailure.maxReported`, counted but not kept.
    var omitted = 0

    mutating func fail(_ path: String, _ message: String, kind: FieldViolation.Kind = .invalid) {
        guard violations.count < ValidationFailure.maxReported else {
            omitted += 1
            return
        }
        violations.append(FieldViolation(path, kind, message))
    }

    mutating func classify(_ item: ManifestDocuments.Object) {
        guard case .object(let object) = item.value, let apiVersion = object["apiVersion"]?.stringValue,
            let kind = object["kind"]?.stringValue
        else {
            fail(item.path, "not a Kubernetes object: apiVersion and kind are required")
            return
        }
        let metadata = object["metadata"]?.objectValue ?? JSONObject()
        guard let name = metadata["name"]?.stringValue, !name.isEmpty else {
            fail("\(item.path).metadata.name", "is required", kind: .required)
            return
        }
        let namespace = metadata["namespace"]?.stringValue ?? defaultNamespace
        let key = Key(namespace: namespace, name: name)
        func refuse(_ reason: String) {
            refused.append(RefusedObject(path: item.path, kind: kind, namespace: namespace, name: name, reason: reason))
        }
        switch (apiVersion, kind) {
        case ("v1", "Service"):
            let spec = object["spec"]?.objectValue ?? JSONObject()
            if let selector = spec["selector"]?.objectValue, !selector.isEmpty {
                refuse("it has a selector: Kubernetes manages its endpoints from pods, so it is not an external service")
            } else if let type = spec["type"]?.stringValue, type == "NodePort" || type == "LoadBalancer" {
                refuse("type \(type) is not registered; external services are ClusterIP, headless or ExternalName")
            } else if services[key] != nil {
                fail(item.path, "Service \(namespace)/\(name) appears twice in this import", kind: .duplicate)
            } else {
                services[key] = (item.path, object)
            }
        case ("v1", "Endpoints"):
            if endpoints[key] != nil {
                fail(item.path, "Endpoints \(namespace)/\(name) appears twice in this import", kind: .duplicate)
            } else {
                endpoints[key] = (item.path, object)
            }
        case ("discovery.k8s.io/v1", "EndpointSlice"):
            let labels = metadata["labels"]?.stringMapValue ?? [:]
            guard let serviceName = labels["kubernetes.io/service-name"] else {
                refuse("it has no kubernetes.io/service-name label, so no Service uses it")
                return
            }
            if object["addressType"]?.stringValue == "FQDN" {
                refuse("addressType FQDN is deprecated and ignored by kube-proxy")
                return
            }
            slices[Key(namespace: namespace, name: serviceName), default: []].append((item.path, object))
        default:
            refuse("only v1 Services without selector, v1 Endpoints and discovery.k8s.io/v1 EndpointSlices are imported")
        }
    }

    mutating func finish() -> Result<ImportPlan, ValidationFailure> {
        for (key, value) in endpoints where services[key] == nil {
            refused.append(
                RefusedObject(
                    path: value.path, kind: "Endpoints", namespace: key.namespace, name: key.name,
                    reason: "no Service \(key.namespace)/\(key.name) without selector in this import"))
        }
        for (key, list) in slices where services[key] == nil {
            for slice in list {
                let name = slice.object["metadata"]?["name"]?.stringValue
                refused.append(
                    RefusedObject(
                        path: slice.path, kind: "EndpointSlice", namespace: key.namespace, name: name,
                        reason: "no Service \(key.namespace)/\(key.name) without selector in this import"))
            }
        }
        var registrations: [ExternalService] = []
        for key in services.keys.sorted() {
            if let service = registration(key) { registrations.append(service) }
        }
        func position(_ path: String) -> [Int] { path.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) } }
        refused.sort { position($0.path).lexicographicallyPrecedes(position($1.path)) }
        return violations.isEmpty
            ? .success(ImportPlan(services: registrations, refused: refused)) : .failure(ValidationFailure(violations, omitted: omitted))
    }

    /// The registration JSON of one Service, decoded and validated like an API request.
    mutating func registration(_ key: Key) -> ExternalService? {
        let (path, object) = services[key]!
        let metadata = object["metadata"]?.objectValue ?? JSONObject()
        let spec = object["spec"]?.objectValue ?? JSONObject()
        var json = JSONObject([("namespace", .string(key.namespace)), ("name", .string(key.name))])
        var annotations = metadata["annotations"]?.stringMapValue ?? [:]
        if let description = annotations.removeValue(forKey: ManifestRenderer.descriptionAnnotation) {
            json["description"] = .string(description)
        }
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = nil
        let labels = (metadata["labels"]?.stringMapValue ?? [:]).filter { ServiceValidator.reservedLabels[$0.key] == nil }
        json["labels"] = ManifestRenderer.sortedStrings(labels)
        json["annotations"] = ManifestRenderer.sortedStrings(annotations)
        let type = spec["type"]?.stringValue ?? "ClusterIP"
        if type == "ExternalName" {
            json["type"] = .string("ExternalName")
            json["externalName"] = spec["externalName"] ?? .null
        } else {
            json["type"] = .string(spec["clusterIP"]?.stringValue == "None" ? "Headless" : "ClusterIP")
        }
        var ports: [(name: String?, protocol: String, port: Int, targetPort: Int?)] = []
        var portsJSON: [JSONValue] = []
        for (index, item) in (spec["ports"]?.arrayValue ?? []).enumerated() {
            let portPath = "\(path).spec.ports[\(index)]"
            guard case .object(var port) = item else {
                fail(portPath, "must be an object", kind: .wrongType)
                continue
            }
            if case .string(let named)? = port["targetPort"] {
                fail("\(portPath).targetPort", "\"\(named)\" is a named port, which needs pods; give the backend port number")
                continue
            }
            port["nodePort"] = nil
            let name = port["name"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            ports.append((name, port["protocol"]?.stringValue ?? "TCP", port["port"]?.intValue ?? 0, port["targetPort"]?.intValue))
            portsJSON.append(.object(port))
        }
        if !portsJSON.isEmpty { json["ports"] = .array(portsJSON) }

        var backends: [Backend] = []
        var mode: EndpointsMode = .both
        let sliceList = slices[key] ?? []
        let endpointsObject = endpoints[key]
        if !sliceList.isEmpty {
            for slice in sliceList { backends += sliceBackends(slice.object, path: slice.path, ports: ports) }
            mode = endpointsObject == nil ? .endpointslices : .both
        } else if let endpointsObject {
            backends = endpointsBackends(endpointsObject.object, path: endpointsObject.path, ports: ports)
            let labels = endpointsObject.object["metadata"]?["labels"]?.stringMapValue ?? [:]
            mode = labels["endpointslice.kubernetes.io/skip-mirror"] == "true" ? .both : .endpoints
        }
        if type != "ExternalName" { json["endpointsMode"] = .string(mode.rawValue) }
        var seen = Set<String>()
        var addresses: [JSONValue] = []
        for backend in backends where seen.insert("\(backend.ip)/\(backend.ports)").inserted {
            var address = JSONObject([("ip", .string(backend.ip))])
            if ports.count == 1 {
                address["port"] = .integer(backend.ports[0])
            } else if !ports.isEmpty {
                address["ports"] = .object(JSONObject(zip(ports, backend.ports).map { ($0.name ?? "", .integer($1)) }))
            }
            if let hostname = backend.hostname { address["hostname"] = .string(hostname) }
            if let zone = backend.zone { address["zone"] = .string(zone) }
            address["ready"] = .bool(backend.ready)
            addresses.append(.object(address))
        }
        if !addresses.isEmpty { json["addresses"] = .array(addresses) }

        switch ServiceDecoder.decode(.object(json)) {
        case .success(let input): return input.service
        case .failure(let failure):
            for violation in failure.violations {
                fail("\(path) (Service \(key.namespace)/\(key.name)): \(violation.field)", violation.message, kind: violation.kind)
            }
            omitted += failure.omitted
            return nil
        }
    }

    /// Maps endpoint ports onto the Service's ports by name and protocol; nil (after recording
    /// why) when they do not cover every Service port exactly once.
    mutating func backendPorts(
        _ items: [JSONValue], path: String, ports: [(name: String?, protocol: String, port: Int, targetPort: Int?)]
    ) -> [Int]? {
        var found: [Int?] = Array(repeating: nil, count: ports.count)
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            let object = item.objectValue ?? JSONObject()
            let name = object["name"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            let proto = object["protocol"]?.stringValue ?? "TCP"
            guard let number = object["port"]?.intValue else {
                fail("\(itemPath).port", "is required", kind: .required)
                return nil
            }
            guard let match = ports.firstIndex(where: { $0.name == name && $0.protocol == proto }) else {
                let known = ports.map { "\($0.name ?? "<unnamed>")/\($0.protocol)" }.joined(separator: ", ")
                fail(
                    "\(itemPath).name",
                    "port \(name ?? "<unnamed>")/\(proto) matches no port of the Service by name and protocol (Service ports: \(known.isEmpty ? "none" : known))")
                return nil
            }
            found[match] = number
        }
        if let missing = found.firstIndex(where: { $0 == nil }) {
            fail(path, "has no port for the Service's port \(ports[missing].name ?? "<unnamed>"); every backend must serve every port")
            return nil
        }
        return found.map { $0! }
    }

    mutating func endpointsBackends(_ object: JSONObject, path: String, ports: [(name: String?, protocol: String, port: Int, targetPort: Int?)])
        -> [Backend]
    {
        var backends: [Backend] = []
        for (index, subsetValue) in (object["subsets"]?.arrayValue ?? []).enumerated() {
            let subsetPath = "\(path).subsets[\(index)]"
            let subset = subsetValue.objectValue ?? JSONObject()
            guard let backendPorts = backendPorts((subset["ports"]?.arrayValue ?? []), path: "\(subsetPath).ports", ports: ports) else { continue }
            for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for (addressIndex, entry) in (subset[field]?.arrayValue ?? []).enumerated() {
                    let address = entry.objectValue ?? JSONObject()
                    guard let ip = address["ip"]?.stringValue else {
                        fail("\(subsetPath).\(field)[\(addressIndex)].ip", "is required", kind: .required)
                        continue
                    }
                    backends.append(Backend(ip: ip, hostname: address["hostname"]?.stringValue, zone: nil, ready: ready, ports: backendPorts))
                }
            }
        }
        return backends
    }

    mutating func sliceBackends(_ object: JSONObject, path: String, ports: [(name: String?, protocol: String, port: Int, targetPort: Int?)]) -> [Backend] {
        guard let backendPorts = backendPorts((object["ports"]?.arrayValue ?? []), path: "\(path).ports", ports: ports) else { return [] }
        var backends: [Backend] = []
        for (index, entry) in (object["endpoints"]?.arrayValue ?? []).enumerated() {
            let endpoint = entry.objectValue ?? JSONObject()
            let conditions = endpoint["conditions"]?.objectValue ?? JSONObject()
            let ready = conditions["ready"]?.boolValue ?? true
            let addresses = (endpoint["addresses"]?.arrayValue ?? []).compactMap(\.stringValue)
            guard !addresses.isEmpty else {
                fail("\(path).endpoints[\(index)].addresses", "at least one address is required", kind: .required)
                continue
            }
            for ip in addresses {
                backends.append(
                    Backend(
                        ip: ip, hostname: endpoint["hostname"]?.stringValue, zone: endpoint["zone"]?.stringValue, ready: ready,
                        ports: backendPorts))
            }
        }
        return backends
    }
}
