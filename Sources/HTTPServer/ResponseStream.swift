import Synchronization

/// A response body written over time, from any thread, without holding a worker thread while
/// nothing is to be sent: the handler returns `HTTPResponse.stream(status:headers:_:)`, the
/// transport sends the headers and then the body with chunked transfer coding (libmicrohttpd's
/// `MHD_create_response_from_callback` of unknown size). When the buffer is empty the connection
/// is suspended (`MHD_suspend_connection`, no worker, no polling); `write(_:)` resumes it.
///
/// The buffer is bounded by `capacity` bytes: a write that does not fit is refused (`.full`)
/// and the caller decides (e.g. ends the stream with a last message, `finish(with:)`), so a
/// client that reads slowly never makes a writer wait. The stream ends with `finish()` (after
/// the buffered bytes are sent), when the connection ends (client gone, write deadline, server
/// shutdown: `onClose` handlers run once), or with `abort()` (the connection is closed without
/// the terminating chunk, which tells the client the body is incomplete).
public final class ResponseStream: Sendable {
    /// What became of a write.
    public enum WriteResult: Sendable, Equatable {
        case written
        /// The bytes do not fit in the buffer; nothing was written.
        case full
        /// The stream has ended (finished, aborted or the connection is gone); nothing was written.
        case closed
    }

    /// What the transport gets when it asks for more body bytes.
    enum Pull: Equatable {
        case bytes(Int)
        /// The body is complete: send the terminating chunk.
        case end
        /// Close the connection without completing the body.
        case abort
        /// Nothing to send now; the connection was suspended and is resumed by the next write.
        case wait
    }

    private struct State {
        var chunks: [[UInt8]] = []
        /// Bytes of `chunks[0]` already sent.
        var offset = 0
        var buffered = 0
        /// Of `buffered`, bytes written with `force` (not counted against the capacity; they
        /// are a backlog written before anything else, so they are sent first).
        var forced = 0
        var finishing = false
        var aborted = false
        var ended = false
        /// Set while the connection is suspended waiting for bytes: resumes it.
        var resume: (@Sendable () -> Void)?
        /// The connection is suspended (or its resumption not yet taken up by libmicrohttpd).
        var suspended = false
        var closeHandlers: [@Sendable () -> Void] = []
        /// `whenBelow(_:_:)`: the handler and the number of buffered bytes it waits to go under.
        var below: (bytes: Int, handler: @Sendable () -> Void)?
    }

    /// Most bytes buffered at once (writes with `force` may go beyond it).
    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Appends `bytes` to the body. Without `force`, refused (`.full`) when other bytes are
    /// waiting and all together would exceed `capacity` (one write larger than the capacity is
    /// taken when nothing else waits). With `force` the bytes are taken whatever waits and do
    /// not count against the capacity: meant for a backlog written before anything else.
    @discardableResult
    public func write(_ bytes: [UInt8], force: Bool = false) -> WriteResult {
        guard !bytes.isEmpty else { return .written }
        let (result, resume): (WriteResult, (@Sendable () -> Void)?) = state.withLock { state in
            guard !state.finishing, !state.aborted, !state.ended else { return (.closed, nil) }
            let counted = state.buffered - state.forced
            guard force || counted == 0 || counted + bytes.count <= capacity else { return (.full, nil) }
            state.chunks.append(bytes)
            state.buffered += bytes.count
            if force { state.forced += bytes.count }
            defer { state.resume = nil }
            return (.written, state.resume)
        }
        resume?()
        return result
    }

    /// Ends the body once the buffered bytes are sent.
    public func finish() {
        finish(with: [])
    }

    /// Appends `bytes` whatever the capacity (a last message), then ends the body after them.
    public func finish(with bytes: [UInt8]) {
        let resume: (@Sendable () -> Void)? = state.withLock { state in
            guard !state.finishing, !state.aborted, !state.ended else { return nil }
            if !bytes.isEmpty {
                state.chunks.append(bytes)
                state.buffered += bytes.count
            }
            state.finishing = true
            defer { state.resume = nil }
            return state.resume
        }
        resume?()
    }

    /// Closes the connection without completing the body (the client sees a truncated response).
    public func abort() {
        let resume: (@Sendable () -> Void)? = state.withLock { state in
            guard !state.ended else { return nil }
            state.aborted = true
            defer { state.resume = nil }
            return state.resume
        }
        resume?()
    }

