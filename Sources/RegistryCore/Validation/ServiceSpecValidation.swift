// Validation of the Service spec fields of issue 12, with the API server's own rules and
// messages. Source: kubernetes/kubernetes pkg/apis/core/validation/validation.go
// `ValidateService` and the functions it calls (named at each rule).

extension ServiceValidator {
    /// The node port range of a default API server (`--service-node-port-range`).
    public static let defaultNodePortRange = 30000...32767

    static func validateSpecFields(_ service: ExternalService, skipping: Set<String>) -> [FieldViolation] {
        var violations: [FieldViolation] = []
        let fields = service.spec
        // validateIPFamilies / ValidateService (ipFamilyPolicy, ipFamilies).
        if service.type == .externalName {
            if fields.ipFamilyPolicy != nil {
                violations.append(FieldViolation("ipFamilyPolicy", .forbidden, "must not be set for ExternalName services"))
            }
            if !fields.ipFamilies.isEmpty {
                violations.append(FieldViolation("ipFamilies", .forbidden, "must not be set for ExternalName services"))
            }
        } else {
            if fields.ipFamilies.count > 2 {
                violations.append(FieldViolation("ipFamilies", .invalid, "may specify no more than two IP families"))
            }
            var seen = Set<IPAddress.Family>()
            // More than two: reported once above, not again as duplicates.
            for (index, family) in fields.ipFamilies.enumerated() where !seen.insert(family).inserted && fields.ipFamilies.count <= 2 {
                violations.append(FieldViolation("ipFamilies[\(index)]", .duplicate, "Duplicate value: \"\(family.rawValue)\""))
            }
            if fields.ipFamilyPolicy == .singleStack, seen.count > 1 {
                violations.append(
                    FieldViolation("ipFamilyPolicy", .invalid, "must be RequireDualStack or PreferDualStack when multiple 'ipFamilies' are specified")
                )
            }
        }
        // validateClientIPAffinityConfig: timeoutSeconds in (0, 86400].
        if let timeout = fields.sessionAffinityTimeoutSeconds, !skipping.contains("sessionAffinityTimeoutSeconds") {
            if fields.sessionAffinity != .clientIP {
                violations.append(FieldViolation("sessionAffinityTimeoutSeconds", .forbidden, "must not be set when session affinity is None"))
            } else if !(timeout > 0 && timeout <= ServiceSpecFields.maxSessionAffinityTimeoutSeconds) {
                violations.append(
                    FieldViolation(
                        "sessionAffinityTimeoutSeconds", .invalid,
                        "\(timeout): must be greater than 0 and less than \(ServiceSpecFields.maxSessionAffinityTimeoutSeconds)"))
            }
        }
        // validateServiceInternalTrafficFieldsValue: not for ExternalName (the registry's rule: it
        // has no effect there and the API server drops it).
        if service.type == .externalName, fields.internalTrafficPolicy != nil {
            violations.append(FieldViolation("internalTrafficPolicy", .forbidden, "may not be set for ExternalName services"))
        }
        if service.type == .externalName, fields.trafficDistribution != nil {
            violations.append(FieldViolation("trafficDistribution", .forbidden, "may not be set for ExternalName services"))
        }
        // validateServiceExternalTrafficPolicy: only for externally-accessible services.
        if !service.type.isExternallyAccessible, let policy = fields.externalTrafficPolicy {
            violations.append(
                FieldViolation("externalTrafficPolicy", .invalid, "\"\(policy.rawValue)\": may only be set for externally-accessible services"))
        }
        // ValidateService: loadBalancerClass, loadBalancerSourceRanges and
        // allocateLoadBalancerNodePorts only for type LoadBalancer.
        let loadBalancerOnly = "may only be used when `type` is 'LoadBalancer'"
        if let loadBalancerClass = fields.loadBalancerClass {
            if service.type != .loadBalancer {
                violations.append(FieldViolation("loadBalancerClass", .forbidden, loadBalancerOnly))
            } else {
                // ValidateQualifiedName.
                violations += KubernetesNames.qualifiedName(loadBalancerClass).map {
                    FieldViolation("loadBalancerClass", .invalid, "\"\(loadBalancerClass)\": \($0)")
                }
            }
        }
        if !fields.loadBalancerSourceRanges.isEmpty {
            if service.type != .loadBalancer {
                violations.append(FieldViolation("loadBalancerSourceRanges", .forbidden, loadBalancerOnly))
            }
            // apiservice.GetLoadBalancerSourceRanges: each a CIDR (net.ParseCIDR after trimming).
            for (index, range) in fields.loadBalancerSourceRanges.enumerated() where !isCIDR(range) {
                violations.append(
                    FieldViolation(
                        "loadBalancerSourceRanges[\(index)]", .invalid,
                        "\"\(range)\": must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24"))
            }
        }
        if fields.allocateLoadBalancerNodePorts != nil, service.type != .loadBalancer {
            violations.append(FieldViolation("allocateLoadBalancerNodePorts", .forbidden, loadBalancerOnly))
        }
        // ValidateService: nodePort forbidden for ClusterIP, no duplicate (protocol, nodePort).
        var nodePorts: [String: Int] = [:]
        for (index, port) in service.ports.enumerated() {
            guard let nodePort = port.nodePort, !skipping.contains("ports[\(index)].nodePort") else { continue }
            let path = "ports[\(index)].nodePort"
            guard service.type.isExternallyAccessible else {
                let type = service.type == .headless ? "ClusterIP" : service.type.rawValue
                violations.append(FieldViolation(path, .forbidden, "may not be used when `type` is '\(type)'"))
                continue
            }
            // validation.IsValidPortNum; the range of the cluster is checked when it allocates.
            guard (1...65535).contains(nodePort) else {
                violations.append(FieldViolation(path, .invalid, "\(nodePort): must be between 1 and 65535, inclusive"))
                continue
            }
            let key = "\(port.protocol.rawValue)/\(nodePort)"
            if let first = nodePorts[key] {
                violations.append(
                    FieldViolation(path, .duplicate, "\(nodePort)/\(port.protocol.rawValue) is already the nodePort of ports[\(first)]"))
            } else {
                nodePorts[key] = index
            }
        }
        return violations
    }

