import Foundation
import RegistryCore

extension ServiceStore {
    /// Saves the health checker's snapshots of several services in one fenced transaction
    /// (issue 16: a new leader continues from them, the other replicas show them). `snapshots`:
    /// per service, the snapshot (a JSON document, UTF-8, opaque to the store; see
    /// `HealthChecker.snapshot(of:)`) or nil to delete the stored one (the service is gone or
    /// has no health check any more). The rows written get the next health version (see
    /// `healthStates(after:)`).
    ///
    /// Throws `StoreError.fenced` when this replica no longer leads (nothing is written), or
    /// the store's errors.
    public func saveHealthStates(_ snapshots: [ServiceKey: [UInt8]?]) throws {
        guard !snapshots.isEmpty else { return }
        let time = ServiceStore.timestamp(Date())
        let rows = snapshots.sorted { ($0.key.namespace, $0.key.name) < ($1.key.namespace, $1.key.name) }
        try fencedWrite { connection in
            let version = try ServiceStore.advance(.healthVersion, on: connection)
            let upsert = try connection.prepare(
                """
                INSERT INTO health_state (namespace, name, document, version, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (namespace, name) DO UPDATE SET document = excluded.document, version = excluded.version,
                updated_at = excluded.updated_at
                """)
            let delete = try connection.prepare("DELETE FROM health_state WHERE namespace = ? AND name = ?")
            for (key, document) in rows {
                if let document {
                    upsert.reset()
                    try upsert.bind(
                        .text(key.namespace), .text(key.name), .text(String(decoding: document, as: UTF8.self)), .integer(version), .text(time)
                    ).run()
                } else {
                    delete.reset()
                    try delete.bind(.text(key.namespace), .text(key.name)).run()
                }
            }
        }
    }

    /// The snapshots stored after health version `version` (0: all), and the version to ask
    /// after next time (the newest one read, or `version` when none is newer). Writes commit in
    /// version order, so a reader that always asks after the last version it got misses no
    /// write (a row written twice meanwhile is read once, as it is now). Deleted rows are not
    /// reported: the registrations say which services still have a health check.
    public func healthStates(after version: Int) throws(StoreError) -> (snapshots: [ServiceKey: [UInt8]], version: Int) {
        try read { connection in
            let statement = try connection.prepare(
                "SELECT namespace, name, document, version FROM health_state WHERE version > ? ORDER BY version")
            try statement.bind(.integer(version))
            var snapshots: [ServiceKey: [UInt8]] = [:]
            var newest = version
            while try statement.step() {
                snapshots[ServiceKey(namespace: statement.text(0), name: statement.text(1))] = Array(statement.text(2).utf8)
                newest = max(newest, statement.int(3))
            }
            statement.reset()
            return (snapshots, newest)
        }
    }

    /// The stored snapshots of `keys` (those that have one).
    public func healthStates(of keys: some Sequence<ServiceKey>) throws(StoreError) -> [ServiceKey: [UInt8]] {
        try read { connection in
            let statement = try connection.prepare("SELECT document FROM health_state WHERE namespace = ? AND name = ?")
            var snapshots: [ServiceKey: [UInt8]] = [:]
            for key in keys {
                statement.reset()
                try statement.bind(.text(key.namespace), .text(key.name))
                if try statement.step() { snapshots[key] = Array(statement.text(0).utf8) }
            }
            statement.reset()
            return snapshots
        }
    }

    /// Every stored health snapshot, by service.
    public func allHealthStates() throws(StoreError) -> [ServiceKey: [UInt8]] {
        try healthStates(after: 0).snapshots
    }
}
