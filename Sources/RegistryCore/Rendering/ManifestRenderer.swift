/// The Kubernetes objects of one service, in apply order, with what the user should know.
public struct Rendering: Sendable, Equatable {
    public var objects: [JSONValue]
    /// Facts the cluster would not tell: e.g. an Endpoints object too large to be mirrored.
    public var warnings: [String]
}

/// Renders a registered service into the objects an expert would write by hand: a Service
/// without selector, then its Endpoints and/or EndpointSlices. A pure, deterministic function:
/// the same service always gives the same bytes.
///
/// Rules (Kubernetes documentation, "Services without selectors" and "EndpointSlices";
/// kubernetes/kubernetes `pkg/controller/endpointslice`): Endpoints and Service share name and
/// namespace; port names match the Service's exactly; one EndpointSlice per address family and
/// port set, at most `maxEndpointsPerSlice` endpoints each, named deterministically and uniquely
/// (see `sliceBaseName`); slices carry
/// `kubernetes.io/service-name` and our `endpointslice.kubernetes.io/managed-by`.
public enum ManifestRenderer {
    public static let managerName = "endpoint-registry"
    /// The EndpointSlice controller's default size.
    public static let maxEndpointsPerSlice = 100
    /// Beyond this many addresses an Endpoints object is truncated when mirrored (and is
    /// unsupported by the API documentation).
    public static let maxEndpointsAddresses = 1000
    /// Annotation carrying the registration's description on the Service (so imports round-trip).
    public static let descriptionAnnotation = "endpoint-registry/description"

    public static func render(_ service: ExternalService, mode: EndpointsMode? = nil) -> Rendering {
        var service = service
        // Addresses given by `host` render as the IPs they resolve to (`resolvingHosts`); one
        // not expanded renders nothing.
        if service.addresses.contains(where: \.isUnresolvedHost) { service.addresses.removeAll(where: \.isUnresolvedHost) }
        var objects = [self.service(service)]
        guard service.type != .externalName else { return Rendering(objects: objects, warnings: []) }
        let mode = mode ?? service.endpointsMode
        let groups = portGroups(service)
        if mode == .endpoints || mode == .both {
            objects.append(endpoints(service, groups: groups, skipMirror: mode == .both))
        }
        if mode == .endpointslices || mode == .both {
            objects += endpointSlices(service, groups: groups)
        }
        return Rendering(objects: objects, warnings: warnings(service, mode: mode))
    }

    /// The warnings of `render(service, mode:)` without rendering the objects (what a write
    /// answers with).
    public static func warnings(_ service: ExternalService, mode: EndpointsMode? = nil) -> [String] {
        var warnings: [String] = []
        guard service.type != .externalName else { return warnings }
        let mode = mode ?? service.endpointsMode
        if mode == .endpoints || mode == .both {
            if mode == .endpoints, service.addresses.contains(where: { $0.zone != nil }) {
                warnings.append("zones are only expressible in EndpointSlices; the Endpoints of \(service.namespace)/\(service.name) omits them")
            }
            if mode == .endpoints,
                let reason = unmirrorableReason(
                    ips: service.addresses.map { address in (address.ip, service.ports.map(address.serves)) }, portNames: service.ports.map(\.name))
            {
                warnings.append(
                    "Endpoints \(service.namespace)/\(service.name) cannot be mirrored: \(reason). Use endpointsMode \"both\" "
                        + "(the registry then writes the EndpointSlices itself).")
            }
            if service.addresses.count > maxEndpointsAddresses {
                warnings.append(
                    "Endpoints \(service.namespace)/\(service.name) holds \(service.addresses.count) addresses; "
                        + "Kubernetes does not support more than \(maxEndpointsAddresses) in one Endpoints object and the mirroring controller "
                        + "drops the excess. Render EndpointSlices instead (endpointsMode=endpointslices).")
            }
        }
        return warnings
    }

    // MARK: - Service

    static func metadata(name: String, namespace: String, labels: [String: String], annotations: [String: String] = [:]) -> JSONValue {
        var object = JSONObject([("name", .string(name)), ("namespace", .string(namespace))])
        object["labels"] = sortedStrings(labels)
        if !annotations.isEmpty { object["annotations"] = sortedStrings(annotations) }
        return .object(object)
    }

    static func sortedStrings(_ map: [String: String]) -> JSONValue {
        .object(JSONObject(map.keys.sorted().map { ($0, .string(map[$0]!)) }))
    }

    static func ownLabels(_ service: ExternalService) -> [String: String] {
        service.labels.merging(["app.kubernetes.io/managed-by": managerName]) { $1 }
    }

