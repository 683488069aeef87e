public import Foundation
public import Logging
public import RegistryCore
public import RegistryStorage
import Synchronization

/// Receives what the checker measures (metrics).
public protocol LivenessObserver: Sendable {
    /// One probe finished; `failure` is nil on success.
    func probed(namespace: String, name: String, duration: Duration, failure: ProbeFailure?)
    /// Every address of a service became unhealthy and `failOpen` renders them all ready.
    func failedOpen(namespace: String, name: String)
}

/// The active health checker (issue 13): probes every address (IP and probed port) of every
/// service that has a `healthCheck`, keeps each address's state machine, and tells its
/// subscriber which services' effective readiness changed.
///
/// Threads: one scheduler thread keeps the schedule (a min-heap of due times) and starts each
/// probe when it is due, without waiting for it: probes are asynchronous (`Prober.start`), and
/// their verdicts come back through completion callbacks (on the probers' event-loop threads)
/// and are applied in order on one result queue (so that subscribers never run on an event
/// loop); a probe waiting for a silent backend holds no thread. Each address is first probed at a
/// random point of its interval (so 10,000 new addresses do not fire at once), then every
/// `intervalSeconds` with ±10 % jitter; at most `maxInFlight` probes are in flight (when that
/// many are, due probes wait for one to finish). Each probe is bounded by the check's
/// `timeoutSeconds` (the prober enforces it). Nothing here runs on an HTTP thread.
public final class HealthChecker: Sendable {
    public struct Configuration: Sendable {
        /// Most probes in flight at once. Each holds a socket (a file descriptor) while in
        /// flight, no thread; `start()` raises the process's soft descriptor limit towards its
        /// hard limit when needed and keeps 1,024 descriptors for everything else.
        public var maxInFlight = 4096
        /// Health events kept per service (oldest dropped first).
        public var maxEventsPerService = 100
        /// Relative jitter applied to every interval, in [0, 0.5).
        public var jitter = 0.1
        public init() {}
    }

    /// One change of state of one address, or of the service's fail-open condition.
    public struct Event: Sendable, Equatable {
        public var time: Date
        /// nil for a service-level event (the `allBackendsUnhealthy` condition).
        public var target: ProbeTarget?
        public var from: String
        public var to: String
        public var message: String?
    }

    /// The health of one probed address as the API shows it.
    public struct AddressReport: Sendable, Equatable {
        public var target: ProbeTarget
        public var health: AddressHealth
    }

    /// The `allBackendsUnhealthy` condition of a service (Kubernetes condition shape).
    public struct Condition: Sendable, Equatable {
        public static let allBackendsUnhealthy = "allBackendsUnhealthy"
        public var type: String
        public var status: Bool
        public var lastTransitionTime: Date
        public var message: String
    }

    public struct ServiceReport: Sendable, Equatable {
        public var addresses: [AddressReport]
        public var conditions: [Condition]
        /// Oldest first.
        public var events: [Event]
    }

    struct EntryID: Hashable, Sendable {
        var service: ServiceKey
        var target: ProbeTarget
    }

    private struct Entry {
        var check: HealthCheck
        var health: AddressHealth
        var due: ContinuousClock.Instant
        var generation: Int
        var inFlight = false
    }

    private struct ServiceState {
        var check: HealthCheck
        /// Probed targets, and whether at least one address on each is registered ready.
        var targets: [ProbeTarget: Bool]
        var events: [Event] = []
        var allUnhealthy: Condition?
        /// Bumped whenever the effective readiness may have changed.
        var epoch = 0
    }

    private typealias Due = DueItem<EntryID>

    private struct State {
        var entries: [EntryID: Entry] = [:]
        var services: [ServiceKey: ServiceState] = [:]
        var schedule = MinHeap<Due>()
        var nextGeneration = 0
        var stopping = false
        /// The scheduler thread is running.
        var scheduling = false
        var inFlight = 0
        /// `maxInFlight`, lowered to what the descriptor limit allows.
        var capacity = 1
    }

