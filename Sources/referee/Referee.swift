import ArgumentParser
import Logging
import Service
import Statistics

@main
struct Referee: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "referee",
        abstract: "Experiment registry and statistics service.",
        discussion: "Exit codes of the one-shot commands: 0 ok, 1 rejected (a violation, a conflict, not found and the like), 2 usage or I/O error.",
        version: RefereeService.version,
        subcommands: [ServeCommand.self, CheckCommand.self, IngestCommand.self, SummaryCommand.self, ExportCommand.self, SQLCommand.self, PullCommand.self, RegisterCommand.self, GetCommand.self, ListCommand.self,
                      TransitionCommand.self, UpdateCommand.self, AmendCommand.self, AuditCommand.self, ScanCommand.self, EvalCommand.self, CallCommand.self, StoreCommand.self])

    static func main() {
        StatisticsRuntime.initialize()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["REFEREE_LOG_LEVEL"] ?? "") ?? .info
            return handler
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            FileHandleStderr.write("\(error)\n")
            Foundation.exit(2)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            // Help and version exit 0; every other parsing or validation problem is a usage error: exit 2.
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            FileHandleStderr.write(fullMessage(for: error) + "\n")
            Foundation.exit(2)
        }
    }
}

import Foundation

enum FileHandleStderr {
    static func write(_ text: String) {
        FileHandle.standardError.write(text.data(using: .utf8)!)
    }
}
