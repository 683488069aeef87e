import Testing

@testable import RegistryCore

/// Issue 14: adding or removing one address of a large service does not validate, sort or
/// encode the whole service again. Each shortcut is held here to the full computation it
/// replaces: `ServiceValidator.validateAdding` to `validate` of the appended service,
/// `insertNormalized` to append + `normalize()`, and the spliced document to `bytes(record)`.
struct IncrementalAddressTests {
    /// A full service takes no more: the same bound as decoding a whole service.
    @Test func aFullServiceRefusesOneMoreAddress() {
        let addresses = (0..<ServiceValidator.maxAddresses).map { EndpointAddress(ip: "10.\($0 / 65536).\($0 / 256 % 256).\($0 % 256)") }
        let service = ExternalService(namespace: "default", name: "full", ports: [ServicePort(port: 80)], addresses: EndpointAddressList(addresses))
        let violations = ServiceValidator.validateAdding(EndpointAddress(ip: "10.200.0.1"), to: service)
        #expect(violations.map(\.field) == ["addresses"])
        #expect(violations.first?.message == "must have at most 100000 items, got 100001")
        var smaller = service
        smaller.addresses.removeLast()
        #expect(ServiceValidator.validateAdding(EndpointAddress(ip: "10.200.0.1"), to: smaller).isEmpty)
    }

    /// A random address for a service with ports `http` and `metrics`: IPv4 or IPv6 or a
    /// host, with or without overrides, zone, hostname, readiness and served ports.
    static func address(_ random: inout SeededGenerator) -> EndpointAddress {
        let pick = Int.random(in: 0..<10, using: &random)
        var address: EndpointAddress
        switch pick {
        case 0: address = EndpointAddress(host: "backend-\(Int.random(in: 0..<50, using: &random)).example.com")
        case 1, 2: address = EndpointAddress(ip: "2001:db8::\(String(Int.random(in: 1..<5000, using: &random), radix: 16))")
        default:
            address = EndpointAddress(
                ip: "10.\(Int.random(in: 0..<3, using: &random)).\(Int.random(in: 0..<40, using: &random)).\(Int.random(in: 1..<255, using: &random))"
            )
        }
        if Bool.random(using: &random) { address.ports = ["http": [8080, 8081, 9000].randomElement(using: &random)!] }
        if Int.random(in: 0..<5, using: &random) == 0 { address.zone = "zone-\(Int.random(in: 0..<3, using: &random))" }
        if Int.random(in: 0..<7, using: &random) == 0 { address.hostname = "pod-\(Int.random(in: 0..<100, using: &random))" }
        if Int.random(in: 0..<6, using: &random) == 0 { address.ready = false }
        if address.ports == nil && Int.random(in: 0..<8, using: &random) == 0 { address.servedPorts = ["metrics"] }
        return address
    }

