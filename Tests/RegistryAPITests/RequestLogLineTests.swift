import Foundation
import Testing

@testable import RegistryAPI

/// A request's log line is written in one reservation when nothing in it is escaped, quoted or
/// cut (`RequestLogEntry.direct`), field by field otherwise (`fieldByField`): the two must give
/// the same bytes wherever the first applies, in both formats, and the first must apply to the
/// usual request.
@Suite struct RequestLogLineTests {
    private static let usual = RequestLogEntry(
        method: "GET", path: "/v1/services/default/ocs-external-rgw-lb", status: 200, actor: "anonymous", bytes: 1_234,
        elapsedNanoseconds: 42_420, operation: "getService", route: "/v1/services/{namespace}/{name}", remoteAddress: "127.0.0.1",
        requestID: "1a2b3c4d5e6-7f", userAgent: "curl/8.0.1")

    /// The line without its timestamp (the two lines are built at slightly different times).
    private func withoutTime(_ line: [UInt8]) -> String {
        String(decoding: line, as: UTF8.self).replacing(#/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#, with: "TIME")
    }

    /// Each field varied alone from the usual request, over values on both sides of every
    /// condition of the direct path (empty, escaped, quoted, `=`, `%`, non-ASCII, control
    /// characters, the message's length limits), and a few varied together.
    private static var entries: [RequestLogEntry] {
        var entries = [usual]
        func varied(_ change: (inout RequestLogEntry) -> Void) {
            var entry = usual
            change(&entry)
            entries.append(entry)
        }
        let texts = ["", "a", "a b", "a\"b", "a=b", "a\\b", "a%41", "é", "a\u{7}b", "a\u{7F}b", "a\nb", "\u{85}", "a\u{2028}b", "a\u{1F}"]
        for text in texts {
            varied { $0.actor = text }
            varied { $0.requestID = text }
            varied { $0.remoteAddress = text }
            varied { $0.userAgent = text }
            varied { $0.method = text }
            varied { $0.path = "/" + text }
            varied { $0.path = text }
        }
        for count in [31, 32, 33, 64] { varied { $0.method = String(repeating: "M", count: count) } }
        for count in [255, 256, 257, 1_000] { varied { $0.path = "/" + String(repeating: "p", count: count - 1) } }
        for status in [0, 99, 404, 503, -1, Int.max, Int.min] { varied { $0.status = status } }
        for bytes in [0, 9, 10, Int.max, Int.min] { varied { $0.bytes = bytes } }
        for nanoseconds: Int64 in [0, 499, 500, 999_500, 86_400_000_000_000, -1, -1_500, Int64.max, Int64.min] {
            varied { $0.elapsedNanoseconds = nanoseconds }
        }
        varied { $0.userAgent = nil }
        varied { $0.route = "-" }
        varied {
            $0.remoteAddress = ""
            $0.userAgent = nil
            $0.method = "DELETE"
            $0.path = "/"
        }
        return entries
    }

    @Test(arguments: LogFormat.allCases) func bothWaysWriteTheSameLine(format: LogFormat) {
        var direct = 0
        for entry in Self.entries {
            let slow = entry.fieldByField(format: format)
            guard let fast = entry.direct(format: format) else { continue }
            direct += 1
            #expect(withoutTime(fast) == withoutTime(slow), "\(entry)")
            #expect(fast.last == UInt8(ascii: "\n"))
        }
        // The usual request and the variations it stays usual under take the direct way.
        #expect(direct > 20)
        #expect(Self.usual.direct(format: format) != nil)
        #expect(withoutTime(Self.usual.line(format: format)) == withoutTime(Self.usual.fieldByField(format: format)))
    }

    /// What the direct way leaves to the other: an escaped or quoted value, a method or path
    /// cut in the message or rewritten.
    @Test func unusualValuesTakeTheOtherWay() {
        var entry = Self.usual
        entry.actor = "a b"
        #expect(entry.direct(format: .text) == nil)
        #expect(entry.direct(format: .json) != nil)
        entry.actor = "a\"b"
        #expect(entry.direct(format: .json) == nil)
        entry = Self.usual
        entry.path = "/" + String(repeating: "p", count: 256)
        #expect(entry.direct(format: .text) == nil && entry.direct(format: .json) == nil)
        entry.path = "/a%41"
        #expect(entry.direct(format: .text) == nil && entry.direct(format: .json) == nil)
        entry = Self.usual
        entry.method = String(repeating: "M", count: 33)
        #expect(entry.direct(format: .text) == nil && entry.direct(format: .json) == nil)
    }
}
