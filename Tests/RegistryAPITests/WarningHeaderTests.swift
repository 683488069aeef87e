import Testing

@testable import RegistryAPI

/// A `Warning` header value (RFC 9111 §5.5, code 299): the text as one valid quoted-string.
@Suite struct WarningHeaderTests {
    @Test func textIsQuotedWithQuotesBackslashesAndControlCharactersReplaced() {
        #expect(Responses.warningValue("plain text") == #"299 - "plain text""#)
        #expect(Responses.warningValue(#"a "quoted" \ word"#) == #"299 - "a 'quoted'   word""#)
        #expect(Responses.warningValue("line\nbreak\ttab\u{0}nul\u{1F}") == #"299 - "line break tab nul ""#)
        // Non-ASCII text is kept as it is (no byte of a multi-byte character is replaced).
        #expect(Responses.warningValue("Größe 10 000 – „ok“ 日本") == "299 - \"Größe 10 000 – „ok“ 日本\"")
        #expect(Responses.warningValue("") == #"299 - """#)
    }
}
