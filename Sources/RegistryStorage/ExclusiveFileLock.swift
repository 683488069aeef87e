import Foundation
import Synchronization

/// An exclusive `flock(2)` on the database file, held by the one process that serves it, so that
/// a second `endpoint-registry serve` on the same SQLite file refuses to start instead of running
/// a second reconciler, a second health checker and a stale cache beside the first.
///
/// `flock` locks are independent of the POSIX record locks SQLite takes on the same file (Linux),
/// and the kernel drops this one when the process ends, `kill -9` included.
final class ExclusiveFileLock: Sendable {
    private let descriptor: Int32
    private let released = Atomic<Bool>(false)

    /// Opens (creating it empty if missing) and locks `path`.
    /// - Throws: `StorageFault` `.busy` when another process holds the lock, `.cannotOpen` when
    ///   the file cannot be opened.
    init(path: String) throws(StorageFault) {
        let descriptor = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StorageFault(reason: .cannotOpen, message: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK ? "another process serves this database (one server per SQLite file)" : String(cString: strerror(errno))
            close(descriptor)
            throw StorageFault(reason: .busy, message: "cannot lock \(path): \(reason)")
        }
        self.descriptor = descriptor
    }

    /// Releases the lock (once). The descriptor stays open until `deinit`: closing any
    /// descriptor of the database file drops every POSIX lock the process holds on it, SQLite's
    /// included (fcntl(2); SQLite's "How To Corrupt" §2.2), while the store's connections are
    /// still open.
    func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        flock(descriptor, LOCK_UN)
    }

    deinit { close(descriptor) }
}
