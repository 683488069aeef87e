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
    /// a splice knows them (the previous frame's bytes, checked equal to the document's).
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
