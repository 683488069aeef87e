import Foundation
import RegistryCore
import Synchronization
import Testing

@testable import RegistryStorage

/// Issue 14: the history keeps an update as the byte patch from the revision before, and every
/// history answer (whole, paged, after pruning, across a deletion and re-creation) still shows
/// the very documents the writes stored and answered.
@Suite struct HistoryPatchTests {
    private func store() throws -> ServiceStore {
        try freshStore()
    }

    /// Documents stored per history row, counting rows kept as patches.
    private func storedForms(_ store: ServiceStore) throws -> (whole: Int, patches: Int) {
        let connection = try store.database.connect(readOnly: true)
        let statement = try connection.prepare("SELECT count(document), count(patch) FROM service_revisions")
        _ = try statement.step()
        return (statement.int(0), statement.int(1))
    }

    @Test func revisionsKeptAsPatchesReadBackExactly() throws {
        let store = try store()
        var documents = [try store.create(largeService("big", count: 2_000)).document]
        let depth = ServiceStore.maxPatchDepth
        let changes = 2 * (depth + 1) + 20
        for index in 0..<changes {
            let result = try store.update(namespace: "default", name: "big", oneAddressChange(index))
            #expect(result.changed)
            documents.append(result.document)
        }
        let forms = try storedForms(store)
        // Whole every `maxPatchDepth + 1` revisions, patches in between.
        #expect(forms.whole == 3 && forms.patches == changes - 2)
        let history = try store.revisions(namespace: "default", name: "big").entries
        #expect(history.map(\.revision) == Array(1...(changes + 1)))
        #expect(history.map(\.document) == documents)
        // Served bytes: the current document is the last one answered.
        #expect(try store.document(namespace: "default", name: "big")?.document == documents.last)
        // Paged from anywhere: each page, and the revision before it, rebuilt alone.
        for start in [0, 1, 5, depth, depth + 1, depth + 2, depth + 40, 2 * depth + 2, changes - 3] {
            let afterID = start == 0 ? 0 : history[start - 1].id
            let page = try store.revisions(namespace: "default", name: "big", afterID: afterID, limit: 7)
            #expect(page.entries.map(\.document) == Array(documents[start..<min(start + 7, documents.count)]))
            #expect(page.previous?.document == (start == 0 ? nil : documents[start - 1]))
        }
    }

    /// A small service's changes are kept as patches too (its document is spliced like a large
    /// one's; encoded whole, the one edit from the revision field to the new address was more
    /// than half of a 12-address document, and every revision was stored whole).
    @Test func aSmallServiceKeepsPatchesToo() throws {
        let store = try store()
        let addresses = (1...12).map { EndpointAddress(ip: "10.1.0.\($0)") }
        var documents = [
            try store.create(ExternalService(name: "small", ports: [ServicePort(port: 80)], addresses: EndpointAddressList(addresses))).document
        ]
        for index in 1...5 {
            documents.append(
                try store.update(namespace: "default", name: "small") { current in
                    guard var service = current?.service else { throw StoreError.notFound(namespace: "default", name: "small") }
                    service.insertNormalized(EndpointAddress(ip: "10.2.0.\(index)"))
                    return service
                }.document)
        }
        let forms = try storedForms(store)
        #expect(forms.whole == 1 && forms.patches == 5)
        #expect(try store.revisions(namespace: "default", name: "small").entries.map(\.document) == documents)
    }

    @Test func pruningKeepsTheRemainingRevisionsExact() throws {
        let store = try store()
        var documents = [try store.create(largeService("big", count: 500)).document]
        for index in 0..<50 { documents.append(try store.update(namespace: "default", name: "big", oneAddressChange(index)).document) }
        var deleted = 0
        while case let count = try store.pruneHistory(keep: 12, batch: 5), count > 0 {
            deleted += count
            // Between batches too, what is left reads back.
            let left = try store.revisions(namespace: "default", name: "big").entries
            #expect(left.map(\.document) == left.map { documents[$0.revision - 1] })
        }
        #expect(deleted == 39)
        let left = try store.revisions(namespace: "default", name: "big").entries
        #expect(left.map(\.revision) == Array(40...51))
        #expect(left.map(\.document) == Array(documents.suffix(12)))
        // The service goes on from there, its next revisions patches again.
        let next = try store.update(namespace: "default", name: "big", oneAddressChange(99)).document
        #expect(try store.revisions(namespace: "default", name: "big").entries.last?.document == next)
    }

