/// The API's JSON form of services, with a fixed member order so that output is byte-for-byte
/// stable. Defaults are written out (`protocol`, `targetPort`, `ready`) so that what is read
/// back can be sent again unchanged.
public enum ServiceEncoder {
    public static func json(_ record: ServiceRecord) -> JSONValue {
        var object = JSONObject()
        let service = record.service
        object["namespace"] = .string(service.namespace)
        object["name"] = .string(service.name)
        object["uid"] = .string(record.uid)
        object["revision"] = .integer(record.revision)
        object["createdAt"] = .string(record.createdAt)
        object["updatedAt"] = .string(record.updatedAt)
        if let description = service.description { object["description"] = .string(description) }
        object["type"] = .string(service.type.rawValue)
        if let externalName = service.externalName { object["externalName"] = .string(externalName) }
        object["endpointsMode"] = .string(service.endpointsMode.rawValue)
        object["clusters"] = .array(service.clusters.map(JSONValue.string))
        specFields(service, into: &object)
        object["labels"] = stringMap(service.labels)
        object["annotations"] = stringMap(service.annotations)
        object["ports"] = .array(service.ports.map(json))
        object["addresses"] = .array(service.addresses.map(json))
        if let healthCheck = service.healthCheck { object["healthCheck"] = json(healthCheck) }
        // Issue 13: written out (with their defaults) when the service has `host` addresses or sets them.
        if service.dnsRefreshSeconds != nil || service.dnsGraceSeconds != nil || service.addresses.contains(where: { $0.host != nil }) {
            object["dnsRefreshSeconds"] = .integer(service.effectiveDNSRefreshSeconds)
            object["dnsGraceSeconds"] = .integer(service.effectiveDNSGraceSeconds)
        }
        return .object(object)
    }

    public static func bytes(_ record: ServiceRecord) -> [UInt8] {
        JSONWriter.bytes(json(record))
    }

    public static func json(_ port: ServicePort) -> JSONValue {
        var object = JSONObject()
        if let name = port.name { object["name"] = .string(name) }
        object["protocol"] = .string(port.protocol.rawValue)
        object["port"] = .integer(port.port)
        object["targetPort"] = .integer(port.targetPort)
        if let appProtocol = port.appProtocol { object["appProtocol"] = .string(appProtocol) }
        if let nodePort = port.nodePort { object["nodePort"] = .integer(nodePort) }
        return .object(object)
    }

    public static func json(_ address: EndpointAddress) -> JSONValue {
        var object = JSONObject()
        if let host = address.host, address.ip.isEmpty {
            object["host"] = .string(host)
        } else {
            object["ip"] = .string(address.ip)
        }
        if let port = address.port { object["port"] = .integer(port) }
        if let ports = address.ports {
            object["ports"] = .object(JSONObject(ports.keys.sorted().map { ($0, .integer(ports[$0]!)) }))
        }
        if let hostname = address.hostname { object["hostname"] = .string(hostname) }
        if let zone = address.zone { object["zone"] = .string(zone) }
        object["ready"] = .bool(address.ready)
        if let servedPorts = address.servedPorts { object["servedPorts"] = .array(servedPorts.map(JSONValue.string)) }
        return .object(object)
    }

    /// The issue-12 spec fields: the defaults the API server would apply are written out
    /// (`sessionAffinity`, the traffic policies, `allocateLoadBalancerNodePorts`), so that what
    /// is read back states what is rendered; `ipFamilyPolicy`/`ipFamilies` only when given.
    static func specFields(_ service: ExternalService, into object: inout JSONObject) {
        let fields = service.spec
        if let policy = fields.ipFamilyPolicy { object["ipFamilyPolicy"] = .string(policy.rawValue) }
        if !fields.ipFamilies.isEmpty { object["ipFamilies"] = .array(fields.ipFamilies.map { .string($0.rawValue) }) }
        object["sessionAffinity"] = .string(fields.sessionAffinity.rawValue)
        if let timeout = fields.sessionAffinityTimeoutSeconds { object["sessionAffinityTimeoutSeconds"] = .integer(timeout) }
        object["publishNotReadyAddresses"] = .bool(fields.publishNotReadyAddresses)
        if service.type != .externalName {
            object["internalTrafficPolicy"] = .string((fields.internalTrafficPolicy ?? .cluster).rawValue)
        }
        if let distribution = fields.trafficDistribution { object["trafficDistribution"] = .string(distribution.rawValue) }
        if service.type.isExternallyAccessible {
            object["externalTrafficPolicy"] = .string((fields.externalTrafficPolicy ?? .cluster).rawValue)
        }
        if let loadBalancerClass = fields.loadBalancerClass { object["loadBalancerClass"] = .string(loadBalancerClass) }
        if !fields.loadBalancerSourceRanges.isEmpty {
            object["loadBalancerSourceRanges"] = .array(fields.loadBalancerSourceRanges.map(JSONValue.string))
        }
        if service.type == .loadBalancer {
            object["allocateLoadBalancerNodePorts"] = .bool(fields.allocateLoadBalancerNodePorts ?? true)
        }
    }

    /// Liveness (issue 13): the health check with its defaults written out.
    public static func json(_ check: HealthCheck) -> JSONValue {
        var object = JSONObject()
        object["type"] = .string(check.type.rawValue)
        switch check.port {
        case .number(let number)?: object["port"] = .integer(number)
        case .name(let name)?: object["port"] = .string(name)
        case nil: break
        }
        if check.type != .tcp {
            object["path"] = .string(check.path ?? "/")
            if let host = check.host { object["host"] = .string(host) }
            object["expectedStatuses"] = .array(check.effectiveExpectedStatuses.map { .string(HealthCheck.text($0)) })
        }
        if check.type == .https { object["tlsSkipVerify"] = .bool(check.tlsSkipVerify) }
        object["intervalSeconds"] = .integer(check.intervalSeconds)
        object["timeoutSeconds"] = .integer(check.timeoutSeconds)
        object["healthyThreshold"] = .integer(check.healthyThreshold)
        object["unhealthyThreshold"] = .integer(check.unhealthyThreshold)
        object["startUnhealthy"] = .bool(check.startUnhealthy)
        object["failOpen"] = .bool(check.failOpen)
        return .object(object)
    }

    static func stringMap(_ map: [String: String]) -> JSONValue {
        .object(JSONObject(map.keys.sorted().map { ($0, .string(map[$0]!)) }))
    }
}
