import Foundation
import HTTPServer
import Synchronization
import Testing

/// A server that answers the client's requests as a script says, and records them: for the
/// client's behaviour against answers the real server does not give (or not on demand).
final class ScriptedServer: Sendable {
    /// The requests received, in order: `METHOD PATH?QUERY`.
    var requests: [String] { log.requests.withLock { $0 } }
    var port: UInt16 { server.port }
    private let server: HTTPServer
    private let log: Handler

    init(_ answer: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.threads = 2
        log = Handler(answer: answer)
        server = try HTTPServer(configuration: configuration, handler: log)
    }

    deinit { server.shutdown(deadline: .seconds(2)) }

    private final class Handler: HTTPHandler {
        let answer: @Sendable (HTTPRequest) -> HTTPResponse
        let requests = Mutex<[String]>([])

        init(answer: @escaping @Sendable (HTTPRequest) -> HTTPResponse) { self.answer = answer }

        func handle(_ request: HTTPRequest) -> HTTPResponse {
            let query = request.query.map { "\($0.name)=\($0.value ?? "")" }.joined(separator: "&")
            requests.withLock { $0.append("\(request.method) \(request.path)" + (query.isEmpty ? "" : "?\(query)")) }
            return answer(request)
        }

        func bodyTooLarge(_ request: HTTPRequest, limit: Int) -> HTTPResponse { HTTPResponse(status: 413) }
    }

    /// A JSON answer.
    static func json(_ status: Int, _ text: String, headers: [(String, String)] = []) -> HTTPResponse {
        var fields = HTTPHeaders([("Content-Type", status < 400 ? "application/json" : "application/problem+json")])
        for (name, value) in headers { fields.add(name, value) }
        return HTTPResponse(status: status, headers: fields, body: Array(text.utf8))
    }

    /// An empty list of services at resource version 5.
    static let emptyList = json(200, #"{"items":[],"metadata":{"resourceVersion":"5"}}"#)

    static func isWatch(_ request: HTTPRequest) -> Bool { request.queryValue("watch") == "true" }
}

/// A count shared with a server's handler.
final class Counter: Sendable {
    private let value = Mutex(0)

    /// Adds one; the new count.
    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}

extension BackgroundCLI {
    /// Waits until the client exits (at most `seconds`); its exit status, or nil if it still runs.
    func exitStatus(within seconds: Int = 20) -> Int32? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while process.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }
}

