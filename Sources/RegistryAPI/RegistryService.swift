public import Coordination
import Foundation
public import HTTPServer
import KubernetesClient
import PostgresStorage
public import Liveness
public import Logging
import Reconciler
import RegistryResources
public import RegistryStorage

/// A running registry: the opened store and the listening HTTP server. This is the composition
/// root used by `endpoint-registry serve` and by the end-to-end tests alike.
public final class RegistryService: Sendable {
    public let store: ServiceStore
    public let server: HTTPServer
    public let application: RegistryApplication
    private let authenticator: TokenAuthenticator?
    private let logger: Logger
    private let configuration: ServerConfiguration
    private let retention: Retention
    /// The clusters the handlers push to, replaced by `reloadKubeconfig()`.
    public let clusters: Clusters
    /// Campaigns for the leader lease and starts and stops the background work with it.
    public var elector: LeaderElector { application.elector }

    /// Opens the database (creating its directory), migrates it, and starts listening.
    ///
    /// - Throws: `StartupError`, a sentence naming what could not be used and why.
    /// `resolver`: resolves the `host` of addresses given by DNS name (c-ares; tests give a fake).
    /// `prober`: probes the addresses of services with a `healthCheck` (sockets; tests give a fake).
    public init(
        configuration: ServerConfiguration, logger: Logger, resolver: any Resolver = CAresResolver(), prober: any Prober = SocketProber()
    ) throws(StartupError) {
        self.configuration = configuration
        self.logger = logger
        let (store, postgres) = try RegistryService.openStore(configuration, logger: logger)
        self.store = store
        if let fault = store.readiness() {
            logger.error("the database cannot be used for writes: \(fault.summary); writes answer 503 and /readyz is false until it is fixed")
        }
        if let tokensFile = configuration.tokensFile {
            do {
                authenticator = try TokenAuthenticator(path: tokensFile)
            } catch {
                throw .tokens(error.description)
            }
            logger.notice("bearer tokens required", metadata: ["tokensFile": "\(tokensFile)", "tokens": "\(authenticator!.count)"])
        } else {
            authenticator = nil
            logger.warning(
                "no --tokens-file: every caller is anonymous with full rights\(configuration.bindsLoopbackOnly ? "; listening on loopback only" : " (--insecure-allow-anonymous)")"
            )
        }
        let targets: [ClusterTarget]
        do {
            targets = try RegistryService.readClusters(configuration)
        } catch {
            throw .kubeconfig(error.description)
        }
        for target in targets { RegistryService.warnAbout(target, logger: logger) }
        let known = Set(targets.map(\.name))
        for name in configuration.defaultClusters where !known.contains(name) {
            throw .configuration(
                ConfigurationError(
                    setting: "--default-clusters / ENDPOINT_REGISTRY_DEFAULT_CLUSTERS",
                    message: "no cluster named \"\(name)\" (known: \(known.isEmpty ? "none" : known.sorted().joined(separator: ", ")))"))
        }
        var reconcilerConfiguration = Reconciler.Configuration()
        reconcilerConfiguration.resyncInterval = .seconds(configuration.resyncIntervalSeconds)
        reconcilerConfiguration.clusterConcurrency = configuration.clusterConcurrency
        var livenessConfiguration = HealthChecker.Configuration()
        livenessConfiguration.maxInFlight = configuration.healthCheckConcurrency
        clusters = Clusters(targets: targets)
        let lease = RegistryService.leaderLease(configuration, postgres: postgres)
        let elector = LeaderElector(lease: lease, logger: logger)
        // Until this replica leads, no write of the background work may go through (see `leadership`).
        if store.database.isShared { store.setFence(.notLeader("this replica has not won the leader election")) }
        application = RegistryApplication(
            store: store, logger: logger, authenticator: authenticator, openness: configuration.openness, clusters: clusters,
            defaultClusters: configuration.defaultClusters, reconcilerConfiguration: reconcilerConfiguration,
            livenessConfiguration: livenessConfiguration, prober: prober, resolver: resolver, watchLimits: configuration.watch,
            logFormat: configuration.logFormat, elector: elector)
        var policy = Retention.Policy(auditRetentionDays: configuration.auditRetentionDays, historyLimit: configuration.historyLimit)
        policy.watchHistoryEvents = configuration.watchHistoryEvents
        policy.watchHistoryMinutes = configuration.watchHistoryMinutes
        retention = Retention(store: store, policy: policy, aggregator: application.refusals, logger: logger)
        retention.start()
        // Pushes, diffs and probes asked through the API are served on every replica.
        application.reconciler.startWorkers()
        elector.setCallbacks(
            RegistryService.leadership(
                application: application, store: store, retention: retention, logger: logger, grace: .seconds(configuration.shutdownGraceSeconds),
                resolutionBudget: min(RegistryApplication.startupResolutionBudget, configuration.leaderLeaseDuration / 3)))
        // One try before serving: a process that can lead at once (always so on SQLite, which
        // this process alone opens) has started its background work before the first request.
        elector.start(waitingForFirstAttempt: true)
        // A replica that does not lead shows the leader's health verdicts (a no-op on SQLite,
        // and once this replica leads).
        application.followLeader()
        do {
            server = try HTTPServer(configuration: configuration.http, handler: application)
        } catch {
            application.stopFollowingLeader()
            elector.stop()
            elector.setCallbacks(nil)
            _ = application.liveness.shutdown(deadline: .seconds(1))
            _ = application.dns.shutdown(deadline: .seconds(1))
            _ = application.reconciler.shutdown(deadline: .seconds(1))
            application.stopWatches()
            retention.stop()
            throw .listen(error.description)
        }
        let host = configuration.http.host.contains(":") ? "[\(configuration.http.host)]" : configuration.http.host
        logger.notice(
            "listening on \(configuration.http.tlsCertificatePEM == nil ? "http" : "https")://\(host):\(server.port)",
            metadata: [
                "port": "\(server.port)", "database": "\(store.path)", "durability": "\(configuration.durability.rawValue)",
                "threads": "\(configuration.http.threads)", "leaderIdentity": "\(elector.identity)", "leading": "\(elector.isLeading)",
            ])
    }

