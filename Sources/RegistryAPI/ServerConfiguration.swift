import Foundation
public import HTTPServer
public import Logging
public import RegistryStorage

/// Everything `endpoint-registry serve` can be told, resolved once from flags, then environment
/// variables (`ENDPOINT_REGISTRY_*`), then defaults.
public struct ServerConfiguration: Sendable {
    public var http = HTTPServerConfiguration()
    public var databasePath = "./data/registry.sqlite"
    public var durability: Durability = .full
    public var logLevel: Logger.Level = .info
    public var logFormat: LogFormat = .text
    /// How long shutdown waits for in-flight requests.
    public var shutdownGraceSeconds = 10
    /// Bearer tokens; nil means anonymous access, allowed on loopback only unless
    /// `allowAnonymousOnAnyAddress`.
    public var tokensFile: String?
    public var allowAnonymousOnAnyAddress = false
    public var openness = RegistryApplication.Openness()
    /// Kubeconfig files to read clusters from (kubectl's merge rules).
    public var kubeconfigPaths: [String] = []
    /// Whether to add the pod's own cluster (`in-cluster`) when running in Kubernetes.
    public var inCluster = true
    /// `clusters` of a service created (or replaced, or imported new) without the field.
    public var defaultClusters: [String] = []
    /// Seconds between full resyncs, which compare every bound service's live objects with its
    /// rendering and repair differences.
    public var resyncIntervalSeconds = 300
    /// Most services reconciled at once in one cluster (the total is bounded too).
    public var clusterConcurrency = 4
    /// Most health-check probes in flight at once (issue 13).
    public var healthCheckConcurrency = 64

    /// True for 127.0.0.0/8 and ::1.
    public var bindsLoopbackOnly: Bool {
        let host = http.host
        return host == "::1" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
    }

    public init() {
        http.threads = max(4, ProcessInfo.processInfo.activeProcessorCount * 2)
    }

    /// A setting that could not be used, naming the flag and the environment variable.
    public struct Invalid: Error, CustomStringConvertible {
        public var setting: String
        public var message: String
        public var description: String { "\(setting): \(message)" }
    }

    /// Values given on the command line; nil means "not given".
    public struct Flags: Sendable {
        public var host: String?
        public var port: Int?
        public var database: String?
        public var durability: String?
        public var threads: Int?
        public var maxBodyBytes: Int?
        public var connectionLimit: Int?
        public var connectionTimeout: Int?
        public var connectionMemory: Int?
        public var logLevel: String?
        public var logFormat: String?
        public var tlsCert: String?
        public var tlsKey: String?
        public var tokensFile: String?
        public var insecureAllowAnonymous: Bool?
        public var publicMetrics: Bool?
        public var publicOpenAPI: Bool?
        public var kubeconfig: String?
        public var defaultClusters: String?
        public var resyncInterval: Int?
        public var clusterConcurrency: Int?
        public var healthCheckConcurrency: Int?

        public init() {}
    }

    /// Environment variable of each setting.
    public static let environmentNames: [String: String] = [
        "host": "ENDPOINT_REGISTRY_HOST", "port": "ENDPOINT_REGISTRY_PORT", "database": "ENDPOINT_REGISTRY_DATABASE",
        "durability": "ENDPOINT_REGISTRY_DURABILITY", "threads": "ENDPOINT_REGISTRY_THREADS",
        "max-body-bytes": "ENDPOINT_REGISTRY_MAX_BODY_BYTES", "connection-limit": "ENDPOINT_REGISTRY_CONNECTION_LIMIT",
        "connection-timeout": "ENDPOINT_REGISTRY_CONNECTION_TIMEOUT", "connection-memory": "ENDPOINT_REGISTRY_CONNECTION_MEMORY", "log-level": "ENDPOINT_REGISTRY_LOG_LEVEL",
        "log-format": "ENDPOINT_REGISTRY_LOG_FORMAT", "tls-cert": "ENDPOINT_REGISTRY_TLS_CERT", "tls-key": "ENDPOINT_REGISTRY_TLS_KEY",
        "tokens-file": "ENDPOINT_REGISTRY_TOKENS_FILE", "insecure-allow-anonymous": "ENDPOINT_REGISTRY_INSECURE_ALLOW_ANONYMOUS",
        "public-metrics": "ENDPOINT_REGISTRY_PUBLIC_METRICS", "public-openapi": "ENDPOINT_REGISTRY_PUBLIC_OPENAPI",
        "kubeconfig": "KUBECONFIG", "default-clusters": "ENDPOINT_REGISTRY_DEFAULT_CLUSTERS",
        "resync-interval": "ENDPOINT_REGISTRY_RESYNC_INTERVAL", "cluster-concurrency": "ENDPOINT_REGISTRY_CLUSTER_CONCURRENCY",
        "health-check-concurrency": "ENDPOINT_REGISTRY_HEALTH_CHECK_CONCURRENCY",
    ]

