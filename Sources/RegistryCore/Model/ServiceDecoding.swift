/// A decoded request body: the service plus the server-managed fields the client echoed back,
/// which act as preconditions on update (`uid`, `revision`) or are ignored (timestamps).
public struct ServiceInput: Sendable, Equatable {
    public var service: ExternalService
    public var uid: String?
    public var revision: Int?
    /// Whether the body named `clusters` (absent: the server's default clusters apply on create
    /// and replace).
    public var clustersGiven = false
}

/// A request body that cannot be accepted, with the problems found: all of them up to
/// `maxReported`, then only their number, so that a hostile body cannot make the answer (or the
/// memory behind it) grow with its size.
public struct ValidationFailure: Error, Sendable, Equatable {
    /// Most violations kept and reported; the rest are counted in `omitted`.
    public static let maxReported = 100

    public var violations: [FieldViolation]
    /// How many more violations were found than are listed.
    public var omitted: Int
    /// Whether every part of the request was examined, so that `violations.count + omitted` is
    /// the exact number of problems. False when a part was not (a list longer than its bound is
    /// refused without reading its items; an import stops looking for type errors once
    /// `maxReported` are found): then there are at least that many.
    public var complete: Bool

    public init(_ violations: [FieldViolation], omitted: Int = 0, complete: Bool = true) {
        self.violations = Array(violations.prefix(Self.maxReported))
        self.omitted = omitted + max(0, violations.count - Self.maxReported)
        self.complete = complete
    }

    /// Every problem found, listed or not.
    public var count: Int { violations.count + omitted }

    /// Unknown fields are a malformed request (400) rather than invalid values (422).
    public var hasUnknownFields: Bool { violations.contains { $0.kind == .unknownField } }
}

/// Turns JSON into an `ExternalService`, applying defaults, collecting unknown fields and type
/// errors, then running `ServiceValidator`: all problems are reported together.
public enum ServiceDecoder {
    public static func decode(_ json: JSONValue) -> Result<ServiceInput, ValidationFailure> {
        let reader = Reader()
        guard case .object(let object) = json else {
            return .failure(ValidationFailure([FieldViolation("", .wrongType, "the body must be a JSON object, not \(json.typeName)")]))
        }
        var input = reader.service(object)
        let ports = input.service.ports
        input.service.addresses.updateEach { $0.normalize(for: ports) }
        var violations = reader.violations
        violations += ServiceValidator.validate(input.service, skippingTypeErrorsAt: reader.typeErrorPaths)
        guard violations.isEmpty else { return .failure(ValidationFailure(violations, complete: !reader.truncated)) }
        // Reordered only now, so that the paths of violations name the fields as sent.
        input.service.normalize()
        return .success(input)
    }

    /// Decodes a single address object, as posted to the addresses sub-resource.
    public static func decodeAddress(_ json: JSONValue, for service: ExternalService) -> Result<EndpointAddress, ValidationFailure> {
        let reader = Reader()
        guard case .object(let object) = json else {
            return .failure(ValidationFailure([FieldViolation("", .wrongType, "the body must be a JSON object, not \(json.typeName)")]))
        }
        var address = reader.address(object, path: "")
        address.normalize(for: service.ports)
        var violations = reader.violations
        violations += ServiceValidator.validateAddress(address, path: "", in: service, skipping: reader.typeErrorPaths)
        return violations.isEmpty ? .success(address) : .failure(ValidationFailure(violations))
    }
}

/// Reads typed fields out of JSON objects, remembering what went wrong and where.
private final class Reader {
    var violations: [FieldViolation] = []
    /// Fields whose type was wrong; validation skips them so each problem is reported once.
    var typeErrorPaths: Set<String> = []
    /// A list or map was longer than its bound, so its items were not read (nor checked).
    var truncated = false

    func join(_ base: String, _ key: String) -> String { base.isEmpty ? key : "\(base).\(key)" }

    func typeError(_ path: String, expected: String, got value: JSONValue) {
        typeErrorPaths.insert(path)
        violations.append(FieldViolation(path, .wrongType, "must be \(expected), not \(value.typeName)"))
    }

