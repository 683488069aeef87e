import Foundation
import RegistryCore
import Testing

@testable import RegistryStorage

/// Issue 14: a large service's document is kept apart from its row, as a whole part and the
/// patches of the later revisions (`storeDocument`), so that adding or removing an address does
/// not rewrite the whole document; what is served (documents, ETags, revisions, lists) stays
/// byte for byte what the writes answered, read back by another store that caches nothing.
@Suite struct DocumentPartsTests {
    private static func replacing(with service: ExternalService) -> @Sendable (ServiceRecord?) throws -> ExternalService {
        { _ in service }
    }

    /// The parts stored for `default/name`: whole ones, patches, and the bytes its row keeps.
    private func parts(_ store: ServiceStore, _ name: String) throws -> (whole: Int, patches: Int, inline: Int) {
        let connection = try store.database.connect(readOnly: true)
        let statement = try connection.prepare(
            """
            SELECT coalesce(sum(whole), 0), count(*) - coalesce(sum(whole), 0),
                   coalesce((SELECT length(document) FROM services WHERE namespace = 'default' AND name = ?1), -1)
            FROM service_document_parts WHERE namespace = 'default' AND name = ?1
            """)
        try statement.bind(.text(name))
        _ = try statement.step()
        return (statement.int(0), statement.int(1), statement.int(2))
    }

    @Test func changesOfALargeServiceAppendPatchesAndReadBackExactly() throws {
        let database = try TestDatabase.fresh()
        let store = try database.open()
        // Another store on the same data caches nothing of it: it reads what is stored.
        let reader = try database.open()
        var document = try store.create(largeService("big", count: 3_000)).document
        #expect(document.count > ServiceStore.inlineBytes)
        #expect(try parts(store, "big") == (whole: 1, patches: 0, inline: 0))
        var compactions = 0
        var last = 0
        // Until the parts were written whole twice (the quarter of the document's bytes comes
        // before `maxPatches` here), and ten changes after.
        var changes = 0
        var sinceCompaction = 0
        while changes < 2 * (ServiceStore.maxPatches + 1) + 10 && (compactions < 2 || sinceCompaction < 10) {
            let index = changes
            changes += 1
            let result = try store.update(namespace: "default", name: "big", oneAddressChange(index))
            document = result.document
            let stored = try parts(store, "big")
            #expect(stored.whole == 1 && stored.inline == 0)
            #expect(stored.patches <= ServiceStore.maxPatches)
            // What the writer remembers of the parts (so that the next change need not count
            // them) is what they are.
            let counted = try ServiceStore.partsState(ServiceKey(namespace: "default", name: "big"), try store.database.connect(readOnly: true))
            let known = store.recordCache.peek(ServiceKey(namespace: "default", name: "big"))?.parts
            #expect(known == counted && counted.patches == stored.patches, "change \(index)")
            if stored.patches < last {
                compactions += 1
                sinceCompaction = 0
            } else {
                sinceCompaction += 1
            }
            last = stored.patches
            let read = try #require(try reader.document(namespace: "default", name: "big"))
            #expect(read.document == document)
            #expect(read.revision == result.record.revision && read.etag == result.record.etag)
        }
        #expect(compactions >= 2)
        #expect(try reader.record(namespace: "default", name: "big")?.service == store.record(namespace: "default", name: "big")?.service)
        #expect(try reader.list(namespace: nil, selector: .everything, after: nil, limit: nil).documents == [document])
        // The writer lists the bytes it wrote (its record cache), the reader rebuilds them.
        #expect(try store.list(namespace: nil, selector: .everything, after: nil, limit: nil).documents == [document])
        #expect(try reader.allRecords().map(\.revision) == [changes + 1])
        // The history and the watch log are those of any service.
        #expect(try reader.revisions(namespace: "default", name: "big").entries.last?.document == document)
        // The reader writes too: its read-modify-write starts from the stored parts.
        let next = try reader.update(namespace: "default", name: "big", oneAddressChange(200)).document
        #expect(try store.document(namespace: "default", name: "big")?.document == next)
        #expect(try reader.document(namespace: "default", name: "big")?.document == next)

        // Small again: back in its row, the parts deleted; large again: apart again.
        let small = try store.update(namespace: "default", name: "big", Self.replacing(with: largeService("big", count: 10))).document
        #expect(try parts(store, "big") == (whole: 0, patches: 0, inline: small.count))
        #expect(try reader.document(namespace: "default", name: "big")?.document == small)
        let large = try store.update(namespace: "default", name: "big", Self.replacing(with: largeService("big", count: 2_500))).document
        #expect(try parts(store, "big") == (whole: 1, patches: 0, inline: 0))
        #expect(try reader.document(namespace: "default", name: "big")?.document == large)
        try store.delete(namespace: "default", name: "big")
        #expect(try parts(store, "big") == (whole: 0, patches: 0, inline: -1))
        #expect(try reader.document(namespace: "default", name: "big") == nil)
    }

