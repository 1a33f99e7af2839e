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

    func makeService() throws -> RefereeService {
        do {
            return try RefereeService.open(storePath: storePath, protocolsDirectory: protocols, maxVariants: maxVariants,
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
