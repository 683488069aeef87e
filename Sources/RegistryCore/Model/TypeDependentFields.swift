/// What an update that changes a service's `type` does with the fields the new type does not
/// use, as the API server's update strategy does (kubernetes/kubernetes
/// pkg/registry/core/service/strategy.go `dropTypeDependentFields`): a field is wiped only if
/// the new type does not use it, the old one did, and the request left it as it was (it is the
/// value the server itself wrote or defaulted, not one the client asked for). A client that
/// changes such a field, or sets it while changing the type, still gets the validation error.
///
/// Without this, `kubectl`-style updates that send back what they read failed: the document of a
/// ClusterIP service carries the defaulted `internalTrafficPolicy`, so a merge patch
/// `{"type": "ExternalName", "externalName": …, "ports": null}` was refused because an
/// ExternalName service may not have one, while the opposite change succeeded.
public enum TypeDependentFields {
    /// The fields a type may carry, by the registry's validation (`ServiceSpecValidation`): the
    /// JSON key and whether a type uses it.
    static let rules: [(key: String, usedBy: @Sendable (ServiceType) -> Bool)] = [
        // validateIPFamilies, validateServiceInternalTrafficFieldsValue, trafficDistribution.
        ("ipFamilyPolicy", { $0 != .externalName }),
        ("ipFamilies", { $0 != .externalName }),
        ("internalTrafficPolicy", { $0 != .externalName }),
        ("trafficDistribution", { $0 != .externalName }),
        // validateServiceExternalTrafficPolicy.
        ("externalTrafficPolicy", { $0.isExternallyAccessible }),
        // ValidateService: LoadBalancer only (the strategy wipes these two; the source ranges a
        // client sets itself and must remove itself, as with the API server).
        ("allocateLoadBalancerNodePorts", { $0 == .loadBalancer }),
        ("loadBalancerClass", { $0 == .loadBalancer }),
    ]

    /// `object` (the service document an update asks for: a PUT body, or the stored document
    /// with a merge patch applied) without the type-dependent members that `current` (the
    /// stored document, as `ServiceEncoder` writes it) has with the same value, when `object`
    /// changes `type` to one that does not use them; with ports' `nodePort`s likewise when the
    /// new type has none and every port keeps the `nodePort` it had (the strategy's
    /// `sameNodePorts`, by position). Unchanged when the type stays, or either is not a known
    /// type (validation then reports it).
    public static func dropped(from object: JSONObject, current: JSONObject) -> JSONObject {
        guard let newType = type(object["type"] ?? .string(ServiceType.clusterIP.rawValue)), let oldType = type(current["type"]),
            newType != oldType
        else { return object }
        var result = object
        for rule in rules where rule.usedBy(oldType) && !rule.usedBy(newType) {
            if let value = object[rule.key], value == current[rule.key] { result[rule.key] = nil }
        }
        if oldType.isExternallyAccessible && !newType.isExternallyAccessible, case .array(let ports)? = object["ports"],
            case .array(let currentPorts)? = current["ports"], ports.count == currentPorts.count
        {
            let same = zip(ports, currentPorts).allSatisfy { port, currentPort in
                guard case .object(let port) = port, case .object(let currentPort) = currentPort else { return false }
                return port["nodePort"] == currentPort["nodePort"]
            }
            if same {
                result["ports"] = .array(
                    ports.map { port in
                        guard case .object(var members) = port else { return port }
                        members["nodePort"] = nil
                        return .object(members)
                    })
            }
        }
        return result
    }

    private static func type(_ value: JSONValue?) -> ServiceType? {
        guard case .string(let text)? = value else { return nil }
        return ServiceType(rawValue: text)
    }
}
