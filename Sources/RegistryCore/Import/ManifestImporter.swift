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
        var examined = 0
        for object in objects {
            guard typeErrors.count <= ValidationFailure.maxReported else { break }
            examined += 1
            guard case .object(let fields) = object.value else { continue }
            typeErrors += KubernetesType.of(kind: fields["kind"]?.stringValue).violations(of: object.value, at: object.path)
        }
        guard typeErrors.isEmpty else { return .failure(ValidationFailure(typeErrors, complete: examined == objects.count)) }
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
    /// Where the entry is in the manifests (`documents[1].subsets[0].addresses[2]`,
    /// `documents[2].endpoints[3]`) and where its IP is, so that the registration's rules name
    /// the document and field the value came from.
    var source: String
    var ipSource: String

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

/// A Service port as the import matches endpoint ports to it (the manifest's values, unvalidated).
private struct ImportedPort {
    var name: String?
    var `protocol`: String
    var port: Int
    var targetPort: Int?
    var appProtocol: String?
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
    /// False once a registration's decoding did not examine everything (`ValidationFailure.complete`).
    var complete = true

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
        if kind == "Service" || kind == "Endpoints", let reason = ServiceValidator.reservedServiceReason(namespace: namespace, name: name) {
            refuse(reason)
            return
        }
        let labels = Builder.strings(metadata["labels"])
        if let manager = labels["endpointslice.kubernetes.io/managed-by"], Builder.kubernetesControllers.contains(manager) {
            refuse("it is managed by Kubernetes' \(manager) (label endpointslice.kubernetes.io/managed-by), which derives it from other objects")
            return
        }
        // Since Kubernetes 1.33 the endpoints controller labels the Endpoints it derives from a
        // selector Service's pods (kubernetes PR 130564).
        if kind == "Endpoints", labels["endpoints.kubernetes.io/managed-by"] == "endpoint-controller" {
            refuse("it is managed by Kubernetes' endpoint-controller (label endpoints.kubernetes.io/managed-by), which derives it from pods")
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
            : .failure(ValidationFailure(violations, omitted: omitted, complete: complete))
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
        let allLabels = metadata["labels"]?.stringMapValue ?? [:]
        let labels = allLabels.filter { ServiceValidator.reservedLabels[$0.key] == nil }
        for key in allLabels.keys.sorted() where labels[key] == nil {
            // The registry's own mark on what it renders is no loss; any other value is.
            if key == "app.kubernetes.io/managed-by" && allLabels[key] == ManifestRenderer.managerName { continue }
            warn("\(path).metadata.labels[\(key)]", "not kept: the registry sets this label itself (\(ServiceValidator.reservedLabels[key]!))")
        }
        json["labels"] = ManifestRenderer.sortedStrings(labels)
        json["annotations"] = ManifestRenderer.sortedStrings(annotations)
        warnAboutMetadata(metadata, path: path)
        // ValidateService: `type` one of the four (an empty one is defaulted to ClusterIP). An
        // unknown type is the root cause of whatever else would look wrong, so it is reported alone.
        var type = spec["type"]?.stringValue ?? "ClusterIP"
        if type.isEmpty { type = "ClusterIP" }
        guard Builder.serviceTypes.contains(type) else {
            fail(
                "\(path).spec.type",
                "Unsupported value: \"\(type)\": supported values: " + Builder.serviceTypes.map { "\"\($0)\"" }.joined(separator: ", "),
                kind: .notSupported)
            return nil
        }
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
        var ports: [ImportedPort] = []
        var portsJSON: [JSONValue] = []
        for (index, item) in (spec["ports"]?.arrayValue ?? []).enumerated() {
            let portPath = "\(path).spec.ports[\(index)]"
            guard case .object(var port) = item else {
                fail(portPath, "must be an object", kind: .wrongType)
                continue
            }
            // The API server defaults a targetPort of 0 or "" to the port (core/v1 `SetDefaults_Service`),
            // and a nodePort of 0 means none.
            if port["targetPort"] == .integer(0) || port["targetPort"] == .string("") { port["targetPort"] = nil }
            if port["nodePort"] == .integer(0) { port["nodePort"] = nil }
            if case .string(let named)? = port["targetPort"] {
                // `ValidatePortNumOrName`: a name must be an IANA_SVC_NAME.
                let problems = KubernetesNames.portName(named)
                for problem in problems { fail("\(portPath).targetPort", "Invalid value: \"\(named)\": \(problem)") }
                if problems.isEmpty {
                    // Valid in Kubernetes, but a name is resolved in a selected pod's container ports:
                    // without a selector nothing resolves it, and only the endpoints' ports count.
                    warn(
                        "\(portPath).targetPort",
                        "\"\(named)\" is a named port, which only pods can resolve; a Service without selector takes its backend ports from its endpoints, so it is not kept (targetPort defaults to port)"
                    )
                }
                port["targetPort"] = nil
            }
            if type == "ExternalName", let nodePort = port["nodePort"] {
                // Not refused by `ValidateService` for ExternalName, and unused: nothing listens.
                warn("\(portPath).nodePort", "\(nodePort) is not kept: an ExternalName Service has no node ports")
                port["nodePort"] = nil
            }
            let name = Builder.string(port["name"]).flatMap { $0.isEmpty ? nil : $0 }
            ports.append(
                ImportedPort(
                    name: name, protocol: Builder.string(port["protocol"]) ?? "TCP", port: port["port"]?.intValue ?? 0,
                    targetPort: port["targetPort"]?.intValue, appProtocol: Builder.string(port["appProtocol"])))
            portsJSON.append(.object(port))
        }
        var mode: EndpointsMode = .both
        let sliceList = slices[key] ?? []
        let endpointsObject = endpoints[key]
        if type == "ClusterIP" && Builder.string(spec["clusterIP"]) == "None" {
            addHeadlessEndpointPorts(
                sliceList.isEmpty ? endpointsObject.map { [$0] } ?? [] : sliceList, isSlice: !sliceList.isEmpty, to: &ports,
                json: &portsJSON)
        }
        if !portsJSON.isEmpty { json["ports"] = .array(portsJSON) }
        let warningsBeforeEndpoints = warnings.count
        for (objectPath, objectValue) in sliceList.map({ ($0.path, $0.object) }) + (endpointsObject.map { [($0.path, $0.object)] } ?? []) {
            warnAboutEndpointObjectMetadata(objectValue, path: objectPath, serviceLabels: allLabels)
        }
        var merged: [Backend] = []
        if !sliceList.isEmpty {
            var backends: [Backend] = []
            for slice in sliceList { backends += sliceBackends(slice.object, path: slice.path, ports: ports) }
            merged = Builder.merge(backends)
            mode = endpointsObject == nil ? .endpointslices : .both
            if let endpointsObject {
                // Validated all the same (the cluster would refuse it); what it says beyond the
                // slices is not kept, and said so.
                let fromEndpoints = Builder.merge(endpointsBackends(endpointsObject.object, path: endpointsObject.path, ports: ports))
                func identity(_ backend: Backend) -> String { "\(backend.ip) \(backend.hostname ?? "") \(backend.ready) \(backend.ports)" }
                let extra = Set(fromEndpoints.map(identity)).subtracting(merged.map(identity))
                if !extra.isEmpty {
                    warn(
                        endpointsObject.path,
                        "\(extra.count) of its addresses (by IP, hostname, readiness and ports) are not kept: they differ from the EndpointSlices' for this Service, which win (kube-proxy reads only EndpointSlices)"
                    )
                }
            }
        } else if let endpointsObject {
            merged = Builder.merge(endpointsBackends(endpointsObject.object, path: endpointsObject.path, ports: ports))
            let labels = endpointsObject.object["metadata"]?["labels"]?.stringMapValue ?? [:]
            mode = labels["endpointslice.kubernetes.io/skip-mirror"] == "true" ? .both : .endpoints
        }
        if type == "ExternalName" {
            // Valid in Kubernetes (the objects are validated above all the same), but DNS answers
            // an ExternalName Service with a CNAME and kube-proxy ignores it: its endpoints are unused,
            // one warning per object says so (not one per detail of what is unused anyway).
            warnings.removeSubrange(warningsBeforeEndpoints...)
            for objectPath in sliceList.map(\.path) + (endpointsObject.map { [$0.path] } ?? []) {
                warn(
                    objectPath,
                    "not kept: an ExternalName Service has no endpoints (DNS answers with a CNAME to its externalName, kube-proxy ignores it)")
            }
            merged = []
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
            omitted += failure.omitted
            if !failure.complete { complete = false }
            violations += failure.violations.map { violation in
                if let field = Builder.manifestField(violation.field) { return FieldViolation("\(path).\(field)", violation.kind, violation.message) }
                if let field = Builder.sourceField(violation.field, merged) { return FieldViolation(field, violation.kind, violation.message) }
                // Addresses are gathered from Endpoints and slices: named as in the registration.
                return FieldViolation("\(path) (Service \(key.namespace)/\(key.name)): \(violation.field)", violation.kind, violation.message)
            }
            return nil
        }
    }

