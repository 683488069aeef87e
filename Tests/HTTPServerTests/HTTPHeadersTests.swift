import HTTPServer
import Testing

/// Field names compare case-insensitively in ASCII only (RFC 9110 §5.1).
@Suite struct HTTPHeadersTests {
    @Test func namesCompareCaseInsensitivelyInASCII() {
        let headers = HTTPHeaders([("content-TYPE", "application/json"), ("X-Request-Id", "a"), ("x-request-id", "b"), ("Ä-x", "1")])
        #expect(headers["Content-Type"] == "application/json")
        #expect(headers["CONTENT-type"] == "application/json")
        #expect(headers["X-REQUEST-ID"] == "a")
        #expect(headers.values("x-Request-ID") == ["a", "b"])
        #expect(headers["Content-Typf"] == nil)
        #expect(headers["Content-Type "] == nil)
        // `@` and `` ` `` differ only in the bit that case folding flips: they are not letters.
        #expect(HTTPHeaders([("a@b", "1")])["a`b"] == nil)
        #expect(headers["ä-x"] == nil)
        #expect(headers["Ä-x"] == "1")
    }

    /// `count(of:)` counts what `values(_:)` returns, case-insensitively, without the copies.
    @Test func countsFieldsOfAName() {
        let headers = HTTPHeaders([("X-Request-Id", "a"), ("x-request-id", "b"), ("Host", "h")])
        #expect(headers.count(of: "X-REQUEST-ID") == 2 && headers.values("X-REQUEST-ID").count == 2)
        #expect(headers.count(of: "Host") == 1 && headers.count(of: "Accept") == 0)
    }

    /// Headers built with room reserved read as the same headers built without it.
    @Test func reservedCapacityKeepsTheFields() {
        var headers = HTTPHeaders([("Content-Type", "application/json")], reservingCapacity: 4)
        headers.add("ETag", "\"1-a\"")
        #expect(headers.map { $0.name } == ["Content-Type", "ETag"] && headers["etag"] == "\"1-a\"")
        #expect(HTTPHeaders([("A", "1"), ("B", "2")], reservingCapacity: 1).count(of: "b") == 1)
    }

    /// A list field's values combined in order (RFC 9110 §5.3), names compared in any case; nil
    /// when absent; one value as it was sent.
    @Test func listFieldsAreCombinedInOrder() {
        let headers = HTTPHeaders([("If-None-Match", "\"a\""), ("Host", "x"), ("if-none-match", "\"b\", W/\"c\""), ("If-Match", "*")])
        #expect(headers.list("If-None-Match") == "\"a\", \"b\", W/\"c\"")
        #expect(headers.list("IF-MATCH") == "*")
        #expect(headers.list("Accept") == nil)
        #expect(HTTPHeaders([("Accept", "")]).list("accept") == "")
    }
}

/// A response's body kept as its first segment and the ones after it reads as the list it was given.
@Suite struct HTTPResponseBodyTests {
    @Test func segmentsBodyAndCountAgree() {
        let one = HTTPResponse(status: 200, body: Array("abc".utf8))
        #expect(one.segments == [Array("abc".utf8)] && one.segmentCount == 1 && one.bodyCount == 3 && one.body == Array("abc".utf8))
        var several = HTTPResponse(status: 200, segments: [Array("ab".utf8), [], Array("cde".utf8)])
        #expect(several.segmentCount == 3 && several.bodyCount == 5 && several.body == Array("abcde".utf8))
        #expect(several.segments == [Array("ab".utf8), [], Array("cde".utf8)])
        several.body = Array("x".utf8)
        #expect(several.segments == [Array("x".utf8)] && several.segmentCount == 1)
        several.segments = [Array("1".utf8), Array("2".utf8)]
        #expect(several.body == Array("12".utf8) && several.segmentCount == 2)
        let empty = HTTPResponse(status: 204, segments: [])
        #expect(empty.bodyCount == 0 && empty.body.isEmpty && empty.segmentCount == 1)
    }
}
