public import Foundation
public import Logging
public import RegistryCore
public import RegistryStorage
import KubernetesClient
import Synchronization

/// Counters the reconciler reports as it works (the API's metrics implement it).
public protocol ReconcilerObserver: Sendable {
    /// One reconcile of a service in `cluster` ended with `result`: `synced` (nothing to do),
    /// `applied`, `deleted`, `failed` or `conflict`.
    func reconciled(cluster: String, result: String)
    /// A failed reconcile was scheduled again.
    func retried(cluster: String)
}

/// Keeps every bound service's objects in its clusters equal to the rendering, off the request
/// path, as a control loop: a `WorkQueue` of (service, cluster) keys fed by every committed
/// change, by start-up and by a periodic resync, served by a bounded pool of worker threads
/// (at most `clusterConcurrency` per cluster). Pushes, diffs and probes asked by the API run on
/// the same workers and answer through completion callbacks.
///
/// What it decides per key (see `process`):
/// - service exists and is bound to the cluster (or an explicit push names it): apply the
///   rendering when the live objects differ (`ClusterSync.ensure`);
/// - service reached by an explicit push only: compare, report drift, write nothing;
/// - service deleted, or the cluster unbound: delete our objects there (`deleting`), then
///   forget the state. `?cascade=false` on delete forgets the state in the same transaction.
/// Every outcome is persisted (`ReconcileState`) so that status tells what the cluster holds and
/// a restart resumes the work.
public final class Reconciler: Sendable {
    public struct Configuration: Sendable {
        /// Between full resyncs.
        public var resyncInterval: Duration = .seconds(300)
        /// Keys of one cluster processed at once.
        public var clusterConcurrency = 4
        /// Worker threads in total.
        public var workers = 16
        /// Back-off of a failing key: `baseBackoff` doubling to `maxBackoff` (client-go's defaults
        /// for controllers are 5 ms → 1000 s; the registry's are 1 s → 5 min).
        public var baseBackoff: Duration = .seconds(1)
        public var maxBackoff: Duration = .seconds(300)

        public init() {}
    }

    /// A request from the API waiting for the next processing of its key.
    enum Job: Sendable {
        case push(dryRun: Bool, adopt: Bool, completion: @Sendable (SyncResult) -> Void)
        case diff(completion: @Sendable (Result<[FieldDifference], SyncError>) -> Void)
        case probe(completion: @Sendable (Result<String, SyncError>) -> Void)
        /// Waits for the key's next processing to settle (synced, deleted, or a failure that
        /// retrying will not fix).
        case settle(completion: @Sendable (SyncResult) -> Void)

        func fail(_ error: SyncError, cluster: String) {
            switch self {
            case .push(let dryRun, _, let completion): completion(SyncResult(cluster: cluster, error: error, dryRun: dryRun))
            case .settle(let completion): completion(SyncResult(cluster: cluster, error: error))
            case .diff(let completion): completion(.failure(error))
            case .probe(let completion): completion(.failure(error))
            }
        }
    }

    public let store: ServiceStore
    /// The clients by cluster name; replaced as a whole when the kubeconfig is reloaded.
    private let clientTable: Mutex<[String: any ClusterClient]>
    /// The clients now (a snapshot).
    private var clients: [String: any ClusterClient] { clientTable.withLock { $0 } }
    private let configuration: Configuration
    private let logger: Logger
    private let observer: (any ReconcilerObserver)?
    public let queue: WorkQueue
    private let jobs = Mutex<[ReconcileKey: [Job]]>([:])
    private let lastSuccess = Mutex<[String: Date]>([:])
    private let running = Mutex(false)
    private let stopping = Atomic<Bool>(false)
    /// Whether this replica does the background work (issue 16): reconciles of commits, of the
    /// start-up state and of resyncs, and retries. Requests from the API (pushes, diffs, probes,
    /// settles) are served either way.
    private let leading = Atomic<Bool>(false)
    /// Bumped by every `startBackgroundWork()`: a resync timer of an earlier term ends.
    private let term = Atomic<Int>(0)
    private let resyncSignal = Condition()
    private let threads = Mutex<Int>(0)
    private let view = Mutex<(@Sendable (ExternalService) -> ExternalService)?>(nil)

