import Foundation
import HTTPServer
import RegistryAPI
import RegistryStorage
import Synchronization
import TestSupport
import Testing

/// One open watch (`GET /v1/services?watch=true…`) read event by event.
final class WatchStream {
    let client: RawHTTPClient
    let head: ClientResponse
    private var pending: [UInt8] = []

    init(port: UInt16, _ target: String, token: String? = nil, receiveBufferBytes: Int? = nil, readTimeoutSeconds: Int = 20) throws {
        client = try RawHTTPClient(port: port, timeoutSeconds: readTimeoutSeconds, receiveBufferBytes: receiveBufferBytes)
        var request = "GET \(target) HTTP/1.1\r\nHost: localhost\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        try client.send(Array((request + "\r\n").utf8))
        head = try client.readHead()
    }

    /// The next event, or nil when the stream ended cleanly (terminating chunk).
    func next() throws -> WatchEvent? {
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let line = Array(pending[..<newline])
                pending.removeFirst(newline + 1)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], "not a JSON object: \(line)")
                return WatchEvent(json: object)
            }
            guard let chunk = try client.readChunk() else {
                #expect(pending.isEmpty, "the stream ended inside an event")
                return nil
            }
            pending += chunk
        }
    }

    /// The next `count` events (failing when the stream ends before).
    func next(_ count: Int) throws -> [WatchEvent] {
        try (0..<count).map { _ in try #require(try next(), "the watch ended early") }
    }
}

/// An event as the tests look at it.
struct WatchEvent {
    var json: [String: Any]
    var type: String { json["type"] as? String ?? "" }
    var object: [String: Any] { json["object"] as? [String: Any] ?? [:] }
    var name: String { object["name"] as? String ?? "" }
    var namespace: String { object["namespace"] as? String ?? "" }
    var resourceVersion: Int? { ((object["metadata"] as? [String: Any])?["resourceVersion"] as? String).flatMap { Int($0) } }
    /// `type name` (`ADDED a`), for comparing sequences.
    var summary: String { type == "BOOKMARK" ? "BOOKMARK" : "\(type) \(name)" }
}

private func service(_ name: String, namespace: String = "default", labels: String = "{}") -> String {
    #"{"namespace":"\#(namespace)","name":"\#(name)","labels":\#(labels),"ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1"}]}"#
}

