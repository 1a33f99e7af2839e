import Foundation
import Testing
import TestSupport
@testable import Store

/// Reading a `postgresql://` store location: where the password comes from, the TLS modes, and errors that never show it.
@Suite struct PostgresLocationTests {
    let dir = TemporaryDirectory()

    @Test func theURLsPartsAndDefaults() throws {
        let l = try PostgresLocation.parse("postgres://svc@db.internal/referee", environment: [:])
        #expect(l.user == "svc" && l.host == "db.internal" && l.port == 5432 && l.database == "referee" && l.sslMode == .prefer)
        #expect(l.display == "postgresql://svc@db.internal:5432/referee?sslmode=prefer")
        #expect(l.place == "postgresql://db.internal:5432/referee")
        let v = try PostgresLocation.parse("postgresql://svc@10.0.0.5:6432/r%20x?sslmode=verify-full&sslrootcert=/etc/ca.pem", environment: [:])
        #expect(v.port == 6432 && v.database == "r x" && v.sslMode == .verifyFull && v.rootCertificatePath == "/etc/ca.pem")
        let home = try PostgresLocation.parse("postgresql://svc@h/d?sslmode=verify-full", environment: ["HOME": "/home/svc"])
        #expect(home.rootCertificatePath == "/home/svc/.postgresql/root.crt")
    }

    /// As libpq: a host that is an absolute path is the directory of the server's Unix socket.
    @Test func aHostThatIsADirectoryIsTheServersUnixSocket() throws {
        for text in ["postgresql://svc@:6432/reg?host=/run/postgresql", "postgresql://svc@%2Frun%2Fpostgresql:6432/reg",
                     "postgresql://svc@ignored:6432/reg?host=%2Frun%2Fpostgresql"] {
            let l = try PostgresLocation.parse(text, environment: [:])
            #expect(l.host == "/run/postgresql" && l.port == 6432 && l.database == "reg", "\(text)")
            #expect(l.socketPath == "/run/postgresql/.s.PGSQL.6432")
            #expect(l.display == "postgresql://svc@:6432/reg?host=/run/postgresql")
            #expect(l.place == "postgresql://:6432/reg?host=/run/postgresql")
        }
        #expect(try PostgresLocation.parse("postgresql://svc@db/reg", environment: [:]).socketPath == nil)
        // The password file's host field matches the directory.
        let file = dir.path("pgpass-socket")
        try "/run/postgresql:5432:reg:svc:by-socket\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        #expect(try PostgresLocation.parse("postgresql://svc@/reg?host=/run/postgresql", environment: ["PGPASSFILE": file]).password == "by-socket")
    }

    @Test func thePasswordComesFromTheURLThenPGPASSWORDThenThePasswordFile() throws {
        #expect(try PostgresLocation.parse("postgresql://svc:s%40cret@h/d", environment: ["PGPASSWORD": "env"]).password == "s@cret")
        #expect(try PostgresLocation.parse("postgresql://svc@h/d", environment: ["PGPASSWORD": "env"]).password == "env")
        let file = dir.path("pgpass")
        try "# comment\nother:5432:d:svc:no\nh:5432:*:svc:from\\:file\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        #expect(try PostgresLocation.parse("postgresql://svc@h/d", environment: ["PGPASSFILE": file]).password == "from:file")
        // A password file others can read is ignored, as libpq does.
        chmod(file, 0o644)
        #expect(try PostgresLocation.parse("postgresql://svc@h/d", environment: ["PGPASSFILE": file]).password == nil)
    }

    @Test func mistakesNameTheFixAndNeverThePassword() {
        for (text, words) in [("mysql://u@h/d", "must start with postgresql://"), ("postgresql://u:hunter2@h", "must name a database"),
                              ("postgresql://u:hunter2@h:99999/d", "port"), ("postgresql://u:hunter2@h/d?sslmode=verify-ca", "disable, prefer, require, verify-full"),
                              ("postgresql://u:hunter2@h/d?application_name=x", "sslmode, sslrootcert and host"),
                              ("postgresql://u:hunter2@h/d?host=db.internal", "directory of the server's Unix socket"),
                              ("postgresql://u:hunter2@/d", "must name a user, a host and a database")] {
            do {
                _ = try PostgresLocation.parse(text, environment: [:])
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.message.contains(words), "\(error.message)")
                #expect(!error.message.contains("hunter2"), "\(error.message)")
            }
        }
    }

    @Test func placeholdersAreNumberedOutsideQuotedText() {
        #expect(PostgresSession.numberedPlaceholders("SELECT '?' , a FROM t WHERE b = ? AND c IN (?, ?)") == "SELECT '?' , a FROM t WHERE b = $1 AND c IN ($2, $3)")
    }
}
