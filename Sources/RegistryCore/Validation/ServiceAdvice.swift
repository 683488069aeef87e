/// What a valid registration says that will not work as the user likely expects: facts the
/// API server accepts without a word. Returned on writes (a `warnings` list and `Warning: 299`
/// headers, as the API server does for deprecated fields) and in renderings.
public enum ServiceAdvice {
    public static func warnings(_ service: ExternalService) -> [String] {
        var warnings: [String] = []
        if service.type == .headless {
            // A headless Service has no virtual IP, so nothing translates ports: clients reach
            // the addresses on the ports the endpoints list (kube-proxy ignores headless Services).
            for (index, port) in service.ports.enumerated() {
                let backends = Set(
                    service.addresses.compactMap { address in
                        address.serves(port) ? address.backendPorts(for: service.ports)[index] : nil
                    })
                let differing = backends.subtracting([port.port]).sorted()
                if !differing.isEmpty || port.targetPort != port.port {
                    let shown = differing.isEmpty ? [port.targetPort] : differing
                    warnings.append(
                        "ports[\(index)]: a Headless service does no port translation: clients that resolve it connect to the addresses "
                            + "on port \(port.port) as the service says, but the backends listen on \(shown.map(String.init).joined(separator: ", ")); "
                            + "use type ClusterIP for port translation, or give the backend port as the service port")
                }
            }
        }
        if service.type.isExternallyAccessible {
            for (index, port) in service.ports.enumerated() {
                if let nodePort = port.nodePort, !ServiceValidator.defaultNodePortRange.contains(nodePort) {
                    warnings.append(
                        "ports[\(index)].nodePort: \(nodePort) is outside the API server's default --service-node-port-range (30000-32767); "
                            + "a cluster with the default range refuses it")
                }
            }
        }
        if let distribution = service.spec.trafficDistribution, distribution != .preferClose {
            warnings.append(
                "trafficDistribution: \(distribution.rawValue) needs Kubernetes 1.34 or later (1.33 behind the PreferSameTrafficDistribution "
                    + "feature gate); older API servers drop the field")
        }
        if let advice = familyAdvice(service) { warnings.append(advice) }
        warnings += ManifestRenderer.warnings(service)
        return warnings
    }

    /// A single-stack Service gets one IP family (the one `ipFamilies` names, or the cluster's
    /// primary one, IPv4 on most clusters), and kube-proxy sends its traffic only to the endpoints
    /// of that family (it reads only the EndpointSlices of the Service's families): addresses of
    /// the other family are unreachable through it. Headless Services are left out (no virtual
    /// IP; DNS answers with every address).
    static func familyAdvice(_ service: ExternalService) -> String? {
        guard service.type.hasClusterIP, service.spec.ipFamilyPolicy ?? .singleStack == .singleStack,
            service.spec.ipFamilyPolicy != nil || !service.spec.ipFamilies.isEmpty
        else { return nil }
        let family = service.spec.ipFamilies.first ?? .ipv4
        let other = service.addresses.filter { address in (try? address.parsedIP.get()).map { $0.family != family } ?? false }
        guard !other.isEmpty else { return nil }
        let shown = other.prefix(3).map(\.ip).joined(separator: ", ") + (other.count > 3 ? ", …" : "")
        let which =
            service.spec.ipFamilies.isEmpty
            ? "the cluster's primary IP family (IPv4 on most clusters)" : "only \(family.rawValue) (`ipFamilies`)"
        return "ipFamilyPolicy: a SingleStack Service gets \(which), and kube-proxy sends its traffic only to endpoints of that family: "
            + "\(other.count) address(es) (\(shown)) are unreachable through it; use PreferDualStack, or leave ipFamilyPolicy and ipFamilies out "
            + "for the registry to choose from the addresses"
    }
}