    /// The writer remembers the depth of the history row each change recorded (`RecordCache`),
    /// so the next change of the service chains its patch without reading that row. Retention
    /// pruning down to one revision between changes stores that row whole behind the writer's
    /// back: the depth it remembers is then too high, which only ends the chain of patches
    /// sooner, and every revision left still reads back exactly, queued changes' too.
    @Test func changesChainPatchesFromTheRememberedDepthThroughPruning() throws {
        let store = try store()
        var documents = [try store.create(largeService("big", count: 300)).document]
        for round in 0..<4 {
            for index in 0..<5 {
                documents.append(try store.update(namespace: "default", name: "big", oneAddressChange(round * 10 + index)).document)
            }
            let answered = Mutex<[[UInt8]]>([])
            for index in 5..<8 {
                store.update(namespace: "default", name: "big", oneAddressChange(round * 10 + index)) { result in
                    if case .success(let update) = result { answered.withLock { $0.append(update.document) } }
                }
            }
            store.waitForQueuedWrites()
            documents += answered.withLock { $0 }
            let left = try store.revisions(namespace: "default", name: "big").entries
            #expect(left.map(\.document) == left.map { documents[$0.revision - 1] })
            _ = try store.pruneHistory(keep: 1, batch: 1_000)
            let last = try store.revisions(namespace: "default", name: "big").entries
            #expect(last.map(\.revision) == [documents.count])
            #expect(last.map(\.document) == [documents.last])
        }
        // The history's rows (those kept only for watch events aside): whole, then patches.
        func listed() throws -> [(whole: Bool, depth: Int)] {
            let connection = try store.database.connect(readOnly: true)
            let statement = try connection.prepare("SELECT document IS NOT NULL, depth FROM service_revisions WHERE pruned = 0 ORDER BY id")
            var rows: [(whole: Bool, depth: Int)] = []
            while try statement.step() { rows.append((statement.int(0) == 1, statement.int(1))) }
            return rows
        }
        #expect(try listed().map(\.whole) == [true])
        #expect(try listed().first?.depth == 0)
        documents.append(try store.update(namespace: "default", name: "big", oneAddressChange(99)).document)
        // A patch, at a depth past the whole row's (remembered from before the pruning).
        let rows = try listed()
        #expect(rows.map(\.whole) == [true, false])
        #expect(rows.last.map { $0.depth >= 1 } == true)
        #expect(try store.revisions(namespace: "default", name: "big").entries.map(\.document) == Array(documents.suffix(2)))
    }

    @Test func watchEventsNameTheirRevisionAndKeepTheirDocumentsThroughPruning() throws {
        let store = try store()
        let start = try store.resourceVersionState().current
        var documents = [try store.create(largeService("big", count: 1_000)).document]
        for index in 0..<40 { documents.append(try store.update(namespace: "default", name: "big", oneAddressChange(index)).document) }
        try store.delete(namespace: "default", name: "big")
        // Stored: the DELETED event alone carries a document.
        let connection = try store.database.connect(readOnly: true)
        let stored = try connection.prepare("SELECT count(*) FROM watch_events WHERE length(document) > 0")
        _ = try stored.step()
        #expect(stored.int(0) == 1)
        func check() throws {
            let events = try store.watchEvents(after: start, limit: 100).events
            #expect(events.map(\.type) == [.added] + Array(repeating: .modified, count: 40) + [.deleted])
            #expect(events.map(\.document) == documents + [documents[40]])
            // From any point, alone.
            for skip in [1, 17, 35] {
                #expect(try store.watchEvents(after: start + skip, limit: 3).events.map(\.document) == Array(documents[skip..<(skip + 3)]))
            }
        }
        try check()
        // The history's retention deletes the revisions the events name: the events keep their documents.
        while try store.pruneHistory(keep: 2, batch: 7) > 0 {}
        #expect(try store.revisions(namespace: "default", name: "big").entries.count == 2)
        try check()
    }

