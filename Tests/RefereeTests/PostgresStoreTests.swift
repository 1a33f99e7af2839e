import Foundation
import Synchronization
import Testing
import TestSupport
import JSONCore
import RPC
import Store

/// The registry on PostgreSQL, through the real binary: racing daemons, reads after writes across daemons, a crash
/// restart of the server and SIGKILLed daemons mid-write, the audit log append-only in the database, TLS.
@Suite(.serialized, .enabled(if: TestStores.clusterURL != nil || ProcessInfo.processInfo.environment["REFEREE_REQUIRE_POSTGRES"] == "1"))
struct PostgresStoreTests {
    let dir = TemporaryDirectory()

    /// A draft in its own layer (nothing to conflict with) unless told otherwise.
    func experiment(_ key: String, layer: String? = nil, traffic: Double = 0.2) -> JSON {
        exampleExperiment(["key": .string(key), "layer": .string(layer ?? "layer-\(key)"), "traffic": JSON(traffic), "parameters": [.string("p-\(key)")]])
    }

    /// One of the racing daemons, over a pipe or a socket.
    struct Racer {
        var send: (String) throws -> Void
        var read: () throws -> JSON
    }

    func verified(_ c: PipeClient, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let audit = try c.result("audit.verify")
        #expect(audit["ok"] == true, "audit.verify: \(audit.serialized().prefix(400))", sourceLocation: sourceLocation)
    }

    /// Four daemons on one database, two over stdio and two serving sockets, race to approve experiments that cannot
    /// share their layer: exactly one is admitted each round. Then all four update one record from the same version:
    /// exactly one update lands.
    @Test func fourRacingDaemonsAdmitExactlyOneAndLoseNoUpdate() throws {
        let store = try TestStores.freshDatabase()
        let stdio = try (0..<2).map { try PipeClient(store: store, actor: "approver.\($0)") }
        let servers = try (0..<2).map { try SharedServiceHardeningTests.Server(store: store, socket: dir.path("race-\($0).sock")) }
        defer { servers.forEach { $0.stop() } }
        let sockets = try servers.map { try SocketClient(path: $0.socket) }
        let approvers: [Racer] = stdio.map { c in Racer(send: { c.send(raw: $0) }, read: { try c.readJSON() }) }
            + sockets.map { c in Racer(send: { try c.send(Array(($0 + "\n").utf8)) }, read: { try c.readLine() }) }
        let registrar = try PipeClient(store: store, actor: "pm.registrar")
        for round in 0..<50 {
            let keys = (0..<4).map { "r\(round)-\($0)" }
            for key in keys {
                try registrar.result("experiment.register", ["experiment": experiment(key, layer: "race-\(round)", traffic: 0.6)])
                try registrar.result("experiment.transition", ["key": .string(key), "version": 1, "to": "review"])
            }
            for (i, c) in approvers.enumerated() {
                try c.send(JSON.object(["jsonrpc": "2.0", "id": JSON(round), "method": "experiment.transition",
                                        "params": ["key": .string(keys[i]), "version": 2, "to": "approved"]]).serialized())
            }
            let replies = try approvers.map { try $0.read() }
            let admitted = replies.filter { $0["result"] != nil }.count
            let refused = replies.filter { $0["error"]?["code"] == 1002 }.count
            #expect(admitted == 1 && refused == 3, "round \(round): \(replies.map { $0.serialized().prefix(160) })")
        }
        let approved = try registrar.result("experiment.list", ["state": "approved"])["count"]
        #expect(approved == 50)

        try registrar.result("experiment.register", ["experiment": experiment("contended")])
        for round in 0..<20 {
            let version = try registrar.result("experiment.get", ["key": "contended"])["version"]!
            for (i, c) in approvers.enumerated() {
                try c.send(JSON.object(["jsonrpc": "2.0", "id": JSON(1000 + round), "method": "experiment.update",
                                        "params": ["key": "contended", "version": version, "changes": ["name": .string("by \(i) in \(round)")]]]).serialized())
            }
            let replies = try approvers.map { try $0.read() }
            #expect(replies.filter { $0["result"] != nil }.count == 1, "round \(round)")
            #expect(replies.filter { $0["error"]?["code"] == 1006 }.count == 3, "round \(round)")
        }
        #expect(try registrar.result("experiment.get", ["key": "contended"])["version"] == 21)
        try verified(registrar)
        let migrations = try TestStores.psql(database(of: store), "SELECT string_agg(name, ',' ORDER BY name) FROM referee_migrations")
        #expect(migrations == "v1-registry,v2-commit-count,v3-write-begin,v4-write-once")
    }

