import Foundation
import RegistryResources

/// What the Prometheus text exposition needs besides swift-prometheus' output: a `# HELP` line
/// for every family (the swift-metrics factory registers metrics without help text), the
/// standard `process_*` metrics of the Prometheus client libraries, and
/// `endpoint_registry_build_info`. `promtool check metrics` passes on the result (the test
/// command runs it).
enum MetricsExposition {
    /// Help text of every metric family the registry exposes. A family missing here is a test
    /// failure (`MetricsTests`), so each new metric is documented where it is exposed.
    static let help: [String: String] = [
        "http_requests_total": "HTTP requests answered, by route template, method and status.",
        "http_request_duration_seconds": "Time to answer an HTTP request, by route template and method.",
        "endpoint_registry_services": "Registered services.",
        "endpoint_registry_addresses": "Registered addresses, over all services.",
        "endpoint_registry_database_bytes": "Size of the database in bytes (SQLite: the file and its WAL; PostgreSQL: pg_database_size).",
        "endpoint_registry_watches": "Watches (GET /v1/services?watch=true) open now.",
        "endpoint_registry_watch_buffered_bytes": "Bytes of watch events waiting in the watchers' buffers to be sent.",
        "endpoint_registry_watches_dropped_total":
            "Watches dropped since start because the client read too slowly (their buffer filled); each got a final ERROR event.",
        "endpoint_registry_push_objects_total":
            "Kubernetes objects pushed, by cluster and action (created, configured, unchanged, deleted, failed, conflict).",
        "endpoint_registry_tokens_reload_success":
            "1 when the last load of the tokens file succeeded, 0 when it failed (the previous tokens stay in force).",
        "endpoint_registry_tokens_last_reload_success_timestamp_seconds": "Unix time of the last successful load of the tokens file.",
        "endpoint_registry_reconciles_total":
            "Reconciles of a service in a cluster, by cluster and result (synced, applied, deleted, failed, conflict).",
        "endpoint_registry_reconcile_retries_total": "Reconciles retried after a failure, by cluster.",
        "endpoint_registry_reconcile_queue_depth": "Keys (service and cluster) waiting in the reconciler's work queue.",
        "endpoint_registry_services_not_synced": "Bound services whose objects in the cluster are not (yet) equal to the rendering, by cluster.",
        "endpoint_registry_dns_resolutions_total": "Resolutions of the DNS names of host addresses, by result (success, notfound, failure).",
        "endpoint_registry_dns_hosts": "DNS names of host addresses being resolved (per service and name).",
        "endpoint_registry_leader":
            "1 while this process holds the leader lease and runs the background work (reconciler, health checks, DNS refresh, retention), else 0.",
        "endpoint_registry_leader_transitions_total": "Times this process started or stopped leading since start.",
        "endpoint_registry_last_successful_sync_timestamp_seconds":
            "Unix time of the last successful reconcile or resync of the cluster, for alerts such as 'no update for 10 minutes'.",
    ]

    /// Inserts `# HELP` before each `# TYPE` line whose family has help text.
    static func annotated(_ exposition: [UInt8], help: [String: String]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(exposition.count + help.count * 80)
        for line in exposition.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: Array("# TYPE ".utf8)) {
                let name = String(decoding: line.dropFirst(7).prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
                if let text = help[name] { out += Array("# HELP \(name) \(text)\n".utf8) }
            } else if line.starts(with: Array("# HELP ".utf8)) {
                let name = String(decoding: line.dropFirst(7).prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
                if help[name] != nil { continue }  // ours replaces an empty or library one
            }
            out += line
            out.append(UInt8(ascii: "\n"))
        }
        while out.count >= 2, out[out.count - 1] == UInt8(ascii: "\n"), out[out.count - 2] == UInt8(ascii: "\n") { out.removeLast() }
        return out
    }

    /// The process metrics of the Prometheus client libraries' standard collector, read from
    /// `/proc/self` (Linux), and the build's version and commit.
    static func processMetrics() -> [UInt8] {
        var text = ""
        func gauge(_ name: String, _ help: String, _ type: String, _ value: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after the command name: state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
            if let user = field(14), let system = field(15), ticks > 0 {
                gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", format((user + system) / ticks))
            }
            if let virtual = field(23) { gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", format(virtual)) }
            if let pages = field(24) {
                gauge(
                    "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", format(pages * Double(sysconf(Int32(_SC_PAGESIZE)))))
            }
            if let start = field(22), ticks > 0, let boot = bootTime() {
                gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", format(boot + start / ticks))
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            gauge("process_open_fds", "Number of open file descriptors.", "gauge", String(descriptors.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            gauge("process_max_fds", "Maximum number of open file descriptors.", "gauge", format(Double(limit.rlim_cur)))
        }
        text += "# HELP endpoint_registry_build_info The version and git commit of this build (always 1).\n"
        text += "# TYPE endpoint_registry_build_info gauge\n"
        text += "endpoint_registry_build_info{version=\"\(RegistryResources.version)\",commit=\"\(RegistryResources.commit)\"} 1\n"
        return Array(text.utf8)
    }

    /// Seconds since the epoch at which the machine booted (`btime` of `/proc/stat`).
    private static func bootTime() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6))
        }
        return nil
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
