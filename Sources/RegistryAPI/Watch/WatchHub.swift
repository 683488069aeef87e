import Foundation
import HTTPServer
import Logging
import RegistryCore
import RegistryStorage
import Synchronization

/// The watches of `GET /v1/services?watch=true` (the Kubernetes watch protocol): every open
/// watch, fed from the change log (`watch_events`) by one dispatcher thread.
///
/// Writers never wait for watchers: a commit only signals the dispatcher (`ServiceStore.onChange`),
/// which reads the new events from the database in resource-version order (so events reach every
/// watcher in commit order, whoever committed them) and appends each one, once encoded, to the
/// buffer of each watcher that may see it. A watcher whose buffer (`Limits.bufferBytes`) is full
/// is dropped with a final ERROR event. Each watch is a `ResponseStream`: no worker thread is
/// held while it waits.
final class WatchHub: Sendable {
    struct Limits: Sendable {
        /// Watches open at once; more are answered 429.
        var maxWatchers = 500
        /// Bytes of events a watcher may have waiting to be sent; beyond it the watcher is dropped.
        var bufferBytes = 1 << 20
        /// Seconds between BOOKMARK events (to watchers that asked for them).
        var bookmarkInterval: Duration = .seconds(60)
        /// The longest a watch stays open (`timeoutSeconds` is capped to it; without it a watch
        /// lasts between half of it and all of it, so that reconnections spread out).
        var maxDuration: Duration = .seconds(1800)
    }

    /// What a watch asked for.
    struct Request: Sendable {
        /// nil: start with the current state (synthetic ADDED events), as `resourceVersion=0`.
        var resourceVersion: Int?
        var namespace: String?
        var selector: LabelSelector
        var scope: NamespaceScope
        var bookmarks: Bool
        var duration: Duration
        /// The bearer token the watch was opened with (its digest) and what it granted then;
        /// nil without a tokens file. Checked again by `revalidate(_:)` after a reload.
        var credential: Credential? = nil
    }

    /// A watch's token, as the digest the tokens file keeps, and the principal it was.
    struct Credential: Sendable {
        var digest: [UInt8]
        var principal: Principal
    }

    let limits: Limits
    private let store: ServiceStore
    private let logger: Logger
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// Called when a watcher is dropped because its buffer was full (counted in the metrics).
    private let onDrop: @Sendable () -> Void

    private struct State {
        var watchers: [Int: Watcher] = [:]
        /// Opened, not yet caught up (the dispatcher does that, in order with live events).
        var starting: [Watcher] = []
        var nextID = 0
        var thread: ThreadState = .idle
    }

    private enum ThreadState { case idle, running, stopped }

    init(store: ServiceStore, limits: Limits, logger: Logger, onDrop: @escaping @Sendable () -> Void = {}) {
        self.onDrop = onDrop
        self.store = store
        self.limits = limits
        self.logger = logger
        store.onChange { [weak self] _ in self?.wake.signal() }
    }

    /// Watches open now (including those still catching up).
    var count: Int { state.withLock { $0.watchers.count } }

    /// Bytes of events waiting in the open watches' buffers.
    var bufferedBytes: Int {
        state.withLock { Array($0.watchers.values) }.reduce(0) { $0 + $1.stream.bufferedBytes }
    }

    /// Opens a watch: a stream that the dispatcher fills; nil when `maxWatchers` are open or the
    /// hub has stopped (the caller answers 429 / 503).
    func open(_ request: Request) -> ResponseStream? {
        let stream = ResponseStream(capacity: limits.bufferBytes)
        let opened: (Watcher, Bool)? = state.withLock { state in
            guard state.thread != .stopped, state.watchers.count < limits.maxWatchers else { return nil }
            state.nextID += 1
            let watcher = Watcher(id: state.nextID, request: request, stream: stream)
            state.watchers[watcher.id] = watcher
            state.starting.append(watcher)
            let start = state.thread == .idle
            if start { state.thread = .running }
            return (watcher, start)
        }
        guard let (watcher, start) = opened else { return nil }
        stream.onClose { [weak self] in self?.remove(watcher.id) }
        if start { Thread.detachNewThread { [weak self] in self?.run() } }
        wake.signal()
        return stream
    }

    /// Whether no more watches are taken (shutting down).
    var isStopped: Bool { state.withLock { $0.thread == .stopped } }

