import Foundation
import HTTPServer
import Logging
import RegistryAPI
import RegistryResources
import TestSupport
import Testing
import Yams

/// `openapi.yaml`, the router and the served document agree.
@Suite struct ContractTests {
    private func documentedOperations() throws -> Set<String> {
        let text = try String(contentsOf: Paths.openAPI, encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var operations = Set<String>()
        for (path, item) in paths {
            for (method, operation) in (item as? [String: Any]) ?? [:]
            where ["get", "put", "post", "patch", "delete", "head", "options"].contains(method) {
                let operationID = (operation as? [String: Any])?["operationId"] as? String ?? "?"
                operations.insert("\(method.uppercased()) \(path) \(operationID)")
            }
        }
        return operations
    }

    @Test func everyDocumentedOperationIsRoutedAndEveryRouteIsDocumented() throws {
        let server = try TestServer()
        let routes = server.service.application.router.routes
        // HEAD is served on every GET route (documented as `<operationId>Head`).
        let routed = Set(routes.map { "\($0.method) \($0.template) \($0.operationID)" })
            .union(routes.filter { $0.method == "GET" }.map { "HEAD \($0.template) \($0.operationID)Head" })
        let documented = try documentedOperations()
        #expect(documented.subtracting(routed).isEmpty, "documented but not routed: \(documented.subtracting(routed).sorted())")
        #expect(routed.subtracting(documented).isEmpty, "routed but not documented: \(routed.subtracting(documented).sorted())")
    }

    @Test func servesTheDocumentOfTheRepository() throws {
        let server = try TestServer()
        let response = try server.client().request("GET", "/openapi.yaml")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/yaml")
        #expect(response.text == (try String(contentsOf: Paths.openAPI, encoding: .utf8)))
    }

    @Test func everyDocumentedQueryParameterIsAccepted() throws {
        let server = try TestServer()
        let text = try String(contentsOf: Paths.openAPI, encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        let shared = ((document["components"] as? [String: Any])?["parameters"] as? [String: Any]) ?? [:]
        func resolve(_ parameter: [String: Any]) -> [String: Any] {
            guard let reference = parameter["$ref"] as? String else { return parameter }
            return (shared[String(reference.split(separator: "/").last ?? "")] as? [String: Any]) ?? [:]
        }
        for route in server.service.application.router.routes {
            let operation = ((paths[route.template] as? [String: Any])?[route.method.lowercased()] as? [String: Any]) ?? [:]
            let parameters = ((operation["parameters"] as? [[String: Any]]) ?? []).map(resolve)
            let query = Set(parameters.filter { $0["in"] as? String == "query" }.compactMap { $0["name"] as? String })
            #expect(query == route.queryParameters, "\(route.method) \(route.template)")
        }
    }

    /// Any request can be malformed before its route matters (an encoded `/` or `\\` in the path,
    /// a repeated query parameter or singleton header): every operation documents the 400 it can
    /// then get.
    @Test func everyOperationDocumentsBadRequest() throws {
        let text = try String(contentsOf: Paths.openAPI, encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        for (path, item) in paths {
            for (method, operation) in (item as? [String: Any]) ?? [:] where ["get", "head", "post", "put", "patch", "delete"].contains(method) {
                let responses = ((operation as? [String: Any])?["responses"] as? [String: Any]) ?? [:]
                #expect(responses["400"] != nil, "\(method) \(path) does not document 400")
            }
        }
        // One that used to be missing: a backslash encoded in the path of the health route.
        let server = try TestServer()
        let answer = try server.client().request("GET", "/v1/services/default/a%5Cb/health")
        #expect(answer.status == 400)
    }
}