    public static func resolve(flags: Flags, environment: [String: String]) throws(Invalid) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        func text(_ name: String, _ flag: String?) -> String? {
            flag ?? environment[environmentNames[name]!].flatMap { $0.isEmpty ? nil : $0 }
        }
        func integer(_ name: String, _ flag: Int?, in range: ClosedRange<Int>) throws(Invalid) -> Int? {
            let value: Int
            if let flag {
                value = flag
            } else if let raw = text(name, nil) {
                guard let parsed = Int(raw) else {
                    throw Invalid(setting: "--\(name) / \(environmentNames[name]!)", message: "\"\(raw)\" is not an integer")
                }
                value = parsed
            } else {
                return nil
            }
            guard range.contains(value) else {
                throw Invalid(setting: "--\(name) / \(environmentNames[name]!)", message: "\(value) is outside \(range.lowerBound)…\(range.upperBound)")
            }
            return value
        }
        func choice<T: RawRepresentable & CaseIterable>(_ name: String, _ flag: String?, _ type: T.Type) throws(Invalid) -> T?
        where T.RawValue == String {
            guard let raw = text(name, flag) else { return nil }
            guard let value = T(rawValue: raw.lowercased()) else {
                throw Invalid(
                    setting: "--\(name) / \(environmentNames[name]!)",
                    message: "\"\(raw)\" is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return value
        }

        func boolean(_ name: String, _ flag: Bool?) throws(Invalid) -> Bool? {
            if let flag { return flag }
            guard let raw = text(name, nil) else { return nil }
            switch raw.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw Invalid(setting: "--\(name) / \(environmentNames[name]!)", message: "\"\(raw)\" is not true or false")
            }
        }
        configuration.tokensFile = text("tokens-file", flags.tokensFile)
        if let list = text("kubeconfig", flags.kubeconfig) {
            configuration.kubeconfigPaths = list.split(separator: ":").map(String.init)
        } else if let home = environment["HOME"] {
            configuration.kubeconfigPaths = ["\(home)/.kube/config"]
        }
        if let value = try boolean("insecure-allow-anonymous", flags.insecureAllowAnonymous) { configuration.allowAnonymousOnAnyAddress = value }
        if let value = try boolean("public-metrics", flags.publicMetrics) { configuration.openness.metrics = value }
        if let value = try boolean("public-openapi", flags.publicOpenAPI) { configuration.openness.openAPI = value }
        if let host = text("host", flags.host) { configuration.http.host = host }
        if let port = try integer("port", flags.port, in: 0...65535) { configuration.http.port = UInt16(port) }
        if let database = text("database", flags.database) { configuration.databasePath = database }
        if let durability = try choice("durability", flags.durability, Durability.self) { configuration.durability = durability }
        if let threads = try integer("threads", flags.threads, in: 1...256) { configuration.http.threads = threads }
        if let limit = try integer("max-body-bytes", flags.maxBodyBytes, in: 1024...(1 << 30)) { configuration.http.maxBodyBytes = limit }
        if let limit = try integer("connection-limit", flags.connectionLimit, in: 1...100_000) { configuration.http.connectionLimit = limit }
        if let timeout = try integer("connection-timeout", flags.connectionTimeout, in: 1...3600) {
            configuration.http.connectionTimeoutSeconds = timeout
        }
        if let memory = try integer("connection-memory", flags.connectionMemory, in: 8192...(16 << 20)) {
            configuration.http.connectionMemoryLimit = memory
        }
        if let list = text("default-clusters", flags.defaultClusters) {
            configuration.defaultClusters = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let seconds = try integer("resync-interval", flags.resyncInterval, in: 1...86_400) { configuration.resyncIntervalSeconds = seconds }
        if let count = try integer("cluster-concurrency", flags.clusterConcurrency, in: 1...64) { configuration.clusterConcurrency = count }
        if let count = try integer("health-check-concurrency", flags.healthCheckConcurrency, in: 1...1024) {
            configuration.healthCheckConcurrency = count
        }
        if let level = try choice("log-level", flags.logLevel, Logger.Level.self) { configuration.logLevel = level }
        if let format = try choice("log-format", flags.logFormat, LogFormat.self) { configuration.logFormat = format }
        let certificate = text("tls-cert", flags.tlsCert)
        let key = text("tls-key", flags.tlsKey)
        if (certificate == nil) != (key == nil) {
            throw Invalid(setting: "--tls-cert / --tls-key", message: "give both the certificate and the key, or neither")
        }
        if let certificate, let key {
            do {
                configuration.http.tlsCertificatePEM = try String(contentsOfFile: certificate, encoding: .utf8)
                configuration.http.tlsKeyPEM = try String(contentsOfFile: key, encoding: .utf8)
            } catch {
                throw Invalid(setting: "--tls-cert / --tls-key", message: "cannot read: \(error.localizedDescription)")
            }
        }
        if configuration.tokensFile == nil && !configuration.bindsLoopbackOnly && !configuration.allowAnonymousOnAnyAddress {
            throw Invalid(
                setting: "--host / ENDPOINT_REGISTRY_HOST",
                message:
                    "without --tokens-file anyone could change the registry, so the server only binds to loopback; give a tokens file, or --insecure-allow-anonymous to accept the risk")
        }
        return configuration
    }
}
