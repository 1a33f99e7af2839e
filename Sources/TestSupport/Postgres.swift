import Foundation
import Synchronization

/// The store the suite runs on. `REFEREE_TEST_STORE=postgresql` (set by `Scripts/test` for its second pass, with the
/// throwaway cluster of `Scripts/dev/postgres`) gives every in-process client a fresh PostgreSQL database where it
/// would have had a private in-memory SQLite store, so the same tests prove the same behaviour on both.
public enum TestStores {
    static let environment = ProcessInfo.processInfo.environment
    public static var onPostgres: Bool { environment["REFEREE_TEST_STORE"] == "postgresql" }
    /// The cluster's URL (`postgresql://referee@127.0.0.1:PORT/postgres?sslmode=disable`), when one runs.
    public static var clusterURL: String? { environment["REFEREE_TEST_POSTGRES_URL"] }
    public static var password: String { environment["REFEREE_TEST_POSTGRES_PASSWORD"] ?? "" }
    private static let counter = Atomic<Int>(0)

    /// A private store for one test: in memory, or a new database on the test cluster.
    public static func fresh() throws -> String {
        onPostgres ? try freshDatabase() : ":memory:"
    }

    /// A new, empty database on the test cluster, as a store URL that carries its password.
    public static func freshDatabase(sslMode: String = "disable") throws -> String {
        guard clusterURL != nil else { throw TestStoreError(message: "no test cluster: run under Scripts/test, or start one with Scripts/dev/postgres start DIR") }
        let name = "t_\(getpid())_\(counter.add(1, ordering: .relaxed).newValue)_\(UInt32.random(in: 0...UInt32.max))"
        try psql("postgres", "CREATE DATABASE \(name)")
        return url(database: name, password: true, sslMode: sslMode)
    }

    /// The cluster's URL for `database`, with the password in it when asked.
    public static func url(database: String, password withPassword: Bool, sslMode: String = "disable", host: String? = nil) -> String {
        var u = clusterURL ?? "postgresql://referee@127.0.0.1:5432/postgres?sslmode=disable"
        if let q = u.firstIndex(of: "?") { u = String(u[..<q]) }
        u = String(u[..<u.lastIndex(of: "/")!]) + "/" + database + "?sslmode=" + sslMode
        if withPassword { u = u.replacingOccurrences(of: "://referee@", with: "://referee:\(password)@") }
        if let host { u = u.replacingOccurrences(of: "@127.0.0.1:", with: "@\(host):") }
        return u
    }

    /// Runs SQL on `database` through psql; returns its unaligned output; throws with psql's words when it fails.
    @discardableResult
    public static func psql(_ database: String, _ commands: String...) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        p.arguments = [url(database: database, password: false).replacingOccurrences(of: "?sslmode=disable", with: ""), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA"]
            + commands.flatMap { ["-c", $0] }
        p.environment = ["PGPASSWORD": password, "PATH": "/usr/bin:/bin", "PGSSLMODE": "disable"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestStoreError(message: "psql: " + String(decoding: errData, as: UTF8.self)) }
        return String(decoding: outData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

public struct TestStoreError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
