import Yams

/// A YAML syntax error as one line: where it is and what is wrong.
///
/// Yams' own description spans several lines and quotes input: the offending line for syntax
/// errors, and for duplicate keys the whole document. Quoted into a problem document, a log line
/// or a terminal, that would echo a request body (up to `--max-body-bytes`) or a kubeconfig's
/// credentials; this text quotes only the duplicated keys (shortened).
public enum YAMLErrorText {
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? YamlError else { return oneLine(String(describing: error)) }
        func at(_ mark: Mark) -> String { "line \(mark.line), column \(mark.column)" }
        func syntax(_ context: YamlError.Context?, _ problem: String, _ mark: Mark) -> String {
            // libyaml's text for its nesting bound names its own C API (and leaves a parenthesis open).
            let problem =
                problem.hasPrefix("Maximum nesting level reached") ? "nested more than \(maxNestingLevel) collections deep" : problem
            return oneLine("\(at(mark)): \(problem)" + (context.map { " (\($0.text) at \(at($0.mark)))" } ?? ""))
        }
        switch error {
        case .scanner(let context, let problem, let mark, _): return syntax(context, problem, mark)
        case .parser(let context, let problem, let mark, _): return syntax(context, problem, mark)
        case .composer(let context, let problem, let mark, _): return syntax(context, problem, mark)
        case .reader(let problem, let offset, _, _): return oneLine(problem + (offset.map { " at byte \($0)" } ?? ""))
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams names a key that is not a scalar "<uncovertable>".
            let keys = duplicates.map { key in
                key == "<uncovertable>" ? "(a key that is not a scalar)" : oneLine(key.count > 64 ? "\"\(key.prefix(64))…\"" : "\"\(key)\"")
            }
            return "\(at(context.mark)): duplicate key\(keys.count == 1 ? "" : "s") \(keys.joined(separator: ", ")) in a mapping"
        default:
            return oneLine(error.description)
        }
    }

    /// libyaml's bound on nested collections (`MAX_NESTING_LEVEL` in its parser.c).
    static let maxNestingLevel = 1000

    /// Where a YAML error is: the mark of a scanner, parser or composer error, or of the
    /// mapping that has duplicate keys; nil for others (a reader error names a byte offset).
    static func mark(_ error: any Error) -> Mark? {
        switch error as? YamlError {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark
        case .duplicatedKeysInMapping(_, let context): return context.mark
        default: return nil
        }
    }

    /// The lines of `text` joined by a space, blank ones left out.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { line in
            String(line.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
        }.filter { !$0.isEmpty }.joined(separator: " ")
    }
}

/// A YAML stream that does not parse (RFC 9512's `application/yaml`; libyaml's reader, scanner,
/// parser or composer refused it, or a mapping repeats a key): `description` says where and
/// what in one line, quoting none of the input but the repeated keys, cut at 64 characters
/// (`YAMLErrorText`); `line` and `column` (1-based, columns in Unicode scalars as libyaml
/// counts them) say where: where parsing stopped, or for a repeated key where that key first
/// appears in its mapping. Nil only for an error that names no place.
public struct YAMLSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int?
    public var column: Int?
    public var description: String

    /// The syntax error that Yams threw as `error` while reading `text` (a reader error names
    /// a byte offset in it, turned into a line and column here).
    public init(_ error: any Error, in text: String) {
        if let mark = YAMLErrorText.mark(error) {
            (line, column) = (mark.line, mark.column)
            description = YAMLErrorText.describe(error)
        } else if case .reader(let problem, let offset?, _, _)? = error as? YamlError {
            let (line, column) = Self.position(ofByte: offset, in: Array(text.utf8))
            (self.line, self.column) = (line, column)
            description = YAMLErrorText.oneLine("line \(line), column \(column): \(problem)")
        } else {
            description = YAMLErrorText.describe(error)
        }
    }

    /// Bytes that are not UTF-8: where the first byte that is not (or starts no complete
    /// sequence) is.
    public init(invalidUTF8In bytes: [UInt8]) {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        scan: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .error, .emptyInput: break scan
            }
        }
        let (line, column) = Self.position(ofByte: offset, in: bytes)
        (self.line, self.column) = (line, column)
        description = "line \(line), column \(column): not UTF-8 (byte \(offset))"
    }

    /// The 1-based line and column (in Unicode scalars) of byte `offset` of `bytes`, lines
    /// ending at LF, CR LF or CR (YAML 1.2 §5.4); the scalars before it on its line are read
    /// as UTF-8 (each byte that is not counts as one).
    static func position(ofByte offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        let end = Swift.min(Swift.max(offset, 0), bytes.count)
        var line = 1
        var lineStart = 0
        var index = 0
        while index < end {
            if bytes[index] == 0x0A || (bytes[index] == 0x0D && (index + 1 >= bytes.count || bytes[index + 1] != 0x0A)) {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }
        // Continuation bytes (10xxxxxx) start no scalar.
        let column = 1 + bytes[lineStart..<end].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
        return (line, column)
    }
}
