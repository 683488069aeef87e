/// A label selector in kubectl's syntax: comma-separated requirements, each one of
/// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist),
/// `k>n`, `k<n` (integer comparison). All requirements must hold.
public struct LabelSelector: Sendable, Equatable {
    public enum Operator: Sendable, Equatable {
        case equals, notEquals, `in`, notIn, exists, doesNotExist, greaterThan, lessThan
    }

    public struct Requirement: Sendable, Equatable {
        public var key: String
        public var op: Operator
        public var values: [String]

        func matches(_ labels: [String: String]) -> Bool {
            let value = labels[key]
            switch op {
            case .equals, .in: return value.map(values.contains) ?? false
            case .notEquals, .notIn: return value.map { !values.contains($0) } ?? true
            case .exists: return value != nil
            case .doesNotExist: return value == nil
            case .greaterThan, .lessThan:
                guard let actual = value.flatMap({ Int($0) }), let bound = Int(values[0]) else { return false }
                return op == .greaterThan ? actual > bound : actual < bound
            }
        }
    }

    public var requirements: [Requirement]

    /// The selector that matches everything.
    public static let everything = LabelSelector(requirements: [])

    public init(requirements: [Requirement]) {
        self.requirements = requirements
    }

    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { $0.matches(labels) }
    }

    /// Why a selector does not parse.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init(parsing text: String) throws(ParseError) {
        var scanner = Scanner(Array(text.unicodeScalars))
        var requirements: [Requirement] = []
        scanner.skipSpaces()
        if scanner.atEnd {
            self.init(requirements: [])
            return
        }
        while true {
            requirements.append(try scanner.requirement())
            scanner.skipSpaces()
            if scanner.atEnd { break }
            guard scanner.consume(",") else {
                throw ParseError(message: "expected ',' between requirements at position \(scanner.position + 1)")
            }
        }
        self.init(requirements: requirements)
    }

    private struct Scanner {
        let scalars: [Unicode.Scalar]
        var position = 0

        init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

        var atEnd: Bool { position >= scalars.count }
        var next: Unicode.Scalar? { atEnd ? nil : scalars[position] }

        mutating func skipSpaces() {
            while let next, next == " " || next == "\t" { position += 1 }
        }

        mutating func consume(_ text: String) -> Bool {
            let wanted = Array(text.unicodeScalars)
            guard position + wanted.count <= scalars.count, Array(scalars[position..<position + wanted.count]) == wanted else {
                return false
            }
            position += wanted.count
            return true
        }

        static func isTokenScalar(_ scalar: Unicode.Scalar) -> Bool {
            !" \t,()!=<>".unicodeScalars.contains(scalar)
        }

        mutating func token() -> String {
            var text = String.UnicodeScalarView()
            while let next, Scanner.isTokenScalar(next) {
                text.append(next)
                position += 1
            }
            return String(text)
        }

        mutating func key() throws(ParseError) -> String {
            skipSpaces()
            let key = token()
            guard !key.isEmpty else { throw ParseError(message: "expected a label key at position \(position + 1)") }
            let problems = KubernetesNames.qualifiedName(key)
            guard problems.isEmpty else { throw ParseError(message: "invalid label key \"\(key)\": \(problems.joined(separator: "; "))") }
            return key
        }

        mutating func value() throws(ParseError) -> String {
            skipSpaces()
            let value = token()
            let problems = KubernetesNames.labelValue(value)
            guard problems.isEmpty else { throw ParseError(message: "invalid label value \"\(value)\": \(problems.joined(separator: "; "))") }
            return value
        }

        mutating func requirement() throws(ParseError) -> Requirement {
            skipSpaces()
            if consume("!") {
                return Requirement(key: try key(), op: .doesNotExist, values: [])
            }
            let key = try key()
            skipSpaces()
            if atEnd || next == "," { return Requirement(key: key, op: .exists, values: []) }
            if consume("==") || consume("=") { return Requirement(key: key, op: .equals, values: [try value()]) }
            if consume("!=") { return Requirement(key: key, op: .notEquals, values: [try value()]) }
            if consume(">") || consume("<") {
                let op: Operator = scalars[position - 1] == ">" ? .greaterThan : .lessThan
                skipSpaces()
                let bound = token()
                guard Int(bound) != nil else {
                    throw ParseError(message: "\"\(bound)\" after '\(op == .greaterThan ? ">" : "<")' must be an integer")
                }
                return Requirement(key: key, op: op, values: [bound])
            }
            let word = token()
            let op: Operator
            switch word {
            case "in": op = .in
            case "notin": op = .notIn
            default:
                throw ParseError(
                    message: "unexpected \"\(word.isEmpty ? String(next ?? " ") : word)\" after key \"\(key)\"; expected =, ==, !=, in, notin, > or <"
                )
            }
            skipSpaces()
            guard consume("(") else { throw ParseError(message: "expected '(' after \(word)") }
            var values: [String] = []
            while true {
                values.append(try value())
                skipSpaces()
                if consume(")") { break }
                guard consume(",") else { throw ParseError(message: "expected ',' or ')' in the value list of \"\(key)\"") }
            }
            if values == [""] { throw ParseError(message: "the value set of \"\(key) \(word)\" must not be empty") }
            return Requirement(key: key, op: op, values: values)
        }
    }
}