    /// Ends, with an ERROR 410 (list again), every watch whose token no longer grants what it
    /// did when the watch opened (`grants` false: removed, rotated, or its role or namespaces
    /// changed by a reload of the tokens file), so that a revoked token stops receiving events
    /// at once instead of until the watch's timeout. The client's new list is authorized with
    /// the tokens in force (401 or 403 for a revoked one; the new scope's services otherwise).
    /// Returns how many were ended.
    @discardableResult
    func revalidate(_ grants: (Credential) -> Bool) -> Int {
        let open = state.withLock { Array($0.watchers.values) }
        var ended = 0
        for watcher in open {
            guard let credential = watcher.request.credential, !grants(credential) else { continue }
            end(
                watcher,
                with: WatchEncoding.error(
                    code: 410, reason: "Expired",
                    message:
                        "the access of token \"\(credential.principal.name)\" changed (the tokens file was reloaded); list again and watch from the list's metadata.resourceVersion"
                ))
            ended += 1
        }
        return ended
    }

    private func remove(_ id: Int) {
        state.withLock { _ = $0.watchers.removeValue(forKey: id) }
    }

    /// Refuses new watches, stops the dispatcher, then ends every watch after what is buffered:
    /// cleanly, or with `unfinished(_:)`'s ERROR for one still sending the current state.
    func shutdown() {
        let wasRunning = state.withLock { state -> Bool in
            defer { state.thread = .stopped }
            return state.thread == .running
        }
        if wasRunning {
            wake.signal()
            finished.wait()
        }
        // The dispatcher has stopped: the watchers' catch-up positions are no longer changing.
        let open = state.withLock { state -> [Watcher] in
            defer {
                state.starting = []
                state.watchers = [:]
            }
            return Array(state.watchers.values)
        }
        for watcher in open { watcher.stream.finish(with: watcher.caughtUp ? [] : Self.unfinished(watcher)) }
    }

    /// The last line of a watch that ends (its deadline, shutdown) while still catching up.
    /// Cut short while sending the current state, it is an ERROR 410: the ADDED events sent so
    /// far carry the version of the whole list, so a client resuming from it would never get
    /// the services not yet sent; it must list again. Cut short while replaying kept changes
    /// (each with its own version), it ends cleanly: resuming from the last version received
    /// misses nothing.
    private static func unfinished(_ watcher: Watcher) -> [UInt8] {
        guard case .listing(_, let version?) = watcher.catchUp else { return [] }
        return WatchEncoding.error(
            code: 410, reason: "Expired",
            message:
                "the watch ended before the current state (at resource version \(version)) was sent in full; list again and watch from the list's metadata.resourceVersion"
        )
    }

    // MARK: - Dispatcher

    private func run() {
        var cursor: Int
        do {
            cursor = try store.resourceVersionState().current
        } catch {
            logger.error("watches cannot start: the change log cannot be read", metadata: ["error": "\(error)"])
            cursor = 0
        }
        var lastTick = ContinuousClock.now
        while state.withLock({ $0.thread == .running }) {
            _ = wake.wait(timeout: .now() + .milliseconds(500))
            while wake.wait(timeout: .now()) == .success {}  // one pass serves every commit signalled so far
            let starting = state.withLock { state in
                defer { state.starting = [] }
                return state.starting
            }
            var waiting: [Watcher] = []
            var failure: (any Error)? = nil
            for watcher in starting {
                // One waiting for its client to read is not looked at (nor its data read again)
                // before its stream says there is room.
                guard watcher.hasRoom.load(ordering: .acquiring) else {
                    waiting.append(watcher)
                    continue
                }
                do {
                    switch try catchUp(watcher, through: cursor) {
                    case .caughtUp: watcher.caughtUp = true
                    case .waiting: waiting.append(watcher)
                    case .ended: break
                    }
                } catch {
                    failure = error
                    waiting.append(watcher)  // retried with the next pass, from where it stood
                }
            }
            do {
                cursor = try dispatch(after: cursor)
            } catch {
                failure = error
            }
            if let failure { logger.error("watch events could not be read; retrying", metadata: ["error": "\(failure)"]) }
            state.withLock { state in
                if state.thread == .running { state.starting = waiting + state.starting }
            }
            let now = ContinuousClock.now
            if now - lastTick >= .seconds(1) {
                lastTick = now
                tick(now: now, cursor: cursor)
            }
        }
        finished.signal()
    }

