/// Serializations of Kubernetes objects: a multi-document YAML stream (through libyaml, so that
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
            var bytes = Array(warnings.map { "# WARNING: \($0)\n" }.joined().utf8)
            YAMLEventEmitter.emit(objects, into: &bytes)
            return bytes
        }
    }

    /// Whether a string scalar is written double-quoted: whenever a YAML 1.1 or 1.2 reader
    /// (kubectl's go-yaml, PyYAML, libyaml) could read its plain form as something else: booleans
    /// in every spelling (`yes`, `on`, …), null, numbers of any base or form, dates, the empty
    /// string. Dotted IPv4 addresses stay plain: no resolver reads them as numbers. (Other
    /// strings are left to libyaml, which quotes what its own analysis requires.)
    static func needsQuotes(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard let first = utf8.first else { return true }
        // Every ambiguous word has at most 5 bytes, and no longer text lowercases to one.
        if utf8.count <= 5, ambiguousWords.contains(text.lowercased()) { return true }
        let isDigit = { (byte: UInt8) in byte >= 0x30 && byte <= 0x39 }
        guard isDigit(first) || first == UInt8(ascii: "+") || first == UInt8(ascii: "-") || first == UInt8(ascii: ".") else {
            return false
        }
        var hasDigit = false
        var dots = 0
        var onlyDigitsAndDots = true
        for byte in utf8 {
            if isDigit(byte) {
                hasDigit = true
            } else if byte == UInt8(ascii: ".") {
                dots += 1
            } else if numberBytes.contains(byte) {
                onlyDigitsAndDots = false
            } else {
                return false
            }
        }
        guard hasDigit else { return false }
        let dottedDecimal = dots >= 2 && onlyDigitsAndDots
        return !dottedDecimal
    }

    /// Bytes besides digits and `.` that can occur in a YAML 1.1 or 1.2 number, date or time.
    private static let numberBytes = Set("_+-:eExXoObBabcdfABCDF".utf8)

    private static let ambiguousWords: Set<String> = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", ".nan", ".inf", "-.inf", "+.inf", "<<", "=",
    ]
}
