import ArgumentParser
import Foundation
import Service

/// Options shared by every command that opens the store.
struct StoreOptions: ParsableArguments {
    @Option(help: "The registry: a SQLite file, or postgresql://USER@HOST:PORT/DB?sslmode=… (default: $REFEREE_STORE, else ./referee.sqlite).")
    var store: String?

    @Option(help: "Directory of protocol files (default: $REFEREE_PROTOCOLS, else ./Protocols, else the built-in copies).")
    var protocols: String?

    @Option(help: "Principal to act as (default: $REFEREE_ACTOR, else the operating-system user); over --socket, whom you act for.")
    var actor: String?

    var storePath: String { store ?? ProcessInfo.processInfo.environment["REFEREE_STORE"] ?? "referee.sqlite" }

    var principal: String {
        if let actor, !actor.isEmpty { return actor }
        if let env = ProcessInfo.processInfo.environment["REFEREE_ACTOR"], !env.isEmpty { return env }
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid:\(geteuid())"
    }

    @Flag(help: "No progress bar or informational output (errors and warnings still print).")
    var quiet = false

    /// Opens the store and loads protocols; failures are I/O errors (exit 2).
    /// `readOnly`: the command only reads, so it never creates a store: a path with no store is an I/O error
    /// (exit 2) instead of an empty registry that would make every check pass.
    /// `mustExist`: a command that acts on an existing experiment cannot succeed on a new store either.
    func makeService(readOnly: Bool = false, mustExist: Bool = false, limits: DocumentLimitOptions? = nil) throws -> RefereeService {
        let maxVariants = limits?.maxVariants ?? 20, maxTargetingConditions = limits?.maxTargetingConditions ?? 500
        let path = storePath
        let isURL = path.hasPrefix("postgresql://") || path.hasPrefix("postgres://")
        if readOnly || mustExist, path != ":memory:", !isURL, !FileManager.default.fileExists(atPath: path) {
            throw CLIError.io("no store at \(path); pass --store with the registry's path (or set REFEREE_STORE)")
        }
        do {
            return try RefereeService.open(storePath: path, protocolsDirectory: protocols, maxVariants: maxVariants,
                                           maxTargetingConditions: maxTargetingConditions, readOnly: readOnly && path != ":memory:")
        } catch {
            throw CLIError.io(error.description)
        }
    }
}

/// The options of every command that sends requests: the store to open in process, or `--socket PATH` of a
/// shared daemon.
@dynamicMemberLookup
struct ClientOptions: ParsableArguments {
    @OptionGroup var store: StoreOptions

    @Option(help: "Send the requests to a shared `referee serve --socket PATH` instead of opening the store (the server knows who you are).")
    var socket: String?

    subscript<T>(dynamicMember path: KeyPath<StoreOptions, T>) -> T { store[keyPath: path] }
}

/// Limits on experiment documents, for the commands that read documents (serve, register, check, update, amend).
struct DocumentLimitOptions: ParsableArguments {
    @Option(help: "Most variants one experiment may list.")
    var maxVariants: Int = 20

    @Option(help: "Most conditions one targeting expression may hold.")
    var maxTargetingConditions: Int = 500
}

enum CLIError: Error, CustomStringConvertible {
    case io(String)
    var description: String {
        switch self { case .io(let m): "referee: \(m)" }
    }
}
