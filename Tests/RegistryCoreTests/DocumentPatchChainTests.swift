import Testing

@testable import RegistryCore

/// Issue 14: a chain of patches rebuilt on a document cut into chunks
/// (`DocumentPatch.apply(_:to:)`) gives the very bytes that applying the patches one by one
/// gives, for edits anywhere: at the ends, across chunk boundaries, removing whole chunks,
/// inserting more than a chunk.
@Suite struct DocumentPatchChainTests {
    /// A random patch of `document`: up to three edits, in order, not overlapping.
    static func randomPatch(of document: [UInt8], using generator: inout SeededGenerator) -> DocumentPatch {
        var edits: [DocumentPatch.Edit] = []
        var position = 0
        for _ in 0..<Int.random(in: 1...3, using: &generator) where position <= document.count {
            // Now and then exactly at a chunk's boundary, or right after the edit before.
            var offset = Int.random(in: position...document.count, using: &generator)
            switch Int.random(in: 0..<8, using: &generator) {
            case 0: offset = min(document.count, (offset / PatchedChunks.chunkBytes + 1) * PatchedChunks.chunkBytes)
            case 1: offset = position
            default: break
            }
            // Mostly small edits (an address), sometimes spanning chunks or growing past two.
            let large = Int.random(in: 0..<10, using: &generator) == 0
            let removed = Int.random(in: 0...min(document.count - offset, large ? 10_000 : 40), using: &generator)
            let length = Int.random(in: 0...(large ? 12_000 : 40), using: &generator)
            let inserted = (0..<length).map { _ in UInt8.random(in: 32...126, using: &generator) }
            edits.append(DocumentPatch.Edit(offset: offset, removed: removed, inserted: inserted))
            position = offset + removed
        }
        return DocumentPatch(minimizing: edits, of: document)
    }

    @Test(arguments: [0, 1, 100, 20_000, 300_000])
    func aChainGivesWhatEachPatchInTurnGives(size: Int) {
        var generator = SeededGenerator(state: UInt64(size) + 7)
        let base = (0..<size).map { _ in UInt8.random(in: 32...126, using: &generator) }
        var expected = base
        var patches: [DocumentPatch] = []
        for _ in 0..<300 {
            let patch = Self.randomPatch(of: expected, using: &generator)
            #expect(patch.apply(inPlace: &expected))
            patches.append(patch)
        }
        for count in [0, 1, 3, 4, 50, 300] {
            var rebuilt = base
            var oneByOne = base
            for patch in patches.prefix(count) { _ = patch.apply(inPlace: &oneByOne) }
            #expect(DocumentPatch.apply(Array(patches.prefix(count)), to: &rebuilt))
            #expect(rebuilt == oneByOne, "size \(size), \(count) patches")
        }
    }

    /// A patch of the edits given as they are (not minimized), through the stored form.
    static func raw(_ edits: [(offset: Int, removed: Int, inserted: String)]) -> DocumentPatch {
        var bytes: [UInt8] = []
        for edit in edits {
            for value in [edit.offset, edit.removed, edit.inserted.utf8.count] {
                for shift in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: UInt64(value) >> (8 * shift))) }
            }
            bytes.append(contentsOf: edit.inserted.utf8)
        }
        return DocumentPatch(serialized: bytes)!
    }

    /// Edits at the places a chunked document has edges: chunk boundaries, the very end, two
    /// edits meeting, the same offset twice, everything removed, more than two chunks inserted.
    @Test func edgesGiveWhatEachPatchInTurnGives() {
        let chunk = PatchedChunks.chunkBytes
        let base = (0..<(5 * chunk + 3)).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        let big = String(repeating: "x", count: 3 * chunk)
        let chains: [[DocumentPatch]] = [
            [
                Self.raw([(chunk, 0, "1"), (2 * chunk, 1, "2")]), Self.raw([(chunk - 1, 2, ""), (3 * chunk, chunk, "3")]),
                Self.raw([(4 * chunk + 2, 0, "end")]), Self.raw([(0, 0, "start"), (0, 3, "s")]),
            ],
            [
                Self.raw([(10, 5, "m"), (15, 0, "n"), (15, 2, "o")]), Self.raw([(chunk - 2, 2 * chunk + 4, big)]),
                Self.raw([(chunk, 0, big), (2 * chunk, chunk, "")]), Self.raw([(1, 0, "p")]), Self.raw([(2, 3, "")]),
            ],
            [
                Self.raw([(0, 5 * chunk + 3, "")]), Self.raw([(0, 0, big)]), Self.raw([(3 * chunk, 0, "tail")]),
                Self.raw([(0, 3 * chunk + 4, "q")]), Self.raw([(1, 0, big)]),
            ],
        ]
        for (index, chain) in chains.enumerated() {
            var oneByOne = base
            for patch in chain { #expect(patch.apply(inPlace: &oneByOne), "chain \(index)") }
            var rebuilt = base
            #expect(DocumentPatch.apply(chain, to: &rebuilt))
            #expect(rebuilt == oneByOne, "chain \(index)")
        }
        // A patch whose first edit fits and whose second does not (past the end once the
        // patches before it removed bytes): the chain fails, the document is as it was.
        let failing = [Self.raw([(0, 10, "")]), Self.raw([(1, 0, "a")]), Self.raw([(2, 0, "b")]), Self.raw([(3, 1, "c"), (5 * chunk - 6, 2, "")])]
        var document = base
        #expect(!DocumentPatch.apply(failing, to: &document))
        #expect(document == base)
    }

    /// A patch that does not fit the document the ones before it made (here: one edit past its
    /// end) fails the chain and leaves the document as it was.
    @Test(arguments: [1_000, 100_000])
    func aPatchThatDoesNotFitLeavesTheDocumentUnchanged(size: Int) {
        let base = [UInt8](repeating: UInt8(ascii: "a"), count: size)
        let shrink = DocumentPatch(minimizing: [DocumentPatch.Edit(offset: 0, removed: 10, inserted: [])], of: base)
        let grow = DocumentPatch(minimizing: [DocumentPatch.Edit(offset: 5, removed: 0, inserted: [UInt8(ascii: "b")])], of: base)
        let pastTheEnd = DocumentPatch(minimizing: [DocumentPatch.Edit(offset: size - 5, removed: 0, inserted: [UInt8(ascii: "b")])], of: base)
        var document = base
        #expect(!DocumentPatch.apply([grow, shrink, grow, shrink, shrink, pastTheEnd], to: &document))
        #expect(document == base)
        #expect(DocumentPatch.apply([grow, shrink, grow, shrink, shrink], to: &document))
        #expect(document.count == size - 28)
    }
}
