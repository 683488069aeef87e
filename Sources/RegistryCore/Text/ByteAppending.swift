/// Appending to a `[UInt8]` being built piece by piece (a log line, a timestamp), for the code
/// that runs on every request.
///
/// Each `Array.append` — of one byte, of a `String.UTF8View`, of another array — checks that
/// the buffer is unique and has room: some 15 instructions a byte, and 150 to 250 a call with
/// `contentsOf:` whatever the length (measured with callgrind on
/// `GET /v1/services/{namespace}/{name}`, whose log line made some sixty of them). Here the
/// room for a whole piece is reserved once (`Array.append(addingCapacity:initializingWith:)`)
/// and its bytes written in place through the `OutputSpan`, a few instructions a byte.
extension OutputSpan where Element == UInt8 {
    /// Appends `bytes` (the span must have room for them).
    @inlinable
    public mutating func append(copying bytes: Span<UInt8>) {
        for index in bytes.indices { append(bytes[index]) }
    }

    /// Appends `text`'s UTF-8 bytes (`text.utf8.count` of room).
    @inlinable
    public mutating func appendUTF8(_ text: String) {
        append(copying: text.utf8Span.span)
    }

    /// The most bytes `appendDecimal` writes: `-9223372036854775808`.
    public static var maxDecimalBytes: Int { 20 }

    /// Appends `number` in decimal, as `String(number)` writes it (`maxDecimalBytes` of room).
    @inlinable
    public mutating func appendDecimal(_ number: Int) {
        if number < 0 { append(UInt8(ascii: "-")) }
        let magnitude = number.magnitude
        // Most significant digit first (no reversal afterwards).
        var divisor: UInt = 1
        while divisor <= magnitude / 10 { divisor *= 10 }
        repeat {
            append(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
            divisor /= 10
        } while divisor > 0
    }
}

extension Array where Element == UInt8 {
    /// Appends `text`'s UTF-8 bytes.
    @inlinable
    public mutating func appendUTF8(_ text: String) {
        let bytes = text.utf8Span.span
        append(addingCapacity: bytes.count) { $0.append(copying: bytes) }
    }

    /// Appends `number` in decimal, as `String(number)` writes it.
    @inlinable
    public mutating func appendDecimal(_ number: Int) {
        append(addingCapacity: OutputSpan<UInt8>.maxDecimalBytes) { $0.appendDecimal(number) }
    }
}
