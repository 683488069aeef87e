/// The rules an external service must satisfy: the API server's rules for the objects it will
/// become (kubernetes/kubernetes `pkg/apis/core/validation` `ValidateService` and
/// `ValidateEndpoints`, `pkg/apis/discovery/validation` for EndpointSlices), plus the registry's
/// own consistency rules.
public enum ServiceValidator {
    /// Most ports: an EndpointSlice holds at most 100 (`maxPorts` in Kubernetes'
    /// `pkg/apis/discovery/validation`), so a service with more could not be rendered.
    public static let maxPorts = 100
    /// Most addresses of one service, by decoding and by the address routes alike. The largest
    /// real selectorless services we know of have a few thousand backends; a service that grows
    /// one address at a time past 10,000 stays registrable (100,000 render to 1,000
    /// EndpointSlices; a body of that many plain IPs is ~3.5 MB, near the 4 MiB default body
    /// limit). Checked before the addresses are decoded, so a larger list costs nothing.
    public static let maxAddresses = 100_000
    /// Most labels, and most annotations, of one service (Kubernetes sets no count, only the
    /// 256 KiB total for annotations; real objects carry a few dozen at most).
    public static let maxLabels = 100
    public static let maxDescriptionBytes = 4096
    /// Most clusters one service may be bound to.
    public static let maxClusters = 64

