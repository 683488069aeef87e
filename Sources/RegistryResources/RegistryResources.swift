/// Files compiled into the binary by the `EmbedFiles` build plugin, so that the service finds
/// its schema migrations and its OpenAPI contract wherever it is started from.
public enum RegistryResources {
    /// The contents of the top-level `openapi.yaml`.
    public static var openAPIDocument: String { GeneratedFiles.openAPI }

    /// The top-level `migrations/*.sql` files, sorted by file name.
    public static var migrations: [(name: String, sql: String)] { GeneratedFiles.migrations }
}
