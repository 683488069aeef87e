/// A cheap test of a JSON document's bytes for member names, before deciding to parse it. Made
/// once for a set of names (their quoted forms are built then, not on every test).
public struct JSONKeyScan: Sendable {
    private let needles: [[UInt8]]

    /// `names`: plain member names (no quote or backslash).
    public init(names: [String]) {
        needles = names.map { Array("\"\($0)\"".utf8) }
    }

    /// Whether `bytes` contain one of the names as a quoted name (`"name"`): true when the
    /// document has such a member at any depth, and possibly also when a string value holds
    /// those characters (a caller that then parses finds out). False is exact for documents
    /// that write member names literally, as `JSONWriter` and `ServiceEncoder` do: a name spelt
    /// with escapes (`"h\u006fst"`) is not found. Reads each byte once and compares the bytes
    /// after each quote (a few instructions a byte, no allocation).
    public func mentions(_ bytes: [UInt8]) -> Bool {
        let span = bytes.span
        for index in span.indices where span[index] == UInt8(ascii: "\"") {
            for needle in needles where index + needle.count <= span.count {
                var matches = true
                for offset in 1..<needle.count where span[index + offset] != needle[offset] {
                    matches = false
                    break
                }
                if matches { return true }
            }
        }
        return false
    }
}
