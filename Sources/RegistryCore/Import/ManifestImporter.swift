/// An object of an import that does not become (part of) a registration, and why.
public struct RefusedObject: Sendable, Equatable {
    public var path: String
    public var kind: String
    public var namespace: String?
    public var name: String?
    public var reason: String
}

/// Something an imported object says that the registration does not (a field the registry
/// cannot represent), or a choice the import made for the user; `path` names the document and field.
public struct ImportWarning: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    /// Something valid in Kubernetes that the registration does not keep (`?strict=true` makes
    /// these a 422); false for advice and choices the import made.
    public var notKept: Bool = true
    public var description: String { "\(path): \(message)" }
}

/// What an import would register, and what it leaves out.
public struct ImportPlan: Sendable {
    public var services: [ExternalService]
    public var refused: [RefusedObject]
    /// Per field: what is valid in Kubernetes but not kept, and choices made (see `ImportWarning`).
    public var warnings: [ImportWarning] = []
}

/// Turns hand-written manifests back into registrations: Services without selector (ClusterIP,
/// headless or ExternalName) with their Endpoints (same name) and/or EndpointSlices (label
/// `kubernetes.io/service-name`). Slices win over Endpoints when both are given, since they are
/// what kube-proxy reads. Objects that are not external services are refused with a reason; an
/// object that is malformed fails the whole import, naming the document and field.
public enum ManifestImporter {
    public static func plan(
        _ objects: [ManifestDocuments.Object], defaultNamespace: String = ExternalService.defaultNamespace
    )
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

/// Backends collected for one service: (ip, hostname, zone, ready, backend port per service
/// port, nil where the subset or slice does not list the port).
private struct Backend {
    var ip: String
    var hostname: String?
    var zone: String?
    var ready: Bool
    var ports: [Int?]

    /// Entries for the same endpoint split over several subsets or slices (one per port) merge
    /// into one backend: same IP, hostname, zone and readiness, and no service port given twice.
    func canMerge(_ other: Backend) -> Bool {
        ip == other.ip && hostname == other.hostname && zone == other.zone && ready == other.ready
            && !zip(ports, other.ports).contains { $0 != nil && $1 != nil }
    }

    mutating func merge(_ other: Backend) {
        ports = zip(ports, other.ports).map { $0 ?? $1 }
    }
}

private struct Builder {
    let defaultNamespace: String
    var violations: [FieldViolation] = []
    var refused: [RefusedObject] = []
    var warnings: [ImportWarning] = []
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

    /// Managers of EndpointSlices that Kubernetes itself derives from Services and Endpoints
    /// (kubernetes pkg/controller/endpointslice and endpointslicemirroring).
    static let kubernetesControllers: Set<String> = ["endpointslice-controller.k8s.io", "endpointslicemirroring-controller.k8s.io"]

    mutating func warn(_ path: String, _ message: String, notKept: Bool = true) {
        warnings.append(ImportWarning(path: path, message: message, notKept: notKept))
    }

    static func string(_ value: JSONValue?) -> String? {
        if case .string(let text)? = value { return text }
        return nil
    }

    static func object(_ value: JSONValue?) -> JSONObject? {
        if case .object(let object)? = value { return object }
        return nil
    }

    static func array(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { return items }
        return []
    }