    /// Problems with a cluster name: kubeconfig context names are free text, so the rule is
    /// only 1–253 printable ASCII characters without spaces (what `GET /v1/clusters` can list
    /// and a URL path segment can carry).
    public static func clusterNameProblems(_ name: String) -> [String] {
        if name.isEmpty { return ["must not be empty"] }
        if name.utf8.count > 253 { return ["\"\(name.prefix(40))…\": must be no more than 253 characters"] }
        if !name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) { return ["\"\(name)\": must be printable ASCII without spaces"] }
        return []
    }
    public static let maxAnnotationBytes = 256 * 1024

    /// Labels the renderer sets itself, or that would hide the objects from kube-proxy.
    public static let reservedLabels: [String: String] = [
        "app.kubernetes.io/managed-by": "marks the objects this registry owns",
        "kubernetes.io/service-name": "links EndpointSlices to their Service",
        "endpointslice.kubernetes.io/managed-by": "names the EndpointSlices' manager",
        "endpointslice.kubernetes.io/skip-mirror": "controls the mirroring controller",
        "service.kubernetes.io/headless": "set for Headless services; on others it hides them from kube-proxy",
        "service.kubernetes.io/service-proxy-name": "hides the service from kube-proxy",
    ]

    /// Why a Service of this namespace and name may not be registered (or imported), or nil:
    /// `default/kubernetes` is the cluster's own API server Service, whose Endpoints and
    /// EndpointSlices the API server maintains itself (kubernetes pkg/controlplane
    /// `reconcilers`); registered and pushed with `adopt`, the registry would take it over.
    public static func reservedServiceReason(namespace: String, name: String) -> String? {
        guard namespace == "default" && name == "kubernetes" else { return nil }
        return "default/kubernetes is the cluster's own API server Service, maintained by the API server itself"
    }

    /// Every violation in `service`. Paths in `skipping` already have a (type) error reported.
    public static func validate(_ service: ExternalService, skippingTypeErrorsAt skipping: Set<String> = []) -> [FieldViolation] {
        var violations: [FieldViolation] = []
        func add(_ field: String, _ kind: FieldViolation.Kind, _ messages: [String]) {
            violations += messages.map { FieldViolation(field, kind, $0) }
        }
        if !skipping.contains("namespace") {
            add("namespace", .invalid, KubernetesNames.dns1123Label(service.namespace).map { "\"\(service.namespace)\": \($0)" })
        }
        if !skipping.contains("name") {
            add("name", .invalid, KubernetesNames.dns1035Label(service.name).map { "\"\(service.name)\": \($0)" })
        }
        if !skipping.contains("name") && !skipping.contains("namespace"),
            let reason = reservedServiceReason(namespace: service.namespace, name: service.name)
        {
            add("name", .forbidden, [reason])
        }
        if let description = service.description, description.utf8.count > maxDescriptionBytes {
            add("description", .tooLong, ["must be no more than \(maxDescriptionBytes) bytes"])
        }
        for key in service.labels.keys.sorted() {
            if let reason = reservedLabels[key] {
                add("labels[\(key)]", .forbidden, ["is set by the registry (\(reason)) and may not be given"])
            }
            add("labels[\(key)]", .invalid, KubernetesNames.qualifiedName(key).map { "key \"\(key)\": \($0)" })
            add("labels[\(key)]", .invalid, KubernetesNames.labelValue(service.labels[key]!).map { "value \"\(service.labels[key]!)\": \($0)" })
        }
        var seenClusters = Set<String>()
        for (index, cluster) in service.clusters.enumerated() where !skipping.contains("clusters[\(index)]") {
            add("clusters[\(index)]", .invalid, clusterNameProblems(cluster))
            if !seenClusters.insert(cluster).inserted { add("clusters[\(index)]", .duplicate, ["\"\(cluster)\" is named twice"]) }
        }
        if service.clusters.count > maxClusters { add("clusters", .tooMany, ["may name at most \(maxClusters) clusters"]) }
        var annotationBytes = 0
        for key in service.annotations.keys.sorted() {
            if key == ManifestRenderer.descriptionAnnotation {
                add("annotations[\(key)]", .forbidden, ["is set by the registry from \"description\"; set that field instead"])
            }
            add("annotations[\(key)]", .invalid, KubernetesNames.qualifiedName(key.lowercased()).map { "key \"\(key)\": \($0)" })
            annotationBytes += key.utf8.count + service.annotations[key]!.utf8.count
        }
        // The Service the renderer makes carries these and the description's annotation: the
        // API server's bound (apimachinery pkg/api/validation/objectmeta.go
        // `ValidateAnnotationsSize`, `TotalAnnotationSizeLimitB`) is on that sum. The Endpoints
        // and EndpointSlices get no annotations; the labels the renderer adds are fixed values
        // and the service name (a DNS-1035 label of at most 63 characters, so a valid label value).
        let added = renderedAnnotationBytes(service) - annotationBytes
        if annotationBytes + added > maxAnnotationBytes {
            let description =
                added > 0
                ? " with the annotation \(ManifestRenderer.descriptionAnnotation) the registry adds from \"description\" (\(added) bytes)" : ""
            add(
                "annotations", .tooLong,
                [
                    "may not be more than \(maxAnnotationBytes) bytes in total (keys and values) on the rendered Service, got \(annotationBytes + added)"
                        + description
                ])
        }
        violations += validateExternalName(service)
        violations += validatePorts(service, skipping: skipping)
        violations += validateAddresses(service, skipping: skipping)
        violations += validateSpecFields(service, skipping: skipping)
        violations += validateHealthCheck(service, skipping: skipping)
        violations += validateDNSSettings(service, skipping: skipping)
        return violations
    }

    /// Bytes of the annotations of the rendered Service, as the API server counts them (key and
    /// value lengths in bytes): the user's plus `ManifestRenderer.descriptionAnnotation` when
    /// there is a description.
    public static func renderedAnnotationBytes(_ service: ExternalService) -> Int {
        var total = 0
        for (key, value) in service.annotations where key != ManifestRenderer.descriptionAnnotation {
            total += key.utf8.count + value.utf8.count
        }
        if let description = service.description {
            total += ManifestRenderer.descriptionAnnotation.utf8.count + description.utf8.count
        }
        return total
    }

    private static func validateExternalName(_ service: ExternalService) -> [FieldViolation] {
        guard service.type == .externalName else {
            if service.externalName != nil {
                return [FieldViolation("externalName", .forbidden, "may only be set when type is \"ExternalName\"")]
            }
            return []
        }
        // ValidateService (kubernetes pkg/apis/core/validation): one trailing dot (a fully
        // qualified name) is trimmed, then the name is required and must be a DNS-1123 subdomain.
        // The registry's own rule on top, on the same trimmed name: not an IP address (DNS
        // answers with a CNAME to it, which resolves to nothing), "1.2.3.4." no more than "1.2.3.4".
        let name = service.externalName.map { $0.hasSuffix(".") ? String($0.dropLast()) : $0 } ?? ""
        guard let externalName = service.externalName, !name.isEmpty else {
            return [FieldViolation("externalName", .required, "is required when type is \"ExternalName\"")]
        }
        if Self.isIPAddressLiteral(name) {
            return [
                FieldViolation(
                    "externalName", .invalid,
                    "\"\(externalName)\": must be a DNS name, not an IP address; register the IP as an address of a ClusterIP or Headless service instead"
                )
            ]
        }
        return KubernetesNames.dns1123Subdomain(name).map { FieldViolation("externalName", .invalid, "\"\(externalName)\": \($0)") }
    }

    /// Whether `text` is an IP address literal: one that parses, or an IPv4 address written with
    /// leading zeros (which the parser refuses as ambiguous, but which is no DNS name either).
    static func isIPAddressLiteral(_ text: String) -> Bool {
        do {
            _ = try IPAddress(parsing: text)
            return true
        } catch {
            return error == .leadingZeros
        }
    }

    private static func validatePorts(_ service: ExternalService, skipping: Set<String>) -> [FieldViolation] {
        var violations: [FieldViolation] = []
        let ports = service.ports
        // ValidateService: ports are required unless headless or ExternalName.
        if ports.isEmpty && service.type.hasClusterIP {
            violations.append(FieldViolation("ports", .required, "at least one port is required for type \"\(service.type.rawValue)\""))
        }
        if ports.count > maxPorts {
            violations.append(FieldViolation("ports", .tooMany, "must have at most \(maxPorts) ports, got \(ports.count)"))
        }
        var names: [String: Int] = [:]
        var numbers: [String: Int] = [:]
        for (index, port) in ports.enumerated() {
            let path = "ports[\(index)]"
            if let name = port.name {
                violations += KubernetesNames.dns1123Label(name).map { FieldViolation("\(path).name", .invalid, "\"\(name)\": \($0)") }
                if let first = names[name] {
                    violations.append(FieldViolation("\(path).name", .duplicate, "\"\(name)\" is already the name of ports[\(first)]"))
                } else {
                    names[name] = index
                }
            } else if ports.count > 1 {
                violations.append(FieldViolation("\(path).name", .required, "is required when the service has more than one port"))
            }
            if !skipping.contains("\(path).port") {
                if !(1...65535).contains(port.port) {
                    violations.append(FieldViolation("\(path).port", .invalid, "\(port.port): must be between 1 and 65535, inclusive"))
                } else {
                    let key = "\(port.protocol.rawValue)/\(port.port)"
                    if let first = numbers[key] {
                        violations.append(
                            FieldViolation("\(path).port", .duplicate, "\(port.port)/\(port.protocol.rawValue) is already used by ports[\(first)]"))
                    } else {
                        numbers[key] = index
                    }
                }
            }
            if !skipping.contains("\(path).targetPort"), port.targetPort != port.port,
                !(1...65535).contains(port.targetPort)
            {
                violations.append(FieldViolation("\(path).targetPort", .invalid, "\(port.targetPort): must be between 1 and 65535, inclusive"))
            }
            if let appProtocol = port.appProtocol {
                violations += KubernetesNames.qualifiedName(appProtocol).map {
                    FieldViolation("\(path).appProtocol", .invalid, "\"\(appProtocol)\": \($0)")
                }
            }
        }
        return violations
    }

    private static func validateAddresses(_ service: ExternalService, skipping: Set<String>) -> [FieldViolation] {
        if service.type == .externalName && !service.addresses.isEmpty {
            return [FieldViolation("addresses", .forbidden, "must be empty when type is \"ExternalName\" (DNS answers with a CNAME)")]
        }
        var violations: [FieldViolation] = []
        // IPs in increasing order (of IP, then backend ports), as most lists come and as
        // `normalize()` stores them, cannot repeat an IP with the same backend ports: then no
        // table of the addresses seen is needed.
        let addresses = service.addresses
        let increasing =
            addresses.indices.allSatisfy {
                guard addresses[$0].host == nil, case .success = addresses[$0].parsedIP else { return false }
                return true
            }
            && addresses.indices.dropFirst().allSatisfy { ExternalService.precedes(addresses[$0 - 1], addresses[$0], ports: service.ports) }
        var seen: [AddressKey: Int] = [:]
        if !increasing { seen.reserveCapacity(addresses.count) }
        for index in service.addresses.indices {
            let problems = validateAddress(service.addresses[index], path: "addresses[\(index)]", in: service, skipping: skipping)
            guard problems.isEmpty else {
                violations += problems
                continue
            }
            if increasing { continue }
            let address = service.addresses[index]
            // An address whose IP (or host) is missing or of the wrong type has that reported
            // already (`skipping`); it is no duplicate of another such one.
            if address.ip.isEmpty && address.host == nil { continue }
            let key = AddressKey(address, ports: address.backendPorts(for: service.ports))
            if let first = seen[key] {
                violations.append(
                    FieldViolation(
                        "addresses[\(index)]", .duplicate,
                        "\(address.host ?? address.ip) with the same backend ports is already addresses[\(first)]"))
            } else {
                seen[key] = index
            }
        }
        return violations
    }

    /// The violations `validate(_:)` reports for `service` with `address` appended (at index
    /// `service.addresses.count`), when `service` itself has none (as every stored service):
    /// only the new address's own problems and the one rule between addresses, the same IP (or
    /// host) with the same backend ports twice. The other rules read nothing the new address
    /// changes. O(n) string comparisons at most, none of the other addresses validated again.
    public static func validateAdding(_ address: EndpointAddress, to service: ExternalService) -> [FieldViolation] {
        if service.type == .externalName {
            return [FieldViolation("addresses", .forbidden, "must be empty when type is \"ExternalName\" (DNS answers with a CNAME)")]
        }
        // The bound a whole service is decoded with (`maxAddresses`), for the service it would make.
        if service.addresses.count >= maxAddresses {
            return [FieldViolation("addresses", .tooMany, "must have at most \(maxAddresses) items, got \(service.addresses.count + 1)")]
        }
        let path = "addresses[\(service.addresses.count)]"
        let problems = validateAddress(address, path: path, in: service)
        guard problems.isEmpty else { return problems }
        // `AddressKey`'s identity: the host when there is one, else the IP; only the addresses
        // of the same target can share it (found by binary search in the stored order).
        var ports: [Int?]?
        for index in service.sameTargetIndices(as: address)
        where service.addresses[index].host == address.host && (address.host != nil || service.addresses[index].ip == address.ip) {
            let backend = ports ?? address.backendPorts(for: service.ports)
            ports = backend
            if service.addresses[index].backendPorts(for: service.ports) == backend {
                return [FieldViolation(path, .duplicate, "\(address.host ?? address.ip) with the same backend ports is already addresses[\(index)]")]
            }
        }
        return []
    }

    /// Issue 13: the `host` of an address: a DNS-1123 subdomain (apimachinery
    /// `pkg/util/validation` `IsDNS1123Subdomain`: lowercase RFC 1123 labels joined by dots, at
    /// most 253 characters), and not an IP address (which belongs in `ip`).
    public static func validateHost(_ host: String, path: String) -> [FieldViolation] {
        if (try? IPAddress(parsing: host)) != nil {
            return [FieldViolation(path, .invalid, "\"\(host)\": is an IP address; give it as \"ip\"")]
        }
        return KubernetesNames.dns1123Subdomain(host).map { FieldViolation(path, .invalid, "\"\(host)\": \($0)") }
    }

    /// Issue 13: `dnsRefreshSeconds` and `dnsGraceSeconds` within their bounds.
    static func validateDNSSettings(_ service: ExternalService, skipping: Set<String>) -> [FieldViolation] {
        var violations: [FieldViolation] = []
        for (name, value, range) in [
            ("dnsRefreshSeconds", service.dnsRefreshSeconds, DNSSettings.refreshSecondsRange),
            ("dnsGraceSeconds", service.dnsGraceSeconds, DNSSettings.graceSecondsRange),
        ] {
            guard let value, !skipping.contains(name), !range.contains(value) else { continue }
            violations.append(FieldViolation(name, .invalid, "\(value): must be between \(range.lowerBound) and \(range.upperBound), inclusive"))
        }
        return violations
    }

    /// The identity of an address: the same IP may appear again only with other backend ports.
    /// Equal when the texts `host:<host>` (with a host) or `<ip>` and the backend ports are; an
    /// IP that parses is hashed as its value, without reading the text (equal texts parse alike).
    struct AddressKey: Hashable {
        var text: String
        var ip: IPAddress?
        var ports: [Int?]

        init(_ address: EndpointAddress, ports: [Int?]) {
            if let host = address.host {
                (text, ip) = ("host:" + host, nil)
            } else {
                (text, ip) = (address.ip, try? address.parsedIP.get())
            }
            self.ports = ports
        }

        static func == (lhs: AddressKey, rhs: AddressKey) -> Bool { lhs.text == rhs.text && lhs.ports == rhs.ports }

        func hash(into hasher: inout Hasher) {
            if let ip { hasher.combine(ip) } else { hasher.combine(text) }
            hasher.combine(ports)
        }
    }

    /// Violations of one address within `service` (duplicates aside).
    public static func validateAddress(
        _ address: EndpointAddress, path: @autoclosure () -> String, in service: ExternalService, skipping: Set<String> = []
    )
        -> [FieldViolation]
    {
        // The path is built only for a violation (or a skipped field to look up).
        func field(_ name: String) -> String {
            let path = path()
            return path.isEmpty ? name : "\(path).\(name)"
        }
        var violations: [FieldViolation] = []
        if let host = address.host, address.ip.isEmpty {
            if !skipping.contains(field("host")) { violations += validateHost(host, path: field("host")) }
        } else if skipping.isEmpty || !skipping.contains(field("ip")) {
            switch address.parsedIP {
            case .success(let parsed):
                if let reason = parsed.specialUseReason {
                    violations.append(FieldViolation(field("ip"), .invalid, "\"\(address.ip)\": may not be a \(reason)"))
                }
            case .failure(let error):
                let detail =
                    switch error {
                    case .leadingZeros: "IPv4 octets may not have leading zeros (ambiguous: octal or decimal)"
                    case .ipv4Mapped: "IPv4-mapped IPv6 addresses are not allowed; use the plain IPv4 address"
                    case .zone: "zone identifiers (%…) are not allowed"
                    case .syntax: "must be a valid IPv4 or IPv6 address"
                    }
                violations.append(FieldViolation(field("ip"), .invalid, "\"\(address.ip)\": \(detail)"))
            }
        }
        if let port = address.port, skipping.isEmpty || !skipping.contains(field("port")) {
            if address.ports != nil {
                violations.append(FieldViolation(field("port"), .forbidden, "may not be combined with \"ports\""))
            } else if service.ports.count != 1 {
                violations.append(
                    FieldViolation(
                        field("port"), .forbidden,
                        "only for services with exactly one port (this one has \(service.ports.count)); use \"ports\" to map port names to backend ports"
                    ))
            } else if !(1...65535).contains(port) {
                violations.append(FieldViolation(field("port"), .invalid, "\(port): must be between 1 and 65535, inclusive"))
            }
        }
        if let ports = address.ports {
            let names = Set(service.ports.compactMap(\.name))
            for name in ports.keys.sorted() {
                let portPath = "\(field("ports")).\(name)"
                if !names.contains(name) {
                    let known = names.isEmpty ? "the service has no named ports" : "known: \(names.sorted().joined(separator: ", "))"
                    violations.append(FieldViolation(portPath, .invalid, "no service port is named \"\(name)\" (\(known))"))
                } else if !(1...65535).contains(ports[name]!) {
                    violations.append(FieldViolation(portPath, .invalid, "\(ports[name]!): must be between 1 and 65535, inclusive"))
                }
            }
        }
        violations += validateServedPorts(address, path: field("servedPorts"), in: service)
        if let hostname = address.hostname {
            violations += KubernetesNames.dns1123Label(hostname).map { FieldViolation(field("hostname"), .invalid, "\"\(hostname)\": \($0)") }
        }
        if let zone = address.zone {
            if zone.isEmpty {
                violations.append(FieldViolation(field("zone"), .invalid, "must not be empty when given"))
            } else {
                violations += KubernetesNames.labelValue(zone).map { FieldViolation(field("zone"), .invalid, "\"\(zone)\": \($0)") }
            }
        }
        return violations
    }
}
