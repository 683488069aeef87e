import Foundation
import RegistryCore
import Synchronization
import TestSupport
import Testing

@testable import RegistryStorage

/// An `exclusive` store answers reads from its document cache exactly as from the database. Only
/// a SQLite store that holds its file's lock caches documents (a PostgreSQL store is shared by
/// replicas and reads the database every time), so the PostgreSQL pass skips these.
@Suite(.enabled(if: TestStore.current == .sqlite, "the document cache and file lock of an exclusive SQLite store: the SQLite pass runs them"))
struct DocumentCacheTests {
    /// What the database itself holds for a service, read by a store that caches nothing.
    private func fromDatabase(_ path: String, _ name: String) throws -> StoredDocument? {
        let reader = try ServiceStore(path: path, migrations: try projectMigrations())
        return try reader.document(namespace: "default", name: name)
    }

    private func expectSame(_ cached: StoredDocument?, _ stored: StoredDocument?) {
        #expect(cached?.document == stored?.document)
        #expect(cached?.etag == stored?.etag)
        #expect(cached?.revision == stored?.revision)
    }

    @Test func everyAcknowledgedWriteIsReadBack() throws {
        let path = try temporaryDatabase()
        let store = try ServiceStore(path: path, durability: .normal, migrations: try projectMigrations(), exclusive: true)
        #expect(try store.document(namespace: "default", name: "a") == nil)
        _ = try store.create(sample("a"))
        // Read twice: the second read comes from the cache.
        for _ in 0..<2 { expectSame(try store.document(namespace: "default", name: "a"), try fromDatabase(path, "a")) }
        _ = try store.update(namespace: "default", name: "a") { current in
            var service = try #require(current).service
            service.description = "changed"
            return service
        }
        let updated = try store.document(namespace: "default", name: "a")
        #expect(updated?.revision == 2)
        expectSame(updated, try fromDatabase(path, "a"))
        // A dry run changes nothing, cached or stored.
        _ = try store.update(namespace: "default", name: "a", dryRun: true) { current in
            var service = try #require(current).service
            service.description = "dry"
            return service
        }
        expectSame(try store.document(namespace: "default", name: "a"), updated)
        var imported = sample("a")
        imported.description = "imported"
        _ = try store.importServices([imported, sample("b")], onConflict: .replace, dryRun: false)
        for name in ["a", "b"] { expectSame(try store.document(namespace: "default", name: name), try fromDatabase(path, name)) }
        #expect(try store.document(namespace: "default", name: "a")?.revision == 3)
        try store.delete(namespace: "default", name: "a")
        #expect(try store.document(namespace: "default", name: "a") == nil)
        _ = try store.create(sample("a"))
        expectSame(try store.document(namespace: "default", name: "a"), try fromDatabase(path, "a"))
        #expect(try store.document(namespace: "default", name: "a")?.revision == 1)
    }

    @Test func readsRacingWritesNeverGoBackwards() async throws {
        let store = try ServiceStore(path: try temporaryDatabase(), durability: .normal, migrations: try projectMigrations(), exclusive: true)
        try await expectReadsNeverGoBackwards(store, writes: 200, readsPerReader: 2000)
    }

