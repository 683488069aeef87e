import Foundation
import HTTPServer
import RegistryAPI
import TestSupport
import Testing

/// Refused requests cost no durable write each: a flood of them leaves a handful of aggregated
/// audit lines and a database that does not grow with the flood.
@Suite(.serialized) struct AuditBoundsTests {
    @Test func aFloodOfRefusedRequestsLeavesABoundedAuditLog() throws {
        let tokens = try writeTokensFile([("root", "admin", #"["*"]"#, "admin-token-01234567890")])
        let server = try TestServer { $0.tokensFile = tokens }
        let admin = ["Authorization": "Bearer admin-token-01234567890"]
        let sizeBefore = try databaseBytes(server.databasePath)
        let flood = 10_000
        var refused = 0
        for index in 0..<flood {
            // A refusal closes the connection (no unauthenticated body is read): one per request.
            // Half of them name a distinct 6,000-character target each, which must not become
            // a distinct line each.
            let response =
                index % 2 == 0
                ? try server.client().request("GET", "/v1/services/ns-\(index)/" + String(repeating: "n", count: 6_000) + "\(index)")
                : try server.client().request(
                    "POST", "/v1/services", headers: ["Authorization": "Bearer wrong-token-0123456789"],
                    json: #"{"name":"x","ports":[{"port":80}]}"#)
            if response.status == 401 { refused += 1 }
        }
        #expect(refused == flood)
        let log = try server.client().request("GET", "/v1/audit?limit=1000", headers: admin)
        #expect(log.status == 200)
        let items = try #require(log.json?["items"] as? [[String: Any]])
        let denied = items.filter { ($0["outcome"] as? String) == "denied" }
        // One line per actor, source address, action, status and minute: two actions, and the
        // flood may straddle a minute (or two).
        #expect((2...6).contains(denied.count), "\(denied.count) lines")
        #expect(denied.reduce(0) { $0 + (($1["count"] as? Int) ?? 1) } == flood)
        #expect(denied.allSatisfy { $0["namespace"] == nil && $0["name"] == nil && ($0["sourceAddress"] as? String) == "127.0.0.1" })
        let growth = try databaseBytes(server.databasePath) - sizeBefore
        #expect(growth < 256 * 1024, "the database grew by \(growth) bytes for \(flood) refused requests")
    }

    /// A caller with a known token keeps the target of its refusals (a valid name), but one
    /// client (token and address) gets at most `maxLinesPerClientPerMinute` distinct lines a
    /// minute: the rest share one line that still names it.
    @Test func oneClientsDistinctRefusalsShareItsOverflowLine() throws {
        let tokens = try writeTokensFile([
            ("root", "admin", #"["*"]"#, "admin-token-01234567890"), ("watcher", "viewer", #"["*"]"#, "viewer-token-0123456789"),
        ])
        let server = try TestServer { $0.tokensFile = tokens }
        let viewer = ["Authorization": "Bearer viewer-token-0123456789"]
        let attempts = 300
        for index in 0..<attempts {
            let response = try server.client().request("DELETE", "/v1/services/team-\(index % 7)/svc-\(index)", headers: viewer)
            #expect(response.status == 403)
        }
        let items = try auditLines(server, filter: "actor=watcher")
        #expect(items.reduce(0) { $0 + (($1["count"] as? Int) ?? 1) } == attempts)
        let minutes = Set(items.compactMap { $0["time"] as? String }).count
        let targeted = items.filter { ($0["action"] as? String) == "deleteService" }
        let folded = items.filter { ($0["action"] as? String) == "*" }
        #expect(targeted.count <= 20 * minutes && targeted.count >= 20, "\(targeted.count) lines in \(minutes) minutes")
        #expect((1...minutes).contains(folded.count))
        #expect(folded.allSatisfy { $0["namespace"] == nil && $0["name"] == nil && ($0["sourceAddress"] as? String) == "127.0.0.1" })
        #expect(
            targeted.allSatisfy { ($0["namespace"] as? String)?.hasPrefix("team-") == true && ($0["name"] as? String)?.hasPrefix("svc-") == true })
        #expect(try auditLines(server, filter: "actor=*").isEmpty)
    }

    /// No more than `maxLinesPerMinute` distinct lines are counted a minute, whatever the number
    /// of clients: the rest share one line.
    @Test func distinctRefusalsBeyondTheMinutesBoundShareAnOverflowLine() throws {
        let tokens = try writeTokensFile([
            ("root", "admin", #"["*"]"#, "admin-token-01234567890"), ("watcher", "viewer", #"["*"]"#, "viewer-token-0123456789"),
        ])
        let server = try TestServer { $0.tokensFile = tokens }
        let viewer = ["Authorization": "Bearer viewer-token-0123456789"]
        // 60 addresses with 21 lines each (20 with targets, one folded): more than 1,000.
        let (addresses, perAddress) = (60, 25)
        for address in 0..<addresses {
            for index in 0..<perAddress {
                let client = try RawHTTPClient(port: server.port, source: "127.0.1.\(address + 1)")
                let response = try client.request("DELETE", "/v1/services/team-\(address)/svc-\(index)", headers: viewer)
                #expect(response.status == 403)
            }
        }
        let items = try auditLines(server, filter: "actor=watcher")
        let overflow = try auditLines(server, filter: "actor=*")
        let counted = (items + overflow).reduce(0) { $0 + (($1["count"] as? Int) ?? 1) }
        #expect(counted == addresses * perAddress)
        // Within one minute at most 1,000 lines; the run may straddle a minute.
        let minutes = Set(items.compactMap { $0["time"] as? String }).count
        #expect(items.count <= 1_000 * minutes && items.count >= 1_000, "\(items.count) lines in \(minutes) minutes")
        #expect(!overflow.isEmpty || minutes > 1)
    }

    /// Every audit line matching `filter`, all pages.
    private func auditLines(_ server: TestServer, filter: String) throws -> [[String: Any]] {
        var items: [[String: Any]] = []
        var target = "/v1/audit?limit=1000&\(filter)"
        while true {
            let page = try server.client().request("GET", target, headers: ["Authorization": "Bearer admin-token-01234567890"])
            items += (page.json?["items"] as? [[String: Any]]) ?? []
            guard let next = page.json?["continue"] as? String else { break }
            target = "/v1/audit?limit=1000&\(filter)&continue=\(next)"
        }
        return items
    }

    @Test func historyIsPaged() throws {
        let server = try TestServer()
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"h","ports":[{"port":80}]}"#).status == 201)
        for index in 0..<4 {
            let patch = try client.request(
                "PATCH", "/v1/services/default/h", headers: ["Content-Type": "application/merge-patch+json"],
                body: Array(#"{"description":"d\#(index)"}"#.utf8),
                contentType: nil)
            #expect(patch.status == 200)
        }
        var revisions: [Int] = []
        var target = "/v1/services/default/h/history?limit=2"
        var pages = 0
        while pages < 10 {
            pages += 1
            let page = try client.request("GET", target)
            #expect(page.status == 200)
            let items = try #require(page.json?["items"] as? [[String: Any]])
            revisions += items.compactMap { $0["revision"] as? Int }
            #expect(items.dropFirst(pages == 1 ? 1 : 0).allSatisfy { ($0["change"] as? String) == "updated" })
            guard let next = page.json?["continue"] as? String else { break }
            target = "/v1/services/default/h/history?limit=2&continue=\(next)"
        }
        #expect(revisions == [1, 2, 3, 4, 5])
        #expect(pages == 3)
        // Its tokens page only this history; row ids are no tokens.
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"h2","ports":[{"port":80}]}"#).status == 201)
        let token = try #require(try client.request("GET", "/v1/services/default/h/history?limit=1").json?["continue"] as? String)
        for other in [
            "/v1/services/default/h2/history?continue=\(token)", "/v1/audit?continue=\(token)", "/v1/services?continue=\(token)",
            "/v1/services/default/h/history?continue=1", "/v1/audit?continue=0", "/v1/audit?continue=1",
        ] {
            #expect(try client.request("GET", other).status == 400, "\(other)")
        }
        #expect(try client.request("GET", "/v1/services/default/nope/history?continue=\(token)").status == 400)
        #expect(try client.request("GET", "/v1/services/default/nope/history").status == 404)
        #expect(try client.request("GET", "/v1/services/default/h/history?limit=5000").status == 400)
        // Written as an integer is written: no sign, no leading zero.
        for limit in ["+1", "01", "1.0"] {
            #expect(try client.request("GET", "/v1/services/default/h/history?limit=\(limit)").status == 400, "\(limit)")
            #expect(try client.request("GET", "/v1/services?limit=\(limit)").status == 400, "\(limit)")
        }
    }

    @Test func retentionRunsInTheBackgroundFromStartUp() throws {
        let database: String
        do {
            let server = try TestServer()
            database = server.databasePath
            let client = try server.client()
            #expect(try client.request("POST", "/v1/services", json: #"{"name":"r","ports":[{"port":80}]}"#).status == 201)
            for index in 0..<5 {
                let body = Array(#"{"description":"d\#(index)"}"#.utf8)
                #expect(
                    try client.request(
                        "PATCH", "/v1/services/default/r", headers: ["Content-Type": "application/merge-patch+json"], body: body, contentType: nil
                    )
                    .status == 200)
            }
        }
        let server = try TestServer {
            $0.databasePath = database
            $0.historyLimit = 2
        }
        let client = try server.client()
        var revisions: [Int] = []
        let deadline = Date().addingTimeInterval(10)
        repeat {
            let items = (try client.request("GET", "/v1/services/default/r/history").json?["items"] as? [[String: Any]]) ?? []
            revisions = items.compactMap { $0["revision"] as? Int }
            if revisions.count == 2 { break }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < deadline
        #expect(revisions == [5, 6])
        // The oldest kept revision was an update, whose revision before it is gone: it says
        // so, without claiming a creation, and without changes it cannot know.
        let items = (try client.request("GET", "/v1/services/default/r/history").json?["items"] as? [[String: Any]]) ?? []
        #expect(items.map { $0["change"] as? String } == ["updated", "updated"])
        #expect(items.first?["changes"] == nil && items.last?["changes"] != nil)
    }

    private func databaseBytes(_ path: String) throws -> Int {
        var total = 0
        for suffix in ["", "-wal"] {
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path + suffix), let size = attributes[.size] as? NSNumber {
                total += size.intValue
            }
        }
        return total
    }
}
