public import Foundation
public import Logging
public import RegistryCore
public import RegistryStorage
import Synchronization

/// Why a name did not resolve.
public enum ResolveFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name does not exist (NXDOMAIN), or has no A/AAAA records.
    case notFound
    /// The resolver could not answer (timeout, SERVFAIL, no server reachable).
    case failed(String)

    public var description: String {
        switch self {
        case .notFound: "the name does not exist (NXDOMAIN or no A/AAAA records)"
        case .failed(let detail): "resolution failed: \(detail)"
        }
    }

    /// The metric label: `notfound` or `failure`.
    public var result: String {
        switch self {
        case .notFound: "notfound"
        case .failed: "failure"
        }
    }
}

/// One answer: the A and AAAA addresses (text, any order) and the smallest TTL of the
/// records in seconds, when the resolver gives it.
public struct ResolvedAddresses: Sendable, Equatable {
    public var addresses: [String]
    public var ttlSeconds: Int?

    public init(addresses: [String], ttlSeconds: Int? = nil) {
        self.addresses = addresses
        self.ttlSeconds = ttlSeconds
    }
}

/// Resolves a DNS name to its A and AAAA addresses. Blocks the calling thread (for a bounded
/// time); must be safe to call from several threads.
public protocol Resolver: Sendable {
    func resolve(_ host: String) -> Result<ResolvedAddresses, ResolveFailure>
}

/// Receives what the refresher does (metrics).
public protocol DNSObserver: Sendable {
    /// One resolution finished: `success`, `notfound` or `failure`.
    func resolved(result: String)
}

/// The resolution of one name as the registry uses it (issue 13): the last good answer is kept
/// through failures, and through NXDOMAIN for a grace period, then dropped.
public struct HostResolution: Sendable, Equatable {
    /// The addresses rendered: resolved, without the ones the API server refuses; sorted.
    public private(set) var addresses: [String] = []
    /// Resolved addresses dropped because the API server refuses them, with the reason.
    public private(set) var dropped: [String: String] = [:]
    /// When the addresses rendered were last resolved successfully.
    public private(set) var resolvedAt: Date?
    /// When the last attempt finished.
    public private(set) var lastAttempt: Date?
    /// The smallest TTL of the last good answer, when the resolver gave one.
    public private(set) var ttlSeconds: Int?
    /// The last attempt's failure; nil after a success.
    public private(set) var error: ResolveFailure?
    /// Since when attempts have been failing other than with NXDOMAIN (consecutively).
    public private(set) var failingSince: Date?
    /// Since when the name has been reported not to exist (consecutively).
    public private(set) var notFoundSince: Date?
    /// True once an NXDOMAIN lasted longer than the grace period and the last answer was dropped.
    public private(set) var expired = false

    public init() {}

    /// Records one attempt; returns true when the rendered addresses changed.
    public mutating func record(_ result: Result<[String], ResolveFailure>, at time: Date, graceSeconds: Int, ttlSeconds: Int? = nil) -> Bool {
        let before = addresses
        lastAttempt = time
        switch result {
        case .success(let resolved):
            var kept = Set<IPAddress>()
            var refused: [String: String] = [:]
            for text in resolved {
                guard let address = try? IPAddress(parsing: text) else {
                    refused[text] = "not an IP address"
                    continue
                }
                if let reason = address.specialUseReason {
                    refused[address.description] = "the API server refuses a \(reason)"
                } else {
                    kept.insert(address)
                }
            }
            addresses = kept.sorted().map(\.description)
            dropped = refused
            resolvedAt = time
            self.ttlSeconds = ttlSeconds
            error = nil
            failingSince = nil
            notFoundSince = nil
            expired = false
        case .failure(.notFound):
            error = .notFound
            failingSince = nil
            let since = notFoundSince ?? time
            notFoundSince = since
            if time.timeIntervalSince(since) >= Double(graceSeconds) {
                addresses = []
                dropped = [:]
                expired = true
            }
        case .failure(let failure):
            // Keep the last good answer.
            error = failure
            failingSince = failingSince ?? time
            notFoundSince = nil
        }
        return addresses != before
    }
}

