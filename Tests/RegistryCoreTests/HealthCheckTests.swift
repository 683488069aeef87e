import Testing

@testable import RegistryCore

private func decode(_ json: String) throws -> Result<ServiceInput, ValidationFailure> {
    ServiceDecoder.decode(try JSONParser.parse(Array(json.utf8)))
}

private func fields(_ json: String) throws -> [String] {
    switch try decode(json) {
    case .success: return []
    case .failure(let failure): return failure.violations.map(\.field)
    }
}

@Suite struct HealthCheckTests {
    @Test func appliesDefaultsAndRoundTrips() throws {
        let input = try decode(
            #"{"name":"rgw","ports":[{"port":80,"targetPort":8080}],"addresses":[{"ip":"192.0.2.10"}],"healthCheck":{"type":"http"}}"#
        ).get()
        let check = try #require(input.service.healthCheck)
        #expect(check.type == .http)
        #expect(check.path == "/")
        #expect(check.expectedStatuses == [200...399])
        #expect(check.intervalSeconds == 10 && check.timeoutSeconds == 2)
        #expect(check.healthyThreshold == 2 && check.unhealthyThreshold == 3)
        #expect(!check.startUnhealthy && check.failOpen && !check.tlsSkipVerify)
        #expect(check.probePort(for: input.service.addresses[0], servicePorts: input.service.ports) == 8080)
        let record = ServiceRecord(service: input.service, uid: "u", revision: 1, createdAt: "t", updatedAt: "t")
        let again = try decode(String(decoding: ServiceEncoder.bytes(record), as: UTF8.self)).get()
        #expect(again.service == input.service)
    }

    @Test func namedPortAndStatusList() throws {
        let json =
            #"{"name":"db","ports":[{"name":"sql","port":5432},{"name":"admin","port":8008}],"addresses":[{"ip":"192.0.2.1","ports":{"admin":9000}}],"healthCheck":{"type":"https","port":"admin","expectedStatuses":[200,"300-302"],"tlsSkipVerify":true}}"#
        let service = try decode(json).get().service
        let check = try #require(service.healthCheck)
        #expect(check.port == .name("admin"))
        #expect(check.probePort(for: service.addresses[0], servicePorts: service.ports) == 9000)
        #expect(check.accepts(status: 301) && check.accepts(status: 200) && !check.accepts(status: 204))
    }

    @Test func reportsEveryViolationAtOnce() throws {
        let json =
            #"{"name":"a","ports":[{"port":80}],"healthCheck":{"type":"tcp","port":70000,"path":"/x","tlsSkipVerify":true,"intervalSeconds":5,"timeoutSeconds":5,"healthyThreshold":0,"unhealthyThreshold":11,"bogus":1}}"#
        let found = Set(try fields(json))
        #expect(
            found == [
                "healthCheck.port", "healthCheck.path", "healthCheck.tlsSkipVerify", "healthCheck.timeoutSeconds",
                "healthCheck.healthyThreshold", "healthCheck.unhealthyThreshold", "healthCheck.bogus",
            ])
    }

    @Test(arguments: [
        (#"{"type":"gopher"}"#, "healthCheck.type"),
        (#"{}"#, "healthCheck.type"),
        (#"{"type":"http","path":"health"}"#, "healthCheck.path"),
        (#"{"type":"http","path":"/a b"}"#, "healthCheck.path"),
        (#"{"type":"http","host":"Not_A_Host"}"#, "healthCheck.host"),
        (#"{"type":"http","expectedStatuses":["399-200"]}"#, "healthCheck.expectedStatuses[0]"),
        (#"{"type":"http","expectedStatuses":[700]}"#, "healthCheck.expectedStatuses[0]"),
        (#"{"type":"http","expectedStatuses":[]}"#, "healthCheck.expectedStatuses"),
        (#"{"type":"tcp","port":"nope"}"#, "healthCheck.port"),
        (#"{"type":"tcp","port":true}"#, "healthCheck.port"),
        (#"{"type":"tcp","intervalSeconds":0}"#, "healthCheck.intervalSeconds"),
        (#"{"type":"tcp","timeoutSeconds":"2"}"#, "healthCheck.timeoutSeconds"),
        (#""tcp""#, "healthCheck"),
        (#"{"type":"tcp","intervalSeconds":99999999999999999999}"#, "healthCheck.intervalSeconds"),
        (#"{"type":"tcp","timeoutSeconds":1.5}"#, "healthCheck.timeoutSeconds"),
        (#"{"type":"tcp","timeoutSeconds":9223372036854775807}"#, "healthCheck.timeoutSeconds"),
        (#"{"type":"tcp","healthyThreshold":-9223372036854775808}"#, "healthCheck.healthyThreshold"),
        (#"{"type":"tcp","port":"web"}"#, "healthCheck.port"),
        (
            #"{"type":"http","expectedStatuses":["# + Array(repeating: "200", count: 101).joined(separator: ",") + "]}",
            "healthCheck.expectedStatuses"
        ),
    ])
    func rejects(check: String, field: String) throws {
        #expect(try fields(#"{"name":"a","ports":[{"port":80}],"healthCheck":\#(check)}"#) == [field])
    }

    @Test func needsATCPPort() throws {
        #expect(try fields(#"{"name":"a","ports":[{"port":53,"protocol":"UDP"}],"healthCheck":{"type":"tcp"}}"#) == ["healthCheck.port"])
        #expect(try fields(#"{"name":"a","ports":[{"port":53,"protocol":"UDP"}],"healthCheck":{"type":"tcp","port":53}}"#) == [])
        #expect(
            try fields(#"{"name":"a","type":"ExternalName","externalName":"db.example.org","healthCheck":{"type":"tcp","port":5432}}"#) == [
                "healthCheck"
            ])
    }
}