    static func strings(_ value: JSONValue?) -> [String: String] {
        var map: [String: String] = [:]
        for member in object(value) ?? JSONObject() {
            if case .string(let text) = member.value { map[member.key] = text }
        }
        return map
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
        if namespace == "default" && name == "kubernetes" && (kind == "Service" || kind == "Endpoints") {
            refuse("default/kubernetes is the cluster's own API server Service, maintained by the API server itself")
            return
        }
        let labels = Builder.strings(metadata["labels"])
        if let manager = labels["endpointslice.kubernetes.io/managed-by"], Builder.kubernetesControllers.contains(manager) {
            refuse("it is managed by Kubernetes' \(manager) (label endpointslice.kubernetes.io/managed-by), which derives it from other objects")
            return
        }
        switch (apiVersion, kind) {
        case ("v1", "Service"):
            let spec = object["spec"]?.objectValue ?? JSONObject()
            if let selector = spec["selector"]?.objectValue, !selector.isEmpty {
                refuse("it has a selector: Kubernetes manages its endpoints from pods, so it is not an external service")
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
            ? .success(ImportPlan(services: registrations, refused: refused, warnings: warnings))
            : .failure(ValidationFailure(violations, omitted: omitted))
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
        } else if type == "NodePort" || type == "LoadBalancer" {
            json["type"] = .string(type)
        } else {
            json["type"] = .string(spec["clusterIP"]?.stringValue == "None" ? "Headless" : "ClusterIP")
        }
        validateAddressFields(spec, path: "\(path).spec", type: type)
        importSpecFields(spec, path: "\(path).spec", type: type, into: &json)
        var ports: [(name: String?, protocol: String, port: Int, targetPort: Int?)] = []
        var portsJSON: [JSONValue] = []
        for (index, item) in (spec["ports"]?.arrayValue ?? []).enumerated() {
            let portPath = "\(path).spec.ports[\(index)]"
            guard case .object(var port) = item else {
                fail(portPath, "must be an object", kind: .wrongType)
                continue
            }
            if case .string(let named)? = port["targetPort"] {
                // Valid in Kubernetes, but a name is resolved in a selected pod's container ports:
                // without a selector nothing resolves it, and only the endpoints' ports count.
                warn(
                    "\(portPath).targetPort",
                    "\"\(named)\" is a named port, which only pods can resolve; a Service without selector takes its backend ports from its endpoints, so it is not kept (targetPort defaults to port)"
                )
                port["targetPort"] = nil
            }
            if type != "NodePort" && type != "LoadBalancer" { port["nodePort"] = nil }
            let name = Builder.string(port["name"]).flatMap { $0.isEmpty ? nil : $0 }
            ports.append((name, Builder.string(port["protocol"]) ?? "TCP", port["port"]?.intValue ?? 0, port["targetPort"]?.intValue))
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
        var merged: [Backend] = []
        for backend in backends {
            if merged.contains(where: {
                $0.ip == backend.ip && $0.hostname == backend.hostname && $0.zone == backend.zone && $0.ready == backend.ready
                    && $0.ports == backend.ports
            }) {
                continue  // the same endpoint listed twice
            }
            if let index = merged.firstIndex(where: { $0.canMerge(backend) }) {
                merged[index].merge(backend)
            } else {
                merged.append(backend)
            }
        }
        if mode == .endpoints,
            let reason = ManifestRenderer.unmirrorableReason(
                ips: merged.map { ($0.ip, $0.ports.map { $0 != nil }) }, portNames: ports.map(\.name))
        {
            mode = .both
            warn(
                endpointsObject?.path ?? path,
                "endpointsMode \"both\" chosen instead of \"endpoints\": \(reason); with both, the registry writes the EndpointSlices itself",
                notKept: false)
        }
        if type != "ExternalName" { json["endpointsMode"] = .string(mode.rawValue) }
        var addresses: [JSONValue] = []
        for backend in merged {
            var address = JSONObject([("ip", .string(backend.ip))])
            if ports.count == 1, let port = backend.ports[0] {
                address["port"] = .integer(port)
            } else if !ports.isEmpty {
                address["ports"] = .object(
                    JSONObject(zip(ports, backend.ports).compactMap { port, backend in backend.map { (port.name ?? "", .integer($0)) } }))
                if backend.ports.contains(nil) {
                    address["servedPorts"] = .array(
                        zip(ports, backend.ports).compactMap { port, backend in backend == nil ? nil : .string(port.name ?? "") })
                }
            }
            if let hostname = backend.hostname { address["hostname"] = .string(hostname) }
            if let zone = backend.zone { address["zone"] = .string(zone) }
            address["ready"] = .bool(backend.ready)
            addresses.append(.object(address))
        }
        if !addresses.isEmpty { json["addresses"] = .array(addresses) }

        switch ServiceDecoder.decode(.object(json)) {
        case .success(let input):
            for advice in ServiceAdvice.warnings(input.service) { warn(path, advice, notKept: false) }
            return input.service
        case .failure(let failure):
            violations += failure.violations.map { violation in
                if let field = Builder.manifestField(violation.field) { return FieldViolation("\(path).\(field)", violation.kind, violation.message) }
                // Addresses are gathered from Endpoints and slices: named as in the registration.
                return FieldViolation("\(path) (Service \(key.namespace)/\(key.name)): \(violation.field)", violation.kind, violation.message)
            }
            return nil
        }
    }

    /// The Service manifest's field for a registration field (`ports[1].name` → `spec.ports[1].name`,
    /// `labels[x]` → `metadata.labels[x]`), or nil for what has none (addresses, the registry's own fields).
    static func manifestField(_ field: String) -> String? {
        let head = String(field.prefix { $0 != "." && $0 != "[" })
        let rest = field.dropFirst(head.count)
        switch head {
        case "name", "namespace", "labels", "annotations": return "metadata.\(head)\(rest)"
        case "description": return "metadata.annotations[\(ManifestRenderer.descriptionAnnotation)]"
        case "sessionAffinityTimeoutSeconds": return "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        case "type", "externalName", "ports": return "spec.\(head)\(rest)"
        default: return ServiceSpecFields.fieldNames.contains(head) ? "spec.\(head)\(rest)" : nil
        }
    }

    /// The API server's rules for the Service fields the registry does not keep (cluster IPs,
    /// external IPs, the health-check node port): an import must not accept what the cluster
    /// would refuse. Source: kubernetes/kubernetes pkg/apis/core/validation/validation.go
    /// `ValidateService` and `ValidateServiceClusterIPsRelatedFields` (after the defaulting of
    /// `normalizeClusterIPs`, which copies `clusterIP` into an empty `clusterIPs`); messages as the
    /// API server gives them.
    mutating func validateAddressFields(_ spec: JSONObject, path: String, type: String) {
        let validIP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        let clusterIP = Builder.string(spec["clusterIP"]) ?? ""
        var clusterIPs = Builder.array(spec["clusterIPs"]).map { Builder.string($0) ?? "" }
        if clusterIPs.isEmpty && !clusterIP.isEmpty { clusterIPs = [clusterIP] }
        func quoted(_ values: [String]) -> String { "[" + values.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
        if type == "ExternalName" {
            // ValidateService: an ExternalName service has no cluster IP.
            if !clusterIP.isEmpty { fail("\(path).clusterIP", "Forbidden: may not be set for ExternalName services", kind: .forbidden) }
            if !Builder.array(spec["clusterIPs"]).isEmpty {
                fail("\(path).clusterIPs", "Forbidden: may not be set for ExternalName services", kind: .forbidden)
            }
        } else {
            // ValidateServiceClusterIPsRelatedFields.
            if !clusterIP.isEmpty && clusterIPs.first != clusterIP {
                fail("\(path).clusterIPs", "Invalid value: \(quoted(clusterIPs)): first value must match `clusterIP`")
            } else if clusterIP.isEmpty && !clusterIPs.isEmpty {
                fail("\(path).clusterIPs", "Invalid value: \(quoted(clusterIPs)): must be empty when `clusterIP` is not specified")
            }
            var families: [IPAddress.Family] = []
            var invalid = false
            for (index, value) in clusterIPs.enumerated() {
                if index == 0 && value == "None" {
                    if clusterIPs.count > 1 {
                        invalid = true
                        fail("\(path).clusterIPs", "Invalid value: \(quoted(clusterIPs)): 'None' must be the first and only value")
                    }
                    continue
                }
                if let address = try? IPAddress(parsing: value) {
                    families.append(address.family)
                } else {
                    invalid = true
                    fail("\(path).clusterIPs[\(index)]", "Invalid value: \"\(value)\": \(validIP)")
                }
            }
            if clusterIPs.count > 2 { fail("\(path).clusterIPs", "Invalid value: \(quoted(clusterIPs)): may only hold up to 2 values") }
            if !invalid && clusterIPs.count == 2 && families.count == 2 && families[0] == families[1] {
                fail("\(path).clusterIPs", "Invalid value: \(quoted(clusterIPs)): may specify no more than one IP for each IP family")
            }
            let ipFamilies = Builder.array(spec["ipFamilies"]).map { Builder.string($0) ?? "" }
            if !invalid && clusterIPs != ["None"] {
                for (index, family) in families.enumerated() where index < ipFamilies.count && ipFamilies[index] != family.rawValue {
                    if IPAddress.Family(rawValue: ipFamilies[index]) != nil {
                        fail(
                            "\(path).clusterIPs[\(index)]",
                            "Invalid value: \"\(clusterIPs[index])\": expected an \(ipFamilies[index]) value as indicated by `ipFamilies[\(index)]`")
                    }
                }
            }
            // ValidateService: a node port needs a cluster IP.
            if clusterIP == "None" && (type == "NodePort" || type == "LoadBalancer") {
                fail("\(path).clusterIP", "Invalid value: \"None\": may not be set to 'None' for \(type) services")
            }
        }
        // ValidateService: externalIPs, each a valid IP that is not special (ValidateNonSpecialIP).
        for (index, value) in Builder.array(spec["externalIPs"]).enumerated() {
            let text = Builder.string(value) ?? ""
            guard let address = try? IPAddress(parsing: text) else {
                fail("\(path).externalIPs[\(index)]", "Invalid value: \"\(text)\": must be a valid IP address")
                continue
            }
            let reason: String? =
                switch address.specialUseReason {
                case nil: nil
                case let reason? where reason.hasPrefix("unspecified"): "may not be unspecified (\(text))"
                case let reason? where reason.hasPrefix("loopback"): "may not be in the loopback range (127.0.0.0/8, ::1/128)"
                case let reason? where reason.hasPrefix("link-local multicast"):
                    "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
                case _?: "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
                }
            if let reason { fail("\(path).externalIPs[\(index)]", "Invalid value: \"\(text)\": \(reason)") }
        }
        // validateServiceExternalTrafficPolicy: healthCheckNodePort only for LoadBalancer with
        // externalTrafficPolicy Local, and a valid port number.
        if let port = spec["healthCheckNodePort"]?.intValue, port != 0 {
            let local = type == "LoadBalancer" && Builder.string(spec["externalTrafficPolicy"]) == "Local"
            if !local {
                fail(
                    "\(path).healthCheckNodePort",
                    "Invalid value: \(port): may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")
            } else if !(1...65535).contains(port) {
                fail("\(path).healthCheckNodePort", "Invalid value: \(port): must be between 1 and 65535, inclusive")
            }
        }
    }

    /// Spec fields of core/v1 `ServiceSpec` the registry represents; any other is a warning.
    static let representedSpecFields: Set<String> = [
        "type", "externalName", "ports", "selector", "clusterIP", "clusterIPs", "ipFamilyPolicy", "ipFamilies", "sessionAffinity",
        "sessionAffinityConfig", "publishNotReadyAddresses", "internalTrafficPolicy", "trafficDistribution", "externalTrafficPolicy",
        "loadBalancerClass", "loadBalancerSourceRanges", "allocateLoadBalancerNodePorts",
    ]

    /// Copies the issue-12 spec fields into the registration JSON (validated there like API
    /// input); warns, per field, about what a registration cannot hold.
    mutating func importSpecFields(_ spec: JSONObject, path: String, type: String, into json: inout JSONObject) {
        for key in [
            "ipFamilyPolicy", "ipFamilies", "sessionAffinity", "publishNotReadyAddresses", "trafficDistribution", "loadBalancerClass",
            "loadBalancerSourceRanges",
        ] {
            if let value = spec[key], value != .null { json[key] = value }
        }
        if type != "ExternalName", let value = spec["internalTrafficPolicy"], value != .null { json["internalTrafficPolicy"] = value }
        if type == "NodePort" || type == "LoadBalancer" {
            if let value = spec["externalTrafficPolicy"], value != .null { json["externalTrafficPolicy"] = value }
        } else if spec["externalTrafficPolicy"] != nil {
            warn("\(path).externalTrafficPolicy", "ignored: only NodePort and LoadBalancer services have one")
        }
        if type == "LoadBalancer", let value = spec["allocateLoadBalancerNodePorts"], value != .null { json["allocateLoadBalancerNodePorts"] = value }
        if case .object(let config)? = spec["sessionAffinityConfig"], case .object(let clientIP)? = config["clientIP"],
            let timeout = clientIP["timeoutSeconds"], Builder.string(spec["sessionAffinity"]) == "ClientIP"
        {
            json["sessionAffinityTimeoutSeconds"] = timeout
        }
        if let clusterIP = Builder.string(spec["clusterIP"]), !clusterIP.isEmpty, clusterIP != "None" {
            warn(
                "\(path).clusterIP",
                "\"\(clusterIP)\" is not kept: the registry lets each cluster allocate the cluster IP (an address chosen in one cluster is rarely free in another)"
            )
        } else if case .array(let ips)? = spec["clusterIPs"], ips.contains(where: { Builder.string($0) != "None" }) {
            warn("\(path).clusterIPs", "not kept: the registry lets each cluster allocate the cluster IPs")
        }
        for key in spec.keys.sorted() where !Builder.representedSpecFields.contains(key) {
            warn("\(path).\(key)", "not kept: the registry has no field for spec.\(key)")
        }
    }

    /// Maps endpoint ports onto the Service's ports by name and protocol (a Service port not
    /// listed: nil, the addresses do not serve it); nil (after recording why) when a port matches
    /// no Service port or none is listed.
    mutating func backendPorts(
        _ items: [JSONValue], path: String, ports: [(name: String?, protocol: String, port: Int, targetPort: Int?)]
    ) -> [Int?]? {
        var found: [Int?] = Array(repeating: nil, count: ports.count)
        var names = Set<String>()
        var valid = true
        for (index, item) in items.enumerated() {
            // The API server's rules for endpoint ports: pkg/apis/core/validation `validateEndpointPort`
            // and pkg/apis/discovery/validation `validateEndpointPorts` (name required when there are
            // several in Endpoints, unique; a valid port number; a supported protocol).
            let itemPath = "\(path)[\(index)]"
            let object = Builder.object(item) ?? JSONObject()
            let rawName = Builder.string(object["name"]) ?? ""
            if !names.insert(rawName).inserted {
                fail("\(itemPath).name", "Duplicate value: \"\(rawName)\"", kind: .duplicate)
                valid = false
            }
            if let proto = Builder.string(object["protocol"]), !["TCP", "UDP", "SCTP"].contains(proto) {
                fail("\(itemPath).protocol", "Unsupported value: \"\(proto)\": supported values: \"SCTP\", \"TCP\", \"UDP\"", kind: .notSupported)
                valid = false
                continue
            }
            if let number = object["port"]?.intValue, !(1...65535).contains(number) {
                fail("\(itemPath).port", "Invalid value: \(number): must be between 1 and 65535, inclusive")
                valid = false
                continue
            }
            let name = Builder.string(object["name"]).flatMap { $0.isEmpty ? nil : $0 }
            let proto = Builder.string(object["protocol"]) ?? "TCP"
            guard let number = object["port"]?.intValue else {
                fail("\(itemPath).port", "is required", kind: .required)
                return nil
            }
            guard let match = ports.firstIndex(where: { $0.name == name && $0.protocol == proto }) else {
                // Valid in Kubernetes, but kube-proxy matches endpoint ports to Service ports by name
                // and protocol, so this port carries no traffic.
                let known = ports.map { "\($0.name ?? "<unnamed>")/\($0.protocol)" }.joined(separator: ", ")
                let detail =
                    ports.contains(where: { $0.name == name })
                    ? "its protocol \(proto) differs from the Service port of that name, so kube-proxy never uses it"
                    : "it matches no port of the Service by name and protocol (Service ports: \(known.isEmpty ? "none" : known)), so nothing uses it"
                warn(itemPath, "port \(name ?? "<unnamed>")/\(proto) is not kept: \(detail)")
                continue
            }
            found[match] = number
        }
        guard valid else { return nil }
        if !ports.isEmpty, found.allSatisfy({ $0 == nil }) {
            // Valid in Kubernetes; the cause (a port that matches nothing) is reported above when any.
            warn(path, "its addresses are not kept: they serve no port of the Service", notKept: true)
            return nil
        }
        return found
    }

    mutating func endpointsBackends(
        _ object: JSONObject, path: String, ports: [(name: String?, protocol: String, port: Int, targetPort: Int?)]
    )
        -> [Backend]
    {
        var backends: [Backend] = []
        for (index, subsetValue) in (object["subsets"]?.arrayValue ?? []).enumerated() {
            let subsetPath = "\(path).subsets[\(index)]"
            let subset = Builder.object(subsetValue) ?? JSONObject()
            // pkg/apis/core/validation `validateEndpointSubsets`.
            if Builder.array(subset["addresses"]).isEmpty && Builder.array(subset["notReadyAddresses"]).isEmpty {
                fail(subsetPath, "Required value: must specify `addresses` or `notReadyAddresses`", kind: .required)
                continue
            }
            guard let backendPorts = backendPorts(Builder.array(subset["ports"]), path: "\(subsetPath).ports", ports: ports) else { continue }
            for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for (addressIndex, entry) in (subset[field]?.arrayValue ?? []).enumerated() {
                    let address = entry.objectValue ?? JSONObject()
                    guard let ip = address["ip"]?.stringValue else {
                        fail("\(subsetPath).\(field)[\(addressIndex)].ip", "is required", kind: .required)
                        continue
                    }
                    for key in address.keys.sorted() where key != "ip" && key != "hostname" {
                        warn("\(subsetPath).\(field)[\(addressIndex)].\(key)", "not kept: a registered address has no \(key)")
                    }
                    backends.append(Backend(ip: ip, hostname: Builder.string(address["hostname"]), zone: nil, ready: ready, ports: backendPorts))
                }
            }
        }
        return backends
    }

    mutating func sliceBackends(
        _ object: JSONObject, path: String, ports: [(name: String?, protocol: String, port: Int, targetPort: Int?)]
    ) -> [Backend] {
        // pkg/apis/discovery/validation `ValidateEndpointSlice`: addressType required and
        // supported; every address of the slice's family; at most 1000 endpoints, 100 ports.
        let family: IPAddress.Family
        switch Builder.string(object["addressType"]) {
        case nil:
            fail("\(path).addressType", "Required value", kind: .required)
            return []
        case "IPv4"?: family = .ipv4
        case "IPv6"?: family = .ipv6
        case let other?:
            fail("\(path).addressType", "Unsupported value: \"\(other)\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"", kind: .notSupported)
            return []
        }
        let endpointCount = Builder.array(object["endpoints"]).count
        if endpointCount > 1000 {
            fail("\(path).endpoints", "Too many: \(endpointCount): must have at most 1000 items", kind: .tooMany)
            return []
        }
        if Builder.array(object["ports"]).count > 100 {
            fail("\(path).ports", "Too many: \(Builder.array(object["ports"]).count): must have at most 100 items", kind: .tooMany)
            return []
        }
        var familyErrors = false
        for (index, entry) in Builder.array(object["endpoints"]).enumerated() {
            for (addressIndex, value) in Builder.array(Builder.object(entry)?["addresses"]).enumerated() {
                guard let text = Builder.string(value), let ip = try? IPAddress(parsing: text), ip.family == family else {
                    fail(
                        "\(path).endpoints[\(index)].addresses[\(addressIndex)]",
                        "Invalid value: \(Builder.string(value).map { "\"\($0)\"" } ?? "null"): must be a valid \(family.rawValue) address")
                    familyErrors = true
                    continue
                }
            }
        }
        if familyErrors { return [] }
        guard let backendPorts = backendPorts(Builder.array(object["ports"]), path: "\(path).ports", ports: ports) else { return [] }
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
            for key in endpoint.keys.sorted() where !["addresses", "conditions", "hostname", "zone"].contains(key) {
                warn("\(path).endpoints[\(index)].\(key)", "not kept: a registered address has no \(key)")
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