    private let prober: any Prober
    private let configuration: Configuration
    private let logger: Logger
    private let observer: (any LivenessObserver)?
    private let lock = ScheduleLock()
    /// Where probe results are applied (state machines, events, subscribers), in order.
    private let results = DispatchQueue(label: "health-results")
    /// Only touched with `lock` held; the Mutex makes the shared state visibly Sendable.
    private let state = Mutex(State())
    private let subscribers = Mutex<[@Sendable ([ServiceKey]) -> Void]>([])
    private let started = Atomic<Bool>(false)
    private let now: @Sendable () -> Date

    public init(
        prober: any Prober, configuration: Configuration = Configuration(), logger: Logger, observer: (any LivenessObserver)? = nil,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.prober = prober
        self.configuration = configuration
        self.logger = logger
        self.observer = observer
        self.now = now
    }

    /// Called (off the lock, never on a prober's event loop: on the checker's result queue for
    /// probe results, on the caller's thread for `update` and `retain`) with the services whose
    /// rendering may have changed: an address crossed a threshold, the fail-open condition
    /// flipped, the check or the addresses changed.
    public func onChange(_ subscriber: @escaping @Sendable ([ServiceKey]) -> Void) {
        subscribers.withLock { $0.append(subscriber) }
    }

    // MARK: - Life cycle

    /// Starts probing; a second call while running does nothing. The scheduler thread is
    /// created when the first service with a health check is known. After `shutdown(deadline:)`
    /// it starts probing again (a replica that leads again, issue 16): the addresses keep their
    /// states and schedule, the ones due are probed at once, and probes still in flight from
    /// before count against `maxInFlight`.
    public func start() {
        let capacity = HealthChecker.descriptorCapacity(for: max(1, configuration.maxInFlight), logger: logger)
        lock.locked {
            state.withLock { state in
                state.stopping = false
                state.capacity = capacity
            }
        }
        started.store(true, ordering: .sequentiallyConsistent)
        spawnSchedulerIfNeeded()
    }