    /// Whether `text` (surrounding spaces ignored, as `GetLoadBalancerSourceRanges` does) is an
    /// IPv4 or IPv6 CIDR such as `10.240.0.0/24`.
    public static func isCIDR(_ text: String) -> Bool {
        let trimmed = Substring(text).drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()
        let parts = String(trimmed).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let ip = try? IPAddress(parsing: String(parts[0])), let prefix = Int(parts[1]),
            parts[1].allSatisfy(\.isASCII)
        else { return false }
        return (0...(ip.family == .ipv4 ? 32 : 128)).contains(prefix)
    }

    /// Problems with an address's `servedPorts`: each the name of a service port, no duplicates,
    /// not empty, and only on services with more than one (hence named) port.
    static func validateServedPorts(_ address: EndpointAddress, path: @autoclosure () -> String, in service: ExternalService) -> [FieldViolation] {
        guard let served = address.servedPorts else { return [] }
        let path = path()
        if service.ports.count < 2 {
            return [FieldViolation(path, .forbidden, "only for services with more than one port (an address serves all ports of this one)")]
        }
        if served.isEmpty { return [FieldViolation(path, .required, "must name at least one service port (omit it to serve all)")] }
        var violations: [FieldViolation] = []
        let names = service.ports.compactMap(\.name)
        var seen = Set<String>()
        for (index, name) in served.enumerated() {
            if !names.contains(name) {
                violations.append(
                    FieldViolation("\(path)[\(index)]", .invalid, "no service port is named \"\(name)\" (known: \(names.joined(separator: ", ")))"))
            } else if !seen.insert(name).inserted {
                violations.append(FieldViolation("\(path)[\(index)]", .duplicate, "\"\(name)\" is named twice"))
            }
        }
        if let overrides = address.ports {
            for name in overrides.keys.sorted() where names.contains(name) && !served.contains(name) {
                violations.append(
                    FieldViolation(
                        path, .invalid, "does not name \"\(name)\", which \"ports\" gives a backend port for; add it or remove the override"))
            }
        }
        return violations
    }
}