    /// A daemon on the same host as the server reaches it through its Unix socket (`?host=DIRECTORY`, as libpq), and its
    /// writes are seen by a daemon connected over TCP.
    @Test func aDaemonReachesTheServerThroughItsUnixSocket() throws {
        let tcp = try TestStores.freshDatabase()
        let data = try #require(ProcessInfo.processInfo.environment["REFEREE_TEST_PGDATA"], "Scripts/dev/postgres exports REFEREE_TEST_PGDATA")
        let directory = (data as NSString).deletingLastPathComponent
        let port = try PostgresLocation.parse(tcp).port
        // The test cluster trusts local connections: no password on the socket.
        let local = "postgresql://referee@:\(port)/\(database(of: tcp))?host=\(directory)"
        let socketDaemon = try PipeClient(store: local, actor: "pm.local"), tcpDaemon = try PipeClient(store: tcp, actor: "pm.remote")
        try socketDaemon.result("experiment.register", ["experiment": experiment("by-socket")])
        #expect(try tcpDaemon.result("experiment.get", ["key": "by-socket"])["version"] == 1)
        let info = try socketDaemon.result("server.info")
        #expect(info["store"]?.stringValue == "postgresql://referee@:\(port)/\(database(of: tcp))?host=\(directory)")
        try verified(socketDaemon)
    }

    /// After each write daemon A acknowledges, daemon B's next read sees it.
    @Test func readsAfterWritesAcrossDaemons() throws {
        let store = try TestStores.freshDatabase()
        let a = try PipeClient(store: store, actor: "pm.a"), b = try PipeClient(store: store, actor: "pm.b")
        try a.result("experiment.register", ["experiment": experiment("seen")])
        var version = 1, stalls = 0
        for i in 0..<1000 {
            let updated = try a.result("experiment.update", ["key": "seen", "version": JSON(version), "changes": ["name": .string("n\(i)")]])
            version = updated["version"]!.intValue!
            // A read that got 1011 (a stalled connection, seen once under CI load) is an outage, not a stale answer: it
            // is counted and asked again; what B answers must never be older than what A acknowledged.
            var read = try b.request("experiment.get", ["key": "seen"])
            for _ in 0..<3 where read["error"]?["code"] == 1011 { stalls += 1; read = try b.request("experiment.get", ["key": "seen"]) }
            guard let answered = read["result"] else { Issue.record("write \(i): \(read.serialized().prefix(300))"); break }
            if answered["version"]?.intValue != version || answered["document"]?["name"] != .string("n\(i)") {
                Issue.record("write \(i): B read version \(answered["version"]?.serialized() ?? "nil") after A acknowledged \(version)")
                break
            }
        }
        #expect(stalls <= 3, "\(stalls) reads answered 1011")
    }