    /// The store `configuration` names: the SQLite file (held exclusively by this process), or
    /// the PostgreSQL database shared with other replicas (whose changes are then followed), with
    /// its connection settings (for the leader lease).
    static func openStore(_ configuration: ServerConfiguration, logger: Logger) throws(StartupError) -> (ServiceStore, PostgresConnectionSettings?) {
        guard let url = configuration.postgresURL else {
            try StartupError.createDirectory(for: configuration.databasePath)
            do {
                return (
                    try ServiceStore(
                        path: configuration.databasePath, durability: configuration.durability,
                        migrations: try Migration.parse(RegistryResources.migrations),
                        quickCheckTimeout: configuration.checkDatabaseAtStart ? .seconds(30) : nil, exclusive: true), nil
                )
            } catch {
                throw .database(path: configuration.databasePath, error)
            }
        }
        let settings: PostgresConnectionSettings
        do {
            settings = try PostgresConnectionSettings(url: url, passwordFile: configuration.databasePasswordFile)
        } catch {
            throw .configuration(ConfigurationError(setting: "--database / ENDPOINT_REGISTRY_DATABASE", message: error.description))
        }
        let migrations: [Migration]
        do {
            migrations = try Migration.parse(RegistryResources.postgreSQLMigrations)
        } catch {
            throw .database(path: settings.description, error)
        }
        // A database that cannot be reached yet (a cluster starting up together, a failover)
        // is waited for, within `--database-wait-seconds`.
        let deadline = ContinuousClock.now.advanced(by: .seconds(configuration.databaseWaitSeconds))
        var pause: Duration = .seconds(1)
        while true {
            do {
                let store = try ServiceStore(
                    database: try PostgresDatabase.open(
                        settings: settings, migrations: migrations, maximumReadConnections: configuration.databaseMaxConnections))
                store.followSharedChanges()
                return (store, settings)
            } catch .fault(let fault) where fault.reason == .unavailable && ContinuousClock.now.advanced(by: pause) < deadline {
                logger.warning(
                    "no usable connection to the database; trying again",
                    metadata: ["database": "\(settings)", "error": "\(fault.message)", "retryInSeconds": "\(pause.components.seconds)"])
                Thread.sleep(forTimeInterval: Double(pause.components.seconds))
                pause = min(pause * 2, .seconds(10))
            } catch {
                throw .database(path: settings.description, error)
            }
        }
    }

