import Foundation
import KubernetesClient
import Logging
import Reconciler
import RegistryCore
import RegistryResources
import RegistryStorage
import Synchronization
import Testing

func makeStore(path: String? = nil) throws -> ServiceStore {
    let file = path ?? FileManager.default.temporaryDirectory.appending(path: "reconciler-\(UUID().uuidString).sqlite").path()
    return try ServiceStore(path: file, durability: .normal, migrations: try Migration.parse(RegistryResources.migrations))
}

func quietLogger() -> Logger {
    var logger = Logger(label: "reconciler-test")
    logger.logLevel = .critical
    return logger
}

func service(
    _ name: String = "rgw", clusters: [String] = ["test"], mode: EndpointsMode = .endpointslices, type: ServiceType = .clusterIP
) -> ExternalService {
    var service = ExternalService(
        namespace: "storage", name: name, description: "S3", labels: ["app": "ceph"], type: type, ports: [ServicePort(port: 80)],
        addresses: [EndpointAddress(ip: "192.0.2.10", port: 8080), EndpointAddress(ip: "192.0.2.11", port: 8080)], endpointsMode: mode,
        clusters: clusters)
    service.normalize()
    return service
}

/// Polls `condition` every 10 ms for up to `seconds` (a liveness bound, not a speed claim).
func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return try condition()
}

func configuration(resync: Duration = .seconds(300)) -> Reconciler.Configuration {
    var configuration = Reconciler.Configuration()
    configuration.resyncInterval = resync
    configuration.baseBackoff = .milliseconds(50)
    configuration.maxBackoff = .milliseconds(400)
    configuration.workers = 4
    return configuration
}

@Suite struct WorkQueueTests {
    @Test func coalescesAndNeverHandsOutAKeyTwiceAtOnce() {
        let queue = WorkQueue()
        let key = ReconcileKey(namespace: "a", name: "b", cluster: "c")
        queue.add(key)
        queue.add(key)
        #expect(queue.depth == 1)
        #expect(queue.get() == key)
        // Added while processing: not handed out now, queued once when done.
        queue.add(key)
        queue.add(key)
        #expect(queue.depth == 0)
        queue.done(key)
        #expect(queue.depth == 1)
        #expect(queue.get() == key)
        queue.done(key)
        #expect(queue.depth == 0)
    }

    @Test func boundsTheKeysOfOneClusterInFlight() {
        let queue = WorkQueue(limits: WorkQueue.Limits(perCluster: 1))
        let slow1 = ReconcileKey(namespace: "a", name: "1", cluster: "slow")
        let slow2 = ReconcileKey(namespace: "a", name: "2", cluster: "slow")
        let fast = ReconcileKey(namespace: "a", name: "3", cluster: "fast")
        queue.add(slow1)
        queue.add(slow2)
        queue.add(fast)
        #expect(queue.get() == slow1)
        // slow2 waits for slow1; the other cluster's key goes ahead.
        #expect(queue.get() == fast)
        queue.done(slow1)
        #expect(queue.get() == slow2)
    }

    @Test func backsOffExponentiallyUpToTheMaximumAndHonoursRetryAfter() {
        let queue = WorkQueue(limits: WorkQueue.Limits(baseDelay: .seconds(1), maxDelay: .seconds(300)))
        let key = ReconcileKey(namespace: "a", name: "b", cluster: "c")
        var delays: [Duration] = []
        for _ in 0..<12 { delays.append(queue.addRateLimited(key)) }
        #expect(delays[0] >= .seconds(1) && delays[0] <= .milliseconds(1100))
        #expect(delays[1] >= .seconds(2) && delays[1] <= .milliseconds(2200))
        #expect(delays[3] >= .seconds(8) && delays[3] <= .milliseconds(8800))
        #expect(delays[11] == .seconds(300))
        queue.forget(key)
        #expect(queue.addRateLimited(key, retryAfter: .seconds(30)) == .seconds(30))
        #expect(queue.failures(key) == 1)
    }
}

@Suite(.serialized) struct ReconcilerTests {
    let store: ServiceStore
    let cluster = InMemoryCluster()

    init() throws {
        store = try makeStore()
    }

    func state(_ name: String = "rgw") throws -> ReconcileState? {
        try store.reconcileStates(namespace: "storage", name: name).first { $0.cluster == "test" }
    }

    func reconciler(resync: Duration = .seconds(300)) -> Reconciler {
        Reconciler(store: store, clients: [cluster], configuration: configuration(resync: resync), logger: quietLogger())
    }

