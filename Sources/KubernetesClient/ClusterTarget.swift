import Foundation
import Synchronization
import Yams

/// How requests to a cluster authenticate.
public enum ClusterAuth: Sendable, Equatable {
    case none
    case token(String)
    /// A token file, re-read at most every minute and after a 401, as client-go does.
    case tokenFile(String)
    /// Client certificate and key (PEM), sent through TLS.
    case clientCertificate

    /// The kind, safe to show (never the secret).
    public var kind: String {
        switch self {
        case .none: "none"
        case .token: "token"
        case .tokenFile: "tokenFile"
        case .clientCertificate: "clientCertificate"
        }
    }
}

/// A cluster the registry can push to: one kubeconfig context, or the pod's own cluster.
public struct ClusterTarget: Sendable {
    public var name: String
    public var server: String
    public var auth: ClusterAuth
    public var tls: TLSSettings
    /// Why this cluster cannot be used (exec or auth-provider plugins, missing files…); nil if usable.
    public var unusableReason: String?
    /// The auth kind as configured, also for unusable ones (`exec`, `auth-provider`, …).
    public var authKind: String

    public var usable: Bool { unusableReason == nil }

    public init(name: String, server: String, auth: ClusterAuth, tls: TLSSettings = TLSSettings(), unusableReason: String? = nil, authKind: String? = nil) {
        self.name = name
        self.server = server
        self.auth = auth
        self.tls = tls
        self.unusableReason = unusableReason
        self.authKind = authKind ?? auth.kind
    }
}

