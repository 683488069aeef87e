import Testing

@testable import RegistryCore

/// Issue 14: documents kept as segments that revisions share (`DocumentBytes`) read, slice,
/// compare and flatten as the bytes they stand for, and a chain of spliced revisions stays
/// byte for byte the whole encoding while sharing what it keeps.
struct DocumentBytesTests {
    @Test func segmentsReadAsTheirConcatenation() {
        let a: [UInt8] = Array("{\"a\":[".utf8)
        let b: [UInt8] = Array("1,2,3".utf8)
        let c: [UInt8] = Array("]}".utf8)
        let whole = a + b + c
        let document = DocumentBytes(segments: [a[...], [][...], b[1...], b[..<1], c[...]], ownBytes: 2)
        let reordered: [UInt8] = a + Array(b[1...]) + Array(b[..<1]) + c
        #expect(document.count == reordered.count && document.segments.count == 4)  // the empty one dropped
        #expect(document.ownBytes == 2 && DocumentBytes(whole).ownBytes == whole.count)
        #expect(document.flattened == reordered)
        #expect((0..<document.count).map { document[$0] } == reordered)
        for range in [0..<0, 0..<3, 2..<9, 5..<reordered.count, 6..<7, 0..<reordered.count] {
            #expect(document.bytes(range) == Array(reordered[range]), "\(range)")
            #expect(document.slices(range).flatMap { $0 } == Array(reordered[range]), "\(range)")
            #expect(document.bytes(range, equal: reordered[range]), "\(range)")
            #expect(Array(document.contiguousBytes(range)) == Array(reordered[range]), "\(range)")
        }
        // Within one segment, a slice of it rather than a copy.
        let inFirst = document.contiguousBytes(1..<4)
        #expect(inFirst.withUnsafeBufferPointer { $0.baseAddress } == a.withUnsafeBufferPointer { $0.baseAddress.map { $0 + 1 } })
        #expect(!document.bytes(0..<3, equal: Array("{\"b".utf8)))
        #expect(!document.bytes(0..<3, equal: Array("{\"".utf8)))
        // Equal by bytes, whatever the segments; copies without reading them.
        #expect(document == DocumentBytes(reordered))
        #expect(document != DocumentBytes(whole))
        #expect(document == DocumentBytes(segments: [reordered[..<4], reordered[4...]], ownBytes: 0))
        #expect(document != DocumentBytes(segments: [reordered[..<4], reordered.dropFirst(4).dropLast()], ownBytes: 0))
        let copy = document
        #expect(copy == document)
        // One array in, the same array out.
        let one = DocumentBytes(whole)
        #expect(one.flattened == whole && one.segments.count == 1)
        #expect(DocumentBytes([]).isEmpty && DocumentBytes([]).flattened == [])
    }

    /// 400 revisions of a 3,000-address service, each spliced from the one before as
    /// segments: every one is `bytes(record)`, its patch rebuilds it from the one before, and
    /// the segments stay bounded (past `maxSegments` a splice writes the document as one array).
    @Test func splicedRevisionsShareSegmentsAndStayExact() {
        var (service, random) = IncrementalAddressTests.service(3_000, seed: 7)
        var record = IncrementalAddressTests.record(service, revision: 1)
        var document = DocumentBytes(ServiceEncoder.bytes(record))
        var flat = document.flattened
        var mostSegments = 0
        var shared = 0
        for step in 0..<400 {
            let previous = record
            if step % 3 == 2 {
                service.addresses.remove(at: Int.random(in: 0..<service.addresses.count, using: &random))
            } else {
                let address = IncrementalAddressTests.address(&random)
                guard ServiceValidator.validateAdding(address, to: service).isEmpty else { continue }
                service.insertNormalized(address)
            }
            record = IncrementalAddressTests.record(service, revision: previous.revision + 1)
            let whole = ServiceEncoder.bytes(record)
            var next = record
            let (spliced, patch) = ServiceEncoder.documentAndPatch(&next, previous: previous, document: document)
            #expect(spliced.flattened == whole, "step \(step)")
            #expect(spliced.count == whole.count)
            var rebuilt = flat
            #expect(patch.apply(inPlace: &rebuilt) && rebuilt == whole, "step \(step)")
            #expect(patch.insertedBytes < 10_000, "step \(step)")
            #expect(spliced.segments.count <= DocumentBytes.maxSegments)
            // Kept bytes lie in the previous document's buffers: shared, not copied.
            let previousRanges = document.segments.map { segment in
                segment.withUnsafeBufferPointer { (start: Int(bitPattern: $0.baseAddress), count: $0.count) }
            }
            let sharedBytes = spliced.segments.reduce(0) { total, segment in
                segment.withUnsafeBufferPointer { pointer in
                    let start = Int(bitPattern: pointer.baseAddress)
                    let inside = previousRanges.contains { start >= $0.start && start + pointer.count <= $0.start + $0.count }
                    return inside ? total + pointer.count : total
                }
            }
            if sharedBytes * 10 > spliced.count * 9 { shared += 1 }
            // Its own bytes are the few it encoded (unless it was written as one array again).
            #expect(spliced.segments.count == 1 ? spliced.ownBytes == spliced.count : spliced.ownBytes < 20_000, "step \(step)")
            mostSegments = max(mostSegments, spliced.segments.count)
            record = next
            document = spliced
            flat = whole
        }
        #expect(shared > 300)
        #expect(mostSegments > 10)
    }

