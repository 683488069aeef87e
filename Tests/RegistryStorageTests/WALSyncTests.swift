import Foundation
import RegistryCore
import Synchronization
import TestSupport
import Testing

@testable import RegistryStorage

/// `--durability full` with the WAL fsynced beside the commit path (`WALSync`): a write is
/// answered only after an fsync that began after its commit, one fsync covers every commit
/// before it, and a failed fsync is final.
@Suite struct WALSyncTests {
    /// A file to sync (its content does not matter to `WALSync`).
    private static func walFile() throws -> String {
        let path = try temporaryDatabase() + "-wal"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("frames".utf8)))
        return path
    }

    @Test func oneFsyncCoversEveryCommitMadeBeforeItBegan() throws {
        let entered = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let calls = Atomic<Int>(0)
        let sync = try WALSync(walPath: try Self.walFile()) { descriptor in
            if calls.add(1, ordering: .relaxed).newValue == 1 {
                entered.signal()
                gate.wait()
            }
            return fdatasync(descriptor)
        }
        let told = Mutex<[UInt64]>([])
        let first = sync.committed()
        sync.whenSynced(first) { fault in told.withLock { $0.append(fault == nil ? first : 0) } }
        entered.wait()
        // Committed while the first fsync runs: not covered by it, answered after the next one.
        let second = sync.committed()
        let third = sync.committed()
        sync.whenSynced(second) { fault in told.withLock { $0.append(fault == nil ? second : 0) } }
        sync.whenSynced(third) { fault in told.withLock { $0.append(fault == nil ? third : 0) } }
        #expect(told.withLock { $0 }.isEmpty)
        gate.signal()
        try sync.wait(third)
        #expect(told.withLock { $0 } == [1, 2, 3])
        #expect(calls.load(ordering: .relaxed) == 2 && sync.syncs.load(ordering: .relaxed) == 2)
        // Durable already: answered at once, without another fsync.
        try sync.wait(second)
        #expect(calls.load(ordering: .relaxed) == 2)
    }

    @Test(arguments: [EIO, ENOSPC])
    func aFailedFsyncFailsEveryWriteWaitingThenAndAfter(code: Int32) throws {
        let calls = Atomic<Int>(0)
        let sync = try WALSync(walPath: try Self.walFile()) { _ in
            calls.add(1, ordering: .relaxed)
            errno = code
            return -1
        }
        let first = sync.committed()
        #expect {
            try sync.wait(first)
        } throws: { error in
            guard let fault = error as? StorageFault else { return false }
            return fault.reason == .notDurable && fault.isCondition && fault.message.contains("fdatasync")
                && fault.message.contains(String(cString: strerror(code)))
        }
        // A later commit is not acknowledged either, and no fsync is tried again (Linux may
        // have dropped the pages the failed one could not write).
        let second = sync.committed()
        #expect(throws: StorageFault.self) { try sync.wait(second) }
        #expect(calls.load(ordering: .relaxed) == 1)
    }

    @Test func aMissingWALFileIsRefused() throws {
        #expect(throws: StorageFault.self) { _ = try WALSync(walPath: try temporaryDatabase() + "-missing-wal") }
    }

    /// The store with `full` on SQLite: the writer runs `synchronous=NORMAL` and every write,
    /// synchronous or queued, is answered after a `WALSync` fsync; with `normal` there is none.
    @Test(.enabled(if: TestStore.current == .sqlite, "SQLite's WAL: the SQLite pass runs it"))
    func fullDurabilityFsyncsTheWALBesideTheCommitPath() throws {
        let store = try ServiceStore(path: try temporaryDatabase(), durability: .full, migrations: try projectMigrations())
        #expect(store.walSyncsRun == 0)
        _ = try store.create(sample("a"))
        #expect((store.walSyncsRun ?? 0) >= 1)
        let before = store.walSyncsRun ?? 0
        #expect(queueDescriptionUpdates(of: "a", count: 50, on: store) == Array(2...51))
        // Fewer fsyncs than writes: the queued writes were committed and synced in groups.
        let syncs = (store.walSyncsRun ?? 0) - before
        #expect(syncs >= 1 && syncs < 50)
        #expect(try store.record(namespace: "default", name: "a")?.revision == 51)

        let normal = try ServiceStore(path: try temporaryDatabase(), durability: .normal, migrations: try projectMigrations())
        _ = try normal.create(sample("b"))
        #expect(normal.walSyncsRun == nil)
    }
}
