import RegistryCore
import Testing

@testable import RegistryAPI

/// The minimal answer of the address routes, written straight into bytes, is byte for byte
/// what the same members give as a `JSONValue` tree (the address as the encoder reads it back),
/// whatever the address and the warnings hold.
@Suite struct AddressAnswerTests {
    @Test func bytesAreThoseOfTheJSONTree() {
        var service = ExternalService(namespace: "stor\"age", name: "rgw", ports: [ServicePort(name: "s3", port: 80)], addresses: [])
        service.labels = ["app": "ceph"]
        let record = ServiceRecord(
            service: service, uid: "5f0c2a4e-8b1d-4c3a-9e7f-0a1b2c3d4e5f", revision: 1234, createdAt: "2026-12-02T10:00:00Z",
            updatedAt: "2026-12-02T18:00:00.123Z")
        let addresses = [
            EndpointAddress(ip: "192.168.7.51", port: 8080),
            EndpointAddress(ip: "2001:db8::7", ports: ["s3": 7480], hostname: "rgw-1", zone: "zone-a", ready: false, servedPorts: ["s3"]),
            EndpointAddress(host: "rgw.example.internal", port: 443, zone: "z\u{1}"),
        ]
        let warningSets = [[], ["one"], ["a \"quoted\" \\ warning\n", "Größe – 日本"]]
        for address in addresses {
            for warnings in warningSets {
                for change in [ServiceHandlers.AddressChange.added(address), .removed(address)] {
                    var members: [(key: String, value: JSONValue)] = [
                        ("namespace", .string(record.service.namespace)), ("name", .string(record.service.name)), ("uid", .string(record.uid)),
                        ("revision", .number(String(record.revision))), ("updatedAt", .string(record.updatedAt)),
                    ]
                    switch change {
                    case .added(let added): members.append(("added", ServiceEncoder.json(added)))
                    case .removed(let removed): members.append(("removed", ServiceEncoder.json(removed)))
                    }
                    if !warnings.isEmpty { members.append(("warnings", .array(warnings.map(JSONValue.string)))) }
                    let tree = JSONWriter.bytes(.object(JSONObject(members)))
                    let direct = ServiceHandlers.minimalAddressAnswer(record, address: change, warnings: warnings)
                    #expect(direct == tree, "\(String(decoding: direct, as: UTF8.self))")
                }
            }
        }
    }
}
