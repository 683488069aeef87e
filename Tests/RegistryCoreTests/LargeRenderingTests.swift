import Foundation
import Testing
import Yams

@testable import RegistryCore

/// Issue 14: rendering large services. The YAML stream comes from libyaml's event API
/// (`YAMLEventEmitter`) and JSON from `JSONWriter`'s fast paths; these tests hold them to the
/// bytes of the implementations they replaced, kept here as references: the Yams node tree
/// serialized by `Yams.serialize(nodes:width:explicitStart:)`, and the byte-at-a-time JSON writer.
/// Timings are printed for the record (no assertion on speed).
struct LargeRenderingTests {
    /// The YAML serialization before issue 14: a Yams node tree.
    enum NodeTreeYAML {
        static func serialize(_ objects: [JSONValue], warnings: [String] = []) throws -> [UInt8] {
            var text = warnings.map { "# WARNING: \($0)\n" }.joined()
            if !objects.isEmpty {
                let tags = (null: Tag(.null), bool: Tag(.bool), int: Tag(.int), float: Tag(.float), string: Tag(.str))
                func node(_ value: JSONValue) -> Node {
                    switch value {
                    case .null: return Node("null", tags.null)
                    case .bool(let flag): return Node(flag ? "true" : "false", tags.bool)
                    case .number(let text): return Node(text, Int(text) != nil ? tags.int : tags.float)
                    case .string(let text): return string(text)
                    case .array(let items): return .sequence(Node.Sequence(items.map(node)))
                    case .object(let object): return .mapping(Node.Mapping(object.members.map { (string($0.key), node($0.value)) }))
                    }
                }
                func string(_ text: String) -> Node {
                    Node(text, tags.string, ManifestFormat.needsQuotes(text) ? .doubleQuoted : .any)
                }
                text += try Yams.serialize(nodes: objects.map(node), width: -1, explicitStart: true)
            }
            return Array(text.utf8)
        }
    }

