import Coordination
import CoreMetrics
import Foundation
import Liveness
import Prometheus
import Reconciler
import RegistryStorage
import Synchronization

/// The service's metrics, through swift-metrics onto a Prometheus registry of its own (no global
/// bootstrap, so several servers can live in one process): requests by route, method and
/// status; latency histograms by route and method; and, read at scrape time, the number of
/// services and addresses and the size of the database.
final class RegistryMetrics: ReconcilerObserver, LivenessObserver, DNSObserver, LeaderElectionObserver, Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let reconcilerReference = Mutex<Reconciler?>(nil)
    /// Read at scrape time for the queue depth and per-cluster gauges.
    var reconciler: Reconciler? {
        get { reconcilerReference.withLock { $0 } }
        set { reconcilerReference.withLock { $0 = newValue } }
    }
    private let livenessReference = Mutex<HealthChecker?>(nil)
    var liveness: HealthChecker? {
        get { livenessReference.withLock { $0 } }
        set { livenessReference.withLock { $0 = newValue } }
    }
    private let dnsReference = Mutex<DNSRefresher?>(nil)
    /// Read at scrape time for the number of names resolved.
    var dns: DNSRefresher? {
        get { dnsReference.withLock { $0 } }
        set { dnsReference.withLock { $0 = newValue } }
    }
    private let electorReference = Mutex<LeaderElector?>(nil)
    /// Read at scrape time for `endpoint_registry_leader`.
    var elector: LeaderElector? {
        get { electorReference.withLock { $0 } }
        set { electorReference.withLock { $0 = newValue } }
    }
    private let watchesReference = Mutex<WatchHub?>(nil)
    var watches: WatchHub? {
        get { watchesReference.withLock { $0 } }
        set { watchesReference.withLock { $0 = newValue } }
    }
    private let factory: PrometheusMetricsFactory
    private let probeTimer = Mutex<CoreMetrics.Timer?>(nil)
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    /// Per (route, method, status): the request counter and the route's latency timer, found with
    /// one lock and one lookup (a route's usual answer skips even that: see `recordRequest`).
    private let requestMetrics = Mutex<[RequestKey: RequestMetrics]>([:])

    private struct RequestKey: Hashable {
        var operation: String
        var method: String
        var status: Int

        /// The status and the two texts' lengths only (equality still compares the texts): the
        /// keys are few, and hashing the route template's text on every request cost more than
        /// the rare shared bucket.
        func hash(into hasher: inout Hasher) {
            hasher.combine(status)
            hasher.combine(operation.utf8.count)
            hasher.combine(method.utf8.count)
        }
    }

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5),
        ]
        self.factory = factory
    }

    /// The counter of `label` with `dimensions`, made once and then reused (the registry lookup
    /// is too slow for every request).
    private func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        let key = label + dimensions.map { "|\($0.1)" }.joined()
        return counters.withLock { cache in
            if let existing = cache[key] { return existing }
            let created = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
            cache[key] = created
            return created
        }
    }

    /// Counts a request in `http_requests_total{route,method,status}` and its `duration` in
    /// `http_request_duration_seconds{route,method}`; `operation` is the route's template
    /// (`unmatched` without one). With the matched `route`, its usual answer finds its metrics
    /// in the route without a lock.
    func recordRequest(route: Route? = nil, operation: String, method: String, status: Int, nanoseconds: Int64) {
        let metrics: RequestMetrics
        if let usual = route?.usualRequestMetrics, usual.status == status, usual.method == method {
            metrics = usual
        } else {
            metrics = requestMetrics(operation: operation, method: method, status: status)
            if let route, (200..<300).contains(status) { route.setUsualRequestMetricsIfNil(metrics) }
        }
        metrics.counter.increment()
        metrics.timer.recordNanoseconds(nanoseconds)
    }

    /// The request metrics of (route `operation`, `method`, `status`), made once: a new status
    /// shares the route and method's timer.
    private func requestMetrics(operation: String, method: String, status: Int) -> RequestMetrics {
        let key = RequestKey(operation: operation, method: method, status: status)
        return requestMetrics.withLock { cache in
            if let existing = cache[key] { return existing }
            let timer =
                cache.first { $0.key.operation == operation && $0.key.method == method }?.value.timer
                ?? CoreMetrics.Timer(
                    label: "http_request_duration_seconds", dimensions: [("route", operation), ("method", method)], factory: factory)
            let created = RequestMetrics(
                method: method, status: status,
                counter: CoreMetrics.Counter(
                    label: "http_requests_total", dimensions: [("route", operation), ("method", method), ("status", String(status))],
                    factory: factory),
                timer: timer)
            cache[key] = created
            return created
        }
    }

    /// Counts pushed objects by cluster and action (created, configured, unchanged, deleted, failed, conflict).
    func recordPush(cluster: String, action: String) {
        counter("endpoint_registry_push_objects_total", [("cluster", cluster), ("action", action)]).increment()
    }

    /// Records a load of the tokens file: `endpoint_registry_tokens_reload_success` is 1 after a
    /// good load and 0 after a failed one (the previous tokens stay in force), and
    /// `endpoint_registry_tokens_last_reload_success_timestamp_seconds` the Unix time of the last
    /// good one, for an alert such as `endpoint_registry_tokens_reload_success == 0`.
    func recordTokensReload(success: Bool, at time: Date = Date()) {
        CoreMetrics.Gauge(label: "endpoint_registry_tokens_reload_success", factory: factory).record(success ? 1 : 0)
        if success {
            CoreMetrics.Gauge(label: "endpoint_registry_tokens_last_reload_success_timestamp_seconds", factory: factory)
                .record(time.timeIntervalSince1970.rounded())
        }
    }

    /// `endpoint_registry_watches_dropped_total`: watchers dropped because their buffer filled.
    func recordWatchDropped() {
        counter("endpoint_registry_watches_dropped_total", []).increment()
    }

    /// `endpoint_registry_reconciles_total{cluster, result}`: synced, applied, deleted, failed, conflict.
    func reconciled(cluster: String, result: String) {
        counter("endpoint_registry_reconciles_total", [("cluster", cluster), ("result", result)]).increment()
    }

    /// `endpoint_registry_reconcile_retries_total{cluster}`.
    func retried(cluster: String) {
        counter("endpoint_registry_reconcile_retries_total", [("cluster", cluster)]).increment()
    }

    /// The Prometheus text exposition, with the store's gauges refreshed.
    /// `endpoint_registry_health_probe_duration_seconds` (histogram) and
    /// `endpoint_registry_health_probe_failures_total{reason}` (refused, timeout, tls, status, other).
    func probed(namespace: String, name: String, duration: Duration, failure: ProbeFailure?) {
        let timer = probeTimer.withLock { timer in
            if let timer { return timer }
            let created = CoreMetrics.Timer(label: "endpoint_registry_health_probe_duration_seconds", factory: factory)
            timer = created
            return created
        }
        timer.recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        if let failure { counter("endpoint_registry_health_probe_failures_total", [("reason", failure.reason)]).increment() }
    }

    /// `endpoint_registry_health_fail_open_total{namespace,service}`: times every address of a
    /// service was unhealthy and all were rendered ready.
    func failedOpen(namespace: String, name: String) {
        counter("endpoint_registry_health_fail_open_total", [("namespace", namespace), ("service", name)]).increment()
    }

    /// `endpoint_registry_dns_resolutions_total{result}`: success, notfound, failure.
    func resolved(result: String) {
        counter("endpoint_registry_dns_resolutions_total", [("result", result)]).increment()
    }

    /// `endpoint_registry_leader_transitions_total`: this process started or stopped leading.
    func leadershipChanged(leading: Bool) {
        counter("endpoint_registry_leader_transitions_total", []).increment()
    }

    func exposition(store: ServiceStore) -> [UInt8] {
        if let elector {
            CoreMetrics.Gauge(label: "endpoint_registry_leader", factory: factory).record(elector.isLeading ? 1 : 0)
        }
        if let dns {
            CoreMetrics.Gauge(label: "endpoint_registry_dns_hosts", factory: factory).record(dns.hostCount)
        }
        if let liveness {
            for entry in liveness.counts() {
                for (state, count) in [("healthy", entry.healthy), ("unhealthy", entry.unhealthy), ("unknown", entry.unknown)] {
                    CoreMetrics.Gauge(
                        label: "endpoint_registry_health_addresses",
                        dimensions: [("namespace", entry.service.namespace), ("service", entry.service.name), ("state", state)], factory: factory
                    ).record(count)
                }
            }
        }
        if let reconciler {
            CoreMetrics.Gauge(label: "endpoint_registry_reconcile_queue_depth", factory: factory).record(reconciler.queue.depth)
            for cluster in reconciler.clusterNames {
                guard let summary = try? reconciler.summary(cluster: cluster) else { continue }
                CoreMetrics.Gauge(label: "endpoint_registry_services_not_synced", dimensions: [("cluster", cluster)], factory: factory)
                    .record(summary.notSynced.count)
                if let last = summary.lastSuccessfulSync {
                    CoreMetrics.Gauge(
                        label: "endpoint_registry_last_successful_sync_timestamp_seconds", dimensions: [("cluster", cluster)], factory: factory
                    )
                    .record(last.timeIntervalSince1970)
                }
            }
        }
        if let watches {
            CoreMetrics.Gauge(label: "endpoint_registry_watches", factory: factory).record(watches.count)
            CoreMetrics.Gauge(label: "endpoint_registry_watch_buffered_bytes", factory: factory).record(watches.bufferedBytes)
        }
        if let statistics = try? store.statistics() {
            CoreMetrics.Gauge(label: "endpoint_registry_services", factory: factory).record(statistics.services)
            CoreMetrics.Gauge(label: "endpoint_registry_addresses", factory: factory).record(statistics.addresses)
            CoreMetrics.Gauge(label: "endpoint_registry_database_bytes", factory: factory).record(statistics.databaseBytes)
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return MetricsExposition.annotated(buffer, help: MetricsExposition.help) + MetricsExposition.processMetrics()
    }
}

/// One (route, method, status)'s `http_requests_total` counter and the route and method's
/// `http_request_duration_seconds` timer.
final class RequestMetrics: Sendable {
    let method: String
    let status: Int
    let counter: CoreMetrics.Counter
    let timer: CoreMetrics.Timer

    init(method: String, status: Int, counter: CoreMetrics.Counter, timer: CoreMetrics.Timer) {
        self.method = method
        self.status = status
        self.counter = counter
        self.timer = timer
    }
}
