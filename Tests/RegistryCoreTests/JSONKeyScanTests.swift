import RegistryCore
import Testing

@Suite struct JSONKeyScanTests {
    static let scan = JSONKeyScan(names: ["healthCheck", "host"])

    /// A member at any depth is found; a document without either name is not (false is exact);
    /// a name cut off at the end, a longer name or a name without its closing quote are not
    /// matches; the name inside a string value is (the caller then parses).
    @Test(arguments: [
        (#"{"name":"a","addresses":[{"host":"db.example.com"}]}"#, true),
        (#"{"name":"a","healthCheck":{"type":"tcp"}}"#, true),
        (#"{"healthCheck":{}}"#, true),
        (#"{"name":"a","addresses":[{"ip":"192.0.2.10"}]}"#, false),
        (#"{"hostname":"x","healthChecks":1}"#, false),
        (#"{"name":"a","x":"host"#, false),
        (#"{"description":"\"host\""}"#, false),
        (#"{"description":"see \"host\" and"}"#, false),
        (#"{"description":"host"}"#, true),
        ("", false),
        (#"""#, false),
    ])
    func findsQuotedNames(document: String, expected: Bool) {
        #expect(Self.scan.mentions(Array(document.utf8)) == expected)
    }

    /// Every service document the decoder accepts with a health check or a host address is
    /// found: the scan never skips the parse a service needs.
    @Test func agreesWithTheDecodedService() throws {
        let documents = [
            #"{"namespace":"default","name":"a","ports":[{"port":80}],"addresses":[{"host":"db.example.com"}]}"#,
            #"{"namespace":"default","name":"b","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"}],"healthCheck":{"type":"tcp"}}"#,
            #"{"namespace":"default","name":"c","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"}]}"#,
            #"{"namespace":"default","name":"d","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1","hostname":"gw-1"}],"description":"host of \"host\""}"#,
            #"{"namespace":"default","name":"e","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"}],"healthCheck":{"type":"http","path":"/","host":"gw.example.com"}}"#,
        ]
        for text in documents {
            let service = try ServiceDecoder.decode(try JSONParser.parse(Array(text.utf8))).get().service
            let needed = service.healthCheck != nil || !service.hosts.isEmpty
            #expect(Self.scan.mentions(Array(text.utf8)) == needed, "\(text)")
            // What is scanned in the store is the encoder's document, not the request's text.
            let stored = ServiceEncoder.bytes(ServiceRecord(service: service, uid: "u", revision: 1, createdAt: "t0", updatedAt: "t0"))
            #expect(Self.scan.mentions(stored) == needed, "\(String(decoding: stored, as: UTF8.self))")
        }
    }
}
