import Foundation
import Synchronization

/// On a database shared by several processes (PostgreSQL replicas), tells this process's
/// `onCommit` observers (the reconciler, health checks, DNS refresh, watches) about the changes
/// the other processes commit: a thread reads the change log (`watch_events`, in resource
/// version order) every `interval` from where it last stood and hands the services it names,
/// as they are now, to `ServiceStore.changed`. Changes this process made itself are seen a
/// second time; observers treat a change as "look at this service again", so that is harmless.
/// When the log was compacted past its position (the process was cut off longer than the log
/// is kept), every current service is handed over instead.
final class SharedChangeFollower: Sendable {
    private let thread: PeriodicThread

    /// Starts following from the change log's current position.
    init(store: ServiceStore, interval: Duration) {
        let cursor = (try? store.resourceVersionState().current) ?? 0
        thread = PeriodicThread(name: "shared-change-follower", interval: interval, state: cursor) { [weak store] cursor in
            guard let store else { return false }
            cursor = store.followChanges(after: cursor)
            return true
        }
    }

    /// Ends the thread after its current pass.
    func stop() { thread.stop() }
}

extension ServiceStore {
    /// Starts following the changes other processes commit (see `SharedChangeFollower`); only
    /// on a shared database, once. `interval`: how often the change log is read (default 500 ms),
    /// which bounds how late another replica's change reaches this process's observers.
    public func followSharedChanges(interval: Duration = .milliseconds(500)) {
        guard database.isShared else { return }
        follower.withLock { follower in
            if follower == nil { follower = SharedChangeFollower(store: self, interval: interval) }
        }
    }

    /// Stops `followSharedChanges`.
    public func stopFollowingSharedChanges() {
        follower.withLock { follower in
            follower?.stop()
            follower = nil
        }
    }

    /// One pass of the follower: hands the services changed after `cursor` to the observers and
    /// returns the new position (the same one when the database cannot be read now).
    func followChanges(after cursor: Int) -> Int {
        do {
            let (keys, state) = try read { connection -> ([ServiceKey], ResourceVersionState) in
                try connection.beginRead()
                defer {
                    connection.resetStatements()
                    try? connection.execute("COMMIT")
                }
                let state = try ServiceStore.resourceVersionState(connection)
                guard state.current > cursor else { return ([], state) }
                if state.compacted > cursor {
                    let all = try connection.prepare("SELECT namespace, name FROM services ORDER BY namespace, name")
                    var keys: [ServiceKey] = []
                    while try all.step() { keys.append(ServiceKey(namespace: all.text(0), name: all.text(1))) }
                    return (keys, state)
                }
                let events = try connection.prepare(
                    "SELECT namespace, name FROM watch_events WHERE resource_version > ? AND resource_version <= ? ORDER BY resource_version")
                try events.bind(.integer(cursor), .integer(state.current))
                var keys: [ServiceKey] = []
                var seen = Set<ServiceKey>()
                while try events.step() {
                    let key = ServiceKey(namespace: events.text(0), name: events.text(1))
                    if seen.insert(key).inserted { keys.append(key) }
                }
                return (keys, state)
            }
            var changes: [ServiceChange] = []
            for key in keys {
                changes.append(ServiceChange(key: key, record: try record(namespace: key.namespace, name: key.name)))
            }
            changed(changes)
            return state.current
        } catch {
            return cursor
        }
    }
}
