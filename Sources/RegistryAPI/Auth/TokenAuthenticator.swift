import Crypto
import Foundation
import RegistryCore
import Synchronization
import Yams

/// Why a tokens file cannot be used.
public struct TokenFileError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Bearer tokens from a file, kept only as SHA-256 digests and compared in constant time.
///
/// The file (YAML or JSON) lists `tokens`, each with a `name`, a `role` (`viewer`, `editor`,
/// `pusher`, `admin`, or `metrics` for `/metrics` only), the `namespaces` it may touch (exact names or globs, `*` for all), and
/// either `sha256` (hex digest of the token; preferred) or `token` (plain text, hashed on load).
/// `reload()` re-reads it; on error the previous tokens stay in force.
public final class TokenAuthenticator: Sendable {
    struct Entry: Sendable {
        var digest: [UInt8]
        var principal: Principal
    }

    public let path: String
    private let entries: Mutex<[Entry]>

    public init(path: String) throws(TokenFileError) {
        self.path = path
        entries = Mutex(try TokenAuthenticator.load(path))
    }

    /// Number of tokens in force.
    public var count: Int { entries.withLock { $0.count } }

    /// Re-reads the file; returns the new token count.
    @discardableResult
    public func reload() throws(TokenFileError) -> Int {
        let loaded = try TokenAuthenticator.load(path)
        entries.withLock { $0 = loaded }
        return loaded.count
    }

    /// The principal of a presented token, or nil. Every stored digest is compared, each in
    /// constant time, so timing says nothing about which token (or how much of one) matched.
    public func principal(forToken token: String) -> Principal? {
        guard TokenAuthenticator.isUsable(token) else { return nil }
        return principal(forDigest: Self.digest(token))
    }

    /// The SHA-256 digest a token is kept and compared as.
    static func digest(_ token: String) -> [UInt8] { Array(SHA256.hash(data: Array(token.utf8))) }

    /// The principal of a token given by its digest (`digest(_:)`), or nil: what an open watch
    /// is checked against after a reload. Compared as `principal(forToken:)` does.
    func principal(forDigest digest: [UInt8]) -> Principal? {
        let current = entries.withLock { $0 }
        var found: Principal? = nil
        for entry in current {
            var difference: UInt8 = 0
            for (left, right) in zip(entry.digest, digest) { difference |= left ^ right }
            if difference == 0 && entry.digest.count == digest.count && found == nil { found = entry.principal }
        }
        return found
    }

    static func load(_ path: String) throws(TokenFileError) -> [Entry] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TokenFileError(message: "cannot read tokens file \(path): \(error.localizedDescription)")
        }
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch {
            throw TokenFileError(message: "tokens file \(path) is not valid YAML or JSON: \(YAMLErrorText.describe(error))")
        }
        guard let root = document as? [String: Any], let tokens = root["tokens"] as? [Any] else {
            throw TokenFileError(message: "tokens file \(path) must be an object with a \"tokens\" list")
        }
        var entries: [Entry] = []
        var names = Set<String>()
        for (index, item) in tokens.enumerated() {
            let place = "tokens[\(index)]"
            guard let token = item as? [String: Any] else { throw TokenFileError(message: "\(path): \(place) must be an object") }
            let unknown = Set(token.keys).subtracting(["name", "role", "namespaces", "sha256", "token"])
            guard unknown.isEmpty else { throw TokenFileError(message: "\(path): \(place) has unknown fields \(unknown.sorted())") }
            guard let name = token["name"] as? String, !name.isEmpty else {
                throw TokenFileError(message: "\(path): \(place).name is required")
            }
            guard names.insert(name).inserted else { throw TokenFileError(message: "\(path): \(place).name \"\(name)\" is used twice") }
            guard let roleName = token["role"] as? String, let role = Role(rawValue: roleName) else {
                throw TokenFileError(message: "\(path): \(place).role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let namespaces = token["namespaces"] as? [String], !namespaces.isEmpty else {
                throw TokenFileError(message: "\(path): \(place).namespaces must list at least one namespace or glob (\"*\" for all)")
            }
            let digest: [UInt8]
            switch (token["sha256"], token["token"]) {
            case (let hex as String, nil):
                guard let bytes = hexBytes(hex), bytes.count == 32 else {
                    throw TokenFileError(message: "\(path): \(place).sha256 must be 64 hexadecimal characters")
                }
                if let secret = trivialSecrets[bytes] {
                    throw TokenFileError(
                        message:
                            "\(path): \(place) (\(name)).sha256 is the digest of \(secret), which is no secret (was the variable empty when it was hashed?)"
                    )
                }
                digest = bytes
            case (nil, let plain as String):
                guard plain.utf8.count >= 16 else {
                    throw TokenFileError(message: "\(path): \(place) (\(name)).token must be at least 16 characters")
                }
                guard isUsable(plain) else {
                    throw TokenFileError(
                        message: "\(path): \(place) (\(name)).token may hold only visible ASCII characters (no spaces), as a bearer token does")
                }
                digest = Array(SHA256.hash(data: Array(plain.utf8)))
            default:
                throw TokenFileError(message: "\(path): \(place) needs exactly one of sha256 (preferred) or token")
            }
            // One token, two entries: only the first could ever authenticate, whatever the
            // second grants (a copy-paste slip that would silently cost an admin their access).
            if let first = entries.firstIndex(where: { $0.digest == digest }) {
                throw TokenFileError(
                    message:
                        "\(path): \(place) (\(name)) has the same token as tokens[\(first)] (\(entries[first].principal.name)); each entry needs its own token"
                )
            }
            entries.append(Entry(digest: digest, principal: Principal(name: name, role: role, scope: NamespaceScope(namespaces))))
        }
        return entries
    }

    /// Whether a token can be presented at all: not empty, visible ASCII only.
    static func isUsable(_ token: String) -> Bool {
        !token.isEmpty && token.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// Digests of "secrets" a broken recipe produces (an empty or unset variable, `echo` of one),
    /// refused in the file with what they are the digest of.
    static let trivialSecrets: [[UInt8]: String] = Dictionary(
        uniqueKeysWithValues: [("", "the empty string"), ("\n", "a lone newline"), (" ", "a space"), ("\r\n", "a lone CRLF")].map {
            (Array(SHA256.hash(data: Array($0.0.utf8))), $0.1)
        })

    static func hexBytes(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.lowercased().utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
