import Foundation
import RegistryCore
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
    /// An exec credential plugin, run as client-go runs it (`ExecCredentialProvider`).
    case exec(ExecConfig)

    /// The kind, safe to show (never the secret).
    public var kind: String {
        switch self {
        case .none: "none"
        case .token: "token"
        case .tokenFile: "tokenFile"
        case .clientCertificate: "clientCertificate"
        case .exec: "exec"
        }
    }
}

/// A cluster the registry can push to: one kubeconfig context, or the pod's own cluster.
public struct ClusterTarget: Sendable, Equatable {
    public var name: String
    public var server: String
    /// The proxy requests go through (`http://`, `https://` or `socks5://`): the cluster's
    /// `proxy-url`, else `HTTPS_PROXY`/`HTTP_PROXY` unless `NO_PROXY` exempts the server (as
    /// Go's `http.ProxyFromEnvironment`, which client-go uses); nil: direct.
    public var proxyURL: String?
    /// True when `proxyURL` came from the environment rather than the kubeconfig.
    public var proxyFromEnvironment = false
    /// The context is the kubeconfig's `current-context`.
    public var current = false
    public var auth: ClusterAuth
    public var tls: TLSSettings
    /// Why this cluster cannot be used (exec or auth-provider plugins, missing files…); nil if usable.
    public var unusableReason: String?
    /// The auth kind as configured, also for unusable ones (`exec`, `auth-provider`, …).
    public var authKind: String

    public var usable: Bool { unusableReason == nil }

    public init(
        name: String, server: String, auth: ClusterAuth, tls: TLSSettings = TLSSettings(), unusableReason: String? = nil, authKind: String? = nil
    ) {
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
    public init(message: String) { self.message = message }
}

/// Reads kubeconfig files as kubectl does: several files (KUBECONFIG's `:` list) merged, the
/// first definition of a cluster, user or context winning; relative paths resolved against the
/// file that names them; `*-data` fields overriding their file counterparts. Every context
/// becomes a target; contexts using exec or auth-provider plugins are kept, marked unusable.
public enum KubeConfigLoader {
    public static func load(paths: [String]) throws(KubeConfigError) -> [ClusterTarget] {
        try load(paths: paths, environment: ProcessInfo.processInfo.environment)
    }

