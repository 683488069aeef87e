/// The bytes of a stored document, kept as segments that successive revisions share.
///
/// A change of one address in a service of 10,000 (a ~330 KB document) is spliced from the
/// previous document (`ServiceEncoder`): only the address added or removed (or the chunks of
/// addresses that changed) and the few bytes around the address array are encoded again (a
/// document of at most `ServiceEncoder.maxEncodedWhole` bytes is encoded whole). As one `[UInt8]`, each revision still copied
/// the ~330 KB it kept (measured: the largest single cost of such an add). As segments,
/// the kept bytes are slices of the previous revision's segments (shared buffers, no copy), and
/// the new document is a list of references. `flattened` gives the bytes as one array where a
/// caller needs them so (an answer, a whole write to the database); a splice that would make
/// more than `maxSegments` segments, or a document of at most `maxCopiedWhole` bytes, writes
/// the document as one array instead, so that reading it stays cheap and the old buffers it
/// kept alive are released.
///
/// Values are immutable; copies share their segments. Two documents are equal when their bytes
/// are (copies of one document compare without reading them).
public struct DocumentBytes: Sendable, Equatable {
    /// Most segments a splice builds on; beyond, it writes the document as one array.
    public static let maxSegments = 256
    /// A spliced document of at most this many bytes is copied into one array: every pass over
    /// a document (the next splice's slicing, the comparison with the stored one, the write to
    /// the database) costs a reference count per segment, and successive splices of a service
    /// of a few dozen addresses left it in a hundred segments of a few bytes to a few hundred
    /// (measured: the segments' reference counts and the copy on the commit thread were ~5 %
    /// of an add's CPU; copying 16 KB costs about 1 µs).
    public static let maxCopiedWhole = 16 << 10

    /// The segments, in order; none is empty.
    public let segments: [ArraySlice<UInt8>]
    /// The number of bytes.
    public let count: Int
    /// The bytes this value holds in buffers of its own, not shared with the document it was
    /// spliced from (all of them for a value made from one array): what keeping it costs
    /// beyond that document.
    public let ownBytes: Int
    /// The bytes as one array when the value was made from one (`flattened` then copies nothing).
    private let whole: [UInt8]?
    /// Identifies this value and its copies (for `==` without reading the bytes).
    private let identity: Identity

    private final class Identity: Sendable {}

    /// One segment: `bytes` itself (no copy).
    public init(_ bytes: [UInt8]) {
        segments = bytes.isEmpty ? [] : [bytes[...]]
        count = bytes.count
        ownBytes = bytes.count
        whole = bytes
        identity = Identity()
    }

    /// The concatenation of `segments` (the empty ones are dropped), of which `ownBytes` are in
    /// buffers made for it (the rest shared with the document it was spliced from).
    public init(segments: [ArraySlice<UInt8>], ownBytes: Int) {
        var kept: [ArraySlice<UInt8>] = []
        kept.reserveCapacity(segments.count)
        var count = 0
        for segment in segments where !segment.isEmpty {
            kept.append(segment)
            count += segment.count
        }
        self.segments = kept
        self.count = count
        self.ownBytes = Swift.min(ownBytes, count)
        whole = nil
        identity = Identity()
    }

    public var isEmpty: Bool { count == 0 }

    /// The bytes as one array: the array the value was made from, else a copy of the segments.
    public var flattened: [UInt8] {
        if let whole { return whole }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for segment in segments { bytes.append(contentsOf: segment) }
        return bytes
    }

    /// The byte at `offset` (`0..<count`).
    public subscript(offset: Int) -> UInt8 {
        precondition(offset >= 0 && offset < count, "DocumentBytes offset out of range")
        var start = 0
        for segment in segments {
            if offset < start + segment.count { return segment[segment.startIndex + (offset - start)] }
            start += segment.count
        }
        preconditionFailure("DocumentBytes offset out of range")
    }

    /// The bytes of `range` (within `0..<count`) as slices of the segments (no copy).
    public func slices(_ range: Range<Int>) -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        appendSlices(range, to: &result)
        return result
    }

    /// `slices(range)` appended to `result` (no array of their own: a splice builds its
    /// document's segments in one array).
    public func appendSlices(_ range: Range<Int>, to result: inout [ArraySlice<UInt8>]) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "DocumentBytes range out of bounds")
        guard !range.isEmpty else { return }
        var start = 0
        for segment in segments {
            let end = start + segment.count
            defer { start = end }
            if end <= range.lowerBound { continue }
            if start >= range.upperBound { break }
            let low = Swift.max(range.lowerBound, start) - start
            let high = Swift.min(range.upperBound, end) - start
            result.append(segment[(segment.startIndex + low)..<(segment.startIndex + high)])
        }
    }

    /// The bytes of `range` (within `0..<count`) as one slice: of the segment that holds them
    /// all (no copy), else of a copy (`bytes(range)`).
    public func contiguousBytes(_ range: Range<Int>) -> ArraySlice<UInt8> {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "DocumentBytes range out of bounds")
        var start = 0
        for segment in segments {
            let end = start + segment.count
            if range.lowerBound >= start && range.upperBound <= end {
                return segment[(segment.startIndex + range.lowerBound - start)..<(segment.startIndex + range.upperBound - start)]
            }
            if end > range.lowerBound { break }
            start = end
        }
        return bytes(range)[...]
    }

    /// The bytes of `range` as one array (a copy).
    public func bytes(_ range: Range<Int>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(range.count)
        for slice in slices(range) { bytes.append(contentsOf: slice) }
        return bytes
    }

    /// Whether the bytes of `range` are `expected`'s.
    public func bytes<C: Collection<UInt8>>(_ range: Range<Int>, equal expected: C) -> Bool {
        guard range.lowerBound >= 0, range.upperBound <= count, range.count == expected.count else { return false }
        var position = expected.startIndex
        for slice in slices(range) {
            let end = expected.index(position, offsetBy: slice.count)
            guard slice.elementsEqual(expected[position..<end]) else { return false }
            position = end
        }
        return true
    }

    /// Equal bytes: copies of one value at once, others segment by segment (no copy).
    public static func == (lhs: DocumentBytes, rhs: DocumentBytes) -> Bool {
        if lhs.identity === rhs.identity { return true }
        guard lhs.count == rhs.count else { return false }
        var (left, right) = (lhs.segments[...], rhs.segments[...])
        while var a = left.first, var b = right.first {
            let length = Swift.min(a.count, b.count)
            guard a.prefix(length).elementsEqual(b.prefix(length)) else { return false }
            a = a.dropFirst(length)
            b = b.dropFirst(length)
            if a.isEmpty { left = left.dropFirst() } else { left[left.startIndex] = a }
            if b.isEmpty { right = right.dropFirst() } else { right[right.startIndex] = b }
        }
        return left.isEmpty && right.isEmpty
    }
}
