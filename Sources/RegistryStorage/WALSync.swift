import Foundation
import Synchronization

/// `--durability full` with the fsync out of the commit path: group commits go on while the
/// previous ones are being made durable.
///
/// With `PRAGMA synchronous=FULL` SQLite fsyncs the WAL inside `COMMIT`, holding the write
/// lock, so the next group commit waits for the disk. Instead the writer connection runs
/// `synchronous=NORMAL` (SQLite still syncs the WAL before every checkpoint, and its recovery
/// is the same) and this syncs the WAL file itself: after each commit the committing thread
/// takes a sequence number (`committed()`), and the writes of that commit are answered once an
/// `fdatasync(2)` of the WAL that began after the commit has returned (`whenSynced`, `wait`).
/// One `fdatasync` covers every commit made before it began, so while one runs the next
/// group commits are made and then synced together. What a write is told is the same as with
/// `synchronous=FULL`: acknowledged means on disk. The difference is what others may see
/// first: a reader (a `GET`, a watch, the reconciler) can see a commit up to one fsync before
/// it is durable; a power loss in that window loses it, though it was never acknowledged.
///
/// The WAL file is opened once, by its own descriptor (an fsync flushes the file's pages
/// whoever wrote them); SQLite keeps the same file (it rewrites it from its start, or
/// truncates it, but deletes it only when the last connection closes). A failed `fdatasync`
/// is final: after one, Linux may have dropped the pages it could not write and a later
/// `fdatasync` would succeed without them (PostgreSQL's "fsyncgate", 2018), so every write
/// waiting then or later fails with that fault and the server must be restarted (SQLite then
/// recovers whatever the WAL holds): `StorageFault.Reason.notDurable`, whatever `errno` said.
final class WALSync: Sendable {
    private struct State {
        /// Sequence number of the last commit (`committed()`).
        var committed: UInt64 = 0
        /// Every commit up to this one is durable.
        var synced: UInt64 = 0
        /// Whether the sync queue is running (`run()`).
        var syncing = false
        /// What waits for a sync: the commit's sequence number and what to run once it is durable.
        var waiting: [(sequence: UInt64, action: @Sendable (StorageFault?) -> Void)] = []
        /// The first failed `fdatasync`, after which nothing is acknowledged.
        var fault: StorageFault?
    }

    private let descriptor: Int32
    private let path: String
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "endpoint-registry.wal-sync")
    /// `fdatasync` calls made so far, for tests and metrics.
    let syncs = Atomic<Int>(0)
    /// The system call that makes the WAL durable: `fdatasync` (a test's hook can fail it).
    private let sync: @Sendable (Int32) -> Int32

    /// Opens the WAL file `walPath` (it must exist: the database is in WAL mode and a connection
    /// is open) and fsyncs its directory once, so that the file's own name is durable too.
    /// - Throws: `StorageFault` `.cannotOpen` when the file cannot be opened.
    init(walPath: String, sync: @escaping @Sendable (Int32) -> Int32 = { fdatasync($0) }) throws(StorageFault) {
        let descriptor = open(walPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StorageFault(reason: .cannotOpen, message: "cannot open \(walPath): \(String(cString: strerror(errno)))")
        }
        let folder = (walPath as NSString).deletingLastPathComponent
        let directory = open(folder.isEmpty ? "." : folder, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
        self.descriptor = descriptor
        self.path = walPath
        self.sync = sync
    }

    deinit { close(descriptor) }

    /// Called by the committing thread right after a commit (holding the writer lock, so the
    /// numbers follow the commits' order): the commit's sequence number for `whenSynced`/`wait`.
    func committed() -> UInt64 {
        state.withLock { state in
            state.committed += 1
            return state.committed
        }
    }

    /// Runs `action` once commit `sequence` is durable (with nil), or with the fault of the
    /// `fdatasync` that failed; on the sync queue, in the commits' order, or at once on this
    /// thread when it is durable already.
    func whenSynced(_ sequence: UInt64, _ action: @escaping @Sendable (StorageFault?) -> Void) {
        enum Next { case now(StorageFault?), start, queued }
        let next: Next = state.withLock { state in
            if let fault = state.fault { return .now(fault) }
            if sequence <= state.synced { return .now(nil) }
            state.waiting.append((sequence, action))
            guard !state.syncing else { return .queued }
            state.syncing = true
            return .start
        }
        switch next {
        case .now(let fault): action(fault)
        case .start: queue.async { [self] in run() }
        case .queued: break
        }
    }

    /// Waits until commit `sequence` is durable.
    /// - Throws: the fault of the `fdatasync` that failed.
    func wait(_ sequence: UInt64) throws(StorageFault) {
        let done = DispatchSemaphore(value: 0)
        let box = OutcomeBox()
        whenSynced(sequence) { fault in
            box.fault.withLock { $0 = fault }
            done.signal()
        }
        done.wait()
        if let fault = box.fault.withLock({ $0 }) { throw fault }
    }

    /// The sync loop: an `fdatasync` for every commit made so far, then the actions of the
    /// commits it covered, until nothing waits.
    private func run() {
        while true {
            let target: UInt64? = state.withLock { state in
                guard !state.waiting.isEmpty else {
                    state.syncing = false
                    return nil
                }
                return state.committed
            }
            guard let target else { return }
            var fault: StorageFault?
            if sync(descriptor) != 0 {
                let code = errno
                fault = StorageFault(
                    reason: .notDurable,
                    message:
                        "fdatasync of \(path) failed: \(String(cString: strerror(code))); writes are no longer acknowledged until the server is restarted"
                )
            }
            syncs.add(1, ordering: .relaxed)
            let (ready, final) = state.withLock { state in
                if let fault, state.fault == nil { state.fault = fault }
                if state.fault == nil { state.synced = max(state.synced, target) }
                // After a failure every waiter is told, whatever its commit.
                let limit = state.fault == nil ? target : .max
                let ready = state.waiting.filter { $0.sequence <= limit }
                state.waiting.removeAll { $0.sequence <= limit }
                return (ready, state.fault)
            }
            for waiter in ready { waiter.action(final) }
        }
    }
}

/// What `WALSync.wait` hands from the sync queue to the waiting thread.
private final class OutcomeBox: Sendable {
    let fault = Mutex<StorageFault?>(nil)
}