    /// What became of a catch-up pass.
    private enum CatchUpResult {
        /// Everything up to the cursor was written: the watcher gets live events from now on.
        case caughtUp
        /// Its buffer is full: the pass goes on once the client has read some of it.
        case waiting
        /// The watch has ended (closed, or its version is gone).
        case ended
    }

    /// Sends a new watcher what it missed up to `cursor` (the state, or the kept events after
    /// its version), as much as its buffer takes: a catch-up is paced by the client's reading
    /// like live events are (never more than `Limits.bufferBytes` waiting, so a watcher that does
    /// not read holds no copy of the registry or of the change log), and continues from
    /// `Watcher.catchUp` when the buffer has room again. Only events up to `cursor` are sent
    /// here; those after it reach the watcher through `dispatch` once it is caught up.
    private func catchUp(_ watcher: Watcher, through cursor: Int) throws -> CatchUpResult {
        guard !watcher.stream.isClosed else { return .ended }
        let request = watcher.request
        // Writes only while less than half the buffer is taken: the other half is for the live
        // events that follow at once, so that a client reading at a normal pace is not dropped
        // right after its catch-up.
        let room = max(1, limits.bufferBytes / 2)
        func write(_ line: [UInt8]) -> CatchUpResult? {
            guard watcher.stream.bufferedBytes < room else { return pause(watcher, until: max(1, room / 2)) }
            switch watcher.stream.write(line) {
            case .written: return nil
            // An event too large for what is left: it goes once the buffer is empty.
            case .full: return pause(watcher, until: 1)
            case .closed: return .ended
            }
        }
        while case .listing(let after, let listedAt) = watcher.catchUp {
            let page = try store.list(
                namespace: request.namespace, selector: request.selector, after: after, limit: Self.catchUpPage, allowed: request.scope.allows)
            // Later pages may be newer than the first; their events are replayed below from the
            // first page's version, so nothing is lost.
            let version = listedAt ?? page.resourceVersion
            watcher.catchUp = .listing(after: after, version: version)
            for (document, key) in zip(page.documents, page.keys) {
                if let stop = write(WatchEncoding.event(.added, document: document, resourceVersion: version)) { return stop }
                watcher.catchUp = .listing(after: key, version: version)
            }
            if page.next == nil { watcher.catchUp = .replaying(after: version) }
        }
        guard case .replaying(var position) = watcher.catchUp else { return .caughtUp }
        while position < cursor {
            let batch = try store.watchEvents(after: position, limit: Self.catchUpPage)
            if batch.state.compacted > position {
                end(watcher, with: WatchEncoding.expired(position, compacted: batch.state.compacted))
                return .ended
            }
            for event in batch.events where event.resourceVersion <= cursor {
                if let type = watcher.delivery(of: event), let stop = write(line(type, for: event)) {
                    return stop
                }
                position = event.resourceVersion
                watcher.catchUp = .replaying(after: position)
            }
            // The events after `cursor` are left to `dispatch` (position never passes `cursor`,
            // so none of them is skipped).
            guard batch.events.count == Self.catchUpPage, let last = batch.events.last, last.resourceVersion < cursor else { break }
        }
        watcher.sentThrough = max(position, watcher.sentThrough)
        return .caughtUp
    }

    /// Items read at once by a catch-up (list page, change-log batch).
    private static let catchUpPage = 100

    /// A catch-up stopped by a full buffer waits for the client to read: the stream wakes the
    /// dispatcher once fewer than `bytes` bytes wait in it.
    private func pause(_ watcher: Watcher, until bytes: Int) -> CatchUpResult {
        watcher.hasRoom.store(false, ordering: .releasing)
        watcher.stream.whenBelow(bytes) { [weak self, weak watcher] in
            watcher?.hasRoom.store(true, ordering: .releasing)
            self?.wake.signal()
        }
        return .waiting
    }

