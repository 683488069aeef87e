import Foundation
import Testing

@testable import RegistryCore

/// Decoding, validation, normalisation and encoding of a few thousand generated bodies, valid
/// and not, held to `Golden/decoding-corpus.txt`: every violation (path, kind, message, order)
/// and every accepted service's stored bytes. The file was written by the decoder before it was
/// made to parse each address once and build field paths only for violations; any change in
/// what a client sees shows up here. `UPDATE_GOLDEN=1` rewrites it (after review).
@Suite struct DecodingCorpusTests {
    /// Addresses near every rule: IPs that parse or fail in each way, `host`, port overrides of
    /// each kind, `servedPorts`, `hostname`, `zone`, `ready`, unknown and read-only members,
    /// wrong types, non-objects, and repeats (duplicates are drawn often).
    static let addresses: [String] = [
        #"{"ip":"10.0.0.1"}"#, #"{"ip":"10.0.0.1","port":8080}"#, #"{"ip":"10.0.0.1","port":9090}"#, #"{"ip":"010.0.0.1"}"#,
        #"{"ip":"::ffff:1.2.3.4"}"#, #"{"ip":"fe80::1%eth0"}"#, #"{"ip":"2001:DB8::1"}"#, #"{"ip":"2001:db8:0:0:0:0:0:1","port":8080}"#,
        #"{"ip":"127.0.0.1"}"#, #"{"ip":"0.0.0.0"}"#, #"{"ip":"169.254.1.1"}"#, #"{"ip":"ff02::1"}"#, #"{"ip":5}"#, #"{"ip":null}"#, "{}",
        #"{"host":"db.example.com"}"#, #"{"host":"db.example.com","port":9090}"#, #"{"host":"10.0.0.1"}"#, #"{"host":"Bad_Host"}"#,
        #"{"ip":"10.0.0.2","host":"x.example"}"#, #"{"ip":"10.0.0.3","ports":{"http":9090,"metrics":9100}}"#,
        #"{"ip":"10.0.0.3","ports":{"http":80}}"#, #"{"ip":"10.0.0.3","ports":{"nope":1}}"#, #"{"ip":"10.0.0.3","ports":{"http":"x"}}"#,
        #"{"ip":"10.0.0.3","ports":5}"#, #"{"ip":"10.0.0.4","port":0}"#, #"{"ip":"10.0.0.4","port":70000}"#,
        #"{"ip":"10.0.0.4","port":1.5}"#, #"{"ip":"10.0.0.4","port":"80"}"#, #"{"ip":"10.0.0.4","port":80,"ports":{"http":80}}"#,
        #"{"ip":"10.0.0.5","hostname":"Bad Name"}"#, #"{"ip":"10.0.0.5","hostname":"web-1"}"#, #"{"ip":"10.0.0.5","zone":""}"#,
        #"{"ip":"10.0.0.5","zone":"eu-1a"}"#, #"{"ip":"10.0.0.5","ready":false}"#, #"{"ip":"10.0.0.5","ready":"yes"}"#,
        #"{"ip":"10.0.0.6","servedPorts":["http"]}"#, #"{"ip":"10.0.0.6","servedPorts":["metrics","http"]}"#,
        #"{"ip":"10.0.0.6","servedPorts":["http","http"]}"#, #"{"ip":"10.0.0.6","servedPorts":[]}"#,
        #"{"ip":"10.0.0.6","servedPorts":["nope"]}"#, #"{"ip":"10.0.0.6","servedPorts":"http"}"#, #"{"ip":"10.0.0.6","servedPorts":[1]}"#,
        #"{"ip":"10.0.0.6","servedPorts":["http"],"ports":{"metrics":9100}}"#, #"{"ip":"10.0.0.7","bogus":1,"other":2}"#,
        #"{"ip":"10.0.0.7","resolution":{},"health":{}}"#, #""10.0.0.8""#, "[]", #"{"ip":"9.0.0.1"}"#, #"{"ip":"9.0.0.1","ready":true}"#,
        #"{"ip":"2001:db8::2","port":8080}"#, #"{"ip":"é"}"#, #"{"ip":"1.2.3.4%\u0301"}"#, #"{"ip":"1.2.3.4\u0301"}"#,
        #"{"ip":"10.0.0.9","hostname":"h","zone":"z","ready":false,"port":8080}"#, #"{"ip":"255.255.255.255"}"#,
        #"{"ip":"10.0.0.10","ports":{}}"#, #"{"host":"api.example.com","servedPorts":["http"]}"#, #"{"ip":"192.0.2.1","zone":"a b"}"#,
    ]

