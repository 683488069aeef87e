import Testing

@testable import RegistryCore

@Suite struct JSONParserTests {
    @Test func parsesEveryValueKindAndKeepsMemberOrder() throws {
        let value = try JSONParser.parse(Array(#" {"b": [1, -2.5e3, true, false, null], "a": "x\u00e9\n\"", "c": {}} "#.utf8))
        guard case .object(let object) = value else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == ["b", "a", "c"])
        #expect(object["b"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(object["a"] == .string("xé\n\""))
        #expect(object["b"].flatMap { if case .array(let items) = $0 { items[0].intValue } else { nil } } == 1)
    }

    @Test func decodesSurrogatePairs() throws {
        #expect(try JSONParser.parse(Array(#""\ud83d\ude00""#.utf8)) == .string("😀"))
    }

    @Test(arguments: [
        ("{\"a\":1,}", "expected a member name"),
        ("[1,]", "unexpected character"),
        ("{\"a\":1,\"a\":2}", "duplicate member name"),
        ("01", "leading zero"),
        ("\"a\u{01}\"", "control character"),
        ("tru", "invalid literal"),
        ("{\"a\" 1}", "expected ':'"),
        ("[1] x", "unexpected content"),
        ("\"\\x\"", "invalid escape"),
        ("\"\\ud800\"", "unpaired UTF-16 surrogate"),
        ("", "unexpected end of input"),
        ("{", "expected a member name"),
    ])
    func rejectsInvalidDocuments(input: String, message: String) {
        #expect {
            _ = try JSONParser.parse(Array(input.utf8))
        } throws: { error in
            (error as? JSONSyntaxError)?.message.contains(message) == true
        }
    }

