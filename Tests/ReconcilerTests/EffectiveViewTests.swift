import Foundation
import KubernetesClient
import Reconciler
import RegistryCore
import RegistryStorage
import Synchronization
import Testing

/// The IPs a test's effective view renders not-ready (what Liveness does for unhealthy ones).
final class DownSet: Sendable {
    let ips = Mutex<Set<String>>([])
}

@Suite(.serialized) struct EffectiveViewTests {
    /// A health change is no revision: `effectiveChanged` re-applies the effective rendering to
    /// the bound cluster, and the reconcile state keeps the registration's revision.
    @Test func aHealthChangeReappliesTheEffectiveRendering() throws {
        let store = try makeStore()
        let cluster = InMemoryCluster()
        let down = DownSet()
        let reconciler = Reconciler(store: store, clients: [cluster], configuration: configuration(resync: .seconds(300)), logger: quietLogger())
        reconciler.setEffectiveView { service in
            var effective = service
            let ips = down.ips.withLock { $0 }
            for index in effective.addresses.indices where ips.contains(effective.addresses[index].ip) { effective.addresses[index].ready = false }
            return effective
        }
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        let record = try store.create(service(mode: .endpoints)).record
        func notReady() -> String {
            guard let endpoints = cluster.object(.endpoints, "storage", "rgw") else { return "absent" }
            return String(decoding: JSONWriter.bytes(endpoints), as: UTF8.self).contains("notReadyAddresses") ? "some" : "none"
        }
        #expect(try eventually { try store.reconcileStates(namespace: "storage", name: "rgw").first?.state == .synced })
        #expect(notReady() == "none")
        down.ips.withLock { $0 = ["192.0.2.11"] }
        reconciler.effectiveChanged([ServiceKey(namespace: "storage", name: "rgw")])
        #expect(eventually { notReady() == "some" })
        #expect(try store.reconcileStates(namespace: "storage", name: "rgw").first?.revision == record.revision)
        down.ips.withLock { $0 = [] }
        reconciler.effectiveChanged([ServiceKey(namespace: "storage", name: "rgw")])
        #expect(eventually { notReady() == "none" })
    }
}
