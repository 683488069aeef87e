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
                let tags = Tags()
                text += (try? Yams.serialize(nodes: objects.map { ManifestFormat.yamlNode($0, tags) }, width: -1, explicitStart: true)) ?? ""
            }
            return Array(text.utf8)
        }
    }

    /// The tags of one serialization, built once: creating a `Tag` consults Yams' default
    /// constructor, which dominated the cost of emitting large manifests when done per node.
    /// (`Tag` is a non-Sendable class, so they are not shared across calls.)
    struct Tags {
        let null = Tag(.null)
        let bool = Tag(.bool)
        let int = Tag(.int)
        let float = Tag(.float)
        let string = Tag(.str)
    }

    static func yamlNode(_ value: JSONValue, _ tags: Tags = Tags()) -> Node {
        switch value {
        case .null: return Node("null", tags.null)
        case .bool(let flag): return Node(flag ? "true" : "false", tags.bool)
        case .number(let text): return Node(text, Int(text) != nil ? tags.int : tags.float)
        case .string(let text): return stringNode(text, tags)
        case .array(let items): return .sequence(Node.Sequence(items.map { yamlNode($0, tags) }))
        case .object(let object):
            return .mapping(Node.Mapping(object.members.map { (stringNode($0.key, tags), yamlNode($0.value, tags)) }))
        }
    }

    /// A string scalar, double-quoted whenever a YAML 1.1 or 1.2 reader (kubectl's go-yaml,
    /// PyYAML, libyaml) could read its plain form as something else: booleans in every spelling
    /// (`yes`, `on`, …), null, numbers of any base or form, dates, the empty string. Dotted IPv4
    /// addresses stay plain: no resolver reads them as numbers.
    static func stringNode(_ text: String, _ tags: Tags) -> Node {
        Node(text, tags.string, needsQuotes(text) ? .doubleQuoted : .any)
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
