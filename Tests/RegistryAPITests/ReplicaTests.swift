import Dispatch
import Foundation
import RegistryAPI
import Synchronization
import TestSupport
import Testing

/// Several replicas on one PostgreSQL database (issue 16): any replica serves reads and writes,
/// optimistic concurrency, pagination tokens and watches hold across them, and a database
/// outage is answered with 503 without losing an acknowledged write.
@Suite struct ReplicaTests {
    /// `count` servers sharing one new database.
    private func replicas(_ count: Int = 3, url: String? = nil) throws -> [TestServer] {
        let url = try url ?? TestPostgres.shared().createDatabaseURL()
        return try (0..<count).map { _ in try TestServer { $0.postgresURL = url } }
    }

    private func service(_ name: String, addresses: Int = 2) -> String {
        let list = (1...max(addresses, 1)).map { #"{"ip":"10.0.0.\#($0)"}"# }.joined(separator: ",")
        return #"{"namespace":"default","name":"\#(name)","ports":[{"port":80}],"addresses":[\#(addresses == 0 ? "" : list)]}"#
    }

    @Test func writesThroughAnyReplicaAreReadThroughEveryOther() throws {
        let servers = try replicas()
        let clients = try servers.map { try $0.client() }
        let created = try clients[0].request("POST", "/v1/services", json: service("rgw"))
        #expect(created.status == 201)
        for client in clients {
            let read = try client.request("GET", "/v1/services/default/rgw")
            #expect(read.status == 200)
            #expect(read.header("ETag") == created.header("ETag"))
        }
        let patched = try clients[1].request(
            "PATCH", "/v1/services/default/rgw", headers: ["Content-Type": "application/merge-patch+json"],
            body: Array(#"{"description":"through the second replica"}"#.utf8), contentType: nil)
        #expect(patched.status == 200)
        // The first replica caches no document of a shared database: it sees the new revision at once.
        let again = try clients[0].request("GET", "/v1/services/default/rgw")
        #expect(again.header("ETag") == patched.header("ETag"))
        #expect(again.json?["revision"] as? Int == 2)
        #expect(try clients[2].request("DELETE", "/v1/services/default/rgw").status == 204)
        #expect(try clients[0].request("GET", "/v1/services/default/rgw").status == 404)
        #expect(try clients[1].request("POST", "/v1/services", json: service("rgw")).status == 201)
        #expect(try clients[2].request("POST", "/v1/services", json: service("rgw")).status == 409)
    }

    @Test func aStaleIfMatchIsRefusedOnAnotherReplica() throws {
        let servers = try replicas()
        let clients = try servers.map { try $0.client() }
        let created = try clients[0].request("POST", "/v1/services", json: service("etcd"))
        let stale = try #require(created.header("ETag"))
        let update = Array(#"{"description":"first"}"#.utf8)
        let first = try clients[1].request(
            "PATCH", "/v1/services/default/etcd", headers: ["Content-Type": "application/merge-patch+json", "If-Match": stale], body: update,
            contentType: nil)
        #expect(first.status == 200)
        let second = try clients[2].request(
            "PATCH", "/v1/services/default/etcd", headers: ["Content-Type": "application/merge-patch+json", "If-Match": stale],
            body: Array(#"{"description":"second"}"#.utf8), contentType: nil)
        #expect(second.status == 412)
        let address = try clients[0].request("POST", "/v1/services/default/etcd/addresses", headers: ["If-Match": stale], json: #"{"ip":"10.0.0.9"}"#)
        #expect(address.status == 412)
        #expect(try clients[2].request("GET", "/v1/services/default/etcd").json?["description"] as? String == "first")
    }

    @Test func concurrentAddsThroughThreeReplicasLoseNothing() throws {
        let servers = try replicas()
        #expect(try servers[0].client().request("POST", "/v1/services", json: service("big", addresses: 0)).status == 201)
        let failures = Mutex<[String]>([])
        let group = DispatchGroup()
        for (index, server) in servers.enumerated() {
            let port = server.port
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let client = try RawHTTPClient(port: port)
                    for address in 0..<25 {
                        let response = try client.request(
                            "POST", "/v1/services/default/big/addresses", json: #"{"ip":"10.1.\#(index).\#(address + 1)"}"#)
                        if response.status != 201 { failures.withLock { $0.append("\(index)/\(address): \(response.status)") } }
                    }
                } catch {
                    failures.withLock { $0.append("\(index): \(error)") }
                }
            }
        }
        group.wait()
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let final = try servers[2].client().request("GET", "/v1/services/default/big")
        #expect((final.json?["addresses"] as? [Any])?.count == 75)
        #expect(final.json?["revision"] as? Int == 76)
        let history = try servers[1].client().request("GET", "/v1/services/default/big/history?limit=1000")
        #expect((history.json?["items"] as? [[String: Any]])?.compactMap { $0["revision"] as? Int } == Array(1...76))
    }

    @Test func continueTokensAndWatchesWorkAcrossReplicas() throws {
        let servers = try replicas()
        let clients = try servers.map { try $0.client() }
        for name in ["a", "b", "c", "d", "e"] { #expect(try clients[0].request("POST", "/v1/services", json: service(name)).status == 201) }
        let first = try clients[0].request("GET", "/v1/services?limit=2")
        let token = try #require(first.json?["continue"] as? String)
        let rest = try clients[1].request("GET", "/v1/services?limit=10&continue=\(token)")
        #expect(rest.status == 200)
        #expect((rest.json?["items"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["c", "d", "e"])
        let version = try #require((first.json?["metadata"] as? [String: Any])?["resourceVersion"] as? String)
        // A watch on the third replica sees what the first and second write, in order.
        let watch = try WatchStream(port: servers[2].port, "/v1/services?watch=true&resourceVersion=\(version)")
        #expect(watch.head.status == 200)
        #expect(try clients[0].request("POST", "/v1/services", json: service("f")).status == 201)
        #expect(try clients[1].request("DELETE", "/v1/services/default/a").status == 204)
        let events = try watch.next(2).map(\.summary)
        #expect(events == ["ADDED f", "DELETED a"])
    }

    /// PostgreSQL stopped as by a crash (`pg_ctl stop -m immediate`) under write load: while it
    /// is down writes answer 503 with `Retry-After` and the replica is not ready; once it is
    /// back, every write that was acknowledged is there, whole.
    /// A replica started while PostgreSQL is down waits for it (`--database-wait-seconds`)
    /// rather than exiting; with no wait it fails at once, naming the database.
    @Test func aReplicaStartedWhileTheDatabaseIsDownWaitsForIt() throws {
        let database = try TestPostgres()
        defer { database.destroy() }
        let url = try database.createDatabaseURL()
        try database.stop()
        #expect {
            _ = try TestServer {
                $0.postgresURL = url
                $0.databaseWaitSeconds = 0
            }
        } throws: { error in
            "\(error)".contains("connect")
        }
        let restarted = Mutex<(any Error)?>(nil)
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) {
            do { try database.start() } catch { restarted.withLock { $0 = error } }
        }
        let server = try TestServer {
            $0.postgresURL = url
            $0.databaseWaitSeconds = 60
        }
        #expect(restarted.withLock { $0 } == nil)
        let client = try server.client()
        #expect(try client.request("GET", "/readyz").status == 200)
        #expect(try client.request("POST", "/v1/services", json: service("late")).status == 201)
    }

    @Test func aDatabaseCrashLosesNoAcknowledgedWriteAndIsAnswered503() throws {
        let database = try TestPostgres(synchronousCommit: true)
        defer { database.destroy() }
        let server = try replicas(1, url: try database.createDatabaseURL())[0]
        let acknowledged = Mutex<[String]>([])
        let statuses = Mutex<Set<Int>>([])
        let stop = Atomic<Bool>(false)
        let group = DispatchGroup()
        let port = server.port
        for writer in 0..<3 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let client = try? RawHTTPClient(port: port) else { return }
                var index = 0
                while !stop.load(ordering: .relaxed) && index < 5000 {
                    index += 1
                    let name = "w\(writer)-\(index)"
                    guard
                        let response = try? client.request(
                            "POST", "/v1/services", json: #"{"name":"\#(name)","ports":[{"port":80}],"addresses":[{"ip":"10.2.0.1"}]}"#)
                    else { continue }
                    statuses.withLock { _ = $0.insert(response.status) }
                    if response.status == 201 { acknowledged.withLock { $0.append(name) } }
                    if response.status == 503 { Thread.sleep(forTimeInterval: 0.05) }
                }
            }
        }
        Thread.sleep(forTimeInterval: 0.5)
        try database.stop()
        let client = try server.client()
        let refused = try client.request("POST", "/v1/services", json: service("during-outage"))
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") != nil)
        #expect(refused.json?["reason"] as? String == "unavailable")
        let deadline = ContinuousClock.now + .seconds(10)
        var ready = try client.request("GET", "/readyz")
        while ready.status == 200 && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            ready = try client.request("GET", "/readyz")
        }
        #expect(ready.status == 503)
        try database.start()
        let back = ContinuousClock.now + .seconds(20)
        while try client.request("GET", "/readyz").status != 200 && ContinuousClock.now < back { Thread.sleep(forTimeInterval: 0.2) }
        Thread.sleep(forTimeInterval: 0.5)
        stop.store(true, ordering: .relaxed)
        group.wait()
        #expect(statuses.withLock { $0 }.isSubset(of: [201, 503]), "\(statuses.withLock { $0 })")
        let names = acknowledged.withLock { $0 }
        #expect(names.count > 10)
        for name in names {
            let read = try client.request("GET", "/v1/services/default/\(name)")
            #expect(read.status == 200, "acknowledged \(name) is missing")
            #expect((read.json?["addresses"] as? [Any])?.count == 1)
        }
        #expect(try client.request("POST", "/v1/services", json: service("after-outage")).status == 201)
    }

    /// Three server processes on one database with a 2 s lease: exactly one leads; killed with
    /// SIGKILL, it is replaced within the lease time (plus retry and slack), and the new leader
    /// applies what is registered through any replica after the kill. Each service reaches the
    /// cluster through one leader only: the fake API server sees one create per service.
    @Test func aKilledLeaderIsReplacedWithinTheLeaseAndTheWorkGoesOn() throws {
        let cluster = try FakeCluster()
        let url = try TestPostgres.shared().createDatabaseURL()
        let arguments = ["--leader-lease-seconds", "2", "--kubeconfig", cluster.kubeconfig, "--log-level", "notice"]
        var processes = try (0..<3).map { index in
            try ServerProcess(arguments + ["--leader-identity", "replica-\(index)"], database: url)
        }
        var dead = -1
        func leaders() -> [Int] {
            processes.indices.filter { index in
                guard index != dead, let client = try? RawHTTPClient(port: processes[index].port),
                    let body = try? client.request("GET", "/v1/leader").json
                else { return false }
                return body["self"] as? Bool == true
            }
        }
        #expect(eventually(10) { leaders().count == 1 })
        let first = try #require(leaders().first)
        #expect(leaders() == [first])
        let followers = processes.indices.filter { $0 != first }
        // Registered through a follower, applied by the leader.
        let before = #"{"namespace":"default","name":"before","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.10"}],"clusters":["token"]}"#
        #expect(try RawHTTPClient(port: processes[followers[0]].port).request("POST", "/v1/services", json: before).status == 201)
        #expect(try eventually(10) { try cluster.object("Service", "before") != nil })

        dead = first
        let killed = ContinuousClock.now
        processes[first].signal(SIGKILL)
        #expect(eventually(15) { leaders().count == 1 })
        let takeover = ContinuousClock.now - killed
        // The lease (2 s) and one retry of the candidates (2/15 of it, with jitter), with slack.
        #expect(takeover < .seconds(6), "took \(takeover)")
        let second = try #require(leaders().first)
        #expect(followers.contains(second))
        let after = #"{"namespace":"default","name":"after","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.11"}],"clusters":["token"]}"#
        let through = followers.first { $0 != second } ?? second
        #expect(try RawHTTPClient(port: processes[through].port).request("POST", "/v1/services", json: after).status == 201)
        #expect(try eventually(10) { try cluster.object("Service", "after") != nil })
        let log = try cluster.call("GET", "/_fake/requests")
        let requests = (try JSONSerialization.jsonObject(with: Data(log.body.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
        // "after" was registered once, after the handover: exactly one write of its Service
        // reached the cluster (followers apply nothing; the dead leader is gone).
        let writes = requests.filter {
            ["PATCH", "PUT", "POST"].contains($0["method"] as? String ?? "")
                && (($0["path"] as? String) ?? "").hasSuffix("/services/after")
        }
        #expect(writes.count == 1, "\(requests.filter { (($0["path"] as? String) ?? "").contains("after") })")
        processes.removeAll()
    }
}
