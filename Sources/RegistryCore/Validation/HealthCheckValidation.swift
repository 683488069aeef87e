extension ServiceValidator {
    public static let healthCheckIntervalRange = 1...3600
    public static let healthCheckThresholdRange = 1...10
    public static let maxHealthCheckPathBytes = 1024
    /// Most entries of `expectedStatuses` (codes and ranges; 100–599 needs at most 500).
    public static let maxHealthCheckExpectedStatuses = 100

    /// Violations of `healthCheck` (issue 13), all at once: bounds, `timeoutSeconds` below
    /// `intervalSeconds`, HTTP-only fields on `tcp`, the port (a number 1–65535 or the name of a
    /// service port, which must be TCP), the request target (RFC 9110 origin-form, printable
    /// ASCII) and the `Host` (a DNS-1123 subdomain or an IP address, RFC 9110 §7.2).
    static func validateHealthCheck(_ service: ExternalService, skipping: Set<String>) -> [FieldViolation] {
        guard let check = service.healthCheck, !skipping.contains("healthCheck") else { return [] }
        var violations: [FieldViolation] = []
        func add(_ field: String, _ kind: FieldViolation.Kind, _ message: String) {
            violations.append(FieldViolation("healthCheck.\(field)", kind, message))
        }
        func skip(_ field: String) -> Bool { skipping.contains("healthCheck.\(field)") }
        if service.type == .externalName {
            violations.append(
                FieldViolation("healthCheck", .forbidden, "may not be set when type is \"ExternalName\" (there are no addresses to check)"))
        }
        let interval = check.intervalSeconds
        if !skip("intervalSeconds"), !healthCheckIntervalRange.contains(interval) {
            add(
                "intervalSeconds", .invalid,
                "\(interval): must be between \(healthCheckIntervalRange.lowerBound) and \(healthCheckIntervalRange.upperBound), inclusive")
        }
        if !skip("timeoutSeconds") {
            if check.timeoutSeconds < 1 {
                add("timeoutSeconds", .invalid, "\(check.timeoutSeconds): must be at least 1")
            } else if check.timeoutSeconds >= interval, !skip("intervalSeconds"), healthCheckIntervalRange.contains(interval) {
                add("timeoutSeconds", .invalid, "\(check.timeoutSeconds): must be less than intervalSeconds (\(interval))")
            }
        }
        for (name, value) in [("healthyThreshold", check.healthyThreshold), ("unhealthyThreshold", check.unhealthyThreshold)]
        where !skip(name) && !healthCheckThresholdRange.contains(value) {
            add(
                name, .invalid,
                "\(value): must be between \(healthCheckThresholdRange.lowerBound) and \(healthCheckThresholdRange.upperBound), inclusive")
        }
        if !skip("port") {
            switch check.port {
            case .number(let number)?:
                if !(1...65535).contains(number) { add("port", .invalid, "\(number): must be between 1 and 65535, inclusive") }
            case .name(let name)?:
                if let servicePort = service.ports.first(where: { $0.name == name }) {
                    if servicePort.protocol != .tcp {
                        add("port", .invalid, "\"\(name)\": is a \(servicePort.protocol.rawValue) port; health checks connect over TCP")
                    }
                } else {
                    let names = service.ports.compactMap(\.name)
                    add(
                        "port", .invalid,
                        "no service port is named \"\(name)\" (\(names.isEmpty ? "the service has no named ports" : "known: \(names.sorted().joined(separator: ", "))"))"
                    )
                }
            case nil:
                if service.ports.isEmpty, service.type != .externalName {
                    add("port", .required, "is required when the service has no ports")
                } else if let first = service.ports.first, first.protocol != .tcp {
                    add("port", .required, "is required: the first service port is \(first.protocol.rawValue) and health checks connect over TCP")
                }
            }
        }
        if check.type == .tcp {
            for (name, given) in [("path", check.path != nil), ("host", check.host != nil), ("expectedStatuses", check.expectedStatuses != nil)]
            where given {
                add(name, .forbidden, "only for type \"http\" or \"https\"")
            }
        }
        if check.type != .https, check.tlsSkipVerify {
            add("tlsSkipVerify", .forbidden, "only for type \"https\"")
        }
        if let path = check.path, !skip("path") {
            if !path.hasPrefix("/") {
                add("path", .invalid, "\"\(path)\": must start with \"/\"")
            } else if path.utf8.count > maxHealthCheckPathBytes {
                add("path", .tooLong, "must be no more than \(maxHealthCheckPathBytes) bytes")
            } else if !path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) || path.contains("#") {
                add("path", .invalid, "\"\(path)\": must be printable ASCII without spaces or a fragment (percent-encode other characters)")
            }
        }
        if let host = check.host, !skip("host") {
            if (try? IPAddress(parsing: host)) == nil {
                for problem in KubernetesNames.dns1123Subdomain(host) { add("host", .invalid, "\"\(host)\": \(problem)") }
            }
        }
        if let statuses = check.expectedStatuses {
            if statuses.isEmpty, !skip("expectedStatuses") { add("expectedStatuses", .required, "must name at least one status code when given") }
            if statuses.count > maxHealthCheckExpectedStatuses, !skip("expectedStatuses") {
                add(
                    "expectedStatuses", .tooMany,
                    "\(statuses.count): must have at most \(maxHealthCheckExpectedStatuses) entries (use ranges such as \"200-399\")")
            }
            for (index, range) in statuses.enumerated()
            where !skip("expectedStatuses[\(index)]") && (range.lowerBound < 100 || range.upperBound > 599) {
                add("expectedStatuses[\(index)]", .invalid, "\"\(HealthCheck.text(range))\": status codes are between 100 and 599 (RFC 9110 §15)")
            }
        }
        return violations
    }
}
