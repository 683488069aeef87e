import Foundation
import KubernetesClient
import Liveness
import Reconciler
import RegistryCore
import RegistryStorage
import Synchronization
import Testing

/// Answers from a table; never sends a query.
final class TableResolver: Resolver {
    let answers = Mutex<[String: Result<[String], ResolveFailure>]>([:])

    func resolve(_ host: String) -> Result<ResolvedAddresses, ResolveFailure> {
        answers.withLock { $0[host] ?? .failure(.notFound) }.map { ResolvedAddresses(addresses: $0, ttlSeconds: 60) }
    }
}

/// Issue 13: a change of what a `host` address resolves to is no revision, but re-renders the
/// service in its bound cluster (wired as `RegistryApplication` wires it).
@Suite(.serialized) struct HostResolutionTests {
    @Test func aChangedResolutionReachesTheBoundClusterWithoutARevision() throws {
        let store = try makeStore()
        let cluster = InMemoryCluster()
        let resolver = TableResolver()
        resolver.answers.withLock { $0["rgw.example.test"] = .success(["192.0.2.30"]) }
        let dns = DNSRefresher(resolver: resolver, logger: quietLogger())
        let reconciler = Reconciler(store: store, clients: [cluster], configuration: configuration(resync: .seconds(300)), logger: quietLogger())
        reconciler.setEffectiveView { dns.resolved($0) }
        dns.onChange { [weak reconciler] namespace, name in reconciler?.effectiveChanged([ServiceKey(namespace: namespace, name: name)]) }
        reconciler.start()
        defer { reconciler.shutdown(deadline: .seconds(5)) }
        var registration = service(mode: .endpoints)
        registration.addresses = [EndpointAddress(ip: "192.0.2.10", port: 8080), EndpointAddress(host: "rgw.example.test", port: 8080)]
        registration.normalize()
        let record = try store.create(registration).record
        func rendered() -> [String] {
            guard let endpoints = cluster.object(.endpoints, "storage", "rgw") else { return [] }
            return (endpoints["subsets"]?.arrayValue ?? []).flatMap { $0["addresses"]?.arrayValue ?? [] }.compactMap { $0["ip"]?.stringValue }
                .sorted()
        }
        // Not yet resolved: only the registered IP.
        #expect(try eventually { try store.reconcileStates(namespace: "storage", name: "rgw").first?.state == .synced })
        dns.update(namespace: "storage", name: "rgw", hosts: registration.hosts, settings: .init(registration))
        #expect(dns.refreshDue().count == 1)
        #expect(eventually { rendered() == ["192.0.2.10", "192.0.2.30"] }, "\(rendered())")
        resolver.answers.withLock { $0["rgw.example.test"] = .success(["192.0.2.31", "192.0.2.10"]) }
        dns.update(namespace: "storage", name: "rgw", hosts: [], settings: .init(registration))
        dns.update(namespace: "storage", name: "rgw", hosts: registration.hosts, settings: .init(registration))
        dns.refreshDue()
        // The registered 192.0.2.10 is not repeated.
        #expect(eventually { rendered() == ["192.0.2.10", "192.0.2.31"] }, "\(rendered())")
        #expect(try store.reconcileStates(namespace: "storage", name: "rgw").first?.revision == record.revision)
    }
}
