import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import PostgresWire
public import Warehouse

/// Runs one read-only query on a PostgreSQL warehouse and hands back its rows; the only code that talks to it.
/// The session is read-only (`default_transaction_read_only`), in UTC, and PostgreSQL itself cancels the query at
/// the timeout (`statement_timeout`); a client-side deadline a few seconds later closes the connection if the
/// server does not answer. The extended query protocol runs exactly one statement.
public struct PostgresSource: Sendable {
    public var url: ConnectionURL
    public var timeoutSeconds: Double
    public var connectTimeoutSeconds: Double = 10

    public init(url: ConnectionURL, timeoutSeconds: Double) {
        self.url = url; self.timeoutSeconds = timeoutSeconds
    }

    public struct Answer: Sendable {
        public var columns: [String]
        public var rows: [[WarehouseValue]]
        /// Bytes of the result's cells as they came over the wire.
        public var bytes: Int
        public var seconds: Double
    }

    /// Why a query gave no answer; never holds the password.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public enum Kind: String, Sendable { case connect, query, lost, timeout }
        public var kind: Kind
        public var message: String
        public var sqlState: String?
        public var description: String { message }
    }

    var place: String { url.displayName }

    /// Runs `sql` and collects every row; `password` is used for the handshake only.
    public func run(_ sql: String, password: String?) throws(Failure) -> Answer {
        let started = DispatchTime.now()
        let group = MultiThreadedEventLoopGroup.singleton
        var logger = Logger(label: "referee.warehouse")
        logger.logLevel = .critical
        let tlsSetting: PostgresConnection.Configuration.TLS
        do {
            switch url.sslMode {
            case .disable: tlsSetting = .disable
            case .prefer, .require:
                var config = TLSConfiguration.makeClientConfiguration()
                // As libpq's prefer and require: encrypted, the certificate not verified.
                config.certificateVerification = .none
                let context = try NIOSSLContext(configuration: config)
                tlsSetting = url.sslMode == .prefer ? .prefer(context) : .require(context)
            }
        } catch {
            throw Failure(kind: .connect, message: "cannot set up TLS for the warehouse \(place): \(error)")
        }
        var configuration = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.user, password: password,
                                                             database: url.database, tls: tlsSetting)
        configuration.options.connectTimeout = .milliseconds(Int64(connectTimeoutSeconds * 1000))
        configuration.options.additionalStartupParameters = [
            ("application_name", "referee"), ("default_transaction_read_only", "on"), ("TimeZone", "UTC"), ("DateStyle", "ISO"),
            ("statement_timeout", String(Int64((timeoutSeconds * 1000).rounded(.up)))),
        ]
        let connection: PostgresConnection
        do {
            // The handshake too is bounded: postgres-nio's connect timeout covers only the TCP connection.
            guard let connected = try PostgresWire.connect(on: group.next(), configuration: configuration, id: 1, logger: logger,
                                                           seconds: connectTimeoutSeconds + 1) else {
                throw Failure(kind: .connect, message: "cannot connect to the warehouse \(place) as \(url.user): no answer to the connection within \(Self.seconds(connectTimeoutSeconds + 1)) s")
            }
            connection = connected
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(kind: .connect, message: "cannot connect to the warehouse \(place) as \(url.user): \(PostgresWire.describe(error))")
        }
        defer { let closed: EventLoopFuture<Void> = connection.close(); try? closed.wait() }
        let collected = Collected()
        // The server cancels at statement_timeout; if it cannot (a network stall), the connection is closed a little later.
        let deadline = connection.eventLoop.scheduleTask(in: .milliseconds(Int64((timeoutSeconds + 5) * 1000))) {
            collected.timedOut()
            let closed: EventLoopFuture<Void> = connection.close()
            _ = closed
        }
        defer { deadline.cancel() }
        do {
            try connection.query(sql, [], onMetadata: { _ in }, onRow: { row in collected.add(row) }).wait()
        } catch {
            if collected.didTimeOut {
                throw Failure(kind: .timeout, message: "the warehouse query ran longer than \(Self.seconds(timeoutSeconds)) s (timeout_seconds) and was cancelled; nothing was stored")
            }
            if let (state, message) = PostgresWire.serverError(error) {
                if state == "57014" {
                    throw Failure(kind: .timeout, message: "the warehouse query ran longer than \(Self.seconds(timeoutSeconds)) s (timeout_seconds) and \(place) cancelled it; nothing was stored", sqlState: state)
                }
                if state.hasPrefix("57P") || state.hasPrefix("08") {
                    throw Failure(kind: .lost, message: "the warehouse \(place) ended the session before the whole answer came: \(message) (SQLSTATE \(state)); nothing was stored", sqlState: state)
                }
                throw Failure(kind: .query, message: "the warehouse \(place) refused the query: \(message) (SQLSTATE \(state)); nothing was stored", sqlState: state)
            }
            if PostgresWire.isConnectionLost(error) {
                throw Failure(kind: .lost, message: "the connection to the warehouse \(place) was lost before the whole answer came (\(PostgresWire.describe(error))); nothing was stored")
            }
            throw Failure(kind: .lost, message: "the warehouse query on \(place) failed: \(PostgresWire.describe(error)); nothing was stored")
        }
        let (columns, rows, bytes) = collected.result()
        return Answer(columns: columns, rows: rows, bytes: bytes, seconds: Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9)
    }

    static func seconds(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
}

/// Rows as they arrive on the event loop, read once the query ends.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var columns: [String] = []
    private var rows: [[WarehouseValue]] = []
    private var bytes = 0
    private var expired = false

    func add(_ row: PostgresRow) {
        var cells: [WarehouseValue] = []
        var names: [String] = []
        var size = 0
        for cell in row {
            names.append(cell.columnName)
            size += cell.bytes?.readableBytes ?? 0
            guard cell.bytes != nil else { cells.append(.null); continue }
            switch cell.dataType {
            case .float8, .float4, .int8, .int4, .int2, .numeric:
                if let x = try? cell.decode(Double.self) { cells.append(.number(x)) }
                else if let x = try? cell.decode(Int64.self) { cells.append(.number(Double(x))) }
                else { cells.append(.text((try? cell.decode(String.self)) ?? "")) }
            default:
                cells.append(.text((try? cell.decode(String.self)) ?? ""))
            }
        }
        lock.lock()
        if columns.isEmpty { columns = names }
        rows.append(cells)
        bytes += size
        lock.unlock()
    }

    func timedOut() { lock.lock(); expired = true; lock.unlock() }
    var didTimeOut: Bool { lock.lock(); defer { lock.unlock() }; return expired }
    func result() -> ([String], [[WarehouseValue]], Int) { lock.lock(); defer { lock.unlock() }; return (columns, rows, bytes) }
}
