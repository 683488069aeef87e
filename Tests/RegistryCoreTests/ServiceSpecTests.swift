import Testing

@testable import RegistryCore

/// The violations of `json`, as (field, message).
private func problems(_ json: String) throws -> [FieldViolation] {
    switch ServiceDecoder.decode(try JSONParser.parse(Array(json.utf8))) {
    case .success: return []
    case .failure(let failure): return failure.violations
    }
}

private func importPlan(_ yaml: String) throws -> ImportPlan {
    try ManifestImporter.plan(ManifestDocuments.objects(ManifestDocuments.parseYAML(yaml))).get()
}

/// Issue 12's Service spec fields: the API server's rules (pkg/apis/core/validation
/// `ValidateService`), one row per rule with the API server's message.
@Suite struct ServiceSpecValidationTests {
    static let twoPorts = #""ports":[{"name":"http","port":80},{"name":"https","port":443}]"#

    @Test(arguments: [
        // ipFamilyPolicy / ipFamilies
        (#"{"name":"a","ports":[{"port":80}],"ipFamilyPolicy":"DualStack"}"#, "ipFamilyPolicy", "unsupported value \"DualStack\""),
        (#"{"name":"a","ports":[{"port":80}],"ipFamilies":["IPv4","IPv4"]}"#, "ipFamilies[1]", "Duplicate value"),
        (#"{"name":"a","ports":[{"port":80}],"ipFamilies":["IPv4","IPv6","IPv4"]}"#, "ipFamilies", "may specify no more than two IP families"),
        (
            #"{"name":"a","ports":[{"port":80}],"ipFamilyPolicy":"SingleStack","ipFamilies":["IPv4","IPv6"]}"#, "ipFamilyPolicy",
            "must be RequireDualStack or PreferDualStack when multiple 'ipFamilies' are specified"
        ),
        (#"{"name":"a","ports":[{"port":80}],"ipFamilies":["IPv5"]}"#, "ipFamilies[0]", "unsupported value \"IPv5\""),
        (
            #"{"name":"a","type":"ExternalName","externalName":"x.example","ipFamilyPolicy":"SingleStack"}"#, "ipFamilyPolicy",
            "must not be set for ExternalName services"
        ),
        (
            #"{"name":"a","type":"ExternalName","externalName":"x.example","ipFamilies":["IPv4"]}"#, "ipFamilies",
            "must not be set for ExternalName services"
        ),
        // sessionAffinity (validateClientIPAffinityConfig)
        (#"{"name":"a","ports":[{"port":80}],"sessionAffinity":"Sticky"}"#, "sessionAffinity", "unsupported value \"Sticky\""),
        (
            #"{"name":"a","ports":[{"port":80}],"sessionAffinity":"ClientIP","sessionAffinityTimeoutSeconds":0}"#, "sessionAffinityTimeoutSeconds",
            "must be greater than 0 and less than 86400"
        ),
        (
            #"{"name":"a","ports":[{"port":80}],"sessionAffinity":"ClientIP","sessionAffinityTimeoutSeconds":86401}"#,
            "sessionAffinityTimeoutSeconds",
            "must be greater than 0 and less than 86400"
        ),
        (
            #"{"name":"a","ports":[{"port":80}],"sessionAffinityTimeoutSeconds":60}"#, "sessionAffinityTimeoutSeconds",
            "must not be set when session affinity is None"
        ),
        // traffic policies
        (#"{"name":"a","ports":[{"port":80}],"internalTrafficPolicy":"Node"}"#, "internalTrafficPolicy", "unsupported value \"Node\""),
        (
            #"{"name":"a","ports":[{"port":80}],"externalTrafficPolicy":"Local"}"#, "externalTrafficPolicy",
            "may only be set for externally-accessible services"
        ),
        (#"{"name":"a","ports":[{"port":80}],"trafficDistribution":"Anywhere"}"#, "trafficDistribution", "unsupported value \"Anywhere\""),
        // NodePort / LoadBalancer
        (#"{"name":"a","type":"NodePort"}"#, "ports", "at least one port is required"),
        (#"{"name":"a","ports":[{"port":80,"nodePort":30080}]}"#, "ports[0].nodePort", "may not be used when `type` is 'ClusterIP'"),
        (
            #"{"name":"a","type":"NodePort","ports":[{"name":"a","port":80,"nodePort":30080},{"name":"b","port":81,"nodePort":30080}]}"#,
            "ports[1].nodePort", "is already the nodePort of ports[0]"
        ),
        (#"{"name":"a","type":"NodePort","ports":[{"port":80,"nodePort":70000}]}"#, "ports[0].nodePort", "must be between 1 and 65535"),
        (
            #"{"name":"a","type":"NodePort","ports":[{"port":80}],"loadBalancerClass":"example.com/lb"}"#, "loadBalancerClass",
            "may only be used when `type` is 'LoadBalancer'"
        ),
        (
            #"{"name":"a","type":"LoadBalancer","ports":[{"port":80}],"loadBalancerClass":"not a class"}"#, "loadBalancerClass",
            "must consist of alphanumeric characters"
        ),
        (
            #"{"name":"a","ports":[{"port":80}],"loadBalancerSourceRanges":["10.0.0.0/8"]}"#, "loadBalancerSourceRanges",
            "may only be used when `type` is 'LoadBalancer'"
        ),
        (
            #"{"name":"a","type":"LoadBalancer","ports":[{"port":80}],"loadBalancerSourceRanges":["10.0.0.0/33"]}"#, "loadBalancerSourceRanges[0]",
            "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24"
        ),
        (
            #"{"name":"a","type":"NodePort","ports":[{"port":80}],"allocateLoadBalancerNodePorts":false}"#, "allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'"
        ),
        // servedPorts (the registry's rules)
        (
            #"{"name":"a","ports":[{"port":80}],"addresses":[{"ip":"10.0.0.1","servedPorts":["x"]}]}"#, "addresses[0].servedPorts",
            "only for services with more than one port"
        ),
        (#"{"name":"a",\#(twoPorts),"addresses":[{"ip":"10.0.0.1","servedPorts":[]}]}"#, "addresses[0].servedPorts", "must name at least one"),
        (
            #"{"name":"a",\#(twoPorts),"addresses":[{"ip":"10.0.0.1","servedPorts":["ftp"]}]}"#, "addresses[0].servedPorts[0]",
            "no service port is named \"ftp\""
        ),
        (#"{"name":"a",\#(twoPorts),"addresses":[{"ip":"10.0.0.1","servedPorts":["http","http"]}]}"#, "addresses[0].servedPorts[1]", "named twice"),
        (
            #"{"name":"a",\#(twoPorts),"addresses":[{"ip":"10.0.0.1","servedPorts":["http"],"ports":{"https":8443}}]}"#, "addresses[0].servedPorts",
            "does not name \"https\""
        ),
    ])
    func rule(json: String, field: String, message: String) throws {
        let found = try problems(json)
        #expect(found.map(\.field) == [field], "\(found)")
        #expect(found.first?.message.contains(message) == true, "\(found)")
    }

    @Test(arguments: [
        #"{"name":"a","type":"NodePort","ports":[{"port":80,"nodePort":30080}],"externalTrafficPolicy":"Local"}"#,
        #"{"name":"a","type":"LoadBalancer","ports":[{"port":80}],"loadBalancerClass":"metallb.io/l2","loadBalancerSourceRanges":["10.0.0.0/8"," fd00::/64"],"allocateLoadBalancerNodePorts":false}"#,
        #"{"name":"a","ports":[{"port":80}],"ipFamilyPolicy":"RequireDualStack","ipFamilies":["IPv6","IPv4"],"sessionAffinity":"ClientIP","sessionAffinityTimeoutSeconds":86400}"#,
        #"{"name":"a","type":"Headless","publishNotReadyAddresses":true,"internalTrafficPolicy":"Local","trafficDistribution":"PreferClose"}"#,
        #"{"name":"a","ports":[{"name":"http","port":80},{"name":"https","port":443}],"addresses":[{"ip":"10.0.0.1","servedPorts":["https"]}]}"#,
    ])
    func valid(json: String) throws {
        #expect(try problems(json).isEmpty)
    }

    @Test func defaultsAreStoredAsAbsent() throws {
        let service = try decoded(
            #"{"name":"a","type":"LoadBalancer","ports":[{"port":80}],"internalTrafficPolicy":"Cluster","externalTrafficPolicy":"Cluster","allocateLoadBalancerNodePorts":true,"sessionAffinity":"ClientIP","sessionAffinityTimeoutSeconds":10800,"addresses":[{"ip":"fd00::1"}],"ipFamilyPolicy":"SingleStack","ipFamilies":["IPv6"]}"#
        )
        #expect(service.spec.internalTrafficPolicy == nil && service.spec.externalTrafficPolicy == nil)
        #expect(service.spec.allocateLoadBalancerNodePorts == nil && service.spec.sessionAffinityTimeoutSeconds == nil)
        #expect(service.spec.ipFamilyPolicy == nil && service.spec.ipFamilies.isEmpty)
        let record = ServiceRecord(service: service, uid: "u", revision: 1, createdAt: "t", updatedAt: "t")
        #expect(ServiceDecoder.storedRecord(ServiceEncoder.json(record)) == record)
    }

    @Test func servedPortsNamingEveryPortMeanAll() throws {
        let service = try decoded(
            #"{"name":"a","ports":[{"name":"http","port":80},{"name":"https","port":443}],"addresses":[{"ip":"10.0.0.1","servedPorts":["https","http"]}]}"#
        )
        #expect(service.addresses[0].servedPorts == nil)
    }
}

/// Rendering of the new fields and shapes (golden files, validated against the 1.30 and 1.37
/// schemas by scripts/validate-manifests).
@Suite struct ServiceSpecRenderingTests {
    /// A single-stack Service whose family leaves some addresses out validates, and kube-proxy
    /// never sends them traffic: advice. Not when the registry chooses, dual stack, or headless.
    @Test(arguments: [
        (#"{"name":"a","ipFamilies":["IPv6"],"ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"},{"ip":"2001:db8::1"}]}"#, true),
        (#"{"name":"a","ipFamilyPolicy":"SingleStack","ports":[{"port":80}],"addresses":[{"ip":"2001:db8::1"}]}"#, true),
        (#"{"name":"a","ipFamilyPolicy":"SingleStack","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1"}]}"#, false),
        (#"{"name":"a","ports":[{"port":80}],"addresses":[{"ip":"2001:db8::1"}]}"#, false),
        (#"{"name":"a","ipFamilyPolicy":"PreferDualStack","ipFamilies":["IPv4"],"ports":[{"port":80}],"addresses":[{"ip":"2001:db8::1"}]}"#, false),
        (#"{"name":"a","type":"Headless","ipFamilies":["IPv4"],"ports":[{"port":80}],"addresses":[{"ip":"2001:db8::1"}]}"#, false),
    ])
    func singleStackLeavingAddressesOutIsAdvice(json: String, warned: Bool) throws {
        let advice = ServiceAdvice.warnings(try decoded(json)).filter { $0.hasPrefix("ipFamilyPolicy:") }
        #expect(advice.count == (warned ? 1 : 0), "\(advice)")
    }

    @Test func ipv6OnlyGetsAnIPv6ServiceAndBothFamiliesPreferDualStack() throws {
        let v6 = try decoded(#"{"name":"v6","ports":[{"port":443}],"addresses":[{"ip":"2001:db8::1"}]}"#)
        let spec = try #require(objects(ManifestRenderer.render(v6), kind: "Service").first?["spec"])
        guard case .object(let fields) = spec else {
            Issue.record("no spec")
            return
        }
        #expect(fields["ipFamilyPolicy"] == .string("SingleStack"))
        #expect(fields["ipFamilies"] == .array([.string("IPv6")]))
        try Golden.check("ipv6-only-clusterip", ManifestRenderer.render(v6, mode: .endpointslices))
        let dual = try decoded(#"{"name":"dual","ports":[{"port":443}],"addresses":[{"ip":"2001:db8::1"},{"ip":"192.0.2.1"}]}"#)
        guard case .object(let dualSpec)? = objects(ManifestRenderer.render(dual), kind: "Service").first?["spec"] else { return }
        #expect(dualSpec["ipFamilyPolicy"] == .string("PreferDualStack") && dualSpec["ipFamilies"] == nil)
        let v4 = try decoded(#"{"name":"v4","ports":[{"port":443}],"addresses":[{"ip":"192.0.2.1"}]}"#)
        guard case .object(let v4Spec)? = objects(ManifestRenderer.render(v4), kind: "Service").first?["spec"] else { return }
        #expect(v4Spec["ipFamilyPolicy"] == nil && v4Spec["ipFamilies"] == nil)
    }

    @Test func loadBalancerWithoutSelector() throws {
        let service = try decoded(
            #"{"name":"s3","namespace":"storage","type":"LoadBalancer","ports":[{"name":"http","port":80,"targetPort":8080,"nodePort":30080},{"name":"https","port":443,"targetPort":8443}],"loadBalancerClass":"metallb.io/l2","loadBalancerSourceRanges":["10.0.0.0/8"],"externalTrafficPolicy":"Local","allocateLoadBalancerNodePorts":false,"addresses":[{"ip":"192.0.2.10"},{"ip":"192.0.2.11"}]}"#
        )
        try Golden.check("loadbalancer", ManifestRenderer.render(service))
        let nodePort = try decoded(#"{"name":"np","type":"NodePort","ports":[{"port":80,"nodePort":30081}],"addresses":[{"ip":"192.0.2.10"}]}"#)
        try Golden.check("nodeport", ManifestRenderer.render(nodePort, mode: .endpointslices))
    }

    @Test func sessionAffinityAndTrafficFields() throws {
        let service = try decoded(
            #"{"name":"sticky","ports":[{"port":80}],"sessionAffinity":"ClientIP","sessionAffinityTimeoutSeconds":600,"publishNotReadyAddresses":true,"internalTrafficPolicy":"Local","trafficDistribution":"PreferClose","addresses":[{"ip":"192.0.2.10"},{"ip":"192.0.2.11","ready":false}]}"#
        )
        try Golden.check("session-affinity", ManifestRenderer.render(service))
    }

    @Test func addressesServingSomePortsGroupByPortSet() throws {
        let service = try decoded(
            #"{"name":"mail","ports":[{"name":"smtp","port":25},{"name":"imap","port":143}],"addresses":[{"ip":"192.0.2.1"},{"ip":"192.0.2.2","servedPorts":["smtp"]},{"ip":"192.0.2.3","servedPorts":["imap"],"ports":{"imap":1143}}]}"#
        )
        let rendering = ManifestRenderer.render(service)
        let endpoints = try #require(objects(rendering, kind: "Endpoints").first)
        guard case .array(let subsets)? = endpoints["subsets"] else {
            Issue.record("no subsets")
            return
        }
        #expect(subsets.count == 3)
        #expect(objects(rendering, kind: "EndpointSlice").count == 3)
        try Golden.check("served-ports", rendering)
    }

    @Test func endpointsModeWarnsWhenTheMirroringControllerCannotMirror() throws {
        let ceph = try decoded(
            #"{"name":"rgw","endpointsMode":"endpoints","ports":[{"port":80}],"addresses":[{"ip":"192.0.2.1","port":8080},{"ip":"192.0.2.1","port":8081}]}"#
        )
        #expect(ManifestRenderer.render(ceph).warnings.contains { $0.contains("RepackSubsets") && $0.contains("\"both\"") })
        #expect(ManifestRenderer.render(ceph, mode: .both).warnings.isEmpty)
        // Different hosts per backend port, or the same host on different named ports: mirrorable.
        let fine = try decoded(
            #"{"name":"rgw","endpointsMode":"endpoints","ports":[{"name":"a","port":80},{"name":"b","port":81}],"addresses":[{"ip":"192.0.2.1","servedPorts":["a"]},{"ip":"192.0.2.1","servedPorts":["b"],"ports":{"b":9000}}]}"#
        )
        #expect(ManifestRenderer.render(fine).warnings.isEmpty)
    }

    /// Every rendering of a new shape imports back to the same registration.
    @Test func renderingsImportBack() throws {
        let inputs = [
            #"{"name":"s3","namespace":"storage","type":"LoadBalancer","ports":[{"name":"http","port":80,"targetPort":8080,"nodePort":30080},{"name":"https","port":443}],"loadBalancerClass":"metallb.io/l2","loadBalancerSourceRanges":["10.0.0.0/8"],"externalTrafficPolicy":"Local","allocateLoadBalancerNodePorts":false,"addresses":[{"ip":"192.0.2.10"}]}"#,
            #"{"name":"sticky","ports":[{"port":80}],"sessionAffinity":"ClientIP","sessionAffinityTimeoutSeconds":600,"publishNotReadyAddresses":true,"internalTrafficPolicy":"Local","trafficDistribution":"PreferClose","addresses":[{"ip":"192.0.2.11","ready":false}]}"#,
            #"{"name":"v6","ports":[{"port":443}],"addresses":[{"ip":"2001:db8::1"}]}"#,
            #"{"name":"pinned","ports":[{"port":443}],"ipFamilyPolicy":"RequireDualStack","addresses":[{"ip":"2001:db8::1"}]}"#,
            #"{"name":"mail","ports":[{"name":"smtp","port":25},{"name":"imap","port":143}],"addresses":[{"ip":"192.0.2.1"},{"ip":"192.0.2.2","servedPorts":["smtp"]},{"ip":"192.0.2.3","servedPorts":["imap"],"ports":{"imap":1143}}]}"#,
        ]
        for json in inputs {
            let service = try decoded(json)
            for mode in EndpointsMode.allCases {
                var expected = service
                expected.endpointsMode = mode
                let yaml = String(decoding: ManifestFormat.yaml.serialize(ManifestRenderer.render(expected).objects, warnings: []), as: UTF8.self)
                let plan = try importPlan(yaml)
                #expect(plan.services == [expected], "\(service.name) in \(mode)")
                #expect(plan.warnings.isEmpty, "\(plan.warnings)")
            }
        }
    }
}

/// The import: every shape of the same information gives the same registration; what cannot
/// be kept is a warning per field; Kubernetes' own objects are refused.
@Suite struct ImportShapeTests {
    static let service = """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec:
          ports: [{name: http, port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443}]

        """

    static func expected() throws -> ExternalService {
        try decoded(
            #"{"name":"web","namespace":"shop","endpointsMode":"endpoints","ports":[{"name":"http","port":80,"targetPort":8080},{"name":"https","port":443,"targetPort":8443}],"addresses":[{"ip":"192.0.2.1"},{"ip":"192.0.2.2"},{"ip":"192.0.2.3","servedPorts":["https"]}]}"#
        )
    }

    @Test(arguments: [
        // one subset per port set (what the registry renders)
        """
        subsets:
        - addresses: [{ip: 192.0.2.1}, {ip: 192.0.2.2}]
          ports: [{name: http, port: 8080}, {name: https, port: 8443}]
        - addresses: [{ip: 192.0.2.3}]
          ports: [{name: https, port: 8443}]
        """,
        // one subset per address
        """
        subsets:
        - addresses: [{ip: 192.0.2.1}]
          ports: [{name: http, port: 8080}, {name: https, port: 8443}]
        - addresses: [{ip: 192.0.2.2}]
          ports: [{name: https, port: 8443}, {name: http, port: 8080}]
        - addresses: [{ip: 192.0.2.3}]
          ports: [{name: https, port: 8443}]
        """,
        // one subset per port
        """
        subsets:
        - addresses: [{ip: 192.0.2.1}, {ip: 192.0.2.2}]
          ports: [{name: http, port: 8080}]
        - addresses: [{ip: 192.0.2.1}, {ip: 192.0.2.2}, {ip: 192.0.2.3}]
          ports: [{name: https, port: 8443}]
        """,
        // mixed
        """
        subsets:
        - addresses: [{ip: 192.0.2.1}]
          ports: [{name: http, port: 8080}, {name: https, port: 8443}]
        - addresses: [{ip: 192.0.2.2}]
          ports: [{name: http, port: 8080}]
        - addresses: [{ip: 192.0.2.2}, {ip: 192.0.2.3}]
          ports: [{name: https, port: 8443}]
        """,
    ])
    func endpointsShapes(subsets: String) throws {
        let yaml = Self.service + "---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: web, namespace: shop}\n" + subsets
        let plan = try importPlan(yaml)
        #expect(plan.services == [try Self.expected()])
        #expect(plan.warnings.isEmpty)
    }

    static func slice(_ name: String, _ ips: [String], _ ports: String) -> String {
        """
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: \(name), namespace: shop, labels: {kubernetes.io/service-name: web}}
        addressType: IPv4
        endpoints: [\(ips.map { "{addresses: [\($0)]}" }.joined(separator: ", "))]
        ports: \(ports)

        """
    }

    @Test func sliceShapes() throws {
        var expected = try Self.expected()
        expected.endpointsMode = .endpointslices
        let http = "[{name: http, port: 8080}]"
        let https = "[{name: https, port: 8443}]"
        let both = "[{name: http, port: 8080}, {name: https, port: 8443}]"
        let shapes = [
            Self.slice("a", ["192.0.2.1", "192.0.2.2"], both) + Self.slice("b", ["192.0.2.3"], https),  // per port set
            Self.slice("a", ["192.0.2.1", "192.0.2.2"], http) + Self.slice("b", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], https),  // per port
            Self.slice("a", ["192.0.2.1"], both) + Self.slice("b", ["192.0.2.2"], http)
                + Self.slice("c", ["192.0.2.2", "192.0.2.3"], https),  // mixed
        ]
        for shape in shapes {
            let plan = try importPlan(Self.service + shape)
            #expect(plan.services == [expected])
        }
    }

    @Test func fieldsTheRegistryCannotKeepAreWarnedPerField() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: db}
            spec:
              clusterIP: 10.96.0.50
              externalIPs: [198.51.100.7]
              ipFamilyPolicy: SingleStack
              ipFamilies: [IPv4]
              sessionAffinity: ClientIP
              publishNotReadyAddresses: true
              ports: [{port: 5432}]
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: db}
            subsets:
            - addresses: [{ip: 192.0.2.5, nodeName: node-1}]
              ports: [{port: 5432}]
            """)
        let service = try #require(plan.services.first)
        #expect(service.spec.ipFamilyPolicy == .singleStack && service.spec.ipFamilies == [.ipv4])
        #expect(service.spec.sessionAffinity == .clientIP && service.spec.publishNotReadyAddresses)
        #expect(
            plan.warnings.map(\.path) == [
                "documents[0].spec.clusterIP", "documents[0].spec.externalIPs", "documents[1].subsets[0].addresses[0].nodeName",
            ])
    }

    /// What the endpoint objects and the Service's metadata say beyond the registration, one
    /// warning per field: labels and annotations of Endpoints and slices (the rendering gives them
    /// the Service's labels), conditions other than `ready`, an endpoint port's own appProtocol, a
    /// label the registry sets itself, owner references, and Endpoints that disagree with the
    /// slices that win over them.
    @Test func endpointObjectDetailsAreWarnedPerField() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              labels: {team: a, app.kubernetes.io/managed-by: Helm}
              ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: owner, uid: 1}]
              resourceVersion: "42"
            spec: {ports: [{name: http, port: 80, appProtocol: http}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-1
              labels: {kubernetes.io/service-name: web, team: a, tier: db}
              annotations: {note: kept-nowhere}
            addressType: IPv4
            endpoints:
            - addresses: [192.0.2.1]
              conditions: {ready: false, serving: true, terminating: true}
            - addresses: [192.0.2.2]
              conditions: {ready: true, serving: true, terminating: false}
            ports: [{name: http, port: 8080, appProtocol: kubernetes.io/h2c}]
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: web}
            subsets: [{addresses: [{ip: 192.0.2.9}], ports: [{name: http, port: 8080}]}]
            """)
        #expect(
            plan.warnings.map(\.path) == [
                "documents[0].metadata.labels[app.kubernetes.io/managed-by]", "documents[0].metadata.ownerReferences",
                "documents[1].metadata.labels[tier]", "documents[1].metadata.annotations[note]",
                "documents[1].endpoints[0].conditions.serving", "documents[1].endpoints[0].conditions.terminating",
                "documents[1].ports[0].appProtocol", "documents[2]",
            ], "\(plan.warnings)")
        #expect(plan.warnings.allSatisfy { $0.notKept })
        let service = try #require(plan.services.first)
        #expect(service.labels == ["team": "a"] && service.addresses.map(\.ip) == ["192.0.2.1", "192.0.2.2"])
        // The registry's own rendering imports without a word.
        let rendered = ManifestFormat.yaml.serialize(ManifestRenderer.render(service).objects)
        let again = try importPlan(String(decoding: rendered, as: UTF8.self))
        #expect(again.warnings.isEmpty)
    }

    /// A headless Service whose endpoints declare ports it does not: DNS publishes SRV records
    /// for them, so they become Service ports (same records) instead of being refused or dropped.
    @Test func headlessEndpointPortsBecomeServicePorts() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: db}
            spec: {clusterIP: None}
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: db}
            subsets:
            - addresses: [{ip: 192.0.2.1, hostname: db-0}]
              ports: [{name: pg, port: 5432}, {name: metrics, port: 9187}]
            - addresses: [{ip: 192.0.2.2, hostname: db-1}]
              ports: [{name: pg, port: 5433}]
            """)
        let service = try #require(plan.services.first)
        #expect(service.type == .headless)
        #expect(service.ports.map(\.name) == ["pg", "metrics"] && service.ports.map(\.port) == [5432, 9187])
        #expect(service.addresses.map(\.servedPorts) == [nil, ["pg"]])
        #expect(service.addresses[1].backendPorts(for: service.ports) == [5433, nil])
        // (and the advice that db-1 listens on another port than the Service's, as for any headless Service)
        #expect(plan.warnings.map(\.path) == ["documents[1].subsets[0].ports[0]", "documents[1].subsets[0].ports[1]", "documents[0]"])
        #expect(plan.warnings.allSatisfy { !$0.notKept })
        #expect(plan.warnings[2].message.contains("no port translation"))
    }

    /// Endpoints may give one port name several numbers (the API server allows it; every
    /// (address, port) pair is an endpoint): the same registration as one subset per port.
    @Test func endpointsWithOneNameOnSeveralPortsImportAsOneSubsetPerPort() throws {
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: rgw}\nspec: {ports: [{name: s3, port: 80}]}\n---\n"
        let oneSubset = try importPlan(
            service + """
                apiVersion: v1
                kind: Endpoints
                metadata: {name: rgw}
                subsets: [{addresses: [{ip: 192.0.2.1}, {ip: 192.0.2.2}], ports: [{name: s3, port: 8080}, {name: s3, port: 8081}]}]
                """)
        let subsetPerPort = try importPlan(
            service + """
                apiVersion: v1
                kind: Endpoints
                metadata: {name: rgw}
                subsets:
                - {addresses: [{ip: 192.0.2.1}, {ip: 192.0.2.2}], ports: [{name: s3, port: 8080}]}
                - {addresses: [{ip: 192.0.2.1}, {ip: 192.0.2.2}], ports: [{name: s3, port: 8081}]}
                """)
        let registered = try #require(oneSubset.services.first)
        #expect(registered.addresses.map(\.ip) == ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2"])
        #expect(registered.addresses.map(\.port) == [8080, 8081, 8080, 8081])
        #expect(oneSubset.services == subsetPerPort.services)
        // Not mirrorable (the same addresses on one port name twice): both, and why.
        #expect(registered.endpointsMode == .both && oneSubset.warnings.map(\.path) == ["documents[1]"])
    }

    /// What the API server defaults is taken as defaulted: a targetPort of 0 or "" is the port, a
    /// nodePort of 0 none.
    @Test func defaultedPortFieldsImport() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {ports: [{name: a, port: 80, targetPort: 0, nodePort: 0}, {name: b, port: 81, targetPort: ""}]}
            """)
        #expect(plan.services.first?.ports.map(\.targetPort) == [80, 81] && plan.warnings.isEmpty)
    }

    /// Endpoints beside an ExternalName Service are valid, and unused (DNS answers with a CNAME).
    @Test func endpointsOfAnExternalNameServiceAreAWarning() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: db}
            spec: {type: ExternalName, externalName: db.example.com}
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: db}
            subsets: [{addresses: [{ip: 192.0.2.1}], ports: [{port: 5432}]}]
            """)
        #expect(plan.services.first?.externalName == "db.example.com" && plan.services.first?.addresses == [])
        #expect(plan.warnings.map(\.path) == ["documents[1]"] && plan.warnings[0].notKept)
    }

    /// An EndpointSlice port without number is valid ("not restricted"); kube-proxy ignores it.
    @Test func aSlicePortWithoutNumberIsAWarning() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {ports: [{name: http, port: 80}, {name: https, port: 443}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            endpoints: [{addresses: [192.0.2.1]}]
            ports: [{name: http, port: 8080}, {name: https}]
            """)
        #expect(plan.warnings.map(\.path) == ["documents[1].ports[1].port"])
        #expect(plan.services.first?.addresses.map(\.servedPorts) == [["http"]])
    }

    @Test func kubernetesOwnObjectsAreRefused() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: kubernetes, namespace: default}
            spec: {ports: [{name: https, port: 443, targetPort: 6443}]}
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: kubernetes, namespace: default}
            subsets: [{addresses: [{ip: 192.0.2.9}], ports: [{name: https, port: 6443}]}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {ports: [{port: 80}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-abc, labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io}}
            addressType: IPv4
            endpoints: [{addresses: [192.0.2.1]}]
            ports: [{port: 80}]
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: web, labels: {endpoints.kubernetes.io/managed-by: endpoint-controller}}
            subsets: [{addresses: [{ip: 192.0.2.7}], ports: [{port: 80}]}]
            """)
        #expect(plan.refused.map(\.path) == ["documents[0]", "documents[1]", "documents[3]", "documents[4]"])
        #expect(plan.refused[2].reason.contains("endpointslicemirroring-controller.k8s.io"))
        #expect(plan.refused[3].reason.contains("endpoint-controller"))
        #expect(plan.services.map(\.name) == ["web"])
    }

    @Test func validButUselessIsAWarning() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: a}
            spec: {ports: [{name: web, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP}]}
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: a}
            subsets: [{addresses: [{ip: 10.0.0.1}], ports: [{name: web, port: 8080}, {name: http, port: 80}, {name: dns, port: 53, protocol: TCP}]}]
            """)
        #expect(
            plan.warnings.map(\.path) == [
                "documents[0].spec.ports[0].targetPort", "documents[1].subsets[0].ports[1]", "documents[1].subsets[0].ports[2]",
            ])
        #expect(plan.warnings[2].message.contains("protocol TCP differs"))
        let service = try #require(plan.services.first)
        #expect(service.addresses.map(\.servedPorts) == [["web"]])
    }

    @Test func serviceErrorsNameTheManifestField() throws {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: a}
            spec: {type: NodePort, sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}, ports: [{name: Web, port: 80}]}
            """
        switch ManifestImporter.plan(ManifestDocuments.objects(try ManifestDocuments.parseYAML(yaml))) {
        case .success: Issue.record("invalid")
        case .failure(let failure):
            #expect(
                failure.violations.map(\.field) == [
                    "documents[0].spec.ports[0].name", "documents[0].spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                ])
        }
    }

    @Test func loadBalancerImports() throws {
        let plan = try importPlan(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: lb}
            spec: {type: LoadBalancer, loadBalancerClass: metallb.io/l2, ports: [{port: 80, nodePort: 30080}]}
            """)
        let service = try #require(plan.services.first)
        #expect(service.type == .loadBalancer && service.ports[0].nodePort == 30080 && service.spec.loadBalancerClass == "metallb.io/l2")
    }
}

