import Testing

@testable import RegistryCore

private func decode(_ json: String) throws -> Result<ServiceInput, ValidationFailure> {
    ServiceDecoder.decode(try JSONParser.parse(Array(json.utf8)))
}

private func violations(_ json: String) throws -> [FieldViolation] {
    switch try decode(json) {
    case .success: return []
    case .failure(let failure): return failure.violations
    }
}

/// Issue 13: addresses given by DNS name.
@Suite struct HostAddressTests {
    @Test func decodesEncodesAndRoundTripsAHostAddress() throws {
        let input = try decode(
            #"{"name":"db","ports":[{"port":5432}],"addresses":[{"host":"db.example.test","zone":"z1","ready":false},{"ip":"192.0.2.1"}]}"#
        ).get()
        let service = input.service
        // IPs first, then names.
        #expect(service.addresses.map(\.host) == [nil, "db.example.test"])
        #expect(service.addresses[1].isUnresolvedHost && service.addresses[1].zone == "z1" && !service.addresses[1].ready)
        #expect(service.dnsRefreshSeconds == nil && service.effectiveDNSRefreshSeconds == 30 && service.effectiveDNSGraceSeconds == 300)
        let record = ServiceRecord(service: service, uid: "u", revision: 1, createdAt: "t", updatedAt: "t")
        let json = try JSONParser.parse(ServiceEncoder.bytes(record))
        #expect(json["addresses"]?.arrayValue?[1].objectValue?["host"] == .string("db.example.test"))
        #expect(json["addresses"]?.arrayValue?[1].objectValue?["ip"] == nil)
        #expect(json["dnsRefreshSeconds"] == .integer(30) && json["dnsGraceSeconds"] == .integer(300))
        // What is read back (with the defaults written out) is the same registration.
        #expect(try decode(String(decoding: ServiceEncoder.bytes(record), as: UTF8.self)).get().service == service)
        #expect(ServiceDecoder.storedRecord(json)?.service == service)
        // A service without host addresses does not grow the fields.
        let plain = try decode(#"{"name":"a","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"}]}"#).get().service
        let plainJSON = ServiceEncoder.json(ServiceRecord(service: plain, uid: "u", revision: 1, createdAt: "t", updatedAt: "t"))
        #expect(plainJSON["dnsRefreshSeconds"] == nil)
    }

    @Test func refusesBadHostsAndReportsEveryProblemAtOnce() throws {
        let found = try violations(
            #"{"name":"db","ports":[{"port":5432}],"dnsRefreshSeconds":1,"dnsGraceSeconds":-1,"addresses":["#
                + #"{"host":"DB.Example.test"},{"host":"192.0.2.7"},{"ip":"192.0.2.1","host":"db.example.test"},{"port":5433},"#
                + #"{"host":"a.example.test"},{"host":"a.example.test"},{"host":"-bad-.example"}]}"#)
        let byField = Dictionary(grouping: found, by: \.field)
        #expect(byField["addresses[0].host"]?.first?.message.contains("RFC 1123 subdomain") == true)
        #expect(byField["addresses[1].host"]?.first?.message.contains("is an IP address") == true)
        #expect(byField["addresses[2].host"]?.first?.kind == .forbidden)
        #expect(byField["addresses[3].ip"]?.first?.kind == .required)
        #expect(byField["addresses[5]"]?.first?.kind == .duplicate)
        #expect(byField["addresses[6].host"] != nil)
        #expect(byField["dnsRefreshSeconds"]?.first?.message == "1: must be between 5 and 3600, inclusive")
        #expect(byField["dnsGraceSeconds"] != nil)
        // A name longer than 253 characters.
        let long = Array(repeating: String(repeating: "a", count: 60), count: 5).joined(separator: ".")
        let tooLong = try violations(#"{"name":"db","ports":[{"port":1}],"addresses":[{"host":"\#(long)"}]}"#)
        #expect(tooLong.map(\.message).contains { $0.contains("no more than 253") })
    }

    @Test func expandsHostsIntoTheirIPsWithTheAddressAttributes() throws {
        let service = try decode(
            #"{"name":"db","ports":[{"name":"sql","port":5432},{"name":"adm","port":80}],"addresses":["#
                + #"{"ip":"192.0.2.1"},{"host":"db.example.test","ports":{"sql":6432},"zone":"z1","hostname":"primary","ready":false},"#
                + #"{"host":"other.example.test"}]}"#
        ).get().service
        #expect(service.hosts == ["db.example.test", "other.example.test"])
        let expanded = service.resolvingHosts { host in
            switch host {
            case "db.example.test": ["2001:DB8::5", "192.0.2.5", "192.0.2.6"]
            case "other.example.test": ["192.0.2.1", "192.0.2.5"]  // .1 is registered; .5 has other ports
            default: []
            }
        }
        #expect(expanded.addresses.map(\.ip) == ["192.0.2.1", "2001:db8::5", "192.0.2.5", "192.0.2.6", "192.0.2.5"])
        let resolved = expanded.addresses[1]
        #expect(resolved.host == "db.example.test" && resolved.zone == "z1" && resolved.hostname == "primary" && !resolved.ready)
        #expect(resolved.ports == ["sql": 6432] && !resolved.isUnresolvedHost)
        // Rendered: both families, the host's attributes carried over.
        let rendering = ManifestRenderer.render(expanded, mode: .endpointslices)
        let slices = rendering.objects.compactMap(\.objectValue).filter { $0["kind"] == .string("EndpointSlice") }
        let rendered = slices.flatMap { $0["endpoints"]?.arrayValue ?? [] }.compactMap {
            $0.objectValue?["addresses"]?.arrayValue?.first?.stringValue
        }
        #expect(Set(rendered) == ["192.0.2.1", "192.0.2.5", "192.0.2.6", "2001:db8::5"])
        #expect(slices.contains { $0["addressType"] == .string("IPv6") })
        // Not expanded: the host renders nothing (and nothing breaks).
        let unexpanded = ManifestRenderer.render(service, mode: .endpointslices)
        let unexpandedSlices = unexpanded.objects.compactMap(\.objectValue).filter { $0["kind"] == .string("EndpointSlice") }
        #expect(unexpandedSlices.flatMap { $0["endpoints"]?.arrayValue ?? [] }.count == 1)
    }

    @Test func refreshIntervalHonoursTheTTLWithinItsFloorAndCeiling() {
        #expect(DNSSettings.refreshInterval(ttl: nil, refreshSeconds: 30) == 30)
        #expect(DNSSettings.refreshInterval(ttl: 0, refreshSeconds: 30) == 5)
        #expect(DNSSettings.refreshInterval(ttl: 12, refreshSeconds: 30) == 12)
        #expect(DNSSettings.refreshInterval(ttl: 86_400, refreshSeconds: 30) == 30)
        #expect(DNSSettings.refreshInterval(ttl: 1, refreshSeconds: 5) == 5)
    }
}