    /// Reads the events after `cursor` and hands each to the watchers that may see it; returns
    /// the new cursor. With no watch open, no event is read (rebuilding each changed document
    /// from its history patch for nobody): the cursor moves to the current resource version, and
    /// a watch opened after this look catches up through the store to the next pass's cursor.
    private func dispatch(after cursor: Int) throws -> Int {
        if state.withLock({ $0.watchers.isEmpty }) { return max(cursor, try store.resourceVersionState().current) }
        var cursor = cursor
        while true {
            let batch = try store.watchEvents(after: cursor, limit: 500)
            if batch.state.compacted > cursor {
                // The log was pruned past events not yet dispatched (the dispatcher was stalled
                // longer than the log is kept): every watcher has missed them.
                for watcher in live() {
                    end(watcher, with: WatchEncoding.expired(watcher.sentThrough, compacted: batch.state.compacted))
                }
                return batch.state.current
            }
            guard !batch.events.isEmpty else { return cursor }
            let watchers = live()
            for event in batch.events {
                var lines: [WatchEventType: [UInt8]] = [:]
                for watcher in watchers where event.resourceVersion > watcher.sentThrough {
                    guard let type = watcher.delivery(of: event) else { continue }
                    let encoded =
                        lines[type]
                        ?? {
                            let encoded = line(type, for: event)
                            lines[type] = encoded
                            return encoded
                        }()
                    send(encoded, to: watcher)
                }
            }
            cursor = batch.events.last?.resourceVersion ?? cursor
            if batch.events.count < 500 { return cursor }
        }
    }

    /// Appends an event; a full buffer drops the watcher with a final ERROR event.
    private func send(_ line: [UInt8], to watcher: Watcher) {
        switch watcher.stream.write(line) {
        case .written:
            watcher.lastWrite = .now
        case .full:
            onDrop()
            logger.notice(
                "a watcher fell behind and was dropped",
                metadata: ["watcher": "\(watcher.id)", "bufferBytes": "\(limits.bufferBytes)"])
            end(
                watcher,
                with: WatchEncoding.error(
                    code: 503, reason: "ServiceUnavailable",
                    message:
                        "the watch fell behind: \(limits.bufferBytes) bytes of events were waiting to be sent; watch again from the last resourceVersion received"
                ))
        case .closed:
            break
        }
    }

    /// Ends a watch after `last` and frees its slot at once (its connection may take longer to
    /// go: a client that does not read keeps it until the write deadline).
    private func end(_ watcher: Watcher, with last: [UInt8]) {
        remove(watcher.id)
        watcher.stream.finish(with: last)
    }

    private func live() -> [Watcher] {
        state.withLock { state in state.watchers.values.filter(\.caughtUp) }
    }

    /// The line of `event` for a watcher that gets it as `type`. A change that moves a service
    /// out of a watcher's selector is a DELETED carrying the last state that matched (the
    /// document before the change; the change's own when the log no longer keeps it), as the
    /// Kubernetes watch cache sends it.
    private func line(_ type: WatchEventType, for event: WatchEvent) -> [UInt8] {
        var document = event.document
        if type == .deleted, event.type == .modified, let before = try? store.documentBefore(event) { document = before }
        return WatchEncoding.event(type, document: document, resourceVersion: event.resourceVersion)
    }

    /// Once a second: ends watches past their duration (with a last bookmark when asked for),
    /// sends due bookmarks, and lets idle streams check their connection.
    private func tick(now: ContinuousClock.Instant, cursor: Int) {
        // A watch still catching up ends at its deadline too, without a bookmark (it has not
        // been sent everything up to any version yet).
        let catchingUp = state.withLock { state in state.watchers.values.filter { !$0.caughtUp } }
        for watcher in catchingUp where now >= watcher.deadline { end(watcher, with: Self.unfinished(watcher)) }
        for watcher in live() {
            let position = max(cursor, watcher.sentThrough)
            if now >= watcher.deadline {
                end(watcher, with: watcher.request.bookmarks ? WatchEncoding.bookmark(position) : [])
                continue
            }
            if watcher.request.bookmarks, now - watcher.lastBookmark >= limits.bookmarkInterval {
                watcher.lastBookmark = now
                send(WatchEncoding.bookmark(position), to: watcher)
            } else if now - watcher.lastWrite >= .seconds(10) {
                watcher.lastWrite = now
                watcher.stream.probe()
            }
        }
    }
}