    /// Small objects check names by scanning, large ones with a set: both find a duplicate, and
    /// large objects without one parse whole.
    @Test func findsDuplicateNamesInLargeObjects() throws {
        let names = (0..<40).map { "\"k\($0)\":\($0)" }
        for (count, duplicate) in [(2, 0), (15, 14), (16, 0), (17, 16), (40, 3)] {
            let text = "{" + (names[..<count] + ["\"k\(duplicate)\":0"]).joined(separator: ",") + "}"
            #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(Array(text.utf8)) }
        }
        guard case .object(let object) = try JSONParser.parse(Array(("{" + names.joined(separator: ",") + "}").utf8)) else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == (0..<40).map { "k\($0)" })
    }

    @Test func rejectsInvalidUTF8() throws {
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse([0x22, 0xFF, 0x22]) }
        // Overlong, an encoded surrogate, a truncated sequence: in a value, after an escape (the
        // slow path), and in a member name.
        let quote = UInt8(ascii: "\"")
        for bad: [UInt8] in [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82]] {
            let documents: [[UInt8]] = [
                [quote] + bad + [quote], [quote] + Array(#"\n"#.utf8) + bad + [quote], Array(#"{""#.utf8) + bad + Array(#"":1}"#.utf8),
            ]
            for document in documents {
                #expect { _ = try JSONParser.parse(document) } throws: { error in
                    (error as? JSONSyntaxError)?.message == "string is not valid UTF-8"
                }
            }
        }
        #expect(try JSONParser.parse(Array(#"["é\n€😀", "\u00e9é"]"#.utf8)) == .array([.string("é\n€😀"), .string("éé")]))
        for truncated in ["-", "nul", "1.", "1e", #""abc"#, #""\u12"#] {
            #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(Array(truncated.utf8)) }
        }
    }

    @Test func limitsNestingDepth() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect { _ = try JSONParser.parse(Array(deep.utf8)) } throws: { error in
            (error as? JSONSyntaxError)?.message.contains("nesting deeper") == true
        }
        let fine = String(repeating: "[", count: 30) + String(repeating: "]", count: 30)
        #expect(throws: Never.self) { _ = try JSONParser.parse(Array(fine.utf8)) }
    }

    /// Where parsing stopped, named as field errors name fields.
    @Test(arguments: [
        (#"{"name": "a",}"#, ""),
        (#"{"ports": [{"port": 80}, }"#, "ports[1]"),
        (#"{"ports": [{"port": 80}, {"port": 8x}]}"#, "ports[1].port"),
        (#"{"labels": {"app.kubernetes.io/name": tru}}"#, "labels[app.kubernetes.io/name]"),
        (#"{"a\"b": {"c": [1, [2, 3, ]]}}"#, #"["a\"b"].c[1][2]"#),
        (#"{"\u0070orts": [{"port": x}]}"#, "ports[0].port"),
        (#"{"labels": {"a].b[c": x}}"#, #"labels["a].b[c"]"#),
        (#"{"spec": {"a": 1, "a": 2}}"#, "spec.a"),
        (#"{"a": 1, "a": 2}"#, "a"),
        (#"{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2""#, "addresses[1].ip"),
        (#"{"description": "unterminated"#, "description"),
        (#"{"ab"#, ""),
        ("[1, 2", "[1]"),
        ("nul", ""),
        ("{\"" + String(repeating: "k", count: 100) + "\": x}", String(repeating: "k", count: 64) + "…"),
        ("{\"" + String(repeating: "k-", count: 50) + "\": x}", "[" + String(repeating: "k-", count: 32) + "…]"),
    ])
    func namesTheFieldWhereParsingStopped(document: String, field: String) {
        #expect {
            _ = try JSONParser.parse(Array(document.utf8))
        } throws: { error in
            (error as? JSONSyntaxError)?.field == field
        }
    }

    /// Escapes decode in one pass: a string of a million escapes (a 2 MB body) is read as
    /// quickly as its size says (each escape once copied the whole string: two minutes for 4 MB).
    @Test func decodesManyEscapesInOnePass() throws {
        let count = 1_000_000
        let text = #"{"a":""# + String(repeating: #"\n\u00e9\"x"#, count: count / 3) + #""}"#
        guard case .object(let object) = try JSONParser.parse(Array(text.utf8)), case .string(let value)? = object["a"] else {
            Issue.record("not an object with a string")
            return
        }
        #expect(value == String(repeating: "\né\"x", count: count / 3))
    }

    /// A duplicate member name is shown cut (a 100,000-character name once made a 100 KB answer).
    @Test func aDuplicateNameIsShownCut() {
        let name = String(repeating: "k", count: 100_000)
        #expect {
            _ = try JSONParser.parse(Array("{\"\(name)\": 1, \"\(name)\": 2}".utf8))
        } throws: { error in
            let syntax = error as? JSONSyntaxError
            return syntax?.message == "duplicate member name \"\(name.prefix(64))…\"" && syntax?.field == name.prefix(64) + "…"
        }
    }

    @Test func reportsLineAndColumn() {
        #expect {
            _ = try JSONParser.parse(Array("{\n  \"a\": x\n}".utf8))
        } throws: { error in
            let syntax = error as? JSONSyntaxError
            return syntax?.line == 2 && syntax?.column == 8
        }
    }

    @Test func writerRoundTripsAndEscapes() throws {
        let text = #"{"k":"tab\tquote\"back\\ctl\u0001","n":[1,2.5,null,true],"o":{}}"#
        let value = try JSONParser.parse(Array(text.utf8))
        #expect(JSONWriter.string(value) == text)
        #expect(try JSONParser.parse(JSONWriter.bytes(value)) == value)
    }

    /// The plain strings' fast path (read from the string's storage) and the escaping path give
    /// the bytes RFC 8259 §7 asks for, for small (inline) and large strings, non-ASCII text,
    /// and a string that needs an escape only at its end.
    @Test(arguments: [
        ("10.0.0.1", #""10.0.0.1""#),
        ("", #""""#),
        ("a-much-longer-label-value-than-fifteen-bytes", #""a-much-longer-label-value-than-fifteen-bytes""#),
        ("ünïcödé ✓ 🚀", #""ünïcödé ✓ 🚀""#),
        ("a long plain string that ends with a quote\"", #""a long plain string that ends with a quote\"""#),
        ("back\\slash", #""back\\slash""#),
        ("line\nfeed\u{1F}", #""line\nfeed\u001f""#),
        ("\u{7F} is not a control character for JSON", "\"\u{7F} is not a control character for JSON\""),
    ])
    func writeStringEscapesOnlyWhatJSONRequires(text: String, expected: String) throws {
        var out: [UInt8] = [UInt8(ascii: "[")]
        JSONWriter.writeString(text, into: &out)
        #expect(String(decoding: out.dropFirst(), as: UTF8.self) == expected)
        #expect(try JSONParser.parse(Array(out.dropFirst())) == .string(text))
    }
}

@Suite struct MergePatchTests {
    /// The examples of RFC 7386, appendix A.
    @Test(arguments: [
        (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
        (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
        (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
        (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
        (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
        (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
        (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
        (#"{"a":"foo"}"#, #"null"#, #"null"#),
        (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
        (#"{"e":null}"#, #"{"a":1}"#, #"{"e":null,"a":1}"#),
        (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
        (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
    ])
    func appliesRFC7386Examples(target: String, patch: String, expected: String) throws {
        let result = MergePatch.apply(try JSONParser.parse(Array(patch.utf8)), to: try JSONParser.parse(Array(target.utf8)))
        #expect(result == (try JSONParser.parse(Array(expected.utf8))))
    }
}