/// A condition of a service raised by its `host` addresses (Kubernetes condition shape; only
/// conditions that hold are reported).
public struct DNSCondition: Sendable, Equatable {
    /// The last resolution of a name failed (not NXDOMAIN); its last good answer is still used.
    public static let resolutionFailed = "DNSResolutionFailed"
    /// A name does not exist (NXDOMAIN or no A/AAAA records).
    public static let nameNotFound = "DNSNameNotFound"

    public var type: String
    /// `WithinGracePeriod` or `GracePeriodExpired` for `DNSNameNotFound`; `ResolverError` otherwise.
    public var reason: String
    public var lastTransitionTime: Date
    public var message: String
}

/// Resolves the `host` of addresses given by DNS name, periodically, off the HTTP threads: each
/// of a few refresher threads takes the name due first, resolves it, and schedules it again
/// after its service's `dnsRefreshSeconds`, sooner when the answer's TTL is shorter (never under
/// `DNSSettings.ttlFloorSeconds`), with ±10 % jitter. Each lookup is bounded by the resolver's
/// deadline; as many names as threads are resolved at once, so a name whose servers do not
/// answer holds up one thread, not every other name. Tells its subscribers which services'
/// resolved addresses changed.
public final class DNSRefresher: Sendable {
    public struct Key: Hashable, Sendable {
        public var namespace: String
        public var name: String
        public var host: String
    }

    public struct Settings: Sendable, Equatable {
        public var refreshSeconds: Int
        public var graceSeconds: Int
        public init(refreshSeconds: Int, graceSeconds: Int) {
            self.refreshSeconds = refreshSeconds
            self.graceSeconds = graceSeconds
        }

        /// The service's `dnsRefreshSeconds` and `dnsGraceSeconds`.
        public init(_ service: ExternalService) {
            self.init(refreshSeconds: service.effectiveDNSRefreshSeconds, graceSeconds: service.effectiveDNSGraceSeconds)
        }
    }

    /// The resolution of one name of a service, as the API shows it.
    public struct Report: Sendable, Equatable {
        public var host: String
        public var resolution: HostResolution
        /// When the name is resolved again (nil while it is being resolved).
        public var nextAttempt: Date?
    }

    private struct Entry {
        var settings: Settings
        var resolution = HostResolution()
        var due: ContinuousClock.Instant
        var inFlight = false
        /// Identifies the entry's current item in `State.schedule` (older items are stale).
        var generation = 0
    }

    private typealias Due = DueItem<Key>

    private struct State {
        var entries: [Key: Entry] = [:]
        /// The names of each service (an index of `entries`: reading one service's names does
        /// not go through every name of every service).
        var hosts: [ServiceKey: Set<String>] = [:]
        /// Due times (a min-heap; an entry's stale items are skipped when they come up), so that
        /// taking the next due name costs O(log n), not a pass over every name.
        var schedule = MinHeap<Due>()
        var nextGeneration = 0
        /// Per service: bumped whenever its resolved addresses changed.
        var epochs: [ServiceKey: Int] = [:]
        var stopping = false
        /// Refresher threads running (some may be finishing a lookup after `shutdown`).
        var running = 0
    }

    private let resolver: any Resolver
    private let logger: Logger
    private let observer: (any DNSObserver)?
    private let lock = ScheduleLock()
    /// Only touched with `lock` held; the Mutex makes the shared state visibly Sendable.
    private let state = Mutex(State())
    private let subscribers = Mutex<[@Sendable (_ namespace: String, _ name: String) -> Void]>([])
    private let now: @Sendable () -> Date
    private let jitter: Double
    private let threads: Int

    /// Changes found by a refresher thread are told to the subscribers at least this often
    /// while it keeps resolving (and when it has nothing due).
    static let notifyEvery: Duration = .milliseconds(500)

