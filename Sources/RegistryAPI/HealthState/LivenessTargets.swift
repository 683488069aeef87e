import Dispatch
import Foundation
import Liveness
import Logging
import RegistryCore
import RegistryStorage
import Synchronization

/// The one place where the health checker's probe targets and the DNS refresher's names are set
/// from registrations: after each commit (`follow`), for every registration at start-up or when
/// leading starts (`followAll`), and after a `host` name resolved differently (a DNS change
/// here, or the leader's answers restored from the store on a follower: `resolutionChanged`).
///
/// Each of them reads what it applies (the registration, the current DNS answers) and hands it
/// to the checker under one lock, so that none applies an older view after a newer one. Without
/// it a commit's update, which puts the answers known when it *began* in place of the names,
/// could land after the update of a DNS change that came meanwhile and take the new IPs away
/// again; as further answers are the same, no later change would bring them back, and the
/// resolved addresses would stay unprobed (`unknown`) for as long as the name resolves alike.
/// Likewise a DNS change's read of the registration, or a start-up page, taken before a commit
/// could otherwise be applied after that commit's update. The lock is never held while waiting
/// for anything but these reads (the subscribers the checker calls only enqueue work or read
/// the store).
///
/// A read after a DNS change that fails (the database does not answer) is logged and tried
/// again after a backoff (`RetryTimer`: 1 s doubling up to 30 s) until it succeeds, since the
/// answers may not change again for a long time: without it the checker would keep probing the
/// old addresses and a follower would show no verdict for the new ones. Each try reads the
/// registration and the answers as they are then.
final class LivenessTargets: Sendable {
    /// Reads a service's registration (nil: deleted).
    typealias Read = @Sendable (ServiceKey) throws -> ExternalService?

    private let read: Read
    private let liveness: HealthChecker
    private let dns: DNSRefresher
    private let logger: Logger
    /// Held while a view is read and applied (see the type's description).
    private let applying = NSLock()
    /// The services whose last try after a DNS change failed.
    private let failed = Mutex<Set<ServiceKey>>([])
    private let retries: RetryTimer

    /// `read`: how a registration is read after a DNS change (default: `store.record`; tests
    /// give a failing one). `firstRetryDelay`, `maxRetryDelay`: the backoff after a failed read.
    init(
        store: ServiceStore, liveness: HealthChecker, dns: DNSRefresher, logger: Logger, read: Read? = nil,
        firstRetryDelay: Duration = .seconds(1), maxRetryDelay: Duration = .seconds(30)
    ) {
        self.read = read ?? { try store.record(namespace: $0.namespace, name: $0.name)?.service }
        self.liveness = liveness
        self.dns = dns
        self.logger = logger
        retries = RetryTimer(queue: DispatchQueue(label: "liveness-targets"), first: firstRetryDelay, maximum: maxRetryDelay)
    }

    /// A committed registration (nil: deleted), as the store's commit observer hands it.
    func follow(_ service: ExternalService?, namespace: String, name: String) {
        applying.withLock { apply(service, namespace: namespace, name: name) }
    }

    /// Follows every registration `readPage` returns (one page of a full load), read and applied
    /// with no other update in between. Errors of `readPage` are passed on; nothing is applied then.
    func followAll<Failure: Error>(_ readPage: () throws(Failure) -> [ExternalService]) throws(Failure) {
        applying.lock()
        defer { applying.unlock() }
        for service in try readPage() { apply(service, namespace: service.namespace, name: service.name) }
    }

    /// The DNS refresher's change notification for one service (on the caller's thread: the
    /// checker has the new targets when this returns, unless the read failed).
    func resolutionChanged(namespace: String, name: String) {
        sync([ServiceKey(namespace: namespace, name: name)])
    }

    /// No retry from now on (shutdown).
    func stop() {
        retries.stop()
    }

    /// Brings the DNS refresher and the health checker in line with one registration (lock held).
    private func apply(_ service: ExternalService?, namespace: String, name: String) {
        dns.update(
            namespace: namespace, name: name, hosts: service?.hosts ?? [],
            settings: service.map(DNSRefresher.Settings.init)
                ?? DNSRefresher.Settings(refreshSeconds: DNSSettings.defaultRefreshSeconds, graceSeconds: DNSSettings.defaultGraceSeconds))
        // Without a health check there is nothing to probe: the checker forgets the service
        // alike for nil, and the (possibly large) service is not resolved for nothing.
        liveness.update(namespace: namespace, name: name, service: service?.healthCheck == nil ? nil : service.map(dns.resolved))
    }

    private func sync(_ keys: Set<ServiceKey>) {
        var failures: Set<ServiceKey> = []
        for key in keys {
            do {
                try applying.withLock {
                    let service = try read(key)
                    liveness.update(namespace: key.namespace, name: key.name, service: service.map(dns.resolved))
                }
            } catch {
                logger.error(
                    "health checks not updated after a DNS change; retrying",
                    metadata: ["service": "\(key.namespace)/\(key.name)", "error": "\(error)"])
                failures.insert(key)
            }
        }
        // Only added here (`retry` takes the set): a key a concurrent failure put back stays.
        if !failures.isEmpty { failed.withLock { $0.formUnion(failures) } }
        if failures.isEmpty {
            retries.succeeded()
        } else {
            retries.failed { [weak self] in self?.retry() }
        }
    }

    private func retry() {
        let keys = failed.withLock { failed in
            defer { failed.removeAll() }
            return failed
        }
        if !keys.isEmpty { sync(keys) }
    }
}