/// Why a kubeconfig could not be read.
public struct KubeConfigError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Reads kubeconfig files as kubectl does: several files (KUBECONFIG's `:` list) merged, the
/// first definition of a cluster, user or context winning; relative paths resolved against the
/// file that names them; `*-data` fields overriding their file counterparts. Every context
/// becomes a target; contexts using exec or auth-provider plugins are kept, marked unusable.
public enum KubeConfigLoader {
    public static func load(paths: [String]) throws(KubeConfigError) -> [ClusterTarget] {
        var clusters: [String: (entry: [String: Any], directory: String)] = [:]
        var users: [String: (entry: [String: Any], directory: String)] = [:]
        var contexts: [(name: String, entry: [String: Any])] = []
        var seenContexts = Set<String>()
        for path in paths where !path.isEmpty {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                if FileManager.default.fileExists(atPath: path) { throw KubeConfigError(message: "cannot read kubeconfig \(path)") }
                continue
            }
            let document: Any?
            do {
                document = try Yams.load(yaml: text)
            } catch {
                throw KubeConfigError(message: "kubeconfig \(path) is not valid YAML: \(error)")
            }
            guard let root = document as? [String: Any] else { continue }
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            for item in (root["clusters"] as? [[String: Any]]) ?? [] {
                guard let name = item["name"] as? String, clusters[name] == nil else { continue }
                clusters[name] = ((item["cluster"] as? [String: Any]) ?? [:], directory)
            }
            for item in (root["users"] as? [[String: Any]]) ?? [] {
                guard let name = item["name"] as? String, users[name] == nil else { continue }
                users[name] = ((item["user"] as? [String: Any]) ?? [:], directory)
            }
            for item in (root["contexts"] as? [[String: Any]]) ?? [] {
                guard let name = item["name"] as? String, seenContexts.insert(name).inserted else { continue }
                contexts.append((name, (item["context"] as? [String: Any]) ?? [:]))
            }
        }
        return contexts.map { context in
            target(name: context.name, context: context.entry, clusters: clusters, users: users)
        }
    }

    /// The paths kubectl would read: `$KUBECONFIG` split on `:`, else `~/.kube/config`.
    public static func defaultPaths(environment: [String: String]) -> [String] {
        if let list = environment["KUBECONFIG"], !list.isEmpty { return list.split(separator: ":").map(String.init) }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return ["\(home)/.kube/config"]
    }

    static func resolve(_ path: String, in directory: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).path
    }

    /// The bytes of a `*-data` (base64) field or, failing that, of its file field.
    static func pem(_ entry: [String: Any], data: String, file: String, directory: String) -> Result<[UInt8]?, KubeConfigError> {
        if let base64 = entry[data] as? String {
            guard let decoded = Data(base64Encoded: base64.filter { !$0.isWhitespace }) else {
                return .failure(KubeConfigError(message: "\(data) is not valid base64"))
            }
            return .success(Array(decoded))
        }
        if let path = entry[file] as? String {
            let full = resolve(path, in: directory)
            guard let contents = FileManager.default.contents(atPath: full) else {
                return .failure(KubeConfigError(message: "\(file) \(full) cannot be read"))
            }
            return .success(Array(contents))
        }
        return .success(nil)
    }

    static func target(
        name: String, context: [String: Any], clusters: [String: (entry: [String: Any], directory: String)],
        users: [String: (entry: [String: Any], directory: String)]
    ) -> ClusterTarget {
        func unusable(_ server: String, _ reason: String, kind: String = "none") -> ClusterTarget {
            ClusterTarget(name: name, server: server, auth: .none, unusableReason: reason, authKind: kind)
        }
        guard let clusterName = context["cluster"] as? String, let cluster = clusters[clusterName] else {
            return unusable("", "context names cluster \"\(context["cluster"] ?? "")\", which no kubeconfig defines")
        }
        guard let server = cluster.entry["server"] as? String, !server.isEmpty else {
            return unusable("", "cluster \(clusterName) has no server")
        }
        var tls = TLSSettings()
        tls.insecureSkipVerify = (cluster.entry["insecure-skip-tls-verify"] as? Bool) ?? false
        tls.serverName = cluster.entry["tls-server-name"] as? String
        switch pem(cluster.entry, data: "certificate-authority-data", file: "certificate-authority", directory: cluster.directory) {
        case .success(let ca): tls.certificateAuthorityPEM = ca
        case .failure(let error): return unusable(server, "cluster \(clusterName): \(error.message)")
        }
        if tls.insecureSkipVerify && tls.certificateAuthorityPEM != nil {
            return unusable(server, "cluster \(clusterName) sets both insecure-skip-tls-verify and a certificate authority")
        }
        let userName = context["user"] as? String
        let user = userName.flatMap { users[$0] } ?? (entry: [:], directory: cluster.directory)
        if userName != nil, userName.flatMap({ users[$0] }) == nil {
            return unusable(server, "context names user \"\(userName!)\", which no kubeconfig defines")
        }
        if user.entry["exec"] != nil {
            let command = ((user.entry["exec"] as? [String: Any])?["command"] as? String) ?? "?"
            return unusable(server, "user \(userName ?? "") uses an exec credential plugin (\(command)), which this registry does not run", kind: "exec")
        }
        if user.entry["auth-provider"] != nil {
            return unusable(server, "user \(userName ?? "") uses a legacy auth-provider plugin, which this registry does not support", kind: "auth-provider")
        }
        if user.entry["username"] != nil || user.entry["password"] != nil {
            return unusable(server, "user \(userName ?? "") uses basic authentication, which Kubernetes removed in 1.19", kind: "basic")
        }
        var auth = ClusterAuth.none
        switch (
            pem(user.entry, data: "client-certificate-data", file: "client-certificate", directory: user.directory),
            pem(user.entry, data: "client-key-data", file: "client-key", directory: user.directory)
        ) {
        case (.failure(let error), _), (_, .failure(let error)):
            return unusable(server, "user \(userName ?? ""): \(error.message)", kind: "clientCertificate")
        case (.success(let certificate?), .success(let key?)):
            tls.clientCertificatePEM = certificate
            tls.clientKeyPEM = key
            auth = .clientCertificate
        case (.success(nil), .success(nil)):
            break
        default:
            return unusable(server, "user \(userName ?? "") gives a client certificate without its key, or a key without its certificate", kind: "clientCertificate")
        }
        if let tokenFile = user.entry["tokenFile"] as? String {
            auth = .tokenFile(resolve(tokenFile, in: user.directory))
        } else if let token = user.entry["token"] as? String, !token.isEmpty {
            auth = .token(token)
        }
        return ClusterTarget(name: name, server: server, auth: auth, tls: tls)
    }

    /// The pod's own cluster, when running in one (client-go's InClusterConfig).
    public static func inCluster(environment: [String: String], root: String = "/var/run/secrets/kubernetes.io/serviceaccount") -> ClusterTarget? {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty, let port = environment["KUBERNETES_SERVICE_PORT"],
            !port.isEmpty
        else { return nil }
        let server = "https://" + (host.contains(":") ? "[\(host)]" : host) + ":" + port
        var tls = TLSSettings()
        guard let ca = FileManager.default.contents(atPath: "\(root)/ca.crt") else {
            return ClusterTarget(name: "in-cluster", server: server, auth: .none, unusableReason: "\(root)/ca.crt cannot be read", authKind: "tokenFile")
        }
        tls.certificateAuthorityPEM = Array(ca)
        guard FileManager.default.isReadableFile(atPath: "\(root)/token") else {
            return ClusterTarget(name: "in-cluster", server: server, auth: .none, unusableReason: "\(root)/token cannot be read", authKind: "tokenFile")
        }
        return ClusterTarget(name: "in-cluster", server: server, auth: .tokenFile("\(root)/token"), tls: tls)
    }
}

/// Token files read at most once a minute (and again after a 401), like client-go's
/// cached file token source.
final class TokenFileCache: Sendable {
    private let cache = Mutex<[String: (token: String, read: ContinuousClock.Instant)]>([:])
    static let shared = TokenFileCache()
    static let maxAge = Duration.seconds(60)

    func token(at path: String, forceReload: Bool = false) -> String? {
        let now = ContinuousClock.now
        if !forceReload, let cached = cache.withLock({ $0[path] }), now - cached.read < TokenFileCache.maxAge {
            return cached.token
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        cache.withLock { $0[path] = (token, now) }
        return token
    }
}
