import Foundation
import RegistryCore

extension ServiceStore {
    /// Saves the health checker's snapshots of several services in one fenced transaction
    /// (issue 16: a new leader continues from them). `snapshots`: per service, the snapshot (a
    /// JSON document, UTF-8, opaque to the store; see `HealthChecker.snapshot(of:)`) or nil to
    /// delete the stored one (the service is gone or has no health check any more).
    ///
    /// Throws `StoreError.fenced` when this replica no longer leads (nothing is written), or
    /// the store's errors.
    public func saveHealthStates(_ snapshots: [ServiceKey: [UInt8]?]) throws {
        guard !snapshots.isEmpty else { return }
        let time = ServiceStore.timestamp(Date())
        let rows = snapshots.sorted { ($0.key.namespace, $0.key.name) < ($1.key.namespace, $1.key.name) }
        try fencedWrite { connection in
            let upsert = try connection.prepare(
                """
                INSERT INTO health_state (namespace, name, document, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (namespace, name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at
                """)
            let delete = try connection.prepare("DELETE FROM health_state WHERE namespace = ? AND name = ?")
            for (key, document) in rows {
                if let document {
                    upsert.reset()
                    try upsert.bind(.text(key.namespace), .text(key.name), .text(String(decoding: document, as: UTF8.self)), .text(time)).run()
                } else {
                    delete.reset()
                    try delete.bind(.text(key.namespace), .text(key.name)).run()
                }
            }
        }
    }

    /// Every stored health snapshot, by service.
    public func allHealthStates() throws(StoreError) -> [ServiceKey: [UInt8]] {
        try read { connection in
            let statement = try connection.prepare("SELECT namespace, name, document FROM health_state ORDER BY namespace, name")
            var snapshots: [ServiceKey: [UInt8]] = [:]
            while try statement.step() {
                snapshots[ServiceKey(namespace: statement.text(0), name: statement.text(1))] = Array(statement.text(2).utf8)
            }
            return snapshots
        }
    }
}
