/// What a request needs to be allowed.
public enum Permission: String, Sendable, CaseIterable {
    /// Read registrations and render manifests.
    case read
    /// Create, change, delete and import registrations.
    case write
    /// Push, prune and cascade-delete in clusters.
    case push
    /// Read the audit log.
    case audit
    /// Scrape `GET /metrics`.
    case metrics
}

/// A token's role; from `viewer` to `admin` each includes the permissions of the ones before it.
/// `metrics` stands apart: it may scrape `/metrics` and nothing else (a token for Prometheus).
public enum Role: String, Sendable, CaseIterable {
    case viewer, editor, pusher, admin, metrics

    public var permissions: Set<Permission> {
        switch self {
        case .viewer: [.read, .metrics]
        case .editor: [.read, .write, .metrics]
        case .pusher: [.read, .write, .push, .metrics]
        case .admin: Set(Permission.allCases)
        case .metrics: [.metrics]
        }
    }

    /// Whether the role has `permission` (`permissions.contains`, without building the set: this
    /// is asked on every request).
    public func allows(_ permission: Permission) -> Bool {
        switch (self, permission) {
        case (.admin, _), (_, .metrics): true
        case (.metrics, _): false
        case (_, .read): true
        case (.viewer, _): false
        case (_, .write): true
        case (.editor, _): false
        case (.pusher, .push): true
        case (.pusher, _): false
        }
    }
}

/// Namespace patterns of a token: exact names or globs (`*` any run, `?` one character).
public struct NamespaceScope: Sendable, Equatable {
    public var patterns: [String]

    public init(_ patterns: [String]) {
        self.patterns = patterns
    }

    public static let all = NamespaceScope(["*"])

    public var isUnrestricted: Bool { patterns.contains("*") }

    public func allows(_ namespace: String) -> Bool {
        patterns.contains { NamespaceScope.glob($0, matches: namespace) }
    }

    static func glob(_ pattern: String, matches text: String) -> Bool {
        // The usual scopes, `*` and a plain namespace, without copying either string.
        if pattern == "*" { return true }
        if !pattern.utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }) {
            // Scalar by scalar, as the general case compares (not `==`'s canonical equivalence).
            return pattern.unicodeScalars.elementsEqual(text.unicodeScalars)
        }
        let pattern = Array(pattern.unicodeScalars)
        let text = Array(text.unicodeScalars)
        var p = 0
        var t = 0
        var star: Int? = nil
        var resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == "?" || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                resume = t
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}

/// Who is asking: a named token, or `anonymous` when the server runs without tokens.
public struct Principal: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var scope: NamespaceScope

    public static let anonymous = Principal(name: "anonymous", role: .admin, scope: .all)

    public func allows(_ permission: Permission) -> Bool { role.allows(permission) }
}
