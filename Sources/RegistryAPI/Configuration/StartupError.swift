import Foundation
import RegistryStorage

/// Why `endpoint-registry serve` could not start, as a sentence a person can act on.
public enum StartupError: Error, Sendable, CustomStringConvertible {
    /// The directory that should hold the database could not be created.
    case databaseDirectory(path: String, reason: String)
    /// The database could not be opened, checked or migrated.
    case database(path: String, any Error)
    case tokens(String)
    case kubeconfig(String)
    /// The listening socket could not be opened.
    case listen(String)
    /// Settings that only make sense together with what was loaded (e.g. cluster names).
    case configuration(ConfigurationError)

    public var description: String {
        switch self {
        case .databaseDirectory(let path, let reason):
            "cannot create the database directory \(path): \(reason); choose another --database path or fix the permissions"
        case .database(let path, let error):
            "cannot use the database \(path): \(error)"
        case .tokens(let message): message
        case .kubeconfig(let message): message
        case .listen(let message): message
        case .configuration(let error): error.description
        }
    }

    /// Creates the directory of `databasePath` and its parents (like `mkdir -p`), reporting the
    /// first one that cannot be made with the system's reason (`Permission denied`, `Not a
    /// directory`, `Read-only file system`, …).
    static func createDirectory(for databasePath: String) throws(StartupError) {
        let directory = URL(fileURLWithPath: databasePath).deletingLastPathComponent().path
        var current = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            current += "/" + component
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: current, isDirectory: &isDirectory) {
                guard isDirectory.boolValue else { throw .databaseDirectory(path: directory, reason: "\(current) is a file, not a directory") }
                continue
            }
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw .databaseDirectory(path: directory, reason: String(cString: strerror(errno)))
            }
        }
    }
}
