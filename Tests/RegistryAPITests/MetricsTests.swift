import Foundation
import RegistryAPI
import TestSupport
import Testing

/// `/metrics` is a valid Prometheus exposition with help for every family, the standard process
/// metrics and the build's version and commit; `promtool check metrics` (Debian's `prometheus`
/// package, installed by the test command) accepts it.
@Suite struct MetricsTests {
    private func exposition() throws -> String {
        let server = try TestServer { $0.openness.metrics = true }
        let client = try server.client()
        _ = try client.request("GET", "/v1/services")
        _ = try client.request("GET", "/v1/services/default/none")
        _ = try client.request("POST", "/v1/services", json: #"{"name":"m","ports":[{"port":80}]}"#)
        let metrics = try client.request("GET", "/metrics")
        #expect(metrics.status == 200)
        return metrics.text
    }

    @Test func everyFamilyHasHelpAndAType() throws {
        let text = try exposition()
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        let helps = Set(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
        #expect(!types.isEmpty)
        for family in types { #expect(helps.contains(family), "no # HELP for \(family)") }
        for family in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
            #expect(types.contains(Substring(family)), "missing \(family)")
        }
        #expect(text.contains("endpoint_registry_build_info{version=\""))
        #expect(text.contains(#"http_requests_total{route="/v1/services",method="GET",status="200"}"#))
    }

    /// A route's usual answer is counted through the route (`Route.usualRequestMetrics`), the
    /// others through the registry's table: every (route, method, status) keeps its own count,
    /// and HEAD, served by the GET route, is counted apart from GET.
    @Test func eachStatusAndMethodOfARouteIsCountedApart() throws {
        let server = try TestServer { $0.openness.metrics = true }
        let client = try server.client()
        #expect(try client.request("POST", "/v1/services", json: #"{"name":"m","ports":[{"port":80}]}"#).status == 201)
        for _ in 0..<3 { #expect(try client.request("GET", "/v1/services/default/m").status == 200) }
        for _ in 0..<2 { #expect(try client.request("GET", "/v1/services/default/none").status == 404) }
        #expect(try client.request("HEAD", "/v1/services/default/m").status == 200)
        #expect(try client.request("GET", "/v1/services/default/m").status == 200)
        let text = try client.request("GET", "/metrics").text
        func count(_ method: String, _ status: Int) -> String? {
            let prefix = #"http_requests_total{route="/v1/services/{namespace}/{name}",method="\#(method)",status="\#(status)"} "#
            return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
        #expect(count("GET", 200) == "4")
        #expect(count("GET", 404) == "2")
        #expect(count("HEAD", 200) == "1")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool"), "promtool (Debian package prometheus) is not installed"))
    func promtoolAcceptsTheExposition() throws {
        let text = try exposition()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "promtool: \(report)")
    }
}
