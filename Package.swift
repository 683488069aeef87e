// swift-tools-version: 6.0
import PackageDescription

/// `ENDPOINT_REGISTRY_STRICT=1` (set by `scripts/test`, so by CI) makes every warning in the
/// project's own targets an error; dependencies are not affected.
let strict = Context.environment["ENDPOINT_REGISTRY_STRICT"] == "1"

/// Settings shared by every Swift target: Swift 6 language mode comes from the tools version;
/// these upcoming features keep imports (and so C types) from leaking across module boundaries.
let settings: [SwiftSetting] =
    [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("InternalImportsByDefault"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ] + (strict ? [.unsafeFlags(["-warnings-as-errors"])] : [])

let package = Package(
    name: "EndpointRegistry",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "endpoint-registry", targets: ["EndpointRegistryCLI"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // MARK: C adapters (the only places that see C types)
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CAres", pkgConfig: "libcares", providers: [.apt(["libc-ares-dev"])]),
        .systemLibrary(name: "CTCMalloc", providers: [.apt(["libgoogle-perftools-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .target(name: "CSQLiteWALWrites", dependencies: ["CSQLite"]),

        // MARK: Build-time embedding of migrations/ and openapi.yaml
        .executableTarget(name: "EmbedFilesTool", swiftSettings: settings),
        .plugin(name: "EmbedFiles", capability: .buildTool(), dependencies: ["EmbedFilesTool"]),
        .target(name: "RegistryResources", swiftSettings: settings, plugins: ["EmbedFiles"]),

        // MARK: Libraries
        .target(name: "RegistryCore", dependencies: [.product(name: "Yams", package: "Yams")], swiftSettings: settings),
        .target(
            name: "RegistryStorage",
            dependencies: ["RegistryCore", "CSQLite", "CSQLiteWALWrites", "RegistryResources", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: settings
        ),
        .target(
            name: "PostgresStorage", dependencies: ["CLibPQ", "RegistryStorage", "RegistryResources"], swiftSettings: settings),
        .target(name: "HTTPServer", dependencies: ["CMicroHTTPD"], swiftSettings: settings),
        .target(
            name: "KubernetesClient", dependencies: ["CCurl", "RegistryCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: settings),
        .target(
            name: "Reconciler",
            dependencies: ["RegistryCore", "RegistryStorage", "KubernetesClient", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings),
        .target(
            name: "RegistryClient", dependencies: ["KubernetesClient", "RegistryCore"], swiftSettings: settings),
        .target(
            name: "Liveness",
            dependencies: ["RegistryCore", "RegistryStorage", "CCurl", "CAres", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings),
        .target(
            name: "Coordination",
            dependencies: ["RegistryStorage", "PostgresStorage", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings),
        .target(
            name: "RegistryAPI",
            dependencies: [
                "RegistryCore", "RegistryStorage", "PostgresStorage", "HTTPServer", "RegistryResources", "KubernetesClient", "Reconciler",
                "Liveness", "Coordination",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "EndpointRegistryCLI",
            dependencies: [
                "RegistryAPI", "RegistryCore", "RegistryStorage", "PostgresStorage", "HTTPServer", "RegistryResources", "RegistryClient",
                "KubernetesClient", "CTCMalloc", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["PostgresStorage"], path: "Tests/TestSupport", swiftSettings: settings),
        .testTarget(
            name: "RegistryCoreTests", dependencies: ["RegistryCore", .product(name: "Yams", package: "Yams")], exclude: ["Golden"],
            swiftSettings: settings),
        .testTarget(
            name: "RegistryStorageTests", dependencies: ["RegistryStorage", "RegistryCore", "PostgresStorage", "TestSupport"],
            swiftSettings: settings),
        .testTarget(
            name: "PostgresStorageTests",
            dependencies: [
                "PostgresStorage", "RegistryStorage", "RegistryCore", "RegistryResources", "TestSupport", "Coordination",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings),
        .testTarget(
            name: "CoordinationTests",
            dependencies: ["Coordination", "RegistryStorage", .product(name: "Logging", package: "swift-log")], swiftSettings: settings),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "TestSupport"], swiftSettings: settings),
        .testTarget(
            name: "ReconcilerTests",
            dependencies: [
                "Reconciler", "RegistryCore", "RegistryStorage", "KubernetesClient", "RegistryResources", "Liveness",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings),
        .testTarget(
            name: "LivenessTests",
            dependencies: ["Liveness", "RegistryCore", "RegistryStorage", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings),
        .testTarget(name: "KubernetesClientTests", dependencies: ["KubernetesClient", "RegistryCore", "TestSupport"], swiftSettings: settings),
        .testTarget(
            name: "RegistryAPITests",
            dependencies: [
                "RegistryAPI", "RegistryCore", "RegistryStorage", "HTTPServer", "RegistryResources", "TestSupport",
                "EndpointRegistryCLI", "KubernetesClient", "Liveness", "Reconciler", "Coordination",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: settings
        ),
    ]
)
