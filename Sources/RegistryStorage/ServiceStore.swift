public import Foundation
public import RegistryCore
import Synchronization

/// Errors of the service store that callers branch on.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case notFound(namespace: String, name: String)
    case alreadyExists(namespace: String, name: String)
    /// A stored document could not be read back (written by an incompatible build).
    case unreadable(namespace: String, name: String)
    /// The database itself failed (disk full, read-only, I/O error, damage, lock).
    case fault(StorageFault)
    case migration(MigrationError)
    /// An import with `onConflict=fail` met services that exist with other content.
    case importConflicts([ServiceKey])
    /// A write of the background work refused because this replica is no longer the leader
    /// (see `WriteFence`).
    case fenced(String)

    public var description: String {
        switch self {
        case .importConflicts(let keys):
            "\(keys.count) service\(keys.count == 1 ? "" : "s") already exist with other content: "
                + keys.prefix(10).map { "\($0.namespace)/\($0.name)" }.joined(separator: ", ") + (keys.count > 10 ? ", …" : "")
        case .notFound(let namespace, let name): "service \(namespace)/\(name) not found"
        case .alreadyExists(let namespace, let name): "service \(namespace)/\(name) already exists"
        case .unreadable(let namespace, let name): "stored service \(namespace)/\(name) could not be decoded"
        case .fault(let fault): fault.description
        case .fenced(let reason): "write refused: this replica is not the leader (\(reason))"
        case .migration(let error): error.description
        }
    }
}

/// How hard a commit is pushed to disk before it is acknowledged. Both keep every acknowledged
/// write across a crash of the process (`kill -9`), since the WAL is in the OS's page cache.
public enum Durability: String, Sendable, CaseIterable {
    /// Every acknowledged commit is fsynced (`synchronous=FULL`, or the WAL fsynced beside the
    /// commit path: `WALSync`); also survives power loss.
    case full
    /// `synchronous=NORMAL`: fsync at checkpoints only; the last commits may be lost on power loss.
    case normal
}

/// A service as stored: its API document (served as is) and the values needed to answer
/// conditional requests without decoding it.
public struct StoredDocument: Sendable {
    public let document: [UInt8]
    public var etag: String
    public var revision: Int
    /// The service's uid (a re-created service has a new one).
    public var uid: String
    /// False when the document certainly has neither a `healthCheck` nor a `host` address
    /// (neither name occurs in it, `JSONKeyScan`), so that a reader with observations to add
    /// for those (`GET`'s health and resolutions) need not parse it; true when it may have one.
    /// Found once when the document is read from the database: on SQLite then kept with it in
    /// the document cache, on PostgreSQL (no document cache) on each read.
    public let mayHaveHealthCheckOrHosts: Bool
    private static let observedNames = JSONKeyScan(names: ["healthCheck", "host"])

    public init(document: [UInt8], etag: String, revision: Int, uid: String) {
        self.document = document
        self.etag = etag
        self.revision = revision
        self.uid = uid
        mayHaveHealthCheckOrHosts = StoredDocument.observedNames.mentions(document)
    }
}

/// One page of a listing, in (namespace, name) order.
public struct ServicePage: Sendable {
    public var documents: [[UInt8]]
    /// The position of each document (as many as `documents`, in the same order).
    public var keys: [ServiceKey] = []
    /// Position of the last item, when more items follow.
    public var next: ServiceKey?
    /// The resource version the page was read at (a watch from it misses no later change).
    public var resourceVersion = 0
}

/// A position in the (namespace, name) order.
public struct ServiceKey: Sendable, Equatable, Hashable {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }
}

/// The identity and revision of a stored service, enough to key caches of derived output.
public struct ServiceVersion: Sendable, Hashable {
    public var key: ServiceKey
    public var uid: String
    public var revision: Int

    public init(key: ServiceKey, uid: String, revision: Int) {
        self.key = key
        self.uid = uid
        self.revision = revision
    }
}

/// What to do when an imported service already exists with other content.
public enum ImportConflictPolicy: String, Sendable, CaseIterable {
    case fail, skip, replace
}

/// What an import did (or, on a dry run, would do) to one service.
public struct ImportOutcome: Sendable, Equatable {
    public enum Action: String, Sendable { case created, updated, unchanged, skipped }
    public var key: ServiceKey
    public var action: Action
    /// The revision after the import (the current one when unchanged or skipped).
    public var revision: Int
}

/// One service as a commit left it: its record, or nil when the commit deleted it. Handed to
/// `onCommit` observers so that they need not read the service back.
public struct ServiceChange: Sendable {
    public var key: ServiceKey
    /// The committed record; nil when the service was deleted.
    public var record: ServiceRecord?

    public init(key: ServiceKey, record: ServiceRecord?) {
        self.key = key
        self.record = record
    }
}

/// What an update decided.
public struct UpdateResult: Sendable {
    public var record: ServiceRecord
    /// The service's document after the update, as the store keeps it (see `DocumentBytes`).
    public var documentBytes: DocumentBytes
    /// `documentBytes` as one array (a copy when it is kept as segments: read it only to answer).
    public var document: [UInt8] { documentBytes.flattened }
    /// False when the update changed nothing (the revision was not bumped).
    public var changed: Bool
    /// True when the service did not exist and was created.
    public var created: Bool
}

/// Durable storage of external services on an `SQLDatabase`: SQLite (WAL mode), the embedded
/// default, or PostgreSQL shared by several replicas. One writer connection behind a lock runs
/// the group commits, so this process's writers never contend for the database's lock, and a
/// pool of read connections serves reads.
public final class ServiceStore: Sendable {
    private let writer: Mutex<ConnectionBox>
    /// Where the data lives: the SQLite file, or the PostgreSQL URL without its password.
    public var path: String { database.description }
    /// The database the store runs on.
    public let database: any SQLDatabase
    private let queue = Mutex<[PendingWrite]>([])
    private let readers: ConnectionPool
    private let now: @Sendable () -> Date
    /// Called after every commit that changed, created or deleted services (see `onChange`).
    private let changeObservers = Mutex<[@Sendable ([ServiceChange]) -> Void]>([])
    /// Decoded records of the last writes, for read-modify-write (see `RecordCache`).
    let recordCache = RecordCache()
    /// Queued asynchronous updates per service, not answered yet (see `update(…completion:)`),
    /// with the `UpdateChain` their guesses follow; an entry exists only while its count is
    /// positive, so it is bounded by the writes in flight.
    private let queuedUpdates = Mutex<[ServiceKey: (count: Int, chain: UpdateChain)]>([:])
    /// How many asynchronous updates' guesses (`Speculation`) were found right at their commit
    /// (and written, unless a dry run's or a failed batch's rollback undid them), and how many
    /// were found wrong there and computed again; a write that runs again in its batch (see
    /// `commit`) counts again.
    let guessesKept = Atomic<Int>(0)
    let guessesRecomputed = Atomic<Int>(0)
    /// Audit lines committed since the last move into `audit_log_targets` (see
    /// `indexAuditTargets`): one per write `drain` commits, and those `noteAuditLines` adds.
    private let writesSinceAuditIndexing = Atomic<Int>(0)

    /// Counts the audit lines of a write beyond the one `drain` counts for it (an import, a
    /// batch of aggregated refusals), towards the next move into `audit_log_targets`.
    func noteAuditLines(_ lines: Int) {
        if lines > 1 { writesSinceAuditIndexing.add(lines - 1, ordering: .relaxed) }
    }

    /// Current documents for `document(namespace:name:)` (GET), invalidated by `changed`; only
    /// when `exclusive` (no other process writes the file).
    private let documentCache: DocumentCache?
    /// Held when `exclusive`: no other process serves the same file.
    private let exclusiveLock: ExclusiveFileLock?
    /// Runs WAL checkpoints off the commit path (nil: SQLite's automatic checkpoints).
    private let checkpointer: WALCheckpointer?
    /// With `Durability.full` on SQLite: fsyncs the WAL off the commit path; writes are answered
    /// once their commit is durable (nil: SQLite's own fsync in `COMMIT`, or none).
    private let walSync: WALSync?
    /// The last history document the watch path rebuilt per service (see `RebuiltRevisions`).
    let rebuiltRevisions = RebuiltRevisions()
    /// Runs the group commits of `writeLater`.
    private let commitQueue = DispatchQueue(label: "endpoint-registry.commit")
    /// Runs the completions of committed asynchronous writes, batch after batch, while the commit
    /// queue goes on with the next batch (answering a batch does not delay the next commit).
    private let completionQueue = DispatchQueue(label: "endpoint-registry.commit-completion")
    /// Asynchronous writes queued and not answered yet (`waitForQueuedWrites`): a write may be
    /// committed by a synchronous writer's thread, whose answers reach `completionQueue` later.
    private let outstanding = DispatchGroup()
    /// The fence of the background work's writes (see `WriteFence`).
    let fence = Mutex<WriteFence?>(nil)
    /// On a shared database: follows the changes other processes commit (see `SharedChangeFollower`).
    let follower = Mutex<SharedChangeFollower?>(nil)

