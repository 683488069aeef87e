import ArgumentParser

/// The client commands, shared by `endpoint-registry` and the kubectl plugin.
let clientCommands: [any ParsableCommand.Type] = [
    Get.self, Apply.self, Diff.self, Delete.self, Push.self, Status.self, History.self, Manifests.self, Import.self, Clusters.self,
]

/// The binary installed as `kubectl-registry` (on the PATH): `kubectl registry get services`
/// runs it with the arguments after `registry`; its root is the client commands.
struct KubectlRegistry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubectl registry",
        abstract: "The Endpoint Registry's client as a kubectl plugin (the endpoint-registry binary installed as kubectl-registry).",
        version: BuildInfo.line,
        subcommands: clientCommands)

    /// Whether the program was started under the plugin's name (argv[0]).
    static func isPluginName(_ argument0: String) -> Bool {
        argument0.split(separator: "/").last.map(String.init) == "kubectl-registry"
    }
}
