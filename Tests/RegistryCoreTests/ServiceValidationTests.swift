import Testing

@testable import RegistryCore

/// Decodes `json` and returns the violated field paths (empty when valid).
private func violations(_ json: String) throws -> [String] {
    switch ServiceDecoder.decode(try JSONParser.parse(Array(json.utf8))) {
    case .success: return []
    case .failure(let failure): return failure.violations.map(\.field)
    }
}

@Suite struct ServiceValidationTests {
    @Test func appliesDefaults() throws {
        let input = try ServiceDecoder.decode(
            JSONParser.parse(Array(#"{"name":"etcd","ports":[{"port":2379}],"addresses":[{"ip":"10.20.30.40"}]}"#.utf8))
        ).get()
        #expect(input.service.namespace == "default")
        #expect(input.service.type == .clusterIP)
        #expect(input.service.ports == [ServicePort(name: nil, protocol: .tcp, port: 2379, targetPort: 2379)])
        #expect(input.service.addresses == [EndpointAddress(ip: "10.20.30.40", ready: true)])
    }

    @Test func storesCanonicalIPs() throws {
        let input = try ServiceDecoder.decode(
            JSONParser.parse(Array(#"{"name":"a","type":"Headless","addresses":[{"ip":"2001:DB8:0:0::0001"}]}"#.utf8))
        ).get()
        #expect(input.service.addresses[0].ip == "2001:db8::1")
    }

    /// The seed's 6 hosts x ports 8080/8081 behind one port 80 is expressible exactly.
    @Test func acceptsTheSameIPWithDifferentBackendPorts() throws {
        var addresses: [String] = []
        for host in 50...55 {
            for port in [8080, 8081] { addresses.append(#"{"ip":"192.168.7.\#(host)","port":\#(port)}"#) }
        }
        let json =
            #"{"name":"ocs-external-rgw-lb","ports":[{"protocol":"TCP","port":80,"targetPort":80}],"addresses":[\#(addresses.joined(separator: ","))]}"#
        #expect(try violations(json) == [])
    }

    @Test(arguments: [
        // identity
        (#"{"ports":[{"port":80}]}"#, ["name"]),
        (#"{"name":"Web","ports":[{"port":80}]}"#, ["name"]),
        (#"{"name":"1web","ports":[{"port":80}]}"#, ["name"]),
        (#"{"name":"web","namespace":"Prod","ports":[{"port":80}]}"#, ["namespace"]),
        (#"{"name":"web","namespace":"","ports":[{"port":80}]}"#, ["namespace"]),
        (#"{"name":5,"ports":[{"port":80}]}"#, ["name"]),
        (#"{"name":"web","ports":[{"port":80}],"extra":1}"#, ["extra"]),
        // labels and annotations
        (#"{"name":"web","ports":[{"port":80}],"labels":{"a/b/c":"x","ok":"a/b"}}"#, ["labels[a/b/c]", "labels[ok]"]),
        (#"{"name":"web","ports":[{"port":80}],"labels":{"ok":1}}"#, ["labels[ok]"]),
        (#"{"name":"web","ports":[{"port":80}],"annotations":{"Example.COM/Key":"anything / goes"}}"#, []),
        (#"{"name":"web","ports":[{"port":80}],"annotations":{"bad key":"x"}}"#, ["annotations[bad key]"]),
        // type and externalName
        (#"{"name":"web","type":"Nodeport","ports":[{"port":80}]}"#, ["type"]),
        (#"{"name":"web","type":"ExternalName"}"#, ["externalName"]),
        (#"{"name":"web","type":"ExternalName","externalName":"rtfm.co.ua."}"#, []),
        (#"{"name":"web","type":"ExternalName","externalName":"10.0.0.1"}"#, ["externalName"]),
        (#"{"name":"web","type":"ExternalName","externalName":"Bad_Host"}"#, ["externalName"]),
        (#"{"name":"web","externalName":"a.b","ports":[{"port":80}]}"#, ["externalName"]),
        (#"{"name":"web","type":"ExternalName","externalName":"a.b","addresses":[{"ip":"10.0.0.1"}]}"#, ["addresses"]),
        // ports
        (#"{"name":"web"}"#, ["ports"]),
        (#"{"name":"web","type":"Headless"}"#, []),
        (#"{"name":"web","ports":[{"port":0}]}"#, ["ports[0].port"]),
        (#"{"name":"web","ports":[{"port":65536}]}"#, ["ports[0].port"]),
        (#"{"name":"web","ports":[{"port":"80"}]}"#, ["ports[0].port"]),
        (#"{"name":"web","ports":[{"port":80.5}]}"#, ["ports[0].port"]),
        (#"{"name":"web","ports":[{}]}"#, ["ports[0].port"]),
        (#"{"name":"web","ports":[{"port":80,"targetPort":70000}]}"#, ["ports[0].targetPort"]),
        (#"{"name":"web","ports":[{"port":80,"protocol":"HTTP"}]}"#, ["ports[0].protocol"]),
        (#"{"name":"web","ports":[{"port":80},{"port":81}]}"#, ["ports[0].name", "ports[1].name"]),
        (#"{"name":"web","ports":[{"name":"a","port":80},{"name":"a","port":81}]}"#, ["ports[1].name"]),
        (#"{"name":"web","ports":[{"name":"a","port":80},{"name":"b","port":80}]}"#, ["ports[1].port"]),
        (#"{"name":"web","ports":[{"name":"a","port":53},{"name":"b","port":53,"protocol":"UDP"}]}"#, []),
        (#"{"name":"web","ports":[{"name":"Web_1","port":80}]}"#, ["ports[0].name"]),
        (#"{"name":"web","ports":[{"port":80,"appProtocol":"kubernetes.io/h2c"}]}"#, []),
        (#"{"name":"web","ports":[{"port":80,"appProtocol":"not valid"}]}"#, ["ports[0].appProtocol"]),
        (#"{"name":"web","ports":[{"port":80,"extra":true}]}"#, ["ports[0].extra"]),
        // addresses
        (#"{"name":"web","ports":[{"port":80}],"addresses":[{}]}"#, ["addresses[0].ip"]),
        (#"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"300.1.1.1"}]}"#, ["addresses[0].ip"]),
        (
            #"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"127.0.0.1"},{"ip":"::1"},{"ip":"169.254.0.1"},{"ip":"0.0.0.0"}]}"#,
            ["addresses[0].ip", "addresses[1].ip", "addresses[2].ip", "addresses[3].ip"]
        ),
        (#"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"},{"ip":"10.0.0.1"}]}"#, ["addresses[1]"]),
        (#"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"},{"ip":"10.0.0.1","port":80}]}"#, ["addresses[1]"]),
        (#"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1","port":8080},{"ip":"10.0.0.1","port":8081}]}"#, []),
        (
            #"{"name":"web","ports":[{"name":"a","port":80},{"name":"b","port":81}],"addresses":[{"ip":"10.0.0.1","port":8080}]}"#,
            ["addresses[0].port"]
        ),
        (
            #"{"name":"web","ports":[{"name":"a","port":80},{"name":"b","port":81}],"addresses":[{"ip":"10.0.0.1","ports":{"a":8080,"c":1}}]}"#,
            ["addresses[0].ports.c"]
        ),
        (#"{"name":"web","ports":[{"name":"a","port":80}],"addresses":[{"ip":"10.0.0.1","ports":{"a":0}}]}"#, ["addresses[0].ports.a"]),
        (
            #"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1","hostname":"Host_1","zone":"a/b"}]}"#,
            ["addresses[0].hostname", "addresses[0].zone"]
        ),
        (#"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1","ready":"yes"}]}"#, ["addresses[0].ready"]),
        (#"{"name":"web","ports":[{"port":80}],"addresses":"10.0.0.1"}"#, ["addresses"]),
        (#"{"name":"web","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1","port":8080,"ports":{}}]}"#, ["addresses[0].port"]),
    ])
    func reportsEveryViolationWithItsPath(json: String, expected: [String]) throws {
        #expect(try violations(json) == expected)
    }

    @Test func reportsAllViolationsAtOnce() throws {
        let fields = try violations(#"{"name":"Bad","namespace":"Bad","ports":[{"port":0},{"port":1}],"addresses":[{"ip":"x"}],"zz":1}"#)
        #expect(Set(fields) == ["zz", "name", "namespace", "ports[0].port", "ports[0].name", "ports[1].name", "addresses[0].ip"])
    }

    @Test func limitsAnnotationSize() throws {
        let big = String(repeating: "x", count: 262_144)
        #expect(try violations(#"{"name":"web","ports":[{"port":80}],"annotations":{"a":"\#(big)"}}"#) == ["annotations"])
    }

    /// The bound holds for the rendered Service, whose annotations include the description's
    /// (`endpoint-registry/description`, 29 bytes of key): the reviewer's 262,133 + 4,096 was
    /// accepted and rendered 266,259 bytes the API server refuses.
    @Test func annotationSizeCountsTheDescriptionAnnotationTheRendererAdds() throws {
        func body(value: Int, description: Int?) -> String {
            let text = description.map { #","description":"\#(String(repeating: "d", count: $0))""# } ?? ""
            return #"{"name":"a1","ports":[{"port":80}],"annotations":{"a":"\#(String(repeating: "x", count: value))"}\#(text)}"#
        }
        let key = ManifestRenderer.descriptionAnnotation.utf8.count
        #expect(key == 29)
        let refused = ServiceDecoder.decode(try JSONParser.parse(Array(body(value: 262_133, description: 4096).utf8)))
        guard case .failure(let failure) = refused else {
            Issue.record("accepted annotations the API server refuses")
            return
        }
        #expect(failure.violations.map(\.field) == ["annotations"])
        #expect(failure.violations.first?.message.contains("got 266259") == true, "\(failure.violations)")
        #expect(failure.violations.first?.message.contains("endpoint-registry/description") == true)
        // Exactly at the bound (1 + value + 29 + 4096 = 262,144): accepted, and the rendering holds that many bytes.
        let fits = try decoded(body(value: 262_144 - 1 - key - 4096, description: 4096))
        let rendered = try #require(objects(ManifestRenderer.render(fits), kind: "Service").first)
        let annotations = LiveObject.annotations(.object(rendered))
        #expect(annotations.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count } == 262_144)
        #expect(try violations(body(value: 262_144 - key - 4096, description: 4096)) == ["annotations"])
        // Without a description nothing is added.
        #expect(try violations(body(value: 262_143, description: nil)) == [])
    }

    /// ValidateService trims one trailing dot, then requires a DNS-1123 subdomain; the
    /// registry's rule that an IP is no externalName applies to that trimmed name.
    @Test(arguments: [
        ("1.2.3.4.", ["externalName"]), ("1.2.3.4", ["externalName"]), ("01.2.3.4.", ["externalName"]), ("2001:db8::1.", ["externalName"]),
        (".", ["externalName"]), ("..", ["externalName"]), ("db.example.com..", ["externalName"]), ("db.example.com.", []),
        ("db.example.com", []), ("1.2.3.4.example.com.", []),
        (
            "\(String(repeating: "a", count: 63)).\(String(repeating: "b", count: 63)).\(String(repeating: "c", count: 63)).\(String(repeating: "d", count: 61)).",
            []
        ),
        (
            "\(String(repeating: "a", count: 63)).\(String(repeating: "b", count: 63)).\(String(repeating: "c", count: 63)).\(String(repeating: "d", count: 62)).",
            ["externalName"]
        ),
    ])
    func externalNameIsCheckedAfterItsTrailingDot(name: String, fields: [String]) throws {
        #expect(try violations(#"{"name":"web","type":"ExternalName","externalName":"\#(name)"}"#) == fields, "\(name)")
    }

    @Test func anIPAsExternalNameIsRefusedWithOrWithoutTheDot() throws {
        for name in ["1.2.3.4", "1.2.3.4."] {
            guard
                case .failure(let failure) = ServiceDecoder.decode(
                    try JSONParser.parse(Array(#"{"name":"web","type":"ExternalName","externalName":"\#(name)"}"#.utf8)))
            else {
                Issue.record("\(name) accepted")
                continue
            }
            #expect(failure.violations.first?.message.contains("not an IP address") == true, "\(failure.violations)")
        }
        guard
            case .failure(let empty) = ServiceDecoder.decode(
                try JSONParser.parse(Array(#"{"name":"web","type":"ExternalName","externalName":"."}"#.utf8)))
        else {
            Issue.record("\".\" accepted")
            return
        }
        #expect(empty.violations.map(\.kind) == [.required])
    }

    @Test func encoderOutputDecodesToTheSameService() throws {
        let json =
            #"{"name":"db","namespace":"data","description":"managed","labels":{"b":"2","a":"1"},"annotations":{"x/y":"z"},"type":"Headless","ports":[{"name":"pg","port":5432,"appProtocol":"postgresql"},{"name":"metrics","port":9187,"targetPort":9000}],"addresses":[{"ip":"fd00::5","ports":{"pg":6432},"hostname":"db-0","zone":"eu-1a","ready":false}]}"#
        let service = try ServiceDecoder.decode(JSONParser.parse(Array(json.utf8))).get().service
        let record = ServiceRecord(service: service, uid: "u", revision: 3, createdAt: "t0", updatedAt: "t1")
        let encoded = ServiceEncoder.bytes(record)
        #expect(ServiceDecoder.storedRecord(try JSONParser.parse(encoded)) == record)
        #expect(try ServiceDecoder.decode(JSONParser.parse(encoded)).get().service == service)
        #expect(String(decoding: encoded, as: UTF8.self).contains(#""labels":{"a":"1","b":"2"}"#))
    }

    @Test func backendPortsFollowOverrides() {
        let single = [ServicePort(port: 80)]
        #expect(EndpointAddress(ip: "10.0.0.1", port: 8080).backendPorts(for: single) == [8080])
        #expect(EndpointAddress(ip: "10.0.0.1").backendPorts(for: single) == [80])
        let multi = [ServicePort(name: "a", port: 80, targetPort: 8000), ServicePort(name: "b", port: 81)]
        #expect(EndpointAddress(ip: "10.0.0.1", ports: ["b": 9000]).backendPorts(for: multi) == [8000, 9000])
    }
}
