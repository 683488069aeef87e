/// Byte tests over a string's UTF-8 read in place, for the checks that run on every request
/// (a path, a name, a log value).
///
/// Iterating `String.UTF8View` costs some ten to forty instructions a byte in the loops where
/// these replace it (measured with callgrind on `GET /v1/services/{namespace}/{name}`); a
/// `Span` of the same bytes costs a few.
extension String {
    /// Whether every UTF-8 byte satisfies `predicate` (true for the empty string).
    @inlinable
    public func allUTF8Bytes(_ predicate: (UInt8) -> Bool) -> Bool {
        let bytes = utf8Span.span
        for index in bytes.indices where !predicate(bytes[index]) { return false }
        return true
    }

    /// Whether some UTF-8 byte satisfies `predicate`.
    @inlinable
    public func containsUTF8Byte(where predicate: (UInt8) -> Bool) -> Bool {
        // Its own loop: through `allUTF8Bytes` the predicate was called through a second closure.
        let bytes = utf8Span.span
        for index in bytes.indices where predicate(bytes[index]) { return true }
        return false
    }
}