    /// A valid, normalized service of about `count` addresses (duplicates dropped).
    static func service(_ count: Int, seed: UInt64) -> (ExternalService, SeededGenerator) {
        var random = SeededGenerator(state: seed)
        var service = ExternalService(
            name: "large", labels: ["app": "x"], annotations: ["note": #"quotes " and \ and "addresses":[] inside"#],
            ports: [ServicePort(name: "http", port: 80, targetPort: 8080), ServicePort(name: "metrics", port: 9100)])
        var seen: [ServiceValidator.AddressKey: Bool] = [:]
        while service.addresses.count < count {
            let address = address(&random)
            let key = ServiceValidator.AddressKey(address, ports: address.backendPorts(for: service.ports))
            guard seen.updateValue(true, forKey: key) == nil else { continue }
            service.addresses.append(address)
        }
        service.normalize()
        return (service, random)
    }

    static func record(_ service: ExternalService, revision: Int) -> ServiceRecord {
        ServiceRecord(
            service: service, uid: "8d7f6b1e-0000-4000-8000-000000000001", revision: revision, createdAt: "2026-12-01T00:00:00Z",
            updatedAt: "2026-12-01T00:\(10 + revision % 50):00Z")
    }

    @Test func addingEqualsAppendingValidatingAndNormalizing() {
        var (service, random) = Self.service(2_000, seed: 14)
        #expect(ServiceValidator.validate(service).isEmpty)
        var refused = 0
        for _ in 0..<300 {
            var address = Self.address(&random)
            // Now and then an invalid one, to compare the violations too.
            switch Int.random(in: 0..<12, using: &random) {
            case 0: address.hostname = "Not_A_Label"
            case 1: address.ports = ["nope": 1]
            case 2: address = EndpointAddress(ip: "127.0.0.1")
            case 3: address.port = 80
            default: break
            }
            var appended = service
            appended.addresses.append(address)
            let expected = ServiceValidator.validate(appended)
            #expect(ServiceValidator.validateAdding(address, to: service) == expected)
            guard expected.isEmpty else {
                refused += 1
                continue
            }
            appended.normalize()
            var inserted = service
            inserted.insertNormalized(address)
            #expect(inserted == appended)
            service = inserted
        }
        #expect(refused > 20)  // duplicates and the invalid ones
        #expect(service.addresses.count > 2_150)
    }

    /// The binary search finds exactly the addresses a pass over all of them would: those of
    /// the same IP, or for a `host` address the same host, whatever their ports.
    @Test func sameTargetIndicesAreThoseOfALinearPass() {
        let (service, random) = Self.service(3_000, seed: 21)
        var probes = random
        let registered = service.addresses.indices.filter { $0 % 97 == 0 }.map { service.addresses[$0] }
        for address in registered + (0..<300).map({ _ in Self.address(&probes) }) + [
            EndpointAddress(ip: "0.0.0.0"), EndpointAddress(host: "zzz.example"),
        ] {
            let expected = service.addresses.indices.filter {
                address.isUnresolvedHost
                    ? service.addresses[$0].host == address.host && service.addresses[$0].isUnresolvedHost
                    : service.addresses[$0].ip == address.ip
            }
            let found = service.sameTargetIndices(as: address)
            #expect(Array(found) == expected, "\(address.host ?? address.ip)")
        }
        #expect(registered.allSatisfy { !service.sameTargetIndices(as: $0).isEmpty })
    }

    /// The comparisons that read addresses in place (`EndpointAddress.same`) agree with `==`
    /// for addresses that differ in any one field, and so does the one-address change a splice
    /// looks for (`ServiceEncoder.singleChange`).
    @Test func inPlaceComparisonsAgreeWithEquality() {
        let base = EndpointAddress(ip: "10.0.0.1", port: 8080, hostname: "a", zone: "z1", servedPorts: ["http"])
        var variants = [base]
        for change in 0..<8 {
            var other = base
            switch change {
            case 0: other.ip = "10.0.0.2"
            case 1: other.port = 8081
            case 2: other.ports = ["http": 8080]
            case 3: other.hostname = "b"
            case 4: other.zone = "z2"
            case 5: other.ready = false
            case 6: other.servedPorts = ["metrics"]
            default: other.host = "backend.example"
            }
            variants.append(other)
        }
        for (left, lhs) in variants.enumerated() {
            for (right, rhs) in variants.enumerated() {
                #expect(EndpointAddress.same(variants, left, variants, right) == (lhs == rhs))
                #expect(EndpointAddress.same(variants, left, rhs) == (lhs == rhs))
            }
        }
        for (index, changed) in variants.enumerated().dropFirst() {
            // `changed` in place of `base` is not one address more or fewer.
            let old = [base, EndpointAddress(ip: "10.0.0.9")]
            #expect(
                ServiceEncoder.singleChange(old, [changed, EndpointAddress(ip: "10.0.0.9"), EndpointAddress(ip: "10.0.0.10")]) == nil, "\(index)")
            let added = ServiceEncoder.singleChange(old, [base, changed, EndpointAddress(ip: "10.0.0.9")])
            #expect(added?.index == 1 && added?.added == true && added?.address == changed, "\(index)")
        }
    }