    /// The JSON string writer before issue 14: one byte at a time.
    static func referenceJSON(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        func write(_ value: JSONValue) {
            switch value {
            case .null: out += "null".utf8
            case .bool(let flag): out += (flag ? "true" : "false").utf8
            case .number(let text): out += text.utf8
            case .string(let text): string(text)
            case .array(let elements):
                out.append(UInt8(ascii: "["))
                for (offset, element) in elements.enumerated() {
                    if offset > 0 { out.append(UInt8(ascii: ",")) }
                    write(element)
                }
                out.append(UInt8(ascii: "]"))
            case .object(let object):
                out.append(UInt8(ascii: "{"))
                for (offset, member) in object.members.enumerated() {
                    if offset > 0 { out.append(UInt8(ascii: ",")) }
                    string(member.key)
                    out.append(UInt8(ascii: ":"))
                    write(member.value)
                }
                out.append(UInt8(ascii: "}"))
            }
        }
        func string(_ text: String) {
            out.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out += #"\""#.utf8
                case UInt8(ascii: "\\"): out += #"\\"#.utf8
                case 0x0A: out += #"\n"#.utf8
                case 0x0D: out += #"\r"#.utf8
                case 0x09: out += #"\t"#.utf8
                case 0x00..<0x20: out += String(format: "\\u%04x", Int(byte)).utf8
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        write(value)
        return out
    }

    /// 10,000 addresses as `scripts/bench/run` registers them (one port, EndpointSlices).
    static func benchService(_ count: Int = 10_000) throws -> ExternalService {
        let addresses = (0..<count).map { #"{"ip":"10.\#($0 / 62500).\#(($0 / 250) % 250).\#($0 % 250 + 1)"}"# }
        return try decoded(
            #"{"namespace":"render","name":"s\#(count)","endpointsMode":"endpointslices","ports":[{"port":80}],"addresses":[\#(addresses.joined(separator: ","))]}"#
        )
    }

    /// Strings that exercise quoting and escaping: YAML look-alikes, indicators, line breaks,
    /// control characters, non-ASCII text, long lines.
    static let awkward = [
        "true", "Yes", "0123", "1e3", "0x1F", "2026-01-02", "12:30:00", "null", "~", "", " leading", "trailing ", "a: b", "# hash",
        "- dash", "[x]", "{y}", "multi\nline: text", "tab\there", "bell\u{07}", "quote \" and \\ backslash", "'single'", "é café",
        "日本語", "emoji 🚀", "@at", "`tick`", "%percent", "!bang", "&amp", "*star", "|pipe", ">gt", "?q", "=", "<<",
        String(repeating: "long words ", count: 30), "10.0.0.1", "2001:db8::1", "1.5", "-", ".inf", "-.5", "+1", "0o17", "8_0",
    ]

    /// Dual-stack, several ports, hostnames, zones, drained addresses and awkward labels.
    static func mixedService(_ count: Int) throws -> ExternalService {
        let addresses = (0..<count).map { index -> String in
            var fields = [
                index % 3 == 0
                    ? #""ip":"2001:db8::\#(String(index + 1, radix: 16))""#
                    : #""ip":"10.\#(index / 62500).\#((index / 250) % 250).\#(index % 250 + 1)""#
            ]
            if index % 7 == 0 { fields.append(#""hostname":"host-\#(index)""#) }
            if index % 5 == 0 { fields.append(#""zone":"zone-\#(index % 3)""#) }
            if index % 11 == 0 { fields.append(#""ready":false"#) }
            if index % 13 == 0 { fields.append(#""ports":{"https":8443}"#) }
            return "{" + fields.joined(separator: ",") + "}"
        }
        func jsonString(_ text: String) -> String { String(decoding: JSONWriter.bytes(.string(text)), as: UTF8.self) }
        // Label values are restricted (alphanumerics, `-_.`); annotations take any text.
        let labelValues = ["true", "Yes", "0123", "1e3", "0x1F", "null", "", "1.5", "8_0", "0o17", "10.0.0.1", "on", "N", "2026-01-02"]
        let labels = labelValues.enumerated().map { #""example.com/l\#($0.offset)":\#(jsonString($0.element))"# }
        let annotations = awkward.enumerated().map { #""example.com/a\#($0.offset)":\#(jsonString($0.element))"# }
        return try decoded(
            #"{"namespace":"mixed","name":"m","endpointsMode":"both","description":\#(jsonString("desc: \"quoted\"\nsecond line")),"labels":{\#(labels.joined(separator: ","))},"annotations":{\#(annotations.joined(separator: ","))},"ports":[{"name":"http","port":80,"targetPort":8080},{"name":"https","port":443,"appProtocol":"https"},{"name":"dns","port":53,"protocol":"UDP"}],"addresses":[\#(addresses.joined(separator: ","))]}"#
        )
    }

    static func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        let elapsed = try clock.measure(body)
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }

    @Test func yamlEqualsTheNodeTreeSerialization() throws {
        for service in [try Self.benchService(), try Self.mixedService(2_000), try Self.mixedService(10)] {
            for mode in [EndpointsMode.endpoints, .endpointslices, .both] {
                let rendering = ManifestRenderer.render(service, mode: mode)
                let emitted = ManifestFormat.yaml.serialize(rendering.objects, warnings: rendering.warnings)
                let reference = try NodeTreeYAML.serialize(rendering.objects, warnings: rendering.warnings)
                #expect(emitted == reference, "\(service.name) \(mode)")
            }
        }
        // Scalars alone, each in its own document.
        let scalars: [JSONValue] =
            Self.awkward.map(JSONValue.string) + [.null, .bool(true), .number("-1.5e3"), .number("8080"), .array([]), .object(JSONObject())]
        let reference = try NodeTreeYAML.serialize(scalars)
        #expect(ManifestFormat.yaml.serialize(scalars) == reference)
        #expect(ManifestFormat.yaml.serialize([], warnings: ["w"]) == Array("# WARNING: w\n".utf8))
    }

    @Test func jsonEqualsTheByteWriter() throws {
        for service in [try Self.benchService(), try Self.mixedService(2_000)] {
            let objects = ManifestRenderer.render(service, mode: .both).objects
            let list = JSONValue.object(JSONObject([("apiVersion", .string("v1")), ("kind", .string("List")), ("items", .array(objects))]))
            #expect(ManifestFormat.json.serialize(objects) == Self.referenceJSON(list) + [UInt8(ascii: "\n")])
        }
        let controls = JSONValue.string(String(decoding: (0..<0x80).map { UInt8($0) }, as: UTF8.self) + "é\u{2028}")
        #expect(JSONWriter.bytes(controls) == Self.referenceJSON(controls))
    }

    /// Prints where the first render of 10,000 addresses goes (debug builds are several times slower
    /// than release; compare the two columns, not with BENCHMARKS.md).
    @Test func printTimingsOfTenThousandAddresses() throws {
        let service = try Self.benchService()
        var rendering = ManifestRenderer.render(service)
        let render = Self.milliseconds { rendering = ManifestRenderer.render(service) }
        var yaml: [UInt8] = []
        let emitter = Self.milliseconds { yaml = ManifestFormat.yaml.serialize(rendering.objects) }
        let nodeTree = try Self.milliseconds { _ = try NodeTreeYAML.serialize(rendering.objects) }
        var json: [UInt8] = []
        let writer = Self.milliseconds { json = ManifestFormat.json.serialize(rendering.objects) }
        let list = JSONValue.object(JSONObject([("items", .array(rendering.objects))]))
        let byteWriter = Self.milliseconds { _ = Self.referenceJSON(list) }
        print(
            "10,000 addresses: render \(render) ms; YAML \(emitter) ms (node tree \(nodeTree) ms), \(yaml.count) bytes; "
                + "JSON \(writer) ms (byte writer \(byteWriter) ms), \(json.count) bytes")
    }
}