    /// Entries for the same endpoint listed twice count once; entries for the same endpoint split
    /// over several subsets or slices (one per port) merge into one backend (see `Backend.canMerge`).
    static func merge(_ backends: [Backend]) -> [Backend] {
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
        return merged
    }

    /// The Endpoints or EndpointSlice field a registration's `addresses[n]…` came from (the first
    /// entry merged into it): `addresses[2].ip` → `documents[1].subsets[0].addresses[2].ip`;
    /// nil for fields the entry does not have as such (ports).
    static func sourceField(_ field: String, _ backends: [Backend]) -> String? {
        guard field.hasPrefix("addresses["), let close = field.firstIndex(of: "]"),
            let index = Int(field[field.index(field.startIndex, offsetBy: 10)..<close]), backends.indices.contains(index)
        else { return nil }
        let rest = field[field.index(after: close)...]
        switch rest {
        case "": return backends[index].source
        case ".ip": return backends[index].ipSource
        case ".hostname", ".zone": return backends[index].source + rest
        default: return nil
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
            let reason = Builder.nonSpecialIPProblem(address, text: text)
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
        if let value = spec["internalTrafficPolicy"], value != .null {
            if type != "ExternalName" {
                json["internalTrafficPolicy"] = value
            } else {
                // Not refused by the API server, which has no use for it on ExternalName either.
                warn("\(path).internalTrafficPolicy", "not kept: an ExternalName Service has no traffic policy (DNS answers with a CNAME)")
            }
        }
        if type == "NodePort" || type == "LoadBalancer" {
            if let value = spec["externalTrafficPolicy"], value != .null { json["externalTrafficPolicy"] = value }
        } else if let policy = spec["externalTrafficPolicy"], policy != .null, policy != .string("") {
            // validateServiceExternalTrafficPolicy: only for externally-accessible services, which
            // a ClusterIP Service is when it has externalIPs (those are not kept, so neither is this).
            if type == "ClusterIP" && !Builder.array(spec["externalIPs"]).isEmpty {
                warn("\(path).externalTrafficPolicy", "not kept: it applies to the externalIPs, which are not kept either")
            } else {
                fail(
                    "\(path).externalTrafficPolicy",
                    "Invalid value: \(Builder.string(policy).map { "\"\($0)\"" } ?? "\(policy)"): may only be set for externally-accessible services")
            }
        }
        // On another type, the registration refuses it as the API server does (`ValidateService`).
        if let value = spec["allocateLoadBalancerNodePorts"], value != .null { json["allocateLoadBalancerNodePorts"] = value }
        if case .object(let config)? = spec["sessionAffinityConfig"], case .object(let clientIP)? = config["clientIP"],
            let timeout = clientIP["timeoutSeconds"], Builder.string(spec["sessionAffinity"]) == "ClientIP"
        {
            json["sessionAffinityTimeoutSeconds"] = timeout
        } else if let config = spec["sessionAffinityConfig"], config != .null, (Builder.string(spec["sessionAffinity"]) ?? "None") == "None" {
            // ValidateService: no sessionAffinityConfig with session affinity None.
            fail("\(path).sessionAffinityConfig", "Forbidden: must not be set when session affinity is None", kind: .forbidden)
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

    /// A headless Service may name fewer ports than its endpoints: kube-proxy ignores it, and
    /// DNS publishes SRV records for the endpoints' ports (CoreDNS reads them from the endpoint
    /// objects). The registry keeps ports on the Service, so such a port becomes a Service port
    /// (port = backend port; the first number given for it), which renders to the same DNS
    /// records, with a warning saying so. Only when the result is valid: a port without a name
    /// only as the only port. Invalid endpoint ports are left to `backendPorts` to report.
    mutating func addHeadlessEndpointPorts(
        _ objects: [(path: String, object: JSONObject)], isSlice: Bool, to ports: inout [ImportedPort], json: inout [JSONValue]
    ) {
        var added: [(path: String, port: ImportedPort)] = []
        for (path, object) in objects {
            let groups: [(path: String, items: [JSONValue])] =
                isSlice
                ? [("\(path).ports", Builder.array(object["ports"]))]
                : Builder.array(object["subsets"]).enumerated().map { ("\(path).subsets[\($0)].ports", Builder.array(Builder.object($1)?["ports"])) }
            for (groupPath, items) in groups {
                for (index, item) in items.enumerated() {
                    let port = Builder.object(item) ?? JSONObject()
                    let name = Builder.string(port["name"]).flatMap { $0.isEmpty ? nil : $0 }
                    let proto = Builder.string(port["protocol"]) ?? "TCP"
                    guard let number = port["port"]?.intValue, (1...65535).contains(number), ["TCP", "UDP", "SCTP"].contains(proto),
                        name.map({ KubernetesNames.dns1123Label($0).isEmpty }) ?? true,
                        !(ports + added.map(\.port)).contains(where: { $0.name == name && $0.protocol == proto })
                    else { continue }
                    added.append(
                        ("\(groupPath)[\(index)]", ImportedPort(name: name, protocol: proto, port: number, targetPort: nil, appProtocol: nil)))
                }
            }
        }
        let total = ports.count + added.count
        guard !added.isEmpty, total <= ServiceValidator.maxPorts, total == 1 || (ports + added.map(\.port)).allSatisfy({ $0.name != nil }) else {
            return
        }
        for (path, port) in added {
            var object = JSONObject([("protocol", .string(port.protocol)), ("port", .integer(port.port))])
            if let name = port.name { object["name"] = .string(name) }
            warn(
                path,
                "added to the headless Service as ports[\(ports.count)] (\(port.name ?? "<unnamed>")/\(port.protocol) \(port.port)): DNS publishes SRV records for a headless Service's endpoint ports, and the registry keeps ports on the Service",
                notKept: false)
            ports.append(port)
            json.append(.object(object))
        }
    }

    /// The Service types of core/v1 (`ValidateService`'s `supportedServiceType`).
    static let serviceTypes = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]

    /// The API server's objection to a special IP (pkg/apis/core/validation `ValidateNonSpecialIP`,
    /// for endpoint addresses and external IPs), in its words; nil when there is none.
    static func nonSpecialIPProblem(_ address: IPAddress, text: String) -> String? {
        switch address.specialUseReason {
        case nil: nil
        case let reason? where reason.hasPrefix("unspecified"): "may not be unspecified (\(text))"
        case let reason? where reason.hasPrefix("loopback"): "may not be in the loopback range (127.0.0.0/8, ::1/128)"
        case let reason? where reason.hasPrefix("link-local multicast"): "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
        case _?: "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        }
    }

    /// Problems of an endpoint IP by the API server's rules: a valid IP (of `family` for an
    /// EndpointSlice: `IsValidIPv4Address`/`IsValidIPv6Address`; any for Endpoints: `IsValidIP`)
    /// that is not special (`ValidateNonSpecialIP`). The registry's stricter forms (no leading
    /// zeros, no IPv4-mapped IPv6, no zone) are named as such. Each recorded at `path`.
    mutating func validateEndpointIP(_ value: JSONValue?, path: String, family: IPAddress.Family?) -> Bool {
        let text = Builder.string(value) ?? ""
        let shown = Builder.string(value).map { "\"\($0)\"" } ?? "null"
        let address: IPAddress
        do {
            address = try IPAddress(parsing: text)
        } catch {
            let detail =
                switch error {
                case .leadingZeros: "IPv4 octets may not have leading zeros (ambiguous: octal or decimal)"
                case .ipv4Mapped: "IPv4-mapped IPv6 addresses are not allowed; use the plain IPv4 address"
                case .zone: "zone identifiers (%…) are not allowed"
                case .syntax:
                    family.map { "must be a valid \($0.rawValue) address" } ?? "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                }
            fail(path, "Invalid value: \(shown): \(detail)")
            return false
        }
        if let family, address.family != family {
            fail(path, "Invalid value: \(shown): must be a valid \(family.rawValue) address")
            return false
        }
        if let problem = Builder.nonSpecialIPProblem(address, text: text) {
            fail(path, "Invalid value: \(shown): \(problem)")
            return false
        }
        return true
    }

    /// `hostname` (a DNS-1123 label) and `nodeName` (`ValidateNodeName`: a DNS-1123 subdomain) of an
    /// Endpoints address or EndpointSlice endpoint, by pkg/apis/core/validation
    /// `validateEndpointAddress` and pkg/apis/discovery/validation `validateEndpoints`.
    mutating func validateEndpointNames(_ entry: JSONObject, path: String) -> Bool {
        var valid = true
        if let hostname = Builder.string(entry["hostname"]), !hostname.isEmpty {
            for problem in KubernetesNames.dns1123Label(hostname) {
                fail("\(path).hostname", "Invalid value: \"\(hostname)\": \(problem)")
                valid = false
            }
        }
        if let nodeName = Builder.string(entry["nodeName"]) {
            for problem in KubernetesNames.dns1123Subdomain(nodeName) {
                fail("\(path).nodeName", "Invalid value: \"\(nodeName)\": \(problem)")
                valid = false
            }
        }
        return valid
    }

    /// Labels that link or mark endpoint objects; the registry writes its own.
    static let endpointObjectLabels: Set<String> = [
        "kubernetes.io/service-name", "endpointslice.kubernetes.io/managed-by", "endpointslice.kubernetes.io/skip-mirror",
        "service.kubernetes.io/headless", "app.kubernetes.io/managed-by",
    ]

    /// Metadata the API server sets or that only bookkeeping tools read: not content.
    static let serverSetMetadata: Set<String> = [
        "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
        "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
    ]

    /// Metadata fields beyond name, namespace, labels and annotations that a registration cannot
    /// hold (`ownerReferences`, `finalizers`, …), one warning each.
    mutating func warnAboutMetadata(_ metadata: JSONObject, path: String) {
        for key in metadata.keys.sorted() where !Builder.serverSetMetadata.contains(key) {
            warn("\(path).metadata.\(key)", "not kept: a registration has no metadata.\(key)")
        }
    }

    /// The rendering labels the Endpoints and EndpointSlices with the Service's labels and puts no
    /// annotations on them: any other label or annotation of theirs is not kept.
    mutating func warnAboutEndpointObjectMetadata(_ object: JSONObject, path: String, serviceLabels: [String: String]) {
        let metadata = object["metadata"]?.objectValue ?? JSONObject()
        warnAboutMetadata(metadata, path: path)
        let labels = metadata["labels"]?.stringMapValue ?? [:]
        for key in labels.keys.sorted() where !Builder.endpointObjectLabels.contains(key) && serviceLabels[key] != labels[key] {
            warn(
                "\(path).metadata.labels[\(key)]",
                "not kept: the registry labels the Endpoints and EndpointSlices with the Service's labels (put it on the Service to keep it)")
        }
        let annotations = metadata["annotations"]?.stringMapValue ?? [:]
        for key in annotations.keys.sorted()
        where key != "kubectl.kubernetes.io/last-applied-configuration" && key != "endpoints.kubernetes.io/last-change-trigger-time" {
            warn("\(path).metadata.annotations[\(key)]", "not kept: the registry puts no annotations on Endpoints and EndpointSlices")
        }
    }

    /// Maps endpoint ports onto the Service's ports by name and protocol: one backend port per
    /// Service port (nil: a Service port not listed, the addresses do not serve it). Endpoints may
    /// give one name several port numbers (the API server allows it; each (address, port) pair is
    /// an endpoint): the first vector holds the first number of each, each further one only the
    /// further numbers, so every pair becomes one registered address, as with one subset per port.
    /// Nil (after recording why) when a port is invalid or none matches a Service port. The API
    /// server's rules for endpoint ports: pkg/apis/core/validation `validateEndpointPort` (a name
    /// required when the subset has several; no uniqueness) and pkg/apis/discovery/validation
    /// `validatePorts`: a name is empty or a DNS-1123 label, unique in a slice; a valid port
    /// number; a supported protocol; `appProtocol` a qualified name.
    mutating func backendPorts(_ items: [JSONValue], path: String, ports: [ImportedPort], isEndpoints: Bool) -> [[Int?]]? {
        // validateEndpointPort: with several ports in a subset, each needs a name.
        let requireName = isEndpoints && items.count > 1
        var found: [[Int]] = Array(repeating: [], count: ports.count)
        var names = Set<String>()
        var valid = true
        var matched: [(itemPath: String, match: Int, appProtocol: String?)] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            let object = Builder.object(item) ?? JSONObject()
            let rawName = Builder.string(object["name"]) ?? ""
            if requireName && rawName.isEmpty {
                fail("\(itemPath).name", "Required value", kind: .required)
                valid = false
            } else if !rawName.isEmpty, case let problems = KubernetesNames.dns1123Label(rawName), !problems.isEmpty {
                for problem in problems { fail("\(itemPath).name", "Invalid value: \"\(rawName)\": \(problem)") }
                valid = false
            } else if !names.insert(rawName).inserted && !isEndpoints {
                fail("\(itemPath).name", "Duplicate value: \"\(rawName)\"", kind: .duplicate)
                valid = false
            }
            if let appProtocol = Builder.string(object["appProtocol"]) {
                for problem in KubernetesNames.qualifiedName(appProtocol) {
                    fail("\(itemPath).appProtocol", "Invalid value: \"\(appProtocol)\": \(problem)")
                    valid = false
                }
            }
            if let proto = Builder.string(object["protocol"]), !["TCP", "UDP", "SCTP"].contains(proto) {
                fail("\(itemPath).protocol", "Unsupported value: \"\(proto)\": supported values: \"SCTP\", \"TCP\", \"UDP\"", kind: .notSupported)
                valid = false
                continue
            }
            guard let number = object["port"]?.intValue else {
                if isEndpoints {
                    // Endpoints: the port defaults to 0, which `IsValidPortNum` refuses.
                    fail("\(itemPath).port", "Invalid value: 0: must be between 1 and 65535, inclusive")
                    valid = false
                } else {
                    // EndpointSlice: a port without number is valid ("not restricted", left to the
                    // consumer); kube-proxy ignores it, and a registered backend port is a number.
                    warn("\(itemPath).port", "absent: the port is not kept (kube-proxy ignores an endpoint port without number)")
                }
                continue
            }
            if !(1...65535).contains(number) {
                fail("\(itemPath).port", "Invalid value: \(number): must be between 1 and 65535, inclusive")
                valid = false
                continue
            }
            let name = rawName.isEmpty ? nil : rawName
            let proto = Builder.string(object["protocol"]) ?? "TCP"
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
            if !found[match].contains(number) { found[match].append(number) }
            matched.append((itemPath, match, Builder.string(object["appProtocol"])))
        }
        guard valid else { return nil }
        for (itemPath, match, appProtocol) in matched where appProtocol != nil && appProtocol != ports[match].appProtocol {
            warn(
                "\(itemPath).appProtocol",
                "\"\(appProtocol!)\" is not kept: the registry gives the endpoints the appProtocol of the Service port (\(ports[match].appProtocol.map { "\"\($0)\"" } ?? "none"))"
            )
        }
        if !ports.isEmpty, found.allSatisfy(\.isEmpty) {
            // Valid in Kubernetes; the cause (a port that matches nothing) is reported above when any.
            warn(path, "its addresses are not kept: they serve no port of the Service", notKept: true)
            return nil
        }
        let vectors = max(1, found.map(\.count).max() ?? 0)
        return (0..<vectors).map { vector in found.map { vector < $0.count ? $0[vector] : nil } }
    }

    mutating func endpointsBackends(_ object: JSONObject, path: String, ports: [ImportedPort]) -> [Backend] {
        var backends: [Backend] = []
        for (index, subsetValue) in (object["subsets"]?.arrayValue ?? []).enumerated() {
            let subsetPath = "\(path).subsets[\(index)]"
            let subset = Builder.object(subsetValue) ?? JSONObject()
            // pkg/apis/core/validation `validateEndpointSubsets`: addresses or notReadyAddresses,
            // each address (`validateEndpointAddress`) and port (`validateEndpointPort`) valid.
            if Builder.array(subset["addresses"]).isEmpty && Builder.array(subset["notReadyAddresses"]).isEmpty {
                fail(subsetPath, "Required value: must specify `addresses` or `notReadyAddresses`", kind: .required)
                continue
            }
            var entries: [(path: String, address: JSONObject, ready: Bool)] = []
            for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for (addressIndex, entry) in Builder.array(subset[field]).enumerated() {
                    let addressPath = "\(subsetPath).\(field)[\(addressIndex)]"
                    let address = entry.objectValue ?? JSONObject()
                    guard address["ip"] != nil else {
                        fail("\(addressPath).ip", "is required", kind: .required)
                        continue
                    }
                    let validIP = validateEndpointIP(address["ip"], path: "\(addressPath).ip", family: nil)
                    guard validateEndpointNames(address, path: addressPath) && validIP else { continue }
                    for key in address.keys.sorted() where key != "ip" && key != "hostname" {
                        warn("\(addressPath).\(key)", "not kept: a registered address has no \(key)")
                    }
                    entries.append((addressPath, address, ready))
                }
            }
            let subsetPorts = Builder.array(subset["ports"])
            guard let backendPorts = backendPorts(subsetPorts, path: "\(subsetPath).ports", ports: ports, isEndpoints: true)
            else { continue }
            for entry in entries {
                for vector in backendPorts {
                    backends.append(
                        Backend(
                            ip: Builder.string(entry.address["ip"]) ?? "", hostname: Builder.string(entry.address["hostname"]), zone: nil,
                            ready: entry.ready, ports: vector, source: entry.path, ipSource: "\(entry.path).ip"))
                }
            }
        }
        return backends
    }

    mutating func sliceBackends(_ object: JSONObject, path: String, ports: [ImportedPort]) -> [Backend] {
        // pkg/apis/discovery/validation `ValidateEndpointSlice`: addressType required and
        // supported; at most 1000 endpoints, 100 ports; each endpoint 1 to 100 addresses of the
        // slice's family, none special; hostname and nodeName valid.
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
        var entries: [(path: String, endpoint: JSONObject, addresses: [String])] = []
        for (index, entry) in Builder.array(object["endpoints"]).enumerated() {
            let endpointPath = "\(path).endpoints[\(index)]"
            let endpoint = Builder.object(entry) ?? JSONObject()
            let addresses = Builder.array(endpoint["addresses"])
            var valid = true
            if addresses.isEmpty {
                fail("\(endpointPath).addresses", "Required value: must contain at least 1 address", kind: .required)
                valid = false
            } else if addresses.count > 100 {
                fail("\(endpointPath).addresses", "Too many: \(addresses.count): must have at most 100 items", kind: .tooMany)
                valid = false
            }
            for (addressIndex, value) in addresses.enumerated() where addresses.count <= 100 {
                if !validateEndpointIP(value, path: "\(endpointPath).addresses[\(addressIndex)]", family: family) { valid = false }
            }
            if !validateEndpointNames(endpoint, path: endpointPath) { valid = false }
            guard valid else { continue }
            for key in endpoint.keys.sorted() where !["addresses", "conditions", "hostname", "zone"].contains(key) {
                warn("\(endpointPath).\(key)", "not kept: a registered address has no \(key)")
            }
            warnAboutConditions(endpoint["conditions"]?.objectValue ?? JSONObject(), path: "\(endpointPath).conditions")
            // discovery/v1 `Endpoint.addresses`: "Consumers must handle different types of
            // addresses in the context of their own capabilities"; the addresses are fungible and
            // kube-proxy (pkg/proxy/endpointslicecache.go) uses only the first. Registering the
            // others as backends would send them traffic the cluster never sends them.
            let ips = addresses.compactMap(Builder.string)
            if ips.count > 1 {
                let extra = ips.count == 2 ? "addresses[1]" : "addresses[1...\(ips.count - 1)]"
                warn(
                    "\(endpointPath).\(extra)",
                    "\(ips.dropFirst().joined(separator: ", ")) not kept: only the first address of an endpoint is used (kube-proxy "
                        + "ignores the others), so only \(ips[0]) is registered; give each backend its own endpoint")
            }
            entries.append((endpointPath, endpoint, Array(ips.prefix(1))))
        }
        guard let backendPorts = backendPorts(Builder.array(object["ports"]), path: "\(path).ports", ports: ports, isEndpoints: false) else {
            return []
        }
        var backends: [Backend] = []
        for entry in entries {
            let ready = entry.endpoint["conditions"]?["ready"]?.boolValue ?? true
            for (addressIndex, ip) in entry.addresses.enumerated() {
                backends.append(
                    Backend(
                        ip: ip, hostname: Builder.string(entry.endpoint["hostname"]), zone: Builder.string(entry.endpoint["zone"]), ready: ready,
                        ports: backendPorts[0], source: entry.path, ipSource: "\(entry.path).addresses[\(addressIndex)]"))
            }
        }
        return backends
    }

    /// A registered address has one condition, `ready`; the rendering gives `serving` the same
    /// value and `terminating` none (false). Anything else an endpoint says is not kept (kube-proxy
    /// falls back to serving, terminating endpoints when none is ready).
    mutating func warnAboutConditions(_ conditions: JSONObject, path: String) {
        let ready = conditions["ready"]?.boolValue ?? true
        if let serving = conditions["serving"]?.boolValue, serving != ready {
            warn("\(path).serving", "\(serving) is not kept: a registered address is serving exactly when it is ready (\(ready))")
        }
        if conditions["terminating"]?.boolValue == true {
            warn("\(path).terminating", "true is not kept: a registered address is never terminating")
        }
        for key in conditions.keys.sorted() where !["ready", "serving", "terminating"].contains(key) {
            warn("\(path).\(key)", "not kept: a registered address has no condition \(key)")
        }
    }
}
