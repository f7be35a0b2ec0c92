// swift-tools-version: 6.2
import PackageDescription

let package = Package(
  name: "harness",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "harness", targets: ["Harness"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    .package(url: "https://github.com/pointfreeco/swift-custom-dump", from: "1.7.3", traits: []),
  ],
  targets: [
    // The executable contract (docs/contract.md): pure, no I/O.
    .target(name: "Reference"),
    // PRNG, generation, the sequence format, shrinking, corpus.
    .target(name: "Fuzz", dependencies: ["Reference"]),
    // libelf (loaded at run time) to check that a vmlinux carries the series.
    .target(name: "CLibELF"),
    // The `harness` CLI: guest control, diff, reports.
    .executableTarget(
      name: "Harness",
      dependencies: [
        "Reference", "Fuzz", "CLibELF",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Subprocess", package: "swift-subprocess"),
        .product(name: "SystemPackage", package: "swift-system"),
      ]
    ),
    .testTarget(
      name: "ReferenceTests",
      dependencies: ["Reference", "Fuzz", .product(name: "CustomDump", package: "swift-custom-dump")]
    ),
    .testTarget(
      name: "FuzzTests",
      dependencies: ["Reference", "Fuzz", .product(name: "CustomDump", package: "swift-custom-dump")]
    ),
    .testTarget(
      name: "HarnessTests",
      dependencies: ["Harness", "Reference", "Fuzz", .product(name: "CustomDump", package: "swift-custom-dump")],
      resources: []
    ),
  ]
)
