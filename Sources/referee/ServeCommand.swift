import ArgumentParser
import Foundation
import Service
import RPC
import JSONCore
import Logging

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve JSON-RPC 2.0 on stdin/stdout, one JSON object per line.")

    @OptionGroup var options: StoreOptions
    @OptionGroup var documentLimits: DocumentLimitOptions

    @Option(help: "Largest accepted request line in bytes.")
    var maxLineBytes: Int = 8 << 20

    @Option(help: "Largest accepted batch (requests per array).")
    var maxBatch: Int = 1000

    @Option(help: "Deepest accepted JSON nesting.")
    var maxDepth: Int = 64

    @Option(help: "Largest reply line in bytes (one response, or a whole batch).")
    var maxReplyBytes: Int = 64 << 20

    @Option(help: "Serve many clients on this Unix domain socket instead of stdin/stdout; each client's principal comes from the kernel (SO_PEERCRED).")
    var socket: String?

    @Option(help: "With --socket: connections open at once from one user.")
    var maxConnectionsPerUser: Int = 256

    @Option(help: "With --socket: connections open at once in all (the descriptor limit is raised to fit).")
    var maxConnections: Int = 4096

    @Option(help: "With --socket: seconds a connection may stay idle before it is closed.")
    var idleTimeout: Double = 600

    @Option(help: "With --socket: seconds one request line may take to arrive in full.")
    var partialLineTimeout: Double = 30

    @Option(help: "With --socket: MiB that unfinished request lines of all clients may hold together.")
    var requestBufferMib: Int = 256

    @Option(help: "With --socket: threads answering requests, however many clients are connected; one user holds at most half of them.")
    var workers: Int = 32

    func validate() throws {
        guard maxLineBytes >= 1024 else { throw ValidationError("--max-line-bytes must be at least 1024") }
        guard maxReplyBytes >= 1 << 16 else { throw ValidationError("--max-reply-bytes must be at least 65536") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard maxDepth >= 4 else { throw ValidationError("--max-depth must be at least 4") }
        guard maxConnectionsPerUser >= 1, maxConnections >= 1 else { throw ValidationError("--max-connections and --max-connections-per-user must be at least 1") }
        guard idleTimeout > 0, partialLineTimeout > 0 else { throw ValidationError("--idle-timeout and --partial-line-timeout must be positive seconds") }
        guard requestBufferMib >= 8 else { throw ValidationError("--request-buffer-mib must be at least 8") }
        guard (1...1024).contains(workers) else { throw ValidationError("--workers must be between 1 and 1024") }
    }

    func run() throws {
        // Stdout carries protocol only: keep the real stdout aside and point fd 1 at stderr,
        // so a stray print cannot corrupt the stream.
        let protocolOut = dup(STDOUT_FILENO)
        dup2(STDERR_FILENO, STDOUT_FILENO)
        SignalFlag.install()

        let logger = Logger(label: "referee.serve")
        if socket != nil {
            // The shared service's files belong to the service user alone: clients need only the socket.
            umask(0o077)
            if let problem = RefereeService.problemForSharedService(options.storePath) {
                logger.critical("\(problem)")
                throw ExitCode(2)
            }
        }
        let service: RefereeService
        do { service = try options.makeService(limits: documentLimits) } catch {
            logger.critical("\(error)")
            throw ExitCode(2)
        }
        let limits = RPCLimits(maxLineBytes: maxLineBytes, maxBatch: maxBatch, json: JSONLimits(maxDepth: maxDepth), maxReplyBytes: maxReplyBytes)
        let dispatcher = Dispatcher(limits: limits)
        service.install(on: dispatcher)
        if let socket {
            // Checked again once SQLite has created its -wal and -shm files.
            if let problem = RefereeService.problemForSharedService(service.storePath) {
                logger.critical("\(problem)")
                throw ExitCode(2)
            }
            logger.info("serving store \(service.storePath) on socket \(socket) with protocols from \(service.protocolsOrigin)")
            let limits = SocketServer.Limits(perUser: maxConnectionsPerUser, total: maxConnections, idleSeconds: idleTimeout,
                                             partialLineSeconds: partialLineTimeout, bufferBudgetBytes: requestBufferMib << 20, workers: workers)
            let server = SocketServer(path: socket, dispatcher: dispatcher, limits: limits, shouldStop: { [service] in service.shutdownRequested })
            do { try server.run() } catch {
                logger.critical("\(error)")
                throw ExitCode(2)
            }
            return
        }
        let principal = options.principal
        logger.info("serving store \(service.storePath) as \(principal) with protocols from \(service.protocolsOrigin)")
        let server = LineServer(dispatcher: dispatcher, input: STDIN_FILENO, output: protocolOut,
                                context: RPCContext(principal: principal), shouldStop: { [service] in service.shutdownRequested })
        server.run()
        logger.info("stopped")
    }
}
