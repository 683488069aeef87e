/// One problem with one field of a request, named by its path (e.g. `ports[1].name`).
public struct FieldViolation: Sendable, Equatable, CustomStringConvertible {
    /// Kinds follow the API server's `FieldValueXxx` cause types.
    public enum Kind: String, Sendable {
        case required = "FieldValueRequired"
        case invalid = "FieldValueInvalid"
        case wrongType = "FieldValueTypeInvalid"
        case duplicate = "FieldValueDuplicate"
        case notSupported = "FieldValueNotSupported"
        case forbidden = "FieldValueForbidden"
        case tooLong = "FieldValueTooLong"
        case tooMany = "FieldValueTooMany"
        case unknownField = "FieldValueUnknown"
    }

    public var field: String
    public var kind: Kind
    public var message: String

    public init(_ field: String, _ kind: Kind, _ message: String) {
        self.field = field
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}
