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
}
