import Testing

@testable import RegistryCore

/// `IPAddress` parses in one pass into inline storage; these tests hold it to the byte-array
/// parser it replaced (kept below as the reference): the same error for every text that fails,
/// the same bytes, text, order and special-use reason for every text that parses.
@Suite struct IPAddressReferenceTests {
    /// The parser as it was: split on dots, an array per address.
    enum Reference {
        static func parse(_ text: String) -> Result<[UInt8], IPAddress.ParseError> {
            if text.contains("%") { return .failure(.zone) }
            do {
                if text.contains(":") {
                    let bytes = try parseIPv6(Array(text.utf8))
                    if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return .failure(.ipv4Mapped) }
                    return .success(bytes)
                }
                return .success(try parseIPv4(Array(text.utf8)[...]))
            } catch {
                return .failure(error)
            }
        }

        static func parseIPv4(_ text: ArraySlice<UInt8>) throws(IPAddress.ParseError) -> [UInt8] {
            let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            guard parts.count == 4 else { throw .syntax }
            var result: [UInt8] = []
            for part in parts {
                guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw .syntax }
                if part.count > 1 && part.first == UInt8(ascii: "0") { throw .leadingZeros }
                let value = part.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                guard value <= 255 else { throw .syntax }
                result.append(UInt8(value))
            }
            return result
        }

        static func parseIPv6(_ text: [UInt8]) throws(IPAddress.ParseError) -> [UInt8] {
            var groups: [UInt16] = []
            var tail: [UInt8] = []
            var compressAt: Int? = nil
            var index = 0
            if text.starts(with: Array("::".utf8)) {
                compressAt = 0
                index = 2
                if index == text.count { return [UInt8](repeating: 0, count: 16) }
            } else if text.first == UInt8(ascii: ":") {
                throw .syntax
            }
            while index < text.count {
                var end = index
                while end < text.count, text[end] != UInt8(ascii: ":") { end += 1 }
                let field = text[index..<end]
                if field.contains(UInt8(ascii: ".")) {
                    guard end == text.count else { throw .syntax }
                    tail = try parseIPv4(field)
                    index = end
                    break
                }
                guard !field.isEmpty, field.count <= 4 else { throw .syntax }
                var value: UInt16 = 0
                for byte in field {
                    let digit: UInt8
                    switch byte {
                    case 0x30...0x39: digit = byte - 0x30
                    case 0x61...0x66: digit = byte - 0x61 + 10
                    case 0x41...0x46: digit = byte - 0x41 + 10
                    default: throw .syntax
                    }
                    value = value << 4 | UInt16(digit)
                }
                groups.append(value)
                index = end
                if index < text.count {
                    index += 1
                    if index < text.count, text[index] == UInt8(ascii: ":") {
                        guard compressAt == nil else { throw .syntax }
                        compressAt = groups.count
                        index += 1
                    } else if index == text.count {
                        throw .syntax
                    }
                }
            }
            let groupCount = groups.count + tail.count / 2
            var words = [UInt16]()
            if let at = compressAt {
                guard groupCount <= 7 else { throw .syntax }
                words = Array(groups[..<at]) + [UInt16](repeating: 0, count: 8 - groupCount) + Array(groups[at...])
            } else {
                guard groupCount == 8 else { throw .syntax }
                words = groups
            }
            var bytes: [UInt8] = []
            for word in words { bytes += [UInt8(word >> 8), UInt8(word & 0xFF)] }
            return bytes + tail
        }

        static func specialUseReason(_ bytes: [UInt8]) -> String? {
            if bytes.allSatisfy({ $0 == 0 }) { return "unspecified address" }
            if bytes.count == 4 {
                if bytes[0] == 127 { return "loopback address (127.0.0.0/8)" }
                if bytes[0] == 169 && bytes[1] == 254 { return "link-local address (169.254.0.0/16)" }
                if bytes[0] == 224 && bytes[1] == 0 && bytes[2] == 0 { return "link-local multicast address (224.0.0.0/24)" }
                return nil
            }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return "loopback address (::1)" }
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return "link-local address (fe80::/10)" }
            if bytes[0] == 0xFF && bytes[1] & 0x0F == 0x02 { return "link-local multicast address (ff02::/16)" }
            return nil
        }

        static func description(_ bytes: [UInt8]) -> String {
            if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
            var words: [UInt16] = []
            for index in stride(from: 0, to: 16, by: 2) { words.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])) }
            var (bestStart, bestLength, index) = (-1, 0, 0)
            while index < 8 {
                guard words[index] == 0 else {
                    index += 1
                    continue
                }
                var end = index
                while end < 8, words[end] == 0 { end += 1 }
                if end - index > bestLength { (bestStart, bestLength) = (index, end - index) }
                index = end
            }
            if bestLength < 2 { bestStart = -1 }
            var text = ""
            index = 0
            while index < 8 {
                if index == bestStart {
                    text += "::"
                    index += bestLength
                    continue
                }
                if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
                text += String(words[index], radix: 16)
                index += 1
            }
            return text
        }
    }

    /// Texts near the grammar: numbers with and without leading zeros, too large, too many or
    /// too few parts, IPv6 groups with `::`, embedded IPv4 tails, stray characters, and
    /// non-ASCII (a combining mark after `%` or `:` makes one character that is neither).
    static func inputs() -> [String] {
        var generator = SeededGenerator(state: 14)
        var texts: [String] = [
            "", ".", "...", "1.2.3.4", "0.0.0.0", "255.255.255.255", "256.0.0.0", "1.2.3.04", "01.256.1.1", "256.01.1.1",
            "0001.1.1.1", "1..2.3", "1.2.3.4.", ".1.2.3.4", "1.2.3.4.5", "1.2.3.x", "01.2.3.x", "::", "::1", "::ffff:1.2.3.4",
            "::ffff:01.2.3.4", "::ffff:1.2.3.4\u{301}", "1.2.3.4%\u{301}", "fe80::1%\u{301}eth0", "1:\u{301}2::3", "%", "1.2.3.4%eth0",
            "2001:db8::1", "2001:DB8::A:b", "::0.0.0.0", "1::", "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4", "1.2.3.4:1", "é", "1.2.3.é", "١.٢.٣.٤", "127.0.0.1", "169.254.9.9", "169.255.0.1",
            "224.0.0.9", "224.0.1.0", "fe80::9", "febf::1", "fec0::1", "ff02::2", "ff12::1", "ff03::1", "::2", "0.0.0.1",
        ]
        let pieces = ["0", "00", "1", "9", "10", "99", "100", "199", "255", "256", "999", "1000", "a", "ff", "FFFF", "10000", "", "x", "é"]
        for _ in 0..<4000 {
            let count = Int.random(in: 2...5, using: &generator)
            let dotted = (0..<count).map { _ in pieces.randomElement(using: &generator)! }.joined(separator: ".")
            texts.append(dotted)
            var groups = (0..<Int.random(in: 1...9, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }
            if Bool.random(using: &generator) { groups.append(dotted) }
            texts.append(groups.joined(separator: Bool.random(using: &generator) ? ":" : "::"))
            let alphabet = Array("0123456789abcdefABCDEF.:%g\u{301}")
            texts.append(String((0..<Int.random(in: 0...14, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
            // Valid ones, zeros likely (to exercise `::`).
            let octets = (0..<4).map { _ in Bool.random(using: &generator) ? 0 : Int.random(in: 0...255, using: &generator) }
            texts.append(octets.map(String.init).joined(separator: "."))
            let words = (0..<8).map { _ in Int.random(in: 0...3, using: &generator) == 0 ? 0xFFFF : Int.random(in: 0...2, using: &generator) }
            let full = words.map { String($0, radix: 16, uppercase: Bool.random(using: &generator)) }.joined(separator: ":")
            texts.append(full)
            texts.append(IPAddressReferenceTests.Reference.description(words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }))
        }
        return texts
    }

    @Test func parsesEveryTextAsTheReferenceDoes() {
        var parsed: [(IPAddress, [UInt8])] = []
        for text in Self.inputs() {
            let reference = Reference.parse(text)
            let result = Result { () throws(IPAddress.ParseError) in try IPAddress(parsing: text) }
            switch (result, reference) {
            case (.success(let address), .success(let bytes)):
                #expect(address.bytes == bytes, "\(text)")
                #expect(address.family == (bytes.count == 4 ? .ipv4 : .ipv6), "\(text)")
                #expect(address.description == Reference.description(bytes), "\(text)")
                #expect(address.specialUseReason == Reference.specialUseReason(bytes), "\(text)")
                #expect((try? IPAddress(parsing: address.description)) == address, "\(text)")
                parsed.append((address, bytes))
            case (.failure(let error), .failure(let expected)):
                #expect(error == expected, "\(text)")
            default:
                Issue.record("\(text): \(result) but the reference gives \(reference)")
            }
        }
        #expect(parsed.count > 1000)
        // Order and equality as the byte arrays had them: IPv4 first, then numeric.
        for _ in 0..<4 {
            var generator = SeededGenerator(state: UInt64(parsed.count))
            parsed.shuffle(using: &generator)
            let sorted = parsed.sorted { $0.0 < $1.0 }
            let expected = parsed.sorted { $0.1.count != $1.1.count ? $0.1.count < $1.1.count : $0.1.lexicographicallyPrecedes($1.1) }
            #expect(sorted.map(\.1) == expected.map(\.1))
        }
        for (index, (address, bytes)) in parsed.enumerated().prefix(300) {
            for (other, otherBytes) in parsed[index...].prefix(40) { #expect((address == other) == (bytes == otherBytes)) }
        }
    }

    /// The registry keeps an IPv4 address's text as sent when it parses: it is canonical already.
    @Test func ipv4TextThatParsesIsCanonical() throws {
        for text in Self.inputs() {
            guard let address = try? IPAddress(parsing: text), address.family == .ipv4 else { continue }
            #expect(address.description == text)
            #expect(EndpointAddress(ip: text).ip == text)
        }
        for value in stride(from: 0, through: 255, by: 1) {
            let text = "\(value).\(255 - value).\(value / 2).\(value % 10)"
            #expect(try IPAddress(parsing: text).description == text)
        }
    }
}
