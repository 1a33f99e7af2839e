// swift-tools-version: 6.1
import PackageDescription

let strictness: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Referee",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "referee", targets: ["referee"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // GSL, seen only by Statistics.
        .systemLibrary(name: "CGSL", pkgConfig: "gsl", providers: [.apt(["libgsl-dev"])]),
        // Optimised in debug builds too: the test suite's simulations (intervals' coverage, sketches) run millions of draws.
        .target(name: "Statistics", dependencies: ["CGSL"], swiftSettings: strictness + [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // System calls retried on EINTR, for the transport and ingestion alike.
        .target(name: "POSIX", swiftSettings: strictness),
        // JSON values, parsing with limits, canonical serialisation, merge patch, SHA-256. No I/O.
        .target(name: "JSONCore", swiftSettings: strictness),
        // The domain: documents, protocols, lifecycle, targeting, allocation, conflicts. No I/O, no clock.
        .target(name: "Registry", dependencies: ["JSONCore", "Statistics"], swiftSettings: strictness),
        // The control interface's catalog: one type per method (wire name, permission, typed params, result schema,
        // errors), OpenRPC. No I/O.
        .target(name: "API", dependencies: ["JSONCore", "Registry", "Statistics"], swiftSettings: strictness),
        // What Store and WarehouseClient share of postgres-nio: error words without credentials, bounded waits and connects.
        .target(name: "PostgresWire", dependencies: [.product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOCore", package: "swift-nio"),
                                                     .product(name: "Logging", package: "swift-log")], swiftSettings: strictness),
        // Persistence: SQLite through GRDB, PostgreSQL through postgres-nio; SQL lives only here.
        .target(name: "Store", dependencies: ["Registry", "JSONCore", "PostgresWire", .product(name: "GRDB", package: "GRDB.swift"),
                                            .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOCore", package: "swift-nio"),
                                            .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                            .product(name: "Logging", package: "swift-log")], swiftSettings: strictness),
        // epoll and eventfd for the socket server (Linux headers Swift's Glibc module leaves out).
        .systemLibrary(name: "CEpoll"),
        // JSON-RPC 2.0 over JSON lines (stdio, and a Unix socket served by a fixed set of workers); knows nothing of experiments.
        .target(name: "RPC", dependencies: ["POSIX", "JSONCore", "CEpoll", .product(name: "Logging", package: "swift-log")], swiftSettings: strictness),
        // Unit-level files (CSV, JSON lines) folded into sufficient statistics: bounded memory, every core. No store.
        .target(name: "Ingest", dependencies: ["POSIX", "Registry", "JSONCore", "Statistics"], swiftSettings: strictness),
        // Warehouse definitions (sources, exposure and fact tables, metrics in SQL), the one query per experiment in each
        // dialect, and its rows read back as aggregates. No I/O.
        .target(name: "Warehouse", dependencies: ["Registry", "JSONCore", "Statistics"], swiftSettings: strictness),
        // Runs one query on a PostgreSQL warehouse through postgres-nio, with a deadline; the only module that sees NIO.
        .target(name: "WarehouseClient", dependencies: ["Warehouse", "PostgresWire", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOCore", package: "swift-nio"),
                                                        .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                        .product(name: "Logging", package: "swift-log")], swiftSettings: strictness),
        // Method handlers.
        .target(name: "Service", dependencies: ["API", "Ingest", "Warehouse", "WarehouseClient", "Registry", "Store", "Statistics", "RPC", "JSONCore", .product(name: "Logging", package: "swift-log")], swiftSettings: strictness),
        .executableTarget(name: "referee", dependencies: ["API", "Service", "RPC", "JSONCore", "Reports", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")], swiftSettings: strictness),
        // Markdown and self-contained HTML reports of result summaries. No I/O.
        .target(name: "Reports", dependencies: ["JSONCore", "Registry"], swiftSettings: strictness),
        // Deterministic synthetic registries for property tests and benchmarks.
        .target(name: "Synthetic", dependencies: ["Registry"], swiftSettings: strictness),
        // Release-mode benchmarks (Scripts/bench).
        .executableTarget(name: "RefereeBench", dependencies: ["POSIX", "Synthetic", "Registry", "Service", "Store", "RPC", "JSONCore", "Statistics"], swiftSettings: strictness),
        // The method handlers under libFuzzer (Scripts/dev/fuzz handlers); a replay tool in a plain build.
        .executableTarget(name: "RefereeFuzz", dependencies: ["Service", "RPC", "JSONCore"], swiftSettings: strictness),
        // What the tests share: temporary directories, the in-process client, the real binary through pipes and sockets.
        .target(name: "TestSupport", dependencies: ["Service", "RPC", "JSONCore", "Registry", "Store"], swiftSettings: strictness),
        // One test target per module; RefereeTests drives the service and the real binary end to end.
        .testTarget(name: "POSIXTests", dependencies: ["POSIX"]),
        .testTarget(name: "JSONCoreTests", dependencies: ["JSONCore"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "JSONCore", "Statistics", "Synthetic", "TestSupport"], exclude: ["Reference"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Registry", "JSONCore", "TestSupport"]),
        .testTarget(name: "RPCTests", dependencies: ["RPC", "JSONCore"]),
        .testTarget(name: "APITests", dependencies: ["API", "JSONCore"]),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "Registry", "JSONCore", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "JSONCore"]),
        .testTarget(name: "WarehouseTests", dependencies: ["Warehouse", "Registry", "JSONCore", "Statistics"]),
        .testTarget(name: "StatisticsTests", dependencies: ["Statistics"], resources: [.copy("Reference")]),
        .testTarget(name: "RefereeTests", dependencies: ["API", "Ingest", "Service", "Registry", "Store", "RPC", "JSONCore", "Statistics", "Synthetic", "TestSupport"],
                    exclude: ["Reference", "Warehouse"]),
    ]
)