/// The API server's rules for Endpoints and EndpointSlices (pkg/apis/core/validation
/// `ValidateEndpoints`, pkg/apis/discovery/validation `ValidateEndpointSlice`), reported with the
/// document and field, each root cause once.
@Suite struct ImportKubernetesRuleTests {
    static let service = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{name: web, port: 80}]}\n---\n"
    static func endpoints(_ addresses: String, _ ports: String) -> String {
        service + "apiVersion: v1\nkind: Endpoints\nmetadata: {name: a}\nsubsets: [{addresses: \(addresses), ports: \(ports)}]"
    }
    static func slice(_ body: String) -> String {
        service + "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: a-1, labels: {kubernetes.io/service-name: a}}\n" + body
    }

    @Test(arguments: [
        (slice("endpoints: [{addresses: [10.0.0.1]}]\nports: [{name: web, port: 80}]"), "documents[1].addressType", "Required value"),
        (slice("addressType: IPv5\nendpoints: []\nports: [{name: web, port: 80}]"), "documents[1].addressType", "Unsupported value"),
        (
            slice("addressType: IPv4\nendpoints: [{addresses: ['fd00::1']}]\nports: [{name: web, port: 80}]"),
            "documents[1].endpoints[0].addresses[0]", "must be a valid IPv4 address"
        ),
        (
            slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\nports: [{name: web, port: 80}, {name: web, port: 81}]"),
            "documents[1].ports[1].name", "Duplicate value"
        ),
        (
            slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\nports: [{name: web, port: 80, protocol: HTTP}]"),
            "documents[1].ports[0].protocol", "Unsupported value"
        ),
        (
            slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\nports: [{name: web, port: 70000}]"),
            "documents[1].ports[0].port", "must be between 1 and 65535"
        ),
        (
            service + "apiVersion: v1\nkind: Endpoints\nmetadata: {name: a}\nsubsets: [{ports: [{name: web, port: 80}]}]",
            "documents[1].subsets[0]", "must specify `addresses` or `notReadyAddresses`"
        ),
        // validateEndpointAddress: IP valid and not special, hostname a DNS-1123 label, nodeName a
        // DNS-1123 subdomain; each named at its own document and field.
        (endpoints("[{ip: 10.0.0.300}]", "[{name: web, port: 80}]"), "documents[1].subsets[0].addresses[0].ip", "must be a valid IP address"),
        (
            endpoints("[{ip: 127.0.0.1}]", "[{name: web, port: 80}]"), "documents[1].subsets[0].addresses[0].ip",
            "may not be in the loopback range (127.0.0.0/8, ::1/128)"
        ),
        (
            endpoints("[{ip: 10.0.0.1, hostname: Db_1}]", "[{name: web, port: 80}]"), "documents[1].subsets[0].addresses[0].hostname",
            "a lowercase RFC 1123 label"
        ),
        (
            endpoints("[{ip: 10.0.0.1, nodeName: Node_1}]", "[{name: web, port: 80}]"), "documents[1].subsets[0].addresses[0].nodeName",
            "a lowercase RFC 1123 subdomain"
        ),
        // validateEndpointPort: a name required with several ports, a DNS-1123 label; appProtocol a
        // qualified name.
        (endpoints("[{ip: 10.0.0.1}]", "[{name: web, port: 80}, {port: 81}]"), "documents[1].subsets[0].ports[1].name", "Required value"),
        (endpoints("[{ip: 10.0.0.1}]", "[{name: Web, port: 80}]"), "documents[1].subsets[0].ports[0].name", "a lowercase RFC 1123 label"),
        (endpoints("[{ip: 10.0.0.1}]", "[{name: web}]"), "documents[1].subsets[0].ports[0].port", "Invalid value: 0: must be between 1 and 65535"),
        (
            endpoints("[{ip: 10.0.0.1}]", "[{name: web, port: 80, appProtocol: 'not valid'}]"), "documents[1].subsets[0].ports[0].appProtocol",
            "name part must consist of alphanumeric characters"
        ),
        // ValidateEndpointSlice: 1 to 100 addresses per endpoint, none special; hostname, nodeName,
        // port name and appProtocol as above.
        (
            slice("addressType: IPv4\nendpoints: [{addresses: []}]\nports: [{name: web, port: 80}]"), "documents[1].endpoints[0].addresses",
            "must contain at least 1 address"
        ),
        (
            slice(
                "addressType: IPv4\nendpoints: [{addresses: [\((1...101).map { "10.0.1.\($0)" }.joined(separator: ", "))]}]\nports: [{name: web, port: 80}]"
            ),
            "documents[1].endpoints[0].addresses", "must have at most 100 items"
        ),
        (
            slice("addressType: IPv6\nendpoints: [{addresses: ['fe80::1']}]\nports: [{name: web, port: 80}]"),
            "documents[1].endpoints[0].addresses[0]",
            "may not be in the link-local range"
        ),
        (
            slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], hostname: -x}]\nports: [{name: web, port: 80}]"),
            "documents[1].endpoints[0].hostname", "a lowercase RFC 1123 label"
        ),
        (
            slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: 'node 1'}]\nports: [{name: web, port: 80}]"),
            "documents[1].endpoints[0].nodeName", "a lowercase RFC 1123 subdomain"
        ),
        (
            slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\nports: [{name: Web, port: 80}]"), "documents[1].ports[0].name",
            "a lowercase RFC 1123 label"
        ),
        (
            slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\nports: [{name: web, port: 80, appProtocol: -h2c}]"),
            "documents[1].ports[0].appProtocol", "name part must consist of alphanumeric characters"
        ),
        // The registry's own rule for a value it keeps (a zone is a label value), named where it came from.
        (
            slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], zone: 'eu/west'}]\nports: [{name: web, port: 80}]"),
            "documents[1].endpoints[0].zone", "\"eu/west\""
        ),
        // ValidatePortNumOrName: a named targetPort is an IANA_SVC_NAME.
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{name: web, port: 80, targetPort: '8080'}]}",
            "documents[0].spec.ports[0].targetPort", #"Invalid value: "8080": must contain at least one letter (a-z)"#
        ),
        // validateServiceExternalTrafficPolicy: only for externally-accessible services.
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {externalTrafficPolicy: Local, ports: [{name: web, port: 80}]}",
            "documents[0].spec.externalTrafficPolicy", #"Invalid value: "Local": may only be set for externally-accessible services"#
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: NodePort, allocateLoadBalancerNodePorts: true, ports: [{name: web, port: 80}]}",
            "documents[0].spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}, ports: [{name: web, port: 80}]}",
            "documents[0].spec.sessionAffinityConfig", "must not be set when session affinity is None"
        ),
        // ValidateService: no nodePort on a ClusterIP Service (0 is none).
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{name: web, port: 80, nodePort: 30080}]}",
            "documents[0].spec.ports[0].nodePort", "may not be used when `type` is 'ClusterIP'"
        ),
        // ValidateService: the four types; an unknown one alone (the root cause of the rest).
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: Foo, loadBalancerClass: x.io/y, ports: [{name: web, port: 80, nodePort: 30080}]}",
            "documents[0].spec.type", #"Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#
        ),
    ])
    func rule(yaml: String, field: String, message: String) throws {
        switch ManifestImporter.plan(ManifestDocuments.objects(try ManifestDocuments.parseYAML(yaml))) {
        case .success: Issue.record("the API server refuses this; so must the import")
        case .failure(let failure):
            #expect(failure.violations.map(\.field) == [field], "\(failure.violations)")
            #expect(failure.violations.first?.message.contains(message) == true, "\(failure.violations)")
        }
    }

    /// kube-proxy uses only the first address of a slice endpoint: the others are not made
    /// backends (they would start receiving traffic), and a warning names them; still validated.
    @Test func onlyTheFirstAddressOfASliceEndpointIsRegistered() throws {
        let yaml = Self.slice(
            "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1, 10.0.0.2]}, {addresses: [10.0.0.3]}, {addresses: [10.0.0.4, 10.0.0.5, 10.0.0.6]}]\nports: [{name: web, port: 80}]"
        )
        let plan = try ManifestImporter.plan(ManifestDocuments.objects(try ManifestDocuments.parseYAML(yaml))).get()
        #expect(plan.services.first?.addresses.map(\.ip) == ["10.0.0.1", "10.0.0.3", "10.0.0.4"])
        let warnings = plan.warnings.filter { $0.path.contains(".addresses[") }
        #expect(warnings.map(\.path) == ["documents[1].endpoints[0].addresses[1]", "documents[1].endpoints[2].addresses[1...2]"])
        #expect(warnings.allSatisfy { $0.notKept })
        #expect(warnings.first?.message.contains("10.0.0.2 not kept") == true, "\(warnings)")
        #expect(warnings.last?.message.contains("10.0.0.5, 10.0.0.6 not kept") == true, "\(warnings)")
        // A secondary address the API server refuses still fails the import.
        let invalid = Self.slice("addressType: IPv4\nendpoints: [{addresses: [10.0.0.1, 127.0.0.1]}]\nports: [{name: web, port: 80}]")
        guard case .failure(let failure) = ManifestImporter.plan(ManifestDocuments.objects(try ManifestDocuments.parseYAML(invalid))) else {
            Issue.record("a loopback secondary address was accepted")
            return
        }
        #expect(failure.violations.map(\.field) == ["documents[1].endpoints[0].addresses[1]"])
    }
}

