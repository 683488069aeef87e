import Foundation
import RegistryCore
import Synchronization
import TestSupport
import Testing

@testable import RegistryStorage

func sample(_ name: String, namespace: String = "default", labels: [String: String] = [:]) -> ExternalService {
    ExternalService(
        namespace: namespace, name: name, labels: labels, ports: [ServicePort(port: 80)],
        addresses: [EndpointAddress(ip: "10.0.0.1"), EndpointAddress(ip: "10.0.0.2", port: 8080)])
}

/// Queues `count` updates of service `name`'s description (`writeLater`, as request threads
/// do), waits for them, and returns the revisions they were answered with, in answer order.
func queueDescriptionUpdates(of name: String, count: Int, on store: ServiceStore) -> [Int] {
    let answered = Mutex<[Int]>([])
    for index in 0..<count {
        store.update(namespace: "default", name: name) { current in
            var service = try #require(current).service
            service.description = "queued \(index)"
            return service
        } completion: { result in
            if case .success(let update) = result { answered.withLock { $0.append(update.record.revision) } }
        }
    }
    store.waitForQueuedWrites()
    return answered.withLock { $0 }
}

/// The migrator's rules, on the store under test (each database reopened as a new process
/// would open it).
@Suite struct MigrationTests {
    @Test func migratesAFreshDatabaseThenReopensIt() throws {
        let database = try TestDatabase.fresh()
        let store = try database.open()
        _ = try store.create(sample("a"))
        let reopened = try database.open()
        #expect(try reopened.record(namespace: "default", name: "a")?.revision == 1)
    }

    @Test(
        .enabled(if: TestStore.current == .sqlite, "SQLite's synchronous settings: the SQLite pass runs it"), arguments: [Durability.full, .normal])
    func reopensASQLiteFileUnderEitherDurability(durability: Durability) throws {
        let path = try temporaryDatabase()
        let store = try ServiceStore(path: path, durability: durability, migrations: try projectMigrations())
        _ = try store.create(sample("a"))
        let reopened = try ServiceStore(path: path, durability: durability, migrations: try projectMigrations())
        #expect(try reopened.record(namespace: "default", name: "a")?.revision == 1)
    }

    @Test func appliesOnlyPendingMigrationsInOrder() throws {
        let database = try TestDatabase.fresh()
        var migrations = try database.schemaMigrations()
        _ = try database.open(migrations: migrations)
        migrations.append(Migration(version: 9000, name: "9000_add_table.sql", sql: "CREATE TABLE extra (id INTEGER);"))
        let store = try database.open(migrations: migrations)
        #expect(try store.count() == 0)
    }

    @Test func refusesAnEditedMigration() throws {
        let database = try TestDatabase.fresh()
        var migrations = try database.schemaMigrations()
        _ = try database.open(migrations: migrations)
        migrations[0].sql += "\n-- edited"
        #expect {
            _ = try database.open(migrations: migrations)
        } throws: { error in
            guard case StoreError.migration(.edited(let name, _, _)) = error else { return false }
            return name == migrations[0].name
        }
    }

    @Test func refusesADatabaseNewerThanTheBinary() throws {
        let database = try TestDatabase.fresh()
        var migrations = try database.schemaMigrations()
        migrations.append(Migration(version: 9001, name: "9001_future.sql", sql: "CREATE TABLE future (id INTEGER);"))
        _ = try database.open(migrations: migrations)
        #expect {
            _ = try database.open()
        } throws: { error in
            guard case StoreError.migration(.databaseNewerThanBinary(let version, _)) = error else { return false }
            return version == 9001
        }
    }

    @Test func rollsBackAFailingMigration() throws {
        let database = try TestDatabase.fresh()
        var migrations = try database.schemaMigrations()
        migrations.append(Migration(version: 9002, name: "9002_broken.sql", sql: "CREATE TABLE half (id INTEGER); SELECT * FROM missing;"))
        #expect(throws: StoreError.self) { _ = try database.open(migrations: migrations) }
        migrations.removeLast()
        migrations.append(Migration(version: 9002, name: "9002_fixed.sql", sql: "CREATE TABLE half (id INTEGER);"))
        #expect(throws: Never.self) { _ = try database.open(migrations: migrations) }
    }

    @Test(arguments: ["0001.sql", "abc_x.sql", "0001_a.txt"])
    func rejectsBadMigrationFileNames(name: String) {
        #expect(throws: MigrationError.self) { _ = try Migration.parse([(name, "SELECT 1;")]) }
    }
}