    /// `jitter`: relative jitter of every interval, in [0, 0.5). `threads`: refresher threads
    /// (names resolved at once), so that names whose lookups take up to the resolver's deadline
    /// do not hold up the others.
    public init(
        resolver: any Resolver, logger: Logger, observer: (any DNSObserver)? = nil, jitter: Double = 0.1, threads: Int = 4,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.resolver = resolver
        self.logger = logger
        self.observer = observer
        self.jitter = min(max(jitter, 0), 0.49)
        self.threads = max(1, threads)
        self.now = now
    }

    /// Called (off the lock: from a refresher thread, or on the caller's thread for `restore`
    /// and `refreshDue`) when a service's resolved addresses changed.
    public func onChange(_ subscriber: @escaping @Sendable (_ namespace: String, _ name: String) -> Void) {
        subscribers.withLock { $0.append(subscriber) }
    }

    /// Sets when `key` is due next (its entry must exist), replacing its previous schedule item.
    private static func schedule(_ key: Key, at instant: ContinuousClock.Instant, in state: inout State) {
        state.nextGeneration += 1
        state.entries[key]?.due = instant
        state.entries[key]?.generation = state.nextGeneration
        state.schedule.push(Due(instant: instant, key: key, generation: state.nextGeneration))
    }

    /// The names a service resolves, with its settings (`hosts` empty: none). New names are
    /// resolved at once; names no longer used are forgotten. A shorter `refreshSeconds` applies
    /// at once.
    public func update(namespace: String, name: String, hosts: Set<String>, settings: Settings) {
        lock.locked {
            // The refresher threads are woken only when a name was scheduled (sooner than they
            // may be waiting for); a commit of a service without names wakes none of them.
            let scheduled = state.withLock { state -> Bool in
                var scheduled = false
                let service = ServiceKey(namespace: namespace, name: name)
                for host in state.hosts[service] ?? [] where !hosts.contains(host) {
                    state.entries[Key(namespace: namespace, name: name, host: host)] = nil
                }
                state.hosts[service] = hosts.isEmpty ? nil : hosts
                let clock = ContinuousClock.now
                for host in hosts {
                    let key = Key(namespace: namespace, name: name, host: host)
                    if let entry = state.entries[key] {
                        state.entries[key]?.settings = settings
                        let latest = clock.advanced(by: .seconds(settings.refreshSeconds))
                        if entry.due > latest {
                            DNSRefresher.schedule(key, at: latest, in: &state)
                            scheduled = true
                        }
                    } else {
                        state.entries[key] = Entry(settings: settings, due: clock)
                        DNSRefresher.schedule(key, at: clock, in: &state)
                        scheduled = true
                    }
                }
                if hosts.isEmpty { state.epochs[service] = nil }
                return scheduled
            }
            if scheduled { lock.broadcast() }
        }
    }

    /// The current resolution of a name of a service; nil when unknown.
    public func resolution(namespace: String, name: String, host: String) -> HostResolution? {
        lock.locked { state.withLock { $0.entries[Key(namespace: namespace, name: name, host: host)]?.resolution } }
    }

    /// The addresses each name of a service renders as (names not yet resolved: none).
    public func addresses(namespace: String, name: String) -> [String: [String]] {
        lock.locked {
            state.withLock { state in
                var found: [String: [String]] = [:]
                for host in state.hosts[ServiceKey(namespace: namespace, name: name)] ?? [] {
                    found[host] = state.entries[Key(namespace: namespace, name: name, host: host)]?.resolution.addresses
                }
                return found
            }
        }
    }

    /// `service` with its `host` addresses replaced by the addresses they resolve to
    /// (`ExternalService.resolvingHosts`).
    public func resolved(_ service: ExternalService) -> ExternalService {
        guard service.addresses.contains(where: { $0.isUnresolvedHost }) else { return service }
        let known = addresses(namespace: service.namespace, name: service.name)
        return service.resolvingHosts { known[$0] ?? [] }
    }

