/// The addresses of a service, in their stored order: a mutable, random-access collection of
/// `EndpointAddress` (indices `0..<count`) kept in chunks of at most `2 × chunkCapacity`
/// elements, each chunk an array of its own.
///
/// Copies share their chunks (copy-on-write per chunk): a service copied to add or remove one
/// address copies the list of chunks (one reference per `chunkCapacity` addresses) and the one
/// chunk it changes, not every address. Two lists compare equal by comparing their chunks, which
/// for chunks still shared is an identity check (`Array.==`). For a service of n addresses:
/// inserting or removing one address costs O(`chunkCapacity` + n / `chunkCapacity`), reading
/// one O(log(n / `chunkCapacity`)), iterating O(n).
public struct EndpointAddressList: Sendable, Equatable {
    /// The size new chunks are cut to; a chunk is split when it grows past twice that, and
    /// merged with a neighbour when it shrinks below a quarter of it.
    public static let chunkCapacity = 64

    /// The chunks, in order; none is empty.
    public private(set) var chunks: [[EndpointAddress]]
    /// `ends[i]`: the number of addresses in `chunks[0...i]`.
    private var ends: [Int]
    /// Per chunk, what `ServiceEncoder` measured of it, nil until then and again once the
    /// chunk changes: a change of one address in a copy is spliced into the stored document
    /// at O(chunks) instead of measuring every address again. Not part of the value (`==`
    /// ignores it).
    var measures: [ChunkMeasure?]

    /// What is known of a chunk once measured.
    struct ChunkMeasure: Sendable, Equatable {
        /// The bytes `ServiceEncoder` writes for its addresses, without the commas between them.
        var encodedBytes: Int
        /// Whether one of its addresses has a `host`.
        var hasHost: Bool
    }

    /// An empty list.
    public init() {
        chunks = []
        ends = []
        measures = []
    }

    /// The addresses of `elements`, in their order.
    public init<S: Sequence>(_ elements: S) where S.Element == EndpointAddress {
        self.init(chunking: Array(elements))
    }

    private init(chunking elements: [EndpointAddress]) {
        chunks = Self.cut(elements)
        ends = []
        measures = Array(repeating: nil, count: chunks.count)
        recountEnds(from: 0)
    }

    /// `elements` cut into chunks of about `chunkCapacity` each, of even sizes (the array
    /// itself when it fits in one).
    private static func cut(_ elements: [EndpointAddress]) -> [[EndpointAddress]] {
        if elements.isEmpty { return [] }
        if elements.count <= 2 * chunkCapacity { return [elements] }
        let pieces = elements.count / chunkCapacity
        return (0..<pieces).map { piece in
            Array(elements[(piece * elements.count / pieces)..<((piece + 1) * elements.count / pieces)])
        }
    }

    private mutating func recountEnds(from chunk: Int) {
        ends.removeSubrange(Swift.min(chunk, ends.count)...)
        var total = chunk == 0 ? 0 : ends[chunk - 1]
        for index in chunk..<chunks.count {
            total += chunks[index].count
            ends.append(total)
        }
    }

    /// The chunk holding `position` (`0..<count`) and its offset in it.
    @inline(__always)
    private func locate(_ position: Int) -> (chunk: Int, offset: Int) {
        precondition(position >= 0 && position < count, "EndpointAddressList index out of range")
        if chunks.count == 1 { return (0, position) }
        var (low, high) = (0, ends.count - 1)
        while low < high {
            let middle = (low + high) / 2
            if ends[middle] > position { high = middle } else { low = middle + 1 }
        }
        return (low, low == 0 ? position : position - ends[low - 1])
    }

    /// `self[position] == other`, reading the element's fields in place (see
    /// `EndpointAddress.same(_:_:_:)`).
    public func same(at position: Int, as other: borrowing EndpointAddress) -> Bool {
        let (chunk, offset) = locate(position)
        return EndpointAddress.same(chunks[chunk], offset, other)
    }

    /// Whether an address has a `host` (given by DNS name, or expanded from one): the chunks
    /// measured without one are skipped.
    public var hasHostAddress: Bool {
        chunksWithHosts.contains { chunk in chunk.indices.contains { chunk[$0].host != nil } }
    }

    /// The chunks that may hold an address with a `host` (every chunk not measured without one).
    public var chunksWithHosts: some Sequence<[EndpointAddress]> {
        chunks.indices.lazy.filter { measures[$0]?.hasHost != false }.map { chunks[$0] }
    }

    /// Applies `body` to every address in place, chunk by chunk.
    public mutating func updateEach(_ body: (inout EndpointAddress) throws -> Void) rethrows {
        for chunk in chunks.indices {
            measures[chunk] = nil
            for offset in chunks[chunk].indices { try body(&chunks[chunk][offset]) }
        }
    }

    /// Whether no address precedes the one before it by `precedes` (each neighbouring pair
    /// compared once, chunk by chunk).
    public func isSorted(by precedes: (EndpointAddress, EndpointAddress) throws -> Bool) rethrows -> Bool {
        var previous: EndpointAddress? = nil
        for chunk in chunks {
            if let previous, let first = chunk.first, try precedes(first, previous) { return false }
            for offset in chunk.indices.dropFirst() where try precedes(chunk[offset], chunk[offset - 1]) { return false }
            previous = chunk.last
        }
        return true
    }