    public init(
        store: ServiceStore, clients: [any ClusterClient], configuration: Configuration = Configuration(), logger: Logger,
        observer: (any ReconcilerObserver)? = nil
    ) {
        self.store = store
        var byName: [String: any ClusterClient] = [:]
        for client in clients { byName[client.name] = client }
        self.clientTable = Mutex(byName)
        self.configuration = configuration
        self.logger = logger
        self.observer = observer
        self.queue = WorkQueue(
            limits: WorkQueue.Limits(
                perCluster: configuration.clusterConcurrency, baseDelay: configuration.baseBackoff, maxDelay: configuration.maxBackoff))
    }

    /// Replaces the clusters (a kubeconfig reload): every bound service and tracked state is
    /// queued again, so added and changed clusters get their objects; keys of a removed cluster
    /// find no client and stop with that status.
    public func replaceClients(_ clients: [any ClusterClient]) {
        var byName: [String: any ClusterClient] = [:]
        for client in clients { byName[client.name] = client }
        clientTable.withLock { $0 = byName }
        if running.withLock({ $0 }) && isLeading { enqueueEverything() }
    }

    /// The clusters it can reach, by name.
    public var clusterNames: [String] { clients.keys.sorted() }

    // MARK: - Life cycle

    /// Starts the workers and the background work (`startWorkers()` then
    /// `startBackgroundWork()`): what a process that alone serves its store does.
    public func start() {
        startWorkers()
        startBackgroundWork()
    }

    /// Starts the worker threads (once) and subscribes to the store's commits: from now on
    /// requests from the API (pushes, diffs, probes, settles) are served. Commits are
    /// reconciled only while the background work runs.
    public func startWorkers() {
        let first = running.withLock { started in
            defer { started = true }
            return !started
        }
        guard first else { return }
        store.onCommit { [weak self] changes in self?.changed(changes) }
        let workers = max(1, min(configuration.workers, max(1, clients.count) * configuration.clusterConcurrency))
        for index in 0..<workers {
            let thread = Thread { [self] in self.work() }
            thread.name = "reconciler-\(index)"
            thread.start()
        }
    }

    /// Starts the background work, on the replica that leads (issue 16): queues every bound
    /// service and tracked state once (resuming where the previous leader stopped, from the
    /// reconcile states in the store), reconciles every later commit, retries failures, and
    /// runs the resync timer. A second call while it runs does nothing; after
    /// `stopBackgroundWork(deadline:)` it starts again.
    public func startBackgroundWork() {
        startWorkers()
        guard !stopping.load(ordering: .sequentiallyConsistent), !leading.exchange(true, ordering: .sequentiallyConsistent) else { return }
        let current = term.add(1, ordering: .sequentiallyConsistent).newValue
        enqueueEverything()
        let timer = Thread { [self] in self.resyncLoop(term: current) }
        timer.name = "reconciler-resync"
        timer.start()
    }

    /// Stops the background work (this replica no longer leads): keys queued for it are dropped
    /// when a worker takes them, the resync timer ends, and reconciles in flight are waited for
    /// up to `deadline`. Requests from the API are still served. Returns false when some
    /// reconciles were still running at the deadline.
    @discardableResult
    public func stopBackgroundWork(deadline: Duration) -> Bool {
        guard leading.exchange(false, ordering: .sequentiallyConsistent) else { return true }
        resyncSignal.locked { resyncSignal.broadcast() }
        return queue.waitUntilIdle(deadline: deadline)
    }

    /// Whether the background work runs (see `startBackgroundWork()`).
    public var isLeading: Bool { leading.load(ordering: .sequentiallyConsistent) && !stopping.load(ordering: .sequentiallyConsistent) }

