import Testing

@testable import RegistryCore

/// A type change drops what only the old type used, when the update left it as it was (the API
/// server's `dropTypeDependentFields`), and nothing else.
@Suite struct TypeDependentFieldsTests {
    /// The stored document of `json` (a valid service), as `ServiceEncoder` serves it.
    private func stored(_ json: String) throws -> JSONObject {
        guard case .success(let input) = ServiceDecoder.decode(try JSONParser.parse(Array(json.utf8))) else {
            Issue.record("invalid: \(json)")
            return JSONObject()
        }
        let record = ServiceRecord(service: input.service, uid: "u", revision: 1, createdAt: "t", updatedAt: "t")
        guard case .object(let object) = ServiceEncoder.json(record) else { return JSONObject() }
        return object
    }

    /// `current` with the members of `patch` set (nil removes), as a merge patch would.
    private func changed(_ current: JSONObject, _ patch: [(String, JSONValue?)]) -> JSONObject {
        var object = current
        for (key, value) in patch { object[key] = value }
        return object
    }

    private func violations(_ object: JSONObject) -> [String] {
        switch ServiceDecoder.decode(.object(object)) {
        case .success: return []
        case .failure(let failure): return failure.violations.map(\.field)
        }
    }

    @Test func clusterIPToExternalNameDropsTheDefaultedTrafficPolicy() throws {
        let current = try stored(#"{"namespace":"a","name":"b","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"}]}"#)
        #expect(current["internalTrafficPolicy"] == .string("Cluster"))
        let asked = changed(current, [("type", .string("ExternalName")), ("externalName", .string("db.example.com")), ("addresses", nil)])
        #expect(violations(asked) == ["internalTrafficPolicy"], "without the drop the API server's own default is refused")
        let result = TypeDependentFields.dropped(from: asked, current: current)
        #expect(result["internalTrafficPolicy"] == nil)
        #expect(violations(result).isEmpty)
        // A value the client changes while changing the type is its own: still refused.
        let explicit = changed(asked, [("internalTrafficPolicy", .string("Local"))])
        #expect(TypeDependentFields.dropped(from: explicit, current: current)["internalTrafficPolicy"] == .string("Local"))
    }

    @Test func loadBalancerToClusterIPDropsWhatOnlyLoadBalancersAndNodePortsUse() throws {
        let current = try stored(
            #"{"namespace":"a","name":"b","type":"LoadBalancer","loadBalancerClass":"example.com/lb","ports":[{"name":"http","port":80,"nodePort":30080},{"name":"b","port":81}],"addresses":[{"ip":"192.0.2.1","ports":{"http":8080,"b":8081}}]}"#
        )
        #expect(current["allocateLoadBalancerNodePorts"] == .bool(true) && current["externalTrafficPolicy"] == .string("Cluster"))
        let asked = changed(current, [("type", .string("ClusterIP"))])
        let result = TypeDependentFields.dropped(from: asked, current: current)
        for key in ["allocateLoadBalancerNodePorts", "externalTrafficPolicy", "loadBalancerClass"] { #expect(result[key] == nil, "\(key)") }
        guard case .array(let ports)? = result["ports"], case .object(let first)? = ports.first else {
            Issue.record("no ports")
            return
        }
        #expect(first["nodePort"] == nil)
        #expect(result["internalTrafficPolicy"] == .string("Cluster"), "ClusterIP uses it: kept")
        #expect(violations(result).isEmpty)
        // A node port the client changes in the same request is its own.
        guard case .array(var askedPorts)? = asked["ports"], case .object(var port)? = askedPorts.first else { return }
        port["nodePort"] = .number("30081")
        askedPorts[0] = .object(port)
        let moved = TypeDependentFields.dropped(from: changed(asked, [("ports", .array(askedPorts))]), current: current)
        #expect(moved["ports"] == .array(askedPorts))
    }

    @Test func theSameTypeOrAnUnknownOneChangesNothing() throws {
        let current = try stored(#"{"namespace":"a","name":"b","type":"NodePort","ports":[{"port":80}]}"#)
        let same = changed(current, [("description", .string("x"))])
        #expect(TypeDependentFields.dropped(from: same, current: current) == same)
        let unknown = changed(current, [("type", .string("Nope"))])
        #expect(TypeDependentFields.dropped(from: unknown, current: current) == unknown)
        // No `type` in a PUT body: ClusterIP, which has no external traffic policy.
        let implicit = changed(current, [("type", nil)])
        #expect(TypeDependentFields.dropped(from: implicit, current: current)["externalTrafficPolicy"] == nil)
    }
}