    /// Stored rows of the history, and of them those kept only for the watch log.
    private func revisionRows(_ store: ServiceStore) throws -> (all: Int, pruned: Int) {
        let connection = try store.database.connect(readOnly: true)
        let statement = try connection.prepare("SELECT count(*), coalesce(sum(pruned), 0) FROM service_revisions")
        _ = try statement.step()
        return (statement.int(0), statement.int(1))
    }

    /// Bytes of documents the watch log stores itself (not named through the history).
    private func eventDocumentBytes(_ store: ServiceStore) throws -> Int {
        let connection = try store.database.connect(readOnly: true)
        let statement = try connection.prepare("SELECT coalesce(sum(length(document)), 0) FROM watch_events")
        _ = try statement.step()
        return statement.int(0)
    }

    /// Pruning the history of a large service writes no whole document per revision: the
    /// revisions the watch log still names stay as they are (patches), out of the history, and
    /// go with their events; every event and every history revision still reads back exactly.
    @Test func revisionsNamedByEventsStayUntilTheirEventsGo() throws {
        let store = try store()
        let start = try store.resourceVersionState().current
        var documents = [try store.create(largeService("big", count: 1_000)).document]
        for index in 0..<60 { documents.append(try store.update(namespace: "default", name: "big", oneAddressChange(index)).document) }
        #expect(try revisionRows(store) == (all: 61, pruned: 0))
        while try store.pruneHistory(keep: 5, batch: 7) > 0 {}
        // Out of the history, kept for the events: no event got a document of its own.
        #expect(try store.revisions(namespace: "default", name: "big").entries.map(\.revision) == Array(57...61))
        #expect(try revisionRows(store) == (all: 61, pruned: 56))
        #expect(try eventDocumentBytes(store) == 0)
        #expect(try store.watchEvents(after: start, limit: 100).events.map(\.document) == documents)
        // The watch log's retention takes the events and the revisions kept for them.
        var deleted = 0
        while case let count = try store.pruneWatchEvents(keep: 20, olderThan: "1970-01-01T00:00:00Z", batch: 9), count > 0 {
            deleted += count
            let left = try store.watchEvents(after: start + deleted, limit: 100).events
            #expect(left.map(\.document) == Array(documents.suffix(left.count)))
            #expect(try store.revisions(namespace: "default", name: "big").entries.map(\.document) == Array(documents.suffix(5)))
        }
        #expect(deleted == 41)
        // Events of revisions 42…61 are left: of the pruned revisions, 42…56 stay.
        #expect(try revisionRows(store) == (all: 20, pruned: 15))
        #expect(try store.watchEvents(after: start + deleted, limit: 100).events.map(\.document) == Array(documents.suffix(20)))
        // Once no event names them, pruning the history deletes the revisions outright.
        #expect(try store.pruneWatchEvents(keep: 0, olderThan: "1970-01-01T00:00:00Z", batch: 100) == 20)
        #expect(try revisionRows(store) == (all: 5, pruned: 0))
        let next = try store.update(namespace: "default", name: "big", oneAddressChange(99)).document
        #expect(try store.revisions(namespace: "default", name: "big").entries.map(\.document) == Array(documents.suffix(5)) + [next])
        #expect(try eventDocumentBytes(store) == 0)
    }

