import Foundation
import Testing
import TestSupport
import JSONCore
import RPC

/// Roles, refusals and the bootstrap of access control.
@Suite struct AccessTests {
    @Test func openUntilTheFirstGrantThenEnforced() throws {
        let c = try TestClient(principal: "alice")
        #expect(try c.ok("access.list")["mode"] == "open")
        try c.register(["owner": "pm.carol"], as: "anyone")                          // open mode: anyone may register
        let g = try c.ok("access.grant", ["principal": "pm.carol", "role": "pm"])
        #expect(g["bootstrapped_admin"] == "alice")
        #expect(try c.ok("access.list")["mode"] == "enforced")
        let e = try #require(c.error("experiment.register", ["experiment": exampleExperiment(["key": "x"])], as: "stranger"))
        #expect(e.code == 1004)
        #expect(e.message == "stranger (roles: none) may not call experiment.register; it needs admin or pm")
        #expect(e.json["data"]?["needed"] == ["admin", "pm"])
        // The refusal is audited.
        let last = try c.ok("audit.log")["entries"]?.arrayValue?.last
        #expect(last?["method"] == "access.refused")
        #expect(last?["principal"] == "stranger")
        // Least privilege: once grants exist, reading needs a role too (server.info excepted).
        #expect(c.error("experiment.get", ["key": "checkout-green-button"], as: "stranger")?.code == 1004)
        #expect(try c.ok("server.info", as: "stranger")["name"] == "referee")
        #expect(try c.ok("experiment.get", ["key": "checkout-green-button"], as: "pm.carol")["key"] == "checkout-green-button")
    }

    @Test func eachRoleMayDoWhatItsDescriptionSays() throws {
        let c = try TestClient(principal: "root")
        for (who, role) in [("pm.alice", "pm"), ("pm.dave", "pm"), ("approver.bob", "approver"), ("ci.bot", "ci"), ("analyst.eve", "analyst")] {
            try c.ok("access.grant", ["principal": .string(who), "role": .string(role)])
        }
        try c.register(as: "pm.alice")
        #expect(c.error("experiment.register", ["experiment": exampleExperiment(["key": "k2"])], as: "approver.bob")?.code == 1004)
        // pm edits and moves only its own experiments.
        #expect(c.error("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["name": "x"]], as: "pm.dave")?.code == 1004)
        try c.ok("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["name": "x"]], as: "pm.alice")
        try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "review"], as: "pm.alice")
        // Only an approver (or admin) approves, and never the owner.
        #expect(c.error("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "approved"], as: "pm.dave")?.code == 1004)
        #expect(c.error("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "approved"], as: "ci.bot")?.code == 1004)
        try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "approved"], as: "approver.bob")
        // Results are recorded for experiments that have run.
        try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 4, "to": "running"], as: "pm.alice")
        // ci checks and scans, runs statistics, but cannot register or record results.
        try c.ok("experiment.check", ["experiment": exampleExperiment(["key": "new"])], as: "ci.bot")
        try c.ok("conflicts.scan", as: "ci.bot")
        try c.ok("stats.srm", ["observed": [10, 12], "weights": [1, 1]], as: "ci.bot")
        #expect(c.error("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "control", "stats": ["n": 1, "successes": 0]], as: "ci.bot")?.code == 1004)
        // analyst records results and reads summaries; it cannot check experiments.
        try c.ok("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "control", "stats": ["n": 1, "successes": 0]], as: "analyst.eve")
        try c.ok("results.summary", ["key": "checkout-green-button"], as: "analyst.eve")
        #expect(c.error("experiment.check", ["experiment": exampleExperiment()], as: "analyst.eve")?.code == 1004)
        #expect(c.error("stats.srm", ["observed": [10, 12], "weights": [1, 1]], as: "pm.alice")?.code == 1004)
        // Only admins manage grants; the last admin cannot be revoked.
        #expect(c.error("access.grant", ["principal": "pm.alice", "role": "admin"], as: "pm.alice")?.code == 1004)
        #expect(c.error("access.revoke", ["principal": "root", "role": "admin"])?.code == 1004)
        #expect(try c.ok("access.revoke", ["principal": "pm.dave", "role": "pm"])["revoked"] == true)
        #expect(c.error("experiment.register", ["experiment": exampleExperiment(["key": "k3", "owner": "pm.dave"])], as: "pm.dave")?.code == 1004)
        #expect(try c.ok("audit.verify")["ok"] == true)
    }
}

/// The shared-service mode on a Unix socket.
@Suite(.serialized) struct SocketTests {
    let dir = TemporaryDirectory()

