public import Coordination
import Foundation
import PostgresStorage
public import HTTPServer
public import Logging
import RegistryCore
public import RegistryStorage

/// Everything `endpoint-registry serve` can be told, as plain values. It is filled from
/// `ServerSettings.table` (defaults, then `ENDPOINT_REGISTRY_*` environment variables, then
/// command-line flags) by `ServerSettings.resolve(arguments:environment:)`; tests build one
/// directly.
public struct ServerConfiguration: Sendable {
    public var http = HTTPServerConfiguration()
    /// The SQLite file (when `postgresURL` is nil).
    public var databasePath = "./data/registry.sqlite"
    /// The PostgreSQL database several replicas share (`--database postgres://…`), as given;
    /// nil for SQLite.
    public var postgresURL: String?
    /// A file holding only the PostgreSQL password (e.g. a mounted Secret), read again for
    /// every new connection.
    public var databasePasswordFile: String?
    /// SQLite only: PostgreSQL's durability is the server's (`synchronous_commit`).
    public var durability: Durability = .full
    /// Whether start-up runs `PRAGMA quick_check` on the database (`--skip-db-check` turns it off).
    public var checkDatabaseAtStart = true
    public var logLevel: Logger.Level = .info
    public var logFormat: LogFormat = .text
    /// Audit lines older than this many days are deleted in the background.
    public var auditRetentionDays = 90
    /// Revisions kept in each service's history (older ones are deleted in the background).
    public var historyLimit = 100
    /// How long shutdown waits for in-flight requests.
    public var shutdownGraceSeconds = 10
    /// Bearer tokens; nil means anonymous access, allowed on loopback only unless
    /// `allowAnonymousOnAnyAddress`.
    public var tokensFile: String?
    public var allowAnonymousOnAnyAddress = false
    public var openness = RegistryApplication.Openness()
    /// Kubeconfig files to read clusters from (kubectl's merge rules).
    public var kubeconfigPaths: [String] = []
    /// True when the paths were given explicitly (`--kubeconfig` or `KUBECONFIG`): a missing file
    /// is then an error at start-up, as with kubectl; the default `~/.kube/config` may be absent.
    public var kubeconfigExplicit = false
    /// Whether to add the pod's own cluster (`in-cluster`) when running in Kubernetes.
    public var inCluster = true
    /// `clusters` of a service created (or replaced, or imported new) without the field.
    public var defaultClusters: [String] = []
    /// Seconds between full resyncs, which compare every bound service's live objects with its
    /// rendering and repair differences.
    public var resyncIntervalSeconds = 300
    /// Most services reconciled at once in one cluster (the total is bounded too).
    public var clusterConcurrency = 4
    /// Most health-check probes in flight at once (each holds a socket while it waits, no thread).
    public var healthCheckConcurrency = 4096
    /// Bounds of the watch: watchers, per-watcher buffer, bookmark interval, longest watch.
    public var watch = RegistryApplication.WatchLimits()
    /// Watch events kept for resuming (the newest), and the most minutes one is kept.
    public var watchHistoryEvents = 10_000
    public var watchHistoryMinutes = 60
    /// PostgreSQL only: the most read connections this replica opens at once
    /// (`--database-max-connections`), besides its writer and the leader lease's two.
    public var databaseMaxConnections = PostgresDatabase.defaultReadConnectionLimit
    /// PostgreSQL only: how long start-up waits for a database it cannot connect to, in
    /// seconds (`--database-wait-seconds`; 0: not at all), retrying with back-off.
    public var databaseWaitSeconds = 60
    /// How long a leader's term lasts without a renewal, in seconds (`--leader-lease-seconds`);
    /// the leader renews every third of it (issue 16).
    public var leaderLeaseSeconds = 15
    /// Who this process is in the leader lease (`--leader-identity`): `$HOSTNAME` (the pod's
    /// name) and a random suffix, unique per process.
    public var leaderIdentity = ServerConfiguration.defaultLeaderIdentity(environment: ProcessInfo.processInfo.environment)
    /// Makes the leader lease for (identity, TTL); nil: the store is an SQLite file that this
    /// process alone opens, and it leads at once (`LocalLease`). A store shared by several
    /// replicas gives its own (`PostgresLeaderLease(pool:holder:ttl:)`).
    public var leaderLease: (@Sendable (_ identity: String, _ ttl: Duration) -> any LeaderLease)?

    /// The lease TTL as a duration.
    public var leaderLeaseDuration: Duration { .seconds(leaderLeaseSeconds) }

    /// `$HOSTNAME` (or the machine's name), `-`, and 8 random characters [a-z0-9].
    public static func defaultLeaderIdentity(environment: [String: String]) -> String {
        let host = environment["HOSTNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? ProcessInfo.processInfo.hostName
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return host + "-" + String((0..<8).map { _ in alphabet.randomElement()! })
    }

    /// True for 127.0.0.0/8 and ::1.
    public var bindsLoopbackOnly: Bool {
        guard let address = try? IPAddress(parsing: http.host) else { return false }
        return address.family == .ipv4 ? address.bytes[0] == 127 : address.bytes == Array(repeating: 0, count: 15) + [1]
    }

    public init() {
        http.threads = Self.defaultThreads(cores: ProcessInfo.processInfo.activeProcessorCount, postgreSQL: false)
    }

    /// The worker threads when `--threads` is not given. On SQLite one per core, at least 2:
    /// a worker never waits on I/O there (reads are in-process, writes are answered after the
    /// group commit without holding a worker), so more workers than cores only add context
    /// switches and preempt each other mid-request (measured on 2 cores: 4 workers had a GET p99
    /// of 7–8 ms at 64 connections, 2 workers 4.5–5.4 ms at the same or a higher rate; see
    /// BENCHMARKS.md). On PostgreSQL a read holds its worker for a round trip to the database,
    /// so twice the cores, at least 4.
    public static func defaultThreads(cores: Int, postgreSQL: Bool) -> Int {
        postgreSQL ? max(4, cores * 2) : max(2, cores)
    }
}

/// A setting that could not be used: which one (flag and environment variable) and why, as a
/// sentence a person can act on.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var setting: String
    public var message: String

    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    public var description: String { setting.isEmpty ? message : "\(setting): \(message)" }
}