    /// Concurrent socket clients of one daemon share its questions to the database (a request that arrived before a
    /// question was asked waits for its answer); after every write another daemon acknowledged, each client's next
    /// read sees it, and so does each client's read after its own daemon's write.
    @Test func concurrentSocketReadersSeeEveryAcknowledgedWrite() throws {
        let store = try TestStores.freshDatabase()
        let a = try PipeClient(store: store, actor: "pm.a")
        try a.result("experiment.register", ["experiment": experiment("shared-read")])
        let server = try SharedServiceHardeningTests.Server(store: store, socket: dir.path("readers.sock"))
        defer { server.stop() }
        nonisolated(unsafe) let clients = try (0..<8).map { _ in try SocketClient(path: server.socket) }
        var version = 1
        let stale = Mutex<[String]>([])
        for round in 0..<150 {
            // Even rounds: the other daemon writes; odd rounds: one of this daemon's clients does.
            if round % 2 == 0 {
                version = try a.result("experiment.update", ["key": "shared-read", "version": JSON(version), "changes": ["name": .string("r\(round)")]])["version"]!.intValue!
            } else {
                let r = try clients[round % 8].request(["jsonrpc": "2.0", "id": 1, "method": "experiment.update",
                                                        "params": ["key": "shared-read", "version": JSON(version), "changes": ["name": .string("r\(round)")]]])
                guard let v = r["result"]?["version"]?.intValue else { Issue.record("round \(round): \(r.serialized().prefix(300))"); return }
                version = v
            }
            let expected = version
            DispatchQueue.concurrentPerform(iterations: clients.count) { c in
                for _ in 0..<3 {
                    let r = try? clients[c].request(["jsonrpc": "2.0", "id": 2, "method": "experiment.get", "params": ["key": "shared-read"]])
                    if r?["error"]?["code"] == 1011 { continue }
                    if r?["result"]?["version"]?.intValue != expected {
                        stale.withLock { $0.append("round \(round) client \(c): \(r?.serialized().prefix(200) ?? "no reply")") }
                    }
                    return
                }
            }
        }
        let problems = stale.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.count) stale reads, first: \(problems.prefix(3))")
    }

    /// Reads pipelined in one batch are answered from memory after one question to the database, and still see every
    /// write acknowledged before the batch was sent: another daemon's (between batches) and the reading daemon's own
    /// (earlier in the same batch).
    @Test func pipelinedReadsSeeEveryAcknowledgedWrite() throws {
        let store = try TestStores.freshDatabase()
        let a = try PipeClient(store: store, actor: "pm.a"), b = try PipeClient(store: store, actor: "pm.b")
        try a.result("experiment.register", ["experiment": experiment("theirs")])
        try b.result("experiment.register", ["experiment": experiment("mine")])
        var theirs = 1, mine = 1
        func get(_ key: String, _ id: Int) -> String {
            JSON.object(["jsonrpc": "2.0", "id": JSON(id), "method": "experiment.get", "params": ["key": .string(key)]]).serialized()
        }
        for round in 0..<100 {
            theirs = try a.result("experiment.update", ["key": "theirs", "version": JSON(theirs), "changes": ["name": .string("t\(round)")]])["version"]!.intValue!
            var batch = (0..<10).map { get("theirs", $0) } + (10..<20).map { get("mine", $0) }
            batch.append(JSON.object(["jsonrpc": "2.0", "id": 20, "method": "experiment.update",
                                      "params": ["key": "mine", "version": JSON(mine), "changes": ["name": .string("m\(round)")]]]).serialized())
            batch += (21..<31).map { get("mine", $0) }
            b.send(bytes: Array((batch.joined(separator: "\n") + "\n").utf8))
            let replies = try (0..<31).map { _ in try b.readJSON() }
            for r in replies {
                let id = r["id"]!.intValue!
                guard let result = r["result"] else { Issue.record("round \(round) id \(id): \(r.serialized().prefix(300))"); return }
                let expected: (Int, String) = id < 10 ? (theirs, "t\(round)") : id < 20 ? (mine, round == 0 ? "" : "m\(round - 1)") : (mine + 1, "m\(round)")
                if id < 10 || id > 20 || round > 0 {
                    #expect(result["version"]?.intValue == expected.0 && result["document"]?["name"] == .string(expected.1),
                            "round \(round) id \(id): version \(result["version"]?.serialized() ?? "nil") name \(result["document"]?["name"]?.serialized() ?? "nil"), expected \(expected)")
                }
            }
            mine += 1
        }
        try verified(b)
    }

    /// The server crashes and restarts (`pg_ctl restart -m immediate`) under a stream of registrations: the daemon
    /// answers 1011 meanwhile, never exits, reconnects, and every acknowledged write is there afterwards.
    @Test func serverCrashRestartDuringWritesLosesNothingAcknowledged() throws {
        // Its own cluster: a crash of the shared one would fail the suites running beside this one.
        let cluster = try privateCluster()
        defer { cluster.stop() }
        let store = try cluster.freshDatabase()
        let daemon = try PipeClient(store: store, actor: "pm.stream")
        // The crash comes once the daemon serves: one started during an outage exits 2 by design (its own test below).
        try daemon.result("experiment.register", ["experiment": experiment("first")])
        var acknowledged = ["first"], unavailable = 0, restarted = false
        let restart = Thread {
            usleep(300_000)
            do { try cluster.restart() } catch { Issue.record("restart: \(error)") }
        }
        restart.start()
        let started = Date()
        var i = 0
        while Date().timeIntervalSince(started) < 60 {
            let key = "w\(i)"
            i += 1
            let t0 = Date()
            let reply = try daemon.request("experiment.register", ["experiment": experiment(key)])
            if reply["result"] != nil { acknowledged.append(key); if unavailable > 0 { restarted = true } }
            else if reply["error"]?["code"] == 1011 {
                unavailable += 1
                let message = reply["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("127.0.0.1") && message.contains(database(of: store)) && !message.contains(cluster.password), "\(message)")
                #expect(Date().timeIntervalSince(t0) < 20)
                usleep(50_000)
            } else { Issue.record("unexpected reply \(reply.serialized().prefix(300))") }
            if restarted && acknowledged.count >= 40 { break }
        }
        #expect(unavailable > 0, "the restart was not seen")
        #expect(restarted, "the daemon did not write again after the restart")
        #expect(daemon.process.isRunning)
        // Every acknowledged write is there; an unacknowledged one is whole or absent (audit.verify reconciles records with the log).
        let listed = Set(try daemon.result("experiment.list", ["limit": 1000])["experiments"]!.arrayValue!.compactMap { $0["key"]?.stringValue })
        #expect(Set(acknowledged).isSubset(of: listed), "lost: \(Set(acknowledged).subtracting(listed).sorted().prefix(5))")
        try verified(daemon)
    }

    /// A daemon SIGKILLed in the middle of write bursts, 20 times: nothing acknowledged is lost, nothing is half-applied.
    @Test func sigkilledDaemonsLeaveNothingHalfApplied() throws {
        let store = try TestStores.freshDatabase()
        var acknowledged: [String] = []
        for round in 0..<20 {
            let daemon = try PipeClient(store: store, actor: "pm.burst")
            for j in 0..<30 {
                daemon.send(raw: JSON.object(["jsonrpc": "2.0", "id": JSON(j), "method": "experiment.register",
                                              "params": ["experiment": experiment("k\(round)-\(j)")]]).serialized())
            }
            for _ in 0..<(round % 5 + 3) {
                let reply = try daemon.readJSON()
                if let key = reply["result"]?["key"]?.stringValue { acknowledged.append(key) }
            }
            daemon.kill(SIGKILL)
            _ = daemon.waitForExit()
        }
        let checker = try PipeClient(store: store, actor: "pm.check")
        let listed = Set(try checker.result("experiment.list", ["limit": 1000])["experiments"]!.arrayValue!.compactMap { $0["key"]?.stringValue })
        #expect(Set(acknowledged).isSubset(of: listed))
        try verified(checker)
        let db = database(of: store)
        #expect(try TestStores.psql(db, "SELECT count(*) FROM experiments") == TestStores.psql(db, "SELECT count(DISTINCT key) FROM audit WHERE method = 'experiment.register'"))
    }

    /// The audit log refuses UPDATE, DELETE and TRUNCATE in the database itself; the documented service role can write
    /// the registry but has no privilege on the log beyond reading and appending.
    @Test func auditLogIsAppendOnlyInTheDatabaseAndTheServiceRoleIsLimited() throws {
        let store = try TestStores.freshDatabase()
        let db = database(of: store)
        let owner = try PipeClient(store: store, actor: "pm.owner")
        try owner.result("experiment.register", ["experiment": experiment("audited")])
        for statement in ["UPDATE audit SET reason = 'x'", "DELETE FROM audit", "TRUNCATE audit"] {
            #expect(throws: (any Error).self, "\(statement)") { try TestStores.psql(db, statement) }
        }
        #expect(try TestStores.psql(db, "SELECT count(*) FROM audit") == "1")
        // The deployment section's grants, verbatim from the README.
        let role = "svc_\(db)"
        try TestStores.psql(db, "CREATE ROLE \(role) LOGIN PASSWORD 'svc-secret'",
                            "GRANT CONNECT ON DATABASE \(db) TO \(role)",
                            "GRANT USAGE ON SCHEMA public TO \(role)",
                            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \(role)",
                            "REVOKE UPDATE, DELETE, TRUNCATE ON audit, referee_migrations FROM \(role)")
        let serviceURL = store.replacingOccurrences(of: "referee:\(TestStores.password)@", with: "\(role):svc-secret@")
        let service = try PipeClient(store: serviceURL, actor: "pm.service")
        try service.result("experiment.register", ["experiment": experiment("by-service")])
        try verified(service)
        let asService = { (sql: String) throws -> Int32 in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
            p.arguments = [serviceURL.replacingOccurrences(of: "?sslmode=disable", with: ""), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]
            p.environment = ["PATH": "/usr/bin:/bin", "PGSSLMODE": "disable"]
            p.standardError = Pipe(); p.standardOutput = Pipe()
            try p.run(); p.waitUntilExit()
            return p.terminationStatus
        }
        #expect(try asService("ALTER TABLE audit DISABLE TRIGGER audit_append_only") != 0)
        #expect(try asService("DELETE FROM audit") != 0)
        #expect(try asService("SELECT count(*) FROM audit") == 0)
        let integrity = try service.result("store.integrity")
        #expect(integrity["integrity_check"] == "ok")
    }

    /// Where PostgreSQL cannot be reached, requests that need the registry get 1011 naming host, port and database
    /// (never the password) within the bound, and statistics are still answered.
    @Test func unreachableStoreAnswers1011AndStatisticsStillWork() throws {
        let port = try freePort()
        let r = try runReferee(["serve", "--store", "postgresql://referee:hunter2@127.0.0.1:\(port)/nowhere?sslmode=disable"], stdin: "")
        #expect(r.status == 2)
        #expect(r.stderr.contains("127.0.0.1:\(port)/nowhere") && !r.stderr.contains("hunter2"), "\(r.stderr)")
        // A daemon whose server goes away after it started keeps serving what needs no registry.
        let store = try TestStores.freshDatabase()
        let daemon = try PipeClient(store: store, actor: "pm.a")
        try daemon.result("experiment.register", ["experiment": experiment("before")])
        let db = database(of: store)
        try TestStores.psql("postgres", "ALTER DATABASE \(db) ALLOW_CONNECTIONS false",
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(db)'")
        let t0 = Date()
        let refused = try daemon.request("experiment.get", ["key": "before"])
        #expect(refused["error"]?["code"] == 1011, "\(refused.serialized().prefix(300))")
        #expect(Date().timeIntervalSince(t0) < 20)
        let stats = try daemon.result("stats.srm", ["observed": [500, 520], "weights": [1, 1]])
        #expect(stats["p_value"] != nil)
        try TestStores.psql("postgres", "ALTER DATABASE \(db) ALLOW_CONNECTIONS true")
        #expect(try daemon.result("experiment.get", ["key": "before"])["key"] == "before")
    }

    /// `sslmode=verify-full` against the cluster with a certificate made here: the right CA connects, another is refused.
    @Test func verifyFullChecksTheServerCertificate() throws {
        // Its own cluster, as turning TLS on changes what every other client of the server negotiates.
        let cluster = try privateCluster()
        defer { cluster.stop() }
        let data = cluster.dataDirectory!
        let d = dir.path("tls")
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        func openssl(_ args: String) throws {
            let r = try runProgram("/usr/bin/openssl", args.split(separator: " ").map(String.init))
            #expect(r == 0, "openssl \(args)")
        }
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: d + "/san.ext", atomically: true, encoding: .utf8)
        for ca in ["ca", "other"] {
            try openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=referee-test-\(ca) -keyout \(d)/\(ca).key -out \(d)/\(ca).pem")
        }
        try openssl("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout \(d)/server.key -out \(d)/server.csr")
        try openssl("x509 -req -in \(d)/server.csr -CA \(d)/ca.pem -CAkey \(d)/ca.key -CAcreateserial -days 2 -extfile \(d)/san.ext -out \(d)/server.pem")
        // The server reads its key only if the server's user owns it and no one else can read it.
        var info = stat()
        stat(data, &info)
        for f in ["server.key", "server.pem"] {
            chown(d + "/" + f, info.st_uid, info.st_gid)
            chmod(d + "/" + f, 0o600)
        }
        chmod(d, 0o755)
        chmod(dir.path(""), 0o755)
        try cluster.psql("postgres", ["ALTER SYSTEM SET ssl_cert_file = '\(d)/server.pem'", "ALTER SYSTEM SET ssl_key_file = '\(d)/server.key'",
                                      "ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()"])
        usleep(500_000)
        let store = try cluster.freshDatabase()
        let verified = store.replacingOccurrences(of: "sslmode=disable", with: "sslmode=verify-full&sslrootcert=\(d)/ca.pem")
        let good = try PipeClient(store: verified, actor: "pm.tls")
        try good.result("experiment.register", ["experiment": experiment("over-tls")])
        let ssl = try cluster.psql("postgres", ["SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.application_name = 'referee'"])
        #expect(Int(ssl) ?? 0 >= 1)
        let wrong = store.replacingOccurrences(of: "sslmode=disable", with: "sslmode=verify-full&sslrootcert=\(d)/other.pem")
        let refused = try runReferee(["list", "--store", wrong, "--json"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("127.0.0.1") && refused.stderr.lowercased().contains("certificate"), "\(refused.stderr)")
        #expect(!refused.stderr.contains(cluster.password))
    }

    /// `referee store copy` SQLite → PostgreSQL → SQLite on a registry of a few hundred experiments with results, grants
    /// and a saved group: every answer of the copies equals the original's, the audit chain verifies, a non-empty target
    /// is refused.
    @Test func storeCopyBothWaysKeepsEveryAnswer() throws {
        let original = TestStores.sqliteOnly(dir.path("original.sqlite"))  // copied between the two stores: SQLite in both passes
        do {
            let c = try TestClient(principal: "admin.root", storePath: original)
            try c.ok("access.grant", ["principal": "admin.root", "role": "admin"])
            try c.ok("access.grant", ["principal": "analyst.eve", "role": "analyst"])
            for i in 0..<300 { try c.ok("experiment.register", ["experiment": experiment("copy-\(i)")]) }
            try c.ok("access.grant", ["principal": "approver.bob", "role": "approver"])
            for i in 0..<20 {
                let key = JSON.string("copy-\(i)")
                try c.ok("experiment.transition", ["key": key, "version": 1, "to": "review"])
                try c.ok("experiment.transition", ["key": key, "version": 2, "to": "approved"], as: "approver.bob")
                try c.ok("experiment.transition", ["key": key, "version": 3, "to": "running"])
                try c.ok("results.record", ["key": .string("copy-\(i)"), "metric": "checkout_conversion", "variant": "control", "stats": ["n": JSON(100 + i), "successes": JSON(i)]])
            }
            try c.ok("experiment.update", ["key": "copy-299", "version": 1, "changes": ["name": "Renamed"]])
        }
        let postgres = try TestStores.freshDatabase()
        let there = try runReferee(["store", "copy", "--from", original, "--to", postgres, "--json"])
        #expect(there.status == 0, "\(there.stderr)")
        let report = try JSONParser.parse(there.stdout)
        #expect(report["tables"]?["experiments"] == 300 && report["tables"]?["results"] == 20 && report["audit"]?["ok"] == true, "\(there.stdout)")
        #expect(!there.stdout.contains(TestStores.password))
        let back = TestStores.sqliteOnly(dir.path("back.sqlite"))
        let again = try runReferee(["store", "copy", "--from", postgres, "--to", back])
        #expect(again.status == 0 && again.stdout.contains("audit.verify ok"), "\(again.stdout) \(again.stderr)")
        let refused = try runReferee(["store", "copy", "--from", original, "--to", postgres])
        #expect(refused.status == 1 && refused.stderr.contains("not empty"), "\(refused.stderr)")
        // The same answers from all three.
        let answers = try [original, postgres, back].map { store -> [String] in
            let c = try PipeClient(store: store, actor: "admin.root")
            var out: [String] = []
            out.append(try c.result("experiment.list", ["limit": 1000]).serialized())
            out.append(try c.result("experiment.get", ["key": "copy-299"]).serialized())
            out.append(try c.result("access.list").serialized())
            out.append(try c.result("audit.log", ["limit": 1000]).serialized())
            out.append(try c.result("results.aggregates", ["key": "copy-3"]).serialized())
            let verify = try c.result("audit.verify")
            #expect(verify["ok"] == true)
            out.append(verify["entries"]!.serialized())
            return out
        }
        for (i, name) in ["experiment.list", "experiment.get", "access.list", "audit.log", "results.aggregates", "audit entries"].enumerated() {
            #expect(answers[0][i] == answers[1][i], "\(name): PostgreSQL copy differs")
            #expect(answers[0][i] == answers[2][i], "\(name): SQLite copy back differs")
        }
    }

    /// A cluster of this test's own in its temporary folder (the server's user must be able to reach it).
    func privateCluster() throws -> TestCluster {
        chmod(dir.path(""), 0o755)
        return try TestCluster.start(in: dir.path("cluster"))
    }

    func database(of url: String) -> String {
        let path = url[url.range(of: "/", options: .backwards, range: url.startIndex..<(url.firstIndex(of: "?") ?? url.endIndex))!.upperBound...]
        return String(path.prefix { $0 != "?" })
    }

    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    func runProgram(_ path: String, _ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = Pipe(); p.standardError = Pipe()
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
