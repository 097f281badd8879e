// swift-tools-version:6.0
import PackageDescription

// No Swift package dependencies: only system C libraries (hiredis, libpq, OpenSSL) and glibc.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

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
        .target(
            name: "Shared",
            dependencies: ["CHiredis", "CLibPQ", "COpenSSL", "CLinux"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "Gateway", dependencies: ["Shared"],
            resources: [.embedInCode("Resources/openapi.yaml")],
            swiftSettings: strict
        ),
        .executableTarget(name: "MessageWorker", dependencies: ["Shared"], swiftSettings: strict),
        .executableTarget(name: "WebSocketEcho", dependencies: ["Shared"], swiftSettings: strict),
        .executableTarget(name: "ChatLoad", dependencies: ["Shared"], swiftSettings: strict),
        .testTarget(name: "SharedTests", dependencies: ["Shared"], swiftSettings: strict),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "Shared"], swiftSettings: strict),
        .testTarget(name: "IntegrationTests", dependencies: ["Shared"], swiftSettings: strict),
        .testTarget(name: "MessageWorkerTests", dependencies: ["MessageWorker", "Shared"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