/// The list's `metadata.resourceVersion`.
private func listVersion(_ client: RawHTTPClient, token: String? = nil) throws -> Int {
    let list = try client.request("GET", "/v1/services", headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    #expect(list.status == 200)
    let metadata = try #require(list.json?["metadata"] as? [String: Any])
    return try #require((metadata["resourceVersion"] as? String).flatMap { Int($0) })
}

/// `GET /v1/services?watch=true` end to end: events in order, resume, 410, scoping, bookmarks,
/// slow watchers, the watcher limit, shutdown.
@Suite struct WatchTests {
    @Test func everyKindOfWriteIsAnEventInOrder() throws {
        let server = try TestServer { $0.openness.metrics = true }
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("before")).status == 201)
        let start = try listVersion(client)
        let watch = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(start)")
        #expect(watch.head.status == 200)
        #expect(watch.head.header("Content-Type") == "application/json;stream=watch")
        #expect(watch.head.header("Transfer-Encoding")?.lowercased() == "chunked")

        let writes: [(String, String, String?, String)] = [
            ("POST", "/v1/services", service("a"), "application/json"),
            ("PATCH", "/v1/services/default/a", #"{"description":"changed"}"#, "application/merge-patch+json"),
            ("POST", "/v1/services/default/a/addresses", #"{"ip":"10.0.0.2"}"#, "application/json"),
            ("DELETE", "/v1/services/default/a/addresses/10.0.0.1", nil, "application/json"),
            ("PUT", "/v1/services/default/b", service("b"), "application/json"),
            (
                "POST", "/v1/import", #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"c"},"spec":{"ports":[{"port":80}]}}"#,
                "application/json"
            ),
            ("DELETE", "/v1/services/default/a", nil, "application/json"),
        ]
        for (method, path, body, type) in writes {
            let answer = try client.request(method, path, body: body.map { Array($0.utf8) }, contentType: type)
            #expect(answer.status < 300, "\(method) \(path): \(answer.text)")
        }
        let metrics = try client.request("GET", "/metrics").text
        #expect(metrics.contains("\nendpoint_registry_watches 1"))

        let events = try watch.next(7)
        #expect(events.map(\.summary) == ["ADDED a", "MODIFIED a", "MODIFIED a", "MODIFIED a", "ADDED b", "ADDED c", "DELETED a"])
        let versions = events.compactMap(\.resourceVersion)
        #expect(versions == Array(start + 1...start + 7))
        #expect(events[1].object["description"] as? String == "changed")
        #expect((events[3].object["addresses"] as? [[String: Any]])?.map { $0["ip"] as? String } == ["10.0.0.2"])
        // DELETED carries the last state.
        #expect(events[6].object["revision"] as? Int == 4)
        #expect(try listVersion(client) == start + 7)
    }

    @Test func resumesFromAResourceVersionOrStartsFromTheCurrentState() throws {
        let server = try TestServer()
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("a")).status == 201)
        let afterA = try listVersion(client)
        #expect(try client.request("POST", "/v1/services", json: service("b")).status == 201)
        #expect(try client.request("DELETE", "/v1/services/default/a").status == 204)

        // From a version: exactly the kept events after it, then live ones.
        let resumed = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(afterA)")
        #expect(try resumed.next(2).map(\.summary) == ["ADDED b", "DELETED a"])
        #expect(try client.request("POST", "/v1/services", json: service("c")).status == 201)
        #expect(try resumed.next()?.summary == "ADDED c")

        // Without one (or with 0): the current state as ADDED events, then live ones.
        for target in ["/v1/services?watch=true", "/v1/services?watch=true&resourceVersion=0"] {
            let current = try listVersion(client)
            let fresh = try WatchStream(port: server.port, target)
            let initial = try fresh.next(2)
            #expect(initial.map(\.summary) == ["ADDED b", "ADDED c"])
            #expect(initial.allSatisfy { $0.resourceVersion == current })
            #expect(try client.request("DELETE", "/v1/services/default/b").status == 204)
            #expect(try fresh.next()?.summary == "DELETED b")
            #expect(try client.request("POST", "/v1/services", json: service("b")).status == 201)
            #expect(try fresh.next()?.summary == "ADDED b")
        }
    }

    @Test func aVersionOutsideTheKeptLogIsGone() throws {
        let server = try TestServer()
        let client = try server.client()
        for name in ["a", "b", "c", "d"] { #expect(try client.request("POST", "/v1/services", json: service(name)).status == 201) }
        let store = server.service.store
        #expect(try store.pruneWatchEvents(keep: 2, olderThan: "1970-01-01T00:00:00Z", batch: 100) == 2)
        let compacted = try store.resourceVersionState().compacted
        for version in [1, compacted - 1, compacted + 100] {
            let gone = try client.request("GET", "/v1/services?watch=true&resourceVersion=\(version)")
            #expect(gone.status == 410)
            #expect(gone.header("Content-Type") == "application/problem+json")
            #expect(gone.problemFields == ["resourceVersion"])
        }
        // The oldest kept version still works: a client then re-lists only when it must.
        let watch = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(compacted)")
        #expect(try watch.next(2).map(\.summary) == ["ADDED c", "ADDED d"])
    }

    @Test func badWatchParametersAre400() throws {
        let server = try TestServer()
        let client = try server.client()
        for (query, field) in [
            ("watch=maybe", "watch"), ("watch=true&resourceVersion=abc", "resourceVersion"), ("watch=true&resourceVersion=-1", "resourceVersion"),
            ("watch=true&timeoutSeconds=0", "timeoutSeconds"), ("watch=true&allowWatchBookmarks=yes", "allowWatchBookmarks"),
            ("watch=true&limit=5", "limit"), ("watch=true&continue=x", "continue"),
        ] {
            let answer = try client.request("GET", "/v1/services?\(query)")
            #expect(answer.status == 400, "\(query)")
            #expect(answer.problemFields == [field], "\(query)")
        }
        // HEAD answers the headers of a watch without opening one.
        let head = try client.request("HEAD", "/v1/services?watch=true")
        #expect(head.status == 200 && head.header("Content-Type") == "application/json;stream=watch")
        #expect(try client.request("GET", "/v1/services").status == 200, "the connection goes on after the HEAD")
        #expect(server.service.application.openWatches == 0)
    }

    @Test func aWatcherSeesOnlyTheNamespacesOfItsToken() throws {
        let path = try writeTokensFile([
            ("reader", "viewer", #"["team-*"]"#, "viewer-token-0123456789"), ("root", "admin", #"["*"]"#, "admin-token-01234567890"),
        ])
        let server = try TestServer { $0.tokensFile = path }
        let client = try server.client()
        let admin = ["Authorization": "Bearer admin-token-01234567890"]
        for (namespace, name) in [("team-a", "x"), ("other", "y")] {
            #expect(try client.request("POST", "/v1/services", headers: admin, json: service(name, namespace: namespace)).status == 201)
        }
        let initial = try WatchStream(port: server.port, "/v1/services?watch=true", token: "viewer-token-0123456789")
        #expect(try initial.next()?.summary == "ADDED x")
        let start = try listVersion(client, token: "admin-token-01234567890")
        let live = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(start)", token: "viewer-token-0123456789")
        for (namespace, name) in [("other", "hidden"), ("team-b", "z"), ("other", "hidden2"), ("team-a", "last")] {
            #expect(try client.request("POST", "/v1/services", headers: admin, json: service(name, namespace: namespace)).status == 201)
        }
        #expect(try live.next(2).map(\.summary) == ["ADDED z", "ADDED last"])
        #expect(try initial.next(2).map(\.summary) == ["ADDED z", "ADDED last"])
        // A namespace outside the token is refused, as for a list.
        let refused = try client.request(
            "GET", "/v1/services?watch=true&namespace=other", headers: ["Authorization": "Bearer viewer-token-0123456789"])
        #expect(refused.status == 403)
        // The namespace filter narrows further.
        let narrow = try WatchStream(port: server.port, "/v1/services?watch=true&namespace=team-b", token: "viewer-token-0123456789")
        #expect(try narrow.next()?.summary == "ADDED z")
    }

    @Test func aReloadThatTakesAwayATokensAccessEndsItsWatches() throws {
        let path = try writeTokensFile([
            ("revoked", "viewer", #"["*"]"#, "revoked-token-0123456789"), ("narrowed", "viewer", #"["*"]"#, "narrowed-token-012345678"),
            ("root", "admin", #"["*"]"#, "admin-token-01234567890"),
        ])
        let server = try TestServer { $0.tokensFile = path }
        let client = try server.client()
        let admin = ["Authorization": "Bearer admin-token-01234567890"]
        let start = try listVersion(client, token: "admin-token-01234567890")
        let target = "/v1/services?watch=true&resourceVersion=\(start)"
        let revoked = try WatchStream(port: server.port, target, token: "revoked-token-0123456789")
        let narrowed = try WatchStream(port: server.port, target, token: "narrowed-token-012345678")
        let kept = try WatchStream(port: server.port, target, token: "admin-token-01234567890")
        #expect(server.service.application.openWatches == 3)
        // One token removed, one limited to a namespace, one unchanged.
        let reloaded = """
            tokens:
            - name: narrowed
              role: viewer
              namespaces: ["team-a"]
              token: narrowed-token-012345678
            - name: root
              role: admin
              namespaces: ["*"]
              token: admin-token-01234567890

            """
        try reloaded.write(toFile: path, atomically: true, encoding: .utf8)
        server.service.reloadTokens()
        // Their watches end at once with "list again"; the list then answers as the new file says.
        for watch in [revoked, narrowed] {
            let last = try #require(try watch.next())
            #expect(last.type == "ERROR" && last.object["code"] as? Int == 410, "\(last.json)")
            #expect(try watch.next() == nil)
        }
        #expect(try client.request("GET", "/v1/services", headers: ["Authorization": "Bearer revoked-token-0123456789"]).status == 401)
        #expect(try client.request("POST", "/v1/services", headers: admin, json: service("a")).status == 201)
        #expect(try kept.next()?.summary == "ADDED a")
        #expect(server.service.application.openWatches == 1)
    }

    @Test func aSelectorWatchSeesServicesEnterAndLeaveItsSet() throws {
        let server = try TestServer()
        let client = try server.client()
        let start = try listVersion(client)
        let watch = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(start)&labelSelector=team%3Dx")
        func patch(_ name: String, _ body: String) throws {
            let answer = try client.request(
                "PATCH", "/v1/services/default/\(name)", body: Array(body.utf8), contentType: "application/merge-patch+json")
            #expect(answer.status == 200)
        }
        #expect(try client.request("POST", "/v1/services", json: service("in", labels: #"{"team":"x"}"#)).status == 201)
        #expect(try client.request("POST", "/v1/services", json: service("out", labels: #"{"team":"y"}"#)).status == 201)
        try patch("out", #"{"description":"still out"}"#)
        try patch("out", #"{"labels":{"team":"x"}}"#)
        try patch("in", #"{"labels":{"team":"y"}}"#)
        try patch("out", #"{"description":"in now"}"#)
        #expect(try client.request("DELETE", "/v1/services/default/in").status == 204)
        #expect(try client.request("DELETE", "/v1/services/default/out").status == 204)
        let events = try watch.next(5)
        #expect(events.map(\.summary) == ["ADDED in", "ADDED out", "DELETED in", "MODIFIED out", "DELETED out"])
        // Leaving the set, a service is sent as it last matched (the Kubernetes watch cache's
        // DELETED carries the previous object), at the change's resource version; the same when
        // the change is replayed to a watch that starts later.
        let replayed = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(start)&labelSelector=team%3Dx").next(5)
        for stream in [events, replayed] {
            let left = stream[2]
            #expect(left.object["labels"] as? [String: String] == ["team": "x"])
            #expect(left.object["description"] == nil)
            #expect((left.resourceVersion ?? 0) > (stream[1].resourceVersion ?? .max))
        }
        #expect(replayed.map(\.summary) == events.map(\.summary))
    }

    @Test func bookmarksComeOnlyWhenAskedFor() throws {
        let server = try TestServer { $0.watch.bookmarkIntervalSeconds = 1 }
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("a")).status == 201)
        let version = try listVersion(client)
        let asked = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(version)&allowWatchBookmarks=true&timeoutSeconds=3")
        let bookmark = try #require(try asked.next())
        #expect(bookmark.type == "BOOKMARK")
        #expect(bookmark.resourceVersion == version)
        #expect(bookmark.object.keys.sorted() == ["metadata"])
        // The watch ends after timeoutSeconds, cleanly; every event until then is a bookmark.
        while let event = try asked.next() { #expect(event.type == "BOOKMARK") }

        let plain = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(version)&timeoutSeconds=3")
        #expect(try plain.next() == nil)
    }

    @Test func aSlowWatcherIsDroppedAndWritesGoOn() throws {
        let server = try TestServer {
            $0.watch.bufferBytes = 4096
            $0.openness.metrics = true
        }
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("big")).status == 201)
        // A watcher that never reads, with a small receive window.
        let slow = try WatchStream(port: server.port, "/v1/services?watch=true", receiveBufferBytes: 4096)
        #expect(slow.head.status == 200)
        let reader = try WatchStream(port: server.port, "/v1/services?watch=true")
        #expect(try reader.next()?.summary == "ADDED big")
        // Events of ~64 KiB each; the writes all complete while the slow watcher stalls.
        let filler = String(repeating: "x", count: 64 << 10)
        var written = 0
        for round in 0..<200 {
            let body = #"{"annotations":{"example.com/filler":"\#(round)\#(filler)"}}"#
            let answer = try client.request(
                "PATCH", "/v1/services/default/big", body: Array(body.utf8), contentType: "application/merge-patch+json")
            #expect(answer.status == 200)
            written += 1
            #expect(try reader.next()?.type == "MODIFIED")
            if server.service.application.openWatches == 1 && round >= 20 { break }
        }
        #expect(server.service.application.openWatches == 1, "the slow watcher was not dropped after \(written) writes")
        let metrics = try client.request("GET", "/metrics").text
        #expect(metrics.contains("\nendpoint_registry_watches_dropped_total 1"))
        // The reader keeps up and stays.
        #expect(try client.request("DELETE", "/v1/services/default/big").status == 204)
        #expect(try reader.next()?.summary == "DELETED big")
    }

    @Test func aCatchUpIsSentAtTheClientsPace() throws {
        let server = try TestServer { $0.watch.bufferBytes = 4096 }
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("big")).status == 201)
        let start = try listVersion(client)
        // About 8 MiB of kept events (64 KiB each), more than the socket buffers take.
        let filler = String(repeating: "x", count: 64 << 10)
        let rounds = 130
        for round in 0..<rounds {
            let body = #"{"annotations":{"example.com/filler":"\#(round)\#(filler)"}}"#
            let answer = try client.request("PATCH", "/v1/services/default/big", body: Array(body.utf8), contentType: "application/merge-patch+json")
            #expect(answer.status == 200)
        }
        // Two watchers that do not read: one replaying the kept events, one starting from the state.
        let replaying = try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(start)", receiveBufferBytes: 4096)
        let listing = try WatchStream(port: server.port, "/v1/services?watch=true", receiveBufferBytes: 4096)
        #expect(replaying.head.status == 200 && listing.head.status == 200)
        // What waits in their buffers stays within a buffer and one event each (it was every
        // kept event at once).
        let bound = 2 * (4096 + (70 << 10))
        var largest = 0
        let deadline = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < deadline {
            largest = max(largest, server.service.application.watchBufferedBytes)
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(largest > 0, "the catch-up did not start")
        #expect(largest <= bound, "\(largest) bytes buffered for two watchers with 4096-byte buffers")
        // Read, the replay goes on to the end, in order, then live.
        let events = try replaying.next(rounds)
        #expect(events.compactMap(\.resourceVersion) == Array(start + 1...start + rounds))
        #expect(try listing.next()?.summary == "ADDED big")
        #expect(try client.request("DELETE", "/v1/services/default/big").status == 204)
        #expect(try replaying.next()?.summary == "DELETED big")
        #expect(try listing.next()?.summary == "DELETED big")
        #expect(server.service.application.openWatches == 2)
    }

    @Test func aWatchCutShortWhileSendingTheCurrentStateAsksForAList() throws {
        let server = try TestServer { $0.watch.bufferBytes = 4096 }
        let client = try server.client()
        // About 8 MiB of current state (64 KiB a service), more than the socket buffers take.
        let filler = String(repeating: "x", count: 64 << 10)
        let count = 130
        for index in 0..<count {
            let body = service("s\(index)", labels: #"{"fill":"x"}"#).dropLast() + #","annotations":{"example.com/filler":"\#(filler)"}}"#
            #expect(try client.request("POST", "/v1/services", json: String(body)).status == 201)
        }
        // A watch of the current state that ends (timeoutSeconds) before its client read it all.
        let watch = try WatchStream(port: server.port, "/v1/services?watch=true&timeoutSeconds=1", receiveBufferBytes: 4096)
        #expect(watch.head.status == 200)
        let deadline = ContinuousClock.now + .seconds(10)
        while server.service.application.openWatches > 0 && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        var events: [WatchEvent] = []
        while let event = try watch.next() { events.append(event) }
        let added = events.filter { $0.type == "ADDED" }.count
        #expect(added < count, "the whole state was sent before the deadline; the test needs more")
        // Its ADDED events carry the list's version: resuming from it would skip the services
        // not yet sent. It ends with ERROR 410 instead of cleanly.
        #expect(events.last?.type == "ERROR")
        #expect(events.last?.object["code"] as? Int == 410)
        #expect(events.last?.object["reason"] as? String == "Expired")
    }

    @Test func watchersCatchingUpWhileWritesGoOnMissNoEvent() throws {
        let server = try TestServer()
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("a")).status == 201)
        let start = try listVersion(client)
        let writes = 200
        let port = server.port
        let written = DispatchGroup()
        written.enter()
        Thread.detachNewThread {
            defer { written.leave() }
            guard let writing = try? RawHTTPClient(port: port, timeoutSeconds: 10) else { return }
            for round in 0..<writes {
                _ = try? writing.request(
                    "PATCH", "/v1/services/default/a", body: Array(#"{"description":"\#(round)"}"#.utf8), contentType: "application/merge-patch+json")
            }
        }
        // Watches opened while the writes go on, each from a version some events back: every one
        // must see every change after its version, without a gap.
        var watches: [(from: Int, stream: WatchStream)] = []
        for _ in 0..<12 {
            let from = max(start, try listVersion(client) - 3)
            watches.append((from, try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(from)")))
            Thread.sleep(forTimeInterval: 0.01)
        }
        written.wait()
        let last = start + writes
        #expect(try listVersion(client) == last)
        for (from, stream) in watches {
            var versions: [Int] = []
            while versions.last ?? from < last, let event = try stream.next() {
                if let version = event.resourceVersion { versions.append(version) }
            }
            let missed = Set(from + 1...last).subtracting(versions).sorted()
            #expect(missed.isEmpty, "the watch from \(from) missed the events of versions \(missed)")
            #expect(versions == versions.sorted() && Set(versions).count == versions.count, "the watch from \(from): \(versions)")
        }
    }

    @Test func writesFromSeveralConnectionsReachEveryWatcherInVersionOrder() throws {
        let server = try TestServer()
        let client = try server.client()
        let writers = 4
        let rounds = 40
        for writer in 0..<writers { #expect(try client.request("POST", "/v1/services", json: service("w\(writer)")).status == 201) }
        let start = try listVersion(client)
        let watches = try (0..<3).map { _ in try WatchStream(port: server.port, "/v1/services?watch=true&resourceVersion=\(start)") }
        let port = server.port
        let written = DispatchGroup()
        let failures = Mutex(0)
        for writer in 0..<writers {
            written.enter()
            Thread.detachNewThread {
                defer { written.leave() }
                guard let writing = try? RawHTTPClient(port: port, timeoutSeconds: 20) else {
                    failures.withLock { $0 += 1 }
                    return
                }
                for round in 0..<rounds {
                    let answer = try? writing.request(
                        "PATCH", "/v1/services/default/w\(writer)", body: Array(#"{"description":"\#(round)"}"#.utf8),
                        contentType: "application/merge-patch+json")
                    if answer?.status != 200 { failures.withLock { $0 += 1 } }
                }
            }
        }
        written.wait()
        #expect(failures.withLock { $0 } == 0)
        let last = start + writers * rounds
        #expect(try listVersion(client) == last)
        for watch in watches {
            let events = try watch.next(writers * rounds)
            // Every version once, in order; each service's revisions in order.
            #expect(events.compactMap(\.resourceVersion) == Array(start + 1...last))
            for writer in 0..<writers {
                let descriptions = events.filter { $0.name == "w\(writer)" }.map { $0.object["description"] as? String ?? "" }
                #expect(descriptions == (0..<rounds).map(String.init))
            }
        }
    }

    @Test func watchersResetHalfWayFreeTheirSlots() throws {
        let server = try TestServer { $0.openness.metrics = true }
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("big")).status == 201)
        let filler = String(repeating: "x", count: 32 << 10)
        for round in 0..<4 {
            // Watchers that read a little, then go while changes are being sent to them: half
            // reset the connection, half close it.
            let watches = try (0..<10).map { _ in try WatchStream(port: server.port, "/v1/services?watch=true", receiveBufferBytes: 4096) }
            for write in 0..<5 {
                let body = #"{"annotations":{"example.com/filler":"\#(round)-\#(write)\#(filler)"}}"#
                let answer = try client.request(
                    "PATCH", "/v1/services/default/big", body: Array(body.utf8), contentType: "application/merge-patch+json")
                #expect(answer.status == 200)
            }
            for (index, watch) in watches.enumerated() {
                _ = try watch.client.readChunk()
                if index % 2 == 0 { watch.client.resetOnClose() }
            }
        }
        // Every slot is freed (a closed connection is noticed at its next event at the latest),
        // and the server goes on.
        #expect(
            try client.request(
                "PATCH", "/v1/services/default/big", body: Array(#"{"description":"after"}"#.utf8), contentType: "application/merge-patch+json"
            ).status == 200)
        #expect(eventually { server.service.application.openWatches == 0 }, "\(server.service.application.openWatches) watches left")
        #expect(server.service.application.watchBufferedBytes == 0)
        let fresh = try WatchStream(port: server.port, "/v1/services?watch=true")
        #expect(try fresh.next()?.summary == "ADDED big")
    }

    @Test func theWatcherLimitAnswers429() throws {
        let server = try TestServer { $0.watch.maxWatchers = 2 }
        let client = try server.client()
        var first: WatchStream? = try WatchStream(port: server.port, "/v1/services?watch=true")
        let second = try WatchStream(port: server.port, "/v1/services?watch=true")
        #expect(first?.head.status == 200 && second.head.status == 200)
        let refused = try client.request("GET", "/v1/services?watch=true")
        #expect(refused.status == 429)
        #expect(refused.header("Retry-After") == "1")
        #expect(refused.header("Content-Type") == "application/problem+json")
        // Lists are not limited.
        #expect(try client.request("GET", "/v1/services").status == 200)
        // A watcher that goes away frees its slot (noticed at its next event at the latest).
        first = nil
        #expect(try client.request("POST", "/v1/services", json: service("a")).status == 201)
        #expect(try second.next()?.summary == "ADDED a")
        let deadline = ContinuousClock.now + .seconds(10)
        while server.service.application.openWatches > 1 && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let third = try WatchStream(port: server.port, "/v1/services?watch=true")
        #expect(third.head.status == 200)
        #expect(try third.next()?.summary == "ADDED a")
    }

    @Test func shutdownEndsOpenWatchesCleanly() throws {
        let server = try TestServer()
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("a")).status == 201)
        let watches = try (0..<3).map { _ in try WatchStream(port: server.port, "/v1/services?watch=true") }
        for watch in watches { #expect(try watch.next()?.summary == "ADDED a") }
        server.service.shutdown()
        // Each stream ends with its terminating chunk: the client knows it may watch again.
        for watch in watches { #expect(try watch.next() == nil) }
        let deadline = ContinuousClock.now + .seconds(10)
        while server.service.application.openWatches > 0 && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(server.service.application.openWatches == 0)
    }
}

/// `endpoint-registry get services -w` run in the background, its output read as it comes.
final class BackgroundCLI {
    let process = Process()
    private let output: URL

    init(_ arguments: [String], environment: [String: String]) throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "cli-watch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        output = directory.appending(path: "out")
        #expect(FileManager.default.createFile(atPath: output.path(), contents: nil))
        process.executableURL = Paths.binary
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": directory.path()].merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = process.standardOutput
        try process.run()
    }

    /// The output's lines, once there are at least `count` (or after 20 seconds).
    func lines(atLeast count: Int) throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map(String.init)
            if lines.count >= count || ContinuousClock.now > deadline || !process.isRunning { return lines }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Ends the client (SIGKILL) and waits for it to exit. Not SIGINT: a process started from the
    /// test process inherits the signal mask of the thread that spawns it, which may block SIGINT
    /// and SIGTERM (the server's threads block them), and the client would never see them.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

@Suite struct WatchCLITests {
    @Test func getWatchPrintsTheListThenEachChange() throws {
        let server = try TestServer()
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: service("a")).status == 201)
        let environment = ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)"]
        let table = try BackgroundCLI(["get", "services", "-w"], environment: environment)
        let events = try BackgroundCLI(["get", "services", "-w", "-o", "name", "--output-watch-events"], environment: environment)
        let only = try BackgroundCLI(["get", "services", "--watch-only", "-o", "name"], environment: environment)
        #expect(try table.lines(atLeast: 2).count == 2)
        #expect(try events.lines(atLeast: 1) == ["ADDED service/a"])
        Thread.sleep(forTimeInterval: 0.5)  // --watch-only prints nothing until a change; let it list first
        #expect(try client.request("POST", "/v1/services", json: service("b")).status == 201)
        #expect(try client.request("DELETE", "/v1/services/default/a").status == 204)
        let rows = try table.lines(atLeast: 4)
        #expect(rows.first?.hasPrefix("NAME ") == true)
        #expect(rows.dropFirst().map { $0.split(separator: " ").first.map(String.init) ?? "" } == ["a", "b", "a"])
        #expect(try events.lines(atLeast: 3) == ["ADDED service/a", "ADDED service/b", "DELETED service/a"])
        #expect(try only.lines(atLeast: 2) == ["service/b", "service/a"])
        for cli in [table, events, only] {
            #expect(cli.process.isRunning, "get -w keeps watching until interrupted")
            cli.stop()
        }
        withExtendedLifetime(server) {}
    }

    @Test func getWatchResumesWhenTheServerDropsItForFallingBehind() throws {
        // A one-byte buffer: two events of one commit at once overflow it.
        let server = try TestServer {
            $0.watch.bufferBytes = 1
            $0.openness.metrics = true
        }
        let client = try server.client()
        let environment = ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)"]
        let cli = try BackgroundCLI(["get", "services", "--watch-only", "-o", "name"], environment: environment)
        Thread.sleep(forTimeInterval: 0.5)  // let it list and start watching
        func dropped() throws -> Double {
            let metrics = try client.request("GET", "/metrics").text.split(separator: "\n")
            let line = metrics.first { $0.hasPrefix("endpoint_registry_watches_dropped_total ") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        }
        var expected: [String] = []
        for round in 0..<20 {
            // One import, one commit: five events dispatched together.
            let items = (0..<5).map {
                #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"r\#(round)-\#($0)"},"spec":{"ports":[{"port":80}]}}"#
            }
            let imported = try client.request(
                "POST", "/v1/import", json: #"{"apiVersion":"v1","kind":"List","items":[\#(items.joined(separator: ","))]}"#)
            #expect(imported.status < 300, "\(imported.text)")
            expected += (0..<5).map { "service/r\(round)-\($0)" }
            if try dropped() > 0 { break }
        }
        #expect(try dropped() > 0, "no watch was dropped")
        // Every change is printed once the watch is resumed (each drop said on standard error),
        // and the client goes on watching.
        var lines = try cli.lines(atLeast: expected.count).filter { !$0.hasPrefix("watch: ") }
        let deadline = ContinuousClock.now + .seconds(20)
        while Set(lines) != Set(expected) && ContinuousClock.now < deadline && cli.process.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
            lines = try cli.lines(atLeast: 0).filter { !$0.hasPrefix("watch: ") }
        }
        #expect(Set(lines) == Set(expected), "\(lines)")
        #expect(try cli.lines(atLeast: 0).contains { $0.hasPrefix("watch: the server dropped the watch") })
        #expect(cli.process.isRunning)
        cli.stop()
    }

    @Test func getWatchWaitsForARestartedServer() throws {
        var first: TestServer? = try TestServer()
        let port = try #require(first?.port)
        let databasePath = try #require(first?.databasePath)
        #expect(try first?.client().request("POST", "/v1/services", json: service("a")).status == 201)
        let environment = ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(port)"]
        let cli = try BackgroundCLI(["get", "services", "-w", "-o", "name", "--output-watch-events"], environment: environment)
        #expect(try cli.lines(atLeast: 1) == ["ADDED service/a"])
        Thread.sleep(forTimeInterval: 0.5)  // let it start watching
        // The server stops (its watch ends cleanly), then comes back on the same port and database.
        first = nil
        Thread.sleep(forTimeInterval: 1.5)
        let meanwhile = try cli.lines(atLeast: 0)
        #expect(cli.process.isRunning, "get -w gave up while the server restarted: \(meanwhile)")
        let second = try TestServer {
            $0.databasePath = databasePath
            $0.http.port = port
        }
        #expect(try second.client().request("POST", "/v1/services", json: service("b")).status == 201)
        let deadline = ContinuousClock.now + .seconds(20)
        var lines = try cli.lines(atLeast: 0)
        while !lines.contains("ADDED service/b") && cli.process.isRunning && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            lines = try cli.lines(atLeast: 0)
        }
        #expect(lines.filter { !$0.hasPrefix("watch: ") } == ["ADDED service/a", "ADDED service/b"], "\(lines)")
        #expect(lines.contains { $0.hasPrefix("watch: ") }, "each failed attempt is said on standard error")
        #expect(cli.process.isRunning)
        cli.stop()
    }

    @Test func getWatchListsAgainWhenItsVersionIsGone() throws {
        // A one-byte buffer: the watch of a client that does not read is dropped (ERROR 503).
        let server = try TestServer {
            $0.watch.bufferBytes = 1
            $0.openness.metrics = true
        }
        let client = try server.client()
        for name in ["a", "b"] { #expect(try client.request("POST", "/v1/services", json: service(name)).status == 201) }
        let environment = ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)"]
        let cli = try BackgroundCLI(["get", "services", "-w", "-o", "name", "--output-watch-events"], environment: environment)
        #expect(try cli.lines(atLeast: 2) == ["ADDED service/a", "ADDED service/b"])
        Thread.sleep(forTimeInterval: 0.5)  // let it start watching
        func dropped() throws -> Double {
            let metrics = try client.request("GET", "/metrics").text.split(separator: "\n")
            let line = metrics.first { $0.hasPrefix("endpoint_registry_watches_dropped_total ") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        }
        // Stopped, it reads nothing: changes of about 64 KiB each fill the socket, then its buffer.
        kill(cli.process.processIdentifier, SIGSTOP)
        let filler = String(repeating: "x", count: 64 << 10)
        for round in 0..<400 where try dropped() == 0 {
            let body = #"{"annotations":{"example.com/filler":"\#(round)\#(filler)"}}"#
            let answer = try client.request("PATCH", "/v1/services/default/a", body: Array(body.utf8), contentType: "application/merge-patch+json")
            #expect(answer.status == 200)
        }
        #expect(try dropped() == 1, "the stopped client's watch was not dropped")
        // Changes it never received, then the change log pruned past them: its resume gets 410.
        #expect(try client.request("DELETE", "/v1/services/default/b").status == 204)
        #expect(try client.request("POST", "/v1/services", json: service("c")).status == 201)
        #expect(try server.service.store.pruneWatchEvents(keep: 0, olderThan: "1970-01-01T00:00:00Z", batch: 100_000) > 0)
        kill(cli.process.processIdentifier, SIGCONT)
        // It lists again and prints what differs from what it had printed: c added, b deleted
        // (after the changes of a received before the drop, and perhaps a's last one).
        // The drop and the 410 are each said on standard error (`watch: …`).
        var lines = try cli.lines(atLeast: 4)
        let deadline = ContinuousClock.now + .seconds(20)
        while !(lines.contains("ADDED service/c") && lines.contains("DELETED service/b")) && ContinuousClock.now < deadline && cli.process.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
            lines = try cli.lines(atLeast: 0)
        }
        #expect(lines.contains { $0.hasPrefix("watch: the server no longer keeps the changes after version ") })
        let printed = lines.count
        let tail = lines.filter { $0 != "MODIFIED service/a" && !$0.hasPrefix("watch: ") }
        #expect(tail == ["ADDED service/a", "ADDED service/b", "ADDED service/c", "DELETED service/b"], "\(lines.suffix(5))")
        // Then it watches from the new list's version.
        #expect(try client.request("POST", "/v1/services", json: service("d")).status == 201)
        #expect(try cli.lines(atLeast: printed + 1).last == "ADDED service/d")
        #expect(cli.process.isRunning, "get -w keeps watching after listing again")
        cli.stop()
    }
}