    /// Migration 0012 gives the rows written before it the version of the event that names them
    /// (0 when none does), so that retention treats them as any later row.
    @Test func theMigrationGivesEarlierRowsTheirEventVersions() throws {
        let database = try TestDatabase.fresh()
        let store = try database.open()
        let start = try store.resourceVersionState().current
        var documents = [try store.create(largeService("big", count: 1_000)).document]
        for index in 0..<12 { documents.append(try store.update(namespace: "default", name: "big", oneAddressChange(index)).document) }
        try store.delete(namespace: "default", name: "big")
        while try store.pruneWatchEvents(keep: 11, olderThan: "1970-01-01T00:00:00Z", batch: 100) > 0 {}
        let connection = try store.database.connect(readOnly: false)
        func versions() throws -> [Int] {
            let statement = try connection.prepare("SELECT event_version FROM service_revisions ORDER BY id")
            var versions: [Int] = []
            while try statement.step() { versions.append(statement.int(0)) }
            connection.resetStatements()
            return versions
        }
        let written = try versions()
        // Revisions 1…13, then the deletion's row (named by no event): their events' versions.
        #expect(written == Array((start + 1)...(start + 14)))
        // As the rows were before 0012, then the migration's SQL again.
        try connection.execute("DROP INDEX service_revisions_pruned")
        try connection.execute("ALTER TABLE service_revisions DROP COLUMN event_version")
        let migration = try #require(try database.schemaMigrations().first { $0.version == 12 })
        try connection.execute(migration.sql)
        // The events of revisions 1…3 are gone (the newest 11 kept): 0 for them. The deletion's
        // row has the uid and revision of the last one, whose event it takes (no matter: a
        // deletion's row is deleted whatever its version).
        let migrated = try versions()
        #expect(migrated == [0, 0, 0] + Array((start + 4)...(start + 13)) + [start + 13])
        #expect(try store.watchEvents(after: start + 3, limit: 100).events.map(\.document) == Array(documents.suffix(10)) + [documents[12]])
    }

    @Test func deletionAndRecreationStartAWholeRevision() throws {
        let store = try store()
        let first = try store.create(largeService("big", count: 300)).document
        let second = try store.update(namespace: "default", name: "big", oneAddressChange(0)).document
        try store.delete(namespace: "default", name: "big")
        let again = try store.create(largeService("big", count: 300)).document
        let more = try store.update(namespace: "default", name: "big", oneAddressChange(1)).document
        let history = try store.revisions(namespace: "default", name: "big").entries
        #expect(history.map(\.revision) == [1, 2, 2, 1, 2])
        #expect(history.map(\.document) == [first, second, nil, again, more])
        #expect(try storedForms(store) == (whole: 2, patches: 2))
    }

    /// The rows of each history row that `previous_id` links (`SELECT id, previous_id`).
    private func links(_ connection: any SQLConnection) throws -> [[SQLValue]] {
        let statement = try connection.prepare("SELECT id, previous_id FROM service_revisions ORDER BY id")
        var rows: [[SQLValue]] = []
        while try statement.step() { rows.append([statement.value(0), statement.value(1)]) }
        connection.resetStatements()
        return rows
    }

    /// Migration 0018 gives the patches written before it the row each applies to (the one just
    /// before it of the same name), and the watch events the row they name, so that the history,
    /// its pages and the watch log read them as before without the index every revision went into.
    @Test func migration18LinksEarlierPatchesAndKeepsEveryAnswer() throws {
        let database = try TestDatabase.fresh()
        let store = try database.open()
        let start = try store.resourceVersionState().current
        var documents: [[UInt8]?] = [try store.create(largeService("big", count: 1_000)).document]
        _ = try store.create(largeService("other", count: 500))
        // The two services' rows interleave.
        for index in 0..<6 {
            documents.append(try store.update(namespace: "default", name: "big", oneAddressChange(index)).document)
            if index < 3 { _ = try store.update(namespace: "default", name: "other", oneAddressChange(index)) }
        }
        try store.delete(namespace: "default", name: "big")
        documents.append(nil)
        documents.append(try store.create(largeService("big", count: 1_000)).document)
        documents.append(try store.update(namespace: "default", name: "big", oneAddressChange(50)).document)
        let connection = try store.database.connect(readOnly: false)
        let linked = try links(connection)
        // Each patch names the row before it of its name (6 + 1 of `big`, 3 of `other`); whole rows and the deletion none.
        #expect(linked.filter { $0[1] != .null }.count == 10)
        let history = try store.revisions(namespace: "default", name: "big").entries
        #expect(history.map(\.document) == documents)
        let events = try store.watchEvents(after: start, limit: 100).events.map(\.document)
        // As the rows were before 0018, then its SQL again.
        var undo = [
            "DROP INDEX service_revisions_patches", "DROP INDEX service_revisions_by_service",
            "ALTER TABLE service_revisions DROP COLUMN previous_id", "ALTER TABLE watch_events DROP COLUMN revision_id",
            "CREATE INDEX service_revisions_by_service ON service_revisions (namespace, name, id)",
        ]
        if case .postgresql = database {
            undo += [
                "DROP TRIGGER service_revisions_link_previous ON service_revisions", "DROP FUNCTION service_revisions_link_previous()",
                "DROP TRIGGER service_revisions_name_in_event ON service_revisions", "DROP FUNCTION service_revisions_name_in_event()",
            ]
        }
        for sql in undo { try connection.execute(sql) }
        let migration = try #require(try database.schemaMigrations().first { $0.version == 18 })
        try connection.execute(migration.sql)
        #expect(try links(connection) == linked)
        #expect(try store.revisions(namespace: "default", name: "big").entries.map(\.document) == documents)
        #expect(try store.watchEvents(after: start, limit: 100).events.map(\.document) == events)
        // A page that starts inside a chain of patches, and the revision before it.
        let page = try store.revisions(namespace: "default", name: "big", afterID: history[2].id, limit: 2)
        #expect(page.entries.map(\.id) == [history[3].id, history[4].id])
        #expect(page.entries.map(\.document) == Array(documents[3...4]))
        #expect(page.previous?.document == documents[2])
    }

