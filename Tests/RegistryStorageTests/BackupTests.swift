import Foundation
import RegistryCore
import Synchronization
import TestSupport
import Testing

@testable import RegistryStorage

/// A service with `count` addresses, so that a few hundred of them fill a few hundred pages.
private func wide(_ name: String, count: Int = 40) -> ExternalService {
    ExternalService(
        namespace: "default", name: name, ports: [ServicePort(port: 80)],
        addresses: EndpointAddressList((0..<count).map { EndpointAddress(ip: "10.1.\($0 / 250).\($0 % 250 + 1)") }))
}

/// What the writer thread shares with the test.
private final class WriterState: Sendable {
    let stop = Atomic<Bool>(false)
    let written = Atomic<Int>(0)
    let failures = Mutex<[String]>([])
}

/// Files in `directory` (to see that nothing is left behind).
private func files(in directory: String) throws -> Set<String> {
    Set(try FileManager.default.contentsOfDirectory(atPath: directory))
}

/// SQLite's online backup of the database file (`backup`): the PostgreSQL pass skips it (a
/// PostgreSQL store is backed up with the server's own tools).
@Suite(.enabled(if: TestStore.current == .sqlite, "SQLite's backup API copies a SQLite file: the SQLite pass runs it"))
struct BackupTests {
    /// The store of a running server (exclusive: it holds the server's `flock`) keeps being
    /// written from another thread while the backup copies it, a page or two per step.
    @Test func copiesADatabaseThatIsBeingWrittenTo() throws {
        let path = try temporaryDatabase()
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let store = try ServiceStore(path: path, durability: .normal, migrations: try projectMigrations(), exclusive: true)
        for index in 0..<150 { _ = try store.create(wide("before-\(index)")) }

        let state = WriterState()
        let finished = DispatchSemaphore(value: 0)
        let writer = Thread {
            defer { finished.signal() }
            for index in 0..<400 where !state.stop.load(ordering: .relaxed) {
                do {
                    _ = try store.create(wide("during-\(index)", count: 10))
                    state.written.add(1, ordering: .relaxed)
                } catch {
                    state.failures.withLock { $0.append("\(error)") }
                    return
                }
            }
        }
        writer.start()
        // The writer is under way before the backup starts (bounded wait).
        let deadline = Date().addingTimeInterval(30)
        while state.written.load(ordering: .relaxed) < 5, Date() < deadline { usleep(1000) }
        let committedBefore = try store.count()
        #expect(committedBefore >= 155)

        let output = directory + "/backup.sqlite"
        let summary = try SQLiteBackup.copy(database: path, to: output, pagesPerStep: 2)
        state.stop.store(true, ordering: .relaxed)
        #expect(finished.wait(timeout: .now() + 60) == .success)
        #expect(state.failures.withLock { $0 } == [], "the server's writes go on during the backup")

        #expect(summary.services >= committedBefore)
        #expect(summary.pages > 100)
        #expect(summary.schemaVersion == (try projectMigrations()).map(\.version).max())
        #expect(try files(in: directory) == ["registry.sqlite", "registry.sqlite-wal", "registry.sqlite-shm", "backup.sqlite"])

        // The copy is one self-contained, sound file with exactly what it reported.
        let copy = try ServiceStore(path: output, migrations: try projectMigrations())
        #expect(try copy.integrityCheck() == ["ok"])
        #expect(try copy.count() == summary.services)
        for index in 0..<150 {
            #expect(try copy.record(namespace: "default", name: "before-\(index)")?.service.addresses.count == 40)
        }
        #expect(summary.revisions >= summary.services)
        // The server's own database is untouched and still written to.
        _ = try store.create(wide("after"))
        #expect(try store.integrityCheck() == ["ok"])
    }

    @Test func refusesAnExistingOutputUnlessForced() throws {
        let path = try temporaryDatabase()
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let store = try ServiceStore(path: path, migrations: try projectMigrations())
        _ = try store.create(sample("a"))
        let output = directory + "/backup.sqlite"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: output))
        let before = try files(in: directory)

        #expect(throws: SQLiteBackupError(reason: .outputExists, message: "\(output) exists; give --force to replace it")) {
            try SQLiteBackup.copy(database: path, to: output)
        }
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "keep me")
        #expect(try files(in: directory) == before, "no partial copy is left behind")

        let summary = try SQLiteBackup.copy(database: path, to: output, overwrite: true)
        #expect(summary.services == 1)
        #expect(try ServiceStore(path: output, migrations: try projectMigrations()).record(namespace: "default", name: "a") != nil)
    }

    /// A stale `-wal` or `-journal` beside the output would be applied by SQLite to the new file:
    /// refused, and removed with `overwrite`.
    @Test func refusesAStaleJournalBesideTheOutputUnlessForced() throws {
        let path = try temporaryDatabase()
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        _ = try ServiceStore(path: path, migrations: try projectMigrations()).create(sample("a"))
        let output = directory + "/backup.sqlite"
        try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: output + "-wal"))
        #expect {
            try SQLiteBackup.copy(database: path, to: output)
        } throws: { error in
            (error as? SQLiteBackupError)?.reason == .outputExists
        }
        #expect(!FileManager.default.fileExists(atPath: output))
        _ = try SQLiteBackup.copy(database: path, to: output, overwrite: true)
        #expect(!FileManager.default.fileExists(atPath: output + "-wal"))
        #expect(try ServiceStore(path: output, migrations: try projectMigrations()).integrityCheck() == ["ok"])
    }

    @Test func refusesWhatIsNotABackup() throws {
        let path = try temporaryDatabase()
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let store = try ServiceStore(path: path, migrations: try projectMigrations(), exclusive: true)
        _ = try store.create(sample("a"))
        func reason(_ body: () throws -> SQLiteBackupSummary) -> SQLiteBackupError.Reason? {
            do {
                _ = try body()
                return nil
            } catch {
                return (error as? SQLiteBackupError)?.reason
            }
        }
        // The database itself, even forced.
        #expect(reason { try SQLiteBackup.copy(database: path, to: path, overwrite: true) } == .outputRefused)
        // Another server's database (it holds the flock), even forced.
        let served = try temporaryDatabase()
        let other = try ServiceStore(path: served, migrations: try projectMigrations(), exclusive: true)
        #expect(reason { try SQLiteBackup.copy(database: path, to: served, overwrite: true) } == .outputRefused)
        #expect(try other.count() == 0)
        // A directory, a missing directory, a missing database, a file that is no registry's.
        #expect(reason { try SQLiteBackup.copy(database: path, to: directory, overwrite: true) } == .outputRefused)
        #expect(reason { try SQLiteBackup.copy(database: path, to: directory + "/missing/backup.sqlite") } == .outputDirectory)
        #expect(reason { try SQLiteBackup.copy(database: directory + "/missing.sqlite", to: directory + "/b.sqlite") } == .databaseMissing)
        let empty = directory + "/empty.sqlite"
        #expect(FileManager.default.createFile(atPath: empty, contents: nil))
        #expect(reason { try SQLiteBackup.copy(database: empty, to: directory + "/b.sqlite") } == .notARegistryDatabase)
        #expect(!FileManager.default.fileExists(atPath: directory + "/b.sqlite"))
        #expect(try files(in: directory).allSatisfy { !$0.contains(".partial-") })
    }
}
