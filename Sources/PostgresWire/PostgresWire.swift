public import NIOCore
public import PostgresNIO
import Dispatch
public import Logging
import Synchronization

/// What the registry on PostgreSQL (Store) and the warehouse client both need from postgres-nio: an error's words
/// without the configuration, the server's SQLSTATE, a wait that cannot hang, and a close that keeps the connection
/// alive until it has closed.
public enum PostgresWire {
    /// The server's SQLSTATE and message, from either of postgres-nio's error types.
    public static func serverError(_ error: any Error) -> (state: String, message: String)? {
        if let e = error as? PSQLError, let state = e.serverInfo?[.sqlState] { return (state, e.serverInfo?[.message] ?? "error") }
        if case .server(let e)? = error as? PostgresError, let state = e.fields[.sqlState] { return (state, e.fields[.message] ?? "error") }
        return nil
    }

    /// An error's words without anything of the configuration (postgres-nio's descriptions hold no password).
    public static func describe(_ error: any Error) -> String {
        if let (state, message) = serverError(error) { return "\(message) (SQLSTATE \(state))" }
        if case .connectionClosed? = error as? PostgresError { return "the server closed the connection" }
        if let e = error as? PSQLError {
            if let underlying = e.underlying { return "\(e.code): \(underlying)" }
            return "\(e.code)"
        }
        return "\(error)"
    }

    /// Whether the error says the connection itself went away (rather than the server refusing a statement).
    public static func isConnectionLost(_ error: any Error) -> Bool {
        guard let e = error as? PSQLError else { return false }
        return [.serverClosedConnection, .uncleanShutdown, .connectionError, .clientClosedConnection].contains(e.code)
    }

    /// Closes `connection`, keeping it alive until it has closed (postgres-nio insists a connection is closed before it goes).
    public static func close(_ connection: PostgresConnection) {
        let closed: EventLoopFuture<Void> = connection.close()
        closed.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// Waits for `future` at most `seconds`: nil when it has not completed by then (a `wait()` that cannot hang).
    public static func bounded<T: Sendable>(_ future: EventLoopFuture<T>, seconds: Double) throws -> T? {
        let semaphore = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<T, any Error>?>(nil)
        future.whenComplete { result in
            outcome.withLock { $0 = result }
            semaphore.signal()
        }
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
        return try outcome.withLock { $0 }?.get()
    }

    /// Connects within `seconds` in all: postgres-nio's connect timeout covers TCP only, and a server that accepts and
    /// then says nothing would otherwise hold the caller forever. A connection that arrives late is closed.
    public static func connect(on eventLoop: any EventLoop, configuration: PostgresConnection.Configuration, id: Int, logger: Logger,
                               seconds: Double) throws -> PostgresConnection? {
        let connecting = PostgresConnection.connect(on: eventLoop, configuration: configuration, id: id, logger: logger)
        guard let connection = try bounded(connecting, seconds: seconds) else {
            connecting.whenSuccess { close($0) }
            return nil
        }
        return connection
    }
}