    @Test func splicedDocumentsAreTheWholeEncodingByteForByte() {
        var (service, random) = Self.service(2_000, seed: 7)
        // The splice finds the stored addresses by the lengths they encode to.
        var odd = EndpointAddress(
            ip: "10.9.9.9", ports: ["a": 1, "b": 65535], hostname: "h", zone: "z\"\\\n\u{01}", ready: false, servedPorts: ["a", "b"])
        odd.port = 7
        for address in service.addresses + [odd, EndpointAddress(host: "x.example"), EndpointAddress(ip: "::1", ports: [:], servedPorts: [])] {
            #expect(ServiceEncoder.encodedLength(address) == JSONWriter.bytes(ServiceEncoder.json(address)).count)
        }
        var record = Self.record(service, revision: 1)
        var document = ServiceEncoder.bytes(record)
        var spliced = 0
        for step in 0..<200 {
            let previous = record
            switch step % 5 {
            case 0, 1:
                let address = Self.address(&random)
                guard ServiceValidator.validateAdding(address, to: service).isEmpty else { continue }
                service.insertNormalized(address)
            case 2:
                service.addresses.remove(at: Int.random(in: 0..<service.addresses.count, using: &random))
            case 3:
                // At the ends, and a change of another field (which is encoded whole).
                if Bool.random(using: &random) { service.addresses.removeFirst() } else { service.addresses.removeLast() }
                if step % 20 == 3 { service.labels["step"] = "s\(step)" }
            default:
                // Several at once: a removal and two additions.
                service.addresses.remove(at: Int.random(in: 0..<service.addresses.count, using: &random))
                for _ in 0..<2 {
                    let address = Self.address(&random)
                    if ServiceValidator.validateAdding(address, to: service).isEmpty { service.insertNormalized(address) }
                }
            }
            record = Self.record(service, revision: previous.revision + 1)
            let whole = ServiceEncoder.bytes(record)
            var measured = record
            if let splice = ServiceEncoder.spliced(&measured, previous: previous, document: document) {
                spliced += 1
                // The sizes it kept are those of the chunks, and the next splice starts from them.
                for (chunk, measure) in zip(measured.service.addresses.chunks, measured.service.addresses.measures) {
                    #expect(measure?.encodedBytes == chunk.indices.reduce(0) { $0 + ServiceEncoder.encodedLength(chunk, $1) }, "step \(step)")
                    #expect(measure?.hasHost == chunk.contains { $0.host != nil }, "step \(step)")
                }
                #expect(measured.service.addresses.hasHostAddress == measured.service.addresses.contains { $0.host != nil })
                #expect(measured == record)
                service.addresses = measured.service.addresses
                record = measured
                #expect(splice.bytes == whole, "step \(step)")
                // The patch rebuilds the new document from the old one, and is small.
                #expect(splice.patch.apply(to: document) == whole, "step \(step)")
                var inPlace = document
                #expect(splice.patch.apply(inPlace: &inPlace) && inPlace == whole, "step \(step)")
                #expect(DocumentPatch(serialized: splice.patch.serialized) == splice.patch)
                #expect(splice.patch.insertedBytes < 1_000, "step \(step)")
            }
            var copy = record
            #expect(ServiceEncoder.bytes(&copy, previous: previous, document: document) == whole)
            let (bytes, patch) = ServiceEncoder.bytesAndPatch(&copy, previous: previous, document: document)
            #expect(bytes == whole && patch.apply(to: document) == whole)
            document = whole
        }
        #expect(spliced > 120)
    }

    /// `service` as the next revision of `previous` (whose document is `document`), through
    /// `documentAndPatch`: the record, its whole encoding, the result and the patch, the result
    /// checked to be the whole encoding and the patch to rebuild it from `document`.
    static func revised(
        _ previous: ServiceRecord, document: [UInt8], to service: ExternalService, sourceLocation: SourceLocation = #_sourceLocation
    ) -> (record: ServiceRecord, whole: [UInt8], result: DocumentBytes, patch: DocumentPatch) {
        var record = Self.record(service, revision: previous.revision + 1)
        let whole = ServiceEncoder.bytes(record)
        let (result, patch) = ServiceEncoder.documentAndPatch(&record, previous: previous, document: DocumentBytes(document))
        #expect(result.flattened == whole, sourceLocation: sourceLocation)
        #expect(patch.apply(to: document) == whole, sourceLocation: sourceLocation)
        return (record, whole, result, patch)
    }