    func startServer(store: String, socket: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: refereeBinary)
        p.arguments = ["serve", "--socket", socket, "--store", try TestStores.endToEnd(store), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) { usleep(20_000) }
        return p
    }

    func call(_ socket: String, _ method: String, _ params: String = "{}", extra: [String] = [], prefix: [String] = []) throws -> (status: Int32, json: JSON?) {
        try socketCall(socket, method, params, extra: extra, prefix: prefix)
    }

    @Test func socketFilesAreRestrictiveAndTheServerStopsOnSigterm() throws {
        let socket = dir.path("r.sock"), store = TestStores.sqliteOnly(dir.path("s.sqlite"))  // the store file's mode
        let server = try startServer(store: store, socket: socket)
        let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
        #expect(mode == 0o660)
        // The store belongs to the service user alone; clients need only the socket.
        #expect((try FileManager.default.attributesOfItem(atPath: store)[.posixPermissions] as? Int) == 0o600)
        let info = try call(socket, "server.info")
        #expect(info.status == 0)
        #expect(info.json?["principal"]?.stringValue == String(cString: getpwuid(geteuid())!.pointee.pw_name))
        // A socket client cannot stop the shared service.
        #expect(try call(socket, "shutdown").status == 1)
        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
        #expect(server.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    /// Every command is a client of the same catalog: the same subcommands work over --socket, with the server's
    /// authorization (the kernel says who the caller is) and the CLI's exit rule.
    @Test func everyCommandWorksOverTheSocket() throws {
        let socket = dir.path("cli.sock"), store = dir.path("cli.sqlite")
        let server = try startServer(store: store, socket: socket)
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        let me = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        let file = dir.path("e.json")
        try exampleExperiment(["owner": .string(me)]).serialized().write(toFile: file, atomically: true, encoding: .utf8)
        let over = ["--socket", socket]
        let registered = try runReferee(["register", file, "--json"] + over)
        #expect(registered.status == 0, "\(registered.stderr)")
        #expect(try JSONParser.parse(registered.stdout)["created_by"]?.stringValue == me)
        #expect(try runReferee(["get", "checkout-green-button"] + over).stdout.contains("checkout-green-button  draft  v1"))
        #expect(try runReferee(["list", "--json"] + over).stdout.contains("\"count\":1"))
        let update = try runReferee(["update", "checkout-green-button", "--changes", #"{"name": "Green button, again"}"#, "--json"] + over)
        #expect(update.status == 0 && update.stdout.contains("\"version\":2"), "\(update.stderr)")
        #expect(try runReferee(["transition", "checkout-green-button", "review"] + over).status == 0)
        // The registrant cannot approve (four eyes) whatever --actor says: over the socket it only names whom one acts for.
        let approve = try runReferee(["transition", "checkout-green-button", "approved", "--actor", "approver.bob"] + over)
        #expect(approve.status == 1 && approve.stderr.contains("four-eyes"), "\(approve.stderr)")
        let audit = try runReferee(["audit", "checkout-green-button", "--json"] + over)
        #expect(try JSONParser.parse(audit.stdout)["entries"]?.arrayValue?.count == 3)
        #expect(try runReferee(["scan"] + over).stdout.contains("0 findings"))
        // A results command for an experiment that never ran is refused by the server (exit 1), not crashed.
        let rows = dir.path("rows.csv")
        try "unit_id,variant\nu1,control\n".write(toFile: rows, atomically: true, encoding: .utf8)
        #expect(try runReferee(["ingest", "checkout-green-button", rows] + over).status == 1)
        #expect(try runReferee(["summary", "nope"] + over).status == 1)
        // A socket that is not there is an I/O error (exit 2).
        #expect(try runReferee(["get", "checkout-green-button", "--socket", dir.path("none.sock")]).status == 2)
    }

    @Test func pythonClientSpeaksToTheSharedSocket() throws {
        let socket = dir.path("py.sock"), store = dir.path("py.sqlite")
        let server = try startServer(store: store, socket: socket)
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        let script = """
            import sys; sys.path.insert(0, "clients/python")
            from referee_client import RefereeClient, RefereeError
            with RefereeClient(socket=sys.argv[1], timeout=30) as c:
                print(c.call("server.info")["principal"])
                try:
                    c.call("experiment.get", key="nope")
                except RefereeError as e:
                    print(e.code)
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, socket]
        p.currentDirectoryURL = repositoryRoot
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(text.split(separator: "\n") == [Substring(String(cString: getpwuid(geteuid())!.pointee.pw_name)), "1003"])
        // The shared server is still up for others.
        #expect(try call(socket, "server.info").status == 0)
    }

    /// The shared service reads an ingestion file only if the connecting user owns it.
    @Test(.enabled(if: getuid() == 0))
    func socketIngestReadsOnlyTheCallersOwnFiles() throws {
        let socket = dir.path("ing.sock"), store = dir.path("ing.sqlite")
        let server = try startServer(store: store, socket: socket)
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        #expect(try call(socket, "experiment.register", JSON.object(["experiment": exampleExperiment()]).serialized()).status == 0)
        for (v, to) in [(1, "review"), (2, "approved"), (3, "running")] {
            // The registrant (root, over the socket) may not approve: approver.bob does, through stdio.
            if to == "approved" {
                #expect(try runReferee(["transition", "checkout-green-button", to, "--actor", "approver.bob", "--store", store]).status == 0)
            } else {
                #expect(try call(socket, "experiment.transition", #"{"key":"checkout-green-button","version":\#(v),"to":"\#(to)"}"#).status == 0)
            }
        }
        let csv = dir.path("rows.csv")
        try "unit_id,variant,checkout_conversion\nu1,control,1\nu2,green,0\n".write(toFile: csv, atomically: true, encoding: .utf8)
        let params = JSON.object(["key": "checkout-green-button", "path": .string(csv)]).serialized()
        #expect(try call(socket, "results.ingest", params).json?["loaded"] == true)
        chown(csv, 65534, 65534)   // now owned by nobody: the root client does not own it
        let refused = try call(socket, "results.ingest", params)
        #expect(refused.status == 1)
        #expect(refused.json?["code"] == 1004)
    }

    /// Identity comes from the kernel: a process running as `nobody` is `nobody`, whatever --actor says.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")))
    func principalComesFromPeerCredentials() throws {
        let socket = dir.path("p.sock"), store = dir.path("p.sqlite")
        let server = try startServer(store: store, socket: socket)
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        let asNobody = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        // Mode 0660 keeps other users out.
        #expect(try call(socket, "server.info", prefix: asNobody).status == 2)
        chmod(socket, 0o666)
        chmod(dir.url.path, 0o755)
        #expect(try call(socket, "server.info", prefix: asNobody).json?["principal"] == "nobody")
        #expect(try call(socket, "access.grant", #"{"principal":"nobody","role":"ci"}"#).json?["role"] == "ci")
        let refused = try call(socket, "experiment.register", #"{"experiment":{}}"#, extra: ["--actor", "root"], prefix: asNobody)
        #expect(refused.status == 1)
        #expect(refused.json?["code"] == 1004)
        #expect(refused.json?["data"]?["principal"] == "nobody")
        let audit = try call(socket, "audit.log")
        let last = audit.json?["entries"]?.arrayValue?.last
        #expect(last?["principal"] == "nobody")
        #expect(last?["on_behalf_of"] == "root")
        #expect(last?["method"] == "access.refused")
    }

    /// Several stdio daemons and many socket clients mutate one store at once: no lost update, every request answered.
    @Test func concurrentDaemonsAndSocketClientsLoseNothing() throws {
        let socket = dir.path("c.sock"), store = dir.path("c.sqlite")
        let server = try startServer(store: store, socket: socket)
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        let setup = try PipeClient(store: store)
        _ = try setup.result("experiment.register", ["experiment": exampleExperiment()])
        let stdioDaemons = try (0..<2).map { _ in try PipeClient(store: store) }
        nonisolated(unsafe) var successes = [Int](repeating: 0, count: 10)
        nonisolated(unsafe) var answered = [Int](repeating: 0, count: 10)
        let group = DispatchGroup()
        // 8 socket clients: optimistic read-modify-write with the version, retrying on 1006.
        for worker in 0..<8 {
            group.enter()
            Thread {
                defer { group.leave() }
                guard let connection = try? SocketClient(path: socket) else { return }
                for i in 0..<15 {
                    while true {
                        guard let got = try? connection.request(["jsonrpc": "2.0", "id": 1, "method": "experiment.get", "params": ["key": "checkout-green-button"]]),
                              let version = got["result"]?["version"] else { return }
                        answered[worker] += 1
                        guard let r = try? connection.request(["jsonrpc": "2.0", "id": 2, "method": "experiment.update",
                                                               "params": ["key": "checkout-green-button", "version": version, "changes": ["name": .string("s\(worker)-\(i)")]]]) else { return }
                        answered[worker] += 1
                        if r["result"] != nil { successes[worker] += 1; break }
                        if r["error"]?["code"] != 1006 { return }
                    }
                }
            }.start()
        }
        // 2 stdio daemons doing the same through their pipes.
        for (d, daemon) in stdioDaemons.enumerated() {
            group.enter()
            Thread {
                defer { group.leave() }
                for i in 0..<15 {
                    while true {
                        guard let version = try? daemon.result("experiment.get", ["key": "checkout-green-button"])["version"] else { return }
                        answered[8 + d] += 1
                        guard let reply = try? daemon.request("experiment.update", ["key": "checkout-green-button", "version": version, "changes": ["name": .string("d\(d)-\(i)")]]) else { return }
                        answered[8 + d] += 1
                        if reply["result"] != nil { successes[8 + d] += 1; break }
                        if reply["error"]?["code"] != 1006 { return }
                    }
                }
            }.start()
        }
        #expect(group.wait(timeout: .now() + 240) == .success)
        #expect(successes == [Int](repeating: 15, count: 10), "every worker completed its updates")
        let final = try setup.result("experiment.get", ["key": "checkout-green-button"])
        #expect(final["version"]?.intValue == 1 + 150, "no update was lost")
        #expect(try setup.result("audit.verify")["entries"] == 151)
        #expect(try setup.result("store.integrity") == ["integrity_check": "ok"])
    }
}