    /// The leader lease of the configured store: `configuration.leaderLease` when given (tests),
    /// else on PostgreSQL the lease row of the shared database (`PostgresLeaderLease`, on a pool
    /// of its own so that renewals never wait behind requests), else the `LocalLease` of an
    /// SQLite file this process alone opens.
    static func leaderLease(_ configuration: ServerConfiguration, postgres: PostgresConnectionSettings?) -> any LeaderLease {
        if let lease = configuration.leaderLease?(configuration.leaderIdentity, configuration.leaderLeaseDuration) { return lease }
        if let postgres {
            return PostgresLeaderLease(
                pool: PostgresConnectionPool(settings: postgres, maximumConnections: 2), holder: configuration.leaderIdentity,
                ttl: configuration.leaderLeaseDuration)
        }
        return LocalLease(holder: configuration.leaderIdentity, ttl: configuration.leaderLeaseDuration)
    }

    /// What leading means (issue 16): on `onStartedLeading` the background work starts —
    /// retention's pruning, the health checks and the DNS refresh (after resolving the known
    /// names for at most `resolutionBudget`, so that the reconciler's first pass has them), then
    /// the reconciler's background work; on `onStoppedLeading` it stops in the opposite order,
    /// each part waiting at most `grace` for its work in flight. Every part can be started again
    /// after it stopped: a replica that loses the lease goes on serving the API as a follower and
    /// campaigns again (rather than exiting, as client-go-based controllers do).
    /// On a shared database the store's fence follows the term (`WriteFence`): the background
    /// work's writes go through only while this replica's term is current.
    static func leadership(
        application: RegistryApplication, store: ServiceStore, retention: Retention, logger: Logger, grace: Duration,
        resolutionBudget: Duration
    ) -> LeaderElector.Callbacks {
        let observer = application.leadershipObserver
        return LeaderElector.Callbacks(
            onStartedLeading: { term in
                observer.leadershipChanged(leading: true)
                logger.notice("leading: starting the background work", metadata: ["generation": "\(term.generation)"])
                if store.database.isShared { store.setFence(PostgresDatabase.fence(term: term)) }
                retention.startPruning()
                // A database that cannot be read now answers 503 on every route; the health
                // checks load the registered services once it can (see `startLiveness`).
                application.startLiveness(resolutionBudget: resolutionBudget)
                // After the first resolution of the `host` names (see `startLiveness`).
                application.reconciler.startBackgroundWork()
            },
            onStoppedLeading: {
                observer.leadershipChanged(leading: false)
                logger.notice("not leading: stopping the background work")
                if !application.reconciler.stopBackgroundWork(deadline: grace) {
                    logger.warning("some cluster applies were still running when the background work stopped")
                }
                if !application.stopLiveness(deadline: grace) {
                    logger.warning("a health-check probe or DNS resolution was still running when the background work stopped")
                }
                retention.stopPruning()
                if store.database.isShared { store.setFence(.notLeader("this replica lost the leader lease")) }
                application.followLeader()
            },
            onNewLeader: { holder in
                if holder != application.elector.identity { logger.notice("following the leader", metadata: ["leader": "\(holder)"]) }
            })
    }

    /// The clusters of the kubeconfig files (and, when enabled, the pod's own cluster). An
    /// explicit `--kubeconfig` / `KUBECONFIG` entry that does not exist is an error, as in kubectl.
    static func readClusters(_ configuration: ServerConfiguration) throws(KubeConfigError) -> [ClusterTarget] {
        if configuration.kubeconfigExplicit {
            for path in configuration.kubeconfigPaths where !path.isEmpty && !FileManager.default.fileExists(atPath: path) {
                throw KubeConfigError(
                    message:
                        "--kubeconfig / KUBECONFIG names \(path), which does not exist (kubectl refuses it too); fix the path or leave the setting out"
                )
            }
        }
        var targets = try KubeConfigLoader.load(paths: configuration.kubeconfigPaths)
        if configuration.inCluster, let inCluster = KubeConfigLoader.inCluster(environment: ProcessInfo.processInfo.environment) {
            targets.append(inCluster)
        }
        return targets
    }

