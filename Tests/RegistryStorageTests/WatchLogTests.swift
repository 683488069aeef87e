import Foundation
import RegistryCore
import Synchronization
import Testing

@testable import RegistryStorage

/// The global resource version and the change log behind watches (issue 15).
@Suite struct WatchLogTests {
    private func store(now: @escaping @Sendable () -> Date = { Date() }) throws -> ServiceStore {
        try freshStore(now: now)
    }

    /// Events read one at a time (each call starting from the document the previous one built)
    /// carry the same documents as one call reading them all, and as the history: across many
    /// patched revisions, a revision kept whole, deletion and re-creation.
    @Test func eventsReadOneByOneCarryTheDocumentsOfTheirRevisions() throws {
        let store = try store()
        _ = try store.create(sample("p"))
        for round in 0..<2 {
            for index in 0..<40 {
                _ = try store.update(namespace: "default", name: "p") { current in
                    var service = try #require(current).service
                    service.addresses.append(EndpointAddress(ip: "10.9.\(round).\(index + 1)"))
                    service.normalize()
                    return service
                }
            }
            if round == 0 {
                try store.delete(namespace: "default", name: "p")
                _ = try store.create(sample("p"))
            }
        }
        let all = try store.watchEvents(after: 0, limit: 1000).events
        #expect(all.count == 83)
        var position = 0
        var oneByOne: [WatchEvent] = []
        while let event = try store.watchEvents(after: position, limit: 1).events.first {
            oneByOne.append(event)
            position = event.resourceVersion
        }
        #expect(oneByOne.map(\.document) == all.map(\.document))
        #expect(oneByOne.map(\.resourceVersion) == all.map(\.resourceVersion))
        let current = try #require(try store.document(namespace: "default", name: "p"))
        #expect(oneByOne.last?.document == current.document)
    }

