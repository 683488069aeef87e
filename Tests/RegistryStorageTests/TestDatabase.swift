import Foundation
import PostgresStorage
import TestSupport

@testable import RegistryStorage

/// A fresh database file in its own temporary directory.
func temporaryDatabase() throws -> String {
    let directory = FileManager.default.temporaryDirectory.appending(path: "registry-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory.appending(path: "registry.sqlite").path()
}

/// The project's real SQLite migrations, read from the top-level folder.
func projectMigrations() throws -> [Migration] {
    try migrations(in: "sqlite")
}

/// The project's real PostgreSQL migrations, read from the top-level folder.
func postgreSQLMigrations() throws -> [Migration] {
    try migrations(in: "postgresql")
}

/// The migrations in `migrations/<folder>` of the repository.
private func migrations(in folder: String) throws -> [Migration] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let directory = root.appending(path: "migrations/\(folder)")
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path()).filter { $0.hasSuffix(".sql") }.sorted()
    return try Migration.parse(files.map { ($0, try String(contentsOf: directory.appending(path: $0), encoding: .utf8)) })
}

/// Where a test's store lives, on the store under test (`TestStore.current`): a fresh SQLite file
/// by default, or with `ENDPOINT_REGISTRY_TEST_STORE=postgresql` a fresh database on the shared
/// throwaway PostgreSQL server. Opening it again gives a second store on the same data, as a new
/// process (or another replica) would see it.
enum TestDatabase: Sendable {
    case sqlite(path: String)
    case postgresql(PostgresConnectionSettings)

    /// A new empty database of the store under test.
    static func fresh() throws -> TestDatabase {
        switch TestStore.current {
        case .sqlite: .sqlite(path: try temporaryDatabase())
        case .postgresql: .postgresql(try TestPostgres.shared().createDatabase())
        }
    }

    /// The project's migrations for this database (migrations/sqlite or migrations/postgresql).
    func schemaMigrations() throws -> [Migration] {
        switch self {
        case .sqlite: try projectMigrations()
        case .postgresql: try postgreSQLMigrations()
        }
    }

    /// A store on the database, its schema brought up to date with `migrations` (by default the
    /// project's for this database). `durability` is SQLite's `synchronous` setting; a
    /// PostgreSQL store commits as its server does, and takes only `.full` here (see
    /// `TestStore.durabilities`).
    func open(
        migrations: [Migration]? = nil, durability: Durability = .full, now: @escaping @Sendable () -> Date = { Date() }
    ) throws -> ServiceStore {
        let migrations = try migrations ?? schemaMigrations()
        switch self {
        case .sqlite(let path):
            return try ServiceStore(path: path, durability: durability, migrations: migrations, now: now)
        case .postgresql(let settings):
            precondition(durability == .full, "a PostgreSQL store has no durability setting of its own")
            return try ServiceStore(database: try PostgresDatabase.open(settings: settings, migrations: migrations), now: now)
        }
    }
}

/// A store on a fresh database of the store under test (see `TestDatabase`).
func freshStore(durability: Durability = .full, now: @escaping @Sendable () -> Date = { Date() }) throws -> ServiceStore {
    try TestDatabase.fresh().open(durability: durability, now: now)
}

extension TestStore {
    /// The durabilities a test of the commit path runs under: SQLite's two `synchronous` settings;
    /// on PostgreSQL the one the server has.
    static var durabilities: [Durability] {
        switch current {
        case .sqlite: [.full, .normal]
        case .postgresql: [.full]
        }
    }
}