    /// Equal when the addresses are, in order; chunks both lists still share compare by identity.
    public static func == (lhs: EndpointAddressList, rhs: EndpointAddressList) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.ends == rhs.ends { return lhs.chunks == rhs.chunks }
        return lhs.elementsEqual(rhs)
    }

    /// After `chunks[index]` changed size: split it when it grew past twice `chunkCapacity`, merge
    /// it into a neighbour when it shrank below a quarter of it (or drop it when empty); then
    /// recount the ends from there.
    private mutating func rebalance(_ index: Int) {
        if chunks[index].isEmpty {
            replaceChunks(index...index, with: [])
        } else if chunks[index].count > 2 * Self.chunkCapacity {
            replaceChunks(index...index, with: Self.cut(chunks[index]))
        } else if chunks[index].count < Self.chunkCapacity / 4 && chunks.count > 1 {
            let neighbour = index + 1 < chunks.count ? index + 1 : index - 1
            let (left, right) = (Swift.min(index, neighbour), Swift.max(index, neighbour))
            let merged = chunks[left] + chunks[right]
            replaceChunks(left...right, with: merged.count > 2 * Self.chunkCapacity ? Self.cut(merged) : [merged])
        } else {
            measures[index] = nil
            recountEnds(from: index)
        }
    }

    /// Puts `pieces` (none empty) in place of `chunks[range]`, unmeasured, and recounts the ends.
    private mutating func replaceChunks(_ range: ClosedRange<Int>, with pieces: [[EndpointAddress]]) {
        chunks.replaceSubrange(range, with: pieces)
        measures.replaceSubrange(range, with: repeatElement(nil, count: pieces.count))
        recountEnds(from: range.lowerBound)
    }
}

extension EndpointAddressList: RandomAccessCollection, MutableCollection {
    public typealias Index = Int
    public typealias Indices = Range<Int>

    public var startIndex: Int { 0 }
    public var endIndex: Int { ends.last ?? 0 }
    public var count: Int { ends.last ?? 0 }
    public var isEmpty: Bool { chunks.isEmpty }

    public subscript(position: Int) -> EndpointAddress {
        _read {
            let (chunk, offset) = locate(position)
            yield chunks[chunk][offset]
        }
        _modify {
            let (chunk, offset) = locate(position)
            defer { measures[chunk] = nil }
            yield &chunks[chunk][offset]
        }
    }

    /// Walks the chunks in order (no search per element).
    public struct Iterator: IteratorProtocol {
        let chunks: [[EndpointAddress]]
        var chunk = 0
        var offset = 0

        public mutating func next() -> EndpointAddress? {
            guard chunk < chunks.count else { return nil }
            let element = chunks[chunk][offset]
            offset += 1
            if offset == chunks[chunk].count { (chunk, offset) = (chunk + 1, 0) }
            return element
        }
    }

    public func makeIterator() -> Iterator { Iterator(chunks: chunks) }

    /// `Collection.map`, chunk by chunk (the default reads each address by index: a search each).
    public func map<T>(_ transform: (EndpointAddress) throws -> T) rethrows -> [T] {
        var result: [T] = []
        result.reserveCapacity(count)
        for chunk in chunks {
            for index in chunk.indices { result.append(try transform(chunk[index])) }
        }
        return result
    }

    /// `Sequence.contains(where:)`, chunk by chunk, the addresses read in place.
    public func contains(where predicate: (EndpointAddress) throws -> Bool) rethrows -> Bool {
        for chunk in chunks {
            for index in chunk.indices where try predicate(chunk[index]) { return true }
        }
        return false
    }
}

extension EndpointAddressList: RangeReplaceableCollection {
    /// Replaces `subrange` with `newElements`: within one chunk, that chunk alone is changed
    /// (and split or merged as it grew or shrank); across chunks, the chunks involved are cut
    /// again.
    public mutating func replaceSubrange<C: Collection>(_ subrange: Range<Int>, with newElements: C) where C.Element == EndpointAddress {
        precondition(subrange.lowerBound >= 0 && subrange.upperBound <= count, "EndpointAddressList range out of bounds")
        if chunks.isEmpty {
            self = Self(chunking: Array(newElements))
            return
        }
        // The chunk where the range starts: an insertion at a chunk's end goes into that chunk.
        let first = subrange.lowerBound == count ? chunks.count - 1 : locate(Swift.max(subrange.lowerBound - (subrange.isEmpty ? 1 : 0), 0)).chunk
        let last = subrange.isEmpty ? first : locate(subrange.upperBound - 1).chunk
        let base = first == 0 ? 0 : ends[first - 1]
        if first == last {
            chunks[first].replaceSubrange((subrange.lowerBound - base)..<(subrange.upperBound - base), with: newElements)
            rebalance(first)
            return
        }
        let lastBase = ends[last - 1]
        var merged = Array(chunks[first][..<(subrange.lowerBound - base)])
        merged.append(contentsOf: newElements)
        merged.append(contentsOf: chunks[last][(subrange.upperBound - lastBase)...])
        replaceChunks(first...last, with: Self.cut(merged))
        // What is left of the chunks the range spanned may be small: merged with a neighbour.
        if first < chunks.count && chunks[first].count < Self.chunkCapacity / 4 { rebalance(first) }
    }

    public mutating func reserveCapacity(_ n: Int) {}
}

extension EndpointAddressList: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: EndpointAddress...) {
        self.init(chunking: elements)
    }
}

extension EndpointAddressList: CustomStringConvertible {
    public var description: String { Array(self).description }
}
