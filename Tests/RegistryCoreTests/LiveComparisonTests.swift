import Testing

@testable import RegistryCore

/// What a cluster would hold after applying `object`: server-managed metadata added, the
/// defaulted fields dropped from the input (so that only the comparison's defaulting makes
/// them equal), Endpoints subsets repacked one address per subset.
private func asServerWouldStore(_ object: JSONValue) -> JSONValue {
    guard case .object(var root) = object, case .object(var metadata)? = root["metadata"] else { return object }
    metadata["uid"] = .string("0a1b")
    metadata["resourceVersion"] = .string("1234")
    metadata["creationTimestamp"] = .string("2026-01-01T00:00:00Z")
    metadata["managedFields"] = .array([
        .object(JSONObject([("manager", .string("endpoint-registry")), ("operation", .string("Apply")), ("fieldsV1", .object(JSONObject()))]))
    ])
    root["metadata"] = .object(metadata)
    switch LiveObject.kind(object) {
    case "Service":
        if case .object(var spec)? = root["spec"] {
            spec["sessionAffinity"] = nil
            spec["internalTrafficPolicy"] = nil
            if spec["clusterIP"] == nil, spec["type"] != .string("ExternalName") { spec["clusterIP"] = .string("10.96.0.10") }
            spec["ipFamilies"] = .array([.string("IPv4")])
            root["spec"] = .object(spec)
        }
    case "Endpoints":
        var repacked: [JSONValue] = []
        if case .array(let subsets)? = root["subsets"] {
            for case .object(let subset) in subsets {
                for field in ["notReadyAddresses", "addresses"] {
                    guard case .array(let addresses)? = subset[field] else { continue }
                    for address in addresses.reversed() {
                        var single = JSONObject([(field, .array([address]))])
                        single["ports"] = subset["ports"]
                        repacked.append(.object(single))
                    }
                }
            }
        }
        root["subsets"] = .array(repacked.reversed())
    default:
        break
    }
    return .object(root)
}

private func modified(_ object: JSONValue, _ change: (inout JSONObject) -> Void) -> JSONValue {
    guard case .object(var root) = object else { return object }
    change(&root)
    return .object(root)
}

private func withLabels(_ object: JSONValue, _ change: (inout JSONObject) -> Void) -> JSONValue {
    modified(object) { root in
        guard case .object(var metadata)? = root["metadata"] else { return }
        var labels = JSONObject()
        if case .object(let given)? = metadata["labels"] { labels = given }
        change(&labels)
        metadata["labels"] = .object(labels)
        root["metadata"] = .object(metadata)
    }
}

@Suite struct LiveComparisonTests {
    let service: ExternalService

    init() throws {
        service = try decoded(
            """
            {"namespace": "storage", "name": "rgw", "description": "S3 gateways", "labels": {"app": "ceph-rgw"},
             "ports": [{"port": 80}],
             "addresses": [{"ip": "192.0.2.10", "port": 8080}, {"ip": "192.0.2.11", "port": 8080}, {"ip": "192.0.2.10", "port": 8081},
                           {"ip": "192.0.2.12", "port": 8081, "ready": false}]}
            """)
    }

