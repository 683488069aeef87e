import Foundation
import Liveness
import RegistryCore
import RegistryStorage

/// The read-only observations that `GET /v1/services/{namespace}/{name}` adds to the
/// registration (issue 13): each `host` address's `resolution`, each address's `health` when
/// the service has a `healthCheck`, and `status.conditions`. They are not part of the
/// registration: they do not change its `revision` or `ETag`, and are ignored when sent back.
enum ServiceView {
    /// The stored document with the observations added; the document itself when the service
    /// has neither a health check nor a `host` address (no parsing on that path: see
    /// `StoredDocument.mayHaveHealthCheckOrHosts`).
    static func document(_ stored: StoredDocument, liveness: HealthChecker, dns: DNSRefresher) -> [UInt8] {
        let document = stored.document
        guard stored.mayHaveHealthCheckOrHosts else { return document }
        guard let json = try? JSONParser.parse(document), case .object(var object) = json, let record = ServiceDecoder.storedRecord(json),
            case .array(var addresses)? = object["addresses"], addresses.count == record.service.addresses.count
        else { return document }
        let service = record.service
        guard service.healthCheck != nil || !service.hosts.isEmpty else { return document }
        let (namespace, name) = (service.namespace, service.name)
        let report = service.healthCheck == nil ? nil : liveness.report(namespace: namespace, name: name)
        var healthByTarget: [ProbeTarget: AddressHealth] = [:]
        for address in report?.addresses ?? [] { healthByTarget[address.target] = address.health }
        let resolutions = service.hosts.isEmpty ? [:] : dns.reports(namespace: namespace, name: name)
        for (index, address) in service.addresses.enumerated() {
            guard case .object(var item) = addresses[index] else { continue }
            let port = service.healthCheck?.probePort(for: address, servicePorts: service.ports)
            if address.isUnresolvedHost, let host = address.host {
                var resolution = JSONObject()
                let found = resolutions[host]
                let resolved = found?.resolution.addresses ?? []
                resolution["addresses"] = .array(resolved.map(JSONValue.string))
                if let found {
                    let current = found.resolution
                    if let time = current.resolvedAt { resolution["resolvedAt"] = .string(ServiceStore.rfc3339(time)) }
                    if let time = current.lastAttempt { resolution["lastAttempt"] = .string(ServiceStore.rfc3339(time)) }
                    if let time = found.nextAttempt { resolution["nextAttempt"] = .string(ServiceStore.rfc3339(time)) }
                    if let ttl = current.ttlSeconds { resolution["ttlSeconds"] = .integer(ttl) }
                    if let error = current.error { resolution["error"] = .string(error.description) }
                    if let since = current.notFoundSince { resolution["notFoundSince"] = .string(ServiceStore.rfc3339(since)) }
                    if current.expired { resolution["expired"] = .bool(true) }
                    if !current.dropped.isEmpty {
                        resolution["dropped"] = .object(JSONObject(current.dropped.keys.sorted().map { ($0, .string(current.dropped[$0]!)) }))
                    }
                }
                if service.healthCheck != nil, let port {
                    resolution["health"] = .array(
                        resolved.map { ip in
                            var entry = JSONObject([("ip", .string(ip))])
                            for member in healthObject(healthByTarget[ProbeTarget(ip: ip, port: port)]) { entry[member.key] = member.value }
                            return .object(entry)
                        })
                }
                item["resolution"] = .object(resolution)
            } else if service.healthCheck != nil, let port {
                item["health"] = .object(healthObject(healthByTarget[ProbeTarget(ip: address.ip, port: port)]))
            }
            addresses[index] = .object(item)
        }
        object["addresses"] = .array(addresses)
        object["status"] = .object(JSONObject([("conditions", .array(conditions(report: report, dns: dns, namespace: namespace, name: name)))]))
        return JSONWriter.bytes(.object(object))
    }

    /// An address's health as the API shows it: `state`, `since`, `lastCheck`, `lastError`,
    /// `consecutive` (`unknown` with 0 before the checker knows the address).
    static func healthObject(_ health: AddressHealth?) -> JSONObject {
        var object = JSONObject()
        guard let health else {
            object["state"] = .string(HealthState.unknown.rawValue)
            object["consecutive"] = .integer(0)
            return object
        }
        object["state"] = .string(health.state.rawValue)
        object["since"] = .string(ServiceStore.rfc3339(health.since))
        if let lastCheck = health.lastCheck { object["lastCheck"] = .string(ServiceStore.rfc3339(lastCheck)) }
        if let lastError = health.lastError { object["lastError"] = .string(lastError) }
        object["consecutive"] = .integer(health.consecutive)
        return object
    }

    /// The service's conditions that hold: `allBackendsUnhealthy` (health checks), then
    /// `DNSResolutionFailed` and `DNSNameNotFound` (host addresses).
    static func conditions(report: HealthChecker.ServiceReport?, dns: DNSRefresher?, namespace: String, name: String) -> [JSONValue] {
        var conditions: [JSONValue] = (report?.conditions ?? []).map { condition in
            .object(
                JSONObject([
                    ("type", .string(condition.type)), ("status", .string(condition.status ? "True" : "False")),
                    ("lastTransitionTime", .string(ServiceStore.rfc3339(condition.lastTransitionTime))), ("message", .string(condition.message)),
                ]))
        }
        for condition in dns?.conditions(namespace: namespace, name: name) ?? [] {
            conditions.append(
                .object(
                    JSONObject([
                        ("type", .string(condition.type)), ("status", .string("True")), ("reason", .string(condition.reason)),
                        ("lastTransitionTime", .string(ServiceStore.rfc3339(condition.lastTransitionTime))), ("message", .string(condition.message)),
                    ])))
        }
        return conditions
    }
}
