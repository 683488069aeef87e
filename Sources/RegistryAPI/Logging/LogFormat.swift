import Foundation
import HTTPServer
public import Logging
import RegistryCore

/// How log lines are written to stderr.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-11-28T12:00:00.123Z info GET /v1/services 200 durationMs=0.3 …`
    case text
    /// One JSON object per line: `{"time":…,"level":…,"message":…, metadata…}`; a request line
    /// carries `method`, `path`, `route`, `status` (number), `durationMs` (number), `requestId`,
    /// `actor`, `remoteAddress`, `userAgent` and `bytes` (number).
    case json
}

/// A log handler writing one line per event to stderr, as text or JSON, through
/// `LogSink.standardError` (lines below `notice` are written in batches by its thread). Request
/// lines, one per request, are built field by field with `LogLine`, in the same format.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let format: LogFormat

    public init(label: String, format: LogFormat) {
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata {
            if all.isEmpty { all = extra } else { all.merge(extra) { $1 } }
        }
        let line = Self.line(
            format: format, level: event.level, message: "\(event.message)", fields: all.keys.sorted().map { ($0, all[$0]!) })
        LogSink.standardError.append(line, immediately: event.level >= .notice)
    }

    /// One log line, newline included: `time level message key=value…` (text) or
    /// `{"time":…,"level":…,"message":…,key:value…}` (JSON), the fields in the order given.
    static func line(format: LogFormat, level: Logger.Level, message: String, fields: [(key: String, value: Logger.Metadata.Value)]) -> [UInt8] {
        switch format {
        case .text:
            var line = LogLine(format: .text, level: level) { LogEscaping.append(message, to: &$0) }
            for (key, value) in fields {
                let key = LogLine.Key(LogEscaping.escaped(key))
                switch value {
                case .string(let string): line.field(key, string: string)
                case .stringConvertible(let convertible): line.field(key, string: convertible.description)
                default: line.field(key, string: "\(value)")
                }
            }
            return line.finish()
        case .json:
            // A JSON object, so that a metadata key equal to `time`, `level` or `message` replaces
            // that value instead of writing the key twice.
            var object = JSONObject([("time", .string(timestamp())), ("level", .string(level.rawValue)), ("message", .string(message))])
            for (key, value) in fields { object[key] = json(value) }
            var line = JSONWriter.bytes(.object(object))
            line.append(UInt8(ascii: "\n"))
            return line
        }
    }

    /// A metadata value as JSON: numbers and booleans given as `.stringConvertible` stay numbers
    /// and booleans (so a pipeline can filter `status >= 500`), everything else is a string.
    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .stringConvertible(let number as Int): .integer(number)
        case .stringConvertible(let number as Double) where number.isFinite: .number("\(number)")
        case .stringConvertible(let flag as Bool): .bool(flag)
        case .array(let items): .array(items.map(json))
        case .dictionary(let members): .object(JSONObject(members.keys.sorted().map { ($0, json(members[$0]!)) }))
        default: .string("\(value)")
        }
    }

    /// RFC 3339 UTC time with milliseconds.
    static func timestamp() -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        appendTimestamp(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `timestamp()` to `line`, digit by digit (no intermediate strings).
    static func appendTimestamp(to line: inout [UInt8]) {
        line.append(addingCapacity: RFC3339.maxBytes) { appendTimestamp(to: &$0) }
    }

    /// `appendTimestamp(to:)` into an output span with room for `RFC3339.maxBytes`.
    static func appendTimestamp(to out: inout OutputSpan<UInt8>) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        RFC3339.append(seconds: Int(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000), to: &out)
    }
}

extension OutputSpan where Element == UInt8 {
    /// The most bytes `appendMilliseconds(fromNanoseconds:)` writes.
    static var maxMillisecondsBytes: Int { maxDecimalBytes + 5 }

    /// A duration given in nanoseconds, in milliseconds rounded to the microsecond (a half up),
    /// as Swift writes the `Double` `microseconds / 1000` (`0.042`, `12.5`, `3.0`), without going
    /// through `Double`.
    mutating func appendMilliseconds(fromNanoseconds nanoseconds: Int64) {
        // Rounded on the magnitude, the sign written on its own: `-0.5` has a whole part of zero.
        let microseconds = Int((nanoseconds.magnitude + 500) / 1000)
        if nanoseconds < 0 && microseconds > 0 { append(UInt8(ascii: "-")) }
        appendDecimal(microseconds / 1000)
        append(UInt8(ascii: "."))
        var fraction = microseconds % 1000
        var width = 3
        while width > 1 && fraction % 10 == 0 {
            fraction /= 10
            width -= 1
        }
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        while divisor > 0 {
            append(UInt8(ascii: "0") + UInt8(fraction / divisor % 10))
            divisor /= 10
        }
    }
}

