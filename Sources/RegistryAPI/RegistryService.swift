import Foundation
public import HTTPServer
import KubernetesClient
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

    /// Opens the database (creating its directory), migrates it, and starts listening.
    ///
    /// - Throws: `StartupError`, a sentence naming what could not be used and why.
    public init(configuration: ServerConfiguration, logger: Logger) throws(StartupError) {
        self.configuration = configuration
        self.logger = logger
        try StartupError.createDirectory(for: configuration.databasePath)
        do {
            store = try ServiceStore(
                path: configuration.databasePath, durability: configuration.durability,
                migrations: try Migration.parse(RegistryResources.migrations),
                quickCheckTimeout: configuration.checkDatabaseAtStart ? .seconds(30) : nil)
        } catch {
            throw .database(path: configuration.databasePath, error)
        }
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
                "no --tokens-file: every caller is anonymous with full rights\(configuration.bindsLoopbackOnly ? "; listening on loopback only" : " (--insecure-allow-anonymous)")")
        }
        if configuration.kubeconfigExplicit {
            for path in configuration.kubeconfigPaths where !path.isEmpty && !FileManager.default.fileExists(atPath: path) {
                throw .kubeconfig("--kubeconfig / KUBECONFIG names \(path), which does not exist (kubectl refuses it too); fix the path or leave the setting out")
            }
        }
        var targets: [ClusterTarget]
        do {
            targets = try KubeConfigLoader.load(paths: configuration.kubeconfigPaths)
        } catch {
            throw .kubeconfig(error.description)
        }
        if configuration.inCluster, let inCluster = KubeConfigLoader.inCluster(environment: ProcessInfo.processInfo.environment) {
            targets.append(inCluster)
        }
        for target in targets {
            if let reason = target.unusableReason {
                logger.warning("cluster \(target.name) is not usable: \(reason)")
            } else if target.tls.insecureSkipVerify {
                logger.warning("cluster \(target.name): insecure-skip-tls-verify is set, the API server's certificate is NOT verified")
            }
        }
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
        application = RegistryApplication(
            store: store, logger: logger, authenticator: authenticator, openness: configuration.openness, clusters: Clusters(targets: targets),
            defaultClusters: configuration.defaultClusters, reconcilerConfiguration: reconcilerConfiguration)
        retention = Retention(
            store: store, policy: Retention.Policy(auditRetentionDays: configuration.auditRetentionDays, historyLimit: configuration.historyLimit),
            aggregator: application.refusals, logger: logger)
        retention.start()
        application.reconciler.start()
        do {
            server = try HTTPServer(configuration: configuration.http, handler: application)
        } catch {
            _ = application.reconciler.shutdown(deadline: .seconds(1))
            retention.stop()
            throw .listen(error.description)
        }
        let host = configuration.http.host.contains(":") ? "[\(configuration.http.host)]" : configuration.http.host
        logger.notice(
            "listening on \(configuration.http.tlsCertificatePEM == nil ? "http" : "https")://\(host):\(server.port)",
            metadata: [
                "port": "\(server.port)", "database": "\(configuration.databasePath)", "durability": "\(configuration.durability.rawValue)",
                "threads": "\(configuration.http.threads)",
            ])
    }

    /// Re-reads the tokens file (on SIGHUP); on error the previous tokens stay in force, the error
    /// is logged and `endpoint_registry_tokens_reload_success` drops to 0.
    public func reloadTokens() {
        guard let authenticator else { return }
        do {
            let count = try authenticator.reload()
            application.recordTokensReload(success: true)
            logger.notice("tokens reloaded", metadata: ["tokens": "\(count)"])
        } catch {
            application.recordTokensReload(success: false)
            logger.error("tokens not reloaded, the previous ones stay in force: \(error)")
        }
    }

    /// Stops taking work, lets in-flight applies and requests finish (within the grace period),
    /// then checkpoints the database.
    public func shutdown() {
        logger.notice("shutting down", metadata: ["inFlight": "\(server.requestsInFlight)"])
        if !application.reconciler.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds)) {
            logger.warning("some cluster applies were still running at the shutdown deadline")
        }
        server.shutdown(deadline: .seconds(configuration.shutdownGraceSeconds))
        retention.stop()
        do {
            try store.checkpoint()
        } catch {
            logger.error("checkpoint at shutdown failed", metadata: ["error": "\(error)"])
        }
        logger.notice("stopped")
    }
}
