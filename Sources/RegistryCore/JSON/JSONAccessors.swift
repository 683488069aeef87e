/// The one way to read a `JSONValue` whose shape is not guaranteed: each accessor gives the
/// value when it has that JSON type and nil otherwise, so callers write
/// `object["metadata"]?.objectValue?["name"]?.stringValue` instead of nested `if case` patterns.
/// Code that must *report* a wrong type (request decoding) uses `ServiceDecoder`'s reader or
/// `KubernetesType`, which record field paths.
extension JSONValue {
    /// The text of a string.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The members of an object.
    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The elements of an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// A boolean.
    public var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    /// The member `key` of an object (nil for any other value).
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// The string members of an object (labels, annotations); members of other types are left
    /// out. Empty for any other value.
    public var stringMapValue: [String: String] {
        var map: [String: String] = [:]
        for member in objectValue ?? JSONObject() {
            if let text = member.value.stringValue { map[member.key] = text }
        }
        return map
    }
}