    /// A small document is encoded whole (`ServiceEncoder.maxEncodedWhole`), its patch still
    /// small: one edit in the fields before the addresses (revision, time), one at the address.
    @Test func aSmallDocumentIsEncodedWholeWithASmallPatch() {
        var service = ExternalService(
            name: "small", ports: [ServicePort(port: 80)], addresses: EndpointAddressList((1...12).map { EndpointAddress(ip: "10.1.0.\($0)") }))
        let previous = Self.record(service, revision: 1)
        let document = ServiceEncoder.bytes(previous)
        #expect(document.count <= ServiceEncoder.maxEncodedWhole)
        service.insertNormalized(EndpointAddress(ip: "10.1.0.99"))
        let (record, whole, result, patch) = Self.revised(previous, document: document, to: service)
        #expect(patch.edits.count == 2 && patch.insertedBytes < 128, "\(patch.edits)")
        // Any other change too (labels here): the patch still rebuilds the document.
        service.labels = ["team": "storage"]
        var relabelled = Self.record(service, revision: 3)
        let (labelled, labelPatch) = ServiceEncoder.documentAndPatch(&relabelled, previous: record, document: result)
        #expect(labelled.flattened == ServiceEncoder.bytes(relabelled) && labelPatch.apply(to: whole) == labelled.flattened)
    }

    /// A large document changed in its fields and its addresses at once (as a `PUT` may), which
    /// the splice refuses, is encoded whole with the patch cut at the addresses array: two
    /// edits, not one spanning everything between the label and the address.
    @Test func aChangeTheSpliceRefusesStillMakesASmallPatch() {
        var service = ExternalService(
            name: "large", ports: [ServicePort(port: 80)],
            addresses: EndpointAddressList((1...200).map { EndpointAddress(ip: "10.3.\($0 / 250).\($0 % 250)") }))
        let previous = Self.record(service, revision: 1)
        let document = ServiceEncoder.bytes(previous)
        #expect(document.count > ServiceEncoder.maxEncodedWhole)
        service.labels = ["team": "storage"]
        service.insertNormalized(EndpointAddress(ip: "10.3.9.9"))
        let (_, whole, _, patch) = Self.revised(previous, document: document, to: service)
        // The fields from the revision to the label (~300 bytes) and the address: a fraction of
        // the one edit between the two documents' common ends.
        let spanning = DocumentPatch(between: document, and: whole)
        #expect(patch.edits.count == 2 && patch.insertedBytes * 4 < spanning.insertedBytes, "\(patch.insertedBytes) of \(spanning.insertedBytes)")
    }