    /// A change whose previous history row the writer has not cached (a new process) finds it,
    /// the end of the chain of patches after the newest whole row, and is kept as a patch of it.
    @Test func aChangeTheWriterHasNotCachedFindsTheLastRow() throws {
        let database = try TestDatabase.fresh()
        let first = try database.open()
        var documents = [try first.create(largeService("big", count: 1_000)).document]
        documents.append(try first.update(namespace: "default", name: "big", oneAddressChange(0)).document)
        for index in 1..<3 {
            documents.append(try database.open().update(namespace: "default", name: "big", oneAddressChange(index)).document)
        }
        let store = try database.open()
        #expect(try storedForms(store) == (whole: 1, patches: 3))
        let connection = try store.database.connect(readOnly: true)
        let linked = try links(connection)
        #expect(linked.map { $0[1] } == [.null, linked[0][0], linked[1][0], linked[2][0]])
        #expect(try store.revisions(namespace: "default", name: "big").entries.map(\.document) == documents)
    }

    /// PostgreSQL: a replica of a version before migration 0018 may still write while others run
    /// it (a rolling upgrade). Its event names no history row and comes before the row; its
    /// patch names no row before it. The migration's triggers link both, so the history and the
    /// watch log read them.
    @Test func postgreSQLLinksWhatAnEarlierVersionWrites() throws {
        let database = try TestDatabase.fresh()
        guard case .postgresql = database else { return }
        let store = try database.open()
        let start = try store.resourceVersionState().current
        let created = try store.create(largeService("big", count: 1_000))
        let changed = try store.update(namespace: "default", name: "big", oneAddressChange(0))
        let connection = try store.database.connect(readOnly: false)
        // The patch from revision 2 to a revision 3 that adds one address, written as an earlier version would.
        var next = changed.record.service
        next.insertNormalized(EndpointAddress(ip: "10.201.0.1"))
        var record = changed.record.replacing(service: next, revision: 3, updatedAt: changed.record.updatedAt)
        let (document, patch) = ServiceEncoder.documentAndPatch(&record, previous: changed.record, document: DocumentBytes(changed.document))
        let version = start + 3
        try connection.execute("BEGIN")
        try connection.execute("UPDATE watch_state SET resource_version = \(version) WHERE id = 1")
        try connection.prepare(
            """
            INSERT INTO watch_events (resource_version, type, namespace, name, labels, time, document, uid, revision)
            VALUES (?, 'MODIFIED', 'default', 'big', '{}', 't', ?, ?, 3)
            """
        ).bind(.integer(version), .blob([]), .text(record.uid)).run()
        try connection.prepare(
            """
            INSERT INTO service_revisions (namespace, name, uid, revision, time, actor, action, request_id, patch, depth, event_version)
            VALUES ('default', 'big', ?, 3, 't', 'a', 'update', 'r', ?, 2, ?)
            """
        ).bind(.text(record.uid), .blob(patch.serialized), .integer(version)).run()
        try connection.execute("COMMIT")
        let history = try store.revisions(namespace: "default", name: "big").entries
        #expect(history.map(\.document) == [created.document, changed.document, document.flattened])
        #expect(try store.watchEvents(after: start, limit: 10).events.map(\.document) == history.compactMap(\.document))
    }
}
