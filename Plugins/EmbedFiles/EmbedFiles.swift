import Foundation
import PackagePlugin

/// Embeds the top-level `migrations/*.sql` files and `openapi.yaml` into the target as Swift
/// string literals, so the binary carries its schema and contract wherever it is run from.
@main
struct EmbedFiles: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let root = context.package.directoryURL
        let migrationsDirectory = root.appending(path: "migrations")
        let migrations = try FileManager.default
            .contentsOfDirectory(at: migrationsDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let openAPI = root.appending(path: "openapi.yaml")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding migrations and openapi.yaml",
                executable: try context.tool(named: "EmbedFilesTool").url,
                arguments: [output.path(), openAPI.path()] + migrations.map { $0.path() },
                inputFiles: [openAPI, migrationsDirectory] + migrations,
                outputFiles: [output])
        ]
    }
}