    /// Opens (creating if needed) the SQLite database at `path`, applies pending migrations and
    /// refuses a database this binary cannot handle.
    ///
    /// - Parameter quickCheckTimeout: when set, runs `PRAGMA quick_check` first (abandoned after
    ///   that long) and refuses a damaged file.
    /// - Parameter exclusive: this process is the only one using the file (the server): an
    ///   exclusive `flock` is taken (`StoreError.fault` `.busy` when another process holds it) and
    ///   current documents are cached for reads (`DocumentCache`).
    /// - Parameter checkpointThreshold: pages not yet copied from the WAL at which the
    ///   background checkpoint runs, more than 0 (nil: `WALCheckpointer.thresholdBytes` worth,
    ///   2,000 pages of 8 KiB).
    /// - Throws: `StoreError.fault` when the file cannot be opened or is damaged,
    ///   `StoreError.migration` when its schema cannot be brought up to date.
    public convenience init(
        path: String, durability: Durability = .full, migrations: [Migration], quickCheckTimeout: Duration? = nil,
        exclusive: Bool = false, checkpointThreshold: Int? = nil, now: @escaping @Sendable () -> Date = { Date() }
    ) throws(StoreError) {
        let exclusiveLock: ExclusiveFileLock?
        do {
            exclusiveLock = exclusive ? try ExclusiveFileLock(path: path) : nil
        } catch {
            throw .fault(error)
        }
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: path)
            if let quickCheckTimeout {
                let advice = "restore a backup, or start with --skip-db-check to serve what can still be read"
                let problems: [String]?
                do {
                    problems = try connection.quickCheck(timeout: quickCheckTimeout)
                } catch {
                    guard StorageFault(error).reason == .corrupt else { throw error }
                    throw StoreError.fault(StorageFault(reason: .corrupt, message: "PRAGMA quick_check failed: \(error.message); \(advice)"))
                }
                if let problems, problems != ["ok"] {
                    throw StoreError.fault(
                        StorageFault(
                            reason: .corrupt,
                            message:
                                "PRAGMA quick_check found \(problems.count) problem\(problems.count == 1 ? "" : "s"): \(problems.prefix(3).joined(separator: "; ")); \(advice)"
                        ))
                }
            }
            try connection.enableWAL()
            try connection.execute("PRAGMA synchronous=\(durability == .full ? "FULL" : "NORMAL"); PRAGMA foreign_keys=ON;")
        } catch let error as StoreError {
            throw error
        } catch {
            throw ServiceStore.storeError(error)
        }
        do {
            try Migrator(migrations: migrations).migrate(connection, now: ServiceStore.timestamp(now()))
        } catch {
            if case .failed(_, let failure as any DatabaseError) = error, failure.storageFault.isCondition { throw .fault(failure.storageFault) }
            throw .migration(error)
        }
        // Checkpoints in the background rather than in the committing thread (see
        // `WALCheckpointer`); if its connection cannot be opened, SQLite's automatic one stays.
        var checkpointer: WALCheckpointer?
        if let own = try? SQLiteConnection(path: path), let pageSize = try? connection.pageSize(),
            (try? connection.execute("PRAGMA wal_autocheckpoint=0")) != nil
        {
            let background = WALCheckpointer(connection: own, pageSize: pageSize, threshold: checkpointThreshold)
            connection.observeWAL(background)
            background.start()
            checkpointer = background
        }
        // `full`: the WAL is fsynced beside the commit path rather than inside `COMMIT` (see
        // `WALSync`); if its file cannot be opened, SQLite's `synchronous=FULL` stays.
        var walSync: WALSync?
        if durability == .full, let sync = try? WALSync(walPath: path + "-wal"),
            (try? connection.execute("PRAGMA synchronous=NORMAL")) != nil
        {
            walSync = sync
        }
        self.init(
            database: SQLiteDatabase(existing: path), writer: connection, checkpointer: checkpointer, walSync: walSync,
            exclusiveLock: exclusiveLock, cacheDocuments: exclusive, now: now)
    }

    /// A store on `database`, whose schema its opener has already brought up to date (e.g.
    /// `PostgresDatabase.open`). On a shared database (`SQLDatabase.isShared`) no current
    /// documents are cached and the changes other processes commit are followed (see
    /// `followSharedChanges`).
    ///
    /// - Throws: `StoreError.fault` when the writer connection cannot be opened.
    public convenience init(database: any SQLDatabase, now: @escaping @Sendable () -> Date = { Date() }) throws(StoreError) {
        let writer: any SQLConnection
        do {
            writer = try database.connect(readOnly: false)
        } catch {
            throw ServiceStore.storeError(error)
        }
        self.init(database: database, writer: writer, checkpointer: nil, walSync: nil, exclusiveLock: nil, cacheDocuments: false, now: now)
    }

    private init(
        database: any SQLDatabase, writer: any SQLConnection, checkpointer: WALCheckpointer?, walSync: WALSync?,
        exclusiveLock: ExclusiveFileLock?, cacheDocuments: Bool, now: @escaping @Sendable () -> Date
    ) {
        self.database = database
        self.writer = Mutex(ConnectionBox(writer))
        self.checkpointer = checkpointer
        self.walSync = walSync
        self.exclusiveLock = exclusiveLock
        self.documentCache = cacheDocuments ? DocumentCache() : nil
        self.now = now
        readers = ConnectionPool(maximum: database.maximumReadConnections) { try database.connect(readOnly: true) }
        // The audit lines of the writes since the last move (by this process before it stopped,
        // or by others) are moved now, so that those at the log's end stay within the writes
        // of one run of `auditIndexingWrites`.
        ServiceStore.indexAuditTargets(on: writer)
    }

    /// What failed a whole batch: the database's fault, else an internal one naming `error`.
    private static func fault(of error: any Error) -> StorageFault {
        if case .fault(let fault) = storeError(error) { return fault }
        return StorageFault(reason: .internal, message: "\(error)")
    }

    /// A failure of the database as `StoreError` (`.fault`, classified by the database).
    static func storeError(_ error: any Error) -> StoreError {
        switch error {
        case let error as StoreError: error
        case let error as any DatabaseError: .fault(error.storageFault)
        case let fault as StorageFault: .fault(fault)
        default: .fault(StorageFault(reason: .internal, message: "\(error)"))
        }
    }

    deinit {
        checkpointer?.stop()
        follower.withLock { $0?.stop() }
    }

    /// Gives up the `exclusive` lock (at shutdown, so that another server may open the file),
    /// after the writes already queued (`writeLater`) are committed or failed: none of them can
    /// change the file once another server caches its documents. Not to be called from a
    /// write's completion (it waits for the commit queue).
    public func releaseExclusiveLock() {
        waitForQueuedWrites()
        exclusiveLock?.release()
    }

    /// At shutdown: stops following other processes' changes and closes the idle read
    /// connections (the store stays usable: a later read opens a connection again).
    public func closeIdleConnections() {
        stopFollowingSharedChanges()
        readers.closeIdle()
    }

    /// Returns once every write queued by `writeLater` (before the call, and any queued meanwhile)
    /// is committed (or failed) and its completion has run. Not to be called from a write's
    /// completion.
    public func waitForQueuedWrites() {
        commitQueue.sync {}
        outstanding.wait()
    }

    /// How many WAL checkpoints the background checkpointer (or a writer at the WAL's size
    /// ceiling) has run; nil when SQLite's automatic checkpoints are used.
    var checkpointsRun: Int? { checkpointer?.checkpoints.load(ordering: .relaxed) }

    /// How many `fdatasync` calls `WALSync` has made; nil when the store has none (`normal`,
    /// PostgreSQL, or SQLite's own fsync in `COMMIT`).
    var walSyncsRun: Int? { walSync?.syncs.load(ordering: .relaxed) }

    /// A new uid: a random (version 4) UUID in lower case, as Kubernetes writes them, from the
    /// system generator (`getrandom`, without opening a device file per call): two 64-bit draws
    /// (one system call each; drawing byte by byte made sixteen), written out as hex directly.
    static func newUID() -> String {
        var generator = SystemRandomNumberGenerator()
        // Bytes 0–7 and 8–15 of the UUID, most significant first.
        var high = generator.next()
        var low = generator.next()
        high = high & ~(0xF0 << 8) | (0x40 << 8)  // byte 6: version 4
        low = low & ~(0xC0 << 56) | (0x80 << 56)  // byte 8: RFC 9562 variant
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (half, word) in [high, low].enumerated() {
            for nibble in 0..<16 {
                let position = half * 16 + nibble
                if position == 8 || position == 12 || position == 16 || position == 20 { text.append(UInt8(ascii: "-")) }
                text.append(digits[Int(word >> UInt64(60 - 4 * nibble) & 0xF)])
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// RFC 3339 in UTC with seconds, as the Kubernetes API writes timestamps (`RFC3339`: the
    /// text of Foundation's `.iso8601` format style, seconds rounded down, written directly;
    /// Foundation's own for a year outside 0–9999).
    static func timestamp(_ date: Date) -> String {
        RFC3339.string(seconds: Int(date.timeIntervalSince1970.rounded(.down))) ?? date.formatted(.iso8601)
    }

    func read<T: Sendable>(_ body: (any SQLConnection) throws -> T) throws(StoreError) -> T {
        do {
            return try readers.with(body)
        } catch {
            throw ServiceStore.storeError(error)
        }
    }

    /// Runs `body` inside a write transaction and returns once it is committed.
    ///
    /// Group commit: callers queue their work, and whoever holds the writer lock runs everything
    /// queued in one transaction, where one failing piece is undone alone (see `commit`). With
    /// `Durability.full` one fsync then covers a whole batch of writes (or
    /// several: `WALSync`), and a write returns once it is durable. When
    /// the database itself fails (disk full, I/O error, read-only) every write of the batch gets
    /// that fault, since SQLite may have rolled the whole transaction back, and the next batch
    /// starts clean.
    /// `inSavepoint`: the write is to be undone (a dry run): it runs in a savepoint of its own
    /// (see `commit`).
    func write<T: Sendable>(inSavepoint: Bool = false, _ body: @escaping @Sendable (any SQLConnection) throws -> T) throws -> T {
        let pending = PendingWrite(body: { connection in try body(connection) }, inSavepoint: inSavepoint, completion: nil)
        queue.withLock { $0.append(pending) }
        drain()
        if let walSync, let sequence = pending.commitSequence {
            do {
                try walSync.wait(sequence)
            } catch {
                throw StoreError.fault(error)
            }
        }
        return try ServiceStore.typed(pending.result)
    }

    /// `write(_:)` without waiting: `body` runs in the next group commit, on the commit thread
    /// (`commitQueue`) or on a thread committing synchronously. Once the transaction is committed
    /// (or failed), `committed` gets what `body` returned (or threw) on that thread, right after
    /// the writer lock is released (where the observers of synchronous writes are told too, so
    /// they hear of commits in about their order); then `completion` gets it on the completion
    /// queue, batch after batch, while the next batch may already be committing. For request
    /// threads that answer later (`DeferredResponse`): writes queue up while no thread waits for
    /// them, so batches grow with the number of connections rather than of worker threads.
    func writeLater<T: Sendable>(
        inSavepoint: Bool = false, _ body: @escaping @Sendable (any SQLConnection) throws -> T,
        committed: (@Sendable (Result<T, any Error>) -> Void)? = nil, completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        var told: (@Sendable (Result<any Sendable, any Error>) -> Void)? = nil
        if let committed {
            told = { result in committed(Result { try ServiceStore.typed(result) }) }
        }
        let outstanding = self.outstanding
        outstanding.enter()
        let pending = PendingWrite(
            body: { connection in try body(connection) }, inSavepoint: inSavepoint, committed: told,
            completion: { result in
                defer { outstanding.leave() }
                completion(Result { try ServiceStore.typed(result) })
            })
        queue.withLock { $0.append(pending) }
        commitQueue.async { [self] in drain() }
    }

    /// Commits everything queued, as the one writer; once the writer lock is released, tells
    /// the store's observers of the batch's changes (`committed`, on this thread, as synchronous
    /// writers do theirs), then hands the asynchronous writes their results on `completionQueue`
    /// (batch after batch, while the next one may already be committing: in commit order when the
    /// commit queue commits them; a batch a synchronous writer commits meanwhile may be answered
    /// before the one just before it, whose answers are queued once its observers have run).
    /// With a `walSync`, the results are handed over once the commit is durable (or with the
    /// fault of the fsync that failed), while the commit queue goes on with the next batch.
    private func drain() {
        let (batch, sequence): ([PendingWrite], UInt64?) = writer.withLock { box in
            let batch = queue.withLock { queued in
                defer { queued.removeAll() }
                return queued
            }
            guard !batch.isEmpty else { return ([], nil) }
            if let checkpointer, checkpointer.mustWait { checkpointer.checkpointAtCeiling(box.connection) }
            guard ServiceStore.commit(batch, on: box.connection, cache: recordCache) == nil else { return (batch, nil) }
            let sequence = walSync?.committed()
            if let sequence { for pending in batch { pending.commitSequence = sequence } }
            if writesSinceAuditIndexing.add(batch.count, ordering: .relaxed).newValue >= ServiceStore.auditIndexingWrites {
                writesSinceAuditIndexing.store(0, ordering: .relaxed)
                ServiceStore.indexAuditTargets(on: box.connection)
            }
            return (batch, sequence)
        }
        for pending in batch {
            if let result = pending.result { pending.committed?(result) }
        }
        guard batch.contains(where: { $0.completion != nil }) else { return }
        let completionQueue = completionQueue
        let answer: @Sendable (StorageFault?) -> Void = { fault in
            completionQueue.async {
                for pending in batch {
                    guard let completion = pending.completion else { continue }
                    if let fault {
                        completion(.failure(StoreError.fault(fault)))
                    } else {
                        completion(
                            pending.result ?? .failure(StoreError.fault(StorageFault(reason: .internal, message: "the write was not executed"))))
                    }
                }
            }
        }
        if let walSync, let sequence {
            walSync.whenSynced(sequence, answer)
        } else {
            answer(nil)
        }
    }

    /// A write's result as the type its body returned, with SQLite's failures as `StoreError`.
    private static func typed<T: Sendable>(_ result: Result<any Sendable, any Error>?) throws -> T {
        switch result {
        case .success(let value)?:
            guard let value = value as? T else {
                throw StoreError.fault(StorageFault(reason: .internal, message: "a write returned \(type(of: value))"))
            }
            return value
        case .failure(let error as any DatabaseError)?: throw StoreError.fault(error.storageFault)
        case .failure(let error)?: throw error
        case nil: throw StoreError.fault(StorageFault(reason: .internal, message: "the write was not executed"))
        }
    }

    /// `write(_:)`, rolled back at the end when `dryRun` is set: the same reads, checks and
    /// decisions (and the same errors), but nothing is kept. Returns what `body` returned.
    func write<T: Sendable>(dryRun: Bool, _ body: @escaping @Sendable (any SQLConnection) throws -> T) throws -> T {
        guard dryRun else { return try write(body) }
        do {
            return try write(inSavepoint: true) { (connection) throws -> T in throw RolledBack(value: try body(connection)) }
        } catch let rolledBack as RolledBack<T> {
            return rolledBack.value
        }
    }

    /// `writeLater(_:completion:)`, rolled back at the end when `dryRun` is set; `committed` runs
    /// only for a write that is kept.
    func writeLater<T: Sendable>(
        dryRun: Bool, _ body: @escaping @Sendable (any SQLConnection) throws -> T, committed: (@Sendable (T) -> Void)? = nil,
        completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        guard dryRun else {
            var kept: (@Sendable (Result<T, any Error>) -> Void)? = nil
            if let committed {
                kept = { result in
                    if case .success(let value) = result { committed(value) }
                }
            }
            return writeLater(body, committed: kept, completion: completion)
        }
        writeLater(inSavepoint: true, { (connection) throws -> T in throw RolledBack(value: try body(connection)) }) { result in
            if case .failure(let rolledBack as RolledBack<T>) = result { return completion(.success(rolledBack.value)) }
            completion(result)
        }
    }

    /// Thrown inside a dry-run write to roll its savepoint back while carrying the result out.
    private struct RolledBack<T: Sendable>: Error {
        var value: T
    }

    /// Commits a batch; returns the fault of the database when one made the whole batch fail.
    /// `cache` drops what a write put in it when that write is rolled back (see `RecordCache`).
    ///
    /// The writes run one after the other in one transaction, without a savepoint each: a
    /// savepoint copies the original of every page a write changes into its sub-journal (SQLite:
    /// a whole page, 8 KiB, for each of the ~9 pages an address added changes; PostgreSQL: two
    /// more round trips per write), only to drop it at `RELEASE` when the write succeeds, as
    /// nearly all do. What a failed write leaves decides what happens next:
    /// - nothing (`SQLConnection.changeMark` as before it: a write refused by its checks or its
    ///   precondition throws before it writes): the batch goes on;
    /// - changes (a failure half-way) that are the only ones of the transaction so far: the
    ///   transaction is rolled back, which undoes that write alone, and the rest of the
    ///   batch runs in a new one;
    /// - changes after other writes' changes: the transaction is rolled back and the batch runs
    ///   again from its first write, each write in its own savepoint (`commitWithSavepoints`),
    ///   so that the failed one rolls back alone. The writes run again see the database as they
    ///   saw it the first time, and come to the same results.
    /// A write known to be undone (a dry run, `PendingWrite.inSavepoint`) runs in a savepoint of
    /// its own from the start.
    @discardableResult
    private static func commit(_ batch: [PendingWrite], on connection: any SQLConnection, cache: RecordCache) -> StorageFault? {
        var rest = batch[...]
        while !rest.isEmpty {
            switch commitWithoutSavepoints(rest, on: connection, cache: cache) {
            case .finished(let fault): return fault
            case .rolledBackAlone(let index): rest = batch[(index + 1)...]
            case .needsSavepoints: return commitWithSavepoints(rest, on: connection, cache: cache)
            }
        }
        return nil
    }

    /// How `commitWithoutSavepoints` ended.
    private enum BatchOutcome {
        /// Committed (nil), or failed as a whole with this fault; every write has its result.
        case finished(StorageFault?)
        /// The write at this index failed after it changed something, and no write before it in
        /// the transaction was kept: the transaction was rolled back, the writes before it have
        /// their results (failures that changed nothing), and those after it have not run.
        case rolledBackAlone(Int)
        /// A write failed after changing something when others' changes were in the
        /// transaction too: it was rolled back, and no write's result stands.
        case needsSavepoints
    }

    /// `commit`'s first way: the batch in one transaction, no savepoints.
    private static func commitWithoutSavepoints(
        _ batch: ArraySlice<PendingWrite>, on connection: any SQLConnection, cache: RecordCache
    ) -> BatchOutcome {
        if let fault = begin(batch, on: connection, cache: cache) { return .finished(fault) }
        var kept = false
        for (index, pending) in zip(batch.indices, batch) {
            if pending.inSavepoint {
                if let cause = runInSavepoint(pending, on: connection, cache: cache) {
                    return .finished(fail(batch, cause, on: connection, cache: cache))
                }
                if case .success = pending.result { kept = true }
                continue
            }
            let mark = connection.changeMark
            do {
                let value = try pending.body(connection)
                connection.resetStatements()
                cache.releaseWrite()
                pending.result = .success(value)
                kept = true
            } catch {
                connection.resetStatements()
                if let cause = batchFailure(error, on: connection) { return .finished(fail(batch, cause, on: connection, cache: cache)) }
                pending.result = .failure(error)
                if let mark, connection.changeMark == mark {
                    cache.rollBackWrite()
                    continue
                }
                do {
                    try connection.execute("ROLLBACK")
                } catch let rollback {
                    return .finished(fail(batch, ServiceStore.fault(of: rollback), on: connection, cache: cache))
                }
                cache.rollBackTransaction()
                return kept ? .needsSavepoints : .rolledBackAlone(index)
            }
        }
        return .finished(finish(batch, on: connection, cache: cache))
    }

    /// `commit`'s second way: each write of the batch in its own savepoint, rolled back alone
    /// when it fails.
    private static func commitWithSavepoints(_ batch: ArraySlice<PendingWrite>, on connection: any SQLConnection, cache: RecordCache) -> StorageFault?
    {
        if let fault = begin(batch, on: connection, cache: cache) { return fault }
        for pending in batch {
            if let cause = runInSavepoint(pending, on: connection, cache: cache) { return fail(batch, cause, on: connection, cache: cache) }
        }
        return finish(batch, on: connection, cache: cache)
    }

    /// Runs one write in a savepoint of its own, rolled back to it when the write fails; returns
    /// the fault that fails the whole batch, if one does (see `batchFailure`).
    private static func runInSavepoint(_ pending: PendingWrite, on connection: any SQLConnection, cache: RecordCache) -> StorageFault? {
        do {
            try connection.execute("SAVEPOINT write")
            let value = try pending.body(connection)
            connection.resetStatements()
            try connection.execute("RELEASE write")
            cache.releaseWrite()
            pending.result = .success(value)
        } catch {
            connection.resetStatements()
            if let cause = batchFailure(error, on: connection) { return cause }
            do {
                try connection.execute("ROLLBACK TO write")
                try connection.execute("RELEASE write")
                cache.rollBackWrite()
            } catch let rollback {
                return ServiceStore.fault(of: rollback)
            }
            pending.result = .failure(error)
        }
        return nil
    }

    /// Opens the transaction of `batch` (after rolling back one left open); when it cannot be
    /// opened every write of `batch` gets the error, and the fault is returned.
    private static func begin(_ batch: ArraySlice<PendingWrite>, on connection: any SQLConnection, cache: RecordCache) -> StorageFault? {
        if connection.isInTransaction { try? connection.execute("ROLLBACK") }
        cache.beginTransaction()
        do {
            try connection.beginWrite()
            return nil
        } catch {
            batch.forEach { $0.result = .failure(error) }
            return ServiceStore.fault(of: error)
        }
    }

    /// The fault that fails the whole batch when a write threw `error`, if it does: the
    /// transaction is gone (SQLite rolled it back), or the database cannot take writes.
    private static func batchFailure(_ error: any Error, on connection: any SQLConnection) -> StorageFault? {
        let fault = (error as? any DatabaseError)?.storageFault
        guard !connection.isInTransaction || fault?.isCondition == true else { return nil }
        return fault ?? StorageFault(reason: .internal, message: "the transaction was rolled back: \(error)")
    }

    /// Rolls the transaction back and gives every write of `batch` the fault `cause`: nothing of
    /// it is committed. Returns `cause`.
    private static func fail(
        _ batch: ArraySlice<PendingWrite>, _ cause: StorageFault, on connection: any SQLConnection, cache: RecordCache
    ) -> StorageFault {
        if connection.isInTransaction { try? connection.execute("ROLLBACK") }
        cache.rollBackTransaction()
        for pending in batch { pending.result = .failure(StoreError.fault(cause)) }
        return cause
    }

    /// Commits the transaction of `batch`; when `COMMIT` fails, fails every write of it.
    private static func finish(_ batch: ArraySlice<PendingWrite>, on connection: any SQLConnection, cache: RecordCache) -> StorageFault? {
        do {
            try connection.execute("COMMIT")
            return nil
        } catch {
            return fail(batch, ServiceStore.fault(of: error), on: connection, cache: cache)
        }
    }

    /// The last readiness verdict and when it was made, so that `/readyz` probes cost at most
    /// one write a second, and since when a check has been running.
    private let readinessCache = Mutex<(last: (verdict: StorageFault?, at: ContinuousClock.Instant)?, checkingSince: ContinuousClock.Instant?)>(
        (nil, nil))

    /// How long a readiness check may wait for the database before probes answer that it is
    /// not ready.
    static let readinessPatience: Duration = .seconds(1)

    /// Whether the database can be read and written now: nil when it can, else the fault.
    /// Reads a row and rewrites the header's `user_version` with its own value (a real write
    /// through the WAL, so a full disk, a read-only file or an I/O error shows); the verdict is
    /// reused for one second. One check runs at a time: a probe arriving meanwhile gets the
    /// last verdict while the check has run less than `readinessPatience`, and a `busy` fault
    /// after that (a database whose writes hang holds one worker thread, not one per probe, and
    /// is not reported ready); before any verdict it runs its own check.
    public func readiness() -> StorageFault? {
        let now = ContinuousClock.now
        let reused: (verdict: StorageFault?, found: Bool) = readinessCache.withLock { state in
            if let since = state.checkingSince {
                if now - since > Self.readinessPatience {
                    let waited = (now - since).components.seconds
                    return (
                        StorageFault(
                            reason: .busy,
                            message: "the readiness check has waited \(waited > 0 ? "\(waited) s" : "over a second") for a database write"),
                        true
                    )
                }
                if let last = state.last { return (last.verdict, true) }
            } else if let last = state.last, now - last.at < .seconds(1) {
                return (last.verdict, true)
            }
            if state.checkingSince == nil { state.checkingSince = now }
            return (nil, false)
        }
        if reused.found { return reused.verdict }
        let verdict: StorageFault?
        do {
            try ping()
            try write { connection in try connection.probeWrite() }
            verdict = nil
        } catch StoreError.fault(let fault) {
            verdict = fault
        } catch {
            verdict = StorageFault(reason: .internal, message: "\(error)")
        }
        readinessCache.withLock { $0 = ((verdict, now), nil) }
        return verdict
    }

    // MARK: - Reads

    /// Checks that the database answers a query.
    public func ping() throws(StoreError) {
        try read { connection in _ = try connection.prepare("SELECT count(*) FROM schema_migrations").step() }
    }

    /// The stored document of one service, if it exists.
    public func document(namespace: String, name: String) throws(StoreError) -> StoredDocument? {
        let key = ServiceKey(namespace: namespace, name: name)
        var generation = 0
        switch documentCache?.lookup(key) {
        case .hit(let stored)?: return stored
        case .miss(let current)?: generation = current
        case nil: break
        }
        let stored = try read { connection -> StoredDocument? in
            func row() throws -> (document: [UInt8], revision: Int, uid: String)? {
                let statement = try connection.prepare("SELECT document, revision, uid FROM services WHERE namespace = ? AND name = ?")
                try statement.bind(.text(namespace), .text(name))
                guard try statement.step() else { return nil }
                return (statement.blob(0), statement.int(1), statement.text(2))
            }
            guard var found = try row() else { return nil }
            if found.document.isEmpty {
                // Kept apart (see `storeDocument`): the bytes this process wrote last for that
                // revision, else the row again and its parts, read in one snapshot.
                if let cached = cachedDocument(key, uid: found.uid, revision: found.revision) {
                    found.document = cached
                } else {
                    connection.resetStatements()
                    try connection.beginRead()
                    defer {
                        connection.resetStatements()
                        try? connection.execute("COMMIT")
                    }
                    guard let again = try row() else { return nil }
                    found = again
                    found.document = try ServiceStore.document(again.document, connection, key: key)
                }
            }
            return StoredDocument(
                document: found.document, etag: ServiceRecord.etag(revision: found.revision, uid: found.uid), revision: found.revision,
                uid: found.uid)
        }
        if let stored { documentCache?.fill(key, stored, generation: generation) }
        return stored
    }

    /// The document of revision `revision` (of `uid`) of a service, if this process holds it:
    /// written by its last write (`RecordCache`) or read for a `GET` (`DocumentCache`). Documents
    /// are deterministic per uid and revision, so either is that revision's stored bytes.
    func cachedDocument(_ key: ServiceKey, uid: String, revision: Int) -> [UInt8]? {
        if let written = recordCache.lookup(key, uid: uid, revision: revision) { return written.document.flattened }
        if case .hit(let read)? = documentCache?.lookup(key), read.uid == uid, read.revision == revision { return read.document }
        return nil
    }

    /// One service, decoded.
    /// The record this process wrote last for the service (`RecordCache`) is taken instead of
    /// parsing the document when it has the row's uid and revision and the very same bytes, so
    /// that rendering a revision just written does not decode it again.
    public func record(namespace: String, name: String) throws(StoreError) -> ServiceRecord? {
        guard let stored = try document(namespace: namespace, name: name) else { return nil }
        if let cached = recordCache.lookup(ServiceKey(namespace: namespace, name: name), uid: stored.uid, revision: stored.revision),
            cached.document == DocumentBytes(stored.document)
        {
            return cached.record
        }
        return try ServiceStore.decode(stored.document, namespace: namespace, name: name)
    }

    static func decode(_ document: [UInt8], namespace: String, name: String) throws(StoreError) -> ServiceRecord {
        guard let json = try? JSONParser.parse(document), let record = ServiceDecoder.storedRecord(json) else {
            throw .unreadable(namespace: namespace, name: name)
        }
        return record
    }

    /// Services in (namespace, name) order after `after`, filtered by namespace and selector.
    /// At most `limit` items (all when nil); `next` is set when more match.
    public func list(
        namespace: String?, selector: LabelSelector, after: ServiceKey?, limit: Int?, allowed: (String) -> Bool = { _ in true }
    ) throws(StoreError) -> ServicePage {
        try read { connection in
            // One read transaction: the page and its resource version come from one snapshot.
            try connection.beginRead()
            defer {
                connection.resetStatements()
                try? connection.execute("COMMIT")
            }
            let resourceVersion = try ServiceStore.resourceVersionState(connection).current
            var documents: [[UInt8]] = []
            var keys: [ServiceKey] = []
            var lastKey: ServiceKey? = after
            var position = after ?? ServiceKey(namespace: "", name: "")
            let batch = min(max((limit ?? 500) + 1, 64), 1000)
            while true {
                let statement = try connection.prepare(
                    """
                    SELECT namespace, name, labels, document, uid, revision FROM services
                    WHERE (CAST(?1 AS TEXT) IS NULL OR namespace = ?1) AND (namespace, name) > (?2, ?3)
                    ORDER BY namespace, name LIMIT ?4
                    """)
                try statement.bind(
                    namespace.map { .text($0) } ?? .null, .text(position.namespace), .text(position.name), .integer(batch))
                var rows = 0
                while try statement.step() {
                    rows += 1
                    position = ServiceKey(namespace: statement.text(0), name: statement.text(1))
                    guard allowed(position.namespace) else { continue }
                    if !selector.requirements.isEmpty {
                        let labels = ServiceStore.labels(fromJSON: statement.text(2))
                        guard selector.matches(labels) else { continue }
                    }
                    if let limit, documents.count == limit {
                        return ServicePage(documents: documents, keys: keys, next: lastKey, resourceVersion: resourceVersion)
                    }
                    var document = statement.blob(3)
                    if document.isEmpty {
                        // Kept apart: cached bytes of that very revision, else rebuilt from its parts.
                        document =
                            try cachedDocument(position, uid: statement.text(4), revision: statement.int(5))
                            ?? ServiceStore.apartDocument(connection, key: position)
                    }
                    documents.append(document)
                    keys.append(position)
                    lastKey = position
                }
                if rows < batch { return ServicePage(documents: documents, keys: keys, next: nil, resourceVersion: resourceVersion) }
            }
        }
    }

    static func labels(fromJSON text: String) -> [String: String] {
        // Written by this store from a validated label map, so it always parses.
        (try? JSONParser.parse(Array(text.utf8)))?.stringMapValue ?? [:]
    }

    /// Identity and revision of one service, without reading its document.
    public func version(namespace: String, name: String) throws(StoreError) -> ServiceVersion? {
        try read { connection in
            let statement = try connection.prepare("SELECT uid, revision FROM services WHERE namespace = ? AND name = ?")
            try statement.bind(.text(namespace), .text(name))
            guard try statement.step() else { return nil }
            return ServiceVersion(key: ServiceKey(namespace: namespace, name: name), uid: statement.text(0), revision: statement.int(1))
        }
    }

    /// Identity and revision of every service matching the filters, in (namespace, name) order.
    public func versions(
        namespace: String?, selector: LabelSelector, allowed: (String) -> Bool = { _ in true }
    ) throws(StoreError)
        -> [ServiceVersion]
    {
        try read { connection in
            let statement = try connection.prepare(
                "SELECT namespace, name, uid, revision, labels FROM services WHERE (CAST(?1 AS TEXT) IS NULL OR namespace = ?1) ORDER BY namespace, name"
            )
            try statement.bind(namespace.map { .text($0) } ?? .null)
            var versions: [ServiceVersion] = []
            while try statement.step() {
                guard allowed(statement.text(0)) else { continue }
                if !selector.requirements.isEmpty, !selector.matches(ServiceStore.labels(fromJSON: statement.text(4))) { continue }
                versions.append(
                    ServiceVersion(
                        key: ServiceKey(namespace: statement.text(0), name: statement.text(1)), uid: statement.text(2), revision: statement.int(3)))
            }
            return versions
        }
    }

    /// Sizes for monitoring: services, addresses, and the database file in bytes (WAL included).
    public func statistics() throws(StoreError) -> (services: Int, addresses: Int, databaseBytes: Int) {
        try read { connection in
            let counts = try connection.prepare("SELECT count(*), coalesce(sum(address_count), 0) FROM services")
            _ = try counts.step()
            let (services, addresses) = (counts.int(0), counts.int(1))
            connection.resetStatements()
            return (services, addresses, try connection.sizeInBytes())
        }
    }

    /// Size of a file in bytes; 0 when it does not exist (a database without a WAL file yet).
    static func fileSize(_ path: String) -> Int {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return 0 }
        return (attributes[.size] as? NSNumber)?.intValue ?? 0
    }

    /// Number of stored services.
    public func count() throws(StoreError) -> Int {
        try read { connection in
            let statement = try connection.prepare("SELECT count(*) FROM services")
            _ = try statement.step()
            return statement.int(0)
        }
    }

    // MARK: - Writes

    /// Registers `observer` to be told, after each commit, which services it created, changed
    /// or deleted (on the committing thread; keep it short, e.g. enqueue work).
    public func onChange(_ observer: @escaping @Sendable ([ServiceKey]) -> Void) {
        onCommit { changes in observer(changes.map(\.key)) }
    }

    /// Registers `observer` to be handed, after each commit, the records it created or changed
    /// (nil for a deletion), as committed: observers need not read them back. Called on the
    /// committing thread; keep it short (enqueue work).
    public func onCommit(_ observer: @escaping @Sendable ([ServiceChange]) -> Void) {
        changeObservers.withLock { $0.append(observer) }
    }

    func changed(_ changes: [ServiceChange]) {
        guard !changes.isEmpty else { return }
        documentCache?.invalidate(changes.map(\.key))
        for observer in changeObservers.withLock({ $0 }) { observer(changes) }
    }

    /// Stores a new service with revision 1. With `dryRun` everything is checked and nothing is
    /// kept (the returned uid is then not the one a real create would assign).
    public func create(
        _ service: ExternalService, audit: AuditContext = .unattributed, dryRun: Bool = false
    ) throws -> (
        record: ServiceRecord, document: [UInt8]
    ) {
        let (body, created) = creation(service, audit: audit)
        let result = try write(dryRun: dryRun, body)
        if !dryRun { created(result.record) }
        return result
    }

    /// `create` answered through `completion` after the commit, without holding the calling
    /// thread meanwhile (see `writeLater`): the same checks, storage and observers.
    public func create(
        _ service: ExternalService, audit: AuditContext = .unattributed, dryRun: Bool = false,
        completion: @escaping @Sendable (Result<(record: ServiceRecord, document: [UInt8]), any Error>) -> Void
    ) {
        let (body, created) = creation(service, audit: audit)
        writeLater(dryRun: dryRun, body, committed: { value in created(value.record) }, completion: completion)
    }

    /// What a create runs in its transaction, and what follows its commit.
    private func creation(
        _ service: ExternalService, audit: AuditContext
    ) -> (body: @Sendable (any SQLConnection) throws -> (record: ServiceRecord, document: [UInt8]), committed: @Sendable (ServiceRecord) -> Void) {
        let time = ServiceStore.timestamp(now())
        let cache = recordCache
        let record = ServiceRecord(service: service, uid: ServiceStore.newUID(), revision: 1, createdAt: time, updatedAt: time)
        let document = ServiceEncoder.bytes(record)
        let key = ServiceKey(namespace: service.namespace, name: service.name)
        let body: @Sendable (any SQLConnection) throws -> (record: ServiceRecord, document: [UInt8]) = { connection in
            let exists = try connection.prepare("SELECT 1 FROM services WHERE namespace = ? AND name = ?")
            try exists.bind(.text(service.namespace), .text(service.name))
            if try exists.step() { throw StoreError.alreadyExists(namespace: service.namespace, name: service.name) }
            try ServiceStore.insert(record, document: DocumentBytes(document), audit: audit, status: 201, at: time, into: connection, cache: cache)
            return (record, document)
        }
        return (body, { [self] committed in changed([ServiceChange(key: key, record: committed)]) })
    }

    /// Reads the current record (nil if absent) and stores what `transform` returns, all in one
    /// transaction under the write lock. The revision is bumped only if the service changed.
    /// `transform` may throw to abort (nothing is written). With `dryRun` the same decision is
    /// made and returned, and nothing is kept.
    public func update(
        namespace: String, name: String, audit: AuditContext = .unattributed, dryRun: Bool = false,
        _ transform: @escaping @Sendable (ServiceRecord?) throws -> ExternalService
    ) throws -> UpdateResult {
        let (body, committed) = updating(namespace: namespace, name: name, audit: audit, transform)
        let result = try write(dryRun: dryRun, body)
        if result.changed && !dryRun { committed(result.record) }
        return result
    }

    /// `update` answered through `completion` after the commit, without holding the calling
    /// thread meanwhile (see `writeLater`).
    ///
    /// `transform` and the encoding of the new document run first, from the record the service
    /// is expected to have when the write commits (a `Speculation`: the cached record, or what
    /// the update queued just before it is expected to leave, see `UpdateChain`), on the
    /// calling thread when no other update of the service is queued, else on the service's
    /// guessing queue, after those before it; the write is then queued, so the updates of one
    /// service commit in the order of their calls, but another write called after this one
    /// (of another service, or a synchronous one) may commit before it. The commit thread, the
    /// one writer, then only checks that the stored document is still the one guessed from and
    /// writes the result. When it is not (another write came first, or nothing was cached),
    /// `transform` runs again on the commit thread, from the stored record, as if there had
    /// been no speculation. `transform` must therefore
    /// depend only on the record it is given and on what it captured (it may run twice: when the
    /// request arrives and at the commit; what it reads of the configuration, such as the known
    /// clusters, is then as the first run saw it, as if the write had committed at that moment).
    /// `changedStatus` is the HTTP status the audit line of a change records (the address
    /// routes answer a change with 201).
    public func update(
        namespace: String, name: String, audit: AuditContext = .unattributed, dryRun: Bool = false, changedStatus: Int = 200,
        _ transform: @escaping @Sendable (ServiceRecord?) throws -> ExternalService,
        completion: @escaping @Sendable (Result<UpdateResult, any Error>) -> Void
    ) {
        let key = ServiceKey(namespace: namespace, name: name)
        let cache = recordCache
        let (chain, alone) = queuedUpdates.withLock { queued in
            let entry =
                queued[key].map { ($0.count + 1, $0.chain) } ?? (1, UpdateChain(expected: cache.peek(key).map { ($0.record, $0.document, true) }))
            queued[key] = entry
            return (entry.1, entry.0 == 1)
        }
        // Guessed and queued under the chain's lock, so that the guesses follow each other in
        // the order of the queue (each from the one before), and the commit thread finds each
        // one's base stored when its turn comes. Once the chain is broken (a guess was found
        // wrong) none is made; past `UpdateChain.maxGuessedBytes` of guessed documents waiting
        // for their commit, a write is queued without its guess (the commit thread computes the
        // same result again), which the next guesses still follow.
        let outstanding = self.outstanding
        outstanding.enter()  // queued from now on for `waitForQueuedWrites`, until `writeLater` counts it
        let guessAndQueue: @Sendable () -> Void = { [self] in
            defer { outstanding.leave() }
            chain.expected.withLock { expected in
                let time = ServiceStore.timestamp(now())
                let guess =
                    chain.broken.load(ordering: .acquiring)
                    ? nil : expected.flatMap { ServiceStore.speculate(from: ($0.record, $0.document), at: time, transform) }
                // A dry run's guess is not followed: it is kept only if the waiting guesses leave room.
                // What the guess adds to memory: its own bytes when the document it was guessed
                // from is counted already (a splice shares the rest with it, see
                // `DocumentBytes`), else all of them.
                let held = expected?.counted == true ? guess?.document.ownBytes ?? 0 : guess?.document.count ?? 0
                let keep = held > 0 && chain.guessedBytes.add(held, ordering: .relaxed).newValue <= UpdateChain.maxGuessedBytes
                if held > 0 && !keep { chain.guessedBytes.subtract(held, ordering: .relaxed) }
                let speculation = keep ? guess : nil
                let (body, committed) = updating(
                    namespace: namespace, name: name, audit: audit, at: time, speculation: speculation, chain: chain,
                    changedStatus: changedStatus, transform)
                writeLater(dryRun: dryRun, body, committed: { value in if value.changed { committed(value.record) } }) { [self] result in
                    if keep { chain.guessedBytes.subtract(held, ordering: .relaxed) }
                    queuedUpdates.withLock { queued in
                        guard let entry = queued[key] else { return }
                        queued[key] = entry.count > 1 ? (entry.count - 1, entry.chain) : nil
                    }
                    completion(result)
                }
                // A guess that failed (`transform` threw) or changed nothing leaves the service
                // as it was expected; a dry run leaves it as it is.
                if let guess, !dryRun { expected = (guess.record, guess.document, keep) }
            }
        }
        // Alone, on the calling thread; behind other updates of the service, on its guessing
        // queue, so that a request thread does not wait for the guesses queued before its own
        // (the first, alone, may wait for one queued just after it that took the lock first).
        if alone { guessAndQueue() } else { chain.queue.async(execute: guessAndQueue) }
    }

    /// The queued asynchronous updates of one service: what they are expected to leave (the
    /// result of the last one's guess, `Speculation`, from which the next one guesses; at first
    /// the cached record), their guessing queue (serial, on the global pool, so that one
    /// large service's guesses do not hold up another's), and the bytes of guessed documents
    /// waiting for their commit. `broken` once a guess was found wrong at its commit (another
    /// write came between, e.g. a synchronous one): the updates queued after it make no guess
    /// until the service's queue is empty again (set without the lock, which a guess may hold
    /// while it encodes a large document, so that the commit thread never waits for one).
    final class UpdateChain: Sendable {
        /// At most this many bytes of guessed documents wait for their commit per service,
        /// counting each one's own bytes (`DocumentBytes.ownBytes`: a few KB for a spliced
        /// revision, which shares the rest with the one before; ~330 KB for a 10,000-address
        /// document encoded whole); the writes past it are queued without their guess.
        static let maxGuessedBytes = 32 << 20
        /// What the last queued update is expected to leave; `counted`: whether its document's
        /// bytes are held elsewhere already (the record cache's, or a guess counted in
        /// `guessedBytes`), so that a guess spliced from it counts only its own bytes.
        let expected: Mutex<(record: ServiceRecord, document: DocumentBytes, counted: Bool)?>
        let broken = Atomic<Bool>(false)
        let guessedBytes = Atomic<Int>(0)
        /// Made when a second update of the service is queued (most updates are alone).
        private let madeQueue = Mutex<DispatchQueue?>(nil)
        var queue: DispatchQueue {
            madeQueue.withLock { made in
                if let made { return made }
                let queue = DispatchQueue(label: "endpoint-registry.guesses", target: .global())
                made = queue
                return queue
            }
        }

        init(expected: (record: ServiceRecord, document: DocumentBytes, counted: Bool)?) {
            self.expected = Mutex(expected)
        }
    }

    /// An update computed ahead of its transaction, from the record and document it was based
    /// on (see `UpdateChain`): valid only if the stored document is still `base` when the
    /// write runs.
    struct Speculation: Sendable {
        var base: DocumentBytes
        var record: ServiceRecord
        var document: DocumentBytes
        var patch: DocumentPatch
    }

    /// Runs `transform` on the record `base` (as the service is expected to be when the write
    /// commits) and encodes the result. Nil when `transform` throws (the commit thread then runs
    /// it on the stored record and reports that error) or when it changes nothing (that path
    /// writes no document).
    private static func speculate(
        from base: (record: ServiceRecord, document: DocumentBytes), at time: String,
        _ transform: @Sendable (ServiceRecord?) throws -> ExternalService
    ) -> Speculation? {
        let (current, document) = base
        guard let service = try? transform(current), service != current.service else { return nil }
        var record = current.replacing(service: service, revision: current.revision + 1, updatedAt: time)
        let (next, patch) = ServiceEncoder.documentAndPatch(&record, previous: current, document: document)
        return Speculation(base: document, record: record, document: next, patch: patch)
    }

    /// What an update runs in its transaction, and what follows its commit when it changed the service.
    private func updating(
        namespace: String, name: String, audit: AuditContext, at time: String? = nil, speculation: Speculation? = nil, chain: UpdateChain? = nil,
        changedStatus: Int = 200, _ transform: @escaping @Sendable (ServiceRecord?) throws -> ExternalService
    ) -> (body: @Sendable (any SQLConnection) throws -> UpdateResult, committed: @Sendable (ServiceRecord) -> Void) {
        let cache = recordCache
        let key = ServiceKey(namespace: namespace, name: name)
        let time = time ?? ServiceStore.timestamp(now())
        let body: @Sendable (any SQLConnection) throws -> UpdateResult = { [self] connection in
            // The guess's write, when the document it was computed from is still the stored one:
            // the same result. Checked by the UPDATE itself when both documents stay in the row
            // (`replaceIfStored`), else from the row read first.
            func kept(_ speculation: Speculation, _ stored: RecordCache.Entry) throws -> UpdateResult {
                guessesKept.add(1, ordering: .relaxed)
                let (current, record) = (stored.record, speculation.record)
                let eventVersion = try ServiceStore.advance(.resourceVersion, on: connection)
                let row = try ServiceStore.recordChange(
                    audit, key: key, uid: record.uid, before: current.revision, after: record.revision, document: speculation.document,
                    patch: speculation.patch, status: changedStatus, at: time, eventVersion: eventVersion, lastHistory: stored.history,
                    into: connection)
                try ServiceStore.recordEvent(
                    .modified, version: eventVersion, revisionID: row?.id, record: record, document: speculation.document,
                    previousLabels: current.service.labels, at: time, into: connection)
                if let row { cache.noteHistory(key, uid: record.uid, revision: record.revision, row: row) }
                return UpdateResult(record: record, documentBytes: speculation.document, changed: true, created: false)
            }
            // Not on a shared database, where another replica's commit makes that UPDATE change
            // nothing more often, and PostgreSQL counts such a statement as a change of the
            // transaction (`SQLConnection.changeMark`): a write that then fails would roll the
            // batch back to undo nothing.
            if let speculation, !database.isShared, let entry = cache.peek(key), entry.document == speculation.base,
                try ServiceStore.replaceIfStored(speculation, base: entry, into: connection, cache: cache)
            {
                return try kept(speculation, entry)
            }
            let stored = try ServiceStore.stored(connection, namespace: namespace, name: name, cache: cache)
            if let speculation, let stored, stored.document == speculation.base {
                try ServiceStore.replace(
                    speculation.record, document: speculation.document, previousBytes: stored.document.count, patch: speculation.patch,
                    parts: stored.parts, into: connection, cache: cache)
                return try kept(speculation, stored)
            }
            // The guess was wrong: so are those made from it (see `UpdateChain`).
            if speculation != nil {
                guessesRecomputed.add(1, ordering: .relaxed)
                chain?.broken.store(true, ordering: .releasing)
            }
            let service = try transform(stored?.record)
            if let stored {
                let current = stored.record
                if service == current.service {
                    try ServiceStore.recordChange(
                        audit, key: key, uid: current.uid, before: current.revision, after: current.revision, document: nil, status: 200, at: time,
                        eventVersion: nil, into: connection)
                    return UpdateResult(record: current, documentBytes: stored.document, changed: false, created: false)
                }
                let record = current.replacing(service: service, revision: current.revision + 1, updatedAt: time)
                let (document, patch) = try ServiceStore.replace(record, previous: stored, into: connection, cache: cache)
                let eventVersion = try ServiceStore.advance(.resourceVersion, on: connection)
                let row = try ServiceStore.recordChange(
                    audit, key: key, uid: record.uid, before: current.revision, after: record.revision, document: document, patch: patch,
                    status: changedStatus, at: time, eventVersion: eventVersion, lastHistory: stored.history, into: connection)
                try ServiceStore.recordEvent(
                    .modified, version: eventVersion, revisionID: row?.id, record: record, document: document,
                    previousLabels: current.service.labels, at: time, into: connection)
                if let row { cache.noteHistory(key, uid: record.uid, revision: record.revision, row: row) }
                return UpdateResult(record: record, documentBytes: document, changed: true, created: false)
            }
            let record = ServiceRecord(service: service, uid: ServiceStore.newUID(), revision: 1, createdAt: time, updatedAt: time)
            let document = DocumentBytes(ServiceEncoder.bytes(record))
            try ServiceStore.insert(record, document: document, audit: audit, status: 201, at: time, into: connection, cache: cache)
            return UpdateResult(record: record, documentBytes: document, changed: true, created: true)
        }
        return (body, { [self] record in changed([ServiceChange(key: key, record: record)]) })
    }

    /// Registers or updates `services` all together in one transaction: either every change is
    /// committed or none. With `dryRun` the same decisions are made and then rolled back.
    /// Manifests carry no bindings: a service imported without `clusters` keeps the clusters it
    /// is bound to, or gets `defaultClusters` when new; one without `healthCheck` keeps its own.
    public func importServices(
        _ services: [ExternalService], onConflict: ImportConflictPolicy, dryRun: Bool, audit: AuditContext = .unattributed,
        defaultClusters: [String] = []
    ) throws -> [ImportOutcome] {
        let cache = recordCache
        let time = ServiceStore.timestamp(now())
        if !dryRun { noteAuditLines(services.count) }
        do {
            let (outcomes, changes) = try write(inSavepoint: dryRun) { connection in
                var outcomes: [ImportOutcome] = []
                var changes: [ServiceChange] = []
                var conflicts: [ServiceKey] = []
                for var service in services {
                    let key = ServiceKey(namespace: service.namespace, name: service.name)
                    let existing = try ServiceStore.existing(connection, namespace: key.namespace, name: key.name, cache: cache)
                    if service.clusters.isEmpty { service.clusters = existing?.service.clusters ?? defaultClusters }
                    // Nor health checks: an existing service keeps its own.
                    if service.healthCheck == nil { service.healthCheck = existing?.service.healthCheck }
                    guard var current = existing else {
                        let record = ServiceRecord(
                            service: service, uid: ServiceStore.newUID(), revision: 1, createdAt: time, updatedAt: time)
                        try ServiceStore.insert(
                            record, document: DocumentBytes(ServiceEncoder.bytes(record)), audit: audit, status: 200, at: time, into: connection,
                            cache: cache)
                        outcomes.append(ImportOutcome(key: key, action: .created, revision: 1))
                        changes.append(ServiceChange(key: key, record: record))
                        continue
                    }
                    if current.service == service {
                        outcomes.append(ImportOutcome(key: key, action: .unchanged, revision: current.revision))
                        continue
                    }
                    switch onConflict {
                    case .fail:
                        conflicts.append(key)
                    case .skip:
                        outcomes.append(ImportOutcome(key: key, action: .skipped, revision: current.revision))
                    case .replace:
                        let previousLabels = current.service.labels
                        current = current.replacing(service: service, revision: current.revision + 1, updatedAt: time)
                        let document = try ServiceStore.replace(current, into: connection, cache: cache).document
                        let eventVersion = try ServiceStore.advance(.resourceVersion, on: connection)
                        let row = try ServiceStore.recordChange(
                            audit, key: key, uid: current.uid, before: current.revision - 1, after: current.revision, document: document,
                            status: 200, at: time, eventVersion: eventVersion, into: connection)
                        try ServiceStore.recordEvent(
                            .modified, version: eventVersion, revisionID: row?.id, record: current, document: document,
                            previousLabels: previousLabels, at: time, into: connection)
                        outcomes.append(ImportOutcome(key: key, action: .updated, revision: current.revision))
                        changes.append(ServiceChange(key: key, record: current))
                    }
                }
                if !conflicts.isEmpty { throw StoreError.importConflicts(conflicts) }
                if dryRun { throw DryRun(outcomes: outcomes) }
                return (outcomes, changes)
            }
            changed(changes)
            return outcomes
        } catch let dryRun as DryRun {
            return dryRun.outcomes
        }
    }

    /// Thrown to roll a dry run back while carrying its outcomes out.
    private struct DryRun: Error {
        var outcomes: [ImportOutcome]
    }

    /// Deletes a service after `check` accepts its current record (it may throw to refuse).
    /// `keepClusterObjects` forgets its reconcile state in the same transaction, so that the
    /// reconciler leaves its objects in the clusters (`?cascade=false`). With `dryRun` the same
    /// checks run and nothing is deleted.
    public func delete(
        namespace: String, name: String, audit: AuditContext = .unattributed, keepClusterObjects: Bool = false, dryRun: Bool = false,
        _ check: @escaping @Sendable (ServiceRecord) throws -> Void = { _ in }
    ) throws {
        try write(dryRun: dryRun, deletion(namespace: namespace, name: name, audit: audit, keepClusterObjects: keepClusterObjects, check))
        if !dryRun { changed([ServiceChange(key: ServiceKey(namespace: namespace, name: name), record: nil)]) }
    }

    /// `delete`, run in the next group commit without holding the calling thread: `completion`
    /// gets its outcome (`StoreError.notFound`, what `check` threw, or a storage fault) after the
    /// commit.
    public func deleteLater(
        namespace: String, name: String, audit: AuditContext = .unattributed, keepClusterObjects: Bool = false, dryRun: Bool = false,
        _ check: @escaping @Sendable (ServiceRecord) throws -> Void = { _ in },
        completion: @escaping @Sendable (Result<Void, any Error>) -> Void
    ) {
        let key = ServiceKey(namespace: namespace, name: name)
        writeLater(
            dryRun: dryRun, deletion(namespace: namespace, name: name, audit: audit, keepClusterObjects: keepClusterObjects, check),
            committed: { [self] _ in changed([ServiceChange(key: key, record: nil)]) }
        ) { result in
            completion(result)
        }
    }

    /// The write that deletes a service (see `delete`).
    private func deletion(
        namespace: String, name: String, audit: AuditContext, keepClusterObjects: Bool, _ check: @escaping @Sendable (ServiceRecord) throws -> Void
    ) -> @Sendable (any SQLConnection) throws -> Void {
        let cache = recordCache
        let time = ServiceStore.timestamp(now())
        return { connection in
            guard let stored = try ServiceStore.stored(connection, namespace: namespace, name: name, cache: cache) else {
                throw StoreError.notFound(namespace: namespace, name: name)
            }
            let (current, lastDocument) = (stored.record, stored.document)
            try check(current)
            try connection.prepare("DELETE FROM services WHERE namespace = ? AND name = ?").bind(.text(namespace), .text(name)).run()
            try ServiceStore.deleteParts(ServiceKey(namespace: namespace, name: name), from: connection)
            // The health checker's snapshot goes with the service (a new one starts from unknown).
            try connection.prepare("DELETE FROM health_state WHERE namespace = ? AND name = ?").bind(.text(namespace), .text(name)).run()
            // So does the record of its pushes (a push still running when it is deleted records none).
            try connection.prepare("DELETE FROM push_state WHERE namespace = ? AND name = ?").bind(.text(namespace), .text(name)).run()
            cache.remove(ServiceKey(namespace: namespace, name: name))
            if keepClusterObjects {
                try connection.prepare("DELETE FROM reconcile_state WHERE namespace = ? AND name = ?").bind(.text(namespace), .text(name)).run()
            }
            let eventVersion = try ServiceStore.advance(.resourceVersion, on: connection)
            try ServiceStore.recordChange(
                audit, key: ServiceKey(namespace: namespace, name: name), uid: current.uid, before: current.revision, after: nil, document: nil,
                status: 204, at: time, eventVersion: eventVersion, into: connection)
            try ServiceStore.recordEvent(
                .deleted, version: eventVersion, revisionID: nil, record: current, document: lastDocument, previousLabels: nil, at: time,
                into: connection)
        }
    }

    /// Stores a new service (revision 1) with its watch event and its audit line and history
    /// revision (`status`: what the audit line records).
    private static func insert(
        _ record: ServiceRecord, document: DocumentBytes, audit: AuditContext, status: Int, at time: String, into connection: any SQLConnection,
        cache: RecordCache
    ) throws {
        let service = record.service
        let key = ServiceKey(namespace: service.namespace, name: service.name)
        cache.remove(key)
        let (stored, parts) = try storeDocument(document, key: key, revision: 1, previousBytes: nil, patch: nil, into: connection)
        try connection.prepare(
            """
            INSERT INTO services (namespace, name, uid, revision, created_at, updated_at, labels, document, address_count)
            VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)
            """
        ).bind(
            .text(service.namespace), .text(service.name), .text(record.uid), .text(record.createdAt), .text(record.updatedAt),
            .text(labelsJSON(service.labels)), .blob(stored), .integer(service.addresses.count)
        ).run()
        cache.put(key, record, document: document, parts: parts)
        let eventVersion = try advance(.resourceVersion, on: connection)
        let row = try recordChange(
            audit, key: key, uid: record.uid, before: nil, after: 1, document: document, status: status, at: time, eventVersion: eventVersion,
            into: connection)
        if let row { cache.noteHistory(key, uid: record.uid, revision: 1, row: row) }
        try recordEvent(
            .added, version: eventVersion, revisionID: row?.id, record: record, document: document, previousLabels: nil, at: time, into: connection)
    }

    /// Stores a new revision of an existing service; returns its document, and with `previous`
    /// (the stored record and document it replaces) the patch from that document to it.
    @discardableResult
    private static func replace(
        _ record: ServiceRecord, previous: RecordCache.Entry? = nil, into connection: any SQLConnection, cache: RecordCache
    ) throws -> (document: DocumentBytes, patch: DocumentPatch?) {
        // From the previous document when only a few addresses changed (see `ServiceEncoder`);
        // the record cached keeps the sizes a splice measured (a small document, encoded whole,
        // measures none: the first splice once it has grown measures its chunks).
        var record = record
        let (document, patch): (DocumentBytes, DocumentPatch?) =
            if let previous {
                ServiceEncoder.documentAndPatch(&record, previous: previous.record, document: previous.document)
            } else {
                (DocumentBytes(ServiceEncoder.bytes(record)), nil)
            }
        try replace(
            record, document: document, previousBytes: previous?.document.count ?? Int.max, patch: patch, parts: previous?.parts, into: connection,
            cache: cache)
        return (document, patch)
    }

    /// Stores `document`, the encoding of `record`, as the new revision of an existing service
    /// whose stored document had `previousBytes` bytes (`Int.max` when not known), `patch` the
    /// edits from that document to this one when known, `parts` how that document was stored
    /// when known (see `storeDocument`).
    private static func replace(
        _ record: ServiceRecord, document: DocumentBytes, previousBytes: Int, patch: DocumentPatch?, parts: DocumentPartsState?,
        into connection: any SQLConnection, cache: RecordCache
    ) throws {
        let key = ServiceKey(namespace: record.service.namespace, name: record.service.name)
        cache.remove(key)
        let (stored, storedParts) = try storeDocument(
            document, key: key, revision: record.revision, previousBytes: previousBytes, patch: patch, known: parts, into: connection)
        // An empty `document` when it is kept apart (see `storeDocument`): the row stays small.
        try connection.prepare(
            "UPDATE services SET revision = ?, updated_at = ?, labels = ?, document = ?, address_count = ? WHERE namespace = ? AND name = ?"
        ).bind(
            .integer(record.revision), .text(record.updatedAt), .text(labelsJSON(record.service.labels)), .blob(stored),
            .integer(record.service.addresses.count), .text(record.service.namespace), .text(record.service.name)
        ).run()
        cache.put(key, record, document: document, parts: storedParts)
    }

    /// `speculation`'s write when `base` (the cached entry its guess was made from: its document
    /// is `speculation.base`) is still the stored revision, checked by the UPDATE itself rather
    /// than by reading the row first: it changes the row only while it has `base`'s uid and
    /// revision, and `base`, a cache entry, is exact while it does (see `RecordCache`). Only for
    /// documents that stay in the row before and after (`storeDocument` then writes nothing
    /// else); false when it changed nothing (not such documents, or another revision stored),
    /// for the caller to read the row instead.
    private static func replaceIfStored(
        _ speculation: Speculation, base: RecordCache.Entry, into connection: any SQLConnection, cache: RecordCache
    ) throws -> Bool {
        let (record, document) = (speculation.record, speculation.document)
        guard document.count <= inlineBytes, base.document.count <= inlineBytes, base.record.uid == record.uid,
            base.record.revision + 1 == record.revision
        else { return false }
        let service = record.service
        try connection.prepare(
            """
            UPDATE services SET revision = ?, updated_at = ?, labels = ?, document = ?, address_count = ?
            WHERE namespace = ? AND name = ? AND uid = ? AND revision = ?
            """
        ).bind(
            .integer(record.revision), .text(record.updatedAt), .text(labelsJSON(service.labels)), .blob(document.flattened),
            .integer(service.addresses.count), .text(service.namespace), .text(service.name), .text(base.record.uid),
            .integer(base.record.revision)
        ).run()
        guard connection.changes == 1 else { return false }
        cache.put(ServiceKey(namespace: service.namespace, name: service.name), record, document: document, parts: .inline)
        return true
    }

    /// SQLite: copies the WAL into the database file and truncates it (used at shutdown).
    /// Nothing to do on other databases. While the background checkpointer runs one of its own,
    /// SQLite answers busy at once (one checkpoint at a time, whatever the busy timeout): tried
    /// again every 10 ms for up to 5 s, after which the WAL is left as it is (the next start
    /// recovers it).
    public func checkpoint() throws {
        try writer.withLock { box in
            guard let connection = box.connection as? SQLiteConnection else { return }
            let deadline = ContinuousClock.now.advanced(by: .seconds(5))
            while true {
                let statement = try connection.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
                let busy = try statement.step() && statement.int(0) != 0
                statement.reset()
                guard busy, ContinuousClock.now < deadline else { return }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
    }

    /// SQLite's `PRAGMA integrity_check`: `["ok"]` when the file is sound. Other databases
    /// check their own storage; this answers `["ok"]` once a query succeeds.
    public func integrityCheck() throws(StoreError) -> [String] {
        guard database is SQLiteDatabase else {
            try ping()
            return ["ok"]
        }
        return try read { connection in
            let statement = try connection.prepare("PRAGMA integrity_check")
            var lines: [String] = []
            while try statement.step() { lines.append(statement.text(0)) }
            return lines
        }
    }

    private static func existing(_ connection: any SQLConnection, namespace: String, name: String, cache: RecordCache) throws -> ServiceRecord? {
        try stored(connection, namespace: namespace, name: name, cache: cache)?.record
    }

    /// The current record with its stored document (served as is when nothing changes): from
    /// `cache` when it holds the row's uid and revision, else read and decoded (and cached).
    private static func stored(
        _ connection: any SQLConnection, namespace: String, name: String, cache: RecordCache
    ) throws
        -> RecordCache.Entry?
    {
        let key = ServiceKey(namespace: namespace, name: name)
        let version = try connection.prepare("SELECT uid, revision FROM services WHERE namespace = ? AND name = ?")
        try version.bind(.text(namespace), .text(name))
        guard try version.step() else { return nil }
        if let hit = cache.lookup(key, uid: version.text(0), revision: version.int(1)) { return hit }
        let statement = try connection.prepare("SELECT document FROM services WHERE namespace = ? AND name = ?")
        try statement.bind(.text(namespace), .text(name))
        guard try statement.step() else { return nil }
        let bytes = try ServiceStore.document(statement.blob(0), connection, key: key)
        let record = try decode(bytes, namespace: namespace, name: name)
        let document = DocumentBytes(bytes)
        cache.put(key, record, document: document)
        return RecordCache.Entry(record: record, document: document, parts: nil)
    }

    static func labelsJSON(_ labels: [String: String]) -> String {
        JSONWriter.string(.object(JSONObject(labels.keys.sorted().map { ($0, .string(labels[$0]!)) })))
    }
}

/// One queued write of the group commit. Why @unchecked Sendable is safe: `result` and
/// `commitSequence` are written only by the thread holding the writer lock, and read either by
/// the owner after it has taken that same lock itself, or by the completion queue in a block
/// dispatched after the lock was released; the lock, or the dispatch, orders the two accesses.
private final class PendingWrite: @unchecked Sendable {
    let body: @Sendable (any SQLConnection) throws -> any Sendable
    /// The write is to be undone (a dry run): the group commit runs it in a savepoint of its own.
    let inSavepoint: Bool
    /// Set by the committing thread while it holds the writer lock; read after that thread
    /// released it (by the waiting writer, or on the completion queue for `completion`).
    var result: Result<any Sendable, any Error>?
    /// The commit's sequence number for `WALSync` (nil without one, or when the batch failed).
    var commitSequence: UInt64?
    /// For `writeLater`: called with `result` by the thread that committed, once it released the
    /// writer lock (the store's observers).
    let committed: (@Sendable (Result<any Sendable, any Error>) -> Void)?
    /// For `writeLater`: called with `result` on the completion queue after the commit.
    let completion: (@Sendable (Result<any Sendable, any Error>) -> Void)?

    init(
        body: @escaping @Sendable (any SQLConnection) throws -> any Sendable, inSavepoint: Bool = false,
        committed: (@Sendable (Result<any Sendable, any Error>) -> Void)? = nil, completion: (@Sendable (Result<any Sendable, any Error>) -> Void)?
    ) {
        self.body = body
        self.inSavepoint = inSavepoint
        self.committed = committed
        self.completion = completion
    }
}
