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
            oneLine("\(at(mark)): \(problem)" + (context.map { " (\($0.text) at \(at($0.mark)))" } ?? ""))
        }
        switch error {
        case .scanner(let context, let problem, let mark, _): return syntax(context, problem, mark)
        case .parser(let context, let problem, let mark, _): return syntax(context, problem, mark)
        case .composer(let context, let problem, let mark, _): return syntax(context, problem, mark)
        case .reader(let problem, let offset, _, _): return oneLine(problem + (offset.map { " at byte \($0)" } ?? ""))
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { key in oneLine(key.count > 64 ? "\"\(key.prefix(64))…\"" : "\"\(key)\"") }
            return "\(at(context.mark)): duplicate key\(keys.count == 1 ? "" : "s") \(keys.joined(separator: ", ")) in a mapping"
        default:
            return oneLine(error.description)
        }
    }

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

/// A YAML stream that does not parse (RFC 9512's `application/yaml`; libyaml's scanner, parser or
/// composer refused it, or a mapping repeats a key): `description` says where and what in one
/// line quoting none of the input (`YAMLErrorText`), `line` and `column` (1-based, columns in
/// Unicode scalars as libyaml counts them) say where when the parser knows.
public struct YAMLSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int?
    public var column: Int?
    public var description: String

    /// The syntax error that Yams threw as `error`.
    public init(_ error: any Error) {
        let mark = YAMLErrorText.mark(error)
        line = mark?.line
        column = mark?.column
        description = YAMLErrorText.describe(error)
    }
}