    static func service(_ service: ExternalService) -> JSONValue {
        var annotations = service.annotations
        if let description = service.description { annotations[descriptionAnnotation] = description }
        var spec = JSONObject()
        switch service.type {
        case .clusterIP, .nodePort, .loadBalancer:
            spec["type"] = .string(service.type.rawValue)
        case .headless:
            spec["type"] = .string("ClusterIP")
            spec["clusterIP"] = .string("None")
        case .externalName:
            spec["type"] = .string("ExternalName")
            spec["externalName"] = .string(service.externalName ?? "")
        }
        if !service.ports.isEmpty {
            // The Service's ports exactly as the API spells them (same fields, same order).
            spec["ports"] = .array(service.ports.map(ServiceEncoder.json))
        }
        renderSpecFields(service, into: &spec)
        // Values the API server would default, written out so that re-applying the rendering
        // (kubectl apply, server-side apply) finds nothing to change. Source:
        // kubernetes/kubernetes pkg/apis/core/v1/defaults.go `SetDefaults_Service`
        // (sessionAffinity for every type; internalTrafficPolicy for ClusterIP, NodePort, LoadBalancer).
        spec["sessionAffinity"] = .string(service.spec.sessionAffinity.rawValue)
        if service.spec.sessionAffinity == .clientIP {
            let timeout = service.spec.sessionAffinityTimeoutSeconds ?? ServiceSpecFields.defaultSessionAffinityTimeoutSeconds
            spec["sessionAffinityConfig"] = .object(JSONObject([("clientIP", .object(JSONObject([("timeoutSeconds", .integer(timeout))])))]))
        }
        if service.type != .externalName {
            spec["internalTrafficPolicy"] = .string((service.spec.internalTrafficPolicy ?? .cluster).rawValue)
        }
        if service.type.isExternallyAccessible {
            spec["externalTrafficPolicy"] = .string((service.spec.externalTrafficPolicy ?? .cluster).rawValue)
        }
        if service.type == .loadBalancer {
            spec["allocateLoadBalancerNodePorts"] = .bool(service.spec.allocateLoadBalancerNodePorts ?? true)
        }
        return .object(
            JSONObject([
                ("apiVersion", .string("v1")), ("kind", .string("Service")),
                ("metadata", metadata(name: service.name, namespace: service.namespace, labels: ownLabels(service), annotations: annotations)),
                ("spec", .object(spec)),
            ]))
    }

    /// Why the EndpointSlice mirroring controller of Kubernetes ≥ 1.27 cannot mirror Endpoints
    /// with these addresses (IP, whether it serves each service port), or nil. The controller
    /// first repacks the subsets (kubernetes pkg/api/v1/endpoints `RepackSubsets`, PR 114155):
    /// all ports of one IP end up in one subset, so an IP that serves the same service port on
    /// two backend ports gives two ports of the same name, and the mirrored slice is refused
    /// (pkg/apis/discovery/validation `validateEndpointPorts`: `ports[1].name: Duplicate value`).
    public static func unmirrorableReason(ips: [(ip: String, serves: [Bool])], portNames: [String?]) -> String? {
        var seen: [String: [Bool]] = [:]
        for (ip, serves) in ips {
            if let earlier = seen[ip], let port = serves.indices.first(where: { earlier.indices.contains($0) && earlier[$0] && serves[$0] }) {
                let name = portNames[port].map { "\"\($0)\"" } ?? "<unnamed>"
                return "the mirroring controller of Kubernetes 1.27 and later merges subsets that list the same addresses (RepackSubsets), "
                    + "so \(ip) gets port \(name) twice, the mirrored EndpointSlice is refused (ports[1].name: Duplicate value) "
                    + "and kube-proxy gets no endpoints for the Service"
            }
            seen[ip] = zip(seen[ip] ?? serves.map { _ in false }, serves).map { $0 || $1 }
        }
        return nil
    }

    // MARK: - Service spec fields (issue 12)

    /// The IP families a Service renders with: what the user gave, else chosen from the
    /// addresses for Services with a cluster IP: only IPv6 addresses give `SingleStack [IPv6]`
    /// (the API server would otherwise give the cluster's primary family, IPv4 on most clusters,
    /// and the IPv6 slices would be unreachable); both families give `PreferDualStack` (dual-stack
    /// where the cluster is, its one family elsewhere: never refused). Only IPv4, none, Headless
    /// and ExternalName: nothing (the API server's defaults; for a Headless Service without selector
    /// that is `RequireDualStack` on a dual-stack cluster).
    public static func ipFamilies(_ service: ExternalService) -> (policy: IPFamilyPolicy?, families: [IPAddress.Family]) {
        if service.spec.ipFamilyPolicy != nil || !service.spec.ipFamilies.isEmpty {
            return (service.spec.ipFamilyPolicy, service.spec.ipFamilies)
        }
        guard service.type.hasClusterIP else { return (nil, []) }
        let families = Set(service.addresses.compactMap { try? $0.parsedIP.get() }.map(\.family))
        if families == [.ipv6] { return (.singleStack, [.ipv6]) }
        if families.count == 2 { return (.preferDualStack, []) }
        return (nil, [])
    }

