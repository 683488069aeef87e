internal import CMicroHTTPD
import Foundation

/// Checks the line endings of the request line and header section as received.
///
/// libmicrohttpd 0.9.75 accepts a bare LF as a line ending, reads a header value only up to an
/// embedded NUL, and joins obsolete line folding, with no option to refuse any of them. It parses
/// the section in place, in one contiguous buffer starting at the method: a CRLF becomes two
/// NULs, a bare LF one, the colon after a field name one. So the section is well formed exactly
/// when, walking it field by field, every line (the request line, each field line, the final
/// empty line) ends in two NULs and the next line starts right after them, ending at the size
/// libmicrohttpd reports.
enum HeaderSection {
    /// The problem of a malformed section, nil when it is well formed. A field whose value holds
    /// a NUL (which libmicrohttpd's value stops at) is put in `wholeValues` (by its position
    /// among the fields) with the rest of its line, so that the refused request is logged with
    /// what was sent rather than a value cut short.
    ///
    /// `fields`: the header fields' name and value pointers into libmicrohttpd's buffer, in
    /// order (`rawFields(_:)`, read once per request).
    static func check(
        _ fields: [(UnsafePointer<CChar>, UnsafePointer<CChar>)], start: UnsafePointer<CChar>, size: Int, version: UnsafePointer<CChar>,
        wholeValues: inout [Int: String]
    ) -> HTTPRejection? {
        guard size > 0 else { return nil }
        let base = UnsafeRawPointer(start)
        let end = base + size
        let malformed = HTTPRejection.malformed(
            "the request line and every header line must end in CRLF, with no NUL or line folding in a header value")
        // Two NULs at `position` (a CRLF), within the section.
        func endsLine(_ position: UnsafeRawPointer) -> Bool {
            position >= base && position + 2 <= end && position.load(as: UInt8.self) == 0 && (position + 1).load(as: UInt8.self) == 0
        }
        let versionStart = UnsafeRawPointer(version)
        guard versionStart >= base, versionStart < end else { return malformed }
        let versionEnd = versionStart + strlen(version)
        guard endsLine(versionEnd) else { return malformed }
        var cursor = versionEnd + 2
        for (index, (name, value)) in fields.enumerated() {
            let nameStart = UnsafeRawPointer(name)
            let valueStart = UnsafeRawPointer(value)
            guard nameStart == cursor, valueStart > nameStart, valueStart < end else { return malformed }
            let nameEnd = nameStart + strlen(name)
            guard nameEnd < valueStart else { return malformed }
            var between = nameEnd + 1
            while between < valueStart {
                let byte = between.load(as: UInt8.self)
                guard byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") else { return malformed }
                between += 1
            }
            let valueEnd = valueStart + strlen(value)
            guard endsLine(valueEnd) else {
                // A bare LF ends the line too (as one NUL): then the next field starts right
                // after it. Otherwise the value went on past a NUL, up to its CRLF.
                let next = index + 1 < fields.count ? UnsafeRawPointer(fields[index + 1].0) : end
                if next > valueEnd + 1 {
                    var lineEnd = valueEnd
                    while lineEnd + 2 <= next && !endsLine(lineEnd) { lineEnd += 1 }
                    wholeValues[index] = String(decoding: UnsafeRawBufferPointer(start: valueStart, count: lineEnd - valueStart), as: UTF8.self)
                }
                return malformed
            }
            cursor = valueEnd + 2
        }
        guard endsLine(cursor), cursor + 2 == end else { return malformed }
        return nil
    }

    /// What follows the request target as recorded (`recorded` bytes, a C string from
    /// libmicrohttpd's URI log callback) up to the protocol version, in libmicrohttpd's buffer:
    /// `separatorOnly` when that is the one separator (the usual request line), `nulInTarget`
    /// when it holds anything but separators (NUL, space, tab): the target went on past a raw
    /// NUL, which the recorded C string stopped at, yet libmicrohttpd read past it (it finds
    /// the query with `memchr` and parses its arguments). Nil when `url` is not in the buffer
    /// before `version` (nothing to say).
    static func afterTarget(url: UnsafePointer<CChar>, recorded: Int, version: UnsafePointer<CChar>) -> AfterTarget? {
        let end = UnsafeRawPointer(version)
        let start = UnsafeRawPointer(url) + recorded
        guard UnsafeRawPointer(url) < end, start < end else { return nil }
        var cursor = start
        while cursor < end {
            let byte = cursor.load(as: UInt8.self)
            if byte != 0 && byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") { return .nulInTarget }
            cursor += 1
        }
        return end - start == 1 ? .separatorOnly : .separators
    }

    enum AfterTarget {
        case separatorOnly
        /// More than one separator byte: nothing the target is known to hold.
        case separators
        case nulInTarget
    }

    /// The header fields' name and value pointers into libmicrohttpd's buffer, in order: read
    /// once per request, for this check and for the request's `HTTPHeaders`.
    static func rawFields(_ connection: OpaquePointer) -> [(UnsafePointer<CChar>, UnsafePointer<CChar>)] {
        let collector = PointerCollector()
        let pointer = Unmanaged.passUnretained(collector).toOpaque()
        _ = MHD_get_connection_values(
            connection, .HEADER_KIND,
            { cls, _, key, value in
                guard let cls, let key, let value else { return .YES }
                Unmanaged<PointerCollector>.fromOpaque(cls).takeUnretainedValue().pairs.append((key, value))
                return .YES
            }, pointer)
        return withExtendedLifetime(collector) { collector.pairs }
    }

    private final class PointerCollector {
        var pairs: [(UnsafePointer<CChar>, UnsafePointer<CChar>)] = []
    }
}
