import Foundation
import Synchronization

/// Keeps WAL checkpoints out of the commit path, with a bounded WAL.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses `wal_autocheckpoint`
/// pages, on the committing thread (and with it every write of that group commit waits for the
/// database file to be written and, with `synchronous=FULL`, fsynced). The writer connection
/// turns that off; instead, when a commit leaves at least `threshold` pages in the WAL that no
/// checkpoint has copied yet, this wakes its own thread, which runs
/// `PRAGMA wal_checkpoint(PASSIVE)` on its own connection: it copies what no reader still needs
/// into the database file without blocking readers or the writer, and once everything is
/// copied the next commit starts the WAL over from its beginning. Counting the pages not yet
/// copied, rather than the WAL's length, matters under a steady stream of writes: the WAL
/// then rarely starts over, its length stays above the threshold, and a trigger on the length
/// would run a checkpoint (two fsyncs) after every commit. Readers that keep old snapshots can
/// make a passive checkpoint fall behind; when the WAL reaches `ceiling` pages, the writer runs
/// a `RESTART` checkpoint itself before the next transaction (`mustWait`): writers wait rather
/// than the WAL grow without limit. (Under back-to-back group commits the WAL does not start
/// over before that either: SQLite starts it over only when a transaction begins with every
/// frame copied, and the writer begins its next one right after its commit, whose frames no
/// checkpoint has copied yet. Copying those few itself to start the WAL over earlier was
/// measured and changed neither the rate nor the p99: BENCHMARKS.md, twenty-fourth session.)
/// Both bounds are bytes (`thresholdBytes`, `ceilingBytes`) counted in the database's pages.
///
/// Why @unchecked Sendable is safe: NSCondition is a thread-safe lock and condition variable,
/// the counters are atomics or behind a Mutex, and the connection is used by the checkpoint
/// thread alone.
final class WALCheckpointer: @unchecked Sendable {
    /// Bytes of WAL not yet copied after which the background checkpoint runs by default:
    /// 4,000 pages of 4 KiB (four times SQLite's default `wal_autocheckpoint`), 2,000 of the
    /// 8 KiB pages of a file this server creates. A checkpoint copies each page once however
    /// many of its frames the WAL holds, so a longer stretch copies fewer pages per write:
    /// under adds spread over 1,000 services the checkpoint thread used about half the CPU
    /// with 4,000 pages of 4 KiB as with 1,000 (46 against 89 ticks for ~90,000 adds), while
    /// the `RESTART` at the ceiling usually has at most this much left to copy (more only when
    /// readers of old snapshots held the passive checkpoints back, the case the ceiling is for).
    static let thresholdBytes = 16_384_000
    /// Bytes of WAL at which writers wait for a checkpoint (64 MiB).
    static let ceilingBytes = 64 << 20

    /// This checkpointer's threshold, in pages (`thresholdBytes` worth unless given).
    let threshold: Int
    /// This checkpointer's ceiling, in pages (`ceilingBytes` worth, and at least `threshold`).
    let ceiling: Int
    private let pages = Atomic<Int>(0)
    /// Where the last checkpoint left the WAL: its length then (`log`) and how many of its
    /// pages had been copied into the database file (`copied`). A WAL shorter than `log`
    /// has started over, and all its pages are new.
    private let lastCheckpoint = Mutex<(log: Int, copied: Int)>((0, 0))
    private let state = Mutex<(requested: Bool, stopped: Bool)>((false, false))
    private let wake = NSCondition()
    private let connection: ConnectionBox
    /// Checkpoints run so far (background and at the ceiling), for tests and metrics.
    let checkpoints = Atomic<Int>(0)

