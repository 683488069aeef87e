/// How the service is exposed inside the cluster.
public enum ServiceType: String, Sendable, CaseIterable {
    /// A virtual IP that kube-proxy balances over the addresses.
    case clusterIP = "ClusterIP"
    /// No virtual IP (`clusterIP: None`): DNS returns the addresses themselves.
    case headless = "Headless"
    /// A DNS CNAME to `externalName`; no addresses.
    case externalName = "ExternalName"
    /// A cluster IP plus a port on every node (`nodePort`).
    case nodePort = "NodePort"
    /// A NodePort service that a load-balancer implementation (cloud, MetalLB) exposes.
    case loadBalancer = "LoadBalancer"

    /// NodePort and LoadBalancer: reachable from outside the cluster
    /// (kubernetes pkg/api/service/util.go `ExternallyAccessible`).
    public var isExternallyAccessible: Bool { self == .nodePort || self == .loadBalancer }
    /// Types with a virtual IP that kube-proxy translates ports for.
    public var hasClusterIP: Bool { self == .clusterIP || isExternallyAccessible }
}

/// Which endpoint objects a service renders to.
public enum EndpointsMode: String, Sendable, CaseIterable {
    /// A `v1 Endpoints` object (deprecated since Kubernetes 1.33; mirrored to slices by the cluster).
    case endpoints
    /// `discovery.k8s.io/v1 EndpointSlice`s, what kube-proxy reads.
    case endpointslices
    /// Both; the Endpoints carries `endpointslice.kubernetes.io/skip-mirror: "true"`.
    case both
}

/// Transport protocol of a port.
public enum PortProtocol: String, Sendable, CaseIterable {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"
}

/// A port of the Service. `targetPort` is the backend port used for addresses that do not
/// override it.
public struct ServicePort: Sendable, Equatable {
    public var name: String?
    public var `protocol`: PortProtocol
    public var port: Int
    public var targetPort: Int
    public var appProtocol: String?
    /// NodePort and LoadBalancer only: the port on every node (nil: allocated by the cluster).
    public var nodePort: Int?

    public init(
        name: String? = nil, protocol: PortProtocol = .tcp, port: Int, targetPort: Int? = nil, appProtocol: String? = nil, nodePort: Int? = nil
    ) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
        self.targetPort = targetPort ?? port
        self.appProtocol = appProtocol
        self.nodePort = nodePort
    }
}

/// One backend of the service: an IP, or a DNS name (`host`) the registry resolves, optionally
/// with its own backend port(s).
public struct EndpointAddress: Sendable, Equatable {
    /// Canonical text form (see `IPAddress`) when the address parses; the text as given
    /// otherwise (validation then reports it). Setting it parses it again. Empty for an address
    /// given by `host` as registered; set to one resolved IP in the addresses `resolvingHosts`
    /// expands it to.
    public var ip: String {
        didSet { parsedIP = Result { () throws(IPAddress.ParseError) in try IPAddress(parsing: ip) } }
    }
    /// The address parsed once, when the value is made (or `ip` set), so that validation,
    /// ordering and rendering never parse it again.
    public private(set) var parsedIP: Result<IPAddress, IPAddress.ParseError>
    /// Backend port for a single-port service, overriding the port's `targetPort`.
    public var port: Int?
    /// `false` keeps the address registered but drained (not-ready).
    public var ready: Bool
    /// The fields most addresses leave out, in one shared immutable box (nil when all are nil):
    /// copying or destroying an address then costs two reference counts (`ip`'s and the box's)
    /// instead of six. The addresses of a service are copied a chunk at a time when one is
    /// added or removed (see `EndpointAddressList`), and released as such when a revision is
    /// dropped: measured, most of the element copies' cost was these fields' reference counts.
    private var rare: RareFields?

    /// Backend port per service port name, for multi-port services.
    public var ports: [String: Int]? {
        get { rare?.values.ports }
        set { updateRare { $0.ports = newValue } }
    }
    public var hostname: String? {
        get { rare?.values.hostname }
        set { updateRare { $0.hostname = newValue } }
    }
    public var zone: String? {
        get { rare?.values.zone }
        set { updateRare { $0.zone = newValue } }
    }
    /// The names of the service ports this address serves, in any order; nil: every port.
    public var servedPorts: [String]? {
        get { rare?.values.servedPorts }
        set { updateRare { $0.servedPorts = newValue } }
    }
    /// Issue 13: a DNS-1123 subdomain whose A and AAAA records are the addresses (instead of
    /// `ip`, which is then empty). Rendered as the IPs it currently resolves to.
    public var host: String? {
        get { rare?.values.host }
        set { updateRare { $0.host = newValue } }
    }

