import Foundation
import Testing

@testable import RegistryCore

/// Numbers and types are read the same way on every route, as the API server reads them: a
/// value of the wrong JSON type is refused naming its field, never coerced.
@Suite struct InputTypingTests {
    private func importing(_ yaml: String) throws -> Result<ImportPlan, ValidationFailure> {
        ManifestImporter.plan(ManifestDocuments.objects(try ManifestDocuments.parseYAML(yaml)))
    }

    private func fields(_ result: Result<ImportPlan, ValidationFailure>) -> [String] {
        guard case .failure(let failure) = result else { return [] }
        return failure.violations.map(\.field)
    }

    private static let service = """
        apiVersion: v1
        kind: Service
        metadata: {name: db, namespace: NAMESPACE, labels: {team: LABEL}}
        spec:
          type: TYPE
          ports: [{port: PORT}]
        """

    private func manifest(namespace: String = "storage", label: String = "a", type: String = "ClusterIP", port: String = "5432") -> String {
        Self.service.replacingOccurrences(of: "NAMESPACE", with: namespace).replacingOccurrences(of: "LABEL", with: label)
            .replacingOccurrences(of: "TYPE", with: type).replacingOccurrences(of: "PORT", with: port)
    }

    @Test func aValidManifestImports() throws {
        guard case .success(let plan) = try importing(manifest()) else {
            Issue.record("refused")
            return
        }
        #expect(plan.services.map(\.namespace) == ["storage"])
        #expect(plan.services.first?.ports.first?.port == 5432)
    }

    @Test(arguments: [
        (["namespace": "2024"], "documents[0].metadata.namespace", "must be a string, not number (2024)"),
        (["type": "5"], "documents[0].spec.type", "must be a string, not number (5)"),
        (["label": "1"], "documents[0].metadata.labels[team]", "must be a string, not number (1)"),
        (["label": "true"], "documents[0].metadata.labels[team]", "must be a string, not boolean (true)"),
        (["port": "80.0"], "documents[0].spec.ports[0].port", "must be an integer, not number (80.0)"),
        (["port": "0x50"], "documents[0].spec.ports[0].port", "must be an integer, not number (0x50)"),
        (["port": "8_0"], "documents[0].spec.ports[0].port", "must be an integer"),
        (["port": "1e2"], "documents[0].spec.ports[0].port", "must be an integer, not number (1e2)"),
        (["port": "\"80\""], "documents[0].spec.ports[0].port", "must be an integer, not string (\"80\")"),
    ])
    func importRefusesWhatTheAPIServerCannotDecode(values: [String: String], field: String, message: String) throws {
        let result = try importing(
            manifest(
                namespace: values["namespace"] ?? "storage", label: values["label"] ?? "a", type: values["type"] ?? "ClusterIP",
                port: values["port"] ?? "5432"))
        guard case .failure(let failure) = result else {
            Issue.record("accepted \(values)")
            return
        }
        #expect(failure.violations.count == 1, "one root cause, not its knock-on effects: \(failure.violations)")
        #expect(failure.violations.first?.field == field)
        #expect(failure.violations.first?.message.contains(message) == true, "\(failure.violations)")
        #expect(failure.violations.first?.kind == .wrongType)
    }

