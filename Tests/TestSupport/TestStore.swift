import Foundation

/// The store the tests run on: SQLite by default, or with `ENDPOINT_REGISTRY_TEST_STORE=postgresql`
/// a fresh database on the shared throwaway PostgreSQL server (`TestPostgres.shared()`) for each
/// store a test makes. `scripts/test` runs the storage suite (RegistryStorageTests) and the
/// end-to-end suite (RegistryAPITests) both ways; tests of SQLite itself (its file, WAL,
/// durability modes, lock, backup) are skipped on the PostgreSQL pass with the reason.
public enum TestStore: String, Sendable {
    case sqlite, postgresql

    /// From `ENDPOINT_REGISTRY_TEST_STORE` (`sqlite` when unset or unknown).
    public static let current = TestStore(rawValue: ProcessInfo.processInfo.environment["ENDPOINT_REGISTRY_TEST_STORE"] ?? "sqlite") ?? .sqlite
}