    @Test func aBoundServiceAppearsAndGoesFromPendingToSynced() throws {
        cluster.setHang(true)
        let reconciler = reconciler()
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        let record = try store.create(service()).record
        #expect(try state()?.state == .pending)
        cluster.setHang(false)
        #expect(try eventually { try state()?.state == .synced })
        #expect(try state()?.revision == record.revision)
        #expect(try state()?.lastSyncTime != nil)
        #expect(cluster.object(.service, "storage", "rgw") != nil)
        #expect(cluster.keys.contains { $0.hasPrefix("EndpointSlice/storage/rgw-ipv4-") })
        // Nothing to change: a second reconcile only reads.
        cluster.resetRequests()
        reconciler.resync()
        #expect(cluster.requests.allSatisfy { $0.hasPrefix("LIST ") })
        #expect(cluster.requests.count == 3)
    }

    /// Workers without the background work (a follower, issue 16): commits are not reconciled,
    /// an explicit push is; once the background work starts, the start-up pass applies what is
    /// bound; stopped, later commits wait; started again, they are applied.
    @Test func backgroundWorkStopsAndStartsAgain() throws {
        let reconciler = reconciler()
        reconciler.startWorkers()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        #expect(!reconciler.isLeading)
        _ = try store.create(service())
        Thread.sleep(forTimeInterval: 0.3)
        #expect(cluster.object(.service, "storage", "rgw") == nil)
        let pushed = Mutex<SyncResult?>(nil)
        reconciler.push(namespace: "storage", name: "rgw", clusters: ["test"], dryRun: false, adopt: false) { result in
            pushed.withLock { $0 = result }
        }
        #expect(eventually { pushed.withLock { $0 } != nil })
        #expect(pushed.withLock { $0?.succeeded } == true)
        #expect(cluster.object(.service, "storage", "rgw") != nil)

        reconciler.startBackgroundWork()
        #expect(reconciler.isLeading)
        #expect(reconciler.stopBackgroundWork(deadline: .seconds(5)))
        _ = try store.create(service("rgw2"))
        Thread.sleep(forTimeInterval: 0.3)
        #expect(cluster.object(.service, "storage", "rgw2") == nil)
        reconciler.startBackgroundWork()
        #expect(eventually { cluster.object(.service, "storage", "rgw2") != nil })
    }

