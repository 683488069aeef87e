import Foundation
import HTTPServer
import KubernetesClient
import PostgresStorage
import Logging
import RegistryCore
import RegistryStorage

/// One setting of `endpoint-registry serve`, declared once: its flag, environment variable,
/// default, help, and how a value is checked and applied. `serve --help`, the README's
/// configuration table and the parser all come from `ServerSettings.table`.
public struct ServerSetting: Sendable {
    /// How the setting takes its value on the command line.
    public enum Kind: Sendable {
        /// `--name VALUE` or `--name=VALUE`; `placeholder` is shown in the help.
        case value(placeholder: String)
        /// `--name` alone means true (`--name=false` is allowed); the environment variable takes
        /// `true`/`false`/`1`/`0`/`yes`/`no`.
        case toggle
    }

    /// The flag without its dashes (`port` for `--port`).
    public let name: String
    /// Other spellings accepted for the flag (kept for compatibility).
    public let aliases: [String]
    /// The environment variable read when the flag is not given.
    public let environment: String
    public let kind: Kind
    /// The default, as shown in the help.
    public let defaultDescription: String
    public let help: String
    /// Checks a raw value and stores it; throws a sentence (without the setting's name).
    let apply: @Sendable (String, inout ServerConfiguration) throws(SettingValueError) -> Void

    /// `--name / ENVIRONMENT`, as errors name a setting.
    public var label: String { "--\(name) / \(environment)" }
}