    /// The cut of a stored document is found in its bytes where the encoder put it, whatever
    /// the fields before the array hold (labels and annotations named or valued like the
    /// array's key, a description quoting it, ports with names); none in bytes without it.
    @Test func theAddressesCutIsFoundWhereTheEncoderPutIt() {
        let addresses = EndpointAddressList((1...3).map { EndpointAddress(ip: "10.2.0.\($0)") })
        var services = [ExternalService(name: "plain", ports: [ServicePort(port: 80)], addresses: addresses)]
        var tricky = ExternalService(name: "tricky", ports: [ServicePort(name: "addresses", port: 80)], addresses: addresses)
        tricky.labels = ["addresses": "[1]", "x": #""addresses":["#]
        tricky.annotations = ["addresses": #"{"addresses":[]}"#]
        tricky.description = #"the "addresses":[ key"#
        services.append(tricky)
        services.append(ExternalService(name: "empty", ports: [ServicePort(port: 80)], addresses: []))
        for service in services {
            let record = Self.record(service, revision: 4)
            var bytes: [UInt8] = []
            let cut = ServiceEncoder.write(record, addresses: record.service.addresses, into: &bytes)
            #expect(ServiceEncoder.addressesCut(in: bytes) == cut, "\(service.name)")
        }
        #expect(ServiceEncoder.addressesCut(in: Array(#"{"name":"a","address":["#.utf8)) == nil)
        #expect(ServiceEncoder.addressesCut(in: Array(#""addresses":"#.utf8)) == nil)
        #expect(ServiceEncoder.addressesCut(in: Array(#""addresses":["#.utf8)) == 13)
        #expect(ServiceEncoder.addressesCut(in: []) == nil)
        // In a slice, as an offset from the slice's start; the first of two.
        let sliced = Array(#"{"ports":[1],"addresses":[],"x":{"addresses":[]}}"#.utf8)[1...]
        #expect(ServiceEncoder.addressesCut(in: sliced) == 25)
        #expect(ServiceEncoder.addressesCut(in: Array(#"ddresses":["#.utf8)[...]) == nil)
    }

    /// In place, a patch of several edits (each growing, shrinking or keeping the bytes it
    /// replaces) gives what `apply(to:)` gives; one that does not fit leaves the bytes unchanged.
    @Test func patchesApplyInPlaceAsIntoANewBuffer() {
        let old = Array("0123456789abcdefghij".utf8)
        let patch = DocumentPatch(
            minimizing: [
                .init(offset: 1, removed: 2, inserted: Array("XYZW".utf8)),
                .init(offset: 5, removed: 3, inserted: []),
                .init(offset: 10, removed: 4, inserted: Array("kl".utf8)),
                .init(offset: 18, removed: 2, inserted: Array("!?".utf8)),
            ], of: old)
        #expect(patch.edits.count == 4)
        var document = old
        #expect(patch.apply(inPlace: &document))
        #expect(document == patch.apply(to: old))
        #expect(String(decoding: document, as: UTF8.self) == "0XYZW3489klefgh!?")
        var short = Array("0123".utf8)
        #expect(patch.apply(inPlace: &short) == false && short == Array("0123".utf8))
        #expect(patch.apply(to: short) == nil)
    }

    @Test func splicesFromAndToEmptyAndRefusesAForeignDocument() {
        let empty = Self.record(ExternalService(name: "small", ports: [ServicePort(port: 80)]), revision: 1)
        var one = empty
        one.service.addresses = [EndpointAddress(host: "db.example.com")]  // brings dnsRefreshSeconds in
        one.revision = 2
        for (from, to) in [(empty, one), (one, empty)] {
            var spliced = to
            #expect(ServiceEncoder.spliced(&spliced, previous: from, document: ServiceEncoder.bytes(from))?.bytes == ServiceEncoder.bytes(to))
        }
        // Around the array the result is the new record's own encoding, whatever the stored
        // document holds there; the array must be where and as long as the previous record's
        // addresses encode to, or nothing is spliced.
        var other = empty
        other.service.description = "else"
        var fromOther = one
        #expect(ServiceEncoder.spliced(&fromOther, previous: empty, document: ServiceEncoder.bytes(other))?.bytes == ServiceEncoder.bytes(one))
        var longer = empty
        longer.service.addresses = [EndpointAddress(ip: "192.0.2.1")]
        var fromLonger = one
        #expect(ServiceEncoder.spliced(&fromLonger, previous: empty, document: ServiceEncoder.bytes(longer)) == nil)
        #expect(ServiceEncoder.spliced(&fromLonger, previous: empty, document: DocumentBytes(Array("{}".utf8))) == nil)
        // A stored array longer than the previous record's (its first address where the
        // previous one's only address ends) is not taken for it.
        var single = empty
        single.service.addresses = [EndpointAddress(ip: "192.0.2.1")]
        var twoAddresses = single
        twoAddresses.service.addresses.append(EndpointAddress(ip: "192.0.2.2"))
        var addedToSingle = single
        addedToSingle.service.insertNormalized(EndpointAddress(ip: "192.0.2.3"))
        addedToSingle.revision = 2
        var spliceOfSingle = addedToSingle
        #expect(ServiceEncoder.spliced(&spliceOfSingle, previous: single, document: ServiceEncoder.bytes(twoAddresses)) == nil)
        let fromSingle = ServiceEncoder.spliced(&spliceOfSingle, previous: single, document: ServiceEncoder.bytes(single))
        #expect(fromSingle?.bytes == ServiceEncoder.bytes(addedToSingle))
        // A stored document whose first segment ends before its array opens is spliced too.
        let stored = ServiceEncoder.bytes(empty)
        var fromSegments = one
        let segmented = DocumentBytes(segments: [stored[..<5], stored[5...]], ownBytes: 0)
        #expect(ServiceEncoder.spliced(&fromSegments, previous: empty, document: segmented)?.document.flattened == ServiceEncoder.bytes(one))
    }
}
