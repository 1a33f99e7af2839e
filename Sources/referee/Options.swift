import ArgumentParser
import Foundation
import Service

/// Options shared by every command that opens the store.
struct StoreOptions: ParsableArguments {
    @Option(help: "SQLite store file (default: $REFEREE_STORE, else ./referee.sqlite).")
    var store: String?

    @Option(help: "Directory of protocol files (default: $REFEREE_PROTOCOLS, else ./Protocols, else the built-in copies).")
    var protocols: String?

    @Option(help: "Principal to act as (default: $REFEREE_ACTOR, else the operating-system user).")
    var actor: String?

    var storePath: String { store ?? ProcessInfo.processInfo.environment["REFEREE_STORE"] ?? "referee.sqlite" }

    var principal: String {
        if let actor, !actor.isEmpty { return actor }
        if let env = ProcessInfo.processInfo.environment["REFEREE_ACTOR"], !env.isEmpty { return env }
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid:\(geteuid())"
    }

    /// Opens the store and loads protocols; failures are I/O errors (exit 2).
    @Option(help: "Most variants one experiment may list.")
    var maxVariants: Int = 20

    @Option(help: "Most conditions one targeting expression may hold.")
    var maxTargetingConditions: Int = 500

    /// `readOnly`: the command only reads, so it never creates a store: a path with no store is an I/O error
    /// (exit 2) instead of an empty registry that would make every check pass.
    func makeService(readOnly: Bool = false) throws -> RefereeService {
        let path = storePath
        if readOnly, path != ":memory:", !FileManager.default.fileExists(atPath: path) {
            throw CLIError.io("no store at \(path); pass --store with the registry's path (or set REFEREE_STORE)")
        }
        do {
            return try RefereeService.open(storePath: path, protocolsDirectory: protocols, maxVariants: maxVariants,
                                           maxTargetingConditions: maxTargetingConditions)
        } catch {
            throw CLIError.io(error.description)
        }
    }
}

enum CLIError: Error, CustomStringConvertible {
    case io(String)
    var description: String {
        switch self { case .io(let m): "referee: \(m)" }
    }
}
