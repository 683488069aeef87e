import ArgumentParser
import Foundation
import RegistryCore

/// One registration read from a file, with the namespace settled.
struct Registration {
    /// `FILE document N` (and `item M`), for messages.
    var place: String
    /// The document as written, with `namespace` filled in when it named none.
    var json: JSONValue
    var input: ServiceInput
    var namespace: String { input.service.namespace }
    var name: String { input.service.name }
}

/// Reads registrations (the API's format, JSON or YAML, several documents per file or
/// `{"items": [...]}`) from files, directories (`.yaml`, `.yml`, `.json`; with `recursive`,
/// their subdirectories too) or `-` (standard input).
enum RegistrationFiles {
    /// Every registration, or every problem (one line each, with its place and field path).
    static func load(_ paths: [String], recursive: Bool, namespace: String?) -> (registrations: [Registration], problems: [String]) {
        var registrations: [Registration] = []
        var problems: [String] = []
        var files: [String] = []
        var visited: Set<String> = []
        for path in paths {
            do {
                files += try expand(path, recursive: recursive, visited: &visited)
            } catch {
                problems.append("\(error)")
            }
        }
        for file in files {
            let text: String
            do {
                text = try read(file)
            } catch {
                problems.append("\(error)")
                continue
            }
            let documents: [JSONValue]
            do {
                documents = try ManifestDocuments.parseYAML(text)
            } catch {
                // "body" is the server's name for the whole input: here that is the file.
                problems += error.violations.map { "\(file): \($0.field.isEmpty || $0.field == "body" ? "" : $0.field + ": ")\($0.message)" }
                continue
            }
            for (index, document) in documents.enumerated() {
                if document == .null { continue }
                var items = [document]
                if case .object(let object) = document, case .array(let listed)? = object["items"], object["name"] == nil { items = listed }
                for (itemIndex, item) in items.enumerated() {
                    let place =
                        items.count > 1 || items.first != document ? "\(file) document \(index) item \(itemIndex)" : "\(file) document \(index)"
                    guard case .object(var object) = item else {
                        problems.append("\(place): a registration must be an object, not \(item.typeName)")
                        continue
                    }
                    if case .string(let kind)? = object["kind"], object["apiVersion"] != nil {
                        problems.append("\(place): a Kubernetes \(kind) manifest, not a registration; use `import -f` for manifests")
                        continue
                    }
                    switch object["namespace"] {
                    case nil, .null?:
                        object["namespace"] = .string(namespace ?? ExternalService.defaultNamespace)
                    case .string(let given)? where namespace != nil && given != namespace:
                        problems.append("\(place): namespace: \"\(given)\" does not match the namespace given with -n (\"\(namespace ?? "")\")")
                        continue
                    default: break
                    }
                    switch ServiceDecoder.decode(.object(object)) {
                    case .success(let input):
                        registrations.append(Registration(place: place, json: .object(object), input: input))
                    case .failure(let failure):
                        problems += failure.violations.map { "\(place): \($0.field.isEmpty ? "" : $0.field + ": ")\($0.message)" }
                    }
                }
            }
        }
        var seen: [String: String] = [:]
        for registration in registrations {
            let key = "\(registration.namespace)/\(registration.name)"
            if let first = seen[key] {
                problems.append("\(registration.place): service \(key) is also in \(first)")
            } else {
                seen[key] = registration.place
            }
        }
        return (registrations, problems)
    }

    /// Fails (exit status 2) when the files hold no registration at all (an empty directory or
    /// input, a directory without `-R` whose files are in subdirectories), as kubectl does.
    static func requireSome(_ registrations: [Registration], _ paths: [String]) throws {
        guard registrations.isEmpty else { return }
        Console.error("error: no registrations in \(paths.joined(separator: ", ")); nothing was done")
        throw ExitCode(ClientExit.failed)
    }

    struct FileError: Error, CustomStringConvertible {
        var description: String
    }

    /// The files a path names: itself, or the registration files of a directory, sorted. A file
    /// or directory already in `visited` (by its path with symbolic links resolved) is left out:
    /// a link to a parent directory does not make `-R` loop, and a file reached twice is read once.
    static func expand(_ path: String, recursive: Bool, visited: inout Set<String>) throws -> [String] {
        if path == "-" { return ["-"] }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw FileError(description: "\(path) does not exist") }
        guard visited.insert(URL(fileURLWithPath: path).resolvingSymlinksInPath().path).inserted else { return [] }
        guard isDirectory.boolValue else { return [path] }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw FileError(description: "\(path) cannot be listed: \(error.localizedDescription)")
        }
        var files: [String] = []
        for entry in entries where !entry.hasPrefix(".") {
            let full = (path as NSString).appendingPathComponent(entry)
            var entryIsDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: full, isDirectory: &entryIsDirectory)
            if entryIsDirectory.boolValue {
                if recursive { files += try expand(full, recursive: true, visited: &visited) }
            } else if [".yaml", ".yml", ".json"].contains(where: { entry.hasSuffix($0) }) {
                files += try expand(full, recursive: false, visited: &visited)
            }
        }
        return files
    }

    static func read(_ file: String) throws -> String {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: file) else { throw FileError(description: "\(file) cannot be read") }
            data = contents
        }
        guard let text = String(data: data, encoding: .utf8) else { throw FileError(description: "\(file) is not UTF-8 text") }
        return text
    }

    /// The canonical YAML of a service as `apply` would leave it (server-managed fields left
    /// out), for `diff`.
    static func canonicalYAML(_ service: ExternalService) -> String {
        let record = ServiceRecord(service: service, uid: "", revision: 0, createdAt: "", updatedAt: "")
        guard case .object(let object) = ServiceEncoder.json(record) else { return "" }
        return Output.yaml([.object(JSONObject(object.members.filter { !Output.serverFields.contains($0.key) }))])
    }
}