    /// Stops taking work, lets in-flight reconciles finish within `deadline`, and answers every
    /// waiting request with `shuttingDown`. Returns false when some were still running.
    @discardableResult
    public func shutdown(deadline: Duration) -> Bool {
        stopping.store(true, ordering: .sequentiallyConsistent)
        resyncSignal.locked { resyncSignal.broadcast() }
        queue.shutDown()
        let drained = queue.waitUntilIdle(deadline: deadline)
        let waiting = jobs.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        for (key, list) in waiting { list.forEach { $0.fail(.shuttingDown, cluster: key.cluster) } }
        return drained
    }

    private func work() {
        while let key = queue.get() {
            // Without the background work only keys an API request waits for are processed;
            // the others (commits, retries, resyncs) are the leader's.
            if isLeading || jobs.withLock({ $0[key] != nil }) { process(key) }
            queue.done(key)
        }
    }

    private func resyncLoop(term current: Int) {
        func ended() -> Bool { !isLeading || term.load(ordering: .sequentiallyConsistent) != current }
        while !ended() {
            let wake = ContinuousClock.now.advanced(by: configuration.resyncInterval)
            resyncSignal.locked {
                while ContinuousClock.now < wake, !ended() { resyncSignal.wait(until: wake) }
            }
            guard !ended() else { return }
            resync(until: ended)
        }
    }

    // MARK: - Requests from the API

    /// Pushes one service to `clusters` (explicitly: an unbound cluster gets the objects once,
    /// without being kept afterwards). Each cluster's result arrives through `completion`.
    public func push(
        namespace: String, name: String, clusters: [String], dryRun: Bool, adopt: Bool, completion: @escaping @Sendable (SyncResult) -> Void
    ) {
        for cluster in clusters {
            submit(ReconcileKey(namespace: namespace, name: name, cluster: cluster), .push(dryRun: dryRun, adopt: adopt, completion: completion))
        }
    }

    /// Differences between the rendering and the cluster, read by a worker.
    public func diff(
        namespace: String, name: String, cluster: String, completion: @escaping @Sendable (Result<[FieldDifference], SyncError>) -> Void
    ) {
        submit(ReconcileKey(namespace: namespace, name: name, cluster: cluster), .diff(completion: completion))
    }

    /// Calls `completion` once the service's objects in `cluster` have settled: after its next
    /// processing (an apply, a deletion, or nothing to do), waiting across failures that a retry
    /// may fix (429, 5xx, unreachable). Used to answer a cascading delete.
    public func awaitSettled(namespace: String, name: String, cluster: String, completion: @escaping @Sendable (SyncResult) -> Void) {
        submit(ReconcileKey(namespace: namespace, name: name, cluster: cluster), .settle(completion: completion))
    }

    /// The clusters where a service's objects are tracked (bound, pushed, or being deleted).
    public func trackedClusters(namespace: String, name: String) throws(StoreError) -> [String] {
        try store.reconcileStates(namespace: namespace, name: name).map(\.cluster).filter { clients[$0] != nil }
    }

    /// The cluster's version, read by a worker of that cluster.
    public func probe(cluster: String, completion: @escaping @Sendable (Result<String, SyncError>) -> Void) {
        submit(ReconcileKey(namespace: "", name: "", cluster: cluster), .probe(completion: completion))
    }

    private func submit(_ key: ReconcileKey, _ job: Job) {
        guard clients[key.cluster] != nil else {
            job.fail(.unknownCluster(key.cluster), cluster: key.cluster)
            return
        }
        guard !stopping.load(ordering: .sequentiallyConsistent) else {
            job.fail(.shuttingDown, cluster: key.cluster)
            return
        }
        jobs.withLock { $0[key, default: []].append(job) }
        queue.add(key)
    }

    // MARK: - Triggers

