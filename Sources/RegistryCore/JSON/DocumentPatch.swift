/// Byte edits that turn one document into another, for keeping a service's history as what
/// changed per revision (issue 14) instead of a second copy of the whole document.
///
/// Applying a patch is plain byte copying, so a document rebuilt from its predecessor and the
/// patch made from the two is the very bytes that were stored, whatever they encode.
public struct DocumentPatch: Sendable, Equatable {
    /// One edit: `removed` bytes at `offset` (into the old document) replaced by `inserted`.
    public struct Edit: Sendable, Equatable {
        public var offset: Int
        public var removed: Int
        public var inserted: [UInt8]

        public init(offset: Int, removed: Int, inserted: [UInt8]) {
            self.offset = offset
            self.removed = removed
            self.inserted = inserted
        }
    }

    /// In increasing `offset` order, not overlapping; none is empty.
    public private(set) var edits: [Edit]

    /// Edits that each replace `old[offset..<offset + removed]` by `inserted`, made as small as
    /// they can be: the bytes an edit leaves unchanged at its ends are dropped, and an edit
    /// that changes nothing with them. The edits must be in order and not overlap.
    public init(minimizing edits: [Edit], of old: [UInt8]) {
        self.edits = edits.compactMap { edit in Self.minimized(edit, removing: old[edit.offset..<(edit.offset + edit.removed)]) }
    }

    /// `init(minimizing:of:)` for a document kept as segments: only the bytes the edits
    /// remove are read.
    public init(minimizing edits: [Edit], of old: DocumentBytes) {
        self.edits = edits.compactMap { edit in Self.minimized(edit, removing: old.bytes(edit.offset..<(edit.offset + edit.removed))[...]) }
    }

    /// `init(minimizing:of:)` with the bytes each edit replaces given (`removed[i]` for
    /// `edits[i]`, as many as it removes), so that nothing is read or copied from the document:
    /// a splice knows them (the bytes it cuts out of the document, sliced from its segments).
    public init(minimizing edits: [Edit], removing removed: [ArraySlice<UInt8>]) {
        precondition(edits.count == removed.count && zip(edits, removed).allSatisfy { $0.removed == $1.count }, "removed bytes do not fit the edits")
        self.edits = zip(edits, removed).compactMap { Self.minimized($0, removing: $1) }
    }

    /// `edit` without the bytes it leaves unchanged at its ends (`removed`: the bytes it
    /// replaces); nil when it changes nothing.
    private static func minimized(_ edit: Edit, removing removed: ArraySlice<UInt8>) -> Edit? {
        let base = removed.startIndex
        var prefix = 0
        while prefix < removed.count && prefix < edit.inserted.count && removed[base + prefix] == edit.inserted[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < removed.count - prefix && suffix < edit.inserted.count - prefix
            && removed[base + removed.count - 1 - suffix] == edit.inserted[edit.inserted.count - 1 - suffix]
        {
            suffix += 1
        }
        let trimmed = Edit(
            offset: edit.offset + prefix, removed: removed.count - prefix - suffix,
            inserted: Array(edit.inserted[prefix..<(edit.inserted.count - suffix)]))
        return trimmed.removed == 0 && trimmed.inserted.isEmpty ? nil : trimmed
    }

    /// The one edit between `old` and `new`: what lies between their common beginning and end.
    public init(between old: [UInt8], and new: [UInt8]) {
        self.init(minimizing: [Edit(offset: 0, removed: old.count, inserted: new)], of: old)
    }

    /// How many bytes the edits insert (about the patch's stored size).
    public var insertedBytes: Int { edits.reduce(0) { $0 + $1.inserted.count } }

    /// `old` with the edits applied; nil when they do not fit it (not the document they were made from).
    public func apply(to old: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(old.count + insertedBytes)
        var position = 0
        for edit in edits {
            guard edit.offset >= position, edit.removed >= 0, edit.offset + edit.removed <= old.count else { return nil }
            out.append(contentsOf: old[position..<edit.offset])
            out.append(contentsOf: edit.inserted)
            position = edit.offset + edit.removed
        }
        out.append(contentsOf: old[position...])
        return out
    }

    /// Applies the edits to `document` in place (the last edit first, so that the offsets of
    /// the others still hold): no new buffer per patch when a chain of patches rebuilds a large
    /// document (a one-address change is one edit: one move of the bytes after it). Returns
    /// false, leaving `document` unchanged, when the edits do not fit it (as `apply(to:)`
    /// returns nil).
    public func apply(inPlace document: inout [UInt8]) -> Bool {
        var position = 0
        for edit in edits {
            guard edit.offset >= position, edit.removed >= 0, edit.offset + edit.removed <= document.count else { return false }
            position = edit.offset + edit.removed
        }
        for edit in edits.reversed() {
            document.replaceSubrange(edit.offset..<(edit.offset + edit.removed), with: edit.inserted)
        }
        return true
    }

    /// Applies `patches` to `document` in order, each to the document the ones before it made
    /// (a chain of revisions rebuilt from the one kept whole). Returns false, leaving `document`
    /// unchanged, when a patch does not fit the document it is applied to (as
    /// `apply(inPlace:)`).
    ///
    /// A chain of more than three patches is applied to the document cut into chunks of about
    /// `PatchedChunks.chunkBytes` (4 KiB), then joined once: an edit moves the bytes after it
    /// within its chunk only, so rebuilding a 2 MB document through 1,000 one-address patches
    /// costs a few copies of it (cut, edited chunk by chunk, joined) instead of 1,000
    /// (`apply(inPlace:)` per patch moves every byte after the edit). By the number of
    /// patches, not the document's size: a chain that starts from a small document may grow
    /// it to megabytes (a history revision stays a patch while it inserts less than half of
    /// the document).
    public static func apply(_ patches: [DocumentPatch], to document: inout [UInt8]) -> Bool {
        if patches.isEmpty { return true }
        if patches.count < 4 {
            var patched = document
            for patch in patches where !patch.apply(inPlace: &patched) { return false }
            document = patched
            return true
        }
        var chunks = PatchedChunks(document)
        for patch in patches where !chunks.apply(patch) { return false }
        document = chunks.joined()
        return true
    }

    /// The stored form: per edit, offset, removed and inserted lengths as 8-byte little-endian
    /// integers, then the inserted bytes.
    public var serialized: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(24 * edits.count + insertedBytes)
        for edit in edits {
            for value in [edit.offset, edit.removed, edit.inserted.count] {
                for shift in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(value) >> (8 * shift))) }
            }
            out.append(contentsOf: edit.inserted)
        }
        return out
    }

    /// Reads `serialized`; nil when the bytes are not such a patch.
    public init?(serialized bytes: [UInt8]) {
        var edits: [Edit] = []
        var index = 0
        func integer() -> Int? {
            guard index + 8 <= bytes.count else { return nil }
            var value: UInt64 = 0
            for shift in 0..<8 { value |= UInt64(bytes[index + shift]) << (8 * shift) }
            index += 8
            return value <= UInt64(Int32.max) ? Int(value) : nil
        }
        while index < bytes.count {
            guard let offset = integer(), let removed = integer(), let count = integer(), index + count <= bytes.count else { return nil }
            edits.append(Edit(offset: offset, removed: removed, inserted: Array(bytes[index..<(index + count)])))
            index += count
        }
        self.edits = edits
    }
}