    /// Every name of a service with its resolution, by name.
    public func reports(namespace: String, name: String) -> [String: Report] {
        let (clock, wall) = (ContinuousClock.now, now())
        return lock.locked {
            state.withLock { state in
                var found: [String: Report] = [:]
                for host in state.hosts[ServiceKey(namespace: namespace, name: name)] ?? [] {
                    let key = Key(namespace: namespace, name: name, host: host)
                    guard let entry = state.entries[key] else { continue }
                    let next = entry.inFlight ? nil : wall.addingTimeInterval(max(0, Self.seconds(clock.duration(to: entry.due))))
                    found[key.host] = Report(host: key.host, resolution: entry.resolution, nextAttempt: next)
                }
                return found
            }
        }
    }

    /// The conditions the names of a service raise: `DNSResolutionFailed` and `DNSNameNotFound`
    /// (each once, naming the hosts).
    public func conditions(namespace: String, name: String) -> [DNSCondition] {
        let reports = reports(namespace: namespace, name: name).values.sorted { $0.host < $1.host }
        var conditions: [DNSCondition] = []
        let failing = reports.filter { $0.resolution.failingSince != nil }
        if let since = failing.compactMap(\.resolution.failingSince).min() {
            let details = failing.map { report in
                "\(report.host): \(report.resolution.error?.description ?? "failed")"
                    + (report.resolution.resolvedAt == nil ? " (never resolved: renders no addresses)" : " (its last good answer is still rendered)")
            }
            conditions.append(
                DNSCondition(
                    type: DNSCondition.resolutionFailed, reason: "ResolverError", lastTransitionTime: since, message: details.joined(separator: "; "))
            )
        }
        let missing = reports.filter { $0.resolution.notFoundSince != nil }
        if let since = missing.compactMap(\.resolution.notFoundSince).min() {
            let expired = missing.contains { $0.resolution.expired }
            let details = missing.map { report in
                report.resolution.expired || report.resolution.resolvedAt == nil
                    ? "\(report.host) does not exist: renders no addresses"
                    : "\(report.host) does not exist: its last addresses are kept for the grace period"
            }
            conditions.append(
                DNSCondition(
                    type: DNSCondition.nameNotFound, reason: expired ? "GracePeriodExpired" : "WithinGracePeriod", lastTransitionTime: since,
                    message: details.joined(separator: "; ")))
        }
        return conditions
    }

    /// A number that changes whenever the service's resolved addresses changed (0 when it has
    /// none): part of cache keys and entity tags of renderings.
    public func epoch(namespace: String, name: String) -> Int {
        lock.locked { state.withLock { $0.epochs[ServiceKey(namespace: namespace, name: name)] ?? 0 } }
    }

    /// The services that resolve at least one name.
    public var resolvingServices: Set<ServiceKey> {
        lock.locked { state.withLock { Set($0.hosts.keys) } }
    }

    /// Names being resolved (over all services).
    public var hostCount: Int { lock.locked { state.withLock { $0.entries.count } } }