    /// Sets what the clusters are given for a registration instead of the registration itself:
    /// Liveness replaces each address's `ready` with its effective readiness (issue 13).
    public func setEffectiveView(_ transform: @escaping @Sendable (ExternalService) -> ExternalService) {
        view.withLock { $0 = transform }
    }

    /// The service as rendered to clusters (see `setEffectiveView`).
    func rendered(_ service: ExternalService) -> ExternalService {
        guard let transform = view.withLock({ $0 }) else { return service }
        return transform(service)
    }

    /// The effective rendering of these services changed without a new revision (an address's
    /// health): queues them for every bound cluster. The reconcile states keep their phase; the
    /// queue coalesces repeated triggers.
    public func effectiveChanged(_ keys: [ServiceKey]) {
        guard isLeading else { return }
        for serviceKey in keys {
            do {
                guard let record = try store.record(namespace: serviceKey.namespace, name: serviceKey.name) else { continue }
                for cluster in record.service.clusters where clients[cluster] != nil {
                    queue.add(ReconcileKey(namespace: serviceKey.namespace, name: serviceKey.name, cluster: cluster))
                }
            } catch {
                logger.error(
                    "could not queue the reconcile of a health change",
                    metadata: ["service": "\(serviceKey.namespace)/\(serviceKey.name)", "error": "\(error)"])
            }
        }
    }

    /// After a commit: every cluster the services are bound to, or were bound to. Uses the
    /// committed records as handed over by the store (no read back); with no reachable cluster
    /// there is nothing to track and nothing is read or written.
    private func changed(_ changes: [ServiceChange]) {
        let clients = self.clients
        guard !clients.isEmpty, isLeading else { return }
        var updates: [ReconcileState] = []
        var queued: [ReconcileKey] = []
        for change in changes {
            let serviceKey = change.key
            let record = change.record
            do {
                let states = try store.reconcileStates(namespace: serviceKey.namespace, name: serviceKey.name)
                let bound = Set(record?.service.clusters ?? [])
                var targets = bound
                for state in states where record == nil || state.source == .binding { targets.insert(state.cluster) }
                for cluster in targets.sorted() where clients[cluster] != nil {
                    let key = ReconcileKey(namespace: serviceKey.namespace, name: serviceKey.name, cluster: cluster)
                    var state =
                        states.first { $0.cluster == cluster }
                        ?? ReconcileState(namespace: key.namespace, name: key.name, cluster: cluster, state: .pending)
                    if let record, bound.contains(cluster) {
                        state.source = .binding
                        if state.uid != record.uid || state.revision != record.revision { state.state = .pending }
                    } else {
                        state.state = .deleting
                    }
                    updates.append(state)
                    queued.append(key)
                }
            } catch {
                logger.error(
                    "could not queue the reconcile of a change",
                    metadata: ["service": "\(serviceKey.namespace)/\(serviceKey.name)", "error": "\(error)"])
            }
        }
        do {
            try store.saveReconcileStates(updates)
        } catch {
            logger.error("could not save reconcile state", metadata: ["error": "\(error)"])
        }
        for key in queued {
            queue.forget(key)
            queue.add(key)
        }
    }

    /// At start-up: every bound service in every cluster, and every tracked state (to resume
    /// deletions and retries).
    private func enqueueEverything() {
        do {
            let states = try store.allReconcileStates()
            var tracked = Set<ReconcileKey>()
            for state in states where clients[state.cluster] != nil {
                let key = ReconcileKey(namespace: state.namespace, name: state.name, cluster: state.cluster)
                tracked.insert(key)
                queue.add(key)
            }
            var missing: [ReconcileState] = []
            var bound: [ReconcileKey] = []
            for record in try store.allRecords() {
                for cluster in record.service.clusters where clients[cluster] != nil {
                    let key = ReconcileKey(namespace: record.service.namespace, name: record.service.name, cluster: cluster)
                    if !tracked.contains(key) {
                        missing.append(ReconcileState(namespace: key.namespace, name: key.name, cluster: cluster, state: .pending))
                    }
                    bound.append(key)
                }
            }
            try store.saveReconcileStates(missing)
            bound.forEach(queue.add)
        } catch {
            logger.error("could not queue the start-up reconcile", metadata: ["error": "\(error)"])
        }
    }

