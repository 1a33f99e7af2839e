import Foundation
import Synchronization

/// The store the suite runs on. `REFEREE_TEST_STORE=postgresql` (set by `Scripts/test` for its second pass, with the
/// throwaway cluster of `Scripts/dev/postgres`) gives every in-process client a fresh PostgreSQL database where it
/// would have had a private in-memory SQLite store, so the same tests prove the same behaviour on both.
public enum TestStores {
    static let environment = ProcessInfo.processInfo.environment
    public static var onPostgres: Bool { environment["REFEREE_TEST_STORE"] == "postgresql" }
    /// The shared cluster's URL (`postgresql://referee@127.0.0.1:PORT/postgres?sslmode=disable`), when one runs.
    public static var clusterURL: String? { environment["REFEREE_TEST_POSTGRES_URL"] }
    public static var password: String { shared.password }
    /// The cluster `Scripts/test` started for the whole run. Every suite uses it at once, so a test that restarts or
    /// reconfigures a server starts its own with `TestCluster.start(in:)` instead.
    public static let shared = TestCluster(
        url: environment["REFEREE_TEST_POSTGRES_URL"] ?? "postgresql://referee@127.0.0.1:5432/postgres?sslmode=disable",
        password: environment["REFEREE_TEST_POSTGRES_PASSWORD"] ?? "", directory: nil)

    /// A private store for one test: in memory, or a new database on the test cluster.
    public static func fresh() throws -> String {
        onPostgres ? try freshDatabase() : ":memory:"
    }

    private static let endToEndStores = Mutex<[String: String]>([:])
    private static let sqliteOnlyPaths = Mutex<Set<String>>([])

    /// The store a daemon or command started by an end-to-end test opens, for the SQLite file path the test names: on
    /// the PostgreSQL pass, a database of its own for each path (the same one for every daemon and command given that
    /// path, so two daemons "on one file" share one database), so each end-to-end test proves its behaviour on both
    /// stores. URLs, `:memory:` and paths marked ``sqliteOnly(_:)`` are left as they are.
    public static func endToEnd(_ store: String) throws -> String {
        guard onPostgres, store.hasSuffix(".sqlite"), !sqliteOnlyPaths.withLock({ $0.contains(store) }) else { return store }
        if let known = endToEndStores.withLock({ $0[store] }) { return known }
        let database = try freshDatabase()
        return endToEndStores.withLock { stores in
            if let raced = stores[store] { return raced }
            stores[store] = database
            return database
        }
    }

    /// Marks a store path as SQLite on both passes, for a test of what only a file has (its modes, its WAL, the
    /// `sqlite3` shell, a file deleted under the daemon); returns the path.
    public static func sqliteOnly(_ path: String) -> String {
        sqliteOnlyPaths.withLock { _ = $0.insert(path) }
        return path
    }

    /// The arguments of a command with each `--store` value mapped by ``endToEnd(_:)``.
    public static func endToEnd(arguments: [String]) throws -> [String] {
        var mapped = arguments
        for i in mapped.indices.dropLast() where mapped[i] == "--store" { mapped[i + 1] = try endToEnd(mapped[i + 1]) }
        return mapped
    }

    /// A new, empty database on the shared cluster, as a store URL that carries its password.
    public static func freshDatabase(sslMode: String = "disable") throws -> String {
        guard clusterURL != nil else { throw TestStoreError(message: "no test cluster: run under Scripts/test, or start one with Scripts/dev/postgres start DIR") }
        return try shared.freshDatabase(sslMode: sslMode)
    }

    public static func url(database: String, password withPassword: Bool, sslMode: String = "disable", host: String? = nil) -> String {
        shared.url(database: database, password: withPassword, sslMode: sslMode, host: host)
    }

    @discardableResult
    public static func psql(_ database: String, _ commands: String...) throws -> String {
        try shared.psql(database, commands)
    }
}