    private func spawnSchedulerIfNeeded() {
        guard started.load(ordering: .sequentiallyConsistent) else { return }
        let spawn = lock.locked {
            state.withLock { state in
                guard !state.scheduling, !state.stopping, !state.services.isEmpty else { return false }
                state.scheduling = true
                return true
            }
        }
        guard spawn else { return }
        let thread = Thread { [self] in self.schedule() }
        thread.name = "health-scheduler"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// Stops starting probes and waits (up to `deadline`) for the scheduler thread to end and
    /// for the probes in flight, which are bounded by their timeouts; once it returns true, no
    /// probe result is applied and no subscriber is called until `start()`. Returns false if
    /// some were still running. `start()` resumes.
    @discardableResult
    public func shutdown(deadline: Duration) -> Bool {
        let limit = ContinuousClock.now.advanced(by: deadline)
        return lock.locked {
            state.withLock { $0.stopping = true }
            lock.broadcast()
            while state.withLock({ $0.scheduling || $0.inFlight > 0 }) {
                if ContinuousClock.now >= limit { return false }
                lock.wait(until: limit)
            }
            return true
        }
    }

    /// `wanted`, or less when the process's descriptor limit cannot be raised to hold that many
    /// sockets plus 1,024 for everything else (logged).
    static func descriptorCapacity(for wanted: Int, logger: Logger) -> Int {
        let reserve = 1024
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return wanted }
        let needed = rlim_t(wanted + reserve)
        if limit.rlim_cur != rlim_t.max, limit.rlim_cur < needed {
            var raised = limit
            raised.rlim_cur = limit.rlim_max == rlim_t.max ? needed : min(needed, limit.rlim_max)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        guard limit.rlim_cur != rlim_t.max, limit.rlim_cur < needed else { return wanted }
        let capacity = max(16, Int(limit.rlim_cur) - reserve)
        logger.warning(
            "the descriptor limit holds fewer health-check probes in flight than asked",
            metadata: ["asked": "\(wanted)", "allowed": "\(capacity)", "limit": "\(limit.rlim_cur)"])
        return capacity
    }

    // MARK: - Registrations

    /// Brings the probed addresses of one service in line with its registration (`nil`:
    /// deleted). Addresses that stay keep their state; a changed check starts them over.
    public func update(namespace: String, name: String, service: ExternalService?) {
        let key = ServiceKey(namespace: namespace, name: name)
        var desired: [ProbeTarget: Bool] = [:]
        if let service, let check = service.healthCheck {
            for address in service.addresses {
                guard let port = check.probePort(for: address, servicePorts: service.ports) else { continue }
                let target = ProbeTarget(ip: address.ip, port: port)
                desired[target] = (desired[target] ?? false) || address.ready
            }
        }
        let changed: Bool = lock.locked {
            state.withLock { state in
                let previous = state.services[key]
                let check = service?.healthCheck
                for target in previous.map({ Array($0.targets.keys) }) ?? [] {
                    let id = EntryID(service: key, target: target)
                    if desired[target] == nil || previous?.check != check { state.entries[id] = nil }
                }
                guard let check, !desired.isEmpty else {
                    state.services[key] = nil
                    return previous != nil
                }
                let clock = ContinuousClock.now
                let interval = Double(check.intervalSeconds)
                for target in desired.keys {
                    let id = EntryID(service: key, target: target)
                    guard state.entries[id] == nil else { continue }
                    state.nextGeneration += 1
                    let due = clock.advanced(by: .seconds(Double.random(in: 0..<interval)))
                    state.entries[id] = Entry(check: check, health: AddressHealth(since: now()), due: due, generation: state.nextGeneration)
                    state.schedule.push(Due(instant: due, key: id, generation: state.nextGeneration))
                }
                var service = previous ?? ServiceState(check: check, targets: desired)
                service.check = check
                service.targets = desired
                state.services[key] = service
                lock.broadcast()
                return previous?.targets != desired || previous?.check != check
            }
        }
        if changed { evaluate(key) }
        spawnSchedulerIfNeeded()
    }

    /// Forgets every service not in `keep` (after a full reload).
    public func retain(only keep: Set<ServiceKey>) {
        let gone = lock.locked { state.withLock { Array($0.services.keys.filter { !keep.contains($0) }) } }
        for key in gone { update(namespace: key.namespace, name: key.name, service: nil) }
    }

    // MARK: - Reading

    /// `service` with each address's `ready` replaced by its effective readiness: registered
    /// `ready` AND not unhealthy (an `unknown` address counts as ready unless `startUnhealthy`).
    /// With `failOpen`, when every registered-ready address is unhealthy, they all stay ready.
    public func effective(_ service: ExternalService) -> ExternalService {
        guard let check = service.healthCheck else { return service }
        let key = ServiceKey(namespace: service.namespace, name: service.name)
        let healths: [ProbeTarget: AddressHealth] = lock.locked {
            state.withLock { state in
                var found: [ProbeTarget: AddressHealth] = [:]
                for target in state.services[key].map({ Array($0.targets.keys) }) ?? [] {
                    if let entry = state.entries[EntryID(service: key, target: target)], entry.check == check { found[target] = entry.health }
                }
                return found
            }
        }
        var result = service
        var candidates: [Int] = []
        var unhealthy = 0
        for (index, address) in service.addresses.enumerated() where address.ready {
            guard let port = check.probePort(for: address, servicePorts: service.ports) else { continue }
            candidates.append(index)
            let health = healths[ProbeTarget(ip: address.ip, port: port)]
            if health?.state == .unhealthy { unhealthy += 1 }
            if !(health?.allowsReady(startUnhealthy: check.startUnhealthy) ?? !check.startUnhealthy) {
                result.addresses[index].ready = false
            }
        }
        if check.failOpen, !candidates.isEmpty, unhealthy == candidates.count {
            for index in candidates { result.addresses[index].ready = true }
        }
        return result
    }

    /// The current state of every probed address of a service, its conditions and last
    /// events; nil when the service has no health check (or is unknown).
    public func report(namespace: String, name: String) -> ServiceReport? {
        let key = ServiceKey(namespace: namespace, name: name)
        return lock.locked {
            state.withLock { state in
                guard let service = state.services[key] else { return nil }
                let addresses = service.targets.keys.compactMap { target in
                    state.entries[EntryID(service: key, target: target)].map { AddressReport(target: target, health: $0.health) }
                }.sorted { ($0.target.ip, $0.target.port) < ($1.target.ip, $1.target.port) }
                return ServiceReport(addresses: addresses, conditions: service.allUnhealthy.map { [$0] } ?? [], events: service.events)
            }
        }
    }

    /// Addresses per state for every checked service (for metrics).
    public func counts() -> [(service: ServiceKey, healthy: Int, unhealthy: Int, unknown: Int)] {
        lock.locked {
            state.withLock { state in
                state.services.map { key, service in
                    var counts = (healthy: 0, unhealthy: 0, unknown: 0)
                    for target in service.targets.keys {
                        switch state.entries[EntryID(service: key, target: target)]?.health.state {
                        case .healthy?: counts.healthy += 1
                        case .unhealthy?: counts.unhealthy += 1
                        default: counts.unknown += 1
                        }
                    }
                    return (key, counts.healthy, counts.unhealthy, counts.unknown)
                }.sorted { ($0.service.namespace, $0.service.name) < ($1.service.namespace, $1.service.name) }
            }
        }
    }

    /// A number that changes whenever the service's effective readiness may have changed
    /// (0 without a health check): part of cache keys and entity tags of renderings.
    public func epoch(namespace: String, name: String) -> Int {
        lock.locked { state.withLock { $0.services[ServiceKey(namespace: namespace, name: name)]?.epoch ?? 0 } }
    }

    /// Probes currently running (for tests and metrics).
    public var inFlight: Int { lock.locked { state.withLock { $0.inFlight } } }

    // MARK: - Scheduling

    private typealias Job = (id: EntryID, check: HealthCheck, generation: Int)

    /// The scheduler thread: starts every due probe while fewer than `capacity` are in
    /// flight, then waits (lock held, so released) for the next due time or for a signal (a
    /// completion, an update, `shutdown`).
    private func schedule() {
        lock.lock()
        defer {
            state.withLock { $0.scheduling = false }
            lock.broadcast()
            lock.unlock()
        }
        while true {
            let (jobs, deadline, stopping) = state.withLock { state -> ([Job], ContinuousClock.Instant?, Bool) in
                guard !state.stopping else { return ([], nil, true) }
                var jobs: [Job] = []
                let clock = ContinuousClock.now
                while state.inFlight < state.capacity, let top = state.schedule.peek() {
                    guard let entry = state.entries[top.key], entry.generation == top.generation, !entry.inFlight else {
                        _ = state.schedule.pop()
                        continue
                    }
                    guard top.instant <= clock else { break }
                    _ = state.schedule.pop()
                    state.entries[top.key]?.inFlight = true
                    state.inFlight += 1
                    jobs.append((top.key, entry.check, top.generation))
                }
                // At capacity, a completion signals; otherwise wait for the next due time.
                let deadline = state.inFlight < state.capacity ? state.schedule.peek()?.instant : nil
                return (jobs, deadline, false)
            }
            if stopping { return }
            guard !jobs.isEmpty else {
                lock.wait(until: deadline)
                continue
            }
            lock.unlock()
            for job in jobs { launch(job) }
            lock.lock()
        }
    }

    /// Starts one probe; its completion applies the result (on the prober's thread).
    private func launch(_ job: Job) {
        let started = ContinuousClock.now
        prober.start(job.id.target, check: job.check) { [self] result in
            let duration = ContinuousClock.now - started
            // Off the prober's event loop: subscribers may read the store (a database round
            // trip) and must not delay the other probes' I/O and deadlines.
            results.async { [self] in apply(job, result: result, duration: duration, started: started) }
        }
    }

    /// Applies one probe's result (on `results`, in completion order) and frees its slot.
    private func apply(_ job: Job, result: Result<Void, ProbeFailure>, duration: Duration, started: ContinuousClock.Instant) {
        observer?.probed(namespace: job.id.service.namespace, name: job.id.service.name, duration: duration, failure: result.failureValue)
        if record(job.id, generation: job.generation, result: result, started: started) { evaluate(job.id.service) }
        // The slot is free only now: `shutdown` returns once no result is left to apply.
        lock.locked {
            state.withLock { $0.inFlight -= 1 }
            lock.broadcast()
        }
    }

    /// Applies one probe result (lock not held); true when the address changed state.
    private func record(_ id: EntryID, generation: Int, result: Result<Void, ProbeFailure>, started: ContinuousClock.Instant) -> Bool {
        let time = now()
        let transition: (from: HealthState, to: HealthState, error: String?)? = lock.locked {
            state.withLock { state in
                guard var entry = state.entries[id], entry.generation == generation else { return nil }
                let error = result.failureValue.map { "\($0)" }
                let previous = entry.health.record(
                    success: result.failureValue == nil, error: error, at: time, healthyThreshold: entry.check.healthyThreshold,
                    unhealthyThreshold: entry.check.unhealthyThreshold)
                let interval = Double(entry.check.intervalSeconds)
                let jitter = interval * min(max(configuration.jitter, 0), 0.49)
                var due = entry.due.advanced(by: .seconds(interval + Double.random(in: -jitter...jitter)))
                if due < ContinuousClock.now { due = ContinuousClock.now.advanced(by: .seconds(Double.random(in: 0...max(jitter, 0.001)))) }
                state.nextGeneration += 1
                entry.generation = state.nextGeneration
                entry.due = due
                entry.inFlight = false
                state.entries[id] = entry
                state.schedule.push(Due(instant: due, key: id, generation: entry.generation))
                guard let previous else { return nil }
                let event = Event(time: time, target: id.target, from: previous.rawValue, to: entry.health.state.rawValue, message: error)
                append(event, to: id.service, in: &state)
                return (previous, entry.health.state, error)
            }
        }
        guard let transition else { return false }
        logger.info(
            "address \(transition.to == .healthy ? "is healthy" : "is unhealthy")",
            metadata: [
                "service": "\(id.service.namespace)/\(id.service.name)", "address": "\(id.target)", "from": "\(transition.from.rawValue)",
                "error": "\(transition.error ?? "")",
            ])
        return true
    }

    private func append(_ event: Event, to key: ServiceKey, in state: inout State) {
        guard state.services[key] != nil else { return }
        state.services[key]!.events.append(event)
        let excess = state.services[key]!.events.count - max(1, configuration.maxEventsPerService)
        if excess > 0 { state.services[key]!.events.removeFirst(excess) }
    }

    /// Re-derives the fail-open condition of a service and tells the subscribers (unless
    /// `notify` is false).
    private func evaluate(_ key: ServiceKey, notify: Bool = true) {
        let time = now()
        let flipped: Bool? = lock.locked {
            state.withLock { state in
                guard let service = state.services[key] else { return nil }
                state.services[key]!.epoch += 1
                let ready = service.targets.filter(\.value).map(\.key)
                let allUnhealthy =
                    !ready.isEmpty && ready.allSatisfy { state.entries[EntryID(service: key, target: $0)]?.health.state == .unhealthy }
                let active = allUnhealthy && service.check.failOpen
                let was = service.allUnhealthy?.status ?? false
                guard active != was else { return nil }
                let message =
                    active
                    ? "all \(ready.count) addresses are unhealthy; failOpen renders them all ready"
                    : "at least one address is not unhealthy"
                state.services[key]!.allUnhealthy =
                    active ? Condition(type: Condition.allBackendsUnhealthy, status: true, lastTransitionTime: time, message: message) : nil
                append(
                    Event(
                        time: time, target: nil, from: was ? Condition.allBackendsUnhealthy : "", to: active ? Condition.allBackendsUnhealthy : "",
                        message: message),
                    to: key, in: &state)
                return active
            }
        }
        if let flipped {
            if flipped {
                logger.warning("every address is unhealthy: failing open", metadata: ["service": "\(key.namespace)/\(key.name)"])
                observer?.failedOpen(namespace: key.namespace, name: key.name)
            } else {
                logger.notice("fail-open ended", metadata: ["service": "\(key.namespace)/\(key.name)"])
            }
        }
        guard notify else { return }
        for subscriber in subscribers.withLock({ $0 }) { subscriber([key]) }
    }
}

// MARK: - Snapshots (issue 16)

extension HealthChecker {
    /// The stored form of one service's health (JSON): what `restore(_:)` needs to continue.
    private struct Snapshot: Codable {
        struct Address: Codable {
            var ip: String
            var port: Int
            var state: String
            var since: Date
            var lastCheck: Date?
            var lastError: String?
            var consecutive: Int
            var lastSucceeded: Bool
        }
        struct StoredCondition: Codable {
            var type: String
            var status: Bool
            var lastTransitionTime: Date
            var message: String
        }
        struct StoredEvent: Codable {
            var time: Date
            var ip: String?
            var port: Int?
            var from: String
            var to: String
            var message: String?
        }
        /// `HealthChecker.fingerprint(of:)` of the check the addresses were probed with.
        var check: String
        var addresses: [Address]
        var conditions: [StoredCondition]
        var events: [StoredEvent]
    }