    @Test func aSecondExclusiveOpenOfTheSameFileIsRefusedUntilReleased() throws {
        let path = try temporaryDatabase()
        let first = try ServiceStore(path: path, migrations: try projectMigrations(), exclusive: true)
        #expect {
            _ = try ServiceStore(path: path, migrations: try projectMigrations(), exclusive: true)
        } throws: { error in
            guard case StoreError.fault(let fault) = error else { return false }
            return fault.reason == .busy && fault.message.contains("another process serves this database")
        }
        first.releaseExclusiveLock()
        _ = try ServiceStore(path: path, migrations: try projectMigrations(), exclusive: true)
    }

    /// A write queued before the lock is given up is committed first: it cannot land in the
    /// file once another server holds the lock and caches the documents.
    @Test func releasingTheLockWaitsForQueuedWrites() throws {
        let store = try ServiceStore(path: try temporaryDatabase(), durability: .normal, migrations: try projectMigrations(), exclusive: true)
        _ = try store.create(sample("q"))
        let done = Atomic<Bool>(false)
        store.update(namespace: "default", name: "q") { current in
            // A slow transform: the commit is still running when the lock is released.
            Thread.sleep(forTimeInterval: 0.3)
            var service = try #require(current).service
            service.description = "queued"
            return service
        } completion: { _ in
            done.store(true, ordering: .releasing)
        }
        store.releaseExclusiveLock()
        let completed = done.load(ordering: .acquiring)
        #expect(completed)
        #expect(try store.record(namespace: "default", name: "q")?.service.description == "queued")
    }

    /// One readiness check runs at a time: while it waits for the writer (held here by a slow
    /// write), other probes get the last verdict at once instead of each holding a worker, and
    /// once it has waited more than a second, a `busy` fault (not "ready" for as long as the
    /// database hangs).
    @Test func readinessChecksRunOneAtATime() throws {
        let store = try ServiceStore(path: try temporaryDatabase(), durability: .normal, migrations: try projectMigrations())
        _ = try store.create(sample("r"))
        #expect(store.readiness() == nil)
        Thread.sleep(forTimeInterval: 1.1)  // the verdict is a second old: the next probe checks again
        // A write that holds the commit thread for 2.5 s.
        store.writeLater({ _ in Thread.sleep(forTimeInterval: 2.5) }, completion: { _ in })
        // The check, on a thread of its own: it waits for the slow write.
        let checked = DispatchSemaphore(value: 0)
        let checker = Mutex<(verdict: StorageFault?, took: Duration)?>(nil)
        let started = ContinuousClock.now
        Thread {
            let verdict = store.readiness()
            checker.withLock { $0 = (verdict, ContinuousClock.now - started) }
            checked.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.3)
        for _ in 0..<3 {
            let start = ContinuousClock.now
            #expect(store.readiness() == nil)  // the last verdict
            #expect(ContinuousClock.now - start < .milliseconds(500))
        }
        Thread.sleep(forTimeInterval: 1.2)  // the check has now waited about 1.5 s
        let pending = store.readiness()
        #expect(pending?.reason == .busy)
        #expect(pending?.message.contains("the readiness check has waited") == true)
        checked.wait()
        let check = try #require(checker.withLock { $0 })
        #expect(check.verdict == nil)
        #expect(check.took > .seconds(1))
        #expect(store.readiness() == nil)
    }

    /// /proc/locks, read to the end with read(2) (a procfs file reports no size; it spans several
    /// pages when other tests hold locks).
    private static func procLocks() throws -> String {
        let descriptor = open("/proc/locks", O_RDONLY | O_CLOEXEC)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Releasing the lock keeps SQLite's POSIX locks on the file (closing any descriptor of the
    /// file would drop them all, fcntl(2)): the store's connections are still open. Read from
    /// /proc/locks (Linux).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/locks")))
    func releasingTheLockKeepsSQLitesLocks() throws {
        let path = try temporaryDatabase()
        let store = try ServiceStore(path: path, migrations: try projectMigrations(), exclusive: true)
        _ = try store.create(sample("l"))
        _ = try store.document(namespace: "default", name: "l")
        var info = stat()
        #expect(stat(path, &info) == 0)
        func locks(_ kind: String) throws -> Int {
            let suffix = ":\(info.st_ino)"
            return try Self.procLocks().split(separator: "\n").filter { line in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                return fields.count > 5 && fields[1] == kind && fields[4] == "\(getpid())" && fields[5].hasSuffix(suffix)
            }.count
        }
        #expect(try locks("FLOCK") == 1)
        let posix = try locks("POSIX")
        #expect(posix > 0)
        store.releaseExclusiveLock()
        #expect(try locks("FLOCK") == 0)
        #expect(try locks("POSIX") == posix)
    }
}

