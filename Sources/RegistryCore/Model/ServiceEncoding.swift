/// The API's JSON form of services, with a fixed member order so that output is byte-for-byte
/// stable. Defaults are written out (`protocol`, `targetPort`, `ready`) so that what is read
/// back can be sent again unchanged.
public enum ServiceEncoder {
    /// The document as a `JSONValue` (for a merge patch, the CLI's files): `bytes(record)` read
    /// back, so that the one writer below is the only place that says what a document holds.
    public static func json(_ record: ServiceRecord) -> JSONValue {
        parsed(bytes(record))
    }

    /// What this encoder wrote, read back. Its output is compact JSON nested three levels deep,
    /// which the parser always takes; anything else is a defect of the writer.
    private static func parsed(_ bytes: [UInt8]) -> JSONValue {
        do {
            return try JSONParser.parse(bytes)
        } catch {
            preconditionFailure("ServiceEncoder wrote JSON its parser refuses: \(error)")
        }
    }

    /// The stored document of `record`: compact JSON, members in a fixed order, written straight
    /// from the record (no `JSONValue` tree).
    public static func bytes(_ record: ServiceRecord) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512 + 40 * record.service.addresses.count)
        write(record, addresses: record.service.addresses, into: &out)
        return out
    }

    /// Writes the document of `record` with `addresses` instead of the record's own into `out`,
    /// and returns the position just after the `[` that opens the addresses array (where
    /// `bytes(_:previous:document:)` cuts the document). The issue-12 spec fields' defaults are
    /// written out (`sessionAffinity`, the traffic policies, `allocateLoadBalancerNodePorts`), so
    /// that what is read back states what is rendered; `ipFamilyPolicy`/`ipFamilies` only when given.
    @discardableResult
    static func write(_ record: ServiceRecord, addresses: EndpointAddressList, into out: inout [UInt8]) -> Int {
        let service = record.service
        var first = true
        // The keys are plain ASCII: quoted without escaping.
        func key(_ name: String) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: name.utf8)
            out.append(UInt8(ascii: "\""))
            out.append(UInt8(ascii: ":"))
        }
        func string(_ name: String, _ value: String) {
            key(name)
            JSONWriter.writeString(value, into: &out)
        }
        func integer(_ name: String, _ value: Int) {
            key(name)
            out.appendDecimal(value)
        }
        func bool(_ name: String, _ value: Bool) {
            key(name)
            out.append(contentsOf: (value ? "true" : "false").utf8)
        }
        func strings(_ name: String, _ values: [String]) {
            key(name)
            out.append(UInt8(ascii: "["))
            for (offset, value) in values.enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(value, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        func map(_ name: String, _ values: [String: String]) {
            key(name)
            out.append(UInt8(ascii: "{"))
            for (offset, member) in values.keys.sorted().enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(member, into: &out)
                out.append(UInt8(ascii: ":"))
                JSONWriter.writeString(values[member]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "{"))
        string("namespace", service.namespace)
        string("name", service.name)
        string("uid", record.uid)
        integer("revision", record.revision)
        string("createdAt", record.createdAt)
        string("updatedAt", record.updatedAt)
        if let description = service.description { string("description", description) }
        string("type", service.type.rawValue)
        if let externalName = service.externalName { string("externalName", externalName) }
        string("endpointsMode", service.endpointsMode.rawValue)
        strings("clusters", service.clusters)
        let fields = service.spec
        if let policy = fields.ipFamilyPolicy { string("ipFamilyPolicy", policy.rawValue) }
        if !fields.ipFamilies.isEmpty { strings("ipFamilies", fields.ipFamilies.map(\.rawValue)) }
        string("sessionAffinity", fields.sessionAffinity.rawValue)
        if let timeout = fields.sessionAffinityTimeoutSeconds { integer("sessionAffinityTimeoutSeconds", timeout) }
        bool("publishNotReadyAddresses", fields.publishNotReadyAddresses)
        if service.type != .externalName { string("internalTrafficPolicy", (fields.internalTrafficPolicy ?? .cluster).rawValue) }
        if let distribution = fields.trafficDistribution { string("trafficDistribution", distribution.rawValue) }
        if service.type.isExternallyAccessible {
            string("externalTrafficPolicy", (fields.externalTrafficPolicy ?? .cluster).rawValue)
        }
        if let loadBalancerClass = fields.loadBalancerClass { string("loadBalancerClass", loadBalancerClass) }
        if !fields.loadBalancerSourceRanges.isEmpty { strings("loadBalancerSourceRanges", fields.loadBalancerSourceRanges) }
        if service.type == .loadBalancer { bool("allocateLoadBalancerNodePorts", fields.allocateLoadBalancerNodePorts ?? true) }
        map("labels", service.labels)
        map("annotations", service.annotations)
        key("ports")
        out.append(UInt8(ascii: "["))
        for (offset, port) in service.ports.enumerated() {
            if offset > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "{"))
            first = true
            if let name = port.name { string("name", name) }
            string("protocol", port.protocol.rawValue)
            integer("port", port.port)
            integer("targetPort", port.targetPort)
            if let appProtocol = port.appProtocol { string("appProtocol", appProtocol) }
            if let nodePort = port.nodePort { integer("nodePort", nodePort) }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
        first = false
        key("addresses")
        out.append(UInt8(ascii: "["))
        let cut = out.count
        var firstAddress = true
        for chunk in addresses.chunks {
            for index in chunk.indices {
                if !firstAddress { out.append(UInt8(ascii: ",")) }
                firstAddress = false
                write(chunk[index], into: &out)
            }
        }
        out.append(UInt8(ascii: "]"))
        if let healthCheck = service.healthCheck {
            key("healthCheck")
            JSONWriter.write(json(healthCheck), into: &out)
        }
        // Issue 13: written out (with their defaults) when the service has `host` addresses or sets them.
        if service.dnsRefreshSeconds != nil || service.dnsGraceSeconds != nil || service.addresses.hasHostAddress {
            integer("dnsRefreshSeconds", service.effectiveDNSRefreshSeconds)
            integer("dnsGraceSeconds", service.effectiveDNSGraceSeconds)
        }
        out.append(UInt8(ascii: "}"))
        return cut
    }

    /// Writes an address's JSON into `out` (`host` or `ip`, then `port`, `ports`, `hostname`,
    /// `zone`, `ready` and `servedPorts`), without building a `JSONValue`.
    public static func write(_ address: EndpointAddress, into out: inout [UInt8]) {
        // The fixed parts are byte arrays made once (appending an array is a copy; appending
        // a `String`'s `UTF8View` walks it): `{"ip":`, `,"port":`, `,"ready":true`, ….
        if let host = address.host, address.ip.isEmpty {
            out.append(contentsOf: AddressKeys.openHost)
            JSONWriter.writeString(host, into: &out)
        } else {
            out.append(contentsOf: AddressKeys.openIP)
            JSONWriter.writeString(address.ip, into: &out)
        }
        if let port = address.port {
            out.append(contentsOf: AddressKeys.port)
            out.appendDecimal(port)
        }
        if let ports = address.ports {
            out.append(contentsOf: AddressKeys.ports)
            out.append(UInt8(ascii: "{"))
            for (offset, name) in ports.keys.sorted().enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(name, into: &out)
                out.append(UInt8(ascii: ":"))
                out.appendDecimal(ports[name]!)
            }
            out.append(UInt8(ascii: "}"))
        }
        if let hostname = address.hostname {
            out.append(contentsOf: AddressKeys.hostname)
            JSONWriter.writeString(hostname, into: &out)
        }
        if let zone = address.zone {
            out.append(contentsOf: AddressKeys.zone)
            JSONWriter.writeString(zone, into: &out)
        }
        out.append(contentsOf: address.ready ? AddressKeys.readyTrue : AddressKeys.readyFalse)
        if let servedPorts = address.servedPorts {
            out.append(contentsOf: AddressKeys.servedPorts)
            out.append(UInt8(ascii: "["))
            for (offset, name) in servedPorts.enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(name, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The fixed bytes `write(_:into:)` puts around an address's values.
    private enum AddressKeys {
        static let openIP = Array(#"{"ip":"#.utf8)
        static let openHost = Array(#"{"host":"#.utf8)
        static let port = Array(#","port":"#.utf8)
        static let ports = Array(#","ports":"#.utf8)
        static let hostname = Array(#","hostname":"#.utf8)
        static let zone = Array(#","zone":"#.utf8)
        static let readyTrue = Array(#","ready":true"#.utf8)
        static let readyFalse = Array(#","ready":false"#.utf8)
        static let servedPorts = Array(#","servedPorts":"#.utf8)
    }

    /// Most chunks of addresses that differ, on either side, for which `bytes(_:previous:document:)`
    /// splices: one address added or removed changes one chunk, or splits it in two, or merges
    /// two. Changes further apart are encoded whole.
    static let maxSplicedChunks = 2

    /// `bytes(record)`, computed from `document`, the bytes of `previous` (`bytes(previous)`),
    /// when the two address lists differ in a few chunks (one address added or removed, as the
    /// address routes do): everything around the `addresses` array is encoded again from
    /// `record` (small, and whatever else changed), the chunks of addresses the two lists
    /// share (`EndpointAddressList`) are copied from `document`, and only the chunks that differ
    /// are encoded. The output is byte for byte `bytes(record)` (the writer is compact and
    /// deterministic, so an array's bytes are its elements' bytes joined by commas); whenever
    /// that cannot be shown cheaply (addresses changed in more than `maxSplicedChunks` chunks,
    /// or `document`'s addresses array is not where and as long as `previous`' addresses
    /// encode to, with `{` and `,` where the kept chunks meet the changed ones) the whole
    /// record is encoded. `record`'s address list keeps the sizes measured
    /// (see `EndpointAddressList.measures`), so that the next splice from it measures only
    /// the chunks changed since.
    public static func bytes(_ record: inout ServiceRecord, previous: ServiceRecord, document: [UInt8]) -> [UInt8] {
        spliced(&record, previous: previous, document: document)?.bytes ?? bytes(record)
    }

    /// `bytes(record, previous:document:)` with the patch that turns `document` into the result
    /// (see `DocumentPatch`): the edits of the splice when there was one, else the one edit
    /// between the two documents' common beginning and end.
    public static func bytesAndPatch(
        _ record: inout ServiceRecord, previous: ServiceRecord, document: [UInt8]
    ) -> (bytes: [UInt8], patch: DocumentPatch) {
        let (document, patch) = documentAndPatch(&record, previous: previous, document: DocumentBytes(document))
        return (document.flattened, patch)
    }

    /// `bytesAndPatch` on a document kept as segments (see `DocumentBytes`): a splice shares
    /// the bytes it keeps with `document` instead of copying them.
    ///
    /// A document of at most `maxEncodedWhole` bytes is encoded whole instead (`encodedWhole`):
    /// for a service of a dozen addresses that costs less than a splice.
    public static func documentAndPatch(
        _ record: inout ServiceRecord, previous: ServiceRecord, document: DocumentBytes
    ) -> (document: DocumentBytes, patch: DocumentPatch) {
        if document.count <= maxEncodedWhole { return encodedWhole(record, previous: previous, document: document) }
        if let spliced = spliced(&record, previous: previous, document: document) { return spliced }
        // Encoded whole, its patch cut at the addresses array as a small document's is: a change
        // of fields and addresses together (a `PUT`) makes two edits, not one spanning both.
        return encodedWhole(record, previous: previous, document: document)
    }

    /// `documentAndPatch` for a small document (or one the splice refuses): `record` encoded whole, and the patch as two
    /// edits, one of the fields before the addresses array and one from the array on, so that
    /// an address added or removed still makes a small patch besides the new revision and time
    /// (one edit from the revision field to the address would be most of the document).
    static func encodedWhole(
        _ record: ServiceRecord, previous: ServiceRecord, document: DocumentBytes
    ) -> (document: DocumentBytes, patch: DocumentPatch) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(document.count + 256)
        let cut = write(record, addresses: record.service.addresses, into: &bytes)
        // Where the stored document's array opens (any cut makes a right patch; this one a small
        // one): found in its bytes, else where the previous record's fields end.
        let old = document.flattened
        let oldCut =
            addressesCut(in: old)
            ?? {
                var frame: [UInt8] = []
                frame.reserveCapacity(512)
                return Swift.min(write(previous, addresses: [], into: &frame), old.count)
            }()
        let edits = [
            DocumentPatch.Edit(offset: 0, removed: oldCut, inserted: Array(bytes[..<cut])),
            DocumentPatch.Edit(offset: oldCut, removed: old.count - oldCut, inserted: Array(bytes[cut...])),
        ]
        return (DocumentBytes(bytes), DocumentPatch(minimizing: edits, of: old))
    }

    /// The position just after the `[` that opens the addresses array of a document this
    /// encoder wrote (what `write(_:addresses:into:)` returns), found as the first
    /// `"addresses":[` in its bytes: no member before the array can hold it (every `"` inside a
    /// string is escaped, and a string is followed by `:[` only as the top-level `addresses`
    /// key: a label's or annotation's key is followed by `:"`, a port name is a value). Nil when
    /// there is none. (A document of another encoder still gets a correct patch, only a larger
    /// one.) Searching reads the bytes once, where the alternative encodes the fields before
    /// the array again.
    static func addressesCut(in document: [UInt8]) -> Int? {
        addressesCut(in: document[...])
    }

    /// `addressesCut(in:)` in the bytes of `bytes`, as an offset from its start. Looks for the
    /// marker's last byte, `[` (rare in a document: the openings of arrays), and compares the
    /// bytes before it only there; the first match ends the first occurrence.
    static func addressesCut(in bytes: ArraySlice<UInt8>) -> Int? {
        let marker = addressesMarker
        let before = marker.count - 1
        var index = bytes.startIndex + before
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "["), bytes[(index - before)..<index].elementsEqual(marker[..<before]) {
                return index + 1 - bytes.startIndex
            }
            index += 1
        }
        return nil
    }

    /// Where a stored document's addresses array lies: `cut` bytes before it (through its
    /// `[`), `tail` bytes after it (from its `]`).
    struct OldFrame {
        var cut: Int
        var tail: Int
    }

    private static let addressesMarker = Array(#""addresses":["#.utf8)

    /// The largest document `documentAndPatch` encodes whole rather than splices, in bytes
    /// (about 20 IPv4 addresses with ports): measured in a release build, a splice of one
    /// address costs ~5.5 µs whatever the size, the whole encoding ~4.8 µs at 1,000 bytes,
    /// ~5.5 µs at 1,200 and ~9 µs at 2,300.
    static let maxEncodedWhole = 1_200

    /// `spliced(_:previous:document:)` on one array, as one array.
    static func spliced(_ record: inout ServiceRecord, previous: ServiceRecord, document: [UInt8]) -> (bytes: [UInt8], patch: DocumentPatch)? {
        spliced(&record, previous: previous, document: DocumentBytes(document)).map { ($0.document.flattened, $0.patch) }
    }

    static func spliced(
        _ record: inout ServiceRecord, previous: ServiceRecord, document: DocumentBytes
    ) -> (document: DocumentBytes, patch: DocumentPatch)? {
        let old = previous.service.addresses
        var new = record.service.addresses
        // The chunks both lists have at their start (`shared.start`) and end, compared by
        // identity while they are still shared; the ones between differ.
        let (oldChunks, newChunks) = (old.chunks, new.chunks)
        let most = Swift.min(oldChunks.count, newChunks.count)
        var shared = (start: 0, end: 0)
        while shared.start < most && oldChunks[shared.start] == newChunks[shared.start] { shared.start += 1 }
        while shared.end < most - shared.start && oldChunks[oldChunks.count - 1 - shared.end] == newChunks[newChunks.count - 1 - shared.end] {
            shared.end += 1
        }
        let oldChanged = shared.start..<(oldChunks.count - shared.end)
        let newChanged = shared.start..<(newChunks.count - shared.end)
        guard oldChanged.count <= maxSplicedChunks && newChanged.count <= maxSplicedChunks else { return nil }
        // Each chunk measured once (see `EndpointAddressList.measures`): the old list's from
        // what it knows, the new list's shared chunks from the old ones, its changed ones now.
        func measure(_ chunk: [EndpointAddress]) -> EndpointAddressList.ChunkMeasure {
            var measure = EndpointAddressList.ChunkMeasure(encodedBytes: 0, hasHost: false)
            for index in chunk.indices {
                measure.encodedBytes += encodedLength(chunk, index)
                measure.hasHost = measure.hasHost || chunk[index].host != nil
            }
            return measure
        }
        let oldMeasures = oldChunks.indices.map { old.measures[$0] ?? measure(oldChunks[$0]) }
        // One address added to or removed from one chunk (what the address routes do, unless
        // the chunk splits or merges): only that address is encoded, and its chunk's size
        // follows from the old one.
        let single = oldChanged.count == 1 && newChanged.count == 1 ? singleChange(oldChunks[shared.start], newChunks[shared.start]) : nil
        if let single {
            let oldMeasure = oldMeasures[shared.start]
            let length = encodedLength(single.address)
            new.measures[shared.start] =
                single.added
                ? .init(encodedBytes: oldMeasure.encodedBytes + length, hasHost: oldMeasure.hasHost || single.address.host != nil)
                : single.address.host == nil
                    ? .init(encodedBytes: oldMeasure.encodedBytes - length, hasHost: oldMeasure.hasHost) : measure(newChunks[shared.start])
        } else {
            for chunk in newChanged { new.measures[chunk] = measure(newChunks[chunk]) }
        }
        for chunk in 0..<shared.start { new.measures[chunk] = oldMeasures[chunk] }
        for back in 0..<shared.end { new.measures[newChunks.count - 1 - back] = oldMeasures[oldChunks.count - 1 - back] }
        record.service.addresses = new
        // The stored array's bytes, `region` of `document`: from just after its `"addresses":[`
        // (looked for in the first segment, which holds the fields before the array unless
        // they are very long: a splice's first segment is its new frame's head) as long as the
        // measures of `previous`' chunks say. What surrounds it is replaced by the new record's
        // frame whole, so its bytes need no check against `previous`; the array's are: it opens
        // with `{` and ends with `}]` followed by `,` or `}` (a `]` inside an address or in a
        // later member is preceded by `"` or a digit), and below, where the shared chunks meet
        // the changed ones, elements open with `{` after a comma. A document whose array is
        // not where or as long as `previous`' addresses encode to is encoded whole instead.
        let total = oldMeasures.reduce(0) { $0 + $1.encodedBytes } + Swift.max(old.count - 1, 0)
        guard let head = document.segments.first,
            let cut = addressesCut(in: head) ?? (document.segments.count > 1 ? addressesCut(in: document.flattened) : nil),
            cut + total + 1 < document.count, document[cut + total] == UInt8(ascii: "]"),
            document[cut + total + 1] == UInt8(ascii: ",") || document[cut + total + 1] == UInt8(ascii: "}"),
            old.isEmpty || (document[cut] == UInt8(ascii: "{") && document[cut + total - 1] == UInt8(ascii: "}"))
        else { return nil }
        let region = cut..<(cut + total)
        let oldFrame = OldFrame(cut: cut, tail: document.count - region.upperBound)
        // What surrounds the new array: the new record encoded with an empty one, cut after its `[`.
        var newFrame: (bytes: [UInt8], cut: Int) = ([], 0)
        newFrame.bytes.reserveCapacity(cut + oldFrame.tail + 64)
        newFrame.cut = write(record, addresses: [], into: &newFrame.bytes)
        // The bytes kept from the stored array at its start (through the comma after the last
        // shared chunk) and at its end (from the comma before the first shared chunk there).
        let startElements = oldChunks[..<shared.start].reduce(0) { $0 + $1.count }
        let endElements = oldChunks[(oldChunks.count - shared.end)...].reduce(0) { $0 + $1.count }
        var kept = (start: 0, end: 0)
        if startElements > 0 { kept.start = oldMeasures[..<shared.start].reduce(0) { $0 + $1.encodedBytes } + startElements }
        if endElements > 0 { kept.end = oldMeasures[(oldChunks.count - shared.end)...].reduce(0) { $0 + $1.encodedBytes } + endElements }
        // The kept ends meet (no old address between them, so both counted the one comma
        // between them): encoded whole (the address routes never get here).
        if kept.start + kept.end > region.count { return nil }
        func at(_ offset: Int) -> UInt8? { offset >= 0 && offset < region.count ? document[region.lowerBound + offset] : nil }
        if kept.start > 0 && (at(kept.start - 1) != UInt8(ascii: ",") || at(0) != UInt8(ascii: "{")) { return nil }
        if kept.end > 0 && (at(region.count - kept.end) != UInt8(ascii: ",") || at(region.count - kept.end + 1) != UInt8(ascii: "{")) {
            return nil
        }
        if let single {
            return splicedSingle(
                single, chunk: oldChunks[shared.start], at: region.lowerBound + kept.start, oldFrame: oldFrame, newFrame: newFrame,
                document: document)
        }
        let newElements = newChanged.reduce(0) { $0 + newChunks[$1].count }
        // The kept start ends with a comma and the kept end starts with one: without new
        // elements between them, one of the two goes.
        var keptStart = kept.start
        if keptStart > 0 && newElements == 0 && kept.end == 0 { keptStart -= 1 }  // ends the array: no comma
        var middle: [UInt8] = []
        middle.reserveCapacity(64 * newElements)
        var first = true
        for chunk in newChanged {
            for offset in newChunks[chunk].indices {
                if !first { middle.append(UInt8(ascii: ",")) }
                first = false
                write(newChunks[chunk][offset], into: &middle)
            }
        }
        var keptEnd = kept.end
        if keptEnd > 0 && first { keptEnd -= 1 }  // nothing before it: no comma
        return replacing(
            (region.lowerBound + keptStart)..<(region.upperBound - keptEnd), with: middle, in: document, oldFrame: oldFrame, newFrame: newFrame)
    }

    /// `document` with the bytes `removed` (inside its address array) replaced by `inserted`
    /// and its frame (what surrounds the array) by `newFrame`, and the patch that does the same:
    /// the bytes kept are the previous document's own (its segments, sliced), not copied.
    private static func replacing(
        _ removed: Range<Int>, with inserted: [UInt8], in document: DocumentBytes, oldFrame: OldFrame,
        newFrame: (bytes: [UInt8], cut: Int)
    ) -> (document: DocumentBytes, patch: DocumentPatch) {
        let oldTail = oldFrame.tail
        var segments: [ArraySlice<UInt8>] = []
        segments.reserveCapacity(document.segments.count + 4)
        segments.append(newFrame.bytes[..<newFrame.cut])
        document.appendSlices(oldFrame.cut..<removed.lowerBound, to: &segments)
        segments.append(inserted[...])
        document.appendSlices(removed.upperBound..<(document.count - oldTail), to: &segments)
        segments.append(newFrame.bytes[newFrame.cut...])
        var out = DocumentBytes(segments: segments, ownBytes: newFrame.bytes.count + inserted.count)
        if out.segments.count > DocumentBytes.maxSegments || (out.count <= DocumentBytes.maxCopiedWhole && out.segments.count > 1) {
            out = DocumentBytes(out.flattened)
        }
        let patch = DocumentPatch(
            minimizing: [
                .init(offset: 0, removed: oldFrame.cut, inserted: Array(newFrame.bytes[..<newFrame.cut])),
                .init(offset: removed.lowerBound, removed: removed.count, inserted: inserted),
                .init(offset: document.count - oldTail, removed: oldTail, inserted: Array(newFrame.bytes[newFrame.cut...])),
            ],
            removing: [
                document.contiguousBytes(0..<oldFrame.cut), document.contiguousBytes(removed),
                document.contiguousBytes((document.count - oldTail)..<document.count),
            ])
        return (out, patch)
    }

    /// The one address `new` has more (`added`) or fewer than `old`, at `index` (of the longer
    /// one), the others equal and in the same order; nil when the two differ otherwise.
    static func singleChange(_ old: [EndpointAddress], _ new: [EndpointAddress]) -> (index: Int, address: EndpointAddress, added: Bool)? {
        guard abs(old.count - new.count) == 1 else { return nil }
        let (longer, shorter) = new.count > old.count ? (new, old) : (old, new)
        // Compared in place (`EndpointAddress.same`): copying each address out of its array
        // to compare it was most of a splice's time.
        var index = 0
        while index < shorter.count && EndpointAddress.same(shorter, index, longer, index) { index += 1 }
        var rest = index
        while rest < shorter.count && EndpointAddress.same(shorter, rest, longer, rest + 1) { rest += 1 }
        guard rest == shorter.count else { return nil }
        return (index, longer[index], new.count > old.count)
    }

    /// The splice of `single` into `chunk`, whose first address starts at offset `start` of
    /// `document`: the bytes before and after the address (with the comma next to it) are
    /// kept, and only the address is encoded (added) or its bytes left out (removed).
    private static func splicedSingle(
        _ single: (index: Int, address: EndpointAddress, added: Bool), chunk: [EndpointAddress], at start: Int,
        oldFrame: OldFrame, newFrame: (bytes: [UInt8], cut: Int), document: DocumentBytes
    ) -> (document: DocumentBytes, patch: DocumentPatch)? {
        // Where the chunk's address `index` starts: each address before it and its comma.
        var offset = start
        for position in 0..<Swift.min(single.index, chunk.count) { offset += encodedLength(chunk, position) + 1 }
        let oldTail = oldFrame.tail
        var removed = offset..<offset
        var inserted: [UInt8] = []
        if single.added {
            var address: [UInt8] = []
            write(single.address, into: &address)
            if single.index < chunk.count {
                // Before the address now at `index`: the new one and a comma.
                guard offset < document.count, document[offset] == UInt8(ascii: "{") else { return nil }
                inserted = address + [UInt8(ascii: ",")]
            } else {
                // After the chunk's last address (the offset counted its comma): a comma and the new one.
                removed = (offset - 1)..<(offset - 1)
                inserted = [UInt8(ascii: ",")] + address
            }
        } else {
            let length = encodedLength(single.address)
            guard chunk.count > 1, offset + length < document.count, document[offset] == UInt8(ascii: "{") else { return nil }
            // The address and the comma after it, or for the chunk's last one the comma before it.
            removed = single.index < chunk.count - 1 ? offset..<(offset + length + 1) : (offset - 1)..<(offset + length)
            guard document[single.index < chunk.count - 1 ? offset + length : offset - 1] == UInt8(ascii: ",") else { return nil }
        }
        guard removed.lowerBound >= oldFrame.cut, removed.upperBound <= document.count - oldTail else { return nil }
        return replacing(removed, with: inserted, in: document, oldFrame: oldFrame, newFrame: newFrame)
    }

    /// The number of bytes `JSONWriter` writes for `json(address)`, computed without writing
    /// them (the splice finds where the shared chunks lie in the stored document with it).
    static func encodedLength(_ address: EndpointAddress) -> Int {
        encodedLength([address], 0)
    }

    /// `encodedLength(addresses[index])`, reading the fields in place (see `EndpointAddress.same`).
    static func encodedLength(_ addresses: [EndpointAddress], _ index: Int) -> Int {
        // `{` … `}`, and `"key":` per member plus its value; members after the first take a comma.
        func member(_ key: Int, _ value: Int) -> Int { key + 3 + value + 1 }
        var length = 1
        if addresses[index].host != nil && addresses[index].ip.isEmpty, let host = addresses[index].host {
            length += member(4, stringLength(host))
        } else if case .success = addresses[index].parsedIP {
            // Text that parses as an IP is hex digits, dots and colons: nothing to escape.
            length += member(2, addresses[index].ip.utf8.count + 2)
        } else {
            length += member(2, stringLength(addresses[index].ip))
        }
        if let port = addresses[index].port { length += member(4, digits(port)) }
        length += member(5, addresses[index].ready ? 4 : 5)
        if addresses[index].ports == nil && addresses[index].hostname == nil && addresses[index].zone == nil
            && addresses[index].servedPorts == nil
        {
            return length
        }
        let address = addresses[index]
        if let ports = address.ports {
            var object = 2 + max(ports.count - 1, 0)
            for (name, port) in ports { object += stringLength(name) + 1 + digits(port) }
            length += member(5, object)
        }
        if let hostname = address.hostname { length += member(8, stringLength(hostname)) }
        if let zone = address.zone { length += member(4, stringLength(zone)) }
        if let served = address.servedPorts {
            length += member(11, 2 + max(served.count - 1, 0) + served.reduce(0) { $0 + stringLength($1) })
        }
        return length  // the members' commas (one fewer than the members) and `}` are in `member`'s + 1
    }

    /// Bytes of `JSONWriter.writeString(text)`: the quotes, and each escape's extra bytes.
    private static func stringLength(_ text: String) -> Int {
        var length = 2
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x0D, 0x09: length += 2
            case 0x00..<0x20: length += 6
            default: length += 1
            }
        }
        return length
    }

    /// Bytes of a decimal integer as JSON writes it.
    private static func digits(_ value: Int) -> Int {
        guard value >= 0 else { return String(value).utf8.count }
        var (count, rest) = (1, value)
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }

    public static func json(_ port: ServicePort) -> JSONValue {
        var object = JSONObject()
        if let name = port.name { object.appendNew("name", .string(name)) }
        object.appendNew("protocol", .string(port.protocol.rawValue))
        object.appendNew("port", .integer(port.port))
        object.appendNew("targetPort", .integer(port.targetPort))
        if let appProtocol = port.appProtocol { object.appendNew("appProtocol", .string(appProtocol)) }
        if let nodePort = port.nodePort { object.appendNew("nodePort", .integer(nodePort)) }
        return .object(object)
    }

    /// An address as a `JSONValue`: `write(_:into:)`'s bytes read back.
    public static func json(_ address: EndpointAddress) -> JSONValue {
        var out: [UInt8] = []
        write(address, into: &out)
        return parsed(out)
    }

    /// Liveness (issue 13): the health check with its defaults written out.
    public static func json(_ check: HealthCheck) -> JSONValue {
        var object = JSONObject()
        object.appendNew("type", .string(check.type.rawValue))
        switch check.port {
        case .number(let number)?: object.appendNew("port", .integer(number))
        case .name(let name)?: object.appendNew("port", .string(name))
        case nil: break
        }
        if check.type != .tcp {
            object.appendNew("path", .string(check.path ?? "/"))
            if let host = check.host { object.appendNew("host", .string(host)) }
            object.appendNew("expectedStatuses", .array(check.effectiveExpectedStatuses.map { .string(HealthCheck.text($0)) }))
        }
        if check.type == .https { object.appendNew("tlsSkipVerify", .bool(check.tlsSkipVerify)) }
        object.appendNew("intervalSeconds", .integer(check.intervalSeconds))
        object.appendNew("timeoutSeconds", .integer(check.timeoutSeconds))
        object.appendNew("healthyThreshold", .integer(check.healthyThreshold))
        object.appendNew("unhealthyThreshold", .integer(check.unhealthyThreshold))
        object.appendNew("startUnhealthy", .bool(check.startUnhealthy))
        object.appendNew("failOpen", .bool(check.failOpen))
        return .object(object)
    }
}