    /// Runs `handler` once the connection has ended (now, if it already has).
    public func onClose(_ handler: @escaping @Sendable () -> Void) {
        let ended = state.withLock { state in
            if !state.ended { state.closeHandlers.append(handler) }
            return state.ended
        }
        if ended { handler() }
    }

    /// Runs `handler` once, as soon as fewer than `bytes` bytes are buffered, or the stream has
    /// ended (now, if either is already so); replaces a handler set before and not yet run. For a
    /// writer that paces itself to the reader (writes until `.full`, then waits for room).
    public func whenBelow(_ bytes: Int, _ handler: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.ended || state.aborted || state.finishing || state.buffered < bytes {
                state.below = nil
                return true
            }
            state.below = (bytes, handler)
            return false
        }
        if now { handler() }
    }

    /// True once the stream accepts no more writes.
    public var isClosed: Bool { state.withLock { $0.finishing || $0.aborted || $0.ended } }

    /// Bytes written and not yet handed to the connection.
    public var bufferedBytes: Int { state.withLock { $0.buffered } }

    /// Lets an idle stream's transport look at its connection (a client that went away while
    /// nothing was sent is only noticed when the transport looks); a no-op unless suspended.
    public func probe() {
        let resume = state.withLock { state in
            defer { state.resume = nil }
            return state.resume
        }
        resume?()
    }

    // MARK: - Transport side

    /// Copies up to `buffer.count` bytes into `buffer`. When there is nothing to send, calls
    /// `peerClosed` (true: `.abort`) and otherwise `suspend`, and records `resume` for the next
    /// write, all under the stream's lock (so a write cannot slip in between and be missed).
    func pull(
        into buffer: UnsafeMutableRawBufferPointer, peerClosed: () -> Bool, suspend: () -> Void, resume: @escaping @Sendable () -> Void
    ) -> Pull {
        let (pulled, below): (Pull, (@Sendable () -> Void)?) = state.withLock { state in
            state.suspended = false
            if state.aborted { return (.abort, nil) }
            if state.buffered == 0 {
                if state.finishing { return (.end, nil) }
                if peerClosed() { return (.abort, nil) }
                state.resume = resume
                state.suspended = true
                suspend()
                return (.wait, nil)
            }
            var copied = 0
            while copied < buffer.count, !state.chunks.isEmpty {
                let chunk = state.chunks[0]
                let count = min(buffer.count - copied, chunk.count - state.offset)
                chunk.withUnsafeBytes { bytes in
                    buffer.baseAddress!.advanced(by: copied).copyMemory(from: bytes.baseAddress! + state.offset, byteCount: count)
                }
                copied += count
                state.offset += count
                if state.offset == chunk.count {
                    state.chunks.removeFirst()
                    state.offset = 0
                }
            }
            state.buffered -= copied
            state.forced = max(0, state.forced - copied)
            var below: (@Sendable () -> Void)? = nil
            if let waiting = state.below, state.buffered < waiting.bytes {
                below = waiting.handler
                state.below = nil
            }
            return (.bytes(copied), below)
        }
        below?()
        return pulled
    }

    /// The connection is done with the body (sent, or the connection closed): runs the close
    /// handlers once.
    func connectionEnded() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.ended else { return [] }
            state.ended = true
            state.suspended = false
            state.resume = nil
            state.chunks = []
            state.buffered = 0
            state.forced = 0
            defer {
                state.closeHandlers = []
                state.below = nil
            }
            return state.closeHandlers + (state.below.map { [$0.handler] } ?? [])
        }
        for handler in handlers { handler() }
    }

    /// Whether the connection is suspended, or resumed and not yet taken up again by
    /// libmicrohttpd (which must not stop meanwhile).
    var isSuspended: Bool { state.withLock { $0.suspended } }
}

extension HTTPResponse {
    /// A response whose body is written later through `stream` (see `ResponseStream`); sent
    /// with chunked transfer coding (HTTP/1.1) or until the connection closes (HTTP/1.0).
    public static func stream(status: Int = 200, headers: HTTPHeaders, _ stream: ResponseStream) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers)
        response.stream = stream
        return response
    }
}