    /// Compares every bound service's live objects with its rendering, with three LIST calls
    /// per namespace and cluster (Services and Endpoints by `app.kubernetes.io/managed-by`,
    /// slices by `endpointslice.kubernetes.io/managed-by`), queues the ones that differ
    /// (`drifted`) and stamps `lastSyncTime` on the others.
    public func resync() { resync(until: { false }) }

    /// A resync pass that ends early, between namespaces, once `ended` holds (the background
    /// work stopped).
    private func resync(until ended: () -> Bool) {
        let records: [ServiceRecord]
        let states: [ReconcileState]
        do {
            records = try store.allRecords()
            states = try store.allReconcileStates()
        } catch {
            logger.error("resync could not read the registry", metadata: ["error": "\(error)"])
            return
        }
        var stateByKey: [ReconcileKey: ReconcileState] = [:]
        for state in states { stateByKey[ReconcileKey(namespace: state.namespace, name: state.name, cluster: state.cluster)] = state }
        let now = ServiceStore.rfc3339(Date())
        for clusterName in clusterNames {
            guard let client = clients[clusterName] else { continue }
            let bound = records.filter { $0.service.clusters.contains(clusterName) }
            let boundNames = Set(bound.map { "\($0.service.namespace)/\($0.service.name)" })
            var namespaces = Set(bound.map(\.service.namespace))
            for state in states where state.cluster == clusterName { namespaces.insert(state.namespace) }
            var insync: [ReconcileKey] = []
            var clusterFailed = false
            for namespace in namespaces.sorted() {
                if stopping.load(ordering: .sequentiallyConsistent) || ended() { return }
                var live: [String: [JSONValue]] = [:]
                do {
                    for kind in [ResourceKind.service, .endpoints, .endpointSlice] {
                        for object in try client.list(kind, namespace: namespace, labelSelector: Ownership.selector(forKind: kind.rawValue)) {
                            let owner =
                                kind == .endpointSlice ? LiveObject.labels(object)["kubernetes.io/service-name"] ?? "" : LiveObject.name(object)
                            live[owner, default: []].append(object)
                        }
                    }
                } catch {
                    clusterFailed = true
                    logger.warning(
                        "resync could not list objects",
                        metadata: [
                            "cluster": "\(clusterName)", "namespace": "\(namespace)", "reason": "\(SyncError.kubernetes(error).reason)",
                            "error": "\(error)",
                        ])
                    continue
                }
                for record in bound where record.service.namespace == namespace {
                    let key = ReconcileKey(namespace: namespace, name: record.service.name, cluster: clusterName)
                    let state = stateByKey[key]
                    if queue.isWaiting(key) || state?.state == .failing { continue }
                    let differences = LiveComparison.compare(
                        rendering: ManifestRenderer.render(rendered(record.service)).objects, live: live[record.service.name] ?? [])
                    if differences.isEmpty, let state, state.uid == record.uid, state.revision == record.revision {
                        insync.append(key)
                        continue
                    }
                    var updated = state ?? ReconcileState(namespace: namespace, name: record.service.name, cluster: clusterName, state: .pending)
                    updated.state = updated.uid == record.uid && updated.revision == record.revision ? .drifted : .pending
                    if !differences.isEmpty {
                        logger.notice(
                            "drift found",
                            metadata: [
                                "cluster": "\(clusterName)", "service": "\(namespace)/\(record.service.name)", "differences": "\(differences.count)",
                                "first": "\(differences[0].object) \(differences[0].field)",
                            ])
                    }
                    do { try store.saveReconcileState(updated) } catch {
                        logger.error("could not save reconcile state", metadata: ["error": "\(error)"])
                    }
                    queue.add(key)
                }
                for state in states
                where state.cluster == clusterName && state.namespace == namespace && state.source == .binding
                    && !boundNames.contains("\(state.namespace)/\(state.name)")
                {
                    queue.add(ReconcileKey(namespace: state.namespace, name: state.name, cluster: clusterName))
                }
            }
            do {
                try store.markSynced(insync.map { ($0.namespace, $0.name, $0.cluster) }, at: now)
            } catch {
                logger.error("could not save reconcile state", metadata: ["error": "\(error)"])
            }
            if !clusterFailed { lastSuccess.withLock { $0[clusterName] = Date() } }
        }
    }

