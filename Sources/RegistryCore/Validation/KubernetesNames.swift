/// The name and value syntaxes of the Kubernetes API (apimachinery `pkg/util/validation`).
/// Each check returns the messages the API server would give, empty when the value is valid.
public enum KubernetesNames {
    static let dns1123LabelMessage =
        "must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')"
    static let dns1035LabelMessage =
        "must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123')"
    static let dns1123SubdomainMessage =
        "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
    static let qualifiedNameMessage =
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')"

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
    }

    private static func isAlnum(_ byte: UInt8) -> Bool {
        isLowerAlnum(byte) || (byte >= 0x41 && byte <= 0x5A)
    }

    private static func isDNSLabelSyntax(_ bytes: some BidirectionalCollection<UInt8>) -> Bool {
        guard let first = bytes.first, let last = bytes.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        return bytes.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// `isDNSLabelSyntax` of a string's bytes, read in place (a service's path is checked on every request).
    private static func isDNSLabelSyntax(_ bytes: Span<UInt8>) -> Bool {
        guard !bytes.isEmpty, isLowerAlnum(bytes[0]), isLowerAlnum(bytes[bytes.count - 1]) else { return false }
        for index in bytes.indices where !isLowerAlnum(bytes[index]) && bytes[index] != UInt8(ascii: "-") { return false }
        return true
    }

    /// Whether `value` is an RFC 1123 label: `dns1123Label(value)` is empty, without its messages.
    public static func isDNS1123Label(_ value: String) -> Bool {
        let bytes = value.utf8Span.span
        return bytes.count <= 63 && isDNSLabelSyntax(bytes)
    }

    /// Whether `value` is an RFC 1035 label: `dns1035Label(value)` is empty, without its messages.
    public static func isDNS1035Label(_ value: String) -> Bool {
        let bytes = value.utf8Span.span
        return bytes.count <= 63 && isDNSLabelSyntax(bytes) && bytes[0] >= 0x61 && bytes[0] <= 0x7A
    }

    /// RFC 1123 label: namespaces, port names, hostnames.
    public static func dns1123Label(_ value: String) -> [String] {
        var errors: [String] = []
        if value.utf8.count > 63 { errors.append("must be no more than 63 characters") }
        if !isDNSLabelSyntax(value.utf8Span.span) { errors.append("a lowercase RFC 1123 label " + dns1123LabelMessage) }
        return errors
    }

    /// RFC 1035 label: Service names (must start with a letter).
    public static func dns1035Label(_ value: String) -> [String] {
        var errors: [String] = []
        if value.utf8.count > 63 { errors.append("must be no more than 63 characters") }
        let startsWithLetter = value.utf8.first.map { $0 >= 0x61 && $0 <= 0x7A } ?? false
        if !isDNSLabelSyntax(value.utf8Span.span) || !startsWithLetter {
            errors.append("a DNS-1035 label " + dns1035LabelMessage)
        }
        return errors
    }

    /// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
    public static func dns1123Subdomain(_ value: String) -> [String] {
        var errors: [String] = []
        if value.utf8.count > 253 { errors.append("must be no more than 253 characters") }
        let labels = value.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        if value.isEmpty || !labels.allSatisfy({ isDNSLabelSyntax($0) }) {
            errors.append("a lowercase RFC 1123 subdomain " + dns1123SubdomainMessage)
        }
        return errors
    }

    private static func isQualifiedNamePart(_ bytes: some BidirectionalCollection<UInt8>) -> Bool {
        guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    /// Qualified name (`[prefix/]name`): label and annotation keys, `appProtocol`.
    public static func qualifiedName(_ value: String) -> [String] {
        let parts = value.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        var name = Substring(value)
        var errors: [String] = []
        switch parts.count {
        case 1: break
        case 2:
            name = parts[1]
            if parts[0].isEmpty {
                errors.append("prefix part must be non-empty")
            } else {
                errors += dns1123Subdomain(String(parts[0])).map { "prefix part " + $0 }
            }
        default:
            return ["a qualified name " + qualifiedNameMessage + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
        }
        if name.isEmpty {
            errors.append("name part must be non-empty")
        } else {
            if name.utf8.count > 63 { errors.append("name part must be no more than 63 characters") }
            if !isQualifiedNamePart(name.utf8) { errors.append("name part " + qualifiedNameMessage) }
        }
        return errors
    }

    /// IANA_SVC_NAME (apimachinery `IsValidPortName`): a named `targetPort` or container port;
    /// at most 15 of `[-a-z0-9]`, at least one letter, no `--`, no hyphen at either end.
    public static func portName(_ value: String) -> [String] {
        var errors: [String] = []
        let bytes = Array(value.utf8)
        if bytes.count > 15 { errors.append("must be no more than 15 characters") }
        if bytes.isEmpty || !bytes.allSatisfy({ isLowerAlnum($0) || $0 == UInt8(ascii: "-") }) {
            errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
        }
        if !bytes.contains(where: { $0 >= 0x61 && $0 <= 0x7A }) { errors.append("must contain at least one letter (a-z)") }
        if value.contains("--") { errors.append("must not contain consecutive hyphens") }
        if bytes.first == UInt8(ascii: "-") || bytes.last == UInt8(ascii: "-") { errors.append("must not begin or end with a hyphen") }
        return errors
    }

    /// Label value: empty, or at most 63 characters of the qualified-name alphabet (no `/`).
    public static func labelValue(_ value: String) -> [String] {
        var errors: [String] = []
        if value.utf8.count > 63 { errors.append("must be no more than 63 characters") }
        if !value.isEmpty && !isQualifiedNamePart(value.utf8) {
            errors.append(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345')"
            )
        }
        return errors
    }
}