    /// The optional fields besides `port`, all nil by default.
    struct RareValues: Sendable, Equatable {
        var ports: [String: Int]?
        var hostname: String?
        var zone: String?
        var servedPorts: [String]?
        var host: String?

        var isEmpty: Bool { ports == nil && hostname == nil && zone == nil && servedPorts == nil && host == nil }
    }

    /// `RareValues` behind one reference; never changed once made (a change makes a new box).
    final class RareFields: Sendable {
        let values: RareValues
        init(_ values: RareValues) { self.values = values }

        /// A box for `values`, nil when every field is nil.
        static func make(_ values: RareValues) -> RareFields? { values.isEmpty ? nil : RareFields(values) }
    }

    private mutating func updateRare(_ change: (inout RareValues) -> Void) {
        var values = rare?.values ?? RareValues()
        change(&values)
        rare = RareFields.make(values)
    }

    /// Whether the two addresses' rarely set fields are equal (the same box, or equal values).
    private static func sameRare(_ lhs: RareFields?, _ rhs: RareFields?) -> Bool {
        lhs === rhs || (lhs?.values ?? RareValues()) == (rhs?.values ?? RareValues())
    }

    public init(
        ip: String, port: Int? = nil, ports: [String: Int]? = nil, hostname: String? = nil, zone: String? = nil,
        ready: Bool = true, servedPorts: [String]? = nil, host: String? = nil
    ) {
        let parsed = Result { () throws(IPAddress.ParseError) in try IPAddress(parsing: ip) }
        self.parsedIP = parsed
        switch parsed {
        // IPv4 text that parses is canonical already (four decimal parts without leading zeros).
        case .success(let address) where address.family == .ipv4: self.ip = ip
        case .success(let address): self.ip = address.description
        case .failure: self.ip = ip
        }
        self.port = port
        self.ready = ready
        self.rare = RareFields.make(RareValues(ports: ports, hostname: hostname, zone: zone, servedPorts: servedPorts, host: host))
    }

    /// An address given by DNS name, as registered (no IP yet).
    public init(
        host: String, port: Int? = nil, ports: [String: Int]? = nil, hostname: String? = nil, zone: String? = nil, ready: Bool = true,
        servedPorts: [String]? = nil
    ) {
        self.init(ip: "", port: port, ports: ports, hostname: hostname, zone: zone, ready: ready, servedPorts: servedPorts, host: host)
    }

    /// Equal when every field given is: `parsedIP` is left out, being computed from `ip` alone
    /// (comparing the parse results cost more than the rest of the address).
    public static func == (lhs: EndpointAddress, rhs: EndpointAddress) -> Bool {
        same(lhs, rhs)
    }

    /// `==` on borrowed values.
    public static func same(_ lhs: borrowing EndpointAddress, _ rhs: borrowing EndpointAddress) -> Bool {
        lhs.ip == rhs.ip && lhs.port == rhs.port && lhs.ready == rhs.ready && sameRare(lhs.rare, rhs.rare)
    }

    /// `addresses[index] == other`, reading the element's fields in place: copying a whole
    /// address out of the array (a retain and release per field) cost more than comparing it.
    public static func same(_ addresses: [EndpointAddress], _ index: Int, _ other: borrowing EndpointAddress) -> Bool {
        addresses[index].ip == other.ip && addresses[index].port == other.port && addresses[index].ready == other.ready
            && sameRare(addresses[index].rare, other.rare)
    }

    /// `lhs[left] == rhs[right]`, reading both elements' fields in place (see
    /// `same(_:_:_:)`): for comparing two address lists element by element.
    public static func same(_ lhs: [EndpointAddress], _ left: Int, _ rhs: [EndpointAddress], _ right: Int) -> Bool {
        lhs[left].ip == rhs[right].ip && lhs[left].port == rhs[right].port && lhs[left].ready == rhs[right].ready
            && sameRare(lhs[left].rare, rhs[right].rare)
    }

    /// Whether this is an address given by `host` that has not been expanded to an IP: it
    /// renders nothing by itself.
    public var isUnresolvedHost: Bool { host != nil && ip.isEmpty }

    /// Whether this address serves `servicePort`.
    public func serves(_ servicePort: ServicePort) -> Bool {
        guard let servedPorts else { return true }
        return servicePort.name.map(servedPorts.contains) ?? false
    }