/// One throwaway PostgreSQL cluster (`Scripts/dev/postgres`): the shared one, or a private one a test starts, restarts
/// and stops without disturbing the suites running beside it.
public struct TestCluster: Sendable {
    public let url: String
    public let password: String
    /// The folder `Scripts/dev/postgres start` made (data under `data/`), for a cluster this process started.
    public let directory: String?
    private static let counter = Atomic<Int>(0)

    /// Starts a private cluster in `directory` (which must not exist yet); `stop()` it when done.
    public static func start(in directory: String) throws -> TestCluster {
        let out = try TestCluster.script(["start", directory])
        var values: [String: String] = [:]
        for line in out.split(separator: "\n") where line.hasPrefix("export ") {
            let pair = line.dropFirst("export ".count).split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { values[pair[0]] = pair[1] }
        }
        guard let url = values["REFEREE_TEST_POSTGRES_URL"], let password = values["REFEREE_TEST_POSTGRES_PASSWORD"] else {
            throw TestStoreError(message: "Scripts/dev/postgres start printed no URL: \(out)")
        }
        return TestCluster(url: url, password: password, directory: directory)
    }

    /// Restarts the server as a crash would (every backend killed at once, then recovery).
    public func restart() throws {
        guard let directory else { throw TestStoreError(message: "only a cluster this test started may be restarted") }
        try TestCluster.script(["restart", directory])
    }

    public func stop() {
        if let directory { _ = try? TestCluster.script(["stop", directory]) }
    }

    /// The server's data folder, for a cluster this process started.
    public var dataDirectory: String? { directory.map { $0 + "/data" } }

    /// A new, empty database, as a store URL that carries its password.
    public func freshDatabase(sslMode: String = "disable") throws -> String {
        let name = "t_\(getpid())_\(TestCluster.counter.add(1, ordering: .relaxed).newValue)_\(UInt32.random(in: 0...UInt32.max))"
        try psql("postgres", ["CREATE DATABASE \(name)"])
        return url(database: name, password: true, sslMode: sslMode)
    }

    /// The cluster's URL for `database`, with the password in it when asked.
    public func url(database: String, password withPassword: Bool, sslMode: String = "disable", host: String? = nil) -> String {
        var u = url
        if let q = u.firstIndex(of: "?") { u = String(u[..<q]) }
        u = String(u[..<u.lastIndex(of: "/")!]) + "/" + database + "?sslmode=" + sslMode
        if withPassword { u = u.replacingOccurrences(of: "://referee@", with: "://referee:\(password)@") }
        if let host { u = u.replacingOccurrences(of: "@127.0.0.1:", with: "@\(host):") }
        return u
    }

    /// Runs SQL on `database` through psql; returns its unaligned output; throws with psql's words when it fails.
    @discardableResult
    public func psql(_ database: String, _ commands: [String]) throws -> String {
        try TestCluster.run("/usr/bin/psql",
                            [url(database: database, password: false).replacingOccurrences(of: "?sslmode=disable", with: ""), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA"]
                                + commands.flatMap { ["-c", $0] },
                            environment: ["PGPASSWORD": password, "PATH": "/usr/bin:/bin", "PGSSLMODE": "disable"])
    }

    @discardableResult
    static func script(_ arguments: [String]) throws -> String {
        try run(repositoryRoot.appendingPathComponent("Scripts/dev/postgres").path, arguments, environment: nil)
    }

    static func run(_ program: String, _ arguments: [String], environment: [String: String]?) throws -> String {
        let r = try runToEnd(program, arguments, environment: environment)
        guard r.status == 0 else { throw TestStoreError(message: "\(URL(fileURLWithPath: program).lastPathComponent): " + r.err) }
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Runs a program to its end: status, standard output, standard error (read on another thread, so neither pipe fills).
public func runToEnd(_ program: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
    final class Box: @unchecked Sendable { var data = Data() }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program)
    p.arguments = arguments
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let problems = Box()
    let done = DispatchSemaphore(value: 0)
    let reader = Thread { problems.data = err.fileHandleForReading.readDataToEndOfFile(); done.signal() }
    reader.start()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    done.wait()
    return (p.terminationStatus, text, String(decoding: problems.data, as: UTF8.self))
}

public struct TestStoreError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
