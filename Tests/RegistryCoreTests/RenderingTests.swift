import Foundation
import Testing

@testable import RegistryCore

/// Golden files live in `Golden/`; run with `UPDATE_GOLDEN=1` to rewrite them after a reviewed change.
enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "Golden")
    /// The seed manifests of `Tests/Fixtures/`.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: "Fixtures")

    static func check(_ name: String, _ rendering: Rendering) throws {
        let text = String(decoding: ManifestFormat.yaml.serialize(rendering.objects, warnings: rendering.warnings), as: UTF8.self)
        let file = directory.appending(path: "\(name).yaml")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        #expect(text == expected, "\(name).yaml differs from the rendering; rerun with UPDATE_GOLDEN=1 after review")
    }

    static func importFixture(_ name: String) throws -> ImportPlan {
        let text = try String(contentsOf: fixtures.appending(path: name), encoding: .utf8)
        return try ManifestImporter.plan(ManifestDocuments.objects(ManifestDocuments.parseYAML(text))).get()
    }
}

func decoded(_ json: String) throws -> ExternalService {
    try ServiceDecoder.decode(JSONParser.parse(Array(json.utf8))).get().service
}

/// Objects of a rendering by kind.
func objects(_ rendering: Rendering, kind: String) -> [JSONObject] {
    rendering.objects.compactMap { value in
        guard case .object(let object) = value, object["kind"] == .string(kind) else { return nil }
        return object
    }
}

@Suite struct SeedRenderingTests {
    @Test func cephGatewaysImportAsTwelveAddressesAndRenderAsTwoSubsets() throws {
        let plan = try Golden.importFixture("seed-001-ceph-rgw.yaml")
        #expect(plan.refused.isEmpty)
        let service = try #require(plan.services.first)
        #expect(service.name == "ocs-external-rgw-lb" && service.namespace == "default")
        #expect(service.ports == [ServicePort(protocol: .tcp, port: 80, targetPort: 80)])
        #expect(service.addresses.count == 12)
        #expect(Set(service.addresses.map { "\($0.ip):\($0.port ?? 0)" }).count == 12)
        // In endpoints mode the mirroring controller (Kubernetes >= 1.27) would merge the two
        // subsets into one with two unnamed ports and refuse the slice: the import chooses both.
        #expect(service.endpointsMode == .both)
        #expect(plan.warnings.count == 1)
        #expect(plan.warnings.first?.message.contains("RepackSubsets") == true)
        let rendering = ManifestRenderer.render(service, mode: .endpoints)
        #expect(rendering.warnings.contains { $0.contains("cannot be mirrored") && $0.contains("both") })
        let endpoints = try #require(objects(rendering, kind: "Endpoints").first)
        guard case .array(let subsets)? = endpoints["subsets"] else {
            Issue.record("no subsets")
            return
        }
        #expect(subsets.count == 2)
        for (subset, port) in zip(subsets, [8080, 8081]) {
            guard case .object(let object) = subset, case .array(let addresses)? = object["addresses"] else {
                Issue.record("subset for port \(port) has no addresses: \(subset)")
                continue
            }
            #expect(addresses.count == 6)
            #expect(object["ports"] == .array([.object(JSONObject([("port", .integer(port)), ("protocol", .string("TCP"))]))]))
        }
        try Golden.check("seed-001-ceph-rgw", rendering)
        try Golden.check("seed-001-ceph-rgw-both", ManifestRenderer.render(service, mode: .both))
    }

    @Test func externalEtcd() throws {
        let service = try #require(try Golden.importFixture("seed-004-external-etcd.yaml").services.first)
        #expect(service.addresses.map(\.ip) == ["10.20.30.40", "10.20.30.41", "10.20.30.42"])
        #expect(service.addresses.allSatisfy { $0.port == nil })
        try Golden.check("seed-004-external-etcd", ManifestRenderer.render(service))
    }