/// `record(namespace:name:)` gives the decoded stored document, whether it comes from the
/// writer's record cache (just written) or is parsed (written before, or by a dry run since).
@Test func recordsReadBackAreTheStoredDocumentsDecoded() throws {
    let store = try freshStore()
    _ = try store.create(sample("d"))
    func expectDecoded() throws {
        let stored = try #require(try store.document(namespace: "default", name: "d"))
        let record = try #require(try store.record(namespace: "default", name: "d"))
        #expect(ServiceEncoder.bytes(record) == stored.document)
        #expect(record == (try ServiceStore.decode(stored.document, namespace: "default", name: "d")))
    }
    try expectDecoded()
    _ = try store.update(namespace: "default", name: "d") { current in
        var service = try #require(current).service
        service.description = "real"
        return service
    }
    try expectDecoded()
    // A dry run leaves a record of the next revision in the writer's cache: never served.
    _ = try store.update(namespace: "default", name: "d", dryRun: true) { current in
        var service = try #require(current).service
        service.description = "dry"
        return service
    }
    try expectDecoded()
    #expect(try store.record(namespace: "default", name: "d")?.service.description == "real")
}

/// The per-thread fronts of `DocumentCache` answer only what the shared entries would: an
/// invalidation makes every front stale before it returns, from any thread.
@Suite struct DocumentCacheFrontTests {
    private func document(_ revision: Int) -> StoredDocument {
        StoredDocument(document: Array("{\"revision\":\(revision)}".utf8), etag: "\"\(revision)\"", revision: revision, uid: "u")
    }

    private func revision(_ lookup: DocumentCache.Lookup) -> Int? {
        if case .hit(let stored) = lookup { return stored.revision }
        return nil
    }

    @Test func anInvalidationReachesEveryFront() async {
        let cache = DocumentCache()
        let key = ServiceKey(namespace: "default", name: "a")
        guard case .miss(let generation) = cache.lookup(key) else {
            Issue.record("hit in an empty cache")
            return
        }
        cache.fill(key, document(1), generation: generation)
        // Twice: the second answer comes from this thread's front.
        #expect(revision(cache.lookup(key)) == 1 && revision(cache.lookup(key)) == 1)
        // Fronts on other threads too, then an invalidation from this one.
        await withTaskGroup(of: Int?.self) { group in
            for _ in 0..<8 {
                group.addTask { [cache] in
                    _ = cache.lookup(key)
                    return revision(cache.lookup(key))
                }
            }
            for await seen in group { #expect(seen == 1) }
        }
        cache.invalidate([key])
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { [cache] in
                    if case .miss = cache.lookup(key) { return true }
                    return false
                }
            }
            for await missed in group { #expect(missed) }
        }
        guard case .miss(let next) = cache.lookup(key) else {
            Issue.record("hit after the invalidation")
            return
        }
        cache.fill(key, document(2), generation: next)
        #expect(revision(cache.lookup(key)) == 2 && revision(cache.lookup(key)) == 2)
        // Invalidating another service leaves this one's shared entry, read again through the front.
        cache.invalidate([ServiceKey(namespace: "default", name: "b")])
        #expect(revision(cache.lookup(key)) == 2)
    }

    /// A front keeps at most `frontEntryLimit` services: the ones past it are answered from the
    /// shared entries (all still there), never lost.
    @Test func aFrontStaysBounded() {
        let cache = DocumentCache()
        let keys = (0..<(DocumentCache.frontEntryLimit * 3)).map { ServiceKey(namespace: "default", name: "s\($0)") }
        for key in keys {
            guard case .miss(let generation) = cache.lookup(key) else {
                Issue.record("hit in an empty cache")
                return
            }
            cache.fill(key, document(7), generation: generation)
        }
        for _ in 0..<2 {
            for key in keys { #expect(revision(cache.lookup(key)) == 7) }
        }
    }
}