    /// A small document (at most `maxCopiedWhole` bytes, a service of a few dozen addresses
    /// changed often) is still spliced but kept as one array: no pass over it pays a reference
    /// count per segment of a few bytes.
    @Test func smallSplicedDocumentsAreOneArray() {
        var (service, random) = IncrementalAddressTests.service(60, seed: 5)
        var record = IncrementalAddressTests.record(service, revision: 1)
        var document = DocumentBytes(ServiceEncoder.bytes(record))
        var steps = 0
        while document.count < DocumentBytes.maxCopiedWhole - 200 {
            let previous = record
            let address = IncrementalAddressTests.address(&random)
            guard ServiceValidator.validateAdding(address, to: service).isEmpty else { continue }
            service.insertNormalized(address)
            record = IncrementalAddressTests.record(service, revision: previous.revision + 1)
            var next = record
            let (spliced, patch) = ServiceEncoder.documentAndPatch(&next, previous: previous, document: document)
            #expect(spliced.flattened == ServiceEncoder.bytes(record), "step \(steps)")
            #expect(patch.apply(to: document.flattened) == spliced.flattened, "step \(steps)")
            #expect(spliced.segments.count == 1 && spliced.ownBytes == spliced.count, "step \(steps)")
            record = next
            document = spliced
            steps += 1
        }
        #expect(steps > 50)
    }

    /// One address added or removed at every kind of place (the first and last address of the
    /// list and of each chunk, an address given by host) is spliced alone: only it is encoded
    /// (a few hundred bytes of its own), and the result is byte for byte `bytes(record)`; a
    /// chunk that splits or merges goes the general way, just as exact.
    @Test func oneAddressAtEveryPlaceOfAChunkIsSplicedAlone() {
        var (service, random) = IncrementalAddressTests.service(700, seed: 3)
        var record = IncrementalAddressTests.record(service, revision: 1)
        var document = DocumentBytes(ServiceEncoder.bytes(record))
        var positions: [Int] = []
        var end = 0
        for chunk in service.addresses.chunks {
            positions += [end, end + 1, end + chunk.count - 1]
            end += chunk.count
        }
        var alone = 0
        for (step, position) in positions.enumerated() {
            for change in 0..<3 {
                let previous = record
                var address = IncrementalAddressTests.address(&random)
                if step % 4 == 0 { address = EndpointAddress(host: "db-\(step).example.com") }
                switch change {
                case 0: service.addresses.insert(address, at: Swift.min(position, service.addresses.count))
                case 1: service.addresses.remove(at: Swift.min(position, service.addresses.count - 1))
                default: service.addresses.append(address)  // the list's last chunk, at its end
                }
                record = IncrementalAddressTests.record(service, revision: previous.revision + 1)
                let whole = ServiceEncoder.bytes(record)
                var next = record
                let (spliced, patch) = ServiceEncoder.documentAndPatch(&next, previous: previous, document: document)
                #expect(spliced.flattened == whole, "step \(step) change \(change)")
                #expect(patch.apply(to: document.flattened) == whole, "step \(step) change \(change)")
                if previous.service.addresses.chunks.count == record.service.addresses.chunks.count {
                    #expect(spliced.ownBytes < 1_500, "step \(step) change \(change)")
                    alone += 1
                }
                record = next
                document = spliced
            }
        }
        #expect(alone > positions.count * 2)
    }
}