    static func warnAbout(_ target: ClusterTarget, logger: Logger) {
        if let reason = target.unusableReason {
            logger.warning("cluster \(target.name) is not usable: \(reason)")
        } else if target.tls.insecureSkipVerify {
            logger.warning("cluster \(target.name): insecure-skip-tls-verify is set, the API server's certificate is NOT verified")
        }
    }

    /// What SIGHUP does: re-reads the tokens file and the kubeconfig files.
    public func reload() {
        reloadTokens()
        reloadKubeconfig()
    }

    /// Re-reads the kubeconfig files and swaps the cluster set, logging each added, changed and
    /// removed cluster; on error the previous clusters stay in force and the log says why.
    public func reloadKubeconfig() {
        let targets: [ClusterTarget]
        do {
            targets = try RegistryService.readClusters(configuration)
        } catch {
            logger.error("kubeconfig not reloaded, the previous \(clusters.targets.count) clusters stay in force: \(error.description)")
            return
        }
        let change = clusters.replace(with: targets)
        application.reconciler.replaceClients(application.clusterClients(clusters))
        for name in change.added { logger.notice("cluster \(name) added") }
        for name in change.changed { logger.notice("cluster \(name) changed") }
        for name in change.removed { logger.notice("cluster \(name) removed; work for it stops") }
        for target in targets where change.added.contains(target.name) || change.changed.contains(target.name) {
            RegistryService.warnAbout(target, logger: logger)
        }
        logger.notice(
            "kubeconfig reloaded",
            metadata: [
                "clusters": "\(targets.count)", "added": "\(change.added.count)", "changed": "\(change.changed.count)",
                "removed": "\(change.removed.count)",
            ])
    }

    /// Re-reads the tokens file (on SIGHUP) and ends the watches of tokens whose access changed;
    /// on error the previous tokens stay in force, the error is logged and
    /// `endpoint_registry_tokens_reload_success` drops to 0.
    public func reloadTokens() {
        guard let authenticator else { return }
        do {
            let count = try authenticator.reload()
            application.recordTokensReload(success: true)
            let ended = application.revalidateWatches()
            logger.notice("tokens reloaded", metadata: ["tokens": "\(count)", "watchesEnded": "\(ended)"])
        } catch {
            application.recordTokensReload(success: false)
            logger.error("tokens not reloaded, the previous ones stay in force: \(error)")
        }
    }

    /// Stops taking work, lets in-flight applies and requests finish (within the grace period),
    /// then checkpoints the database.
    public func shutdown() {
        logger.notice("shutting down", metadata: ["inFlight": "\(server.requestsInFlight)", "watches": "\(application.openWatches)"])
        // Watches end first (cleanly, after what they have buffered): they are requests in
        // flight that would otherwise hold the grace period.
        application.stopWatches()
        application.stopFollowingLeader()
        // Ends the background work (if leading) and then releases the lease, so that another
        // replica takes over at once.
        elector.stop()
        // The callbacks hold the application, which holds the elector.
        elector.setCallbacks(nil)
        if !application.liveness.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds)) {
            logger.warning("some health-check probes were still running at the shutdown deadline")
        }
        if !application.dns.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds)) {
            logger.warning("a DNS resolution was still running at the shutdown deadline")
        }
        if !application.reconciler.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds)) {
            logger.warning("some cluster applies were still running at the shutdown deadline")
        }
        server.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds))
        retention.stop()
        // Writes still queued (their requests answered 503 at the deadline) end before the
        // checkpoint and before the lock is given up.
        store.waitForQueuedWrites()
        do {
            try store.checkpoint()
        } catch {
            logger.error("checkpoint at shutdown failed", metadata: ["error": "\(error)"])
        }
        store.releaseExclusiveLock()
        store.closeIdleConnections()
        logger.notice("stopped")
    }
}