    static func renderSpecFields(_ service: ExternalService, into spec: inout JSONObject) {
        let fields = service.spec
        let (policy, families) = ipFamilies(service)
        if let policy { spec["ipFamilyPolicy"] = .string(policy.rawValue) }
        if !families.isEmpty { spec["ipFamilies"] = .array(families.map { .string($0.rawValue) }) }
        if fields.publishNotReadyAddresses { spec["publishNotReadyAddresses"] = .bool(true) }
        if let distribution = fields.trafficDistribution { spec["trafficDistribution"] = .string(distribution.rawValue) }
        if let loadBalancerClass = fields.loadBalancerClass { spec["loadBalancerClass"] = .string(loadBalancerClass) }
        if !fields.loadBalancerSourceRanges.isEmpty {
            spec["loadBalancerSourceRanges"] = .array(fields.loadBalancerSourceRanges.map(JSONValue.string))
        }
    }

    // MARK: - Grouping

    /// Addresses that share the same backend port for every service port.
    struct PortGroup {
        /// Per service port, in order; nil where the group does not serve the port.
        var backendPorts: [Int?]
        var addresses: [(ip: IPAddress, address: EndpointAddress)]
    }

    static func portGroups(_ service: ExternalService) -> [PortGroup] {
        var groups: [[Int?]: PortGroup] = [:]
        for address in service.addresses {
            guard case .success(let ip) = address.parsedIP else { continue }
            let ports = address.backendPorts(for: service.ports)
            groups[ports, default: PortGroup(backendPorts: ports, addresses: [])].addresses.append((ip, address))
        }
        return groups.values
            .map { group in
                var sorted = group
                sorted.addresses.sort { $0.ip < $1.ip }
                return sorted
            }
            .sorted { $0.backendPorts.map { $0 ?? 0 }.lexicographicallyPrecedes($1.backendPorts.map { $0 ?? 0 }) }
    }

    /// The endpoint ports of a group: names and protocols exactly as the Service's ports.
    /// EndpointSlice ports spell an unnamed port `name: ""`, as the API server defaults it
    /// (kubernetes/kubernetes pkg/apis/discovery/v1/defaults.go `SetDefaults_EndpointPort`);
    /// Endpoints ports omit it (`name` is `omitempty` in core/v1 and never defaulted).
    static func endpointPorts(_ service: ExternalService, backendPorts: [Int?], emptyName: Bool = false) -> [JSONValue] {
        zip(service.ports, backendPorts).compactMap { servicePort, backend -> JSONValue? in
            guard let backend else { return nil }
            var object = JSONObject()
            if let name = servicePort.name {
                object["name"] = .string(name)
            } else if emptyName {
                object["name"] = .string("")
            }
            object["port"] = .integer(backend)
            object["protocol"] = .string(servicePort.protocol.rawValue)
            if let appProtocol = servicePort.appProtocol { object["appProtocol"] = .string(appProtocol) }
            return .object(object)
        }
    }

    // MARK: - Endpoints

    static func endpoints(_ service: ExternalService, groups: [PortGroup], skipMirror: Bool) -> JSONValue {
        var labels = ownLabels(service)
        if skipMirror { labels["endpointslice.kubernetes.io/skip-mirror"] = "true" }
        let subsets: [JSONValue] = groups.map { group in
            func entry(_ address: EndpointAddress) -> JSONValue {
                var object = JSONObject([("ip", .string(address.ip))])
                if let hostname = address.hostname { object["hostname"] = .string(hostname) }
                return .object(object)
            }
            var subset = JSONObject()
            let ready = group.addresses.filter(\.address.ready).map { entry($0.address) }
            let notReady = group.addresses.filter { !$0.address.ready }.map { entry($0.address) }
            if !ready.isEmpty { subset["addresses"] = .array(ready) }
            if !notReady.isEmpty { subset["notReadyAddresses"] = .array(notReady) }
            let ports = endpointPorts(service, backendPorts: group.backendPorts)
            if !ports.isEmpty { subset["ports"] = .array(ports) }
            return .object(subset)
        }
        return .object(
            JSONObject([
                ("apiVersion", .string("v1")), ("kind", .string("Endpoints")),
                ("metadata", metadata(name: service.name, namespace: service.namespace, labels: labels)),
                ("subsets", .array(subsets)),
            ]))
    }

