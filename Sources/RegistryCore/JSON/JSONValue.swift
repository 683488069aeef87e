/// A JSON document as parsed: object members keep their order, numbers keep their literal text
/// (so no precision is lost and integers are told apart from fractions exactly).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's literal text, as validated by the parser (e.g. `8080`, `-1.5e3`).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// A number value from an integer.
    public static func integer(_ value: Int) -> JSONValue { .number(String(value)) }

    /// The JSON type name used in error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// The value as an exact integer: a number written as JSON writes integers (`-?(0|[1-9][0-9]*)`,
    /// so not `80.0`, `1e2`, `+2`, `0x50` or `8_0`, which YAML could produce) that fits in `Int`.
    /// Every route reads integers through this, so they are parsed the same way everywhere.
    public var intValue: Int? {
        guard case .number(let text) = self else { return nil }
        let digits = text.utf8.first == UInt8(ascii: "-") ? text.utf8.dropFirst() : text.utf8[...]
        guard let first = digits.first, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            first != UInt8(ascii: "0") || digits.count == 1
        else { return nil }
        return Int(text)
    }
}

/// An ordered JSON object. Lookups are linear: the objects of this API are small.
public struct JSONObject: Sendable, Equatable, Sequence {
    public private(set) var members: [(key: String, value: JSONValue)]

    public init(_ members: [(key: String, value: JSONValue)] = []) {
        self.members = members
    }

    public subscript(key: String) -> JSONValue? {
        get { members.first(where: { $0.key == key })?.value }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }

    /// Appends a member the caller knows the object does not have yet (an encoder writing fixed
    /// keys once each): `self[key] = value` without searching the members first.
    mutating func appendNew(_ key: String, _ value: JSONValue) {
        members.append((key, value))
    }

    public var keys: [String] { members.map(\.key) }
    public var isEmpty: Bool { members.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        members.makeIterator()
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count
            && lhs.members.allSatisfy { member in rhs[member.key] == member.value }
    }
}