    /// Resolves every due name once, now, on the calling thread (tests, start-up, and the
    /// refresher loop); takes no new name after `deadline`. Returns the services whose
    /// addresses changed; the subscribers are told of them at least every `notifyEvery` (not
    /// only when nothing is due any more, which may be long while names keep falling due).
    @discardableResult
    public func refreshDue(until deadline: ContinuousClock.Instant? = nil) -> [(namespace: String, name: String)] {
        var changed: [(String, String)] = []
        var pending: [(namespace: String, name: String)] = []
        var lastNotice = ContinuousClock.now
        func notify() {
            for (namespace, name) in pending {
                for subscriber in subscribers.withLock({ $0 }) { subscriber(namespace, name) }
            }
            pending = []
            lastNotice = ContinuousClock.now
        }
        while deadline.map({ ContinuousClock.now < $0 }) ?? true, let key = takeDue() {
            defer { if !pending.isEmpty, ContinuousClock.now - lastNotice >= DNSRefresher.notifyEvery { notify() } }
            let answer = resolver.resolve(key.host)
            let time = now()
            observer?.resolved(result: answer.resultLabel)
            let outcome: (changed: Bool, dropped: [String: String], newlyDropped: Bool)? = lock.locked {
                state.withLock { state in
                    guard var entry = state.entries[key], entry.inFlight else { return nil }
                    let before = entry.resolution.dropped
                    let changed = entry.resolution.record(
                        answer.map(\.addresses), at: time, graceSeconds: entry.settings.graceSeconds, ttlSeconds: answer.ttlSeconds)
                    let interval = DNSSettings.refreshInterval(ttl: answer.ttlSeconds, refreshSeconds: entry.settings.refreshSeconds)
                    let spread = Double(interval) * jitter
                    entry.inFlight = false
                    state.entries[key] = entry
                    DNSRefresher.schedule(
                        key, at: ContinuousClock.now.advanced(by: .seconds(Double(interval) + Double.random(in: -spread...spread))), in: &state)
                    // Due before what the idle threads wait for (one may wait for nothing): wake them to look again.
                    if state.schedule.peek()?.generation == state.entries[key]?.generation { lock.broadcast() }
                    if changed { state.epochs[ServiceKey(namespace: key.namespace, name: key.name), default: 0] += 1 }
                    return (changed, entry.resolution.dropped, entry.resolution.dropped != before && !entry.resolution.dropped.isEmpty)
                }
            }
            guard let outcome else { continue }
            let service = "\(key.namespace)/\(key.name)"
            if case .failure(let failure) = answer {
                logger.warning("DNS resolution failed", metadata: ["service": "\(service)", "host": "\(key.host)", "error": "\(failure)"])
            }
            if outcome.newlyDropped {
                logger.warning(
                    "resolved addresses dropped: the API server refuses them",
                    metadata: [
                        "service": "\(service)", "host": "\(key.host)",
                        "dropped": "\(outcome.dropped.keys.sorted().map { "\($0) (\(outcome.dropped[$0]!))" }.joined(separator: ", "))",
                    ])
            }
            if outcome.changed {
                logger.info("resolved addresses changed", metadata: ["service": "\(service)", "host": "\(key.host)"])
                if !changed.contains(where: { $0 == (key.namespace, key.name) }) { changed.append((key.namespace, key.name)) }
                if !pending.contains(where: { $0 == (key.namespace, key.name) }) { pending.append((key.namespace, key.name)) }
            }
        }
        notify()
        return changed
    }

    /// The name due first, marked in flight; nil when none is due.
    private func takeDue() -> Key? {
        lock.locked {
            state.withLock { state in
                guard !state.stopping, let next = DNSRefresher.nextDue(in: &state), next.instant <= ContinuousClock.now else { return nil }
                _ = state.schedule.pop()
                state.entries[next.key]?.inFlight = true
                return next.key
            }
        }
    }

    /// The schedule's first current item (stale items above it are dropped): the name due first
    /// that is not being resolved.
    private static func nextDue(in state: inout State) -> Due? {
        while let top = state.schedule.peek() {
            if let entry = state.entries[top.key], entry.generation == top.generation, !entry.inFlight { return top }
            _ = state.schedule.pop()
        }
        return nil
    }

    /// Starts the refresher threads; a second call while they run does nothing. After
    /// `shutdown(deadline:)` they start again (a replica that leads again, issue 16), with the
    /// names and resolutions it had; a thread still finishing a resolution carries on (and
    /// counts as one of them).
    public func start() {
        let missing = lock.locked {
            state.withLock { state in
                state.stopping = false
                let missing = max(0, threads - state.running)
                state.running += missing
                return missing
            }
        }
        for index in 0..<missing { spawnThread(index) }
    }