/// One log line built in place, field by field, in either format: `time level message key=value…`
/// (text) or `{"time":…,"level":…,"message":…,"key":value…}` (JSON), ending with a newline.
/// The caller gives each key once, as a plain word (keys are neither escaped nor checked for
/// repeats): request lines that are not written in one piece (`RequestLogEntry.fieldByField`)
/// use it directly, with no array of fields and no boxed values on the request path. Each
/// field — separator, key and value — is written in room reserved once
/// (`Array.append(addingCapacity:initializingWith:)`, see `ByteAppending.swift`).
struct LogLine {
    private var bytes: [UInt8] = []
    private let format: LogFormat

    /// Starts a line: the time, the level, then the message, which `message` appends to the
    /// bytes it is given: escaped as `LogEscaping.append` does, and, for JSON, with nothing that
    /// a JSON string must escape (`"`, `\`, control characters).
    init(format: LogFormat, level: Logger.Level, message: (inout [UInt8]) -> Void) {
        self.format = format
        bytes.reserveCapacity(384)
        let json = format == .json
        if json { bytes.appendUTF8(#"{"time":""#) }
        StderrLogHandler.appendTimestamp(to: &bytes)
        let name = level.rawValue.utf8Span.span
        let (before, after) = json ? (#"","level":""#, #"","message":""#) : (" ", " ")
        bytes.append(addingCapacity: before.utf8.count + name.count + after.utf8.count) { out in
            out.appendUTF8(before)
            out.append(copying: name)
            out.appendUTF8(after)
        }
        message(&bytes)
        if json { bytes.append(UInt8(ascii: "\"")) }
    }

    /// A field's key with its separators, as each format writes it: ` key=` (text) or
    /// `,"key":` (JSON). The key is written as it is: callers give plain words
    /// (`StderrLogHandler.line` escapes the metadata keys it is given first). The request line's
    /// keys are made once (`RequestLogEntry.Keys`).
    struct Key: Sendable {
        let text: [UInt8]
        let json: [UInt8]

        init(_ name: String) {
            text = Array(" \(name)=".utf8)
            json = Array(",\"\(name)\":".utf8)
        }
    }

    /// Writes `key`, then lets `value` write at most `valueBytes` bytes.
    private mutating func field(_ key: Key, valueBytes: Int, _ value: (inout OutputSpan<UInt8>) -> Void) {
        let prefix = format == .json ? key.json.span : key.text.span
        bytes.append(addingCapacity: prefix.count + valueBytes) { out in
            out.append(copying: prefix)
            value(&out)
        }
    }

    /// A field whose value is `value` as it is, in double quotes for JSON.
    private mutating func field(_ key: Key, verbatim value: Span<UInt8>) {
        let quote = format == .json
        field(key, valueBytes: value.count + 2) { out in
            if quote { out.append(UInt8(ascii: "\"")) }
            out.append(copying: value)
            if quote { out.append(UInt8(ascii: "\"")) }
        }
    }

    /// A field whose value is `value`, already written out.
    private mutating func field(_ key: Key, written value: [UInt8]) {
        let bytes = value.span
        field(key, valueBytes: bytes.count) { $0.append(copying: bytes) }
    }

    /// `key=value` (quoted and escaped as `LogEscaping.textValue`) or `"key":"value"`.
    mutating func field(_ key: Key, string value: String) {
        let bytes = value.utf8Span.span
        var written: [UInt8] = []
        switch format {
        case .text:
            guard !LogEscaping.isPlainWord(bytes) else { return field(key, verbatim: bytes) }
            LogEscaping.appendTextValue(value, to: &written)
        case .json:
            guard JSONWriter.needsEscape(bytes) else { return field(key, verbatim: bytes) }
            JSONWriter.writeString(value, into: &written)
        }
        field(key, written: written)
    }

    /// A value written as it is: a plain word (`LogEscaping.isPlainWord`: visible ASCII without
    /// `"`, `=` or `\\`), which neither format escapes or quotes — a route's template or
    /// operation id, checked when the route is made.
    mutating func field(_ key: Key, plainWord value: String) {
        assert(LogEscaping.isPlainWord(value), "not a plain word: \(value)")
        field(key, verbatim: value.utf8Span.span)
    }

    /// The `path` field from the message's path, written once by `LogEscaping.appendPath` at
    /// `range` of the line: percent-encoded, so that neither format escapes anything in it
    /// (no `"`, `\`, space or control byte); `text` quotes it when it holds `=`, as
    /// `field(_:string:)` would.
    ///
    /// `rest`: the path's bytes after `range` that `LogEscaping.cutForMessage` took out of the
    /// message, written right after it.
    mutating func field(_ key: Key, encodedPathAt range: Range<Int>, continuedWith rest: [UInt8] = []) {
        let quoted =
            format == .json || (range.isEmpty && rest.isEmpty) || bytes[range].contains(UInt8(ascii: "="))
            || rest.contains(UInt8(ascii: "="))
        var written: [UInt8] = []
        written.reserveCapacity(range.count + rest.count + 2)
        if quoted { written.append(UInt8(ascii: "\"")) }
        written.append(contentsOf: bytes[range])
        written.append(contentsOf: rest)
        if quoted { written.append(UInt8(ascii: "\"")) }
        field(key, written: written)
    }

    /// `field(_:encodedPathAt:continuedWith:)` for a path written as it was sent
    /// (`LogEscaping.appendDecodedPath` returned true, and nothing was cut from the message):
    /// `path`'s bytes are copied again from the string, not from the line.
    mutating func field(_ key: Key, plainPath path: String, at range: Range<Int>) {
        let bytes = path.utf8Span.span
        guard bytes.count == range.count, !range.isEmpty else { return field(key, encodedPathAt: range) }
        field(key, verbatim: bytes)
    }

    /// An integer, in decimal in both formats (a JSON number).
    mutating func field(_ key: Key, integer value: Int) {
        field(key, valueBytes: OutputSpan<UInt8>.maxDecimalBytes) { $0.appendDecimal(value) }
    }

    /// A duration given in nanoseconds, in milliseconds (`OutputSpan.appendMilliseconds`).
    mutating func field(_ key: Key, millisecondsFromNanoseconds nanoseconds: Int64) {
        field(key, valueBytes: OutputSpan<UInt8>.maxMillisecondsBytes) { $0.appendMilliseconds(fromNanoseconds: nanoseconds) }
    }

    /// The finished line, newline included. (`mutating`, not `consuming`: a consumed copy of
    /// the line shared its buffer, so the newline's append copied the whole line.)
    mutating func finish() -> [UInt8] {
        if format == .json { bytes.append(UInt8(ascii: "}")) }
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}

/// Escaping of logged text, so that nothing a client sends (a path, a header, a name) can end a
/// line, forge another one, or send terminal control sequences: control characters (C0, DEL,
/// C1, and the Unicode line and paragraph separators) become `\n`, `\r`, `\t`, `\xNN` or
/// `\u{NNNN}`, and a backslash becomes `\\`. In the text format a value that is empty or
/// holds a space, `"` or `=` is written in double quotes, with `"` as `\"`.
enum LogEscaping {
    static func escaped(_ text: String, quote: Bool = false) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result += "\\t"
            case 0x5C: result += "\\\\"
            case 0x22 where quote: result += "\\\""
            case 0x00..<0x20, 0x7F:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\x" + (hex.count == 1 ? "0" : "") + hex
            case 0x80..<0xA0, 0x2028, 0x2029:
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Whether `byte` is written as it is (visible ASCII or space, not `\\`, nor `"` when quoting).
    @inline(__always)
    private static func plain(_ byte: UInt8, quote: Bool) -> Bool {
        byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") && !(quote && byte == UInt8(ascii: "\""))
    }

    /// Appends `escaped(text, quote:)` to `line`, copying the bytes when nothing needs escaping.
    static func append(_ text: String, quote: Bool = false, to line: inout [UInt8]) {
        if text.allUTF8Bytes({ plain($0, quote: quote) }) {
            line.appendUTF8(text)
        } else {
            line.append(contentsOf: escaped(text, quote: quote).utf8)
        }
    }

    /// Whether `text` is written as it is in both formats: not empty, visible ASCII without a
    /// space, `"`, `=` or a backslash.
    static func isPlainWord(_ text: String) -> Bool {
        isPlainWord(text.utf8Span.span)
    }

    /// `isPlainWord(_:)` of the UTF-8 `bytes`.
    static func isPlainWord(_ bytes: Span<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return false }
        for index in bytes.indices {
            let byte = bytes[index]
            guard byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "=") && byte != UInt8(ascii: "\\") else {
                return false
            }
        }
        return true
    }

