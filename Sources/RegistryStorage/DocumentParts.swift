import RegistryCore

/// Issue 14: a large service's document is kept apart from its `services` row, so that a change
/// of a few addresses does not rewrite the whole document (~330 KB for 10,000 addresses) in the
/// database: the row keeps an empty `document`, and `service_document_parts` holds the document
/// of one revision (`whole` = 1) followed by the byte patches (`DocumentPatch`) of the later
/// revisions, in revision order (migration 0011). A change appends its patch, a few hundred
/// bytes, unless that would make more than `maxPatches` patches or patches of more than a
/// quarter of the document: it then writes the document whole again and deletes them, so that
/// reading it back applies at most `maxPatches` patches. A document of at most `inlineBytes`
/// stays in its row.
///
/// The served bytes, ETags and revisions are the same either way: only where the bytes are
/// stored changes. Reads of a document not cached (`document(namespace:name:)`, lists, the
/// write path's read-modify-write) rebuild it with `apartDocument`.
extension ServiceStore {
    /// Documents of at most this many bytes stay in the `services` row (about 2,000 addresses).
    static let inlineBytes = 64 << 10
    /// The most patches that follow the whole document before it is written whole again. Each
    /// whole write costs the document's bytes twice (the WAL, then the database file); reading
    /// it back costs one chunk's edit per patch (`DocumentPatch.apply(_:to:)`) and a few copies
    /// of the document (cut into chunks, joined). Measured on adds to a service of 10,000
    /// addresses: ~25 % faster at 128 than at 32, and (with the history's `maxPatchDepth`
    /// raised alike) ~55 % faster at 1,024 than at 128.
    static let maxPatches = 1024

    /// The document of a service kept apart: the whole part with the patches after it applied.
    /// Throws `StoreError.unreadable` when the parts do not rebuild (a damaged database).
    static func apartDocument(_ connection: any SQLConnection, key: ServiceKey) throws -> [UInt8] {
        let statement = try connection.prepare(
            "SELECT whole, bytes FROM service_document_parts WHERE namespace = ? AND name = ? ORDER BY revision")
        try statement.bind(.text(key.namespace), .text(key.name))
        var document: [UInt8]?
        var patches: [DocumentPatch] = []
        while try statement.step() {
            if statement.int(0) == 1 {
                document = statement.blob(1)
                patches = []
            } else if let patch = DocumentPatch(serialized: statement.blob(1)) {
                patches.append(patch)
            } else {
                throw StoreError.unreadable(namespace: key.namespace, name: key.name)
            }
        }
        guard var document, DocumentPatch.apply(patches, to: &document) else {
            throw StoreError.unreadable(namespace: key.namespace, name: key.name)
        }
        return document
    }

    /// `document` as a `services` row stores it (`stored`, possibly empty) resolved to the
    /// service's document: the row's own bytes, or the parts kept apart when it is empty.
    static func document(_ stored: [UInt8], _ connection: any SQLConnection, key: ServiceKey) throws -> [UInt8] {
        stored.isEmpty ? try apartDocument(connection, key: key) : stored
    }

    /// What the `services` row of revision `revision` stores in its `document` column, after
    /// writing the parts kept apart: `document` itself when it stays inline (deleting the parts
    /// of a document that was apart before, when `previous` says it may have been), else an
    /// empty blob, with `patch` appended to the parts when the document was apart already and
    /// the patches stay within their bounds, or the document written whole in place of them.
    ///
    /// - Parameters:
    ///   - previousBytes: the byte count of the document this revision replaces: nil for a new
    ///     service, `Int.max` when not known.
    ///   - patch: the edits from that document to `document`, when known.
    static func storeDocument(
        _ document: DocumentBytes, key: ServiceKey, revision: Int, previousBytes previous: Int?, patch: DocumentPatch?,
        known: DocumentPartsState? = nil, into connection: any SQLConnection
    ) throws -> (stored: [UInt8], parts: DocumentPartsState) {
        guard document.count > inlineBytes else {
            if let previous, previous > inlineBytes { try deleteParts(key, from: connection) }
            return (document.flattened, .inline)
        }
        if let patch, previous != nil {
            // The patches after the whole part: how many, and their bytes (as the writer left
            // them, when it knows, see `RecordCache.Entry`; else counted).
            let state = try known ?? partsState(key, connection)
            let serialized = patch.serialized
            if state.apart && state.patches < maxPatches && state.patchBytes + serialized.count <= document.count / 4 {
                try connection.prepare("INSERT INTO service_document_parts (namespace, name, revision, whole, bytes) VALUES (?, ?, ?, 0, ?)")
                    .bind(.text(key.namespace), .text(key.name), .integer(revision), .blob(serialized)).run()
                return ([], DocumentPartsState(apart: true, patches: state.patches + 1, patchBytes: state.patchBytes + serialized.count))
            }
        }
        if previous != nil { try deleteParts(key, from: connection) }
        try connection.prepare("INSERT INTO service_document_parts (namespace, name, revision, whole, bytes) VALUES (?, ?, ?, 1, ?)")
            .bind(.text(key.namespace), .text(key.name), .integer(revision), .blob(document.flattened)).run()
        return ([], .whole)
    }

    /// How the document of `key` is stored now, counted from its parts.
    static func partsState(_ key: ServiceKey, _ connection: any SQLConnection) throws -> DocumentPartsState {
        let parts = try connection.prepare(
            """
            SELECT count(*), coalesce(sum(CASE WHEN whole = 0 THEN length(bytes) ELSE 0 END), 0), coalesce(max(whole), 0)
            FROM service_document_parts WHERE namespace = ? AND name = ?
            """)
        try parts.bind(.text(key.namespace), .text(key.name))
        defer { connection.resetStatements() }
        guard try parts.step(), parts.int(2) == 1 else { return .inline }
        return DocumentPartsState(apart: true, patches: parts.int(0) - 1, patchBytes: parts.int(1))
    }

    /// Deletes the parts of `key` (its document is back in its row, or the service is deleted).
    static func deleteParts(_ key: ServiceKey, from connection: any SQLConnection) throws {
        try connection.prepare("DELETE FROM service_document_parts WHERE namespace = ? AND name = ?").bind(.text(key.namespace), .text(key.name))
            .run()
    }
}

/// How a service's document is stored after a write (`storeDocument`): in its row, or apart as
/// a whole part followed by `patches` patches of `patchBytes` bytes in all.
struct DocumentPartsState: Sendable, Equatable {
    var apart: Bool
    var patches: Int
    var patchBytes: Int

    static let inline = DocumentPartsState(apart: false, patches: 0, patchBytes: 0)
    static let whole = DocumentPartsState(apart: true, patches: 0, patchBytes: 0)
}