/// A document cut into chunks, for applying a chain of patches (`DocumentPatch.apply(_:to:)`):
/// an edit finds its chunk by the chunks' lengths and changes that chunk (and, for what it
/// removes past it, the next ones) only.
struct PatchedChunks {
    /// The size chunks are cut to; an edit that grows a chunk past twice this cuts it again.
    static let chunkBytes = 4096

    /// The document's bytes in order; a chunk may be empty once edits removed its bytes.
    private var chunks: [[UInt8]]
    /// `chunks[i].count` for each chunk, kept apart so that finding an edit's chunk reads one
    /// array instead of each chunk's storage.
    private var lengths: [Int]
    /// The document's length: the sum of the chunks' lengths.
    private(set) var count: Int

    init(_ document: [UInt8]) {
        count = document.count
        chunks = document.isEmpty ? [[]] : Self.cut(document)
        lengths = chunks.map(\.count)
    }

    /// `bytes` (not empty) in pieces of `chunkBytes`, the last one shorter.
    private static func cut(_ bytes: [UInt8]) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: chunkBytes).map { Array(bytes[$0..<min($0 + chunkBytes, bytes.count)]) }
    }

    /// Applies `patch`'s edits (offsets into the document as it is now); false, changing
    /// nothing, when they do not fit it.
    mutating func apply(_ patch: DocumentPatch) -> Bool {
        var position = 0
        for edit in patch.edits {
            guard edit.offset >= position, edit.removed >= 0, edit.offset + edit.removed <= count else { return false }
            position = edit.offset + edit.removed
        }
        // The last edit first, so that the offsets of the others still hold.
        for edit in patch.edits.reversed() { replace(edit.offset, removing: edit.removed, with: edit.inserted) }
        return true
    }

    /// Replaces `removed` bytes at `offset` (both within the document) by `inserted`.
    private mutating func replace(_ offset: Int, removing removed: Int, with inserted: [UInt8]) {
        // The chunk holding `offset`: the first whose end is past it, or the last chunk when
        // `offset` is the document's end.
        var index = 0
        var start = 0
        while index < lengths.count - 1 && start + lengths[index] <= offset {
            start += lengths[index]
            index += 1
        }
        let local = offset - start
        var remaining = removed
        var next = index
        var from = local
        while remaining > 0 {
            let taken = min(remaining, lengths[next] - from)
            chunks[next].removeSubrange(from..<(from + taken))
            lengths[next] -= taken
            remaining -= taken
            next += 1
            from = 0
        }
        chunks[index].insert(contentsOf: inserted, at: local)
        lengths[index] += inserted.count
        count += inserted.count - removed
        if lengths[index] > 2 * Self.chunkBytes {
            let pieces = Self.cut(chunks[index])
            chunks.replaceSubrange(index...index, with: pieces)
            lengths.replaceSubrange(index...index, with: pieces.map(\.count))
        }
    }

    /// The document: the chunks joined.
    func joined() -> [UInt8] {
        var document: [UInt8] = []
        document.reserveCapacity(count)
        for chunk in chunks { document.append(contentsOf: chunk) }
        return document
    }
}
