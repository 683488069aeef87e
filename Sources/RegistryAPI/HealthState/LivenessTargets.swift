import Dispatch
import Foundation
import Liveness
import Logging
import RegistryCore
import RegistryStorage
import Synchronization

/// The one place where the health checker's probe targets and the DNS refresher's names are set
/// from registrations: after each commit (`follow`), page by page when the registrations are
/// loaded (`followAll`: at start-up, when leading or following starts, and in late retries), and
/// after a `host` name resolved differently (a DNS change here, or the leader's answers restored
/// from the store on a follower: `resolutionChanged`).
///
/// **No older view after a newer one.** Each update puts the registration in place with the DNS
/// answers known when it is applied, one at a time (under one lock), and the revision applied
/// last is kept per service (its `uid` and `revision`), so that:
/// - a commit's record older than the one applied (observers of two commits may run out of
///   order: a synchronous write's observers run after its fsync, and an observer's own write
///   runs the observers of the writes it commits first) is skipped;
/// - a record whose order cannot be told from it (another `uid`: deleted and created again; a
///   deletion, which carries no `uid`; a service not followed yet that has a health check or
///   `host` names) is checked against what the store holds now, read under the lock; if the
///   store cannot be read, the record is applied as it came (the most likely order);
/// - a DNS change reads the registration first (without the lock) and applies it only if it is
///   still the one applied: otherwise a commit's update, applied or on its way, carries the new
///   answers;
/// - a page of a load is read and applied under the lock, so that no commit lands in between.
/// Without this, a commit's update (with the answers known when it began) could land after a DNS
/// change's and take the resolved IPs out of the checker for as long as the name resolves alike.
///
/// Services followed: one entry (`uid`, `revision`) per registered service with a health check
/// or `host` names, removed when it has neither or is deleted.
///
/// A DNS change whose read fails (the database does not answer) is logged and tried again after
/// a backoff (`RetryTimer`: 1 s doubling up to 30 s) until it succeeds, since the answers may not
/// change again for a long time: without it the checker would keep probing the old addresses
/// and a follower would show no verdict for the new ones.
final class LivenessTargets: Sendable {
    /// Reads a service's registration (nil: deleted).
    typealias Read = @Sendable (ServiceKey) throws -> ServiceRecord?

    /// The registration applied last for a service.
    private struct Applied: Equatable {
        var uid: String
        var revision: Int

        init(_ record: ServiceRecord) {
            (uid, revision) = (record.uid, record.revision)
        }
    }

    private let read: Read
    private let liveness: HealthChecker
    private let dns: DNSRefresher
    private let logger: Logger
    /// Held while a view is read and applied (see the type's description).
    private let applying = NSLock()
    /// The revision applied last per followed service (only used with `applying` held).
    private let applied = Mutex<[ServiceKey: Applied]>([:])
    /// The services whose last try after a DNS change failed.
    private let failed = Mutex<Set<ServiceKey>>([])
    private let retries: RetryTimer

    /// `read`: how a registration is read (default: `store.record`; tests give their own).
    /// `firstRetryDelay`, `maxRetryDelay`: the backoff after a failed read after a DNS change.
    init(
        store: ServiceStore, liveness: HealthChecker, dns: DNSRefresher, logger: Logger, read: Read? = nil,
        firstRetryDelay: Duration = .seconds(1), maxRetryDelay: Duration = .seconds(30)
    ) {
        self.read = read ?? { try store.record(namespace: $0.namespace, name: $0.name) }
        self.liveness = liveness
        self.dns = dns
        self.logger = logger
        retries = RetryTimer(queue: DispatchQueue(label: "liveness-targets"), first: firstRetryDelay, maximum: maxRetryDelay)
    }

    /// Services followed now (for tests): those with a health check or `host` names.
    var followedCount: Int { applying.withLock { applied.withLock { $0.count } } }

    /// A committed registration (nil: deleted), as the store's commit observer hands it.
    func follow(_ record: ServiceRecord?, key: ServiceKey) {
        applying.withLock {
            let last = applied.withLock { $0[key] }
            if let record, let last, record.uid == last.uid {
                if record.revision >= last.revision { apply(record, key: key) }
                return
            }
            // Neither followed nor to follow: the checker and the refresher know nothing of it,
            // so the common commit of a service without health check or names updates neither.
            if last == nil && !(record.map { Self.isFollowed($0.service, hosts: $0.service.hosts) } ?? false) { return }
            // Which came last cannot be told from the record: the store says.
            applyStored(key, orElse: record)
        }
    }

    /// Applies what the store holds for `key` now, or `record` (logged) when the store cannot be
    /// read (`applying` held).
    private func applyStored(_ key: ServiceKey, orElse record: ServiceRecord?) {
        do {
            apply(try read(key), key: key)
        } catch {
            logger.warning(
                "health checks and DNS follow a commit as it came: the registration could not be read to order it",
                metadata: ["service": "\(key.namespace)/\(key.name)", "error": "\(error)"])
            apply(record, key: key)
        }
    }

    /// Follows every registration `readPage` returns (one page of a load), read and applied with
    /// no other update in between. Errors of `readPage` are passed on; nothing is applied then.
    func followAll<Failure: Error>(_ readPage: () throws(Failure) -> [ServiceRecord]) throws(Failure) {
        applying.lock()
        defer { applying.unlock() }
        for record in try readPage() { apply(record, key: ServiceKey(namespace: record.service.namespace, name: record.service.name)) }
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

    /// Whether the health checker or the DNS refresher has anything to do for `service`, whose
    /// `host` names are `hosts`.
    private static func isFollowed(_ service: ExternalService, hosts: Set<String>) -> Bool {
        service.healthCheck != nil || !hosts.isEmpty
    }

    /// Brings the DNS refresher and the health checker in line with one registration (nil:
    /// deleted) and remembers its revision (`applying` held).
    private func apply(_ record: ServiceRecord?, key: ServiceKey) {
        let service = record?.service
        let hosts = service?.hosts ?? []
        dns.update(
            namespace: key.namespace, name: key.name, hosts: hosts,
            settings: service.map(DNSRefresher.Settings.init)
                ?? DNSRefresher.Settings(refreshSeconds: DNSSettings.defaultRefreshSeconds, graceSeconds: DNSSettings.defaultGraceSeconds))
        // Without a health check there is nothing to probe: the checker forgets the service
        // alike for nil, and the (possibly large) service is not resolved for nothing.
        liveness.update(namespace: key.namespace, name: key.name, service: service?.healthCheck == nil ? nil : service.map(dns.resolved))
        let followed = service.map { Self.isFollowed($0, hosts: hosts) } ?? false
        applied.withLock { $0[key] = followed ? record.map(Applied.init) : nil }
    }

    private func sync(_ keys: Set<ServiceKey>) {
        var failures: Set<ServiceKey> = []
        for key in keys {
            do {
                let record = try read(key)
                applying.withLock {
                    // Another revision than the one applied: a commit's update, applied or on
                    // its way, puts the new answers in place with it.
                    // Not followed: the checker knows nothing of it (a commit's update of a
                    // registration to follow is on its way).
                    guard let last = applied.withLock({ $0[key] }), last == record.map(Applied.init) else { return }
                    liveness.update(namespace: key.namespace, name: key.name, service: record.map { dns.resolved($0.service) })
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