    // MARK: - Processing one key

    private func takeJobs(_ key: ReconcileKey) -> [Job] {
        jobs.withLock { $0.removeValue(forKey: key) ?? [] }
    }

    func process(_ key: ReconcileKey) {
        let pending = takeJobs(key)
        guard let client = clients[key.cluster] else {
            pending.forEach { $0.fail(.unknownCluster(key.cluster), cluster: key.cluster) }
            return
        }
        if key.name.isEmpty {
            for case .probe(let completion) in pending {
                do { completion(.success(try client.version())) } catch { completion(.failure(.kubernetes(error))) }
            }
            return
        }
        let record: ServiceRecord?
        let state: ReconcileState?
        do {
            record = try store.record(namespace: key.namespace, name: key.name)
            state = try store.reconcileStates(namespace: key.namespace, name: key.name).first { $0.cluster == key.cluster }
        } catch {
            pending.forEach { $0.fail(.store("\(error)"), cluster: key.cluster) }
            queue.addRateLimited(key)
            return
        }
        // Read-only requests first: diffs and dry runs.
        var waiters: [(adopt: Bool, real: Bool, completion: @Sendable (SyncResult) -> Void)] = []
        for job in pending {
            switch job {
            case .diff(let completion):
                guard let record else {
                    completion(.failure(.serviceGone("\(key.namespace)/\(key.name)")))
                    continue
                }
                do { completion(.success(try ClusterSync.diff(rendered(record.service), client: client))) } catch {
                    completion(.failure(.kubernetes(error)))
                }
            case .push(dryRun: true, let adopt, let completion):
                guard let record else {
                    completion(SyncResult(cluster: key.cluster, error: .serviceGone("\(key.namespace)/\(key.name)"), dryRun: true))
                    continue
                }
                completion(ClusterSync.ensure(rendered(record.service), client: client, adopt: adopt, dryRun: true))
            case .push(dryRun: false, let adopt, let completion):
                waiters.append((adopt, true, completion))
            case .settle(let completion):
                waiters.append((false, false, completion))
            case .probe(let completion):
                completion(.failure(.unknownCluster(key.cluster)))
            }
        }
        let realPush = waiters.contains { $0.real }
        let bound = record?.service.clusters.contains(key.cluster) ?? false
        let result: SyncResult
        if let record, bound || realPush {
            let source: ReconcileState.Source = bound ? .binding : .push
            var previous = state
            var trackingError: SyncError?
            // A first push is tracked before it applies anything: a delete of the service while
            // it runs then waits for it and has its objects deleted (or, `cascade=false`,
            // forgets it), instead of not knowing of objects that appear after it answered.
            if previous == nil {
                let tracking = ReconcileState(
                    namespace: key.namespace, name: key.name, cluster: key.cluster, source: source, state: .pending, uid: record.uid,
                    revision: record.revision)
                do {
                    if try store.saveReconcileState(tracking, whileServiceHasUID: record.uid) {
                        previous = tracking
                    } else {
                        trackingError = .serviceGone("\(key.namespace)/\(key.name)")
                    }
                } catch {
                    trackingError = .store("\(error)")
                }
            }
            if let trackingError, !bound {
                result = SyncResult(cluster: key.cluster, error: trackingError)
            } else {
                result = ClusterSync.ensure(rendered(record.service), client: client, adopt: waiters.contains { $0.adopt }, dryRun: false)
                settle(key, record: record, previous: previous, source: source, result: result)
            }
        } else if let record, let state, state.source == .push, state.state != .deleting, state.uid.isEmpty || state.uid == record.uid {
            result = observe(key, record: record, state: state, client: client)
        } else if let state {
            // The service is gone, unbound, or its pushed objects belong to a registration that
            // was deleted (and maybe created again under the same name): they are deleted.
            result = remove(key, state: state, client: client)
        } else {
            result = SyncResult(cluster: key.cluster, error: record == nil && realPush ? .serviceGone("\(key.namespace)/\(key.name)") : nil)
        }
        // A failure that a retry may fix keeps the requests waiting for the retry (their own
        // deadline answers them meanwhile); others get the result now.
        if let error = result.error, error.retryable, !stopping.load(ordering: .sequentiallyConsistent) {
            jobs.withLock { pending in
                for waiter in waiters {
                    pending[key, default: []].append(
                        waiter.real
                            ? .push(dryRun: false, adopt: waiter.adopt, completion: waiter.completion) : .settle(completion: waiter.completion))
                }
            }
        } else {
            waiters.forEach { $0.completion(result) }
        }
    }