/// One open watch. Its mutable fields are used by the dispatcher thread only (and set once
/// before the watcher is live).
final class Watcher: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `caughtUp` is behind a lock (read by the handler threads'
    // `live()` snapshots through the hub's lock); the other mutable fields are touched only by
    // the dispatcher thread.
    let id: Int
    let request: WatchHub.Request
    let stream: ResponseStream
    let deadline: ContinuousClock.Instant
    private let ready = Atomic<Bool>(false)
    var sentThrough = 0
    var lastWrite = ContinuousClock.now
    var lastBookmark = ContinuousClock.now
    /// False while a catch-up waits for the client to read (set again by the stream).
    let hasRoom = Atomic<Bool>(true)
    /// How far the catch-up has come (see `WatchHub.catchUp`).
    var catchUp: CatchUpPosition

    /// Where a catch-up goes on from.
    enum CatchUpPosition {
        /// Sending the current state as ADDED events: the services after `after`, listed at
        /// `version` (nil: not started).
        case listing(after: ServiceKey?, version: Int?)
        /// Sending the kept events after `after`.
        case replaying(after: Int)
    }

    init(id: Int, request: WatchHub.Request, stream: ResponseStream) {
        self.id = id
        self.request = request
        self.stream = stream
        self.deadline = ContinuousClock.now.advanced(by: request.duration)
        self.catchUp = request.resourceVersion.map { .replaying(after: $0) } ?? .listing(after: nil, version: nil)
    }

    var caughtUp: Bool {
        get { ready.load(ordering: .acquiring) }
        set { ready.store(newValue, ordering: .releasing) }
    }

    /// The event type this watcher gets for `event`, or nil when it may not see it: outside the
    /// token's namespaces or the requested one, or outside the selector before and after the
    /// change. A change that moves a service into the selector's set is ADDED, out of it DELETED
    /// (as the Kubernetes API server's watch cache does).
    func delivery(of event: WatchEvent) -> WatchEventType? {
        guard request.scope.allows(event.namespace), request.namespace.map({ $0 == event.namespace }) ?? true else { return nil }
        guard !request.selector.requirements.isEmpty else { return event.type }
        let now = request.selector.matches(event.labels)
        switch event.type {
        case .added, .deleted:
            return now ? event.type : nil
        case .modified:
            let before = event.previousLabels.map(request.selector.matches) ?? now
            switch (before, now) {
            case (true, true): return .modified
            case (false, true): return .added
            case (true, false): return .deleted
            case (false, false): return nil
            }
        }
    }
}

/// The lines of a watch stream: one JSON object per line, `{"type":…,"object":…}`.
enum WatchEncoding {
    /// The Content-Type of a watch (the Kubernetes API server's, for its streaming serializers).
    static let mediaType = "application/json;stream=watch"

    /// An ADDED, MODIFIED or DELETED event: the service document with
    /// `metadata.resourceVersion` added.
    static func event(_ type: WatchEventType, document: [UInt8], resourceVersion: Int) -> [UInt8] {
        var line = Array(#"{"type":""#.utf8) + Array(type.rawValue.utf8) + Array(#"","object":"#.utf8)
        line.reserveCapacity(document.count + 80)
        if document.last == UInt8(ascii: "}"), document.count > 2 {
            line += document.dropLast()
            line += Array(#","metadata":{"resourceVersion":""#.utf8) + Array(String(resourceVersion).utf8) + Array(#""}}"#.utf8)
        } else {
            line += document
        }
        line += Array("}\n".utf8)
        return line
    }

    /// A BOOKMARK: only `metadata.resourceVersion`, the version up to which the watcher has
    /// been sent every change it may see.
    static func bookmark(_ resourceVersion: Int) -> [UInt8] {
        Array(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"\#(resourceVersion)"}}}"#.utf8) + [UInt8(ascii: "\n")]
    }

    /// An ERROR event: a Kubernetes `Status` object (`code` 410 with reason `Expired` means
    /// "list again").
    static func error(code: Int, reason: String, message: String) -> [UInt8] {
        let status = JSONValue.object(
            JSONObject([
                ("kind", .string("Status")), ("apiVersion", .string("v1")), ("metadata", .object(JSONObject())),
                ("status", .string("Failure")), ("message", .string(message)), ("reason", .string(reason)), ("code", .integer(code)),
            ]))
        return JSONWriter.bytes(.object(JSONObject([("type", .string("ERROR")), ("object", status)]))) + [UInt8(ascii: "\n")]
    }

    static func expired(_ resourceVersion: Int, compacted: Int) -> [UInt8] {
        error(
            code: 410, reason: "Expired",
            message: "too old resource version: \(resourceVersion) (\(compacted)); list again and watch from the list's metadata.resourceVersion")
    }
}
