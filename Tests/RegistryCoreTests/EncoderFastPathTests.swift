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
            let record = ServiceRecord(service: service, uid: "u\"", revision: 7, createdAt: "c", updatedAt: "u")
            #expect(ServiceEncoder.bytes(record) == JSONWriter.bytes(ServiceEncoder.json(record)))
            for address in service.addresses {
                var out: [UInt8] = []
                ServiceEncoder.write(address, into: &out)
                #expect(out == JSONWriter.bytes(ServiceEncoder.json(address)))
            }
            checked += 1
        }
        #expect(checked > 100)
    }
}
