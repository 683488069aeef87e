import Testing

@testable import RegistryCore

/// `ServiceEncoder.bytes` writes the addresses straight into the document, without a
/// `JSONValue` each: held to the bytes of the tree `json(record)` written by `JSONWriter`.
@Suite struct EncoderFastPathTests {
    /// Every accepted body of the decoding corpus, with escapes added to every string an address carries.
    @Test func bytesEqualTheWrittenJSONTree() throws {
        var checked = 0
        for body in DecodingCorpusTests.bodies() {
            guard case .success(let input) = ServiceDecoder.decode(try JSONParser.parse(Array(body.utf8))) else { continue }
            var service = input.service
            // Escapes in every string an address carries.
            service.addresses.append(EndpointAddress(ip: "x\"y\\z\n\u{1}", hostname: "h\t\"", zone: "é\r", servedPorts: ["a\"b"]))
            service.addresses.append(EndpointAddress(host: "h\u{7f}\u{0}", ports: ["p\\q": 1, "a": 65535]))
            // Numbers of every length the writer may meet (stored ports are 1–65535; others are not refused here).
            for port in [0, 9, 10, 99, 100_000, 1_234_567_890, Int.max, -1, -10, Int.min] {
                service.addresses.append(EndpointAddress(ip: "2001:DB8::\(abs(port % 100))", port: port, ports: ["x": port]))
            }
            let record = ServiceRecord(service: service, uid: "u\"", revision: 7, createdAt: "c", updatedAt: "u")
            #expect(ServiceEncoder.bytes(record) == JSONWriter.bytes(ServiceEncoder.json(record)))
            for address in service.addresses {
                var out: [UInt8] = []
                ServiceEncoder.write(address, into: &out)
                #expect(out == JSONWriter.bytes(ServiceEncoder.json(address)))
                #expect(ServiceEncoder.encodedLength(address) == out.count)
            }
            checked += 1
        }
        #expect(checked > 100)
    }

    /// Every member the encoder can write, for each service type, with and without the optional ones.
    @Test func everyMemberOfEveryTypeIsWrittenAsTheTreeIs() {
        for type in ServiceType.allCases {
            for full in [false, true] {
                var service = ExternalService(
                    namespace: "ns", name: "n", description: full ? "d \"q\"" : nil, labels: full ? ["b": "2", "a": "1\n"] : [:],
                    annotations: full ? ["z/y": "x"] : [:], type: type, externalName: full ? "db.example.com" : nil,
                    ports: [
                        ServicePort(
                            name: full ? "http" : nil, protocol: .udp, port: 80, targetPort: 8080, appProtocol: full ? "h2c" : nil,
                            nodePort: full ? 30080 : nil)
                    ] + (full ? [ServicePort(name: "m", port: 9100)] : []),
                    addresses: [EndpointAddress(ip: "10.0.0.1", port: full ? 1 : nil), EndpointAddress(host: "a.example")],
                    endpointsMode: full ? .endpoints : .both, clusters: full ? ["a", "b\\"] : [],
                    healthCheck: full ? HealthCheck(type: .https, port: .name("http"), path: "/h", host: "x", expectedStatuses: [200...299]) : nil)
                if full {
                    service.spec.ipFamilyPolicy = .preferDualStack
                    service.spec.ipFamilies = [.ipv6, .ipv4]
                    service.spec.sessionAffinity = .clientIP
                    service.spec.sessionAffinityTimeoutSeconds = 60
                    service.spec.publishNotReadyAddresses = true
                    service.spec.internalTrafficPolicy = .local
                    service.spec.trafficDistribution = .preferClose
                    service.spec.externalTrafficPolicy = .local
                    service.spec.loadBalancerClass = "lb"
                    service.spec.loadBalancerSourceRanges = ["10.0.0.0/8"]
                    service.spec.allocateLoadBalancerNodePorts = false
                    service.dnsRefreshSeconds = 60
                } else {
                    service.addresses.removeLast()
                }
                let record = ServiceRecord(service: service, uid: "uid", revision: 12, createdAt: "c", updatedAt: "u")
                #expect(ServiceEncoder.bytes(record) == JSONWriter.bytes(ServiceEncoder.json(record)), "\(type) \(full)")
            }
        }
    }
}
