import Yams

/// Serializations of Kubernetes objects: a multi-document YAML stream (through Yams, so that
/// strings such as `"true"`, `"0123"`, `"null"` or `"8080"` stay strings), or a JSON `v1 List`.
public enum ManifestFormat: String, Sendable, CaseIterable {
    case yaml
    case json

    public var mediaType: String {
        switch self {
        case .yaml: "application/yaml"
        case .json: "application/json"
        }
    }

    /// Serializes `objects`; `warnings` become comments at the top of a YAML stream.
    public func serialize(_ objects: [JSONValue], warnings: [String] = []) -> [UInt8] {
        switch self {
        case .json:
            let list = JSONValue.object(JSONObject([("apiVersion", .string("v1")), ("kind", .string("List")), ("items", .array(objects))]))
            var bytes = JSONWriter.bytes(list)
            bytes.append(UInt8(ascii: "\n"))
            return bytes
        case .yaml:
            var text = warnings.map { "# WARNING: \($0)\n" }.joined()
            if !objects.isEmpty {
                // Yams only fails on invalid nodes, which `yamlNode` never builds.
                text += (try? Yams.serialize(nodes: objects.map(ManifestFormat.yamlNode), width: -1, explicitStart: true)) ?? ""
            }
            return Array(text.utf8)
        }
    }

    static func yamlNode(_ value: JSONValue) -> Node {
        switch value {
        case .null: return Node("null", Tag(.null))
        case .bool(let flag): return Node(flag ? "true" : "false", Tag(.bool))
        case .number(let text): return Node(text, Tag(Int(text) != nil ? .int : .float))
        case .string(let text): return stringNode(text)
        case .array(let items): return .sequence(Node.Sequence(items.map(yamlNode)))
        case .object(let object): return .mapping(Node.Mapping(object.members.map { (stringNode($0.key), yamlNode($0.value)) }))
        }
    }

    /// A string scalar, double-quoted whenever a YAML 1.1 or 1.2 reader (kubectl's go-yaml,
    /// PyYAML, libyaml) could read its plain form as something else: booleans in every spelling
    /// (`yes`, `on`, …), null, numbers of any base or form, dates, the empty string. Dotted IPv4
    /// addresses stay plain: no resolver reads them as numbers.
    static func stringNode(_ text: String) -> Node {
        Node(text, Tag(.str), needsQuotes(text) ? .doubleQuoted : .any)
    }

    static func needsQuotes(_ text: String) -> Bool {
        guard let first = text.utf8.first else { return true }
        if ambiguousWords.contains(text.lowercased()) { return true }
        let isDigit = { (byte: UInt8) in byte >= 0x30 && byte <= 0x39 }
        guard isDigit(first) || first == UInt8(ascii: "+") || first == UInt8(ascii: "-") || first == UInt8(ascii: ".") else {
            return false
        }
        let numberLike = text.utf8.allSatisfy { byte in
            isDigit(byte) || "_+-.:eExXoObBabcdfABCDF".utf8.contains(byte)
        }
        guard numberLike, text.utf8.contains(where: isDigit) else { return false }
        let dots = text.utf8.filter { $0 == UInt8(ascii: ".") }.count
        let dottedDecimal = dots >= 2 && text.utf8.allSatisfy { isDigit($0) || $0 == UInt8(ascii: ".") }
        return !dottedDecimal
    }

    private static let ambiguousWords: Set<String> = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", ".nan", ".inf", "-.inf", "+.inf", "<<", "=",
    ]
}
