/// The JSON types the Kubernetes API gives the fields of the objects the registry imports, so
/// that an import refuses what the API server would refuse when it decodes a request (a number
/// where a string belongs, a string where an integer belongs, a label value that is not a
/// string) instead of coercing it.
///
/// Source: the Go types of `k8s.io/api/core/v1` (`ObjectMeta`, `Service`, `ServiceSpec`,
/// `ServicePort`, `Endpoints`, `EndpointSubset`, `EndpointAddress`, `EndpointPort`) and
/// `k8s.io/api/discovery/v1` (`EndpointSlice`, `Endpoint`, `EndpointConditions`,
/// `EndpointPort`); `null` is accepted anywhere (Go decodes it as the zero value) and unknown
/// fields are left to the importer.
public indirect enum KubernetesType: Sendable {
    case string
    /// int32 or int64: a JSON integer.
    case integer
    case boolean
    /// `intstr.IntOrString` (`targetPort`): a JSON integer or a string.
    case integerOrString
    /// `map[string]string` (labels, annotations, selector).
    case stringMap
    case list(KubernetesType)
    /// A struct: the types of its known fields.
    case object([String: KubernetesType])
    /// Any JSON object (a struct the registry does not read).
    case anyObject

    /// Type errors of `value` against this type, with field paths under `path`.
    public func violations(of value: JSONValue, at path: String) -> [FieldViolation] {
        var found: [FieldViolation] = []
        check(value, at: path, into: &found)
        return found
    }

    private func check(_ value: JSONValue, at path: String, into found: inout [FieldViolation]) {
        if value == .null { return }
        func wrong(_ expected: String) {
            found.append(FieldViolation(path, .wrongType, "must be \(expected), not \(value.typeName)\(Self.literal(value))"))
        }
        switch self {
        case .string:
            if case .string = value { return }
            wrong("a string")
        case .integer:
            if value.intValue != nil { return }
            wrong("an integer")
        case .boolean:
            if case .bool = value { return }
            wrong("a boolean")
        case .integerOrString:
            if case .string = value { return }
            if value.intValue != nil { return }
            wrong("an integer or a string")
        case .stringMap:
            guard case .object(let object) = value else { return wrong("an object of strings") }
            for member in object where !(member.value == .null) {
                guard case .string = member.value else {
                    found.append(
                        FieldViolation(
                            "\(path)[\(member.key)]", .wrongType, "must be a string, not \(member.value.typeName)\(Self.literal(member.value))"))
                    continue
                }
            }
        case .list(let element):
            guard case .array(let items) = value else { return wrong("an array") }
            for (index, item) in items.enumerated() { element.check(item, at: "\(path)[\(index)]", into: &found) }
        case .object(let fields):
            guard case .object(let object) = value else { return wrong("an object") }
            for member in object {
                fields[member.key]?.check(member.value, at: "\(path).\(member.key)", into: &found)
            }
        case .anyObject:
            guard case .object = value else { return wrong("an object") }
        }
    }

    /// ` (80.0)`: the literal of a scalar, so the message shows what was written.
    private static func literal(_ value: JSONValue) -> String {
        switch value {
        case .number(let text): " (\(text))"
        case .string(let text) where text.utf8.count <= 64: " (\"\(text)\")"
        case .bool(let flag): " (\(flag))"
        default: ""
        }
    }

    // MARK: - The imported kinds

    static let objectMeta = KubernetesType.object([
        "name": .string, "generateName": .string, "namespace": .string, "uid": .string, "resourceVersion": .string,
        "generation": .integer, "creationTimestamp": .string, "deletionTimestamp": .string, "deletionGracePeriodSeconds": .integer,
        "labels": .stringMap, "annotations": .stringMap, "finalizers": .list(.string), "ownerReferences": .list(.anyObject),
        "managedFields": .list(.anyObject),
    ])

    static let servicePort = KubernetesType.object([
        "name": .string, "protocol": .string, "appProtocol": .string, "port": .integer, "targetPort": .integerOrString, "nodePort": .integer,
    ])

    /// `v1 Service`.
    public static let service = KubernetesType.object([
        "apiVersion": .string, "kind": .string, "metadata": objectMeta, "status": .anyObject,
        "spec": .object([
            "ports": .list(servicePort), "selector": .stringMap, "clusterIP": .string, "clusterIPs": .list(.string), "type": .string,
            "externalIPs": .list(.string), "sessionAffinity": .string, "loadBalancerIP": .string, "loadBalancerSourceRanges": .list(.string),
            "externalName": .string, "externalTrafficPolicy": .string, "healthCheckNodePort": .integer, "publishNotReadyAddresses": .boolean,
            "sessionAffinityConfig": .object(["clientIP": .object(["timeoutSeconds": .integer])]), "ipFamilies": .list(.string),
            "ipFamilyPolicy": .string, "allocateLoadBalancerNodePorts": .boolean, "loadBalancerClass": .string,
            "internalTrafficPolicy": .string, "trafficDistribution": .string,
        ]),
    ])

    static let endpointAddress = KubernetesType.object(["ip": .string, "hostname": .string, "nodeName": .string, "targetRef": .anyObject])
    static let endpointPort = KubernetesType.object(["name": .string, "port": .integer, "protocol": .string, "appProtocol": .string])

    /// `v1 Endpoints`.
    public static let endpoints = KubernetesType.object([
        "apiVersion": .string, "kind": .string, "metadata": objectMeta,
        "subsets": .list(.object(["addresses": .list(endpointAddress), "notReadyAddresses": .list(endpointAddress), "ports": .list(endpointPort)])),
    ])

    /// `discovery.k8s.io/v1 EndpointSlice`.
    public static let endpointSlice = KubernetesType.object([
        "apiVersion": .string, "kind": .string, "metadata": objectMeta, "addressType": .string, "ports": .list(endpointPort),
        "endpoints": .list(
            .object([
                "addresses": .list(.string), "conditions": .object(["ready": .boolean, "serving": .boolean, "terminating": .boolean]),
                "hostname": .string, "nodeName": .string, "zone": .string, "targetRef": .anyObject, "deprecatedTopology": .stringMap,
                "hints": .anyObject,
            ])),
    ])

    /// The type of an object of `kind`, when the registry imports that kind; every object's
    /// `apiVersion`, `kind` and `metadata` are typed otherwise.
    public static func of(kind: String?) -> KubernetesType {
        switch kind {
        case "Service": service
        case "Endpoints": endpoints
        case "EndpointSlice": endpointSlice
        default: .object(["apiVersion": .string, "kind": .string, "metadata": objectMeta])
        }
    }
}