    // MARK: - EndpointSlices

    static func endpointSlices(_ service: ExternalService, groups: [PortGroup]) -> [JSONValue] {
        var labels = ownLabels(service)
        labels["kubernetes.io/service-name"] = service.name
        labels["endpointslice.kubernetes.io/managed-by"] = managerName
        if service.type == .headless { labels["service.kubernetes.io/headless"] = "" }
        // A slice whose family the Service does not have is ignored by kube-proxy.
        var slices: [JSONValue] = []
        // Like the EndpointSlice controller, a service without addresses gets one empty slice.
        let placeholder = PortGroup(backendPorts: service.ports.map(\.targetPort), addresses: [])
        for family in [IPAddress.Family.ipv4, .ipv6] {
            // Groups of this family already named after each hashed name (see `sliceBaseName`).
            var named: [String: Int] = [:]
            for group in groups.isEmpty && family == .ipv4 ? [placeholder] : groups {
                let members = group.addresses.filter { $0.ip.family == family }
                guard !members.isEmpty || groups.isEmpty else { continue }
                let hashed = sliceBaseName(service: service.name, family: family, backendPorts: group.backendPorts)
                let earlier = named[hashed, default: 0]
                named[hashed] = earlier + 1
                // Two port sets whose hashes collide: the later one (in the groups' order) gets
                // `-c<k>`, which no chunk suffix (`-<n>`) and no other hashed name can end with.
                let base = earlier == 0 ? hashed : "\(hashed)-c\(earlier)"
                for (chunkIndex, start) in stride(from: 0, to: max(members.count, 1), by: maxEndpointsPerSlice).enumerated() {
                    let chunk = members[start..<min(start + maxEndpointsPerSlice, members.count)]
                    let name = chunkIndex == 0 ? base : "\(base)-\(chunkIndex)"
                    let endpoints: [JSONValue] = chunk.map { member in
                        var endpoint = JSONObject([
                            ("addresses", .array([.string(member.address.ip)])),
                            ("conditions", .object(JSONObject([("ready", .bool(member.address.ready)), ("serving", .bool(member.address.ready))]))),
                        ])
                        if let hostname = member.address.hostname { endpoint["hostname"] = .string(hostname) }
                        if let zone = member.address.zone { endpoint["zone"] = .string(zone) }
                        return .object(endpoint)
                    }
                    slices.append(
                        .object(
                            JSONObject([
                                ("apiVersion", .string("discovery.k8s.io/v1")), ("kind", .string("EndpointSlice")),
                                ("metadata", metadata(name: name, namespace: service.namespace, labels: labels)),
                                ("addressType", .string(family.rawValue)),
                                ("endpoints", .array(endpoints)),
                                ("ports", .array(endpointPorts(service, backendPorts: group.backendPorts, emptyName: true))),
                            ])))
                }
            }
        }
        return slices
    }

    /// `<service>-ipv4-<FNV-1a-32 of the backend ports>`: stable while addresses come and go,
    /// distinct per family. A port the group does not serve counts as `-`, so names of groups
    /// serving every port are what they were before per-address port subsets existed.
    ///
    /// 32 bits collide (e.g. backend ports 30687,16171 and 5814,57961), so this is not yet the
    /// slice's name: `endpointSlices` gives the second and later port sets of one family with
    /// the same hashed name the suffix `-c1`, `-c2`, … (in the groups' order, by backend ports),
    /// and chunks beyond the first 100 endpoints `-1`, `-2`, …. Every name of one rendering is
    /// then distinct: the hashed part has a fixed length after the service name, and the
    /// suffixes `""`, `-<n>`, `-c<k>`, `-c<k>-<n>` cannot be mistaken for one another. At most
    /// 63 (service) + 14 + 7 (`-c99999`) + 5 (`-9999`) characters, within the 253 of a DNS-1123
    /// subdomain (an EndpointSlice name, pkg/apis/discovery/validation `ValidateEndpointSliceName`).
    static func sliceBaseName(service: String, family: IPAddress.Family, backendPorts: [Int?]) -> String {
        var hash: UInt32 = 0x811C_9DC5
        let text = backendPorts.map { $0.map(String.init) ?? "-" }.joined(separator: ",")
        for byte in text.utf8 {
            hash = (hash ^ UInt32(byte)) &* 0x0100_0193
        }
        let hex = String(hash, radix: 16)
        return "\(service)-\(family.rawValue.lowercased())-\(String(repeating: "0", count: 8 - hex.count))\(hex)"
    }
}
