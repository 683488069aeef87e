public import Foundation
public import Logging
import RegistryCore
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
}

/// Resolves a DNS name to its A and AAAA addresses (canonical text, any order). Blocks the
/// calling thread; must be safe to call from several threads.
public protocol Resolver: Sendable {
    func resolve(_ host: String) -> Result<[String], ResolveFailure>
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
    /// The last attempt's failure; nil after a success.
    public private(set) var error: ResolveFailure?
    /// Since when the name has been reported not to exist (consecutively).
    public private(set) var notFoundSince: Date?
    /// True once an NXDOMAIN lasted longer than the grace period and the last answer was dropped.
    public private(set) var expired = false

    public init() {}

    /// Records one attempt; returns true when the rendered addresses changed.
    public mutating func record(_ result: Result<[String], ResolveFailure>, at time: Date, graceSeconds: Int) -> Bool {
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
            error = nil
            notFoundSince = nil
            expired = false
        case .failure(.notFound):
            error = .notFound
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
            notFoundSince = nil
        }
        return addresses != before
    }
}

/// Resolves the `host` of addresses given by DNS name, periodically, off the HTTP threads: one
/// refresher thread walks a schedule (every `dnsRefreshSeconds` of each service, with ±10 %
/// jitter) and calls the resolver, one name at a time. Tells its subscribers which services'
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
    }

    private struct Entry {
        var settings: Settings
        var resolution = HostResolution()
        var due: ContinuousClock.Instant
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var stopping = false
        var running = false
    }

    private let resolver: any Resolver
    private let logger: Logger
    private let lock = ScheduleLock()
    private let state = Mutex(State())
    private let subscribers = Mutex<[@Sendable (_ namespace: String, _ name: String) -> Void]>([])
    private let now: @Sendable () -> Date

    public init(resolver: any Resolver, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.resolver = resolver
        self.logger = logger
        self.now = now
    }

    /// Called (from the refresher thread) when a service's resolved addresses changed.
    public func onChange(_ subscriber: @escaping @Sendable (_ namespace: String, _ name: String) -> Void) {
        subscribers.withLock { $0.append(subscriber) }
    }

    /// The names a service resolves, with its settings (`hosts` empty: none). New names are
    /// resolved at once; names no longer used are forgotten.
    public func update(namespace: String, name: String, hosts: Set<String>, settings: Settings) {
        lock.locked {
            state.withLock { state in
                for key in state.entries.keys where key.namespace == namespace && key.name == name && !hosts.contains(key.host) {
                    state.entries[key] = nil
                }
                for host in hosts {
                    let key = Key(namespace: namespace, name: name, host: host)
                    if state.entries[key] == nil {
                        state.entries[key] = Entry(settings: settings, due: ContinuousClock.now)
                    } else {
                        state.entries[key]!.settings = settings
                    }
                }
            }
            lock.broadcast()
        }
    }

    /// The current resolution of a name of a service; nil when unknown.
    public func resolution(namespace: String, name: String, host: String) -> HostResolution? {
        lock.locked { state.withLock { $0.entries[Key(namespace: namespace, name: name, host: host)]?.resolution } }
    }

    /// Resolves every due name once, now, on the calling thread (tests, and the refresher loop).
    /// Returns the services whose addresses changed.
    @discardableResult
    public func refreshDue() -> [(namespace: String, name: String)] {
        var changed: [(String, String)] = []
        while let (key, grace) = takeDue() {
            let result = resolver.resolve(key.host)
            let time = now()
            let didChange: Bool = lock.locked {
                state.withLock { state in
                    guard var entry = state.entries[key] else { return false }
                    let changed = entry.resolution.record(result, at: time, graceSeconds: grace)
                    let interval = Double(entry.settings.refreshSeconds)
                    entry.due = ContinuousClock.now.advanced(by: .seconds(interval * Double.random(in: 0.9...1.1)))
                    state.entries[key] = entry
                    return changed
                }
            }
            if case .failure(let failure) = result {
                logger.warning(
                    "DNS resolution failed", metadata: ["service": "\(key.namespace)/\(key.name)", "host": "\(key.host)", "error": "\(failure)"])
            }
            if didChange, !changed.contains(where: { $0 == (key.namespace, key.name) }) { changed.append((key.namespace, key.name)) }
        }
        for (namespace, name) in changed {
            for subscriber in subscribers.withLock({ $0 }) { subscriber(namespace, name) }
        }
        return changed
    }

    private func takeDue() -> (Key, Int)? {
        lock.locked {
            state.withLock { state in
                let clock = ContinuousClock.now
                guard let (key, entry) = state.entries.first(where: { $0.value.due <= clock }) else { return nil }
                state.entries[key]!.due = clock.advanced(by: .seconds(Double(entry.settings.refreshSeconds)))
                return (key, entry.settings.graceSeconds)
            }
        }
    }

    /// Starts the refresher thread (once).
    public func start() {
        let first = lock.locked {
            state.withLock { state in
                defer { state.running = true }
                return !state.running && !state.stopping
            }
        }
        guard first else { return }
        let thread = Thread { [self] in
            while true {
                refreshDue()
                let stop: Bool = lock.locked {
                    if state.withLock({ $0.stopping }) { return true }
                    let next = state.withLock { $0.entries.values.map(\.due).min() }
                    lock.wait(until: next)
                    return state.withLock { $0.stopping }
                }
                if stop { break }
            }
            lock.locked {
                state.withLock { $0.running = false }
                lock.broadcast()
            }
        }
        thread.name = "dns-refresher"
        thread.start()
    }

    /// Stops the refresher after the resolution in progress, waiting up to `deadline`.
    @discardableResult
    public func shutdown(deadline: Duration) -> Bool {
        let limit = ContinuousClock.now.advanced(by: deadline)
        return lock.locked {
            state.withLock { $0.stopping = true }
            lock.broadcast()
            while state.withLock({ $0.running }) {
                if ContinuousClock.now >= limit { return false }
                lock.wait(until: limit)
            }
            return true
        }
    }
}
