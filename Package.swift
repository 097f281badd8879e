// swift-tools-version:6.0
import PackageDescription

// No Swift package dependencies: only system C libraries (hiredis, libpq, OpenSSL) and glibc.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // The layers are separate modules; full cross-module optimization lets the hot paths (JSON,
    // HTTP, WebSocket, the loop) inline across them as they did inside one module.
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

// The layers of Sources/Shared, lowest first: each is a target in Sources/Shared/<name> and may only
// depend on layers listed before it (and on C modules). scripts/check-layers checks every import
// against this list; `Shared` (Sources/Shared/Umbrella) re-exports them all.
let layers: [(name: String, dependencies: [String])] = [
    ("Runtime", ["CLinux"]),
    ("JSON", []),
    ("Support", ["Runtime", "JSON"]),
    ("Security", ["COpenSSL", "Runtime", "JSON", "Support"]),
    ("SocketIO", ["JSON"]),
    ("HTTP", ["Runtime", "JSON", "Support", "Security"]),
    ("WebSocket", ["Runtime", "HTTP", "Security"]),
    ("Redis", ["CHiredis", "CLinux", "COpenSSL", "Runtime", "JSON", "Support", "Security"]),
    ("Postgres", ["CLibPQ", "Runtime", "Support"]),
    ("API", ["Runtime", "JSON", "Support", "Security", "HTTP", "Redis", "Postgres"]),
    ("RateLimit", ["Runtime", "JSON", "Support", "Security", "HTTP", "Redis", "API"]),
    ("Chat", ["Runtime", "JSON", "Support", "Security", "HTTP", "Redis", "Postgres", "API"]),
    ("Service", ["CLinux", "Runtime", "JSON", "Support", "Security", "HTTP", "Redis", "Postgres", "API", "RateLimit"]),
]

/// What a program or test target depending on the shared code lists: the umbrella and, directly,
/// every layer (so a change in a layer rebuilds the dependents; the re-export alone does not).
let shared: [Target.Dependency] = ["Shared"] + layers.map { .target(name: $0.name) }

let package = Package(
    name: "SwiftChat",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "Gateway", targets: ["Gateway"]),
        .executable(name: "MessageWorker", targets: ["MessageWorker"]),
        .executable(name: "WebSocketEcho", targets: ["WebSocketEcho"]),
        .executable(name: "ChatLoad", targets: ["ChatLoad"]),
        .library(name: "Shared", targets: ["Shared"]),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLinux"),
    ] + layers.map { layer in
        .target(name: layer.name, dependencies: layer.dependencies.map { .target(name: $0) },
                path: "Sources/Shared/\(layer.name)", swiftSettings: strict)
    } + [
        .target(name: "Shared", dependencies: layers.map { .target(name: $0.name) },
                path: "Sources/Shared/Umbrella", swiftSettings: strict),
        .executableTarget(
            name: "Gateway", dependencies: shared,
            resources: [
                .embedInCode("Resources/openapi.yaml"),
                // The web client (issue 15), served at /app/ when WEB_APP=on.
                .embedInCode("Resources/app/index.html"), .embedInCode("Resources/app/app.js"), .embedInCode("Resources/app/app.css"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "MessageWorker", dependencies: shared, swiftSettings: strict),
        .executableTarget(name: "WebSocketEcho", dependencies: shared, swiftSettings: strict),
        .executableTarget(name: "ChatLoad", dependencies: shared, swiftSettings: strict),
        .testTarget(name: "SharedTests", dependencies: shared, swiftSettings: strict),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway"] + shared, swiftSettings: strict),
        .testTarget(name: "IntegrationTests", dependencies: shared, swiftSettings: strict),
        .testTarget(name: "MessageWorkerTests", dependencies: ["MessageWorker"] + shared, swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
