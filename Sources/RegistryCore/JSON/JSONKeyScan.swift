/// A cheap test of a JSON document's bytes for member names, before deciding to parse it.
public enum JSONKeyScan {
    /// Whether `bytes` contain one of `keys` as a quoted name (`"key"`): true when the document
    /// has such a member at any depth, and possibly also when a string value holds those
    /// characters (a caller that then parses finds out). False is exact for documents that
    /// write member names literally, as `JSONWriter` and `ServiceEncoder` do: a name spelt with
    /// escapes (`"h\u006fst"`) is not found.
    /// `keys`: plain names (no quote or backslash). Reads each byte once and compares the bytes
    /// after each quote; meant for a document read once and kept, not for every request.
    public static func mentions(_ bytes: [UInt8], anyOf keys: [String]) -> Bool {
        let needles = keys.map { Array("\"\($0)\"".utf8) }
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
