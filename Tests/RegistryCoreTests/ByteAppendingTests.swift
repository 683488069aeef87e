import RegistryCore
import Testing

/// The appends of `ByteAppending.swift`: the same bytes as `String(_:)` and `String.utf8`,
/// after what the array already held, whatever its capacity.
@Suite struct ByteAppendingTests {
    @Test func decimalsAreWrittenAsStringWritesThem() {
        for value in [0, 1, 7, 9, 10, 99, 100, 101, 8080, 65_535, 1_000_000, -1, -10, -12_345, Int.max, Int.min, Int.max - 1, Int.min + 1] {
            var out: [UInt8] = [UInt8(ascii: "x")]
            out.appendDecimal(value)
            #expect(String(decoding: out, as: UTF8.self) == "x" + String(value))
        }
    }

    @Test(arguments: ["", "a", "actor", "/v1/services/default/ocs-external-rgw-lb", "é ü ∑ 🙂", String(repeating: "long ", count: 400)])
    func textIsCopiedAsItsUTF8(_ text: String) {
        for capacity in [0, 1, 384] {
            var out: [UInt8] = []
            out.reserveCapacity(capacity)
            out.append(UInt8(ascii: "x"))
            out.appendUTF8(text)
            #expect(out == [UInt8(ascii: "x")] + Array(text.utf8))
        }
    }
}
