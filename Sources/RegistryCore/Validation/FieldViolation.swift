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

    /// Longest message kept whole, in UTF-8 bytes; a longer one (one that quotes a huge value
    /// back) keeps its first 512 and last 256 characters around a note of what was left out,
    /// so that a refused 4 MiB value is not echoed into the answer and the audit log.
    public static let maxMessageBytes = 1024

    public init(_ field: String, _ kind: Kind, _ message: String) {
        self.field = field
        self.kind = kind
        if message.utf8.count > Self.maxMessageBytes {
            let (head, tail) = (message.prefix(512), message.suffix(256))
            let omitted = message.utf8.count - head.utf8.count - tail.utf8.count
            self.message = "\(head)…[\(omitted) bytes left out]…\(tail)"
        } else {
            self.message = message
        }
    }

    /// `field: message`; the message alone for the document itself (`field` empty).
    public var description: String { field.isEmpty ? message : "\(field): \(message)" }
}