    @Test func everyWriteTakesTheNextResourceVersionWithItsEvent() throws {
        let store = try store()
        let start = try store.resourceVersionState()
        #expect(start == ResourceVersionState(current: 1, compacted: 1))
        _ = try store.create(sample("a", labels: ["team": "x"]))
        _ = try store.update(namespace: "default", name: "a") { current in
            var service = try #require(current).service
            service.labels = ["team": "y"]
            return service
        }
        // A no-op update changes nothing: no version, no event.
        _ = try store.update(namespace: "default", name: "a") { current in try #require(current).service }
        _ = try store.update(namespace: "default", name: "b") { _ in sample("b") }
        _ = try store.importServices([sample("c"), sample("b", labels: ["new": "1"])], onConflict: .replace, dryRun: false)
        try store.delete(namespace: "default", name: "a")
        // Dry runs and failed writes leave no trace.
        _ = try store.create(sample("d"), dryRun: true)
        #expect(throws: StoreError.self) { try store.delete(namespace: "default", name: "missing") }

        let batch = try store.watchEvents(after: 0, limit: 100)
        #expect(batch.state.current == 7)
        #expect(batch.events.map(\.resourceVersion) == [2, 3, 4, 5, 6, 7])
        #expect(batch.events.map(\.type) == [.added, .modified, .added, .added, .modified, .deleted])
        #expect(batch.events.map(\.name) == ["a", "a", "b", "c", "b", "a"])
        #expect(batch.events[1].labels == ["team": "y"] && batch.events[1].previousLabels == ["team": "x"])
        #expect(batch.events[0].previousLabels == nil)
        #expect(batch.events[4].previousLabels == [:] && batch.events[4].labels == ["new": "1"])
        // DELETED carries the last document; the others the document after the change.
        let deleted = try JSONParser.parse(batch.events[5].document)
        #expect(deleted["revision"]?.intValue == 2 && deleted["labels"]?["team"]?.stringValue == "y")
        let current = try #require(try store.document(namespace: "default", name: "b"))
        #expect(batch.events[4].document == current.document)
        // Lists carry the version they were read at.
        #expect(try store.list(namespace: nil, selector: .everything, after: nil, limit: nil).resourceVersion == 7)
        #expect(try store.watchEvents(after: 5, limit: 1).events.map(\.resourceVersion) == [6])
    }

    @Test func theVersionSurvivesAReopen() throws {
        let database = try TestDatabase.fresh()
        do {
            let store = try database.open()
            _ = try store.create(sample("a"))
        }
        let reopened = try database.open()
        #expect(try reopened.resourceVersionState().current == 2)
        _ = try reopened.create(sample("b"))
        #expect(try reopened.watchEvents(after: 0, limit: 10).events.map(\.resourceVersion) == [2, 3])
    }

    /// Writes queued together share group commits, whose transactions advance the version in
    /// memory after the first write (SQLite) and store it once: every change gets the next
    /// version, each service's in the order its writes were queued; the failed and dry-run writes among them
    /// (the last two included) take none, and the stored version is the last event's, after a
    /// reopen too.
    @Test func writesCommittedTogetherTakeOneVersionEach() throws {
        let database = try TestDatabase.fresh()
        let count = 42
        func fails(_ index: Int) -> Bool { index % 7 == 3 || index == count - 1 }
        func dryRun(_ index: Int) -> Bool { index % 9 == 4 || index == count - 2 }
        do {
            let store = try database.open()
            let start = try store.resourceVersionState().current
            for index in 0..<count {
                let (name, failing) = ("s\(index % 10)", fails(index))
                store.update(namespace: "default", name: name, dryRun: dryRun(index)) { current in
                    if failing { throw StoreError.notFound(namespace: "default", name: name) }
                    var service = current?.service ?? sample(name)
                    service.labels = ["round": String(index)]
                    return service
                } completion: { _ in
                }
            }
            store.waitForQueuedWrites()
            let batch = try store.watchEvents(after: 0, limit: 100)
            let kept = (0..<count).filter { !fails($0) && !dryRun($0) }
            #expect(batch.events.map(\.resourceVersion) == Array((start + 1)...(start + kept.count)))
            // In the order they were queued, service by service (each service's updates are
            // guessed and queued in turn; different services' may pass each other).
            for name in Set(batch.events.map(\.name)) {
                let rounds = batch.events.filter { $0.name == name }.map { $0.labels["round"] }
                #expect(rounds == kept.filter { "s\($0 % 10)" == name }.map { String($0) }, "\(name)")
            }
            #expect(batch.state.current == start + kept.count)
        }
        let reopened = try database.open()
        let last = try #require(try reopened.watchEvents(after: 0, limit: 100).events.last?.resourceVersion)
        #expect(try reopened.resourceVersionState().current == last)
        _ = try reopened.create(sample("after"))
        #expect(try reopened.watchEvents(after: last, limit: 10).events.map(\.resourceVersion) == [last + 1])
    }

    @Test func pruningKeepsTheNewestEventsAndMovesTheCompactedVersion() throws {
        let store = try store()
        for index in 0..<10 { _ = try store.create(sample("s\(index)")) }
        #expect(try store.resourceVersionState().current == 11)
        // Keep the newest 4: versions 8…11 stay, 2…7 go, in batches.
        var deleted = 0
        while true {
            let count = try store.pruneWatchEvents(keep: 4, olderThan: "1970-01-01T00:00:00Z", batch: 4)
            deleted += count
            if count < 4 { break }
        }
        #expect(deleted == 6)
        let state = try store.resourceVersionState()
        #expect(state == ResourceVersionState(current: 11, compacted: 7))
        #expect(try store.watchEvents(after: 0, limit: 100).events.map(\.resourceVersion) == [8, 9, 10, 11])
        #expect(try store.pruneWatchEvents(keep: 4, olderThan: "1970-01-01T00:00:00Z", batch: 100) == 0)
    }

    @Test func pruningDropsEventsOlderThanTheCutoff() throws {
        let clock = TestClock(Date(timeIntervalSince1970: 1_000_000))
        let store = try store(now: { clock.now })
        _ = try store.create(sample("old"))
        clock.advance(3600)
        _ = try store.create(sample("new"))
        let cutoff = Date(timeIntervalSince1970: 1_000_000 + 1800).formatted(.iso8601)
        #expect(try store.pruneWatchEvents(keep: 1000, olderThan: cutoff, batch: 100) == 1)
        #expect(try store.resourceVersionState() == ResourceVersionState(current: 3, compacted: 2))
        #expect(try store.watchEvents(after: 2, limit: 10).events.map(\.name) == ["new"])
    }
}

/// A settable clock for the store's timestamps.
final class TestClock: Sendable {
    private let time: Mutex<Date>
    init(_ start: Date) { time = Mutex(start) }
    var now: Date { time.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { time.withLock { $0 = $0.addingTimeInterval(seconds) } }
}
