/// Files compiled into the binary by the `EmbedFiles` build plugin, so that the service finds
/// its schema migrations and its OpenAPI contract wherever it is started from.
public enum RegistryResources {
    /// The contents of the top-level `openapi.yaml`.
    public static var openAPIDocument: String { GeneratedFiles.openAPI }

    /// The `migrations/sqlite/*.sql` files, sorted by file name.
    public static var migrations: [(name: String, sql: String)] { GeneratedFiles.migrations }

    /// The `migrations/postgresql/*.sql` files (the same schema for PostgreSQL, numbered as
    /// SQLite's), sorted by file name.
    public static var postgreSQLMigrations: [(name: String, sql: String)] { GeneratedFiles.postgreSQLMigrations }

    /// The git commit the binary was built from (40 hex digits), or `unknown` when it was built
    /// outside a git checkout.
    public static var commit: String { GeneratedFiles.commit }

    /// The release version: `info.version` of `openapi.yaml`, the one place it is written, so
    /// that the binary and its contract cannot disagree.
    public static let version: String = {
        var inInfo = false
        for line in GeneratedFiles.openAPI.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "info:" {
                inInfo = true
            } else if inInfo, line.hasPrefix("  version:") {
                return line.dropFirst("  version:".count).trimmingCharacters(in: " \"'")
            } else if inInfo, !line.hasPrefix(" "), !line.isEmpty {
                break
            }
        }
        return "unknown"
    }()
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