    /// The same address without overrides that repeat the default (`targetPort`): the stored
    /// form, so that equal meanings have one spelling and imports round-trip exactly.
    public func normalized(for servicePorts: [ServicePort]) -> EndpointAddress {
        var address = self
        address.normalize(for: servicePorts)
        return address
    }

    /// `self = normalized(for: servicePorts)`, in place (no copy of the address).
    public mutating func normalize(for servicePorts: [ServicePort]) {
        guard port == nil || ports == nil else { return }  // invalid: left for validation to report
        if servicePorts.count == 1, port == servicePorts[0].targetPort { port = nil }
        guard let values = rare?.values, values.ports != nil || values.servedPorts != nil else { return }
        // One new box for both fields (most addresses have neither: no box, nothing to do).
        updateRare { values in
            if var ports = values.ports {
                for servicePort in servicePorts {
                    if let name = servicePort.name, ports[name] == servicePort.targetPort { ports[name] = nil }
                }
                values.ports = ports.isEmpty ? nil : ports
            }
            if let served = values.servedPorts {
                let all = Set(servicePorts.compactMap(\.name))
                values.servedPorts = Set(served) == all && served.count == all.count && all.count == servicePorts.count ? nil : served.sorted()
            }
        }
    }

    /// The backend port this address serves for each of `servicePorts`, in their order; nil for
    /// a port it does not serve (`servedPorts`).
    public func backendPorts(for servicePorts: [ServicePort]) -> [Int?] {
        servicePorts.map { servicePort in
            guard serves(servicePort) else { return nil }
            if servicePorts.count == 1, let port { return port }
            if let name = servicePort.name, let override = ports?[name] { return override }
            return servicePort.targetPort
        }
    }
}

/// The user-supplied description of an external service, identified by namespace and name.
public struct ExternalService: Sendable, Equatable {
    public static let defaultNamespace = "default"

    public var namespace: String
    public var name: String
    public var description: String?
    public var labels: [String: String]
    public var annotations: [String: String]
    public var type: ServiceType
    public var externalName: String?
    public var ports: [ServicePort]
    public var addresses: EndpointAddressList
    public var endpointsMode: EndpointsMode
    /// The clusters (names as in `GET /v1/clusters`) the reconciler keeps this service's
    /// objects in; sorted, without duplicates. Empty: none.
    public var clusters: [String]
    // MARK: Service spec fields (issue 12; see ServiceSpecFields.swift)
    public var spec = ServiceSpecFields()
    /// Liveness (issue 13): how each address is checked; `nil`: addresses are ready as registered.
    public var healthCheck: HealthCheck?
    /// Issue 13: longest time in seconds between two resolutions of each `host` address (a
    /// shorter record TTL makes it sooner, see `DNSSettings`); nil: `DNSSettings.defaultRefreshSeconds`.
    public var dnsRefreshSeconds: Int?
    /// Issue 13: seconds a `host` that no longer exists (NXDOMAIN) keeps its last resolved
    /// addresses; nil: `DNSSettings.defaultGraceSeconds`.
    public var dnsGraceSeconds: Int?

    public init(
        namespace: String = ExternalService.defaultNamespace, name: String, description: String? = nil,
        labels: [String: String] = [:], annotations: [String: String] = [:], type: ServiceType = .clusterIP,
        externalName: String? = nil, ports: [ServicePort] = [], addresses: EndpointAddressList = [],
        endpointsMode: EndpointsMode = .both, clusters: [String] = [], healthCheck: HealthCheck? = nil
    ) {
        self.namespace = namespace
        self.name = name
        self.description = description
        self.labels = labels
        self.annotations = annotations
        self.type = type
        self.externalName = externalName
        self.ports = ports
        self.addresses = addresses
        self.endpointsMode = endpointsMode
        self.clusters = clusters
        self.healthCheck = healthCheck
    }
}

extension ExternalService {
    /// Brings the service to its stored form: address overrides equal to the default dropped,
    /// addresses in (IP, backend ports) order, and the endpoints mode of an ExternalName
    /// service (which has no endpoints) at its default. Equal meanings get one spelling, so
    /// that rendering and importing again gives back the same registration.
    public mutating func normalize() {
        let ports = self.ports
        addresses.updateEach { $0.normalize(for: ports) }
        // A stable sort; most lists come in order already, and are then left as they are.
        if !addresses.isSorted(by: { Self.precedes($0, $1, ports: ports) }) {
            var sorted = Array(addresses)
            sorted.sort { Self.precedes($0, $1, ports: ports) }
            addresses = EndpointAddressList(sorted)
        }
        normalizeAllButAddresses()
    }

