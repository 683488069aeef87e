import Foundation
import RegistryCore
import RegistryResources
import RegistryStorage
import TestSupport
import Testing

@testable import PostgresStorage

/// The health checker's snapshots in the store (issue 16), on PostgreSQL.
@Suite struct PostgresHealthStateStoreTests {
    @Test func snapshotsAreSavedReplacedAndDeleted() throws {
        let settings = try TestPostgres.shared().createDatabase()
        let database = try PostgresDatabase.open(settings: settings, migrations: try Migration.parse(RegistryResources.postgreSQLMigrations))
        let store = try ServiceStore(database: database)
        let rgw = ServiceKey(namespace: "default", name: "rgw")
        let db = ServiceKey(namespace: "prod", name: "db")
        #expect(try store.allHealthStates().isEmpty)
        try store.saveHealthStates([rgw: Array(#"{"check":"a","é":1}"#.utf8), db: Array(#"{"check":"b"}"#.utf8)])
        #expect(try store.allHealthStates() == [rgw: Array(#"{"check":"a","é":1}"#.utf8), db: Array(#"{"check":"b"}"#.utf8)])
        try store.saveHealthStates([rgw: Array(#"{"check":"c"}"#.utf8), db: nil])
        #expect(try store.allHealthStates() == [rgw: Array(#"{"check":"c"}"#.utf8)])
        // Deleting the service deletes its snapshot in the same transaction.
        _ = try store.create(
            ExternalService(
                namespace: "default", name: "rgw", labels: [:], ports: [ServicePort(port: 80)], addresses: [EndpointAddress(ip: "10.0.0.1")]))
        try store.delete(namespace: "default", name: "rgw")
        #expect(try store.allHealthStates().isEmpty)
    }
}
