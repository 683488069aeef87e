/// An IPv4 or IPv6 address parsed strictly and printed in canonical form: dotted decimal without
/// leading zeros, or RFC 5952 (lower case, longest run of two or more zero groups as `::`).
/// This matches Go's `net.IP.String()`, which is what the Kubernetes API server compares against.
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Family: String, Sendable, CaseIterable { case ipv4 = "IPv4", ipv6 = "IPv6" }

    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]
    public var family: Family { bytes.count == 4 ? .ipv4 : .ipv6 }

    /// Why a string is not an acceptable endpoint address.
    public enum ParseError: Error, Sendable, Equatable {
        case syntax
        case leadingZeros
        case ipv4Mapped
        case zone
    }

    public init(parsing text: String) throws(ParseError) {
        if text.contains("%") { throw .zone }
        if text.contains(":") {
            let bytes = try IPAddress.parseIPv6(Array(text.utf8))
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                throw .ipv4Mapped
            }
            self.bytes = bytes
        } else {
            self.bytes = try IPAddress.parseIPv4(Array(text.utf8)[...])
        }
    }

    private static func parseIPv4(_ text: ArraySlice<UInt8>) throws(ParseError) -> [UInt8] {
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
                tail = try parseIPv4(field)
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
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var words: [UInt16] = []
        for index in stride(from: 0, to: 16, by: 2) { words.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])) }
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
        if bytes.allSatisfy({ $0 == 0 }) { return "unspecified address" }
        if family == .ipv4 {
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

    /// Numeric order; IPv4 before IPv6.
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.bytes.count != rhs.bytes.count { return lhs.bytes.count < rhs.bytes.count }
        return lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