    /// Identifies a health check's definition: a snapshot is restored only under the check it
    /// was measured with (a changed check starts its addresses over from `unknown`, as
    /// `update` does). FNV-1a (64 bits) of the check's full description, as hexadecimal; a
    /// binary whose `HealthCheck` differs in shape yields another value, which is the safe side.
    static func fingerprint(of check: HealthCheck) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in String(reflecting: check).utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The health of one service as a JSON document (UTF-8) to store: per probed address
    /// (`ip`, `port`) its `state`, `since`, `lastCheck`, `lastError`, `consecutive` and
    /// `lastSucceeded`; the `allBackendsUnhealthy` condition; the last events; and `check`, the
    /// fingerprint of the health check. Times are Foundation's `Date` as is (seconds since
    /// 2001-01-01T00:00:00Z, a JSON number), so that they come back exactly. nil when the service has
    /// no health check here (deleted, none, or no address to probe): nothing to store.
    public func snapshot(of key: ServiceKey) -> [UInt8]? {
        let snapshot: Snapshot? = lock.locked {
            state.withLock { state in
                guard let service = state.services[key] else { return nil }
                let addresses = service.targets.keys.sorted { ($0.ip, $0.port) < ($1.ip, $1.port) }.compactMap { target -> Snapshot.Address? in
                    guard let entry = state.entries[EntryID(service: key, target: target)], entry.check == service.check else { return nil }
                    let health = entry.health
                    return Snapshot.Address(
                        ip: target.ip, port: target.port, state: health.state.rawValue, since: health.since, lastCheck: health.lastCheck,
                        lastError: health.lastError, consecutive: health.consecutive, lastSucceeded: health.lastSucceeded)
                }
                return Snapshot(
                    check: HealthChecker.fingerprint(of: service.check), addresses: addresses,
                    conditions: service.allUnhealthy.map {
                        [Snapshot.StoredCondition(type: $0.type, status: $0.status, lastTransitionTime: $0.lastTransitionTime, message: $0.message)]
                    } ?? [],
                    events: service.events.map {
                        Snapshot.StoredEvent(time: $0.time, ip: $0.target?.ip, port: $0.target?.port, from: $0.from, to: $0.to, message: $0.message)
                    })
            }
        }
        guard let snapshot else { return nil }
        return StoredSnapshot.encode(snapshot, of: key, what: "health state", logger: logger)
    }

