import Foundation
import HTTPServer
import Liveness
import RegistryCore
import RegistryStorage

/// `GET /v1/services/{namespace}/{name}/health` (issue 13): each address with its registered
/// and effective readiness and, when the service has a `healthCheck`, its health state, the
/// `allBackendsUnhealthy` condition and the last health events. Health changes are not
/// revisions: they are kept here, not in the history or the audit log.
struct HealthHandlers: Sendable {
    let store: ServiceStore
    let liveness: HealthChecker
    /// `host` addresses are listed as the IPs they resolve to, each with its `host` (issue 13).
    var dns: DNSRefresher? = nil

    func getServiceHealth(_ context: RequestContext) throws -> HTTPResponse {
        let (namespace, name) = (context.parameter("namespace"), context.parameter("name"))
        guard let record = try store.record(namespace: namespace, name: name) else { throw StoreError.notFound(namespace: namespace, name: name) }
        let service = dns?.resolved(record.service) ?? record.service
        let effective = liveness.effective(service)
        let report = service.healthCheck == nil ? nil : liveness.report(namespace: namespace, name: name)
        var byTarget: [ProbeTarget: AddressHealth] = [:]
        for address in report?.addresses ?? [] { byTarget[address.target] = address.health }
        var addresses: [JSONValue] = []
        for (index, address) in service.addresses.enumerated() {
            var object = JSONObject()
            object["ip"] = .string(address.ip)
            if let host = address.host { object["host"] = .string(host) }
            let port = service.healthCheck?.probePort(for: address, servicePorts: service.ports)
            if let port { object["probePort"] = .integer(port) }
            object["ready"] = .bool(address.ready)
            object["effectiveReady"] = .bool(effective.addresses[index].ready)
            if service.healthCheck != nil, let port {
                var health = JSONObject()
                if let state = byTarget[ProbeTarget(ip: address.ip, port: port)] {
                    health["state"] = .string(state.state.rawValue)
                    health["since"] = .string(ServiceStore.rfc3339(state.since))
                    if let lastCheck = state.lastCheck { health["lastCheck"] = .string(ServiceStore.rfc3339(lastCheck)) }
                    if let lastError = state.lastError { health["lastError"] = .string(lastError) }
                    health["consecutive"] = .integer(state.consecutive)
                } else {
                    health["state"] = .string(HealthState.unknown.rawValue)
                    health["consecutive"] = .integer(0)
                }
                object["health"] = .object(health)
            }
            addresses.append(.object(object))
        }
        var body = JSONObject()
        body["namespace"] = .string(namespace)
        body["name"] = .string(name)
        body["healthCheck"] = service.healthCheck.map(ServiceEncoder.json) ?? .null
        body["addresses"] = .array(addresses)
        body["conditions"] = .array(ServiceView.conditions(report: report, dns: dns, namespace: namespace, name: name))
        body["events"] = .array(
            (report?.events ?? []).reversed().map { event in
                var object = JSONObject()
                object["time"] = .string(ServiceStore.rfc3339(event.time))
                if let target = event.target {
                    object["ip"] = .string(target.ip)
                    object["port"] = .integer(target.port)
                } else {
                    object["condition"] = .string(HealthChecker.Condition.allBackendsUnhealthy)
                }
                object["from"] = .string(event.from)
                object["to"] = .string(event.to)
                if let message = event.message { object["message"] = .string(message) }
                return .object(object)
            })
        return Responses.json(200, .object(body))
    }
}