    private func spawnThread(_ index: Int) {
        let thread = Thread { [self] in
            while true {
                refreshDue()
                // Whether to end is decided, and `running` cleared, under the lock: a `start()`
                // racing with the end either keeps this thread or starts a new one.
                let stop: Bool = lock.locked {
                    func end() -> Bool {
                        state.withLock { $0.running -= 1 }
                        lock.broadcast()
                        return true
                    }
                    if state.withLock({ $0.stopping }) { return end() }
                    let next = state.withLock { DNSRefresher.nextDue(in: &$0)?.instant }
                    lock.wait(until: next)
                    return state.withLock { $0.stopping } ? end() : false
                }
                if stop { break }
            }
        }
        thread.name = "dns-refresher-\(index)"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// Stops the refresher threads after the resolutions in progress, waiting up to `deadline`;
    /// `start()` resumes them.
    @discardableResult
    public func shutdown(deadline: Duration) -> Bool {
        let limit = ContinuousClock.now.advanced(by: deadline)
        return lock.locked {
            state.withLock { $0.stopping = true }
            lock.broadcast()
            while state.withLock({ $0.running }) > 0 {
                if ContinuousClock.now >= limit { return false }
                lock.wait(until: limit)
            }
            return true
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

extension Result where Success == ResolvedAddresses, Failure == ResolveFailure {
    /// `success`, `notfound` or `failure` (the metric label).
    var resultLabel: String {
        switch self {
        case .success: "success"
        case .failure(let failure): failure.result
        }
    }

    var ttlSeconds: Int? {
        if case .success(let answer) = self { return answer.ttlSeconds }
        return nil
    }
}

// MARK: - Snapshots (issue 16)

extension ResolveFailure: Codable {}
extension HostResolution: Codable {}

extension DNSRefresher {
    /// The resolutions of one service's names as a JSON document (UTF-8) to store: per host its
    /// `HostResolution` (addresses, dropped, resolvedAt, lastAttempt, ttlSeconds, error,
    /// failingSince, notFoundSince, expired; times as Foundation's `Date`, seconds since
    /// 2001-01-01T00:00:00Z). nil when the service resolves no name here or none was attempted yet.
    public func snapshot(of key: ServiceKey) -> [UInt8]? {
        let resolutions: [String: HostResolution] = lock.locked {
            state.withLock { state in
                var found: [String: HostResolution] = [:]
                for host in state.hosts[key] ?? [] {
                    guard let entry = state.entries[Key(namespace: key.namespace, name: key.name, host: host)], entry.resolution.lastAttempt != nil
                    else { continue }
                    found[host] = entry.resolution
                }
                return found
            }
        }
        guard !resolutions.isEmpty else { return nil }
        return StoredSnapshot.encode(resolutions, of: key, what: "DNS state", logger: logger)
    }

    /// Continues from stored snapshots (a new leader, or a follower showing the leader's
    /// answers; issue 16): each name a service still resolves here takes the stored resolution
    /// when it is newer than its own (by `lastAttempt`; a name not attempted here always takes
    /// it), so that the last good answer survives a change of leader. Names keep their
    /// schedule. Snapshots that cannot be decoded are logged and ignored. The subscribers are
    /// told of the services whose addresses changed; returns the services restored.
    @discardableResult
    public func restore(_ snapshots: [ServiceKey: [UInt8]]) -> Set<ServiceKey> {
        let decoded = StoredSnapshot.decode([String: HostResolution].self, snapshots, what: "DNS state", logger: logger)
        let (restored, changed): (Set<ServiceKey>, [ServiceKey]) = lock.locked {
            state.withLock { state in
                var restored: Set<ServiceKey> = []
                var changed: [ServiceKey] = []
                for (key, resolutions) in decoded {
                    var addressesChanged = false
                    for (host, stored) in resolutions {
                        let entryKey = Key(namespace: key.namespace, name: key.name, host: host)
                        guard var entry = state.entries[entryKey], !entry.inFlight, let attempt = stored.lastAttempt,
                            entry.resolution.lastAttempt.map({ attempt > $0 }) ?? true
                        else { continue }
                        addressesChanged = addressesChanged || entry.resolution.addresses != stored.addresses
                        entry.resolution = stored
                        state.entries[entryKey] = entry
                        restored.insert(key)
                    }
                    if addressesChanged {
                        state.epochs[key, default: 0] += 1
                        changed.append(key)
                    }
                }
                return (restored, changed)
            }
        }
        for key in changed {
            for subscriber in subscribers.withLock({ $0 }) { subscriber(key.namespace, key.name) }
        }
        return restored
    }
}
