import Foundation
import RegistryCore
import RegistryResources
import RegistryStorage
import TestSupport
import Testing

@testable import PostgresStorage

/// Fencing of the background work's writes through the store (issue 16): the leader's fence lets
/// its reconcile-state and retention writes through; once another replica holds a newer term, the
/// old leader's writes are refused and nothing of them is kept.
@Suite struct StoreFencingTests {
    @Test func aFormerLeadersBackgroundWritesAreRefused() throws {
        let settings = try TestPostgres.shared().createDatabase()
        let database = try PostgresDatabase.open(settings: settings, migrations: try Migration.parse(RegistryResources.postgreSQLMigrations))
        let store = try ServiceStore(database: database)
        let pool = PostgresConnectionPool(settings: settings, maximumConnections: 2)
        let first = PostgresLeaderLease(pool: pool, holder: "first", ttl: .seconds(30))
        let second = PostgresLeaderLease(pool: pool, holder: "second", ttl: .seconds(30))
        let state = ReconcileState(namespace: "default", name: "rgw", cluster: "prod", state: .pending)

        // No term yet: a replica that is not the leader writes nothing.
        store.setFence(.notLeader("the election has not been won"))
        #expect(throws: StoreError.self) { try store.saveReconcileState(state) }
        #expect(try store.allReconcileStates().isEmpty)

        let term = try #require(try first.acquire())
        store.setFence(PostgresDatabase.fence(term: term))
        try store.saveReconcileState(state)
        #expect(try store.allReconcileStates().map(\.name) == ["rgw"])
        #expect(try store.pruneAudit(olderThan: "2000-01-01T00:00:00Z", batch: 10) == 0)

        // The lease passes to another replica: the first one's fence now refuses.
        try first.release(term)
        _ = try #require(try second.acquire())
        var moved = state
        moved.state = .synced
        let refusal = #expect(throws: StoreError.self) { try store.saveReconcileState(moved) }
        #expect("\(refusal.map { "\($0)" } ?? "")".contains("no longer current"))
        #expect(throws: StoreError.self) { try store.pruneHistory(keep: 1, batch: 10) }
        #expect(try store.allReconcileStates().map(\.state) == [.pending])
        // The health checker's snapshots alike.
        #expect(throws: StoreError.self) { try store.saveHealthStates([ServiceKey(namespace: "default", name: "rgw"): Array("{}".utf8)]) }
        #expect(try store.allHealthStates().isEmpty)
        // Requests' writes are not fenced.
        _ = try store.create(
            ExternalService(
                namespace: "default", name: "rgw", labels: [:], ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.0.0.1")]))
    }
}
