import Foundation
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

/// A log handler writing one line per event to stderr, as text or JSON. It is on the hot path
/// (one line per request), so it formats time with `gmtime_r` and writes with one `write(2)`.
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
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let keys = all.keys.sorted()
        var line: [UInt8]
        switch format {
        case .text:
            var text = "\(Self.timestamp()) \(event.level) \(LogEscaping.escaped("\(event.message)"))"
            for key in keys { text += " \(LogEscaping.escaped(key))=\(LogEscaping.textValue("\(all[key]!)"))" }
            line = Array(text.utf8)
        case .json:
            var object = JSONObject([
                ("time", .string(Self.timestamp())), ("level", .string(event.level.rawValue)), ("message", .string("\(event.message)")),
            ])
            for key in keys { object[key] = Self.json(all[key]!) }
            line = JSONWriter.bytes(.object(object))
        }
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
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
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):"
            + "\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
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

    /// A metadata value for the text format (`key=value` or `key="value with spaces"`).
    static func textValue(_ text: String) -> String {
        let needsQuotes = text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" })
        return needsQuotes ? "\"" + escaped(text, quote: true) + "\"" : escaped(text)
    }

    /// A request path for a log message: bytes that are not visible ASCII, and `"`, `%` and `\`,
    /// percent-encoded again, so the path is one word and reads as it was requested.
    static func path(_ path: String) -> String {
        var result = ""
        for byte in path.utf8 {
            if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "%") && byte != UInt8(ascii: "\\") {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return result
    }
}