    @Test func externalWebSiteKeepsItsPortName() throws {
        let service = try #require(try Golden.importFixture("seed-003-external-svc.yaml").services.first)
        #expect(service.ports.first?.name == "web")
        let rendering = ManifestRenderer.render(service, mode: .both)
        let slices = objects(rendering, kind: "EndpointSlice")
        #expect(slices.count == 1)
        let endpoints = try #require(objects(rendering, kind: "Endpoints").first)
        // The port name of every EndpointSlice and Endpoints subset must be the Service's.
        var portNames: [JSONValue?] = []
        for slice in slices {
            guard case .array(let ports)? = slice["ports"] else { continue }
            for case .object(let port) in ports { portNames.append(port["name"]) }
        }
        if case .array(let subsets)? = endpoints["subsets"] {
            for case .object(let subset) in subsets {
                guard case .array(let ports)? = subset["ports"] else { continue }
                for case .object(let port) in ports { portNames.append(port["name"]) }
            }
        }
        #expect(portNames == [.string("web"), .string("web")])
        try Golden.check("seed-003-external-svc", rendering)
    }

    @Test func externalNameRendersNoEndpoints() throws {
        let service = try #require(try Golden.importFixture("seed-003-externalname.yaml").services.first)
        #expect(service.type == .externalName && service.externalName == "rtfm.co.ua")
        let rendering = ManifestRenderer.render(service)
        #expect(rendering.objects.count == 1)
        try Golden.check("seed-003-externalname", rendering)
    }

    @Test func selectorServiceIsRefusedWithAReason() throws {
        let plan = try Golden.importFixture("seed-003-selector-service.yaml")
        #expect(plan.services.isEmpty)
        #expect(plan.refused.count == 1)
        #expect(plan.refused.first?.reason.contains("selector") == true)
    }
}

@Suite struct RenderingRuleTests {
    @Test func multiPortNamedWithOverrides() throws {
        let service = try decoded(
            #"{"name":"pg","namespace":"data","ports":[{"name":"sql","port":5432,"appProtocol":"postgresql"},{"name":"metrics","port":9187}],"addresses":[{"ip":"10.0.0.2","ports":{"sql":6432}},{"ip":"10.0.0.1"},{"ip":"10.0.0.3","ports":{"metrics":9000}}]}"#
        )
        let rendering = ManifestRenderer.render(service)
        #expect(objects(rendering, kind: "EndpointSlice").count == 3)
        try Golden.check("multi-port-overrides", rendering)
    }

