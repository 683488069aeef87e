import Testing

@testable import RegistryAPI

/// `Prefer` (RFC 7240 §2): comma-separated preferences, each `token [= word]` with parameters
/// after `;`, a word a token or a quoted string.
@Suite struct PreferHeaderTests {
    @Test func splitsOutsideQuotedStrings() {
        #expect(RequestChecks.preferences("return=minimal").map(\.name) == ["return"])
        #expect(RequestChecks.preferences("return=minimal").map(\.value) == ["minimal"])
        let list = RequestChecks.preferences(#"respond-async, wait=10, return = "representation" ; x="a,b;c""#)
        #expect(list.map(\.name) == ["respond-async", "wait", "return"])
        #expect(list.map(\.value) == [nil, "10", "representation"])
        // A comma or semicolon inside quotes separates nothing.
        #expect(RequestChecks.preferences(#"foo="x,return=representation""#).map(\.name) == ["foo"])
        #expect(
            RequestChecks.preferences(#"foo="a, return=representation", return=minimal"#).map(\.value) == [#"a, return=representation"#, "minimal"])
        #expect(RequestChecks.preferences(#"foo="x;return=representation""#).map(\.name) == ["foo"])
        // Escapes in quoted strings.
        #expect(RequestChecks.preferences(#"x="a\"b\\", return=minimal"#).map(\.value) == [#"a"b\"#, "minimal"])
    }

    @Test func leavesOutMalformedElements() {
        // No name before the parameters; an unterminated quoted string; text after a quoted string.
        #expect(RequestChecks.preferences("; return=representation").isEmpty)
        #expect(RequestChecks.preferences(#"return="representation"#).isEmpty)
        #expect(RequestChecks.preferences(#"return=minimal, x="open"#).map(\.name) == ["return"])
        #expect(RequestChecks.preferences(#"return="a"b"#).isEmpty)
        #expect(RequestChecks.preferences("").isEmpty && RequestChecks.preferences(" , ,").isEmpty)
    }
}
