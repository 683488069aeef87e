import Foundation
import Synchronization

/// Log lines on their way to a file descriptor (stderr): appended by any thread, written by one
/// background thread in batches, so that a request's line costs a copy into a buffer instead of a
/// `write(2)` on the request thread.
///
/// Order is kept: lines reach the descriptor in the order they were appended. Lines at
/// `notice` and above (startup, shutdown, errors) are written before `append` returns, after
/// everything buffered before them. A buffered line waits at most about `batchDelay` (10 ms);
/// `kill -9` can lose the lines of that last moment, never a line at `notice` or above.
/// The buffer is bounded (`limit`, 4 MiB): past it the appending thread writes the batch itself.
///
/// The buffer's lock is a `NSLock` (a plain pthread mutex, which sleeps when taken), not a
/// `Mutex` (which spins first): every request's line goes through it, and with more worker
/// threads than cores a holder preempted inside its short copy made the other workers spin
/// their whole time slices (eight workers on two cores fell from ~60,000 to ~19,000 GETs/s).
///
/// `@unchecked Sendable`: `pending` is read and changed only while `pendingLock` is held; the
/// other stored properties are immutable or synchronized themselves.
public final class LogSink: @unchecked Sendable {
    /// The process's standard error.
    public static let standardError = LogSink(fileDescriptor: 2)

    private let fileDescriptor: Int32
    private let pendingLock = NSLock()
    private var pending: [UInt8] = []
    /// Held while a batch is taken and written, so that batches (and synchronous flushes) never
    /// interleave or overtake each other. It holds the spare buffer: the last batch written,
    /// emptied with its capacity kept, which takes the place of the next batch (two buffers
    /// swapped, so appending never regrows a buffer from empty nor waits for an allocation).
    private let writing = Mutex<[UInt8]>([])
    private let wake = DispatchSemaphore(value: 0)
    private static let batchDelay: UInt32 = 10_000
    private static let limit = 4 << 20

    init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        let thread = Thread { [self] in writeLoop() }
        thread.name = "log-writer"
        thread.start()
    }

    /// Appends `line` (which ends with a newline); writes it and everything before it at once
    /// when `immediately` or when the buffer is past its bound.
    public func append(_ line: [UInt8], immediately: Bool = false) {
        let (wasEmpty, full) = pendingLock.withLock { () -> (Bool, Bool) in
            let wasEmpty = pending.isEmpty
            pending.append(contentsOf: line)
            return (wasEmpty, pending.count >= Self.limit)
        }
        if immediately || full {
            flush()
        } else if wasEmpty {
            wake.signal()
        }
    }

    /// Writes everything appended so far before returning.
    public func flush() {
        writing.withLock { spare in
            var batch = spare
            spare = []
            pendingLock.withLock { swap(&pending, &batch) }
            write(batch)
            // A buffer grown past the bound by a burst is not kept.
            batch.removeAll(keepingCapacity: batch.capacity <= Self.limit)
            spare = batch
        }
    }

    private func writeLoop() {
        while true {
            wake.wait()
            // A short pause gathers the lines of concurrent requests into one write.
            usleep(Self.batchDelay)
            flush()
        }
    }

    private func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
