/// An IPv4 or IPv6 address parsed strictly and printed in canonical form: dotted decimal without
/// leading zeros, or RFC 5952 (lower case, longest run of two or more zero groups as `::`).
/// This matches Go's `net.IP.String()`, which is what the Kubernetes API server compares against.
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Family: String, Sendable, CaseIterable { case ipv4 = "IPv4", ipv6 = "IPv6" }

    /// The address as a 128-bit number, most significant half first (an IPv4 address in the
    /// low 32 bits of `low`): kept inline, so that parsing, comparing and hashing allocate nothing.
    private let high: UInt64
    private let low: UInt64
    public let family: Family

    /// 4 bytes for IPv4, 16 for IPv6, in network order.
    public var bytes: [UInt8] {
        if family == .ipv4 { return (0..<4).map { UInt8(truncatingIfNeeded: low >> (24 - 8 * UInt64($0))) } }
        return (0..<16).map { UInt8(truncatingIfNeeded: ($0 < 8 ? high : low) >> (56 - 8 * UInt64($0 % 8))) }
    }

    /// Why a string is not an acceptable endpoint address.
    public enum ParseError: Error, Sendable, Equatable {
        case syntax
        case leadingZeros
        case ipv4Mapped
        case zone
    }

    public init(parsing text: String) throws(ParseError) {
        // One pass over the bytes for `%` and `:`. Outside ASCII a byte is not a character (a
        // combining mark makes `%\u{301}` one character that is not `%`): there, the characters
        // decide, as they always have (such text never parses; only the error named depends on it).
        var percent = false
        var colon = false
        var ascii = true
        for byte in text.utf8 {
            if byte == UInt8(ascii: "%") { percent = true }
            if byte == UInt8(ascii: ":") { colon = true }
            if byte >= 0x80 { ascii = false }
        }
        if !ascii {
            percent = text.contains("%")
            colon = text.contains(":")
        }
        if percent { throw .zone }
        if colon {
            let bytes = try IPAddress.parseIPv6(Array(text.utf8))
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                throw .ipv4Mapped
            }
            var (high, low): (UInt64, UInt64) = (0, 0)
            for index in 0..<8 {
                high = high << 8 | UInt64(bytes[index])
                low = low << 8 | UInt64(bytes[index + 8])
            }
            (self.high, self.low, self.family) = (high, low, .ipv6)
        } else {
            (self.high, self.low, self.family) = (0, UInt64(try IPAddress.parseIPv4(text.utf8)), .ipv4)
        }
    }

    /// Dotted decimal: exactly four parts of one to three digits, each at most 255 and without a
    /// leading zero. The first problem in this order is thrown: the number of parts, then each
    /// part in turn (not digits or too long, a leading zero, too large).
    private static func parseIPv4(_ text: some Sequence<UInt8>) throws(ParseError) -> UInt32 {
        var dots = 0
        var problem: ParseError?
        var value: UInt32 = 0
        // The part being read: its length, whether all digits so far, its first byte, its value.
        var length = 0
        var digits = true
        var first: UInt8 = 0
        var part: UInt32 = 0
        func finishPart() {
            guard problem == nil else { return }
            if length == 0 || length > 3 || !digits {
                problem = .syntax
            } else if length > 1 && first == UInt8(ascii: "0") {
                problem = .leadingZeros
            } else if part > 255 {
                problem = .syntax
            } else {
                value = value << 8 | part
            }
        }
        for byte in text {
            if byte == UInt8(ascii: ".") {
                finishPart()
                dots += 1
                (length, digits, part) = (0, true, 0)
                continue
            }
            if length == 0 { first = byte }
            length += 1
            if byte >= 0x30 && byte <= 0x39 {
                if length <= 3 { part = part * 10 + UInt32(byte - 0x30) }
            } else {
                digits = false
            }
        }
        finishPart()
        guard dots == 3 else { throw .syntax }
        if let problem { throw problem }
        return value
    }

    private static func parseIPv6(_ text: [UInt8]) throws(ParseError) -> [UInt8] {
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
                let ipv4 = try parseIPv4(field)
                tail = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: ipv4 >> $0) }
                index = end
                break
            }
            guard !field.isEmpty, field.count <= 4 else { throw .syntax }
            var value: UInt16 = 0
            for byte in field {
                guard let digit = hexValue(byte) else { throw .syntax }
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

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x61...0x66: byte - 0x61 + 10
        case 0x41...0x46: byte - 0x41 + 10
        default: nil
        }
    }

    public var description: String {
        if family == .ipv4 {
            var text: [UInt8] = []
            text.reserveCapacity(15)
            for shift in [24, 16, 8, 0] as [UInt64] {
                if shift != 24 { text.append(UInt8(ascii: ".")) }
                let byte = UInt8(truncatingIfNeeded: low >> shift)
                if byte >= 100 { text.append(0x30 + byte / 100) }
                if byte >= 10 { text.append(0x30 + byte / 10 % 10) }
                text.append(0x30 + byte % 10)
            }
            return String(decoding: text, as: UTF8.self)
        }
        var words: [UInt16] = []
        for index in 0..<8 { words.append(UInt16(truncatingIfNeeded: (index < 4 ? high : low) >> UInt64(48 - 16 * (index % 4)))) }
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < 8 {
            if words[index] == 0 {
                var end = index
                while end < 8, words[end] == 0 { end += 1 }
                if end - index > bestLength {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
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

    /// Why the API server refuses this address as an endpoint, if it does: unspecified, loopback,
    /// link-local unicast or link-local multicast (`ValidateNonSpecialIP`).
    public var specialUseReason: String? {
        if high == 0 && low == 0 { return "unspecified address" }
        if family == .ipv4 {
            let (first, second, third) = (
                UInt8(truncatingIfNeeded: low >> 24), UInt8(truncatingIfNeeded: low >> 16), UInt8(truncatingIfNeeded: low >> 8)
            )
            if first == 127 { return "loopback address (127.0.0.0/8)" }
            if first == 169 && second == 254 { return "link-local address (169.254.0.0/16)" }
            if first == 224 && second == 0 && third == 0 { return "link-local multicast address (224.0.0.0/24)" }
            return nil
        }
        if high == 0 && low == 1 { return "loopback address (::1)" }
        let (first, second) = (UInt8(truncatingIfNeeded: high >> 56), UInt8(truncatingIfNeeded: high >> 48))
        if first == 0xFE && second & 0xC0 == 0x80 { return "link-local address (fe80::/10)" }
        if first == 0xFF && second & 0x0F == 0x02 { return "link-local multicast address (ff02::/16)" }
        return nil
    }

    /// Numeric order; IPv4 before IPv6.
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.family != rhs.family { return lhs.family == .ipv4 }
        return (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}