@Suite struct CLIFakeServerTests {
    /// A watch that ends abnormally at once is tried again after 1, 2, 4… seconds, each time with
    /// a line on standard error, as client-go's reflector backs off; never in a tight loop.
    @Test(arguments: [
        ("410", "the server no longer keeps the changes after version 5 (410 Gone), so the list is read again"),
        ("empty", "the server ended the watch at once, with no event"),
        ("drop", "the server dropped the watch (too slow)"),
    ])
    func getWatchBacksOffAfterAWatchThatEndsAtOnce(_ mode: String, _ said: String) throws {
        let server = try ScriptedServer { request in
            guard ScriptedServer.isWatch(request) else { return ScriptedServer.emptyList }
            switch mode {
            case "410": return ScriptedServer.json(410, #"{"type":"about:blank","title":"Gone","status":410,"detail":"too old"}"#)
            case "empty": return ScriptedServer.json(200, "")
            default:
                return ScriptedServer.json(
                    200, #"{"type":"ERROR","object":{"kind":"Status","code":503,"reason":"ServiceUnavailable","message":"too slow"}}"# + "\n")
            }
        }
        let cli = try BackgroundCLI(
            ["get", "services", "-w", "-o", "name"], environment: ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)"])
        let lines = try cli.lines(atLeast: 2)
        cli.stop()
        #expect(lines == ["watch: \(said); trying again in 1 s", "watch: \(said); trying again in 2 s"])
        // Printed before each wait: by the second line, two watches (for 410, each after a list),
        // and the next attempt is two seconds away.
        let watches = server.requests.filter { $0.contains("watch=true") }.count
        let lists = server.requests.count - watches
        #expect(watches == 2, "\(server.requests)")
        #expect(lists == (mode == "410" ? 2 : 1), "\(server.requests)")
    }

    /// A watch event that is not the API's (not JSON, an unknown type, an object that is not a
    /// service, a stream ending inside a line) is the server not answering as the API does:
    /// exit status 3 with the line quoted, not skipped silently or printed as a blank row.
    @Test(arguments: [
        ("this is not json\n", #"a line that is not JSON (line 1, column 1: invalid literal (expected 'true')) (the line: "this is not json")"#),
        (#"{"type":"ADDED","object":{"name":123}}"# + "\n", "an event (ADDED) whose object is not a service"),
        (#"{"type":"SOMETHING","object":{}}"# + "\n", #"an event of unknown type "SOMETHING""#),
        (#"{"items":[],"metadata":{"resourceVersion":"5"}}"# + "\n", "an event without a string type"),
        (#"{"type":"ADDED","object":{"name":"a","namespace":"default"}"#, "the watch ended inside an event"),
    ])
    func getWatchFailsOnAnEventThatIsNotTheAPIs(_ body: String, _ said: String) throws {
        let server = try ScriptedServer { request in
            ScriptedServer.isWatch(request) ? ScriptedServer.json(200, body) : ScriptedServer.emptyList
        }
        let cli = try BackgroundCLI(["get", "services", "-w"], environment: ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)"])
        let status = cli.exitStatus()
        cli.stop()
        #expect(status == 3)
        let output = try cli.lines(atLeast: 0)
        #expect(output.count == 1 && output[0].hasPrefix("error: GET http://127.0.0.1:\(server.port)/v1/services?watch=true: "), "\(output)")
        #expect(output.first?.contains(said) == true, "\(output)")
        #expect(output.first?.hasSuffix("the server does not answer as the API does") == true, "\(output)")
        #expect(server.requests.count == 2, "\(server.requests)")
    }

    /// A 429 or 5xx with `Retry-After` is sent again (the body too) after that many seconds, up
    /// to 10 times, each retry said on standard error, as client-go's REST client does; without
    /// `Retry-After` it fails at once. Errors name the HTTP status.
    @Test func busyAnswersWithRetryAfterAreTriedAgain() throws {
        let busy = #"{"type":"about:blank","title":"Service unavailable","status":503,"detail":"starting"}"#
        let slowDown = #"{"type":"about:blank","title":"Too many requests","status":429,"detail":"slow down"}"#
        let puts = Counter()
        let server = try ScriptedServer { request in
            switch (request.method, request.path) {
            case ("GET", "/v1/services/default/nowait"): return ScriptedServer.json(503, busy)
            case ("GET", "/v1/services/default/limited"): return ScriptedServer.json(429, slowDown, headers: [("Retry-After", "0")])
            case ("GET", _): return ScriptedServer.json(404, #"{"type":"about:blank","title":"Not found","status":404,"detail":"absent"}"#)
            default:
                // The first two writes are refused: busy, come back in 1 s.
                guard puts.next() > 2, String(decoding: request.body, as: UTF8.self).contains(#""name":"x""#) else {
                    return ScriptedServer.json(503, busy, headers: [("Retry-After", "1")])
                }
                return ScriptedServer.json(201, #"{"name":"x"}"#)
            }
        }
        let environment = ["ENDPOINT_REGISTRY_URL": "http://127.0.0.1:\(server.port)"]
        let limited = try runCLI(["get", "service", "limited"], environment: environment)
        #expect(limited.status == 2)
        let lines = limited.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 11, "\(limited.stderr)")
        #expect(
            lines.first
                == "retrying: GET http://127.0.0.1:\(server.port)/v1/services/default/limited: slow down (HTTP 429 Too many requests); trying again in 0 s (retry 1 of 10)"
        )
        #expect(lines.last == "error: slow down (HTTP 429 Too many requests)")
        #expect(server.requests.filter { $0.hasSuffix("/limited") }.count == 11)
        let noWait = try runCLI(["get", "service", "nowait"], environment: environment)
        #expect(noWait.status == 2 && noWait.stderr == "error: starting (HTTP 503 Service unavailable)\n")
        #expect(server.requests.filter { $0.hasSuffix("/nowait") }.count == 1)
        // A write is sent again with its body.
        let applied = try runCLI(["apply", "-f", "-"], environment: environment, input: "name: x\nports: [{port: 1}]\n")
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout == "service/x created\n")
        #expect(
            applied.stderr.split(separator: "\n").map { $0.hasSuffix("; trying again in 1 s (retry 1 of 10)") || $0.hasSuffix("(retry 2 of 10)") }
                == [true, true])
        #expect(server.requests.filter { $0.hasPrefix("PUT ") }.count == 3)
    }
}