    /// Whether `appendPath` and `appendDecodedPath` write `bytes` as they are (true for none).
    static func isPlainPath(_ bytes: Span<UInt8>) -> Bool {
        for index in bytes.indices where !plainPathByte(bytes[index]) { return false }
        return true
    }

    /// Appends `textValue(text)` to `line`.
    static func appendTextValue(_ text: String, to line: inout [UInt8]) {
        // One pass for the usual value: a plain word.
        if isPlainWord(text) {
            line.appendUTF8(text)
            return
        }
        let needsQuotes =
            text.isEmpty || text.utf8.contains { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") }
        if needsQuotes {
            line.append(UInt8(ascii: "\""))
            append(text, quote: true, to: &line)
            line.append(UInt8(ascii: "\""))
        } else {
            append(text, to: &line)
        }
    }

    /// A metadata value for the text format (`key=value` or `key="value with spaces"`).
    static func textValue(_ text: String) -> String {
        let needsQuotes = text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" })
        return needsQuotes ? "\"" + escaped(text, quote: true) + "\"" : escaped(text)
    }

    /// Appends a request path for a log message: bytes that are not visible ASCII, and `"`, `%`,
    /// `=` and `\`, percent-encoded again, so the path is one word and reads as it was requested.
    static func appendPath(_ path: String, to line: inout [UInt8]) {
        if path.allUTF8Bytes(plainPathByte) {
            line.appendUTF8(path)
            return
        }
        for byte in path.utf8 { appendPathByte(byte, to: &line) }
    }

    /// Appends the decoded form of a percent-encoded request path (as sent) the way
    /// `appendPath` writes a path: every decoded byte kept, a NUL (`%00`) or a byte that is
    /// not UTF-8 (`%FF`) included, where the server's decoded path (a C string, then a Swift
    /// string) would stop at the NUL or replace the byte with U+FFFD.
    ///
    /// An escaped `/`, `?` or `#` stays an escape (`%2F`, `%3F`, `%23`): decoded, `/a%2Fb` would
    /// read as the other path `/a/b`, and `/a%3Fb` as a path with a query.
    ///
    /// Returns whether `encoded` was written as it is (nothing in it decoded or escaped).
    @discardableResult
    static func appendDecodedPath(_ encoded: String, to line: inout [UInt8]) -> Bool {
        if encoded.allUTF8Bytes(plainPathByte) {
            line.appendUTF8(encoded)
            return true
        }
        let bytes = Array(encoded.utf8)
        var index = 0
        while index < bytes.count {
            guard let byte = PercentEncoding.escapedByte(bytes, at: index) else {
                appendPathByte(bytes[index], to: &line)
                index += 1
                continue
            }
            if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") {
                appendEscape(byte, to: &line)
            } else {
                appendPathByte(byte, to: &line)
            }
            index += 3
        }
        return false
    }