    /// An address that passes alone (mostly): IPs of both families in no order, host names,
    /// a port override or none, and the other members now and then.
    static func validAddress(multiPort: Bool, using generator: inout SeededGenerator) -> String {
        let ips = ["10.0.0.1", "10.0.0.10", "10.0.0.9", "9.0.0.1", "192.0.2.1", "2001:DB8::1", "2001:db8::2", "fd00::a", "10.1.0.1"]
        var members: [String] = []
        if Int.random(in: 0..<6, using: &generator) == 0 {
            members.append(#""host":"\#(["db.example.com", "api.example.com", "a.example"].randomElement(using: &generator)!)""#)
        } else {
            members.append(#""ip":"\#(ips.randomElement(using: &generator)!)""#)
        }
        switch (Int.random(in: 0..<4, using: &generator), multiPort) {
        case (0, false): members.append(#""port":8080"#)
        case (1, false): members.append(#""port":\#(Int.random(in: 9000...9002, using: &generator))"#)
        case (0, true): members.append(#""ports":{"http":\#(Int.random(in: 80...81, using: &generator))}"#)
        case (1, true): members.append(#""ports":{"http":8080,"metrics":\#(Int.random(in: 9100...9101, using: &generator))}"#)
        default: break
        }
        if Bool.random(using: &generator) { members.append(#""ready":\#(Bool.random(using: &generator))"#) }
        if Int.random(in: 0..<4, using: &generator) == 0 { members.append(#""zone":"eu-1a","hostname":"web-1""#) }
        if multiPort, Int.random(in: 0..<4, using: &generator) == 0 { members.append(#""servedPorts":["metrics","http"]"#) }
        return "{" + members.joined(separator: ",") + "}"
    }

    static let portSets: [String] = [
        "", #""ports":[],"#, #""ports":[{"port":80,"targetPort":8080}],"#, #""ports":[{"name":"http","port":80,"targetPort":8080}],"#,
        #""ports":[{"name":"http","port":80},{"name":"metrics","port":9100,"protocol":"TCP"}],"#,
        #""ports":[{"name":"http","port":80},{"port":81}],"#, #""ports":[{"port":80},{"name":"http","port":80}],"#,
    ]

    static let heads: [String] = [
        #"{"name":"svc","#, #"{"namespace":"team-a","name":"svc","type":"Headless","#,
        #"{"name":"svc","type":"ExternalName","externalName":"db.example.com","#,
        #"{"name":"svc","type":"NodePort","#, #"{"name":"Bad_Name","bogus":true,"#, #"{"namespace":5,"#,
        #"{"name":"svc","labels":{"app":"x","bad key!":"v"},"clusters":["b","a","b"],"dnsRefreshSeconds":30,"#,
        #"{"name":"svc","uid":"u-1","revision":3,"createdAt":"x","healthCheck":{"type":"http","port":"http"},"#,
        #"{"name":"svc","description":5,"clusters":[1],"type":"Bogus","endpointsMode":"x","#,
    ]

    static func bodies() -> [String] {
        var generator = SeededGenerator(state: 14)
        var bodies: [String] = []
        for head in heads {
            for ports in portSets {
                for round in 0..<16 {
                    // Half the lists from addresses that pass alone (order, normalisation, duplicates).
                    let count = Int.random(in: 0...9, using: &generator)
                    let list = (0..<count).map { _ in
                        round % 2 == 0
                            ? addresses.randomElement(using: &generator)! : validAddress(multiPort: ports.contains("metrics"), using: &generator)
                    }
                    bodies.append(head + ports + #""addresses":["# + list.joined(separator: ",") + "]}")
                }
            }
        }
        // Each address alone, and in reverse order after a valid one (ordering, duplicates).
        for ports in portSets {
            for address in addresses {
                bodies.append(#"{"name":"svc","# + ports + #""addresses":["# + address + "]}")
                bodies.append(#"{"name":"svc","# + ports + #""addresses":["# + address + #",{"ip":"10.0.0.1","port":8080},"# + address + "]}")
            }
        }
        // More than the most addresses reported (`ValidationFailure.maxReported`).
        bodies.append(#"{"name":"svc","addresses":["# + Array(repeating: #"{"ip":"01.2.3.4"}"#, count: 120).joined(separator: ",") + "]}")
        bodies.append("[]")
        return bodies
    }

    static func outcome(_ result: Result<ServiceInput, ValidationFailure>) -> String {
        switch result {
        case .success(let input):
            let record = ServiceRecord(service: input.service, uid: "uid", revision: 1, createdAt: "t0", updatedAt: "t0")
            return "ok uid=\(input.uid ?? "-") revision=\(input.revision.map(String.init) ?? "-") clusters=\(input.clustersGiven) "
                + String(decoding: ServiceEncoder.bytes(record), as: UTF8.self)
        case .failure(let failure):
            return "failed omitted=\(failure.omitted)" + failure.violations.map { "\n  \($0.field) | \($0.kind.rawValue) | \($0.message)" }.joined()
        }
    }

    static func corpus() throws -> String {
        var lines: [String] = []
        for body in bodies() {
            lines.append("body " + body)
            switch Result(catching: { () throws(JSONSyntaxError) in try JSONParser.parse(Array(body.utf8)) }) {
            case .success(let json): lines.append(outcome(ServiceDecoder.decode(json)))
            case .failure(let error): lines.append("unparsable: \(error)")
            }
        }
        // The addresses sub-resource: each address posted to services of each port set.
        for ports in portSets {
            let body = #"{"name":"svc","type":"Headless","# + ports + #""addresses":[{"ip":"10.0.0.1"}]}"#
            guard case .success(let input) = ServiceDecoder.decode(try JSONParser.parse(Array(body.utf8))) else { continue }
            let service = input.service
            for address in addresses {
                lines.append("address " + ports + " " + address)
                switch ServiceDecoder.decodeAddress(try JSONParser.parse(Array(address.utf8)), for: service) {
                case .success(let decoded):
                    let adding = ServiceValidator.validateAdding(decoded, to: service)
                    lines.append(
                        "ok " + JSONWriter.string(ServiceEncoder.json(decoded)) + adding.map { "\n  adding: \($0.field) | \($0.message)" }.joined())
                case .failure(let failure):
                    lines.append("failed" + failure.violations.map { "\n  \($0.field) | \($0.kind.rawValue) | \($0.message)" }.joined())
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func decodesTheCorpusAsRecorded() throws {
        let text = try Self.corpus()
        let file = Golden.directory.appending(path: "decoding-corpus.txt")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try text.write(to: file, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        let (got, want) = (
            text.split(separator: "\n", omittingEmptySubsequences: false), expected.split(separator: "\n", omittingEmptySubsequences: false)
        )
        #expect(got.count == want.count)
        // The first few differing lines, with the body they belong to.
        var reported = 0
        for index in 0..<min(got.count, want.count) where got[index] != want[index] && reported < 5 {
            let body = got[..<index].last { $0.hasPrefix("body ") || $0.hasPrefix("address ") } ?? ""
            Issue.record("line \(index + 1) (\(body)):\n  got:  \(got[index])\n  want: \(want[index])")
            reported += 1
        }
    }

    /// Lists in stored order skip the table of addresses seen (they cannot repeat one): each
    /// stored list decodes again to itself without a violation, and the same list with one
    /// address repeated (no longer strictly increasing) reports exactly that repeat.
    @Test func listsInStoredOrderDecodeToThemselvesAndRepeatsAreFound() throws {
        var generator = SeededGenerator(state: 1409)
        var checked = 0
        for round in 0..<400 {
            let multiPort = round % 2 == 0
            let ports = multiPort ? Self.portSets[4] : Self.portSets[2]
            let list = (0..<Int.random(in: 1...12, using: &generator)).map { _ in Self.validAddress(multiPort: multiPort, using: &generator) }
            let body = #"{"name":"svc","# + ports + #""addresses":["# + list.joined(separator: ",") + "]}"
            guard case .success(let input) = ServiceDecoder.decode(try JSONParser.parse(Array(body.utf8))) else { continue }
            let stored = input.service.addresses.map { JSONWriter.string(ServiceEncoder.json($0)) }
            let again = #"{"name":"svc","# + ports + #""addresses":["# + stored.joined(separator: ",") + "]}"
            let decoded = try ServiceDecoder.decode(JSONParser.parse(Array(again.utf8))).get()
            #expect(decoded.service.addresses == input.service.addresses, "\(again)")
            let repeated = Int.random(in: 0..<stored.count, using: &generator)
            var withRepeat = stored
            withRepeat.insert(stored[repeated], at: repeated + 1)
            let twice = #"{"name":"svc","# + ports + #""addresses":["# + withRepeat.joined(separator: ",") + "]}"
            guard case .failure(let failure) = ServiceDecoder.decode(try JSONParser.parse(Array(twice.utf8))) else {
                Issue.record("\(twice) was accepted")
                continue
            }
            let address = input.service.addresses[repeated]
            #expect(
                failure.violations == [
                    FieldViolation(
                        "addresses[\(repeated + 1)]", .duplicate,
                        "\(address.host ?? address.ip) with the same backend ports is already addresses[\(repeated)]")
                ], "\(twice)")
            checked += 1
        }
        #expect(checked > 100)
    }
}