    /// `load(paths:)` with the environment that supplies `HTTPS_PROXY`, `HTTP_PROXY` and
    /// `NO_PROXY` for clusters without `proxy-url`.
    public static func load(paths: [String], environment: [String: String]) throws(KubeConfigError) -> [ClusterTarget] {
        var currentContext: String? = nil
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
                throw KubeConfigError(message: "kubeconfig \(path) is not valid YAML: \(YAMLErrorText.describe(error))")
            }
            guard let root = document as? [String: Any] else { continue }
            if currentContext == nil, let current = root["current-context"] as? String, !current.isEmpty { currentContext = current }
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
            var result = target(name: context.name, context: context.entry, clusters: clusters, users: users)
            result.current = context.name == currentContext
            if result.proxyURL == nil, !result.server.isEmpty {
                result.proxyURL = EnvironmentProxy.proxy(for: result.server, environment: environment)
                result.proxyFromEnvironment = result.proxyURL != nil
            }
            return result
        }
    }

    /// The paths kubectl would read: `$KUBECONFIG` split on `:`, else `~/.kube/config`.
    public static func defaultPaths(environment: [String: String]) -> [String] {
        if let list = environment["KUBECONFIG"], !list.isEmpty { return list.split(separator: ":").map(String.init) }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return ["\(home)/.kube/config"]
    }

    static func resolve(_ path: String, in directory: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: directory).appendingPathComponent(path).standardizedFileURL.path
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
            var result = ClusterTarget(name: name, server: server, auth: .none, unusableReason: reason, authKind: kind)
            result.proxyURL = clusters[context["cluster"] as? String ?? ""]?.entry["proxy-url"] as? String
            return result
        }
        guard let clusterName = context["cluster"] as? String, let cluster = clusters[clusterName] else {
            return unusable("", "context names cluster \"\(context["cluster"] ?? "")\", which no kubeconfig defines")
        }
        guard let server = cluster.entry["server"] as? String, !server.isEmpty else {
            return unusable("", "cluster \(clusterName) has no server")
        }
        var tls = TLSSettings()
        tls.insecureSkipVerify = (cluster.entry["insecure-skip-tls-verify"] as? Bool) ?? false
        tls.serverName = (cluster.entry["tls-server-name"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        var proxyURL: String? = nil
        if let proxy = cluster.entry["proxy-url"] as? String, !proxy.isEmpty {
            guard let scheme = URLComponents(string: proxy)?.scheme?.lowercased(), ["http", "https", "socks5"].contains(scheme),
                URLComponents(string: proxy)?.host?.isEmpty == false
            else {
                return unusable(server, "cluster \(clusterName): proxy-url \(Redaction.url(proxy)) is not an http, https or socks5 URL")
            }
            proxyURL = proxy
        }
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
            let info = ExecClusterInfo(
                server: server, tlsServerName: tls.serverName, insecureSkipTLSVerify: tls.insecureSkipVerify,
                certificateAuthorityData: tls.certificateAuthorityPEM,
                proxyURL: proxyURL, config: execExtension(cluster.entry))
            switch execConfig(user.entry["exec"], user: userName ?? "", directory: user.directory, cluster: info) {
            case .success(let config):
                var result = ClusterTarget(name: name, server: server, auth: .exec(config), tls: tls)
                result.proxyURL = proxyURL
                return result
            case .failure(let error):
                var result = unusable(server, error.message, kind: "exec")
                result.proxyURL = proxyURL
                return result
            }
        }
        if user.entry["auth-provider"] != nil {
            return unusable(
                server, "user \(userName ?? "") uses a legacy auth-provider plugin, which this registry does not support", kind: "auth-provider")
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
            return unusable(
                server, "user \(userName ?? "") gives a client certificate without its key, or a key without its certificate",
                kind: "clientCertificate")
        }
        if let tokenFile = user.entry["tokenFile"] as? String {
            auth = .tokenFile(resolve(tokenFile, in: user.directory))
        } else if let token = user.entry["token"] as? String, !token.isEmpty {
            auth = .token(token)
        }
        var result = ClusterTarget(name: name, server: server, auth: auth, tls: tls)
        result.proxyURL = proxyURL
        return result
    }

    /// A user's `exec` stanza, checked as client-go checks it: a supported `apiVersion`, a
    /// `command`, `interactiveMode` required in v1; `Always` needs a terminal the registry never has.
    static func execConfig(_ value: Any?, user: String, directory: String, cluster: ExecClusterInfo) -> Result<ExecConfig, KubeConfigError> {
        func failure(_ message: String) -> Result<ExecConfig, KubeConfigError> {
            .failure(KubeConfigError(message: "user \(user): exec: \(message)"))
        }
        guard let entry = value as? [String: Any] else { return failure("must be a mapping") }
        guard let command = entry["command"] as? String, !command.isEmpty else { return failure("command is required") }
        let apiVersion = (entry["apiVersion"] as? String) ?? ""
        guard ExecConfig.supportedVersions.contains(apiVersion) else {
            return failure("apiVersion \"\(apiVersion)\" is not supported (use client.authentication.k8s.io/v1 or v1beta1)")
        }
        let mode = entry["interactiveMode"] as? String
        if let mode, !["Never", "IfAvailable", "Always"].contains(mode) {
            return failure("interactiveMode \"\(mode)\" is not one of Never, IfAvailable, Always")
        }
        if mode == nil && apiVersion == "client.authentication.k8s.io/v1" {
            return failure("interactiveMode must be specified for \(command) to use exec authentication plugin (client.authentication.k8s.io/v1)")
        }
        if mode == "Always" {
            return failure(
                "the exec plugin \(command) sets interactiveMode: Always, it needs a terminal, and the registry is never interactive; use a plugin configuration that runs without one"
            )
        }
        var env: [ExecEnvVar] = []
        for item in (entry["env"] as? [[String: Any]]) ?? [] {
            guard let name = item["name"] as? String, !name.isEmpty else { return failure("every env entry needs a name") }
            env.append(ExecEnvVar(name: name, value: (item["value"] as? String) ?? ""))
        }
        let args = ((entry["args"] as? [Any]) ?? []).map { "\($0)" }
        // client-go resolves a command holding a path separator against the kubeconfig's directory.
        let resolved = command.contains("/") ? resolve(command, in: directory) : command
        return .success(
            ExecConfig(
                apiVersion: apiVersion, command: resolved, args: args, env: env, installHint: entry["installHint"] as? String,
                provideClusterInfo: (entry["provideClusterInfo"] as? Bool) ?? false, interactiveMode: mode, cluster: cluster))
    }

    /// The cluster's `extensions` entry `client.authentication.k8s.io/exec`, passed to plugins.
    static func execExtension(_ cluster: [String: Any]) -> JSONValue? {
        for item in (cluster["extensions"] as? [[String: Any]]) ?? [] where item["name"] as? String == "client.authentication.k8s.io/exec" {
            guard let value = item["extension"], let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) else {
                return nil
            }
            return try? JSONParser.parse(Array(data))
        }
        return nil
    }

    /// The pod's own cluster, when running in one (client-go's InClusterConfig).
    public static func inCluster(environment: [String: String], root: String = "/var/run/secrets/kubernetes.io/serviceaccount") -> ClusterTarget? {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty, let port = environment["KUBERNETES_SERVICE_PORT"],
            !port.isEmpty
        else { return nil }
        let server = "https://" + (host.contains(":") ? "[\(host)]" : host) + ":" + port
        var tls = TLSSettings()
        guard let ca = FileManager.default.contents(atPath: "\(root)/ca.crt") else {
            return ClusterTarget(
                name: "in-cluster", server: server, auth: .none, unusableReason: "\(root)/ca.crt cannot be read", authKind: "tokenFile")
        }
        tls.certificateAuthorityPEM = Array(ca)
        guard FileManager.default.isReadableFile(atPath: "\(root)/token") else {
            return ClusterTarget(
                name: "in-cluster", server: server, auth: .none, unusableReason: "\(root)/token cannot be read", authKind: "tokenFile")
        }
        var target = ClusterTarget(name: "in-cluster", server: server, auth: .tokenFile("\(root)/token"), tls: tls)
        // client-go's in-cluster transport also follows HTTPS_PROXY/NO_PROXY.
        target.proxyURL = EnvironmentProxy.proxy(for: server, environment: environment)
        target.proxyFromEnvironment = target.proxyURL != nil
        return target
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