    /// The order of `normalize()`: by IP (addresses given by `host`, which have none, last, by
    /// host), then by backend ports (computed only for equal IPs or hosts).
    static func precedes(_ lhs: EndpointAddress, _ rhs: EndpointAddress, ports: [ServicePort]) -> Bool {
        switch (lhs.parsedIP, rhs.parsedIP) {
        case (.success(let left), .success(let right)) where left != right: return left < right
        case (.failure, .success): return false
        case (.success, .failure): return true
        case (.failure, .failure) where lhs.host != rhs.host: return (lhs.host ?? "") < (rhs.host ?? "")
        default:
            return lhs.backendPorts(for: ports).map { $0 ?? 0 }.lexicographicallyPrecedes(rhs.backendPorts(for: ports).map { $0 ?? 0 })
        }
    }

    /// The indices of the addresses with the same target as `address`: the same IP or, for one
    /// given by `host`, the same host, whatever their backend ports. In the stored order
    /// (`normalize()`, which the service must be in) they are next to each other, so two binary
    /// searches find them: O(log n) comparisons instead of a pass over every address.
    public func sameTargetIndices(as address: EndpointAddress) -> Range<Int> {
        var low = 0
        var high = addresses.count
        while low < high {
            let middle = (low + high) / 2
            if Self.targetPrecedes(addresses[middle], address) { low = middle + 1 } else { high = middle }
        }
        let start = low
        high = addresses.count
        while low < high {
            let middle = (low + high) / 2
            if Self.targetPrecedes(address, addresses[middle]) { high = middle } else { low = middle + 1 }
        }
        return start..<low
    }

    /// `precedes` without the backend ports: by IP, addresses given by `host` last, by host.
    static func targetPrecedes(_ lhs: borrowing EndpointAddress, _ rhs: borrowing EndpointAddress) -> Bool {
        switch (lhs.parsedIP, rhs.parsedIP) {
        case (.success(let left), .success(let right)): left < right
        case (.failure, .success): false
        case (.success, .failure): true
        case (.failure, .failure): (lhs.host ?? "") < (rhs.host ?? "")
        }
    }

    /// Adds `address` to a service in its stored form (`normalize()` applied, as every stored
    /// service is) and brings the result to its stored form: the same service as appending the
    /// address and calling `normalize()`, but the other addresses are neither normalized again
    /// nor re-sorted (a binary search finds the place; ties go after their equals, as the stable
    /// sort of `normalize()` leaves them). O(log n) comparisons plus the array insertion.
    public mutating func insertNormalized(_ address: EndpointAddress) {
        let ports = self.ports
        var normalized = address
        normalized.normalize(for: ports)
        var low = 0
        var high = addresses.count
        while low < high {
            let middle = (low + high) / 2
            if Self.precedes(normalized, addresses[middle], ports: ports) {
                high = middle
            } else {
                low = middle + 1
            }
        }
        addresses.insert(normalized, at: low)
        normalizeAllButAddresses()
    }

    /// The part of `normalize()` that does not touch the addresses (some of it reads them).
    private mutating func normalizeAllButAddresses() {
        if type == .externalName { endpointsMode = .both }
        clusters = Array(Set(clusters)).sorted()
        if var check = healthCheck, check.type != .tcp {
            check.path = check.path ?? "/"
            check.expectedStatuses = check.expectedStatuses ?? HealthCheck.defaultExpectedStatuses
            healthCheck = check
        }
        normalizeSpecFields()
        normalizeDNSFields()
    }

    /// Issue 13: `dnsRefreshSeconds`/`dnsGraceSeconds` equal to their defaults are stored as absent.
    mutating func normalizeDNSFields() {
        if dnsRefreshSeconds == DNSSettings.defaultRefreshSeconds { dnsRefreshSeconds = nil }
        if dnsGraceSeconds == DNSSettings.defaultGraceSeconds { dnsGraceSeconds = nil }
    }

    /// Issue-12 spec fields: values equal to the defaults are stored as absent, so that a
    /// rendering (which writes the defaults out) imports back to the same registration. That
    /// includes IP families equal to what would be chosen from the addresses.
    mutating func normalizeSpecFields() {
        if spec.internalTrafficPolicy == .cluster { spec.internalTrafficPolicy = nil }
        if spec.externalTrafficPolicy == .cluster { spec.externalTrafficPolicy = nil }
        if spec.allocateLoadBalancerNodePorts == true { spec.allocateLoadBalancerNodePorts = nil }
        if spec.sessionAffinityTimeoutSeconds == ServiceSpecFields.defaultSessionAffinityTimeoutSeconds {
            spec.sessionAffinityTimeoutSeconds = nil
        }
        if spec.ipFamilyPolicy != nil || !spec.ipFamilies.isEmpty {
            var automatic = self
            automatic.spec.ipFamilyPolicy = nil
            automatic.spec.ipFamilies = []
            let derived = ManifestRenderer.ipFamilies(automatic)
            if derived.policy == spec.ipFamilyPolicy && derived.families == spec.ipFamilies {
                spec.ipFamilyPolicy = nil
                spec.ipFamilies = []
            }
        }
    }
}