    /// A large document stored in its row (as before the parts existed) is read as it is and
    /// moved apart by its next change.
    @Test func aLargeDocumentStoredInItsRowMovesApartAtItsNextChange() throws {
        let database = try TestDatabase.fresh()
        let store = try database.open()
        let created = try store.create(largeService("big", count: 3_000)).document
        let connection = try store.database.connect(readOnly: false)
        try connection.execute("DELETE FROM service_document_parts")
        try connection.prepare("UPDATE services SET document = ? WHERE name = 'big'").bind(.blob(created)).run()
        let reader = try database.open()
        #expect(try reader.document(namespace: "default", name: "big")?.document == created)
        let changed = try reader.update(namespace: "default", name: "big", oneAddressChange(0)).document
        #expect(try parts(reader, "big") == (whole: 1, patches: 0, inline: 0))
        #expect(try database.open().document(namespace: "default", name: "big")?.document == changed)
        let again = try reader.update(namespace: "default", name: "big", oneAddressChange(1)).document
        #expect(try parts(reader, "big") == (whole: 1, patches: 1, inline: 0))
        #expect(try database.open().document(namespace: "default", name: "big")?.document == again)
    }

    /// Small patches reach the count bound before the quarter of the document's bytes: the
    /// change after `maxPatches` patches writes the document whole again, and every state in
    /// between reads back exactly.
    @Test func theCountOfPatchesIsBoundedToo() throws {
        let store = try TestDatabase.fresh().open()
        let connection = try store.database.connect(readOnly: false)
        let key = ServiceKey(namespace: "default", name: "parts")
        var document = [UInt8](repeating: UInt8(ascii: "a"), count: 2 * ServiceStore.inlineBytes)
        var state = try ServiceStore.storeDocument(
            DocumentBytes(document), key: key, revision: 1, previousBytes: nil, patch: nil, into: connection
        ).parts
        #expect(state == .whole)
        try connection.execute("BEGIN")
        for revision in 2...(ServiceStore.maxPatches + 3) {
            var next = document
            next[revision * 7 % next.count] = UInt8(ascii: "b") + UInt8(revision % 20)
            let patch = DocumentPatch(between: document, and: next)
            state = try ServiceStore.storeDocument(
                DocumentBytes(next), key: key, revision: revision, previousBytes: document.count, patch: patch, known: state, into: connection
            ).parts
            document = next
            // Revision 1 whole, then maxPatches patches, then whole again.
            #expect(state.patches == (revision <= ServiceStore.maxPatches + 1 ? revision - 1 : revision - ServiceStore.maxPatches - 2))
            #expect(state == (try ServiceStore.partsState(key, connection)))
            if revision % 97 == 0 || revision >= ServiceStore.maxPatches { #expect(try ServiceStore.apartDocument(connection, key: key) == document) }
        }
        try connection.execute("COMMIT")
        #expect(try ServiceStore.apartDocument(connection, key: key) == document)
    }
}