    @Test func slicePortsSpellTheDefaultedEmptyName() {
        let slices = objects(ManifestRenderer.render(service), kind: "EndpointSlice")
        #expect(!slices.isEmpty)
        for slice in slices {
            guard case .array(let ports)? = slice["ports"] else {
                Issue.record("no ports")
                continue
            }
            for case .object(let port) in ports { #expect(port["name"] == .string("")) }
        }
        let endpoints = objects(ManifestRenderer.render(service), kind: "Endpoints")
        guard case .array(let subsets)? = endpoints.first?["subsets"] else {
            Issue.record("no subsets")
            return
        }
        for case .object(let subset) in subsets {
            guard case .array(let ports)? = subset["ports"] else { continue }
            for case .object(let port) in ports { #expect(port["name"] == nil) }
        }
    }

    @Test func serviceSpellsTheDefaultsOfTheAPIServer() {
        let rendered = objects(ManifestRenderer.render(service), kind: "Service")[0]
        guard case .object(let spec)? = rendered["spec"] else {
            Issue.record("no spec")
            return
        }
        #expect(spec["sessionAffinity"] == .string("None"))
        #expect(spec["internalTrafficPolicy"] == .string("Cluster"))
    }

    @Test func whatTheServerStoresIsInSync() {
        let rendering = ManifestRenderer.render(service).objects
        let live = rendering.map(asServerWouldStore)
        #expect(LiveComparison.compare(rendering: rendering, live: live).isEmpty)
    }

    /// A LoadBalancer rendered with one pinned nodePort: the cluster allocates the other, plus a
    /// healthCheckNodePort (externalTrafficPolicy Local) and the IP families; none of it is drift,
    /// but a changed pinned nodePort is.
    @Test func allocatedNodePortsAreNotDrift() throws {
        let service = try decoded(
            #"{"name":"lb","type":"LoadBalancer","ports":[{"name":"a","port":80,"nodePort":30080},{"name":"b","port":443}],"externalTrafficPolicy":"Local","addresses":[{"ip":"192.0.2.1"}]}"#
        )
        let rendered = objects(ManifestRenderer.render(service), kind: "Service")[0]
        func live(pinned: Int) -> JSONValue {
            var root = rendered
            guard case .object(var spec)? = root["spec"] else { return .object(root) }
            spec["ports"] = .array([
                .object(
                    JSONObject([
                        ("name", .string("a")), ("protocol", .string("TCP")), ("port", .integer(80)), ("targetPort", .integer(80)),
                        ("nodePort", .integer(pinned)),
                    ])),
                .object(
                    JSONObject([
                        ("name", .string("b")), ("protocol", .string("TCP")), ("port", .integer(443)), ("targetPort", .integer(443)),
                        ("nodePort", .integer(31443)),
                    ])),
            ])
            spec["healthCheckNodePort"] = .integer(32000)
            spec["ipFamilyPolicy"] = .string("SingleStack")
            root["spec"] = .object(spec)
            return asServerWouldStore(.object(root))
        }
        #expect(LiveComparison.compare(rendered: .object(rendered), live: live(pinned: 30080)).isEmpty)
        #expect(LiveComparison.compare(rendered: .object(rendered), live: live(pinned: 30081)).map(\.field) == ["spec.ports"])
    }

    @Test func aRemovedUserLabelOrDescriptionIsDrift() {
        let rendering = ManifestRenderer.render(service).objects
        var live = rendering.map(asServerWouldStore)
        live[0] = withLabels(live[0]) { $0["app"] = nil }
        live[0] = modified(live[0]) { root in
            guard case .object(var metadata)? = root["metadata"] else { return }
            metadata["annotations"] = .object(JSONObject())
            root["metadata"] = .object(metadata)
        }
        let fields = LiveComparison.compare(rendering: rendering, live: live).map(\.field)
        #expect(fields.contains("metadata.labels[app]"))
        #expect(fields.contains("metadata.annotations[endpoint-registry/description]"))
    }

    @Test func anEditedAddressAndADeletedSliceAreDrift() {
        let rendering = ManifestRenderer.render(service).objects
        var live = rendering.map(asServerWouldStore)
        let sliceIndex = live.firstIndex { LiveObject.kind($0) == "EndpointSlice" }!
        live[sliceIndex] = modified(live[sliceIndex]) { root in
            root["endpoints"] = .array([.object(JSONObject([("addresses", .array([.string("192.0.2.99")]))]))])
        }
        #expect(LiveComparison.compare(rendering: rendering, live: live).map(\.field) == ["endpoints"])
        live.remove(at: sliceIndex)
        let missing = LiveComparison.compare(rendering: rendering, live: live)
        #expect(missing.map(\.field) == ["(object)"])
        #expect(missing.first?.actual == .string("missing"))
    }

    @Test func mirroredSlicesAreNeverOursAndNotDrift() throws {
        let rendering = ManifestRenderer.render(service, mode: .endpoints).objects
        var live = rendering.map(asServerWouldStore)
        // As the mirroring controller makes them: every Endpoints label, its own managed-by.
        let mirrored = try JSONParser.parse(
            Array(
                """
                {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": "rgw-x7k2p", "namespace": "storage", "labels": {"app": "ceph-rgw",
                   "app.kubernetes.io/managed-by": "endpoint-registry", "kubernetes.io/service-name": "rgw",
                   "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}},
                 "addressType": "IPv4", "endpoints": [], "ports": []}
                """.utf8))
        #expect(!Ownership.isOurs(mirrored))
        live.append(mirrored)
        #expect(LiveComparison.compare(rendering: rendering, live: live).isEmpty)
        // One of ours that the rendering no longer has is drift.
        let stale = withLabels(mirrored) { $0["endpointslice.kubernetes.io/managed-by"] = .string("endpoint-registry") }
        #expect(Ownership.isOurs(stale))
        #expect(LiveComparison.compare(rendering: rendering, live: live + [stale]).map(\.expected) == [.string("absent")])
    }

    @Test func aSelectorAndAClusterIPChangeAreDrift() {
        let rendering = ManifestRenderer.render(service).objects
        var live = rendering.map(asServerWouldStore)
        live[0] = modified(live[0]) { root in
            guard case .object(var spec)? = root["spec"] else { return }
            spec["selector"] = .object(JSONObject([("app", .string("rgw"))]))
            spec["clusterIP"] = .string("None")
            root["spec"] = .object(spec)
        }
        let fields = Set(LiveComparison.compare(rendering: rendering, live: live).map(\.field))
        #expect(fields == ["spec.selector", "spec.clusterIP"])
    }

    @Test func labelsOurManagerAppliedAndNoLongerRendersAreDrift() {
        let rendering = ManifestRenderer.render(service).objects
        var live = rendering.map(asServerWouldStore)
        live[0] = withLabels(live[0]) { $0["team"] = .string("storage") }
        // Someone else's label: not ours to judge.
        #expect(LiveComparison.compare(rendering: rendering, live: live).isEmpty)
        live[0] = modified(live[0]) { root in
            guard case .object(var metadata)? = root["metadata"] else { return }
            let fields = JSONObject([("f:metadata", .object(JSONObject([("f:labels", .object(JSONObject([("f:team", .object(JSONObject()))])))])))])
            metadata["managedFields"] = .array([
                .object(JSONObject([("manager", .string("endpoint-registry")), ("operation", .string("Apply")), ("fieldsV1", .object(fields))]))
            ])
            root["metadata"] = .object(metadata)
        }
        #expect(LiveComparison.compare(rendering: rendering, live: live).map(\.field) == ["metadata.labels[team]"])
    }
}