/// A stored service with the fields the server manages.
///
/// A value type kept in one copy-on-write box: a record is handed from the HTTP worker to the
/// commit queue, the record cache, the history and the answer, and each hand-over is a copy; with
/// its fields behind one reference, a copy is one reference count instead of one per string,
/// array and dictionary of the service (~30). Reads borrow the boxed field (`_read`), writes
/// copy the box only when it is shared (`_modify`). The accessors are `@inlinable` (and the box
/// `@usableFromInline`): a call through a non-inlined accessor from another module copied the
/// whole `ExternalService` out of the box to read one of its fields.
public struct ServiceRecord: Sendable, Equatable {
    /// The fields of a record. Mutated only through `ServiceRecord`'s `_modify` accessors after
    /// `isKnownUniquelyReferenced` has confirmed (or a fresh copy has made) this box the only
    /// reference: no box reachable from two records, and therefore from two threads, is ever
    /// written, which is why the `@unchecked Sendable` below is safe (the same rule as the
    /// standard library's array storage). Every field is itself `Sendable`.
    @usableFromInline final class Storage: @unchecked Sendable {
        @usableFromInline var service: ExternalService
        @usableFromInline var uid: String
        @usableFromInline var revision: Int
        @usableFromInline var createdAt: String
        @usableFromInline var updatedAt: String

        @usableFromInline init(service: ExternalService, uid: String, revision: Int, createdAt: String, updatedAt: String) {
            self.service = service
            self.uid = uid
            self.revision = revision
            self.createdAt = createdAt
            self.updatedAt = updatedAt
        }

        @usableFromInline func copy() -> Storage {
            Storage(service: service, uid: uid, revision: revision, createdAt: createdAt, updatedAt: updatedAt)
        }
    }

    @usableFromInline var storage: Storage

    /// The box, made this record's own before a write.
    @inlinable var uniqueStorage: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
            return storage
        }
    }

    @inlinable public var service: ExternalService {
        _read { yield storage.service }
        _modify { yield &uniqueStorage.service }
    }
    /// Stable identity of this registration (a new one after delete and re-create).
    @inlinable public var uid: String {
        _read { yield storage.uid }
        _modify { yield &uniqueStorage.uid }
    }
    /// 1 on creation, +1 on every change.
    @inlinable public var revision: Int {
        get { storage.revision }
        _modify { yield &uniqueStorage.revision }
    }
    /// RFC 3339 UTC timestamps.
    @inlinable public var createdAt: String {
        _read { yield storage.createdAt }
        _modify { yield &uniqueStorage.createdAt }
    }
    @inlinable public var updatedAt: String {
        _read { yield storage.updatedAt }
        _modify { yield &uniqueStorage.updatedAt }
    }

    public init(service: ExternalService, uid: String, revision: Int, createdAt: String, updatedAt: String) {
        storage = Storage(service: service, uid: uid, revision: revision, createdAt: createdAt, updatedAt: updatedAt)
    }

    /// The same record with the service, revision and update time of a write: one new box,
    /// without first copying the fields it replaces.
    public func replacing(service: ExternalService, revision: Int, updatedAt: String) -> ServiceRecord {
        ServiceRecord(service: service, uid: uid, revision: revision, createdAt: createdAt, updatedAt: updatedAt)
    }

    public static func == (lhs: ServiceRecord, rhs: ServiceRecord) -> Bool {
        if lhs.storage === rhs.storage { return true }
        return lhs.revision == rhs.revision && lhs.uid == rhs.uid && lhs.createdAt == rhs.createdAt
            && lhs.updatedAt == rhs.updatedAt && lhs.service == rhs.service
    }

    /// Strong entity tag of this revision: changes with every write and across re-creation.
    public var etag: String { ServiceRecord.etag(revision: revision, uid: uid) }

    /// The entity tag of a revision of a registration, without decoding it.
    public static func etag(revision: Int, uid: String) -> String { "\"\(revision)-\(uid.prefix(8))\"" }
}
