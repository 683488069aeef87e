import Foundation
import PackagePlugin

/// Embeds `migrations/sqlite/*.sql`, `migrations/postgresql/*.sql` and `openapi.yaml` into the target as Swift
/// string literals, so the binary carries its schema and contract wherever it is run from, and
/// the git commit the package was built from (read from `.git` without running git; `unknown`
/// outside a git checkout).
@main
struct EmbedFiles: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let root = context.package.directoryURL
        let migrationsDirectory = root.appending(path: "migrations/sqlite")
        let migrations = try FileManager.default
            .contentsOfDirectory(at: migrationsDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let postgreSQLDirectory = root.appending(path: "migrations/postgresql")
        let postgreSQLMigrations = try FileManager.default
            .contentsOfDirectory(at: postgreSQLDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let openAPI = root.appending(path: "openapi.yaml")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedFiles.swift")
        let commit = GitCommit(root: root)
        return [
            .buildCommand(
                displayName: "Embedding migrations, openapi.yaml and the git commit",
                executable: try context.tool(named: "EmbedFilesTool").url,
                // The tool lists the directories' `.sql` files itself (see EmbedFilesTool).
                arguments: [output.path(), commit.hash, openAPI.path(), migrationsDirectory.path(), postgreSQLDirectory.path()],
                inputFiles: [openAPI, migrationsDirectory, postgreSQLDirectory] + migrations + postgreSQLMigrations + commit.files,
                outputFiles: [output])
        ]
    }
}

/// The commit `HEAD` names, read from the files git keeps (`.git` may be a directory, or a file
/// pointing to a worktree's directory), and those files, so that a new commit re-runs the tool.
struct GitCommit {
    var hash = "unknown"
    var files: [URL] = []

    init(root: URL) {
        let dotGit = root.appending(path: ".git")
        var gitDirectory = dotGit
        var commonDirectory = dotGit
        if let pointer = try? String(contentsOf: dotGit, encoding: .utf8), pointer.hasPrefix("gitdir:") {
            let path = pointer.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespacesAndNewlines)
            gitDirectory = path.hasPrefix("/") ? URL(fileURLWithPath: path) : root.appending(path: path)
            let common = (try? String(contentsOf: gitDirectory.appending(path: "commondir"), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            commonDirectory = common.map { $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : gitDirectory.appending(path: $0) } ?? gitDirectory
        }
        let headFile = gitDirectory.appending(path: "HEAD")
        guard let head = try? String(contentsOf: headFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) else { return }
        files.append(headFile)
        guard head.hasPrefix("ref:") else {
            hash = head
            return
        }
        let reference = head.dropFirst("ref:".count).trimmingCharacters(in: .whitespaces)
        let looseFile = commonDirectory.appending(path: reference)
        if let loose = try? String(contentsOf: looseFile, encoding: .utf8) {
            files.append(looseFile)
            hash = loose.trimmingCharacters(in: .whitespacesAndNewlines)
            return
        }
        let packedFile = commonDirectory.appending(path: "packed-refs")
        if let packed = try? String(contentsOf: packedFile, encoding: .utf8) {
            files.append(packedFile)
            for line in packed.split(separator: "\n") where line.hasSuffix(" " + reference) {
                hash = String(line.prefix { $0 != " " })
            }
        }
    }
}