    /// - Parameters:
    ///   - pageSize: the database's page size in bytes, which turns the bounds into pages.
    ///   - threshold: pages not yet copied at which the background checkpoint runs, more than
    ///     0 (nil: `thresholdBytes` worth).
    init(connection: any SQLConnection, pageSize: Int, threshold: Int? = nil) {
        let bounds = Self.bounds(pageSize: pageSize, threshold: threshold)
        precondition(bounds.threshold > 0, "a checkpoint threshold is a positive number of pages")
        self.connection = ConnectionBox(connection)
        (self.threshold, ceiling) = bounds
    }

    /// The threshold (`threshold`, else `thresholdBytes` worth) and the ceiling (`ceilingBytes`
    /// worth, at least the threshold) in pages of `pageSize` bytes.
    static func bounds(pageSize: Int, threshold: Int? = nil) -> (threshold: Int, ceiling: Int) {
        let size = max(pageSize, 512)  // SQLite's smallest page
        let pages = threshold ?? max(1, thresholdBytes / size)
        return (pages, max(pages, ceilingBytes / size))
    }

    /// Starts the background thread (once).
    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "wal-checkpoint"
        thread.start()
    }

    /// Stops the background thread after the checkpoint it may be running.
    func stop() {
        wake.lock()
        state.withLock { $0.stopped = true }
        wake.broadcast()
        wake.unlock()
    }

    /// Told the WAL's size after each commit of the writer connection (its WAL hook).
    func committed(pages count: Int) {
        pages.store(count, ordering: .relaxed)
        guard Self.isDue(pages: count, after: lastCheckpoint.withLock { $0 }, threshold: threshold) else { return }
        wake.lock()
        let first = state.withLock { state in
            defer { state.requested = true }
            return !state.requested
        }
        if first { wake.broadcast() }
        wake.unlock()
    }

    /// Whether a WAL of `pages` pages needs a checkpoint, given where the last one left it
    /// (`log`: the WAL's length then, `copied`: the pages it had copied): when at least
    /// `threshold` of its pages are not copied yet. A WAL shorter than `log` has started over
    /// since, so none of its pages is copied.
    static func isDue(pages: Int, after last: (log: Int, copied: Int), threshold: Int) -> Bool {
        let uncopied = pages < last.log ? pages : pages - last.copied
        return uncopied >= threshold
    }

    /// Whether the WAL has reached the ceiling: the writer then checkpoints before its next
    /// transaction (`checkpointAtCeiling`).
    var mustWait: Bool { pages.load(ordering: .relaxed) >= ceiling }

    /// Run by the writer, holding the writer lock: a `RESTART` checkpoint (waits, within the
    /// busy timeout, for readers of old snapshots), so that the next commit starts the WAL over.
    func checkpointAtCeiling(_ writer: any SQLConnection) {
        do {
            try writer.execute("PRAGMA wal_checkpoint(RESTART)")
            pages.store(0, ordering: .relaxed)
            lastCheckpoint.withLock { $0 = (0, 0) }
            checkpoints.add(1, ordering: .relaxed)
        } catch {
            // Busy beyond the timeout or an I/O error: the next commit tries again; the
            // commit itself reports a database that cannot be written.
        }
    }

    private func run() {
        while true {
            wake.lock()
            while !state.withLock({ $0.requested || $0.stopped }) { wake.wait() }
            let stopped = state.withLock { state in
                state.requested = false
                return state.stopped
            }
            wake.unlock()
            if stopped { return }
            do {
                // One row: busy (0 or 1), the WAL's length and the pages copied, in pages.
                let statement = try connection.connection.prepare("PRAGMA wal_checkpoint(PASSIVE)")
                if try statement.step() {
                    let (log, copied) = (statement.int(1), statement.int(2))
                    lastCheckpoint.withLock { $0 = (max(0, log), max(0, copied)) }
                }
                statement.reset()
                checkpoints.add(1, ordering: .relaxed)
            } catch {
                // SQLITE_BUSY (another checkpoint runs) or an I/O error: retried after the
                // next commit that crosses the threshold; the writer's commits report faults.
            }
        }
    }
}
