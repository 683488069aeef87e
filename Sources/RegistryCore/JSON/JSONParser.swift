/// Why a document is not valid JSON, with the 1-based line and column where parsing stopped.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var column: Int
    /// The member or element being read where parsing stopped (for a duplicate name, that
    /// member), written as field errors name fields (`ports[1].port`; a name that is not a plain
    /// word in brackets, `labels[app.kubernetes.io/name]`, JSON-quoted when it holds a bracket,
    /// quote, backslash or control character; names cut at 64 characters); empty at the top level.
    public var field: String = ""

    public init(message: String, line: Int, column: Int, field: String = "") {
        self.message = message
        self.line = line
        self.column = column
        self.field = field
    }

    public var description: String { "line \(line), column \(column)\(field.isEmpty ? "" : " (in \(field))"): \(message)" }
}

/// A strict RFC 8259 parser: no comments, no trailing commas, no duplicate member names, UTF-8
/// only, and a nesting limit so that hostile input cannot exhaust the stack.
public struct JSONParser {
    public static let defaultMaxDepth = 64

    private var index = 0
    private let maxDepth: Int

    /// Parses one complete document (surrounding white space allowed).
    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONSyntaxError) -> JSONValue {
        // The bytes are read through a `Span` handed to every step: no reference counting and
        // no slices per value (`Array` slices and their strings retained the buffer each time).
        let span = bytes.span
        var parser = JSONParser(maxDepth: maxDepth)
        parser.skipWhitespace(span)
        let value = try parser.parseValue(span, depth: 0)
        parser.skipWhitespace(span)
        if parser.index < span.count {
            throw parser.error(span, "unexpected content after the JSON value")
        }
        return value
    }

    private init(maxDepth: Int) {
        self.maxDepth = maxDepth
    }

    /// `error(_:_:)` with `member` (a decoded member name) appended to the field path: the
    /// member the error is about (a duplicate name).
    private func error(_ bytes: borrowing Span<UInt8>, _ message: String, member: String?) -> JSONSyntaxError {
        var error = error(bytes, message)
        if let member { error.field += Self.segment(member, first: error.field.isEmpty) }
        return error
    }

    /// A member name as it ends a field path: `.name` (`name` first) for a plain word, else in
    /// brackets (`[app.kubernetes.io/name]`), JSON-quoted when it holds a bracket, a quote, a
    /// backslash or a control character; cut at 64 characters (`…`).
    static func segment(_ name: String, first: Bool) -> String {
        let shown = shownName(name)
        if !name.isEmpty && name.utf8.allSatisfy(isIdentifierByte) { return first ? shown : "." + shown }
        let plainInBrackets = shown.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0 != "[" && $0 != "]" && $0 != "\"" && $0 != "\\" }
        return plainInBrackets ? "[\(shown)]" : "[\(JSONWriter.string(.string(shown)))]"
    }

    /// A member name as errors show it: its first 64 characters, then `…`.
    private static func shownName(_ name: String) -> String {
        name.count > 64 ? String(name.prefix(64)) + "…" : name
    }

    private func error(_ bytes: borrowing Span<UInt8>, _ message: String) -> JSONSyntaxError {
        var line = 1
        var column = 1
        for position in 0..<min(index, bytes.count) {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return JSONSyntaxError(message: message, line: line, column: column, field: Self.field(bytes, before: min(index, bytes.count)))
    }

    /// The field path at `end` of a document whose bytes before `end` parsed (see
    /// `JSONSyntaxError.field`): the containers open there, each with its member's key or
    /// element's index.
    private static func field(_ bytes: borrowing Span<UInt8>, before end: Int) -> String {
        enum Level {
            case object(key: String?, readingKey: Bool)
            case array(index: Int)
        }
        var levels: [Level] = []
        var position = 0
        while position < end {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "{"): levels.append(.object(key: nil, readingKey: true))
            case UInt8(ascii: "["): levels.append(.array(index: 0))
            case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = levels.popLast()
            case UInt8(ascii: ":"):
                if case .object(let key, _)? = levels.last { levels[levels.count - 1] = .object(key: key, readingKey: false) }
            case UInt8(ascii: ","):
                switch levels.last {
                case .object?: levels[levels.count - 1] = .object(key: nil, readingKey: true)
                case .array(let index)?: levels[levels.count - 1] = .array(index: index + 1)
                case nil: break
                }
            case UInt8(ascii: "\""):
                // A string, to its closing quote or `end`; a member name complete before `end`
                // is decoded (it parsed once already).
                let start = position - 1
                while position < end && bytes[position] != UInt8(ascii: "\"") {
                    position += bytes[position] == UInt8(ascii: "\\") ? 2 : 1
                }
                if position < end, case .object(nil, true)? = levels.last {
                    var parser = JSONParser(maxDepth: 1)
                    parser.index = start
                    levels[levels.count - 1] = .object(key: (try? parser.parseString(bytes)) ?? "", readingKey: true)
                }
                position += 1
            default: break
            }
        }
        var field = ""
        for level in levels {
            switch level {
            case .object(let key?, _): field += segment(key, first: field.isEmpty)
            case .object(nil, _): break
            case .array(let index): field += "[\(index)]"
            }
        }
        return field
    }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"):
            true
        default: false
        }
    }

    private mutating func skipWhitespace(_ bytes: borrowing Span<UInt8>) {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue(_ bytes: borrowing Span<UInt8>, depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard index < bytes.count else { throw error(bytes, "unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(bytes, depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(bytes, depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString(bytes))
        case UInt8(ascii: "t"):
            try expectLiteral(bytes, "true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral(bytes, "false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral(bytes, "null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber(bytes)
        default: throw error(bytes, "unexpected character '\(printable(bytes[index]))'")
        }
    }

    private func printable(_ byte: UInt8) -> String {
        (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\u{\(String(byte, radix: 16))}"
    }

    private mutating func expectLiteral(_ bytes: borrowing Span<UInt8>, _ literal: String) throws(JSONSyntaxError) {
        let count = literal.utf8.count
        guard index + count <= bytes.count else { throw error(bytes, "invalid literal (expected '\(literal)')") }
        for (offset, byte) in literal.utf8.enumerated() where bytes[index + offset] != byte {
            throw error(bytes, "invalid literal (expected '\(literal)')")
        }
        index += count
    }

    private mutating func parseObject(_ bytes: borrowing Span<UInt8>, depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= maxDepth else { throw error(bytes, "nesting deeper than \(maxDepth) levels") }
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        // Duplicate names: a linear scan while the object is small (most are), a set beyond.
        var seen: Set<String>? = nil
        skipWhitespace(bytes)
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject(members))
        }
        while true {
            skipWhitespace(bytes)
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error(bytes, "expected a member name in double quotes")
            }
            let keyStart = index
            let key = try parseString(bytes)
            let duplicate: Bool
            if members.count < 16 {
                duplicate = members.contains { $0.key == key }
            } else {
                var names = seen.take() ?? Set(members.map(\.key))
                duplicate = !names.insert(key).inserted
                seen = names
            }
            guard !duplicate else {
                index = keyStart
                throw error(bytes, "duplicate member name \(JSONWriter.string(.string(Self.shownName(key))))", member: key)
            }
            skipWhitespace(bytes)
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error(bytes, "expected ':'") }
            index += 1
            skipWhitespace(bytes)
            members.append((key, try parseValue(bytes, depth: depth)))
            skipWhitespace(bytes)
            guard index < bytes.count else { throw error(bytes, "unexpected end of input, expected ',' or '}'") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(JSONObject(members))
            }
            throw error(bytes, "expected ',' or '}'")
        }
    }

    private mutating func parseArray(_ bytes: borrowing Span<UInt8>, depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= maxDepth else { throw error(bytes, "nesting deeper than \(maxDepth) levels") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace(bytes)
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace(bytes)
            elements.append(try parseValue(bytes, depth: depth))
            skipWhitespace(bytes)
            guard index < bytes.count else { throw error(bytes, "unexpected end of input, expected ',' or ']'") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            throw error(bytes, "expected ',' or ']'")
        }
    }

    private mutating func parseNumber(_ bytes: borrowing Span<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error(bytes, "invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw error(bytes, "invalid number (leading zero)") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error(bytes, "invalid number (digit expected after '.')") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error(bytes, "invalid number (digit expected in exponent)") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        return .number(Self.text(bytes, start..<index) ?? "")
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func parseString(_ bytes: borrowing Span<UInt8>) throws(JSONSyntaxError) -> String {
        index += 1
        let start = index
        // Fast path: no escapes. ASCII needs no validation (the generic validator, unspecialized
        // for array slices, cost more than the rest of the parse).
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                guard let text = Self.text(bytes, start..<index) else { throw error(bytes, "string is not valid UTF-8") }
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error(bytes, "control character in string (must be escaped)") }
            index += 1
        }
        // With escapes: the UTF-8 bytes gathered in one buffer (each run of plain bytes checked
        // once, each escape encoded), made a string at the end. Appending to a
        // `String.UnicodeScalarView` copied the string at every escape (quadratic: a 4 MB body
        // of `\n` took two minutes).
        var utf8: [UInt8] = []
        utf8.reserveCapacity(index - start + 64)
        var run = start
        func flush(_ parser: JSONParser, _ bytes: borrowing Span<UInt8>) throws(JSONSyntaxError) {
            guard (try? UTF8Span(validating: bytes.extracting(run..<parser.index))) != nil else {
                throw parser.error(bytes, "string is not valid UTF-8")
            }
            for position in run..<parser.index { utf8.append(bytes[position]) }
        }
        func append(_ scalar: Unicode.Scalar) {
            UTF8.encode(scalar) { utf8.append($0) }
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                try flush(self, bytes)
                index += 1
                return String(decoding: utf8, as: UTF8.self)
            }
            if byte < 0x20 { throw error(bytes, "control character in string (must be escaped)") }
            if byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            try flush(self, bytes)
            index += 1
            guard index < bytes.count else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                let first = try parseHex4(bytes)
                if (0xD800...0xDBFF).contains(first) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw error(bytes, "unpaired UTF-16 surrogate in \\u escape")
                    }
                    index += 2
                    let second = try parseHex4(bytes)
                    guard (0xDC00...0xDFFF).contains(second) else { throw error(bytes, "unpaired UTF-16 surrogate in \\u escape") }
                    let value = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    append(UnicodeScalar(value)!)
                } else if let scalar = UnicodeScalar(first) {
                    append(scalar)
                } else {
                    throw error(bytes, "unpaired UTF-16 surrogate in \\u escape")
                }
            default:
                index -= 1
                throw error(bytes, "invalid escape '\\\(printable(escape))'")
            }
            run = index
        }
        throw error(bytes, "unterminated string")
    }

    /// The UTF-8 text of `range` of `bytes`; nil when it is not valid UTF-8.
    private static func text(_ bytes: borrowing Span<UInt8>, _ range: Range<Int>) -> String? {
        guard let text = try? UTF8Span(validating: bytes.extracting(range)) else { return nil }
        return String(copying: text)
    }

    private mutating func parseHex4(_ bytes: borrowing Span<UInt8>) throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error(bytes, "invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error(bytes, "invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}