    /// Records the outcome of an apply, schedules a retry on failure, logs and counts it.
    private func settle(_ key: ReconcileKey, record: ServiceRecord, previous: ReconcileState?, source: ReconcileState.Source, result: SyncResult) {
        var state = previous ?? ReconcileState(namespace: key.namespace, name: key.name, cluster: key.cluster, state: .pending)
        if state.source == .push || previous == nil { state.source = source }
        if result.succeeded {
            state.state = .synced
            state.uid = record.uid
            state.revision = record.revision
            state.lastSyncTime = ServiceStore.rfc3339(Date())
            state.lastError = nil
            state.attempts = 0
            state.nextAttemptTime = nil
            queue.forget(key)
            lastSuccess.withLock { $0[key.cluster] = Date() }
            observer?.reconciled(cluster: key.cluster, result: result.changed ? "applied" : "synced")
            if result.changed {
                logger.info(
                    "reconciled",
                    metadata: [
                        "cluster": "\(key.cluster)", "service": "\(key.namespace)/\(key.name)", "revision": "\(record.revision)",
                        "objects":
                            "\(result.objects.filter { $0.action != .unchanged }.map { "\($0.kind)/\($0.name):\($0.action.rawValue)" }.joined(separator: ","))",
                    ])
            }
        } else {
            let error = result.error ?? .conflict(result.objects.compactMap(\.error).joined(separator: "; "))
            fail(key, state: &state, error: error, object: result.objects.first { $0.error != nil }.map { "\($0.kind)/\(key.namespace)/\($0.name)" })
            observer?.reconciled(cluster: key.cluster, result: error.reason == "Conflict" ? "conflict" : "failed")
        }
        // Only while the registration applied is still the stored one: if it was deleted
        // meanwhile, its deletion decides (its state was marked for deleting the objects, or
        // forgotten with `cascade=false`), and this apply leaves nothing behind.
        do {
            if try !store.saveReconcileState(state, whileServiceHasUID: record.uid) {
                logger.info(
                    "apply finished after its service was deleted or created again; no state kept",
                    metadata: ["cluster": "\(key.cluster)", "service": "\(key.namespace)/\(key.name)", "uid": "\(record.uid)"])
            }
        } catch {
            logger.error(
                "could not save reconcile state",
                metadata: ["cluster": "\(state.cluster)", "service": "\(state.namespace)/\(state.name)", "error": "\(error)"])
        }
    }

