import Testing

@testable import RegistryCore

/// A small deterministic generator (SplitMix64), so that property runs are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random valid registration: any type, 0–3 ports, 0–150 addresses of both families, with
/// overrides, hostnames, zones, drained addresses, labels and annotations.
func randomService(_ random: inout SeededGenerator, index: Int) -> ExternalService {
    let type = [ServiceType.clusterIP, .clusterIP, .headless, .externalName].randomElement(using: &random)!
    var service = ExternalService(namespace: "ns\(index % 3)", name: "svc-\(index)", type: type)
    if Bool.random(using: &random) { service.description = "service #\(index): \"quoted\" and 'single'" }
    service.labels = ["team": ["a", "true", "0123", ""].randomElement(using: &random)!]
    if Bool.random(using: &random) { service.annotations = ["example.com/note": "line one\nline two", "n": "8080"] }
    let portCount = type == .clusterIP ? Int.random(in: 1...3, using: &random) : Int.random(in: 0...3, using: &random)
    let protocols: [PortProtocol] = [.tcp, .udp, .sctp]
    service.ports = (0..<portCount).map { number in
        ServicePort(
            name: portCount > 1 || Bool.random(using: &random) ? "p\(number)" : nil, protocol: protocols.randomElement(using: &random)!,
            port: 80 + number, targetPort: Bool.random(using: &random) ? nil : 8000 + number,
            appProtocol: Bool.random(using: &random) ? "kubernetes.io/h2c" : nil)
    }
    if type == .externalName {
        service.externalName = "db\(index).example.com"
        return service
    }
    service.endpointsMode = EndpointsMode.allCases.randomElement(using: &random)!
    let count = [0, 1, 3, 12, 150].randomElement(using: &random)!
    for number in 0..<count {
        let ip = Bool.random(using: &random) ? "10.\(index % 200).\(number / 200).\(number % 200 + 1)" : "fd00::\(index):\(number + 1)"
        var address = EndpointAddress(ip: ip, ready: Int.random(in: 0..<5, using: &random) != 0)
        if service.ports.count == 1, Bool.random(using: &random) { address.port = 9000 + Int.random(in: 0..<3, using: &random) }
        if service.ports.count > 1, Bool.random(using: &random), let name = service.ports[0].name { address.ports = [name: 7000] }
        if Bool.random(using: &random) { address.hostname = "host-\(number)" }
        if service.endpointsMode != .endpoints, Bool.random(using: &random) { address.zone = "zone-\(number % 3)" }
        service.addresses.append(address)
    }
    return service
}

@Suite struct ImportTests {
    @Test func importingARenderingGivesBackTheSameRegistration() throws {
        var random = SeededGenerator(state: 20261128)
        for index in 0..<150 {
            var service = randomService(&random, index: index)
            #expect(ServiceValidator.validate(service) == [], "generated service \(index) is invalid")
            service.normalize()
            for format in ManifestFormat.allCases {
                let bytes = format.serialize(ManifestRenderer.render(service).objects)
                let documents = try ManifestDocuments.parseYAML(String(decoding: bytes, as: UTF8.self))
                let plan = try ManifestImporter.plan(ManifestDocuments.objects(documents)).get()
                #expect(plan.refused.isEmpty)
                #expect(plan.services == [service], "service \(index) (\(format))")
            }
        }
    }

    private func plan(_ yaml: String) throws -> Result<ImportPlan, ValidationFailure> {
        ManifestImporter.plan(ManifestDocuments.objects(try ManifestDocuments.parseYAML(yaml)), defaultNamespace: "team")
    }

    @Test func refusesObjectsThatAreNotExternalWithReasons() throws {
        let refusals = try plan(
            """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: cfg}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: kubernetes, namespace: default}
            spec: {type: ClusterIP, ports: [{name: https, port: 443, targetPort: 6443}]}
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: orphan}
            subsets: []
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: unlabelled}
            addressType: IPv4
            endpoints: []
            """
        ).get()
        #expect(refusals.services.isEmpty)
        #expect(refusals.refused.map(\.path) == ["documents[0]", "documents[1]", "documents[2]", "documents[3]"])
        #expect(refusals.refused.allSatisfy { !$0.reason.isEmpty })
    }

    @Test func usesTheDefaultNamespaceAndFlattensLists() throws {
        let json =
            #"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}},{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"a"},"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}]}"#
        let result = try plan(json).get()
        #expect(result.services.map(\.namespace) == ["team"])
        #expect(result.services.first?.addresses.map(\.ip) == ["10.0.0.1"])
    }