    @Test func ipv6AndDualStackGetOneSlicePerFamily() throws {
        let ipv6 = try decoded(
            #"{"name":"v6","type":"Headless","ports":[{"name":"dns","port":53,"protocol":"UDP"}],"addresses":[{"ip":"2001:db8::10","hostname":"ns1"},{"ip":"2001:DB8::9"}]}"#
        )
        try Golden.check("ipv6-headless", ManifestRenderer.render(ipv6))
        let dual = try decoded(
            #"{"name":"dual","ports":[{"port":443}],"addresses":[{"ip":"fd00::1"},{"ip":"192.0.2.10","zone":"eu-1a"},{"ip":"192.0.2.9"}]}"#)
        let rendering = ManifestRenderer.render(dual, mode: .endpointslices)
        let families = objects(rendering, kind: "EndpointSlice").map { $0["addressType"] }
        #expect(families == [.string("IPv4"), .string("IPv6")])
        try Golden.check("dual-stack", rendering)
    }

    @Test func drainedAddressesAreNotReady() throws {
        let service = try decoded(#"{"name":"drain","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2","ready":false}]}"#)
        let rendering = ManifestRenderer.render(service)
        let endpoints = try #require(objects(rendering, kind: "Endpoints").first)
        guard case .array(let subsets)? = endpoints["subsets"], case .object(let subset)? = subsets.first else {
            Issue.record("no subset")
            return
        }
        #expect(subset["notReadyAddresses"] == .array([.object(JSONObject([("ip", .string("10.0.0.2"))]))]))
        try Golden.check("drained", rendering)
    }

    private func many(_ count: Int, mode: String) throws -> ExternalService {
        let addresses = (0..<count).map { #"{"ip":"10.\#($0 / 62500).\#(($0 / 250) % 250).\#($0 % 250 + 1)"}"# }
        return try decoded(#"{"name":"big","endpointsMode":"\#(mode)","ports":[{"port":80}],"addresses":[\#(addresses.joined(separator: ","))]}"#)
    }

    @Test func slicesHoldAtMostOneHundredEndpoints() throws {
        let rendering = ManifestRenderer.render(try many(250, mode: "endpointslices"))
        let slices = objects(rendering, kind: "EndpointSlice")
        #expect(slices.count == 3)
        let counts = slices.map { slice -> Int in
            if case .array(let endpoints)? = slice["endpoints"] { return endpoints.count }
            return 0
        }
        #expect(counts == [100, 100, 50])
        let names = slices.compactMap { slice -> String? in
            guard case .object(let metadata)? = slice["metadata"], case .string(let name)? = metadata["name"] else { return nil }
            return name
        }
        #expect(Set(names).count == 3)
        try Golden.check("over-100-addresses", rendering)
    }

    @Test func moreThanOneThousandEndpointsAddressesAreFlagged() throws {
        let rendering = ManifestRenderer.render(try many(1001, mode: "both"))
        #expect(rendering.warnings.count == 1)
        #expect(rendering.warnings[0].contains("1001"))
        #expect(ManifestRenderer.render(try many(1000, mode: "both")).warnings.isEmpty)
        try Golden.check("over-1000-addresses", rendering)
    }

    @Test func labelsAndAnnotationsThatNeedQuotes() throws {
        let service = try decoded(
            #"{"name":"quoted","labels":{"enabled":"true","build":"0123","nothing":"null","port":"8080","empty":"","answer":"yes","date":"2026-01-02","ratio":"1.5"},"annotations":{"example.com/note":"multi\nline: text","example.com/octal":"0o17","example.com/dash":"- item"},"description":"desc: with colon","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"}]}"#
        )
        let rendering = ManifestRenderer.render(service)
        let text = String(decoding: ManifestFormat.yaml.serialize(rendering.objects), as: UTF8.self)
        for fragment in [
            #"enabled: "true""#, #"build: "0123""#, #"nothing: "null""#, #"port: "8080""#, #"empty: """#, #"answer: "yes""#, #"date: "2026-01-02""#,
            #"ratio: "1.5""#,
        ] {
            #expect(text.contains(fragment), "\(fragment)")
        }
        let reparsed = try ManifestDocuments.parseYAML(text)
        #expect(reparsed == rendering.objects)
        try Golden.check("labels-needing-quotes", rendering)
    }

    @Test func deterministicOutputAndStableSliceNames() throws {
        let first = try decoded(#"{"name":"s","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.2"},{"ip":"10.0.0.1"}]}"#)
        let reordered = try decoded(#"{"name":"s","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2"}]}"#)
        #expect(
            ManifestFormat.yaml.serialize(ManifestRenderer.render(first).objects)
                == ManifestFormat.yaml.serialize(ManifestRenderer.render(reordered).objects))
        let grown = try decoded(#"{"name":"s","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2"},{"ip":"10.0.0.3"}]}"#)
        func sliceNames(_ service: ExternalService) -> [JSONValue?] {
            objects(ManifestRenderer.render(service), kind: "EndpointSlice").map { slice in
                if case .object(let metadata)? = slice["metadata"] { return metadata["name"] }
                return nil
            }
        }
        #expect(sliceNames(first) == sliceNames(grown))
    }

    /// Backend ports 30687,16171 and 5814,57961 have the same FNV-1a-32 hash: the two port sets
    /// must still get two slices, with names distinct from each other and from the chunks of
    /// more than 100 endpoints, and every endpoint in exactly one slice.
    @Test func portSetsWhoseHashesCollideGetDistinctSliceNames() throws {
        #expect(
            ManifestRenderer.sliceBaseName(service: "c", family: .ipv4, backendPorts: [30687, 16171])
                == ManifestRenderer.sliceBaseName(service: "c", family: .ipv4, backendPorts: [5814, 57961]))
        func service(perGroup: Int) throws -> ExternalService {
            var addresses: [String] = []
            for index in 0..<perGroup {
                addresses.append(#"{"ip":"192.0.2.\#(index + 1)","ports":{"a":30687,"b":16171}}"#)
                addresses.append(#"{"ip":"198.51.100.\#(index + 1)","ports":{"a":5814,"b":57961}}"#)
                addresses.append(#"{"ip":"2001:db8::\#(String(index + 1, radix: 16))","ports":{"a":5814,"b":57961}}"#)
            }
            return try decoded(
                #"{"namespace":"col","name":"c","endpointsMode":"endpointslices","ports":[{"name":"a","port":80},{"name":"b","port":81}],"addresses":[\#(addresses.joined(separator: ","))]}"#
            )
        }
        func slices(_ service: ExternalService) -> [(name: String, ips: [String], ports: [Int])] {
            objects(ManifestRenderer.render(service), kind: "EndpointSlice").map { slice in
                let name = LiveObject.name(.object(slice))
                var ips: [String] = []
                if case .array(let endpoints)? = slice["endpoints"] {
                    for case .object(let endpoint) in endpoints {
                        if case .array(let addresses)? = endpoint["addresses"] { ips += addresses.compactMap(\.stringValue) }
                    }
                }
                var ports: [Int] = []
                if case .array(let items)? = slice["ports"] { ports = items.compactMap { $0["port"]?.intValue } }
                return (name, ips, ports)
            }
        }
        let small = slices(try service(perGroup: 1))
        #expect(small.map(\.name) == ["c-ipv4-2e0e0067", "c-ipv4-2e0e0067-c1", "c-ipv6-2e0e0067"])
        #expect(small.map(\.ports) == [[5814, 57961], [30687, 16171], [5814, 57961]])
        #expect(small.map(\.ips) == [["198.51.100.1"], ["192.0.2.1"], ["2001:db8::1"]])
        // Chunked: 150 endpoints per port set and family.
        let large = slices(try service(perGroup: 150))
        #expect(
            large.map(\.name) == [
                "c-ipv4-2e0e0067", "c-ipv4-2e0e0067-1", "c-ipv4-2e0e0067-c1", "c-ipv4-2e0e0067-c1-1", "c-ipv6-2e0e0067", "c-ipv6-2e0e0067-1",
            ])
        #expect(large.map(\.ips.count) == [100, 50, 100, 50, 100, 50])
        let all = large.flatMap(\.ips)
        #expect(all.count == 450 && Set(all).count == 450)
        for slice in large { #expect(KubernetesNames.dns1123Subdomain(slice.name).isEmpty, "\(slice.name)") }
        // The same service renders the same bytes.
        #expect(
            ManifestFormat.yaml.serialize(ManifestRenderer.render(try service(perGroup: 150)).objects)
                == ManifestFormat.yaml.serialize(ManifestRenderer.render(try service(perGroup: 150)).objects))
    }

    @Test func emptyServicesGetAPlaceholderSlice() throws {
        let service = try decoded(#"{"name":"empty","ports":[{"name":"http","port":80}]}"#)
        let rendering = ManifestRenderer.render(service)
        let slices = objects(rendering, kind: "EndpointSlice")
        #expect(slices.count == 1)
        #expect(slices.first?["endpoints"] == .array([]))
        try Golden.check("no-addresses", rendering)
    }

    @Test func jsonIsAv1List() throws {
        let service = try decoded(#"{"name":"s","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"}]}"#)
        let json = try JSONParser.parse(ManifestFormat.json.serialize(ManifestRenderer.render(service).objects))
        guard case .object(let list) = json, case .array(let items)? = list["items"] else {
            Issue.record("not a list")
            return
        }
        #expect(list["kind"] == .string("List") && list["apiVersion"] == .string("v1"))
        #expect(items.count == 3)
    }
}