    @Test func driftIsRepairedWithinOneResync() throws {
        let reconciler = reconciler(resync: .milliseconds(300))
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        _ = try store.create(service())
        #expect(try eventually { try state()?.state == .synced })
        let slice = try #require(cluster.keys.first { $0.hasPrefix("EndpointSlice/") })
        let sliceName = String(slice.split(separator: "/")[2])
        // Deleted slice.
        cluster.remove(.endpointSlice, "storage", sliceName)
        #expect(eventually { cluster.object(.endpointSlice, "storage", sliceName) != nil })
        // Edited label on the Service.
        var edited = try #require(cluster.object(.service, "storage", "rgw"))
        edited = MergePatch.apply(
            .object(JSONObject([("metadata", .object(JSONObject([("labels", .object(JSONObject([("app", .string("other"))])))])))])), to: edited)
        cluster.put(edited)
        #expect(eventually { LiveObject.labels(cluster.object(.service, "storage", "rgw")!)["app"] == "ceph" })
        // Edited address.
        let live = try #require(cluster.object(.endpointSlice, "storage", sliceName))
        cluster.put(MergePatch.apply(.object(JSONObject([("endpoints", .array([]))])), to: live))
        #expect(
            eventually {
                guard case .object(let root)? = cluster.object(.endpointSlice, "storage", sliceName), case .array(let endpoints)? = root["endpoints"]
                else { return false }
                return endpoints.count == 2
            })
        #expect(try eventually { try state()?.state == .synced })
    }

    @Test func aResyncMarksDriftThenTheRepairSyncs() throws {
        let reconciler = reconciler()
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        _ = try store.create(service())
        #expect(try eventually { try state()?.state == .synced })
        let slice = try #require(cluster.keys.first { $0.hasPrefix("EndpointSlice/") })
        cluster.remove(.endpointSlice, "storage", String(slice.split(separator: "/")[2]))
        cluster.hangRequests(startingWith: "APPLY")
        reconciler.resync()
        #expect(try state()?.state == .drifted)
        cluster.hangRequests(startingWith: nil)
        #expect(try eventually { try state()?.state == .synced })
        #expect(cluster.keys.contains(slice))
    }

    @Test func failingCarriesTheAPIServersReasonAndRecovers() throws {
        cluster.fail(KubeStatus(code: 403, reason: "Forbidden", message: "services is forbidden: User \"x\" cannot patch resource \"services\""))
        let reconciler = reconciler()
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        _ = try store.create(service())
        #expect(try eventually { try state()?.state == .failing })
        let failing = try #require(try state())
        #expect(failing.attempts >= 1)
        #expect(failing.nextAttemptTime != nil)
        guard case .object(let problem)? = failing.lastError else {
            Issue.record("no lastError")
            return
        }
        #expect(problem["reason"] == .string("Forbidden"))
        #expect(problem["code"] == .integer(403))
        cluster.fail(nil)
        #expect(try eventually { try state()?.state == .synced })
        #expect(try state()?.attempts == 0)
    }

    @Test func mirroredSlicesAreNeitherDeletedNorDrift() throws {
        let reconciler = reconciler()
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        _ = try store.create(service(mode: .endpoints))
        #expect(try eventually { try state()?.state == .synced })
        // What the mirroring controller makes from our Endpoints: every label, its own manager.
        let mirrored = try JSONParser.parse(
            Array(
                """
                {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": "rgw-abcde", "namespace": "storage", "labels": {"app": "ceph",
                   "app.kubernetes.io/managed-by": "endpoint-registry", "kubernetes.io/service-name": "rgw",
                   "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}},
                 "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.10"]}], "ports": [{"name": "", "port": 8080, "protocol": "TCP"}]}
                """.utf8))
        cluster.put(mirrored)
        reconciler.resync()
        #expect(try eventually { try state()?.state == .synced })
        _ = try store.update(namespace: "storage", name: "rgw") { current in
            var changed = current!.service
            changed.description = "changed"
            return changed
        }
        #expect(try eventually { try state()?.state == .synced && state()?.revision == 2 })
        #expect(cluster.object(.endpointSlice, "storage", "rgw-abcde") != nil)
        #expect(!cluster.requests.contains("DELETE EndpointSlice/storage/rgw-abcde"))
    }

    @Test func aModeSwitchDeletesTheKindNoLongerRendered() throws {
        let reconciler = reconciler()
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        _ = try store.create(service(mode: .endpoints))
        #expect(try eventually { try state()?.state == .synced })
        #expect(cluster.object(.endpoints, "storage", "rgw") != nil)
        _ = try store.update(namespace: "storage", name: "rgw") { current in
            var changed = current!.service
            changed.endpointsMode = .endpointslices
            return changed
        }
        #expect(eventually { cluster.object(.endpoints, "storage", "rgw") == nil })
        #expect(cluster.keys.contains { $0.hasPrefix("EndpointSlice/storage/rgw-") })
        _ = try store.update(namespace: "storage", name: "rgw") { current in
            var changed = current!.service
            changed.endpointsMode = .endpoints
            return changed
        }
        #expect(eventually { cluster.object(.endpoints, "storage", "rgw") != nil && !cluster.keys.contains { $0.hasPrefix("EndpointSlice/") } })
    }

    @Test func clusterIPToHeadlessIsRecreated() throws {
        let reconciler = reconciler()
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        _ = try store.create(service())
        #expect(try eventually { try state()?.state == .synced })
        #expect(cluster.object(.service, "storage", "rgw").flatMap(LiveObject.clusterIP) != "None")
        _ = try store.update(namespace: "storage", name: "rgw") { current in
            var changed = current!.service
            changed.type = .headless
            return changed
        }
        #expect(try eventually { try state()?.state == .synced && state()?.revision == 2 })
        #expect(cluster.object(.service, "storage", "rgw").flatMap(LiveObject.clusterIP) == "None")
        #expect(cluster.requests.contains("DELETE Service/storage/rgw"))
        // And back, reported as such through a push.
        _ = try store.update(namespace: "storage", name: "rgw") { current in
            var changed = current!.service
            changed.type = .clusterIP
            changed.clusters = []
            return changed
        }
        #expect(eventually { cluster.object(.service, "storage", "rgw") == nil })
        cluster.put(
            try JSONParser.parse(
                Array(
                    #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"rgw","namespace":"storage","labels":{"app.kubernetes.io/managed-by":"endpoint-registry"}},"spec":{"type":"ClusterIP","clusterIP":"None"}}"#
                        .utf8)))
        let results = Mutex<[SyncResult]>([])
        reconciler.push(namespace: "storage", name: "rgw", clusters: ["test"], dryRun: false, adopt: false) { result in
            results.withLock { $0.append(result) }
        }
        #expect(eventually { results.withLock { !$0.isEmpty } })
        let result = try #require(results.withLock { $0.first })
        #expect(result.succeeded)
        #expect(result.objects.first { $0.kind == "Service" }?.action == .recreated)
    }

    @Test func adoptingAServiceWithASelectorRemovesTheSelectorAndWithoutAdoptItIsAConflict() throws {
        cluster.put(
            try JSONParser.parse(
                Array(
                    #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"rgw","namespace":"storage"},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.7","selector":{"app":"rgw"},"ports":[{"port":80}]}}"#
                        .utf8)))
        let reconciler = reconciler()
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        _ = try store.create(service())
        #expect(try eventually { try state()?.state == .failing })
        guard case .object(let problem)? = try state()?.lastError, case .string(let detail)? = problem["detail"] else {
            Issue.record("no lastError")
            return
        }
        #expect(problem["reason"] == .string("Conflict"))
        #expect(detail.contains("selector (app=rgw)"))
        #expect(detail.contains("endpoints controller"))
        let result = Mutex<SyncResult?>(nil)
        reconciler.push(namespace: "storage", name: "rgw", clusters: ["test"], dryRun: false, adopt: true) { outcome in
            result.withLock { $0 = outcome }
        }
        #expect(eventually { result.withLock { $0 != nil } })
        let adopted = try #require(result.withLock { $0 })
        #expect(adopted.succeeded)
        #expect(adopted.objects.first { $0.kind == "Service" }?.warnings.contains { $0.contains("removed spec.selector (app=rgw)") } == true)
        let live = try #require(cluster.object(.service, "storage", "rgw"))
        #expect(LiveObject.selector(live) == nil)
        #expect(Ownership.isOurs(live))
        #expect(try eventually { try state()?.state == .synced })
    }

    @Test func unbindingAndDeletingRemoveOurObjectsAndCascadeFalseKeepsThem() throws {
        let reconciler = reconciler()
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        _ = try store.create(service("one"))
        _ = try store.create(service("two"))
        _ = try store.create(service("three"))
        #expect(try eventually { try state("one")?.state == .synced && state("two")?.state == .synced && state("three")?.state == .synced })
        _ = try store.update(namespace: "storage", name: "one") { current in
            var changed = current!.service
            changed.clusters = []
            return changed
        }
        try store.delete(namespace: "storage", name: "two")
        try store.delete(namespace: "storage", name: "three", keepClusterObjects: true)
        #expect(eventually { !cluster.keys.contains { $0.contains("/storage/one") || $0.contains("/storage/two") } })
        #expect(try eventually { try state("one") == nil && state("two") == nil })
        #expect(cluster.object(.service, "storage", "three") != nil)
        #expect(try state("three") == nil)
    }

    @Test func aRestartResumesPendingWork() throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "reconciler-restart-\(UUID().uuidString).sqlite").path()
        let first = try makeStore(path: path)
        cluster.setHang(true)
        let stopped = Reconciler(store: first, clients: [cluster], configuration: configuration(), logger: quietLogger())
        stopped.start()
        _ = try first.create(service())
        #expect(try first.reconcileStates(namespace: "storage", name: "rgw").first?.state == .pending)
        // The process stops while its worker is stuck on the cluster.
        #expect(eventually { !cluster.requests.isEmpty })
        #expect(!stopped.shutdown(deadline: .milliseconds(100)))
        // A new process on the same database picks the pending work up.
        let healthy = InMemoryCluster()
        let second = try makeStore(path: path)
        let resumed = Reconciler(store: second, clients: [healthy], configuration: configuration(), logger: quietLogger())
        resumed.start()
        defer { resumed.shutdown(deadline: .seconds(5)) }
        #expect(try eventually { try second.reconcileStates(namespace: "storage", name: "rgw").first?.state == .synced })
        #expect(healthy.object(.service, "storage", "rgw") != nil)
        cluster.setHang(false)
    }

    @Test func shutdownAnswersWaitingRequests() throws {
        cluster.setHang(true)
        let reconciler = reconciler()
        reconciler.start()
        _ = try store.create(service(clusters: []))
        let answers = Mutex(0)
        for _ in 0..<3 {
            reconciler.diff(namespace: "storage", name: "rgw", cluster: "test") { _ in answers.withLock { $0 += 1 } }
        }
        // One worker is stuck in the cluster with the first request.
        #expect(eventually { !cluster.requests.isEmpty })
        let drained = reconciler.shutdown(deadline: .milliseconds(200))
        #expect(!drained)
        cluster.setHang(false)
        #expect(eventually { answers.withLock { $0 } == 3 })
    }
}