@Suite struct ServiceStoreTests {
    let store: ServiceStore

    init() throws {
        store = try freshStore()
    }

    @Test func createsReadsAndRefusesDuplicates() throws {
        let (record, document) = try store.create(sample("rgw"))
        #expect(record.revision == 1)
        let stored = try #require(try store.document(namespace: "default", name: "rgw"))
        #expect(stored.document == document)
        #expect(stored.etag == record.etag)
        #expect(try store.record(namespace: "default", name: "rgw") == record)
        #expect(throws: StoreError.self) { _ = try store.create(sample("rgw")) }
        #expect(try store.document(namespace: "other", name: "rgw") == nil)
    }

    @Test func bumpsTheRevisionOnlyOnChange() throws {
        _ = try store.create(sample("rgw"))
        let same = try store.update(namespace: "default", name: "rgw") { $0!.service }
        #expect(!same.changed && same.record.revision == 1)
        let changed = try store.update(namespace: "default", name: "rgw") { current in
            var service = current!.service
            service.description = "now described"
            return service
        }
        #expect(changed.changed && changed.record.revision == 2)
        #expect(try store.record(namespace: "default", name: "rgw")?.service.description == "now described")
    }

    @Test func updateCreatesWhenAbsentAndAbortsWithoutWriting() throws {
        let created = try store.update(namespace: "default", name: "new") { current in
            #expect(current == nil)
            return sample("new")
        }
        #expect(created.created)
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            _ = try store.update(namespace: "default", name: "new") { _ in throw Refused() }
        }
        #expect(try store.record(namespace: "default", name: "new")?.revision == 1)
    }

    @Test func deletes() throws {
        _ = try store.create(sample("gone"))
        try store.delete(namespace: "default", name: "gone")
        #expect(try store.document(namespace: "default", name: "gone") == nil)
        #expect(throws: StoreError.self) { try store.delete(namespace: "default", name: "gone") }
    }

    @Test func listsInStableOrderWithPagesNamespacesAndSelectors() throws {
        for namespace in ["b", "a"] {
            for index in [3, 1, 2] {
                _ = try store.create(sample("s\(index)", namespace: namespace, labels: ["tier": index == 2 ? "db" : "web"]))
            }
        }
        func names(_ page: ServicePage) throws -> [String] {
            try page.documents.map { document in
                let record = try #require(ServiceDecoder.storedRecord(try JSONParser.parse(document)))
                return "\(record.service.namespace)/\(record.service.name)"
            }
        }
        let all = try store.list(namespace: nil, selector: .everything, after: nil, limit: nil)
        #expect(try names(all) == ["a/s1", "a/s2", "a/s3", "b/s1", "b/s2", "b/s3"])
        #expect(all.next == nil)
        let first = try store.list(namespace: nil, selector: .everything, after: nil, limit: 4)
        #expect(try names(first) == ["a/s1", "a/s2", "a/s3", "b/s1"])
        let second = try store.list(namespace: nil, selector: .everything, after: first.next, limit: 4)
        #expect(try names(second) == ["b/s2", "b/s3"])
        #expect(second.next == nil)
        let exact = try store.list(namespace: nil, selector: .everything, after: nil, limit: 6)
        #expect(exact.next == nil)
        #expect(try names(try store.list(namespace: "b", selector: .everything, after: nil, limit: nil)) == ["b/s1", "b/s2", "b/s3"])
        let web = try LabelSelector(parsing: "tier=web")
        let webPage = try store.list(namespace: nil, selector: web, after: nil, limit: 3)
        #expect(try names(webPage) == ["a/s1", "a/s3", "b/s1"])
        #expect(try names(try store.list(namespace: nil, selector: web, after: webPage.next, limit: 3)) == ["b/s3"])
    }

    /// Two stores on one database (two processes on a SQLite file, two replicas on PostgreSQL):
    /// what one store's dry run or refused write computed is never taken for the revision the
    /// other then commits, by its reads or by its next read-modify-write.
    @Test func anotherStoresCommitIsNeverMistakenForAWriteThatWasNotKept() throws {
        let database = try TestDatabase.fresh()
        let first = try database.open()
        let second = try database.open()
        _ = try first.create(sample("common"))
        func adding(_ ip: String) -> @Sendable (ServiceRecord?) throws -> ExternalService {
            { current in
                guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "common") }
                service.insertNormalized(EndpointAddress(ip: ip))
                return service
            }
        }
        // A dry run in the first store computes revision 2 with 10.0.0.3; the second commits
        // revision 2 with 10.0.0.4.
        let dry = try first.update(namespace: "default", name: "common", dryRun: true, adding("10.0.0.3"))
        #expect(dry.record.revision == 2)
        let committed = try second.update(namespace: "default", name: "common", adding("10.0.0.4"))
        #expect(committed.record.revision == 2)
        #expect(try first.record(namespace: "default", name: "common") == committed.record)
        let next = try first.update(namespace: "default", name: "common", adding("10.0.0.5"))
        #expect(next.record.revision == 3)
        #expect(next.record.service.addresses.map(\.ip) == ["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5"])
        #expect(try second.document(namespace: "default", name: "common")?.document == next.document)
        #expect(try second.revisions(namespace: "default", name: "common").entries.last?.document == next.document)

        // Alike for an import's dry run (revision 4 with a description) before the second store
        // commits its revision 4.
        var described = try #require(try first.record(namespace: "default", name: "common")).service
        described.description = "dry run"
        #expect(try first.importServices([described], onConflict: .replace, dryRun: true).map(\.revision) == [4])
        let again = try second.update(namespace: "default", name: "common", adding("10.0.0.6"))
        #expect(again.record.revision == 4)
        let last = try first.update(namespace: "default", name: "common", adding("10.0.0.7"))
        #expect(last.record.revision == 5 && last.record.service.description == nil)
        #expect(last.record.service.addresses.map(\.ip) == ["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7"])
    }

    @Test func readsSeeCommittedWritesImmediately() throws {
        _ = try store.create(sample("fresh"))
        for revision in 2...20 {
            _ = try store.update(namespace: "default", name: "fresh") { current in
                var service = current!.service
                service.description = "r\(revision)"
                return service
            }
            #expect(try store.document(namespace: "default", name: "fresh")?.revision == revision)
        }
    }

    /// Reads from the readers' pool racing one writer: once a write is acknowledged every read
    /// shows at least its revision, and no reader ever sees a revision go back (the exclusive
    /// SQLite store's cache has its own test in `DocumentCacheTests`).
    @Test func readsRacingWritesNeverGoBackwards() async throws {
        try await expectReadsNeverGoBackwards(store, writes: 100, readsPerReader: 300)
    }

    /// Writes queued without waiting (`writeLater`, as request threads answering later do) are
    /// committed, in order, and answered once `waitForQueuedWrites` returns.
    @Test func queuedWritesAreCommittedAndAnsweredBeforeTheWaitReturns() throws {
        let store = self.store
        _ = try store.create(sample("q"))
        #expect(queueDescriptionUpdates(of: "q", count: 20, on: store) == Array(2...21))
        let record = try #require(try store.record(namespace: "default", name: "q"))
        #expect(record.revision == 21 && record.service.description == "queued 19")
    }

    /// Queued updates of one service from several threads, with no other writer: each guess is
    /// made from the one queued before it (`ServiceStore.UpdateChain`), so every one is written
    /// as guessed, none computed again on the commit thread, and the revisions and documents
    /// are exactly those of the updates applied one after the other.
    @Test func queuedUpdatesOfOneServiceGuessFromEachOther() throws {
        let store = self.store
        _ = try store.create(sample("chained"))
        let answered = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for index in 0..<25 {
                store.update(namespace: "default", name: "chained") { current in
                    guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "chained") }
                    service.addresses.append(EndpointAddress(ip: "10.7.\(worker).\(index + 1)"))
                    service.normalize()
                    return service
                } completion: { result in
                    if case .success(let update) = result { answered.withLock { $0.append(update.record.revision) } }
                }
            }
        }
        store.waitForQueuedWrites()
        #expect(answered.withLock { $0.sorted() } == Array(2...101))
        #expect(store.guessesKept.load(ordering: .relaxed) == 100)
        #expect(store.guessesRecomputed.load(ordering: .relaxed) == 0)
        let record = try #require(try store.record(namespace: "default", name: "chained"))
        #expect(record.revision == 101 && record.service.addresses.count == 102)
        #expect(try store.document(namespace: "default", name: "chained")?.document == ServiceEncoder.bytes(record))
        let history = try store.revisions(namespace: "default", name: "chained")
        #expect(history.entries.map(\.revision) == Array(1...101))
        for entry in history.entries {
            let document = try #require(entry.document)
            let stored = try #require(ServiceDecoder.storedRecord(try JSONParser.parse(document)))
            #expect(ServiceEncoder.bytes(stored) == document && stored.service.addresses.count == entry.revision + 1)
        }
    }

    /// Queued updates computed ahead from the cached record (`ServiceStore.Speculation`) racing
    /// each other and synchronous updates of the same service: a guess whose document another
    /// write replaced before it committed is computed again. Nothing is lost, revisions follow
    /// each other, and every stored revision's document (kept as a patch) encodes its record.
    @Test func racingQueuedUpdatesAreComputedAgainWhenTheirBaseMoved() throws {
        let store = self.store
        _ = try store.create(sample("raced"))
        let answered = Mutex<[Int]>([])
        @Sendable func adding(_ worker: Int, _ index: Int) -> @Sendable (ServiceRecord?) throws -> ExternalService {
            { current in
                guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "raced") }
                service.addresses.append(EndpointAddress(ip: "10.8.\(worker).\(index + 1)"))
                service.normalize()
                return service
            }
        }
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for index in 0..<25 {
                if worker == 3 {
                    // Synchronous writes, which make no guess and move the base of the others'.
                    if let update = try? store.update(namespace: "default", name: "raced", adding(worker, index)) {
                        answered.withLock { $0.append(update.record.revision) }
                    }
                    continue
                }
                store.update(namespace: "default", name: "raced", adding(worker, index)) { result in
                    if case .success(let update) = result { answered.withLock { $0.append(update.record.revision) } }
                }
            }
        }
        store.waitForQueuedWrites()
        #expect(answered.withLock { $0.sorted() } == Array(2...101))
        let record = try #require(try store.record(namespace: "default", name: "raced"))
        #expect(record.revision == 101 && record.service.addresses.count == 102)
        let history = try store.revisions(namespace: "default", name: "raced")
        #expect(history.entries.map(\.revision) == Array(1...101))
        var previous: ServiceRecord?
        for entry in history.entries {
            let document = try #require(entry.document)
            let stored = try #require(ServiceDecoder.storedRecord(try JSONParser.parse(document)))
            #expect(ServiceEncoder.bytes(stored) == document)
            if let previous {
                // Each revision adds one address to the one before.
                #expect(stored.service.addresses.count == previous.service.addresses.count + 1)
                #expect(Set(previous.service.addresses.map(\.ip)).isSubset(of: Set(stored.service.addresses.map(\.ip))))
            }
            previous = stored
        }
        #expect(try store.document(namespace: "default", name: "raced")?.document == ServiceEncoder.bytes(record))
    }

    /// A queued update's guess is written by an UPDATE that checks the stored revision itself
    /// (`replaceIfStored`, unless the database is shared) instead of reading the row first: when another store on the database
    /// (another process on the SQLite file) committed a revision since the guess's base was
    /// cached, that UPDATE changes nothing and the update is computed again from the stored
    /// row. Nothing is lost, and the next guess, from the revision just written, is kept.
    @Test func aGuessFromARevisionAnotherStoreReplacedIsComputedAgain() throws {
        let database = try TestDatabase.fresh()
        let first = try database.open()
        let second = try database.open()
        _ = try first.create(sample("moved"))
        @Sendable func adding(_ ip: String) -> @Sendable (ServiceRecord?) throws -> ExternalService {
            { current in
                guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "moved") }
                service.insertNormalized(EndpointAddress(ip: ip))
                return service
            }
        }
        func queued(_ ip: String) -> UpdateResult? {
            let answer = Mutex<UpdateResult?>(nil)
            first.update(namespace: "default", name: "moved", adding(ip)) { result in answer.withLock { $0 = try? result.get() } }
            first.waitForQueuedWrites()
            return answer.withLock { $0 }
        }
        // The first store caches revision 1; the second commits revision 2 behind its back.
        #expect(try second.update(namespace: "default", name: "moved", adding("10.0.0.3")).record.revision == 2)
        let recomputed = try #require(queued("10.0.0.4"))
        #expect(recomputed.record.revision == 3)
        #expect(recomputed.record.service.addresses.map(\.ip) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
        let kept = try #require(queued("10.0.0.5"))
        #expect(kept.record.revision == 4)
        #expect(kept.record.service.addresses.map(\.ip) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"])
        // On a shared database (several replicas) the guess is checked by reading the row first,
        // with the same outcome.
        #expect(first.guessesRecomputed.load(ordering: .relaxed) == 1)
        #expect(first.guessesKept.load(ordering: .relaxed) == 1)
        #expect(try second.document(namespace: "default", name: "moved")?.document == kept.document)
        let history = try second.revisions(namespace: "default", name: "moved").entries
        #expect(history.map(\.revision) == [1, 2, 3, 4])
        #expect(history.last?.document == kept.document)
        #expect(history.dropLast().last?.document == recomputed.document)
    }

    @Test func concurrentWritersLoseNothing() async throws {
        let store = self.store
        _ = try store.create(sample("counter"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in 0..<25 {
                        _ = try store.create(sample("w\(worker)-\(index)"))
                        _ = try store.update(namespace: "default", name: "counter") { current in
                            var service = current!.service
                            service.addresses.append(EndpointAddress(ip: "10.9.\(worker).\(index + 1)"))
                            return service
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.count() == 201)
        let counter = try #require(try store.record(namespace: "default", name: "counter"))
        #expect(counter.revision == 201)
        #expect(counter.service.addresses.count == 202)
        #expect(try store.integrityCheck() == ["ok"])
    }

    @Test func oneFailingWriteInABatchDoesNotUndoTheOthers() async throws {
        let store = self.store
        _ = try store.create(sample("taken"))
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                group.addTask {
                    do {
                        _ = try store.create(sample(index.isMultiple(of: 2) ? "taken" : "free-\(index)"))
                        return true
                    } catch StoreError.alreadyExists {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 20)
        #expect(try store.count() == 21)
    }

    /// The writes of one batch run without a savepoint each (`ServiceStore.commit`). A write
    /// refused before it changed anything, a dry run, and a write that failed after it had
    /// changed rows, queued in one batch with writes that succeed, in any order, leave exactly
    /// what the successful writes alone leave: their rows, revisions, audit lines, watch events
    /// with consecutive resource versions, and a record cache from which the next update of the
    /// dry-run service starts at its stored revision.
    @Test(arguments: [
        ["changedThenFailed", "kept a", "refused", "dry run", "kept c"],
        ["kept a", "changedThenFailed", "dry run", "refused", "kept c"],
        ["dry run", "kept a", "refused", "kept c", "changedThenFailed"],
        ["refused", "dry run", "changedThenFailed", "kept a", "kept c"],
    ])
    func failedWritesInABatchLeaveNothingOfTheirOwn(order: [String]) throws {
        struct ChangedThenFailed: Error {}
        let store = self.store
        for name in ["a", "b", "c"] { _ = try store.create(sample(name)) }
        let before = try store.watchEvents(after: 0, limit: 100).events.last?.resourceVersion ?? 0
        let results = Mutex<[String: Result<UpdateResult, any Error>]>([:])
        func describing(_ text: String) -> @Sendable (ServiceRecord?) throws -> ExternalService {
            { current in
                guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "missing") }
                service.description = text
                return service
            }
        }
        // The commit thread holds this write (alone in its batch) until every other one is
        // queued: they then make up the next batch.
        let (entered, gate) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        store.writeLater(
            { _ in
                entered.signal()
                gate.wait()
            }, completion: { _ in })
        entered.wait()
        let audit = AuditContext(actor: "tester", requestID: "batch", action: "updateService")
        for write in order {
            let record: @Sendable (Result<UpdateResult, any Error>) -> Void = { result in results.withLock { $0[write] = result } }
            switch write {
            case "kept a": store.update(namespace: "default", name: "a", audit: audit, describing("kept"), completion: record)
            case "kept c": store.update(namespace: "default", name: "c", audit: audit, describing("kept"), completion: record)
            case "refused": store.update(namespace: "default", name: "missing", audit: audit, describing("never"), completion: record)
            case "dry run": store.update(namespace: "default", name: "b", audit: audit, dryRun: true, describing("dry"), completion: record)
            default:
                store.writeLater(
                    { connection -> UpdateResult in
                        try connection.prepare(
                            "INSERT INTO audit_log (time, actor, action, outcome, status, request_id, detail) VALUES ('2026-01-01T00:00:00Z', 'tester', 'x', 'success', 200, 'batch', 'never kept')"
                        ).run()
                        try connection.prepare("UPDATE services SET revision = revision + 7 WHERE name = 'b'").run()
                        throw ChangedThenFailed()
                    }, completion: record)
            }
        }
        gate.signal()
        store.waitForQueuedWrites()

        let outcome = results.withLock { $0 }
        #expect(try outcome["kept a"]?.get().record.revision == 2)
        #expect(try outcome["kept c"]?.get().record.revision == 2)
        #expect(try outcome["dry run"]?.get().record.service.description == "dry")
        #expect(throws: StoreError.self) { try outcome["refused"]?.get() }
        #expect(throws: ChangedThenFailed.self) { try outcome["changedThenFailed"]?.get() }
        #expect(try store.record(namespace: "default", name: "a")?.service.description == "kept")
        #expect(try store.record(namespace: "default", name: "c")?.service.description == "kept")
        let b = try #require(try store.record(namespace: "default", name: "b"))
        #expect(b.revision == 1 && b.service.description == nil)
        let events = try store.watchEvents(after: before, limit: 100).events
        #expect(events.map(\.name).sorted() == ["a", "c"])
        #expect(events.map(\.resourceVersion) == [before + 1, before + 2])
        let lines = try store.audit(AuditQuery(actor: "tester"))
        #expect(lines.filter { $0.outcome == .success }.map { $0.name ?? "" }.sorted() == ["a", "c"])
        #expect(lines.allSatisfy { $0.detail != "never kept" })
        // The dry run's record was not kept in the cache: the next update starts from revision 1.
        let next = try store.update(namespace: "default", name: "b", describing("after"))
        #expect(next.record.revision == 2 && next.record.service.description == "after")
        #expect(try store.watchEvents(after: before, limit: 100).events.map(\.resourceVersion) == [before + 1, before + 2, before + 3])
    }
}

/// One writer updates a service `writes` times (each acknowledged revision read back at once)
/// while two readers read it `readsPerReader` times: no read shows less than an acknowledged
/// revision, and no reader sees a revision go back.
func expectReadsNeverGoBackwards(_ store: ServiceStore, writes: Int, readsPerReader: Int) async throws {
    _ = try store.create(sample("r"))
    await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            for index in 0..<writes {
                let result = try store.update(namespace: "default", name: "r") { current in
                    var service = try #require(current).service
                    service.description = "write \(index)"
                    return service
                }
                // Acknowledged: every read from now on shows at least this revision.
                let read = try store.document(namespace: "default", name: "r")
                #expect((read?.revision ?? 0) >= result.record.revision)
            }
        }
        for _ in 0..<2 {
            group.addTask {
                var last = 0
                for _ in 0..<readsPerReader {
                    let revision = try store.document(namespace: "default", name: "r")?.revision ?? 0
                    #expect(revision >= last)
                    last = revision
                }
            }
        }
    }
    #expect(try store.document(namespace: "default", name: "r")?.revision == writes + 1)
}