    /// The most bytes of a path (as `appendPath` writes it) a request line's message shows; the
    /// `path` field has it whole. A long path (up to the 32 KiB a header section may take) is
    /// then written once per line, not twice.
    static let maxMessagePathBytes = 256

    /// The most bytes of a method a request line's message shows (the `method` field has it whole).
    static let maxMessageMethodBytes = 32

    /// `…`, after a path cut short in a message.
    private static let ellipsis = Array("…".utf8)

    /// Cuts the path written at `path` in `line` (its last bytes) to `limit` bytes, never inside
    /// a `%XX` escape, shrinking `path` to match and appending `…`; returns the bytes cut off
    /// (empty, and nothing appended, when the path was short enough).
    static func cutForMessage(_ line: inout [UInt8], path: inout Range<Int>, limit: Int = maxMessagePathBytes) -> [UInt8] {
        guard path.count > limit else { return [] }
        var cut = path.lowerBound + limit
        // An escape is `%` and two hex digits: a `%` among the last two kept bytes starts one the cut would split.
        if line[cut - 1] == UInt8(ascii: "%") {
            cut -= 1
        } else if line[cut - 2] == UInt8(ascii: "%") {
            cut -= 2
        }
        let rest = Array(line[cut..<path.upperBound])
        line.removeSubrange(cut..<path.upperBound)
        line.append(contentsOf: ellipsis)
        path = path.lowerBound..<cut
        return rest
    }

    /// `=` too: in the text format the message comes before the fields, and a path (or method)
    /// holding `key=value` would read as one more field to a logfmt parser.
    private static func plainPathByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "%") && byte != UInt8(ascii: "\\")
            && byte != UInt8(ascii: "=")
    }

    private static func appendPathByte(_ byte: UInt8, to line: inout [UInt8]) {
        guard !plainPathByte(byte) else { return line.append(byte) }
        appendEscape(byte, to: &line)
    }

    private static func appendEscape(_ byte: UInt8, to line: inout [UInt8]) {
        line.append(UInt8(ascii: "%"))
        line.append(hexDigits[Int(byte >> 4)])
        line.append(hexDigits[Int(byte & 0xF)])
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)
}