    /// Continues from stored snapshots (a new leader, issue 16): for each service known here
    /// whose health check is the one the snapshot was made under (same fingerprint), the
    /// addresses still probed take their stored state, times, last error and counts, and the
    /// service its stored events and condition. Addresses keep their schedule (each is probed
    /// within its interval, as without a snapshot); addresses not in the snapshot stay as they
    /// are. Snapshots of unknown services, of changed checks, or that cannot be decoded (logged)
    /// are ignored. Returns the services restored. Subscribers are not told (the caller
    /// renders everything afterwards); the readiness epochs change.
    @discardableResult
    public func restore(_ snapshots: [ServiceKey: [UInt8]]) -> Set<ServiceKey> {
        let decoded = StoredSnapshot.decode(Snapshot.self, snapshots, what: "health state", logger: logger)
        let maxEvents = max(1, configuration.maxEventsPerService)
        let restored: Set<ServiceKey> = lock.locked {
            state.withLock { state in
                var restored: Set<ServiceKey> = []
                for (key, snapshot) in decoded {
                    guard var service = state.services[key], snapshot.check == HealthChecker.fingerprint(of: service.check) else { continue }
                    for address in snapshot.addresses {
                        let target = ProbeTarget(ip: address.ip, port: address.port)
                        let id = EntryID(service: key, target: target)
                        guard service.targets[target] != nil, let entry = state.entries[id], entry.check == service.check,
                            let health = HealthState(rawValue: address.state)
                        else { continue }
                        state.entries[id]?.health = AddressHealth(
                            state: health, since: address.since, lastCheck: address.lastCheck, lastError: address.lastError,
                            consecutive: address.consecutive, lastSucceeded: address.lastSucceeded)
                    }
                    service.events = snapshot.events.suffix(maxEvents).map { event in
                        Event(
                            time: event.time, target: event.ip.flatMap { ip in event.port.map { ProbeTarget(ip: ip, port: $0) } }, from: event.from,
                            to: event.to, message: event.message)
                    }
                    service.allUnhealthy = snapshot.conditions.first { $0.type == Condition.allBackendsUnhealthy && $0.status }.map {
                        Condition(type: $0.type, status: $0.status, lastTransitionTime: $0.lastTransitionTime, message: $0.message)
                    }
                    state.services[key] = service
                    restored.insert(key)
                }
                return restored
            }
        }
        // The condition follows the restored states (addresses may have changed since).
        for key in restored { evaluate(key, notify: false) }
        return restored
    }

    /// The services with a health check here (those `snapshot(of:)` describes).
    public var checkedServices: Set<ServiceKey> {
        lock.locked { state.withLock { Set($0.services.keys) } }
    }
}

extension Result where Failure == ProbeFailure {
    var failureValue: ProbeFailure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}

/// NSCondition used as the schedule's lock and wake-up signal.
final class ScheduleLock: @unchecked Sendable {
    // Why @unchecked Sendable is safe: NSCondition is a thread-safe lock and condition variable.
    private let condition = NSCondition()

    func lock() { condition.lock() }
    func unlock() { condition.unlock() }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    func signal() { condition.signal() }
    func broadcast() { condition.broadcast() }

    /// Waits (lock held) until signalled or `instant` (nil: no limit).
    func wait(until instant: ContinuousClock.Instant?) {
        guard let instant else {
            condition.wait()
            return
        }
        let remaining = ContinuousClock.now.duration(to: instant)
        guard remaining > .zero else { return }
        let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
        _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
    }
}