    @Test(arguments: [
        // (An Endpoints port no Service port has and a named targetPort are valid in Kubernetes:
        // warnings, see ImportShapeTests.validButUselessIsAWarning.)
        // Invalid IP in Endpoints.
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: a}\nsubsets: [{addresses: [{ip: 127.0.0.1}], ports: [{port: 80}]}]",
            "documents[1].subsets[0].addresses[0].ip"
        ),
        // Not an object.
        ("- just\n- a list", "documents[0]"),
        // No name.
        ("apiVersion: v1\nkind: Service\nmetadata: {}\nspec: {}", "documents[0].metadata.name"),
    ])
    func failsTheWholeImportNamingDocumentAndField(yaml: String, field: String) throws {
        let defaulted = yaml.replacingOccurrences(of: "(Service default/a)", with: "(Service team/a)")
        switch try plan(defaulted) {
        case .success: Issue.record("import should fail")
        case .failure(let failure):
            let expected = field.replacingOccurrences(of: "default/a", with: "team/a")
            #expect(failure.violations.map(\.field).contains(expected), "\(failure.violations)")
        }
    }

    @Test func rejectsBrokenYAML() {
        #expect {
            _ = try ManifestDocuments.parseYAML("a: 'unterminated\nb: [1\n")
        } throws: { error in
            guard case .syntax(let syntax)? = error as? ManifestDocuments.ReadError else { return false }
            return syntax.line == 3 && syntax.column == 1
        }
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        components(separatedBy: target).joined(separator: replacement)
    }

    private func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

@Suite struct HostileYAMLTests {
    /// A syntax error is reported in one line with its position, quoting none of the input (Yams'
    /// own text quotes the line, and for duplicate keys the whole document).
    @Test(arguments: [
        ("name: a\nsecret: s3cr3t-value\nname: b\n", "line 1, column 1: duplicate key \"name\" in a mapping"),
        ("{\"name\": \"a\", \"secret\": \"s3cr3t-value\", \"name\": \"b\"}", "line 1, column 2: duplicate key \"name\" in a mapping"),
        ("secret: s3cr3t-value\n  bad: indent\n", "line 2, column 6: mapping values are not allowed in this context"),
        ("secret: 's3cr3t-value\n", "line 2, column 1: found unexpected end of stream (while scanning a quoted scalar at line 1, column 9)"),
    ])
    func syntaxErrorsAreOneLineAndQuoteNoInput(_ yaml: String, _ message: String) {
        #expect {
            _ = try ManifestDocuments.parseYAML(yaml)
        } throws: { error in
            guard case .syntax(let syntax)? = error as? ManifestDocuments.ReadError else { return false }
            let violations = (error as? ManifestDocuments.ReadError)?.violations ?? []
            return violations.map(\.field) == [""] && violations.map(\.message) == ["not valid YAML: " + message]
                && message.hasPrefix("line \(syntax.line ?? 0), column \(syntax.column ?? 0): ")
        }
    }

    /// Every syntax error names its place: a reader error (a control character) its line and
    /// column, computed from the byte offset libyaml gives; bytes that are not UTF-8 the first
    /// such byte; a repeated key that is not a scalar and libyaml's nesting bound in words of
    /// their own (not Yams' "<uncovertable>" or libyaml's C API).
    @Test func everySyntaxErrorNamesItsPlace() throws {
        func syntax(_ body: () throws(ManifestDocuments.ReadError) -> [JSONValue]) -> YAMLSyntaxError? {
            do {
                _ = try body()
                return nil
            } catch {
                guard case .syntax(let syntax) = error else { return nil }
                return syntax
            }
        }
        let control = syntax { () throws(ManifestDocuments.ReadError) in try ManifestDocuments.parseYAML("a: 1\nb: é\u{1}\n") }
        #expect(control?.line == 2 && control?.column == 5)
        #expect(control?.description == "line 2, column 5: control characters are not allowed")
        let crOnly = syntax { () throws(ManifestDocuments.ReadError) in try ManifestDocuments.parseYAML("a: 1\rb: \u{2}") }
        #expect(crOnly?.line == 2 && crOnly?.column == 4)
        let notUTF8 = syntax { () throws(ManifestDocuments.ReadError) in
            try ManifestDocuments.parseYAML(bytes: Array("a: 1\r\nb: ñ".utf8) + [0xC3, 0x28])
        }
        #expect(notUTF8?.line == 2 && notUTF8?.column == 5 && notUTF8?.description == "line 2, column 5: not UTF-8 (byte 11)")
        let scalarKeys = syntax { () throws(ManifestDocuments.ReadError) in try ManifestDocuments.parseYAML("? [a]\n: 1\n? [a]\n: 2\n") }
        #expect(scalarKeys.map { $0.description.contains("(a key that is not a scalar)") && !$0.description.contains("uncovertable") } == true)
        let deep = syntax { () throws(ManifestDocuments.ReadError) in
            try ManifestDocuments.parseYAML(String(repeating: "[", count: 2_000))
        }
        #expect(deep.map { $0.description.contains("nested more than 1000 collections deep") && !$0.description.contains("yaml_set") } == true)
        #expect(deep?.line != nil && deep?.column != nil)
    }

    /// A byte order mark that starts the stream is not content (YAML 1.2 §5.2).
    @Test func aByteOrderMarkIsIgnored() throws {
        let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
        #expect(try ManifestDocuments.parseYAML("\u{FEFF}" + yaml) == ManifestDocuments.parseYAML(yaml))
        #expect(try ManifestDocuments.parseYAML(bytes: [0xEF, 0xBB, 0xBF] + Array(("---\n" + yaml).utf8)) == ManifestDocuments.parseYAML(yaml))
    }

    @Test func boundsAliasExpansion() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            yaml += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        #expect {
            _ = try ManifestDocuments.parseYAML(yaml)
        } throws: { error in
            guard case .invalid(let failure)? = error as? ManifestDocuments.ReadError else { return false }
            return failure.violations.first?.kind == .tooMany
        }
    }
}
