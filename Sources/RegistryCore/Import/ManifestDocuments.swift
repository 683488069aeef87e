import Yams

/// Reads Kubernetes manifests: a multi-document YAML stream, or JSON (one object or a `List`).
public enum ManifestDocuments {
    /// One object of the input with where it came from (`documents[2]`, `documents[0].items[3]`).
    public struct Object: Sendable {
        public var path: String
        public var value: JSONValue
    }

    /// Why a YAML stream cannot be read: it does not parse (`syntax`, a malformed input), or it
    /// parses to what JSON cannot hold or past a bound (`invalid`, field errors).
    public enum ReadError: Error, Sendable {
        case syntax(YAMLSyntaxError)
        case invalid(ValidationFailure)

        /// The error as field errors: a syntax error is one on the input itself (field "").
        public var violations: [FieldViolation] {
            switch self {
            case .syntax(let error): [FieldViolation("", .invalid, "not valid YAML: \(error)")]
            case .invalid(let failure): failure.violations
            }
        }
    }

    /// `parseYAML` on the bytes of a request body: `ReadError.syntax` naming the line and
    /// column of the first byte that is not UTF-8 (YAML 1.2 §5.2: a stream is Unicode; this
    /// API reads UTF-8, the encoding `application/yaml` defaults to, RFC 9512).
    public static func parseYAML(bytes: [UInt8]) throws(ReadError) -> [JSONValue] {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .syntax(YAMLSyntaxError(invalidUTF8In: bytes)) }
        return try parseYAML(text)
    }

    /// Parses YAML (JSON is YAML too) into JSON values; empty documents are skipped, and a byte
    /// order mark that starts the stream is ignored (YAML 1.2 §5.2; libyaml, given the text
    /// already decoded, would read it as content). Throws `ReadError.syntax` when the text is
    /// not YAML, `ReadError.invalid` when a mapping has a key that is not a scalar or the
    /// stream expands past `maxNodes`.
    public static func parseYAML(_ text: String) throws(ReadError) -> [JSONValue] {
        let text = text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
        do {
            var documents: [JSONValue] = []
            // Parser.nextRoot() throws on a syntax error; compose_all's lazy sequence would stop silently.
            // UTF-8 always (what the reader's byte offsets count; Yams' default follows an
            // environment variable).
            let parser = try Parser(yaml: text, encoding: .utf8)
            var budget = maxNodes
            while let node = try parser.nextRoot() {
                let value = try jsonValue(node, path: "documents[\(documents.count)]", budget: &budget)
                if value != .null { documents.append(value) }
            }
            return documents
        } catch let failure as ValidationFailure {
            throw .invalid(failure)
        } catch {
            throw .syntax(YAMLSyntaxError(error, in: text))
        }
    }

    /// Most nodes a request may expand to. Aliases are resolved by reference while parsing, so a
    /// small document can stand for billions of nodes ("billion laughs"); converting is bounded.
    public static let maxNodes = 2_000_000

    static func jsonValue(_ node: Node, path: String, budget: inout Int) throws(ValidationFailure) -> JSONValue {
        budget -= 1
        guard budget >= 0 else {
            throw ValidationFailure([FieldViolation(path, .tooMany, "the YAML expands to more than \(maxNodes) nodes (aliases included)")])
        }
        switch node {
        case .scalar(let scalar):
            switch String(describing: node.tag) {
            case "tag:yaml.org,2002:null": return .null
            case "tag:yaml.org,2002:bool": return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            // Numbers keep their literal text: `80.0`, `1e2`, `0x50` or `8_0` stay what they were
            // written as, so a field that needs an integer refuses them (`JSONValue.intValue`)
            // exactly as the JSON API does, instead of silently becoming 80 or 100.
            case "tag:yaml.org,2002:int", "tag:yaml.org,2002:float": return .number(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for (index, item) in sequence.enumerated() { items.append(try jsonValue(item, path: "\(path)[\(index)]", budget: &budget)) }
            return .array(items)
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw ValidationFailure([FieldViolation(path, .invalid, "mapping keys must be scalars")])
                }
                guard object[keyScalar.string] == nil else {
                    throw ValidationFailure([FieldViolation("\(path).\(keyScalar.string)", .duplicate, "duplicate key \"\(keyScalar.string)\"")])
                }
                object[keyScalar.string] = try jsonValue(value, path: "\(path).\(keyScalar.string)", budget: &budget)
            }
            return .object(object)
        case .alias:
            throw ValidationFailure([FieldViolation(path, .forbidden, "YAML aliases are not accepted")])
        }
    }

    /// The objects of the documents, with `List`s flattened into their items.
    public static func objects(_ documents: [JSONValue]) -> [Object] {
        var objects: [Object] = []
        for (index, document) in documents.enumerated() {
            let path = "documents[\(index)]"
            if let kind = document["kind"]?.stringValue, kind.hasSuffix("List"), let items = document["items"]?.arrayValue {
                for (itemIndex, item) in items.enumerated() { objects.append(Object(path: "\(path).items[\(itemIndex)]", value: item)) }
            } else {
                objects.append(Object(path: path, value: document))
            }
        }
        return objects
    }
}
