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
            let offset = Int.random(in: position...document.count, using: &generator)
            // Mostly small edits (an address), sometimes spanning chunks or growing past two.
            let large = Int.random(in: 0..<10, using: &generator) == 0
            let removed = Int.random(in: 0...min(document.count - offset, large ? 10_000 : 40), using: &generator)
            let length = Int.random(in: 0...(large ? 12_000 : 40), using: &generator)
            let inserted = (0..<length).map { _ in UInt8.random(in: 32...126, using: &generator) }
            edits.append(DocumentPatch.Edit(offset: offset, removed: removed, inserted: inserted))
            position = offset + removed + 1
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
