import Foundation
import RegistryCore
import Testing

@testable import RegistryStorage

/// The health checker's snapshots in the store (issue 16), on the store under test.
@Suite struct HealthStateStoreTests {
    func temporaryStore() throws -> ServiceStore {
        try freshStore()
    }

    @Test func snapshotsAreSavedReplacedAndDeleted() throws {
        let store = try temporaryStore()
        let rgw = ServiceKey(namespace: "default", name: "rgw")
        let db = ServiceKey(namespace: "prod", name: "db")
        #expect(try store.allHealthStates().isEmpty)
        try store.saveHealthStates([rgw: Array(#"{"check":"a"}"#.utf8), db: Array(#"{"check":"b"}"#.utf8)])
        #expect(try store.allHealthStates() == [rgw: Array(#"{"check":"a"}"#.utf8), db: Array(#"{"check":"b"}"#.utf8)])
        // One replaced, one deleted, in one call.
        try store.saveHealthStates([rgw: Array(#"{"check":"c"}"#.utf8), db: nil])
        #expect(try store.allHealthStates() == [rgw: Array(#"{"check":"c"}"#.utf8)])
        // Deleting what is not stored is no error.
        try store.saveHealthStates([db: nil])
        #expect(try store.allHealthStates().count == 1)
    }

    @Test func aFenceRefusesTheWholeBatch() throws {
        let store = try temporaryStore()
        let rgw = ServiceKey(namespace: "default", name: "rgw")
        try store.saveHealthStates([rgw: Array("{}".utf8)])
        store.setFence(.notLeader("test"))
        #expect(throws: StoreError.self) { try store.saveHealthStates([rgw: nil, ServiceKey(namespace: "a", name: "b"): Array("{}".utf8)]) }
        #expect(try store.allHealthStates() == [rgw: Array("{}".utf8)])
    }

    @Test func deletingTheServiceDeletesItsSnapshot() throws {
        let store = try temporaryStore()
        _ = try store.create(sample("rgw"))
        _ = try store.create(sample("other"))
        try store.saveHealthStates([
            ServiceKey(namespace: "default", name: "rgw"): Array("{}".utf8), ServiceKey(namespace: "default", name: "other"): Array("{}".utf8),
        ])
        try store.delete(namespace: "default", name: "rgw")
        #expect(Array(try store.allHealthStates().keys) == [ServiceKey(namespace: "default", name: "other")])
    }
}
