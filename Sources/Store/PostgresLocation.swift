import Foundation

/// Where a PostgreSQL registry is and how to reach it: `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB?sslmode=…`
/// (also `postgres://`). As in libpq, a host that is an absolute path (`?host=/run/postgresql`, or `%2Frun%2Fpostgresql`
/// in the URL) is the directory of the server's Unix socket, `.s.PGSQL.PORT`; TLS is not used there. The password comes
/// from the URL, else `PGPASSWORD`, else the password file (`PGPASSFILE`, default `~/.pgpass`), as libpq finds it; it is
/// kept for the handshake and appears nowhere else.
public struct PostgresLocation: Sendable, Equatable {
    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode
    /// The CA certificates a `verify-full` server certificate must chain to (`sslrootcert`, default `~/.postgresql/root.crt`).
    public var rootCertificatePath: String?
    var password: String?

    /// libpq's modes: `prefer` (the default) and `require` encrypt without checking the certificate; `verify-full`
    /// checks that it chains to `sslrootcert` and names the host.
    public enum SSLMode: String, Sendable, CaseIterable { case disable, prefer, require, verifyFull = "verify-full" }

    public static func isLocation(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    /// The server's Unix socket, when the host is a directory.
    public var socketPath: String? { host.hasPrefix("/") ? "\(host)/.s.PGSQL.\(port)" : nil }

    /// Host, port and database: what errors name (never the user or a secret).
    public var place: String {
        socketPath == nil ? "postgresql://\(host):\(port)/\(database)" : "postgresql://:\(port)/\(database)?host=\(host)"
    }

    /// The location as `server.info` and the logs show it: no password.
    public var display: String {
        socketPath == nil ? "postgresql://\(user)@\(host):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
                          : "postgresql://\(user)@:\(port)/\(database)?host=\(host)"
    }

    /// Parses `text`; `environment` supplies PGPASSWORD, PGPASSFILE and HOME.
    public static func parse(_ text: String, environment given: [String: String]? = nil) throws(StoreError) -> PostgresLocation {
        let environment = given ?? ProcessInfo.processInfo.environment
        func fail(_ m: String) -> StoreError {
            StoreError(message: "--store \(redacted(text)) \(m)")
        }
        var rest = Substring(text)
        if rest.hasPrefix("postgresql://") { rest = rest.dropFirst("postgresql://".count) }
        else if rest.hasPrefix("postgres://") { rest = rest.dropFirst("postgres://".count) }
        else { throw fail("must start with postgresql:// (postgresql://USER@HOST:PORT/DB)") }
        var query = Substring("")
        if let q = rest.firstIndex(of: "?") { query = rest[rest.index(after: q)...]; rest = rest[..<q] }
        guard let slash = rest.firstIndex(of: "/") else { throw fail("must name a database: postgresql://USER@HOST:PORT/DB") }
        guard let database = String(rest[rest.index(after: slash)...]).removingPercentEncoding, !database.isEmpty else {
            throw fail("must name a database: postgresql://USER@HOST:PORT/DB")
        }
        var authority = rest[..<slash]
        var user = environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                user = String(userInfo[..<colon]).removingPercentEncoding ?? ""
                password = String(userInfo[userInfo.index(after: colon)...]).removingPercentEncoding
            } else {
                user = String(userInfo).removingPercentEncoding ?? ""
            }
            authority = authority[authority.index(after: at)...]
        }
        var host = String(authority).removingPercentEncoding ?? String(authority), port = 5432
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw fail("has an IPv6 host without its closing ]") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65_535).contains(p) else { throw fail("has a port that is not a number from 1 to 65535") }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(p) else { throw fail("has a port that is not a number from 1 to 65535") }
            port = p
            host = String(authority[..<colon]).removingPercentEncoding ?? String(authority[..<colon])
        }
        var mode = SSLMode.prefer
        var rootCertificate: String?
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            switch (kv.first, kv.count) {
            case ("host", 2):
                guard kv[1].hasPrefix("/") else {
                    throw fail("has host=\(kv[1].prefix(60)); the host parameter names the directory of the server's Unix socket (an absolute path); put a host name in the URL: postgresql://USER@HOST:PORT/DB")
                }
                host = kv[1]
            case ("sslmode", 2):
                guard let m = SSLMode(rawValue: kv[1]) else {
                    throw fail("has sslmode=\(kv[1].prefix(40)); use one of disable, prefer, require, verify-full")
                }
                mode = m
            case ("sslrootcert", 2):
                rootCertificate = kv[1]
            default:
                throw fail("takes only the parameters sslmode, sslrootcert and host, got \"\(pair.prefix(60))\"")
            }
        }
        guard !host.isEmpty, !user.isEmpty else { throw fail("must name a user, a host and a database: postgresql://USER@HOST:PORT/DB") }
        if mode == .verifyFull && rootCertificate == nil, let home = environment["HOME"] {
            rootCertificate = home + "/.postgresql/root.crt"
        }
        var location = PostgresLocation(user: user, host: host, port: port, database: database, sslMode: mode,
                                        rootCertificatePath: rootCertificate, password: password)
        if location.password == nil { location.password = environment["PGPASSWORD"] }
        if location.password == nil { location.password = passwordFile(for: location, environment: environment) }
        return location
    }

    /// The URL with any password replaced, for messages about the URL itself.
    static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") else { return String(text.prefix(200)) }
        let userInfo = text[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return String(text.prefix(200)) }
        return String((text[..<colon] + ":***" + text[at...]).prefix(200))
    }

    /// The password of the first matching line of the password file (`host:port:database:user:password`, `*` matching
    /// anything, `\` escaping), read only when no one else can read the file, as libpq does.
    static func passwordFile(for l: PostgresLocation, environment: [String: String]) -> String? {
        guard let path = environment["PGPASSFILE"] ?? environment["HOME"].map({ $0 + "/.pgpass" }) else { return nil }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let mode = attributes[.posixPermissions] as? Int, mode & 0o077 == 0,
              let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = [], field = "", escaped = false
            for c in line {
                if escaped { field.append(c); escaped = false }
                else if c == "\\" { escaped = true }
                else if c == ":" && fields.count < 4 { fields.append(field); field = "" }
                else { field.append(c) }
            }
            fields.append(field)
            guard fields.count == 5 else { continue }
            let wanted = [l.host, String(l.port), l.database, l.user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}