    func checkKnown(_ object: JSONObject, path: @autoclosure () -> String, known: Set<String>) {
        for member in object where !known.contains(member.key) {
            violations.append(FieldViolation(join(path(), member.key), .unknownField, "unknown field \"\(member.key)\""))
        }
    }

    func string(_ object: JSONObject, _ key: String, path: @autoclosure () -> String) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case let other?:
            typeError(join(path(), key), expected: "a string", got: other)
            return nil
        }
    }

    /// `path` is built only when there is something to report (this runs per address).
    func integer(_ value: JSONValue?, path: @autoclosure () -> String) -> Int? {
        switch value {
        case nil, .null?: return nil
        case .number?:
            if let int = value?.intValue { return int }
            typeErrorPaths.insert(path())
            violations.append(FieldViolation(path(), .wrongType, "must be an integer"))
            return nil
        case let other?:
            typeError(path(), expected: "an integer", got: other)
            return nil
        }
    }

    func bool(_ object: JSONObject, _ key: String, path: @autoclosure () -> String) -> Bool? {
        switch object[key] {
        case nil, .null?: return nil
        case .bool(let flag)?: return flag
        case let other?:
            typeError(join(path(), key), expected: "a boolean", got: other)
            return nil
        }
    }

    func stringMap(_ object: JSONObject, _ key: String, path: String) -> [String: String] {
        let fieldPath = join(path, key)
        switch object[key] {
        case nil, .null?: return [:]
        case .object(let map)?:
            var result: [String: String] = [:]
            if map.members.count > ServiceValidator.maxLabels {
                typeErrorPaths.insert(fieldPath)
                truncated = true
                violations.append(
                    FieldViolation(fieldPath, .tooMany, "must have at most \(ServiceValidator.maxLabels) entries, got \(map.members.count)"))
                return [:]
            }
            for member in map {
                if case .string(let text) = member.value {
                    result[member.key] = text
                } else {
                    typeError("\(fieldPath)[\(member.key)]", expected: "a string", got: member.value)
                }
            }
            return result
        case let other?:
            typeError(fieldPath, expected: "an object of strings", got: other)
            return [:]
        }
    }

    func stringList(_ object: JSONObject, _ key: String, path: @autoclosure () -> String) -> [String] {
        var fieldPath: String { join(path(), key) }
        switch object[key] {
        case nil, .null?: return []
        case .array(let elements)?:
            var result: [String] = []
            if elements.count > ServiceValidator.maxClusters {
                typeErrorPaths.insert(fieldPath)
                truncated = true
                violations.append(
                    FieldViolation(fieldPath, .tooMany, "must have at most \(ServiceValidator.maxClusters) items, got \(elements.count)"))
                return []
            }
            for (index, element) in elements.enumerated() {
                if case .string(let text) = element {
                    result.append(text)
                } else {
                    typeError("\(fieldPath)[\(index)]", expected: "a string", got: element)
                }
            }
            return result
        case let other?:
            typeError(fieldPath, expected: "an array of strings", got: other)
            return []
        }
    }

    /// The objects of a top-level array field, with their index in it (their path is
    /// `key[index]`, built only if something is reported); at most `limit` of them are read
    /// (more is reported once, before anything is decoded, so an oversized list costs no more
    /// than a valid one).
    func objects(_ object: JSONObject, _ key: String, limit: Int) -> [(object: JSONObject, index: Int)] {
        switch object[key] {
        case nil, .null?: return []
        case .array(let elements)?:
            var result: [(object: JSONObject, index: Int)] = []
            result.reserveCapacity(min(elements.count, limit))
            if elements.count > limit {
                violations.append(FieldViolation(key, .tooMany, "must have at most \(limit) items, got \(elements.count)"))
                truncated = true
            }
            for (index, element) in elements.prefix(limit).enumerated() {
                if case .object(let item) = element {
                    result.append((item, index))
                } else {
                    typeError("\(key)[\(index)]", expected: "an object", got: element)
                }
            }
            return result
        case let other?:
            typeError(key, expected: "an array", got: other)
            return []
        }
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ object: JSONObject, _ key: String, path: String, default value: E) -> E
    where E.RawValue == String {
        guard let text = string(object, key, path: path) else { return value }
        if let parsed = E(rawValue: text) { return parsed }
        let supported = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        typeErrorPaths.insert(join(path, key))
        violations.append(FieldViolation(join(path, key), .notSupported, "unsupported value \"\(text)\": supported values: \(supported)"))
        return value
    }

    static let serviceFields: Set<String> = Set([
        "namespace", "name", "description", "labels", "annotations", "type", "externalName", "ports", "addresses",
        "endpointsMode", "clusters", "healthCheck", "uid", "revision", "createdAt", "updatedAt", "warnings",
        "dnsRefreshSeconds", "dnsGraceSeconds", "status",
    ]).union(specFieldNames)
    static let specFieldNames = ServiceSpecFields.fieldNames

    static let portFields: Set<String> = ["name", "protocol", "port", "targetPort", "appProtocol", "nodePort"]

    func service(_ object: JSONObject) -> ServiceInput {
        checkKnown(object, path: "", known: Reader.serviceFields)
        let namespace = string(object, "namespace", path: "") ?? ExternalService.defaultNamespace
        let name = string(object, "name", path: "") ?? ""
        if object["name"] == nil || object["name"] == .null {
            typeErrorPaths.insert("name")
            violations.append(FieldViolation("name", .required, "is required"))
        }
        var service = ExternalService(
            namespace: namespace,
            name: name,
            description: string(object, "description", path: ""),
            labels: stringMap(object, "labels", path: ""),
            annotations: stringMap(object, "annotations", path: ""),
            type: enumeration(object, "type", path: "", default: ServiceType.clusterIP),
            externalName: string(object, "externalName", path: ""),
            ports: objects(object, "ports", limit: ServiceValidator.maxPorts).map { port($0.object, path: "ports[\($0.index)]") },
            addresses: EndpointAddressList(
                objects(object, "addresses", limit: ServiceValidator.maxAddresses).map {
                    address($0.object, path: "addresses[\($0.index)]")
                }),
            endpointsMode: enumeration(object, "endpointsMode", path: "", default: EndpointsMode.both),
            clusters: stringList(object, "clusters", path: ""),
            healthCheck: healthCheck(object, "healthCheck"))
        service.spec = specFields(object)
        service.dnsRefreshSeconds = integer(object["dnsRefreshSeconds"], path: "dnsRefreshSeconds")
        service.dnsGraceSeconds = integer(object["dnsGraceSeconds"], path: "dnsGraceSeconds")
        _ = string(object, "createdAt", path: "")
        _ = string(object, "updatedAt", path: "")
        var input = ServiceInput(
            service: service, uid: string(object, "uid", path: ""), revision: integer(object["revision"], path: "revision"))
        input.clustersGiven = object["clusters"] != nil && object["clusters"] != .null
        return input
    }

    static let healthCheckFields: Set<String> = [
        "type", "port", "path", "host", "expectedStatuses", "tlsSkipVerify", "intervalSeconds", "timeoutSeconds",
        "healthyThreshold", "unhealthyThreshold", "startUnhealthy", "failOpen",
    ]

    /// Liveness (issue 13): `healthCheck`, with its defaults.
    func healthCheck(_ parent: JSONObject, _ key: String) -> HealthCheck? {
        let path = key
        switch parent[key] {
        case nil, .null?: return nil
        case .object(let object)?:
            checkKnown(object, path: path, known: Reader.healthCheckFields)
            if object["type"] == nil || object["type"] == .null {
                typeErrorPaths.insert(join(path, "type"))
                violations.append(FieldViolation(join(path, "type"), .required, "is required (supported values: \"tcp\", \"http\", \"https\")"))
            }
            var port: HealthCheck.Port?
            switch object["port"] {
            case nil, .null?: port = nil
            case .string(let name)?: port = .name(name)
            case .number?:
                if let number = integer(object["port"], path: join(path, "port")) { port = .number(number) }
            case let other?: typeError(join(path, "port"), expected: "an integer or a port name", got: other)
            }
            var statuses: [ClosedRange<Int>]?
            let statusesPath = join(path, "expectedStatuses")
            switch object["expectedStatuses"] {
            case nil, .null?: statuses = nil
            case .array(let elements)?:
                var ranges: [ClosedRange<Int>] = []
                for (index, element) in elements.enumerated() {
                    let elementPath = "\(statusesPath)[\(index)]"
                    switch element {
                    case .string(let text):
                        if let range = HealthCheck.statusRange(text) {
                            ranges.append(range)
                        } else {
                            typeErrorPaths.insert(elementPath)
                            violations.append(
                                FieldViolation(elementPath, .invalid, "\"\(text)\": must be a status code or a range \"low-high\" (e.g. \"200-399\")")
                            )
                        }
                    case .number:
                        if let code = integer(element, path: elementPath) { ranges.append(code...code) }
                    default: typeError(elementPath, expected: "a status code or a range \"low-high\"", got: element)
                    }
                }
                if ranges.count < elements.count { typeErrorPaths.insert(statusesPath) }
                statuses = ranges
            case let other?: typeError(statusesPath, expected: "an array", got: other)
            }
            func int(_ name: String, _ value: Int) -> Int { integer(object[name], path: join(path, name)) ?? value }
            return HealthCheck(
                type: enumeration(object, "type", path: path, default: HealthCheck.Kind.tcp),
                port: port,
                path: string(object, "path", path: path),
                host: string(object, "host", path: path),
                expectedStatuses: statuses,
                tlsSkipVerify: bool(object, "tlsSkipVerify", path: path) ?? false,
                intervalSeconds: int("intervalSeconds", HealthCheck.defaultIntervalSeconds),
                timeoutSeconds: int("timeoutSeconds", HealthCheck.defaultTimeoutSeconds),
                healthyThreshold: int("healthyThreshold", HealthCheck.defaultHealthyThreshold),
                unhealthyThreshold: int("unhealthyThreshold", HealthCheck.defaultUnhealthyThreshold),
                startUnhealthy: bool(object, "startUnhealthy", path: path) ?? false,
                failOpen: bool(object, "failOpen", path: path) ?? true)
        case let other?:
            typeError(path, expected: "an object", got: other)
            return nil
        }
    }

    func port(_ object: JSONObject, path: String) -> ServicePort {
        checkKnown(object, path: path, known: Reader.portFields)
        let number = integer(object["port"], path: join(path, "port"))
        if number == nil && !typeErrorPaths.contains(join(path, "port")) {
            typeErrorPaths.insert(join(path, "port"))
            violations.append(FieldViolation(join(path, "port"), .required, "is required"))
        }
        let name = string(object, "name", path: path)
        return ServicePort(
            name: name?.isEmpty == true ? nil : name,
            protocol: enumeration(object, "protocol", path: path, default: PortProtocol.tcp),
            port: number ?? 0,
            targetPort: integer(object["targetPort"], path: join(path, "targetPort")),
            appProtocol: string(object, "appProtocol", path: path),
            nodePort: integer(object["nodePort"], path: join(path, "nodePort")))
    }

    func optionalEnumeration<E: RawRepresentable & CaseIterable>(_ object: JSONObject, _ key: String, path: String) -> E?
    where E.RawValue == String {
        guard let text = string(object, key, path: path) else { return nil }
        if let parsed = E(rawValue: text) { return parsed }
        let supported = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        typeErrorPaths.insert(join(path, key))
        violations.append(FieldViolation(join(path, key), .notSupported, "unsupported value \"\(text)\": supported values: \(supported)"))
        return nil
    }

    func specFields(_ object: JSONObject) -> ServiceSpecFields {
        var fields = ServiceSpecFields()
        fields.ipFamilyPolicy = optionalEnumeration(object, "ipFamilyPolicy", path: "")
        switch object["ipFamilies"] {
        case nil, .null?: break
        case .array(let items)?:
            for (index, item) in items.enumerated() {
                let path = "ipFamilies[\(index)]"
                guard case .string(let text) = item else {
                    typeError(path, expected: "a string", got: item)
                    continue
                }
                if let family = IPAddress.Family(rawValue: text) {
                    fields.ipFamilies.append(family)
                } else {
                    typeErrorPaths.insert(path)
                    violations.append(FieldViolation(path, .notSupported, "unsupported value \"\(text)\": supported values: \"IPv4\", \"IPv6\""))
                }
            }
        case let other?: typeError("ipFamilies", expected: "an array of strings", got: other)
        }
        fields.sessionAffinity = enumeration(object, "sessionAffinity", path: "", default: SessionAffinity.none)
        fields.sessionAffinityTimeoutSeconds = integer(object["sessionAffinityTimeoutSeconds"], path: "sessionAffinityTimeoutSeconds")
        fields.publishNotReadyAddresses = bool(object, "publishNotReadyAddresses", path: "") ?? false
        fields.internalTrafficPolicy = optionalEnumeration(object, "internalTrafficPolicy", path: "")
        fields.trafficDistribution = optionalEnumeration(object, "trafficDistribution", path: "")
        fields.externalTrafficPolicy = optionalEnumeration(object, "externalTrafficPolicy", path: "")
        fields.loadBalancerClass = string(object, "loadBalancerClass", path: "")
        fields.loadBalancerSourceRanges = stringList(object, "loadBalancerSourceRanges", path: "")
        fields.allocateLoadBalancerNodePorts = bool(object, "allocateLoadBalancerNodePorts", path: "")
        return fields
    }

    /// `path` is built only when there is something to report (this runs per address).
    func address(_ object: JSONObject, path: @autoclosure () -> String) -> EndpointAddress {
        for member in object where !Reader.isAddressField(member.key) {
            violations.append(FieldViolation(join(path(), member.key), .unknownField, "unknown field \"\(member.key)\""))
        }
        let rawIP = string(object, "ip", path: path())
        let host = string(object, "host", path: path())
        if rawIP == nil && host == nil && !typeErrorPaths.contains(join(path(), "ip")) && !typeErrorPaths.contains(join(path(), "host")) {
            typeErrorPaths.insert(join(path(), "ip"))
            violations.append(FieldViolation(join(path(), "ip"), .required, "is required (or \"host\", a DNS name the registry resolves)"))
        }
        if rawIP != nil && host != nil {
            typeErrorPaths.insert(join(path(), "host"))
            violations.append(FieldViolation(join(path(), "host"), .forbidden, "may not be combined with \"ip\": give exactly one of them"))
        }
        var ports: [String: Int]? = nil
        switch object["ports"] {
        case nil, .null?: break
        case .object(let map)?:
            var result: [String: Int] = [:]
            for member in map {
                if let value = integer(member.value, path: "\(join(path(), "ports")).\(member.key)") { result[member.key] = value }
            }
            ports = result
        case let other?: typeError(join(path(), "ports"), expected: "an object mapping port names to port numbers", got: other)
        }
        return EndpointAddress(
            ip: rawIP ?? "",
            port: integer(object["port"], path: join(path(), "port")),
            ports: ports,
            hostname: string(object, "hostname", path: path()),
            zone: string(object, "zone", path: path()),
            ready: bool(object, "ready", path: path()) ?? true,
            servedPorts: object["servedPorts"] == nil || object["servedPorts"] == .null ? nil : stringList(object, "servedPorts", path: path()),
            host: rawIP == nil ? host : nil)
    }

    /// The members an address may have, matched without hashing (this runs for every member of
    /// every address). `resolution` and `health` are read-only views that `GET` adds (issue 13);
    /// sent back, they are ignored.
    static func isAddressField(_ key: String) -> Bool {
        switch key {
        case "ip", "port", "ready", "host", "ports", "hostname", "zone", "servedPorts", "resolution", "health": true
        default: false
        }
    }
}

extension ServiceDecoder {
    /// Reads back a document written by `ServiceEncoder`, without re-validating it (rules may
    /// have tightened since it was stored; stored data must stay readable).
    public static func storedRecord(_ json: JSONValue) -> ServiceRecord? {
        guard case .object(let object) = json else { return nil }
        var input = Reader().service(object)
        // Defaults written out by the encoder are stored as absent (see `normalizeSpecFields`).
        input.service.normalizeSpecFields()
        input.service.normalizeDNSFields()
        guard case .string(let uid)? = object["uid"], let revision = object["revision"]?.intValue,
            case .string(let createdAt)? = object["createdAt"], case .string(let updatedAt)? = object["updatedAt"]
        else { return nil }
        return ServiceRecord(service: input.service, uid: uid, revision: revision, createdAt: createdAt, updatedAt: updatedAt)
    }
}
