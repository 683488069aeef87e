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
        warnings += ManifestRenderer.warnings(service)
        return warnings
    }
}