    @Test func everyTypeErrorOfAnImportIsReportedAtOnce() throws {
        let yaml =
            manifest(namespace: "7", type: "5", port: "80.0") + "\n---\n" + """
                apiVersion: discovery.k8s.io/v1
                kind: EndpointSlice
                metadata: {name: db-1, labels: {kubernetes.io/service-name: db}}
                addressType: IPv4
                ports: [{port: "5432"}]
                endpoints: [{addresses: [10.0.0.1], conditions: {ready: "yes"}}]
                """
        #expect(
            fields(try importing(yaml)).sorted() == [
                "documents[0].metadata.namespace", "documents[0].spec.ports[0].port", "documents[0].spec.type",
                "documents[1].endpoints[0].conditions.ready", "documents[1].ports[0].port",
            ])
    }

    @Test(arguments: ["80.0", "1e2", "8e1", "-0.0"])
    func theJSONAPIRefusesNonIntegerPortsToo(port: String) throws {
        let json = try JSONParser.parse(Array(#"{"name":"a","ports":[{"port":\#(port)}]}"#.utf8))
        guard case .failure(let failure) = ServiceDecoder.decode(json) else {
            Issue.record("port \(port) accepted")
            return
        }
        #expect(failure.violations.map(\.field) == ["ports[0].port"])
    }

    @Test func integersAreReadOneWay() {
        #expect(JSONValue.number("80").intValue == 80)
        #expect(JSONValue.number("-3").intValue == -3)
        #expect(JSONValue.number("0").intValue == 0)
        for text in ["80.0", "1e2", "0x50", "8_0", "+2", "08", "", "-", "99999999999999999999"] {
            #expect(JSONValue.number(text).intValue == nil, "\(text)")
        }
    }
}

/// A hostile body cannot make the list of problems, or the memory behind it, grow with its size.
@Suite struct BoundedValidationTests {
    @Test func addressListsAreBoundedBeforeDecoding() throws {
        let addresses = Array(repeating: "{}", count: 150_000).joined(separator: ",")
        let json = try JSONParser.parse(Array(#"{"name":"a","ports":[{"port":80}],"addresses":[\#(addresses)]}"#.utf8))
        guard case .failure(let failure) = ServiceDecoder.decode(json) else {
            Issue.record("accepted")
            return
        }
        #expect(failure.violations.count == ValidationFailure.maxReported)
        #expect(failure.violations.first == FieldViolation("addresses", .tooMany, "must have at most 100000 items, got 150000"))
        // Only the first 100,000 were decoded (each missing its ip), so the count is bounded too.
        #expect(failure.omitted > 0 && failure.omitted < 2 * ServiceValidator.maxAddresses)
    }

    /// The number of problems is exact when everything was examined, and a lower bound
    /// (`complete == false`) when a list beyond its bound was refused unread; empty addresses
    /// are reported as missing their ip, not also as duplicates of one another.
    @Test(arguments: [(10, 10, true), (100_000, 100_000, true), (100_001, 100_001, false), (150_000, 100_001, false)])
    func theCountOfProblemsIsExactOrALowerBound(addresses count: Int, problems: Int, complete: Bool) throws {
        let addresses = Array(repeating: "{}", count: count).joined(separator: ",")
        let json = try JSONParser.parse(Array(#"{"name":"a","ports":[{"port":80}],"addresses":[\#(addresses)]}"#.utf8))
        guard case .failure(let failure) = ServiceDecoder.decode(json) else {
            Issue.record("accepted")
            return
        }
        #expect(failure.count == problems)
        #expect(failure.complete == complete)
        #expect(!failure.violations.contains { $0.kind == .duplicate })
    }

    @Test func anImportThatStopsLookingForTypeErrorsSaysItsCountIsALowerBound() throws {
        let documents = try ManifestDocuments.parseYAML(
            "kind: List\napiVersion: v1\nitems: ["
                + Array(repeating: "{apiVersion: v1, kind: Service, metadata: {name: 5}}", count: 500).joined(separator: ",") + "]")
        guard case .failure(let failure) = ManifestImporter.plan(ManifestDocuments.objects(documents)) else {
            Issue.record("accepted")
            return
        }
        #expect(!failure.complete)
        #expect(failure.count > ValidationFailure.maxReported && failure.count < 500)
        let few = try ManifestDocuments.parseYAML(
            "kind: List\napiVersion: v1\nitems: ["
                + Array(repeating: "{apiVersion: v1, kind: Service, metadata: {name: 5}}", count: 3).joined(separator: ",")
                + "]")
        guard case .failure(let exact) = ManifestImporter.plan(ManifestDocuments.objects(few)) else {
            Issue.record("accepted")
            return
        }
        #expect(exact.complete && exact.count == 3)
    }

    @Test func labelMapsAreBounded() throws {
        let labels = (0..<500).map { #""k\#($0)":"v""# }.joined(separator: ",")
        let json = try JSONParser.parse(Array(#"{"name":"a","ports":[{"port":80}],"labels":{\#(labels)}}"#.utf8))
        guard case .failure(let failure) = ServiceDecoder.decode(json) else {
            Issue.record("accepted")
            return
        }
        #expect(failure.violations == [FieldViolation("labels", .tooMany, "must have at most 100 entries, got 500")])
    }

    @Test func importsOfManyEmptyObjectsReportABoundedList() throws {
        let yaml = "[" + Array(repeating: "{}", count: 20_000).joined(separator: ",") + "]"
        let documents = try ManifestDocuments.parseYAML("kind: List\napiVersion: v1\nitems: " + yaml)
        guard case .failure(let failure) = ManifestImporter.plan(ManifestDocuments.objects(documents)) else {
            Issue.record("accepted")
            return
        }
        #expect(failure.violations.count == ValidationFailure.maxReported)
        #expect(failure.omitted == 20_000 - ValidationFailure.maxReported)
    }
}