    private func fail(_ key: ReconcileKey, state: inout ReconcileState, error: SyncError, object: String?) {
        state.attempts += 1
        if state.state != .deleting { state.state = .failing }
        state.lastError = error.problem
        let delay = queue.addRateLimited(key, retryAfter: error.retryAfter)
        let next = Date().addingTimeInterval(Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
        state.nextAttemptTime = ServiceStore.rfc3339(next)
        observer?.retried(cluster: key.cluster)
        logger.warning(
            "apply failed; retrying",
            metadata: [
                "cluster": "\(key.cluster)", "object": "\(object ?? "Service/\(key.namespace)/\(key.name)")", "reason": "\(error.reason)",
                "message": "\(error.message)", "attempt": "\(state.attempts)", "nextRetry": "\(state.nextAttemptTime ?? "")",
            ])
    }

    /// A service reached only by an explicit push: tell whether the cluster still matches.
    private func observe(_ key: ReconcileKey, record: ServiceRecord, state: ReconcileState, client: any ClusterClient) -> SyncResult {
        var updated = state
        var result = SyncResult(cluster: key.cluster)
        do {
            let differences = try ClusterSync.diff(rendered(record.service), client: client)
            if differences.isEmpty {
                updated.state = .synced
                updated.lastSyncTime = ServiceStore.rfc3339(Date())
                updated.lastError = nil
                updated.attempts = 0
                updated.nextAttemptTime = nil
            } else {
                updated.state = .drifted
            }
        } catch {
            updated.lastError = SyncError.kubernetes(error).problem
            result.error = .kubernetes(error)
        }
        save(updated)
        return result
    }

    /// Deletes our objects (service deleted, or cluster unbound); forgets the state when done.
    private func remove(_ key: ReconcileKey, state: ReconcileState, client: any ClusterClient) -> SyncResult {
        var updated = state
        updated.state = .deleting
        let result = ClusterSync.remove(namespace: key.namespace, name: key.name, client: client)
        if result.succeeded {
            do {
                try store.forgetReconcileState(namespace: key.namespace, name: key.name, cluster: key.cluster)
            } catch {
                logger.error("could not forget reconcile state", metadata: ["error": "\(error)"])
            }
            queue.forget(key)
            observer?.reconciled(cluster: key.cluster, result: "deleted")
            logger.info("objects deleted", metadata: ["cluster": "\(key.cluster)", "service": "\(key.namespace)/\(key.name)"])
            return result
        }
        let error = result.error ?? .conflict("could not delete")
        fail(key, state: &updated, error: error, object: result.objects.first { $0.error != nil }.map { "\($0.kind)/\(key.namespace)/\($0.name)" })
        observer?.reconciled(cluster: key.cluster, result: "failed")
        save(updated)
        return result
    }

    private func save(_ state: ReconcileState) {
        do {
            try store.saveReconcileState(state)
        } catch {
            logger.error(
                "could not save reconcile state",
                metadata: ["cluster": "\(state.cluster)", "service": "\(state.namespace)/\(state.name)", "error": "\(error)"])
        }
    }

    // MARK: - Status

    /// Gauges for metrics: per cluster, services not synced and the last successful sync.
    public struct ClusterSummary: Sendable {
        public var cluster: String
        public var counts: [ReconcileState.Phase: Int]
        public var notSynced: [ReconcileState]
        public var lastSuccessfulSync: Date?
    }

    /// Counts per state and the services not synced, for one cluster.
    public func summary(cluster: String) throws(StoreError) -> ClusterSummary {
        let states = try store.reconcileStates(cluster: cluster)
        var counts: [ReconcileState.Phase: Int] = [:]
        for phase in ReconcileState.Phase.allCases { counts[phase] = 0 }
        for state in states { counts[state.state, default: 0] += 1 }
        return ClusterSummary(
            cluster: cluster, counts: counts, notSynced: states.filter { $0.state != .synced },
            lastSuccessfulSync: lastSuccess.withLock { $0[cluster] })
    }
}
