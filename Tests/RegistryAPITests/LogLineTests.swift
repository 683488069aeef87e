import Foundation
import HTTPServer
import Logging
import Testing

@testable import RegistryAPI

/// The request line is written field by field (`LogLine`); it must read exactly as the general
/// path (`StderrLogHandler.line`) writes the same fields, in both formats.
@Suite struct LogLineTests {
    /// The line without its leading timestamp (`2026-12-01T18:00:00.123Z `, or the JSON `time` member).
    private func withoutTime(_ line: [UInt8], _ format: LogFormat) -> String {
        let text = String(decoding: line, as: UTF8.self)
        switch format {
        case .text: return String(text.drop { $0 != " " })
        case .json: return String(text[text.range(of: #","level""#)!.lowerBound...])
        }
    }

    @Test(arguments: LogFormat.allCases) func fieldsReadAsTheGeneralPathWritesThem(format: LogFormat) throws {
        let values = ["plain", "", "with space", #"quote"d"#, "a=b", "back\\slash", "line\nbreak", "tab\there", "\u{7F}\u{85}é"]
        for value in values {
            var line = LogLine(format: format, level: .info) { LogEscaping.append("GET /v1 200", to: &$0) }
            line.field(LogLine.Key("actor"), string: value)
            line.field(LogLine.Key("status"), integer: -404)
            let expected = StderrLogHandler.line(
                format: format, level: .info, message: "GET /v1 200",
                fields: [("actor", .string(value)), ("status", .stringConvertible(-404))])
            #expect(withoutTime(line.finish(), format) == withoutTime(expected, format), "value \(value.debugDescription)")
        }
    }

    @Test func metadataKeysCannotBreakTheLine() {
        let line = StderrLogHandler.line(format: .text, level: .warning, message: "m", fields: [("bad\nkey", .string("v"))])
        #expect(String(decoding: line, as: UTF8.self).hasSuffix(#" warning m bad\nkey=v"# + "\n"))
    }

    @Test func millisecondsReadAsSwiftWritesTheDouble() {
        let fixed: [Int64] = [0, 499, 500, 1_000, 10_000, 120_000, 1_000_000, 1_500_000, 12_345_000, 3_000_000_000, 86_400_000_007_000]
        let spread: [Int64] = (0..<2_000).map { (index: Int64) in index * 7_919 + index * index * 131 }
        let samples = fixed + spread
        for nanoseconds in samples {
            var line = LogLine(format: .text, level: .info) { _ in }
            line.field(LogLine.Key("durationMs"), millisecondsFromNanoseconds: nanoseconds)
            let written = String(decoding: line.finish(), as: UTF8.self)
            // Rounded to the nearest microsecond (a half up), then written as Swift writes the Double.
            let expected = (Double((nanoseconds + 500) / 1000) / 1000).description
            #expect(written.hasSuffix(" durationMs=\(expected)\n"), "\(nanoseconds): \(written)")
        }
    }

    /// The `path` field copied from the message (`field(_:encodedPathAt:)`) reads as the
    /// general path writes the encoded path as a string, in both formats (quoted in `text` when
    /// it holds `=`).
    @Test(arguments: LogFormat.allCases) func pathFieldReadsAsTheEncodedPathWritten(format: LogFormat) throws {
        for path in ["/v1/services/default/web", "/a=b", "/?x=1&y=2", "/v1/a b/\"%\\\u{1}é", "/"] {
            var range = 0..<0
            var line = LogLine(format: format, level: .info) { bytes in
                bytes.append(contentsOf: "GET ".utf8)
                let start = bytes.count
                LogEscaping.appendPath(path, to: &bytes)
                range = start..<bytes.count
                bytes.append(contentsOf: " 200".utf8)
            }
            line.field(LogLine.Key("path"), encodedPathAt: range)
            var encoded: [UInt8] = []
            LogEscaping.appendPath(path, to: &encoded)
            let expected = StderrLogHandler.line(
                format: format, level: .info, message: "GET \(String(decoding: encoded, as: UTF8.self)) 200",
                fields: [("path", .string(String(decoding: encoded, as: UTF8.self)))])
            #expect(withoutTime(line.finish(), format) == withoutTime(expected, format), "path \(path.debugDescription)")
        }
    }

    @Test func requestPathsArePercentEncodedAgain() {
        var bytes: [UInt8] = []
        LogEscaping.appendPath("/v1/a b/\"%\\\u{1}é", to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "/v1/a%20b/%22%25%5C%01%C3%A9")
        bytes = []
        LogEscaping.appendPath("/a=b/level=error", to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "/a%3Db/level%3Derror")
    }
}

@Suite struct RouterTests {
    private let router = Router(routes: [
        Route("GET", "/v1/services", "listServices") { _ in HTTPResponse(status: 200) },
        Route("GET", "/v1/services/{namespace}/{name}", "getService") { _ in HTTPResponse(status: 200) },
        Route("DELETE", "/v1/services/{namespace}/{name}/addresses/{ip}", "deleteAddress") { _ in HTTPResponse(status: 204) },
    ])

    @Test func parametersAreTakenFromTheirSegments() throws {
        guard case .found(let route, let parameters) = router.match(method: "DELETE", path: "/v1/services/default/rgw/addresses/10.0.0.1")
        else {
            Issue.record("no match")
            return
        }
        #expect(route.operationID == "deleteAddress")
        #expect(parameters == PathParameters(["namespace": "default", "name": "rgw", "ip": "10.0.0.1"]))
        #expect(parameters["ip"] == "10.0.0.1")
        #expect(parameters["missing"] == nil)
    }

    /// The path is walked in place: a segment's bytes are taken whole, whatever they hold
    /// (non-ASCII text, `%`, `:`), and a literal must be equal, not a prefix.
    @Test func segmentsAreTakenWholeAndLiteralsExactly() throws {
        guard case .found(_, let parameters) = router.match(method: "DELETE", path: "/v1/services/dé fault/ré%2Fx/addresses/::1") else {
            Issue.record("no match")
            return
        }
        #expect(parameters == PathParameters(["namespace": "dé fault", "name": "ré%2Fx", "ip": "::1"]))
        for path in ["/v1/servicesx/default/rgw", "/v1/service/default/rgw", "/v2/services", "/v1/services/a/b/addresses/c/", "/v1/services//"] {
            guard case .notFound = router.match(method: "GET", path: path) else {
                Issue.record("\(path) matched")
                continue
            }
        }
        guard case .notFound = router.match(method: "GET", path: String(repeating: "/x", count: 10_000)) else {
            Issue.record("a path of 10,000 segments matched")
            return
        }
    }

    @Test func otherMethodsAndPathsAreRefused() {
        guard case .methodNotAllowed(let allowed) = router.match(method: "POST", path: "/v1/services/default/rgw") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == ["GET", "HEAD"])
        for path in ["/v1/services/default/", "/v1//default/rgw", "v1/services", "/v1/services/default/rgw/x", "/"] {
            guard case .notFound = router.match(method: "GET", path: path) else {
                Issue.record("\(path) matched")
                continue
            }
        }
        guard case .found(let route, _) = router.match(method: "HEAD", path: "/v1/services") else {
            Issue.record("HEAD is served wherever GET is")
            return
        }
        #expect(route.template == "/v1/services")
    }
}

@Suite struct RequestIDTests {
    /// A request without a usable `X-Request-Id` gets the process's random prefix (11 hex
    /// digits and a dash) and a counter in lower-case hex, one more per request.
    @Test func generatedIDsArePrefixAndCounter() throws {
        let request = HTTPRequest(method: "GET", path: "/v1/services")
        let ids = (0..<3).map { _ in RegistryApplication.requestID(from: request) }
        for id in ids {
            let parts = id.split(separator: "-")
            #expect(parts.count == 2 && parts[0].count == 11)
            #expect(id.utf8.allSatisfy { $0 == UInt8(ascii: "-") || (48...57).contains($0) || (97...102).contains($0) })
        }
        let counters = try ids.map { try #require(Int($0.split(separator: "-")[1], radix: 16)) }
        #expect(counters[1] > counters[0] && counters[2] > counters[1])
        #expect(Set(ids.map { $0.split(separator: "-")[0] }).count == 1)
        var given = request
        given.headers.add("X-Request-Id", "trace-7")
        #expect(RegistryApplication.requestID(from: given) == "trace-7")
    }
}