/// Why a value was refused, as a sentence without the setting's name.
struct SettingValueError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// The table of every `serve` setting and the resolution of flags and environment into a
/// `ServerConfiguration`.
public enum ServerSettings {
    public static let table: [ServerSetting] = [
        setting(
            "host", "ENDPOINT_REGISTRY_HOST", .value(placeholder: "address"), "127.0.0.1",
            "Numeric IPv4 or IPv6 address to listen on (0.0.0.0 or :: for every interface); `localhost` means 127.0.0.1."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.host = try numericHost(raw)
        },
        setting("port", "ENDPOINT_REGISTRY_PORT", .value(placeholder: "port"), "8478", "TCP port; 0 picks a free one and logs it.") {
            raw, configuration throws(SettingValueError) in
            configuration.http.port = UInt16(try integer(raw, in: 0...65535))
        },
        setting(
            "database", "ENDPOINT_REGISTRY_DATABASE", .value(placeholder: "path|url"), "./data/registry.sqlite",
            "SQLite database file (its directory is created), or a postgres:// or postgresql:// URL of the PostgreSQL database several replicas share (user, host, port, database, sslmode, …; the password from --database-password-file or PGPASSWORD rather than the URL)."
        ) { raw, configuration throws(SettingValueError) in
            let kind: PostgresConnectionSettings.DatabaseKind
            do {
                kind = try PostgresConnectionSettings.kind(of: raw)
            } catch {
                throw SettingValueError("\(error)")
            }
            if kind == .postgreSQL {
                do {
                    _ = try PostgresConnectionSettings(url: raw, environment: [:])
                } catch {
                    throw SettingValueError("\(error)")
                }
                configuration.postgresURL = raw
            } else {
                configuration.postgresURL = nil
                configuration.databasePath = raw
            }
        },
        setting(
            "database-password-file", "ENDPOINT_REGISTRY_DATABASE_PASSWORD_FILE", .value(placeholder: "path"), "none",
            "PostgreSQL: a file holding only the password (a mounted Secret), read again for every new connection, so a rotated password is picked up."
        ) { raw, configuration throws(SettingValueError) in
            var isDirectory: ObjCBool = false
            guard FileManager.default.isReadableFile(atPath: raw), FileManager.default.fileExists(atPath: raw, isDirectory: &isDirectory),
                !isDirectory.boolValue
            else { throw SettingValueError("\(raw) is not a readable file") }
            configuration.databasePasswordFile = raw
        },
        setting(
            "durability", "ENDPOINT_REGISTRY_DURABILITY", .value(placeholder: "full|normal"), "full",
            "SQLite: full: fsync every commit (survives power loss); normal: fsync at checkpoints (survives kill -9, may lose the last commits on power loss). PostgreSQL: the server's synchronous_commit decides."
        ) { raw, configuration throws(SettingValueError) in
            configuration.durability = try choice(raw, Durability.self)
        },
        setting(
            "skip-db-check", "ENDPOINT_REGISTRY_SKIP_DB_CHECK", .toggle, "off",
            "Skip the start-up check of the SQLite database file (PRAGMA quick_check, at most 30 s)."
        ) { raw, configuration throws(SettingValueError) in
            configuration.checkDatabaseAtStart = !(try boolean(raw))
        },
        setting(
            "audit-retention-days", "ENDPOINT_REGISTRY_AUDIT_RETENTION_DAYS", .value(placeholder: "days"), "90",
            "Audit lines older than this are deleted in the background."
        ) { raw, configuration throws(SettingValueError) in
            configuration.auditRetentionDays = try integer(raw, in: 1...36_500)
        },
        setting(
            "history-limit", "ENDPOINT_REGISTRY_HISTORY_LIMIT", .value(placeholder: "revisions"), "100",
            "Revisions kept in each service's history; older ones are deleted in the background."
        ) { raw, configuration throws(SettingValueError) in
            configuration.historyLimit = try integer(raw, in: 1...100_000)
        },
        setting(
            "threads", "ENDPOINT_REGISTRY_THREADS", .value(placeholder: "count"),
            "cores, at least 2 (PostgreSQL: 2 x cores, at least 4)", "Worker threads answering requests."
        ) {
            raw, configuration throws(SettingValueError) in
            configuration.http.threads = try integer(raw, in: 1...256)
        },
        setting(
            "max-body-bytes", "ENDPOINT_REGISTRY_MAX_BODY_BYTES", .value(placeholder: "bytes"), "4194304",
            "Largest request body; larger ones get 413."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.maxBodyBytes = try integer(raw, in: 1024...(1 << 30))
        },
        setting("connection-limit", "ENDPOINT_REGISTRY_CONNECTION_LIMIT", .value(placeholder: "count"), "1000", "Most connections served at once.") {
            raw, configuration throws(SettingValueError) in
            configuration.http.connectionLimit = try integer(raw, in: 1...100_000)
        },
        setting(
            "connection-timeout", "ENDPOINT_REGISTRY_CONNECTION_TIMEOUT", .value(placeholder: "seconds"), "30",
            "Seconds before an idle or stalled connection is closed."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.connectionTimeoutSeconds = try integer(raw, in: 1...3600)
        },
        setting(
            "connection-memory", "ENDPOINT_REGISTRY_CONNECTION_MEMORY", .value(placeholder: "bytes"), "32768",
            "Memory per connection for the request line, headers and buffers; larger headers get 431."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.connectionMemoryLimit = try integer(raw, in: 8192...(16 << 20))
        },
        setting(
            "connection-limit-per-client", "ENDPOINT_REGISTRY_CONNECTION_LIMIT_PER_CLIENT", .value(placeholder: "count"), "100",
            "Connections one client address may have open; more get 503 and are closed. 0: no limit."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.connectionLimitPerClient = try integer(raw, in: 0...100_000)
        },
        setting(
            "header-timeout", "ENDPOINT_REGISTRY_HEADER_TIMEOUT", .value(placeholder: "seconds"), "10",
            "Seconds to receive a request line and headers, from the accept (or, kept alive, the request line); trickling bytes do not extend it."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.headerTimeoutSeconds = try integer(raw, in: 1...3600)
        },
        setting(
            "body-timeout", "ENDPOINT_REGISTRY_BODY_TIMEOUT", .value(placeholder: "seconds"), "60",
            "Seconds to receive a whole request body, from the end of its headers."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.bodyTimeoutSeconds = try integer(raw, in: 1...3600)
        },
        setting(
            "write-timeout", "ENDPOINT_REGISTRY_WRITE_TIMEOUT", .value(placeholder: "seconds"), "60",
            "Seconds to send a whole response; slower readers are disconnected."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.writeTimeoutSeconds = try integer(raw, in: 1...3600)
        },
        setting(
            "request-body-budget-bytes", "ENDPOINT_REGISTRY_REQUEST_BODY_BUDGET_BYTES", .value(placeholder: "bytes"), "67108864",
            "Request-body bytes buffered across all connections at once; beyond it 503 with Retry-After. At least --max-body-bytes."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.requestBodyBudgetBytes = try integer(raw, in: 1024...(1 << 40))
        },
        setting(
            "log-level", "ENDPOINT_REGISTRY_LOG_LEVEL", .value(placeholder: "level"), "info",
            "trace, debug, info, notice, warning, error or critical; info logs one line per request."
        ) { raw, configuration throws(SettingValueError) in
            configuration.logLevel = try choice(raw, Logger.Level.self)
        },
        setting(
            "log-format", "ENDPOINT_REGISTRY_LOG_FORMAT", .value(placeholder: "text|json"), "text",
            "Logs go to stderr: text, or one JSON object per line."
        ) { raw, configuration throws(SettingValueError) in
            configuration.logFormat = try choice(raw, LogFormat.self)
        },
        setting(
            "tls-cert", "ENDPOINT_REGISTRY_TLS_CERT", .value(placeholder: "file"), "off",
            "PEM certificate file; with --tls-key the server speaks HTTPS."
        ) { raw, configuration throws(SettingValueError) in
            configuration.http.tlsCertificatePEM = try readableFile(raw, what: "certificate")
        },
        setting("tls-key", "ENDPOINT_REGISTRY_TLS_KEY", .value(placeholder: "file"), "off", "PEM private key file for --tls-cert.") {
            raw, configuration throws(SettingValueError) in
            configuration.http.tlsKeyPEM = try readableFile(raw, what: "private key")
        },
        setting(
            "tokens-file", "ENDPOINT_REGISTRY_TOKENS_FILE", .value(placeholder: "file"), "none: anonymous, loopback only",
            "YAML or JSON file of bearer tokens (name, role, namespaces, sha256); reloaded on SIGHUP. Without it every caller is anonymous with full rights and the server binds to loopback only."
        ) { raw, configuration throws(SettingValueError) in
            configuration.tokensFile = raw
        },
        setting(
            "insecure-allow-anonymous", "ENDPOINT_REGISTRY_INSECURE_ALLOW_ANONYMOUS", .toggle, "off",
            "Allow running without --tokens-file on a non-loopback address."
        ) { raw, configuration throws(SettingValueError) in
            configuration.allowAnonymousOnAnyAddress = try boolean(raw)
        },
        setting("public-metrics", "ENDPOINT_REGISTRY_PUBLIC_METRICS", .value(placeholder: "true|false"), "false", "true: /metrics needs no token.") {
            raw, configuration throws(SettingValueError) in
            configuration.openness.metrics = try boolean(raw)
        },
        setting(
            "public-openapi", "ENDPOINT_REGISTRY_PUBLIC_OPENAPI", .value(placeholder: "true|false"), "true", "false: /openapi.yaml needs a token.",
            aliases: ["public-open-api"]
        ) { raw, configuration throws(SettingValueError) in
            configuration.openness.openAPI = try boolean(raw)
        },
        setting(
            "kubeconfig", "KUBECONFIG", .value(placeholder: "files"), "~/.kube/config",
            "Kubeconfig files (colon-separated, merged as kubectl does) naming the clusters to push to; a file named here must exist; reloaded on SIGHUP."
        ) { raw, configuration throws(SettingValueError) in
            configuration.kubeconfigPaths = raw.split(separator: ":").map(String.init)
            configuration.kubeconfigExplicit = true
        },
        setting(
            "default-clusters", "ENDPOINT_REGISTRY_DEFAULT_CLUSTERS", .value(placeholder: "names"), "none",
            "Comma-separated cluster names bound to a service created without `clusters`."
        ) { raw, configuration throws(SettingValueError) in
            configuration.defaultClusters = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        },
        setting(
            "resync-interval", "ENDPOINT_REGISTRY_RESYNC_INTERVAL", .value(placeholder: "seconds"), "300",
            "Seconds between full resyncs, which compare every bound service's live objects with its rendering and repair drift."
        ) { raw, configuration throws(SettingValueError) in
            configuration.resyncIntervalSeconds = try integer(raw, in: 1...86_400)
        },
        setting(
            "cluster-concurrency", "ENDPOINT_REGISTRY_CLUSTER_CONCURRENCY", .value(placeholder: "count"), "4",
            "Most services reconciled at once in one cluster (16 at most in all)."
        ) { raw, configuration throws(SettingValueError) in
            configuration.clusterConcurrency = try integer(raw, in: 1...64)
        },
        setting(
            "health-check-concurrency", "ENDPOINT_REGISTRY_HEALTH_CHECK_CONCURRENCY", .value(placeholder: "count"), "4096",
            "Most health-check probes in flight at once (1–65536). A probe waiting for its backend holds a socket, no thread; the server raises its soft descriptor limit to hold them (plus 1,024), or probes fewer at once when the hard limit is lower (logged)."
        ) { raw, configuration throws(SettingValueError) in
            configuration.healthCheckConcurrency = try integer(raw, in: 1...65536)
        },
        setting(
            "max-watchers", "ENDPOINT_REGISTRY_MAX_WATCHERS", .value(placeholder: "count"), "500",
            "Watches (GET /v1/services?watch=true) open at once; more get 429. 0 refuses every watch. At most half of --connection-limit (each watch holds a connection; the other half stays for requests and probes); without it, 500 or that half if smaller."
        ) { raw, configuration throws(SettingValueError) in
            configuration.watch.maxWatchers = try integer(raw, in: 0...100_000)
        },
        setting(
            "watch-buffer-bytes", "ENDPOINT_REGISTRY_WATCH_BUFFER_BYTES", .value(placeholder: "bytes"), "1048576",
            "Bytes of events one watcher may have waiting to be sent; a watcher that reads slower is dropped with a final ERROR event."
        ) { raw, configuration throws(SettingValueError) in
            configuration.watch.bufferBytes = try integer(raw, in: 4096...(1 << 30))
        },
        setting(
            "watch-timeout", "ENDPOINT_REGISTRY_WATCH_TIMEOUT", .value(placeholder: "seconds"), "1800",
            "The longest a watch stays open (timeoutSeconds is capped to it); without timeoutSeconds a watch lasts between half of it and all of it."
        ) { raw, configuration throws(SettingValueError) in
            configuration.watch.maxDurationSeconds = try integer(raw, in: 1...86_400)
        },
        setting(
            "watch-bookmark-interval", "ENDPOINT_REGISTRY_WATCH_BOOKMARK_INTERVAL", .value(placeholder: "seconds"), "60",
            "Seconds between BOOKMARK events to watchers that ask for them (allowWatchBookmarks=true)."
        ) { raw, configuration throws(SettingValueError) in
            configuration.watch.bookmarkIntervalSeconds = try integer(raw, in: 1...3600)
        },
        setting(
            "watch-history-events", "ENDPOINT_REGISTRY_WATCH_HISTORY_EVENTS", .value(placeholder: "count"), "10000",
            "Changes kept for watches to resume from (the newest); a watch from an older resourceVersion gets 410 Gone."
        ) { raw, configuration throws(SettingValueError) in
            configuration.watchHistoryEvents = try integer(raw, in: 1...10_000_000)
        },
        setting(
            "watch-history-minutes", "ENDPOINT_REGISTRY_WATCH_HISTORY_MINUTES", .value(placeholder: "minutes"), "60",
            "The most minutes a change is kept for watches to resume from (pruned in the background, with --watch-history-events)."
        ) { raw, configuration throws(SettingValueError) in
            configuration.watchHistoryMinutes = try integer(raw, in: 1...525_600)
        },
        setting(
            "database-max-connections", "ENDPOINT_REGISTRY_DATABASE_MAX_CONNECTIONS", .value(placeholder: "count"), "16",
            "PostgreSQL only: the most read connections a replica opens at once, besides its writer and the leader lease's 2 (so 19 per replica by default: size PostgreSQL's max_connections for every replica, plus one more during a rolling update). A request that finds them all in use waits up to 5 s for one, then gets 503 with Retry-After."
        ) { raw, configuration throws(SettingValueError) in
            configuration.databaseMaxConnections = try integer(raw, in: 1...1000)
        },
        setting(
            "database-wait-seconds", "ENDPOINT_REGISTRY_DATABASE_WAIT_SECONDS", .value(placeholder: "seconds"), "60",
            "PostgreSQL only: how long start-up waits for a database it cannot connect to (down, starting, unreachable), retrying after 1, 2, 4, 8 and then every 10 seconds, before it exits; 0 exits at once. A schema newer than the binary or a failed migration ends start-up at once."
        ) { raw, configuration throws(SettingValueError) in
            configuration.databaseWaitSeconds = try integer(raw, in: 0...3600)
        },
        setting(
            "leader-lease-seconds", "ENDPOINT_REGISTRY_LEADER_LEASE_SECONDS", .value(placeholder: "seconds"), "15",
            "How long the leader's lease lasts without a renewal; the leader renews every third of it, and another replica takes over within it when the leader is gone. Only one replica (the leader) runs the reconciler, health checks, DNS refresh and retention."
        ) { raw, configuration throws(SettingValueError) in
            configuration.leaderLeaseSeconds = try integer(raw, in: 2...300)
        },
        setting(
            "leader-identity", "ENDPOINT_REGISTRY_LEADER_IDENTITY", .value(placeholder: "name"), "$HOSTNAME-<random>",
            "Who this process is in the leader lease (GET /v1/leader); unique per process. The default, the host (pod) name and a random suffix, is new at every start."
        ) { raw, configuration throws(SettingValueError) in
            guard (1...253).contains(raw.utf8.count), raw.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw SettingValueError("\"\(raw)\" is not 1 to 253 visible ASCII characters")
            }
            configuration.leaderIdentity = raw
        },
    ]

    private static func setting(
        _ name: String, _ environment: String, _ kind: ServerSetting.Kind, _ defaultDescription: String, _ help: String,
        aliases: [String] = [], apply: @escaping @Sendable (String, inout ServerConfiguration) throws(SettingValueError) -> Void
    ) -> ServerSetting {
        ServerSetting(
            name: name, aliases: aliases, environment: environment, kind: kind, defaultDescription: defaultDescription, help: help, apply: apply)
    }

    /// Resolves `serve`'s command-line arguments and the environment into a configuration:
    /// defaults, then environment variables (empty ones are ignored), then flags.
    ///
    /// - Throws: `ConfigurationError` naming the flag and environment variable of the first
    ///   setting that cannot be used, an unknown flag, or a combination that is refused.
    public static func resolve(arguments: [String], environment: [String: String]) throws(ConfigurationError) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.leaderIdentity = ServerConfiguration.defaultLeaderIdentity(environment: environment)
        configuration.kubeconfigPaths = KubeConfigLoader.defaultPaths(environment: [:].merging(environment.filter { $0.key == "HOME" }) { $1 })
        for setting in table {
            guard let raw = environment[setting.environment], !raw.isEmpty else { continue }
            try apply(setting, raw, to: &configuration)
        }
        let parsed = try parse(arguments)
        for (setting, raw) in parsed {
            try apply(setting, raw, to: &configuration)
        }
        // Each watch holds a connection: without a limit of its own, watches get half of the
        // connection limit at most, so that they can never take every connection (requests and
        // the probes would then be refused).
        // Whether a setting was given (by its flag or a non-empty environment variable).
        func given(_ name: String) -> Bool {
            parsed.contains { $0.0.name == name } || table.contains { $0.name == name && !(environment[$0.environment] ?? "").isEmpty }
        }
        if !given("max-watchers") { configuration.watch.maxWatchers = min(configuration.watch.maxWatchers, configuration.http.connectionLimit / 2) }
        if !given("threads") {
            configuration.http.threads = ServerConfiguration.defaultThreads(
                cores: ProcessInfo.processInfo.activeProcessorCount, postgreSQL: configuration.postgresURL != nil)
        }
        try checkCombinations(configuration)
        return configuration
    }

    private static func apply(_ setting: ServerSetting, _ raw: String, to configuration: inout ServerConfiguration) throws(ConfigurationError) {
        do {
            try setting.apply(raw, &configuration)
        } catch {
            throw ConfigurationError(setting: setting.label, message: error.message)
        }
    }

    /// Splits `--name value`, `--name=value` and toggles into (setting, raw value) pairs.
    static func parse(_ arguments: [String]) throws(ConfigurationError) -> [(ServerSetting, String)] {
        var pairs: [(ServerSetting, String)] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ConfigurationError(
                    setting: "", message: "unexpected argument \"\(argument)\"; `serve` takes only options (see endpoint-registry serve --help)")
            }
            let body = argument.dropFirst(2)
            let name = body.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            let inline = body.contains("=") ? String(body.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[1]) : nil
            guard let setting = table.first(where: { $0.name == name || $0.aliases.contains(name) }) else {
                let suggestion = closest(to: name).map { "; did you mean --\($0)?" } ?? ""
                throw ConfigurationError(setting: "", message: "unknown option --\(name)\(suggestion) (see endpoint-registry serve --help)")
            }
            switch setting.kind {
            case .toggle:
                pairs.append((setting, inline ?? "true"))
            case .value(let placeholder):
                if let inline {
                    pairs.append((setting, inline))
                } else if index < arguments.count {
                    pairs.append((setting, arguments[index]))
                    index += 1
                } else {
                    throw ConfigurationError(setting: "--\(setting.name)", message: "needs a value (<\(placeholder)>)")
                }
            }
        }
        return pairs
    }

    /// The flag whose name is nearest to `name` (edit distance at most 3), for "did you mean".
    private static func closest(to name: String) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var previous = Array(0...b.count)
            for (i, x) in a.enumerated() {
                var current = [i + 1]
                for (j, y) in b.enumerated() {
                    current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
                }
                previous = current
            }
            return previous[b.count]
        }
        let candidates = table.flatMap { [$0.name] + $0.aliases }.map { ($0, distance(Array(name), Array($0))) }
        guard let best = candidates.min(by: { $0.1 < $1.1 }), best.1 <= 3 else { return nil }
        return table.first { $0.name == best.0 || $0.aliases.contains(best.0) }?.name
    }

    private static func checkCombinations(_ configuration: ServerConfiguration) throws(ConfigurationError) {
        if configuration.watch.maxWatchers > configuration.http.connectionLimit / 2 {
            throw ConfigurationError(
                setting: "--max-watchers / ENDPOINT_REGISTRY_MAX_WATCHERS",
                message:
                    "\(configuration.watch.maxWatchers) is more than half of --connection-limit (\(configuration.http.connectionLimit)): each watch holds a connection, and the other half is kept for requests and probes"
            )
        }
        if configuration.http.requestBodyBudgetBytes < configuration.http.maxBodyBytes {
            throw ConfigurationError(
                setting: "--request-body-budget-bytes / ENDPOINT_REGISTRY_REQUEST_BODY_BUDGET_BYTES",
                message: "\(configuration.http.requestBodyBudgetBytes) is smaller than --max-body-bytes (\(configuration.http.maxBodyBytes))")
        }
        if (configuration.http.tlsCertificatePEM == nil) != (configuration.http.tlsKeyPEM == nil) {
            throw ConfigurationError(setting: "--tls-cert / --tls-key", message: "give both the certificate and the key, or neither")
        }
        if configuration.tokensFile == nil && !configuration.bindsLoopbackOnly && !configuration.allowAnonymousOnAnyAddress {
            throw ConfigurationError(
                setting: "--host / ENDPOINT_REGISTRY_HOST",
                message:
                    "without --tokens-file anyone could change the registry, so the server only binds to loopback; give a tokens file, or --insecure-allow-anonymous to accept the risk"
            )
        }
    }

    /// The options part of `serve --help`, generated from the table.
    public static var helpText: String {
        var lines = ["OPTIONS (each also read from its environment variable; a flag wins):"]
        for setting in table {
            let flag: String
            switch setting.kind {
            case .toggle: flag = "--\(setting.name)"
            case .value(let placeholder): flag = "--\(setting.name) <\(placeholder)>"
            }
            lines.append("  \(flag)")
            lines.append("      \(setting.help) Default: \(setting.defaultDescription). [\(setting.environment)]")
            if !setting.aliases.isEmpty { lines.append("      Also spelled: \(setting.aliases.map { "--\($0)" }.joined(separator: ", ")).") }
        }
        return lines.joined(separator: "\n")
    }

    // MARK: - Value parsers

    static func integer(_ raw: String, in range: ClosedRange<Int>) throws(SettingValueError) -> Int {
        guard let value = Int(raw) else { throw SettingValueError("\"\(raw)\" is not an integer") }
        guard range.contains(value) else { throw SettingValueError("\(value) is outside \(range.lowerBound)…\(range.upperBound)") }
        return value
    }

    static func boolean(_ raw: String) throws(SettingValueError) -> Bool {
        switch raw.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw SettingValueError("\"\(raw)\" is not true or false")
        }
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ raw: String, _ type: T.Type) throws(SettingValueError) -> T where T.RawValue == String {
        guard let value = T(rawValue: raw.lowercased()) else {
            throw SettingValueError("\"\(raw)\" is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    /// A numeric address as libmicrohttpd binds it; `localhost` is taken as 127.0.0.1 (no
    /// name resolution: a listening address must not depend on DNS).
    static func numericHost(_ raw: String) throws(SettingValueError) -> String {
        if raw.lowercased() == "localhost" { return "127.0.0.1" }
        let unbracketed = raw.hasPrefix("[") && raw.hasSuffix("]") ? String(raw.dropFirst().dropLast()) : raw
        guard (try? IPAddress(parsing: unbracketed)) != nil || unbracketed == "0.0.0.0" || unbracketed == "::" else {
            throw SettingValueError("\"\(raw)\" is not a numeric IPv4 or IPv6 address; use e.g. 127.0.0.1, ::1, 0.0.0.0 (every IPv4 interface) or ::")
        }
        return unbracketed
    }

    /// The text of a file the server must read at start-up, with a sentence when it cannot.
    static func readableFile(_ path: String, what: String) throws(SettingValueError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SettingValueError("the \(what) file \(path) does not exist")
        }
        guard !isDirectory.boolValue else { throw SettingValueError("\(path) is a directory, not a \(what) file") }
        guard FileManager.default.isReadableFile(atPath: path), let data = FileManager.default.contents(atPath: path) else {
            throw SettingValueError("the \(what) file \(path) cannot be read (check its permissions)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw SettingValueError("the \(what) file \(path) is not PEM text") }
        return text
    }
}