/// The API server's rules for the Service fields an import does not keep (pkg/apis/core/validation
/// `ValidateService`, `ValidateServiceClusterIPsRelatedFields`): cluster IPs, external IPs and the
/// health-check node port. What the cluster refuses, the import refuses, with its message.
@Suite struct ImportServiceAddressRuleTests {
    static func service(_ spec: String) -> String { "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {\(spec)}\n" }

    @Test(arguments: [
        (service("ports: [{port: 80}], clusterIP: 10.0.0.1, clusterIPs: [10.0.0.2]"), "spec.clusterIPs", "first value must match `clusterIP`"),
        (service("ports: [{port: 80}], clusterIPs: [10.0.0.2]"), "spec.clusterIPs", "must be empty when `clusterIP` is not specified"),
        (
            service("ports: [{port: 80}], clusterIP: 10.0.0.300"), "spec.clusterIPs[0]",
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        ),
        (service("ports: [{port: 80}], clusterIP: None, clusterIPs: [None, 10.0.0.1]"), "spec.clusterIPs", "'None' must be the first and only value"),
        (
            service("ports: [{port: 80}], clusterIP: 10.0.0.1, clusterIPs: [10.0.0.1, 10.0.0.2]"), "spec.clusterIPs",
            "may specify no more than one IP for each IP family"
        ),
        (
            service("ports: [{port: 80}], clusterIP: 10.0.0.1, clusterIPs: [10.0.0.1, 'fd00::1', 10.0.0.2]"), "spec.clusterIPs",
            "may only hold up to 2 values"
        ),
        (
            service("ports: [{port: 80}], clusterIP: 10.0.0.1, ipFamilies: [IPv6]"), "spec.clusterIPs[0]",
            "expected an IPv6 value as indicated by `ipFamilies[0]`"
        ),
        (service("type: NodePort, clusterIP: None, ports: [{port: 80}]"), "spec.clusterIP", "may not be set to 'None' for NodePort services"),
        (
            service("type: LoadBalancer, clusterIP: None, ports: [{port: 80}]"), "spec.clusterIP",
            "may not be set to 'None' for LoadBalancer services"
        ),
        (
            service("type: ExternalName, externalName: db.example.com, clusterIP: 10.0.0.1"), "spec.clusterIP",
            "may not be set for ExternalName services"
        ),
        (service("ports: [{port: 80}], externalIPs: [not-an-ip]"), "spec.externalIPs[0]", "must be a valid IP address"),
        (service("ports: [{port: 80}], externalIPs: [127.0.0.1]"), "spec.externalIPs[0]", "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        (service("ports: [{port: 80}], externalIPs: [0.0.0.0]"), "spec.externalIPs[0]", "may not be unspecified (0.0.0.0)"),
        (
            service("ports: [{port: 80}], externalIPs: ['fe80::1']"), "spec.externalIPs[0]",
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        ),
        (
            service("ports: [{port: 80}], externalIPs: [224.0.0.5]"), "spec.externalIPs[0]",
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
        ),
        (
            service("type: NodePort, externalTrafficPolicy: Local, healthCheckNodePort: 30100, ports: [{port: 80}]"), "spec.healthCheckNodePort",
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        ),
        (
            service("type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 70000, ports: [{port: 80}]"), "spec.healthCheckNodePort",
            "must be between 1 and 65535, inclusive"
        ),
    ])
    func rule(yaml: String, field: String, message: String) throws {
        switch ManifestImporter.plan(ManifestDocuments.objects(try ManifestDocuments.parseYAML(yaml))) {
        case .success: Issue.record("the API server refuses this; so must the import")
        case .failure(let failure):
            #expect(failure.violations.map(\.field) == ["documents[0].\(field)"], "\(failure.violations)")
            #expect(failure.violations.first?.message.contains(message) == true, "\(failure.violations)")
        }
    }

    @Test(arguments: [
        service("ports: [{port: 80}], clusterIP: 10.0.0.1"),
        service(
            "ports: [{port: 80}], clusterIP: 10.0.0.1, clusterIPs: [10.0.0.1, 'fd00::1'], ipFamilies: [IPv4, IPv6], ipFamilyPolicy: RequireDualStack"),
        service("ports: [{port: 80}], clusterIP: None, clusterIPs: [None]"),
        service("ports: [{port: 80}], externalIPs: [192.0.2.7, '2001:db8::7']"),
        service("type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 30100, ports: [{port: 80}]"),
    ])
    func valid(yaml: String) throws {
        guard case .success = ManifestImporter.plan(ManifestDocuments.objects(try ManifestDocuments.parseYAML(yaml))) else {
            Issue.record("the API server accepts this; so must the import")
            return
        }
    }
}
