import Foundation
import Testing
import TestSupport
import JSONCore
import Registry
import RPC

/// The holes of the hardening issue, each proven closed through the real binary where the defect was seen.
@Suite struct HardeningTests {
    let dir = TemporaryDirectory()

    // MARK: 2, 3, 11, 14, 17: extreme numbers get structured answers and the daemon lives

    @Test func extremeDesignNumbersAreViolationsNotCrashes() throws {
        let daemon = try PipeClient(store: dir.path("n.sqlite"))
        var weights = exampleExperiment()
        weights = weights.merging(patch: ["variants": [["key": "control", "weight": 1, "control": true], ["key": "green", "weight": 1e-300]]])
        let cases: [(JSON, String)] = [
            (exampleExperiment(["design": ["expected_daily_units": 1e-300]]), "design.expected_daily_units"),
            (exampleExperiment(["traffic": .number(Double.leastNonzeroMagnitude)]), "traffic"),
            (exampleExperiment(["traffic": 0.00004]), "traffic"),
            (weights, "variants[1].weight"),
            (exampleExperiment(["design": ["mde": ["absolute": 1e-9]]]), "design.mde"),
            (exampleExperiment(["design": ["mde": ["absolute": 7e-10], "expected_daily_units": 1e12]]), "design.mde"),
        ]
        for (doc, path) in cases {
            let r = try daemon.result("experiment.check", ["experiment": doc])
            #expect(r["valid"] == false)
            let paths = r["violations"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
            #expect(paths.contains(path), "expected a violation at \(path), got \(paths)")
        }
        #expect(try daemon.result("experiment.check", ["experiment": exampleExperiment(["traffic": 0.00004])])["violations"]?.arrayValue?.first?["message"]?.stringValue?.contains("0.0001") == true)
        // Sample sizes beyond 10^15 per arm are 1009 naming the field.
        for params: JSON in [["metric": "binomial", "baseline": ["rate": 0.1], "mde": ["absolute": 1e-8], "ratio": 1e-3],
                             ["metric": "binomial", "baseline": ["rate": 0.1], "mde": ["absolute": 7e-10]]] {
            let e = try daemon.request("stats.sample_size", params)["error"]
            #expect(e?["code"] == 1009)
            #expect(e?["data"]?["field"] == "mde")
        }
        #expect(try daemon.result("server.info")["name"] == "referee")
    }

    @Test func oneStoredAggregateCannotPoisonSummaries() throws {
        let store = dir.path("a.sqlite")
        do {
            let daemon = try PipeClient(store: store)
            try daemon.result("experiment.register", ["experiment": exampleExperiment()])
            let approver = try PipeClient(store: store, actor: "approver.bob")
            try daemon.result("experiment.transition", ["key": "checkout-green-button", "version": 1, "to": "review"])
            try approver.result("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "approved"])
            try daemon.result("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "running"])
            for stats: JSON in [["n": 1e19, "successes": 1], ["n": 2.5, "successes": 1], ["n": -1, "successes": 0]] {
                let e = try daemon.request("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "control", "stats": stats])["error"]
                #expect(e?["code"] == 1009)
                #expect(e?["data"]?["field"] == "stats.n")
            }
            // Overflowing sums are refused, never stored as null.
            let e = try daemon.request("results.record", ["key": "checkout-green-button", "metric": "revenue_per_user", "variant": "control", "stats": ["n": 100, "mean": 1e300, "variance": 1e300]])["error"]
            #expect(e?["code"] == 1009)
            try daemon.result("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "control", "stats": ["n": 9e15, "successes": 1]])
            try daemon.result("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "green", "stats": ["n": 9e15, "successes": 2]])
            #expect(try daemon.result("results.summary", ["key": "checkout-green-button"])["experiment"] == "checkout-green-button")
        }
        // Also after a restart.
        let again = try PipeClient(store: store)
        #expect(try again.result("results.summary", ["key": "checkout-green-button"])["experiment"] == "checkout-green-button")
    }

    @Test func chanceToBeatHasADocumentedLimit() throws {
        let daemon = try PipeClient(store: dir.path("c.sqlite"))
        let e = try daemon.request("stats.chance_to_beat", ["control": ["n": 1e15, "successes": 5e14], "treatment": ["n": 1e15, "successes": 5e14]])["error"]
        #expect(e?["code"] == 1009)
        #expect(e?["data"]?["field"] == "control.n")
        let ok = try daemon.result("stats.chance_to_beat", ["control": ["n": 1e12, "successes": 5e11], "treatment": ["n": 1e12, "successes": 5e11]])
        #expect(abs((ok["chance_to_beat_control"]?.doubleValue ?? 0) - 0.5) < 1e-3)
    }

    // MARK: 4: NUL characters

    @Test func nulIsRefusedInEveryTextField() throws {
        let daemon = try PipeClient(store: dir.path("nul.sqlite"))
        try daemon.result("experiment.register", ["experiment": exampleExperiment()])
        for (method, params, path) in [
            ("experiment.get", #"{"key":"checkout-green-button\u0000junk"}"#, "key"),
            ("session.act_for", #"{"actor":"bob\u0000"}"#, "actor"),
            ("access.revoke", #"{"principal":"alice\u0000","role":"admin"}"#, "principal"),
            ("experiment.check", #"{"experiment":{"key":"k","targeting":{"a\u0000":1}}}"#, "experiment.targeting.a\\u0000"),
            ("experiment.list", #"{"owner":["x"],"state":"dr\u0000aft"}"#, "state"),
        ] {
            daemon.send(raw: #"{"jsonrpc":"2.0","id":7,"method":"\#(method)","params":\#(params)}"#)
            let reply = try daemon.readJSON()
            #expect(reply["error"]?["code"] == -32602, "\(method)")
            #expect(reply["error"]?["data"]?["path"]?.stringValue == path, "\(method)")
        }
        // An escaped backslash followed by "u0000" is not NUL.
        daemon.send(raw: #"{"jsonrpc":"2.0","id":8,"method":"experiment.get","params":{"key":"a\\u0000"}}"#)
        #expect(try daemon.readJSON()["error"]?["code"] == 1003)
        #expect(try daemon.result("audit.verify")["ok"] == true)
    }

    // MARK: 16: ids

    @Test func idsComeBackExactlyAsSent() throws {
        let daemon = try PipeClient(store: dir.path("id.sqlite"))
        for id in ["9007199254740993", "-9007199254740993", "1.50", "12345678901234567890123", "1e300", "\"x\""] {
            daemon.send(raw: #"{"jsonrpc":"2.0","id":\#(id),"method":"stats.srm","params":{"observed":[1,1],"weights":[1,1]}}"#)
            let line = try daemon.readLine()
            #expect(line.contains(#""id":\#(id),"#), "\(line)")
        }
        daemon.send(raw: #"[{"jsonrpc":"2.0","id":9007199254740993,"method":"nope"},{"jsonrpc":"2.0","method":"nope"},{"jsonrpc":"2.0","id":9007199254740995,"method":"nope"}]"#)
        let batch = try daemon.readLine()
        #expect(batch.contains(#""id":9007199254740993,"#) && batch.contains(#""id":9007199254740995,"#), "\(batch)")
    }

    // MARK: 6: regular expressions in linear time, with JavaScript's answers

    @Test func backtrackingFeaturesAreRefusedAtRegistration() throws {
        let c = try TestClient()
        for (pattern, rule) in [("(a)\\1", "regex_not_linear"), ("(?=a)b", "regex_not_linear"), ("(?<!a)b", "regex_not_linear"),
                                ("(?<n>a)\\k<n>", "regex_not_linear"), ("(a{1000}){1000}", "regex_not_linear"), ("(", "targeting_syntax"), ("a**", "targeting_syntax")] {
            let r = try c.ok("experiment.check", ["experiment": exampleExperiment(["key": "re", "targeting": ["email": ["$regex": .string(pattern)]]])])
            let rules = r["violations"]?.arrayValue?.compactMap { $0["rule"]?.stringValue } ?? []
            #expect(rules.contains(rule), "\(pattern): \(rules)")
            #expect(r["violations"]?.arrayValue?.contains { $0["path"] == "targeting.email.$regex" } == true)
        }
    }

    @Test func pathologicalRegexAnswersAssignAtOnce() throws {
        let daemon = try PipeClient(store: dir.path("re.sqlite"), actor: "root")
        _ = try daemon.result("experiment.register", ["experiment": exampleExperiment(["targeting": ["email": ["$regex": "^(a+)+$"]]])])
        _ = try daemon.result("experiment.transition", ["key": "checkout-green-button", "version": 1, "to": "review"])
        let approver = try PipeClient(store: dir.path("re.sqlite"), actor: "approver.bob")
        _ = try approver.result("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "approved"])
        _ = try daemon.result("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "running"])
        // A backtracking engine needs 2^n steps here: with n = 5,000 it would never answer.
        let hostile = String(repeating: "a", count: 5000) + "!"
        let r = try daemon.result("assign", ["unit": "u1", "layer": "checkout", "attributes": ["email": .string(hostile), "country": "US", "platform": "ios"], "at": "2026-12-02T00:00:00Z"])
        #expect(r["experiment"] == .null)
        let hit = try daemon.result("assign", ["unit": "u1", "layer": "checkout", "attributes": ["email": .string(String(repeating: "a", count: 5000)), "country": "US", "platform": "ios"], "at": "2026-12-02T00:00:00Z"])
        #expect(hit["layer"] == "checkout")
    }
}

/// Item 5: the conflict search is bounded and never answers a wrong "disjoint".
@Suite struct SatisfiabilityBudgetTests {
    static func disjunction(_ n: Int, from: Int = 1) -> JSON { .array((from...n).map { ["x\($0)": true] }) }

    @Test func forcedAttributesAreDecidedFirst() throws {
        // z ∈ {1, 3} against z = 2 is disjoint whatever the 40 alternatives say: decided exactly, at once.
        let a = try Condition.parse(["z": ["$in": [1, 3]], "$or": Self.disjunction(40)]).get()
        let b = try Condition.parse(["z": 2]).get()
        #expect(Satisfiability.witness([a, b]) == nil)
    }

    /// The pigeonhole principle: 7 pigeons in 6 holes is impossible, and tree search needs exponential time
    /// to find out (no partial assignment of a few attributes refutes it).
    static func pigeonhole(pigeons: Int = 7, holes: Int = 6) -> JSON {
        var clauses: [JSON] = []
        for i in 0..<pigeons { clauses.append(["$or": .array((0..<holes).map { ["p\(i)h\($0)": true] })]) }
        for h in 0..<holes {
            for i in 0..<pigeons { for k in (i + 1)..<pigeons { clauses.append(["$not": ["p\(i)h\(h)": true, "p\(k)h\(h)": true]]) } }
        }
        return ["$and": .array(clauses)]
    }

    @Test func pastTheBudgetTheAnswerIsCanOverlapWithANote() throws {
        let hard = try Condition.parse(Self.pigeonhole()).get()
        let w = try #require(Satisfiability.witness([hard]))
        #expect(w.budgetReached)
        #expect(w.approximate)
        // Every witness the solver does return really satisfies both conditions when it is exact.
        let easy = try Condition.parse(["$or": Self.disjunction(12), "z": 2]).get()
        let exact = try #require(Satisfiability.witness([easy]))
        #expect(!exact.approximate && easy.evaluate(exact.attributes))
    }

    @Test func theRegisterPathAnswersAndSaysTheBudgetWasReached() throws {
        let c = try TestClient(principal: "root")
        try c.register(["key": "a", "layer": "one", "targeting": Self.pigeonhole()])
        let r = try c.ok("experiment.check", ["experiment": exampleExperiment(["key": "b", "layer": "two"])])
        let finding = try #require(r["conflicts"]?.arrayValue?.first { $0["kind"] == "parameter" })
        #expect(finding["witness_note"]?.stringValue?.contains("budget") == true)
    }
}

/// Items 9, 10, 12: the audit log and the store's files against people who can reach them.
@Suite(.serialized) struct AuditTamperTests {
    let dir = TemporaryDirectory()

    /// Runs SQL on a store as someone with the service user's file rights would (Python's sqlite3).
    func tamper(_ store: String, _ sql: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", store, sql]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    @Test func verifyCatchesEditedRecordsGrantsAndTruncation() throws {
        // Tampers with the file through the sqlite3 shell (PostgreSQL's own append-only trigger: PostgresStoreTests).
        let store = TestStores.sqliteOnly(dir.path("t.sqlite"))
        let daemon = try PipeClient(store: store, actor: "root")
        try daemon.result("access.grant", ["principal": "root", "role": "admin"])
        try daemon.result("experiment.register", ["experiment": exampleExperiment()])
        try daemon.result("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["name": "renamed"]])
        let head = try daemon.result("audit.head")
        #expect(head["entries"] == 4)
        #expect(try daemon.result("audit.verify", ["expected_head": head])["ok"] == true)
        // Remove the newest entry and recompute nothing: the head proves the truncation.
        try tamper(store, "DROP TRIGGER audit_append_only_delete; DELETE FROM audit WHERE seq = 4;")
        var v = try daemon.result("audit.verify", ["expected_head": head])
        #expect(v["ok"] == false)
        #expect(v["expected_head"]?["ok"] == false)
        #expect(v["records_ok"] == false, "the record no longer equals its newest audit entry")
        // Change state, owner and traffic behind the service's back.
        try daemon.result("experiment.update", ["key": "checkout-green-button", "version": 2, "changes": ["name": "again"]])
        let head2 = try daemon.result("audit.head")
        try tamper(store, "UPDATE experiments SET state = 'running', owner = 'mallory', document = replace(document, '\"traffic\":0.5', '\"traffic\":1')")
        v = try daemon.result("audit.verify", ["expected_head": head2])
        #expect(v["ok"] == false)
        #expect((v["problems"]?.arrayValue ?? []).contains { $0.stringValue?.contains("changed outside Referee") == true })
        // A grant written with the sqlite3 shell is not in the chain.
        try tamper(store, "INSERT INTO grants VALUES ('mallory', 'admin', 'mallory', '2026-01-01')")
        v = try daemon.result("audit.verify", ["expected_head": head2])
        #expect(v["grants_ok"] == false)
        let wrongHead = try daemon.result("audit.verify", ["expected_head": ["entries": head2["entries"]!, "hash": .string(String(repeating: "a", count: 64))]])
        #expect(wrongHead["expected_head"]?["ok"] == false)
    }

    @Test func refusalsCannotFillTheDisk() throws {
        // Measures the store's files on disk.
        let store = TestStores.sqliteOnly(dir.path("r.sqlite"))
        let daemon = try PipeClient(store: store, actor: "root")
        try daemon.result("access.grant", ["principal": "pm.alice", "role": "pm"])
        try daemon.result("experiment.register", ["experiment": exampleExperiment()])
        let before = try FileManager.default.attributesOfItem(atPath: store + "-wal")[.size] as? Int ?? 0
        let stranger = try PipeClient(store: store, actor: "stranger")
        let hugeKey = String(repeating: "k", count: 256 << 10)
        for _ in 0..<25 {
            #expect(try stranger.request("experiment.update", ["key": .string(hugeKey), "version": 1, "changes": [:]])["error"]?["code"] == 1004)
        }
        let files = ["", "-wal"].map { (try? FileManager.default.attributesOfItem(atPath: store + $0)[.size] as? Int) ?? 0 }
        #expect(files.reduce(0, +) - before < 512 << 10, "store grew by \(files.reduce(0, +) - before) bytes")
        let refusals = try daemon.result("audit.log", ["limit": 1000])["entries"]?.arrayValue?.filter { $0["method"] == "access.refused" } ?? []
        #expect(refusals.count < 25 && refusals.count > 0, "\(refusals.count) of 25 refusals audited (a burst of 20, then 10 a minute)")
        #expect(refusals.allSatisfy { ($0["key"]?.stringValue?.utf8.count ?? 0) < 300 })
        #expect(try daemon.result("audit.verify")["ok"] == true)
    }

    @Test func deletedWALStopsAcknowledgingWrites() throws {
        // Deletes the write-ahead log under the daemon.
        let store = TestStores.sqliteOnly(dir.path("w.sqlite"))
        let daemon = try PipeClient(store: store)
        try daemon.result("experiment.register", ["experiment": exampleExperiment(["key": "before"])])
        try FileManager.default.removeItem(atPath: store + "-wal")
        try FileManager.default.removeItem(atPath: store + "-shm")
        for i in 0..<5 {
            let reply = try daemon.request("experiment.register", ["experiment": exampleExperiment(["key": .string("after-\(i)")])])
            #expect(reply["error"]?["code"] == 1011)
            #expect(reply["error"]?["message"]?.stringValue?.contains("restart") == true)
        }
        kill(daemon.process.processIdentifier, SIGKILL)
        daemon.process.waitUntilExit()
        let fresh = try PipeClient(store: store)
        for i in 0..<5 { #expect(try fresh.request("experiment.get", ["key": .string("after-\(i)")])["error"]?["code"] == 1003) }
        try fresh.result("experiment.register", ["experiment": exampleExperiment(["key": "later"])])
        #expect(try fresh.result("store.integrity")["integrity_check"] == "ok")
    }
}

/// Items 11, 13, 18, 19 and the CLI bypass: ingestion refuses what it cannot store exactly, and cleans up.
@Suite(.serialized) struct IngestHardeningTests {
    let dir = TemporaryDirectory()

    func setUp(_ env: [String: String] = [:]) throws -> [String] {
        let store = ["--store", dir.path("i.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path]
        let file = dir.path("e.json")
        try exampleExperiment().serialized().write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try runReferee(["register", file, "--actor", "pm.alice"] + store).status == 0)
        try makeRunning(store)
        return store
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir.path(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func overflowingSumsAreARejectionNeverANull() throws {
        let store = try setUp()
        let big = try write("big.csv", "unit_id,variant,revenue_per_user\nu1,control,1e308\nu2,control,1e308\nu3,green,1\n")
        let r = try runReferee(["ingest", "checkout-green-button", big, "--json"] + store)
        #expect(r.status == 1)
        #expect(r.stdout.contains("revenue_per_user") && r.stdout.contains("line 2"), "\(r.stdout)")
        // Below the bound, values load and their sums of squares stay finite.
        var many = "unit_id,variant,revenue_per_user\n"
        for i in 0..<3 { many += "u\(i),control,9e149\n" }
        let rows = try write("many.csv", many)
        #expect(try runReferee(["ingest", "checkout-green-button", rows, "--json"] + store).status == 0)
        let summary = try runReferee(["call", "results.summary", #"{"key":"checkout-green-button"}"#, "--json"] + store)
        #expect(summary.status == 0)
        #expect(!summary.stdout.contains(":null,\"sum"))
    }

    @Test func duplicateColumnsAreRefusedByName() throws {
        let store = try setUp()
        for header in ["unit_id,variant,checkout_conversion,checkout_conversion", "unit_id,variant,unit_id,checkout_conversion"] {
            let file = try write("dup.csv", header + "\nu1,control,1,0\n")
            let r = try runReferee(["ingest", "checkout-green-button", file, "--json"] + store)
            #expect(r.status == 1)
            #expect(r.stdout.contains("duplicate_columns") && r.stdout.contains("more than once"), "\(r.stdout)")
        }
    }

    @Test func endlessAndSilentSourcesAreBounded() throws {
        let store = try setUp()
        // /dev/zero as JSON lines: no newline ever; refused after a bounded read.
        let zero = try runReferee(["ingest", "checkout-green-button", "/dev/zero", "--format", "jsonl", "--json"] + store)
        #expect(zero.status == 1)
        #expect(zero.stdout.contains("no newline"), "\(zero.stdout)")
        // A FIFO nobody writes to: given up after the stream timeout, as an I/O error (exit 2).
        let fifo = dir.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let silent = try runReferee(["ingest", "checkout-green-button", fifo, "--json"] + store, environment: ["REFEREE_INGEST_STREAM_TIMEOUT": "1"])
        #expect(silent.status == 2)
        #expect(silent.stdout.contains("1010") && silent.stdout.contains("no data"), "\(silent.stdout)")
    }

    @Test func staleSpillFoldersOfDeadProcessesAreRemoved() throws {
        let store = try setUp()
        let tmp = dir.path("tmp")
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        // A folder left by a killed ingestion (pid 2^22 + 1 is above Linux's default pid_max, so not alive).
        let stale = tmp + "/referee-ingest-4194305-77"
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: true)
        try "x".write(toFile: stale + "/w0p0", atomically: true, encoding: .utf8)
        let mine = tmp + "/referee-ingest-\(getpid())-78"   // a live process's: kept
        try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
        let file = try write("ok.csv", "unit_id,variant,checkout_conversion\nu1,control,1\nu2,green,0\n")
        let r = try runReferee(["ingest", "checkout-green-button", file, "--json"] + store, environment: ["TMPDIR": tmp])
        #expect(r.status == 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp).sorted()
        #expect(left == ["referee-ingest-\(getpid())-78"], "\(left)")
    }

    @Test func theCLICannotIngestWhatTheControlInterfaceRefuses() throws {
        let store = try setUp()
        #expect(try runReferee(["call", "access.grant", #"{"principal":"analyst.eve","role":"analyst"}"#, "--actor", "root"] + store).status == 0)
        let file = try write("rows.csv", "unit_id,variant,checkout_conversion\nu1,control,1\nu2,green,0\n")
        let refused = try runReferee(["ingest", "checkout-green-button", file, "--json", "--actor", "pm.alice"] + store)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("1004"), "\(refused.stdout)")
        #expect(try runReferee(["ingest", "checkout-green-button", file, "--json", "--actor", "analyst.eve"] + store).status == 0)
    }
}

/// Item 2's property test: every numeric field of every method, fed extreme and subnormal values, gets a
/// structured answer, and the daemon stays alive.
@Suite struct ExtremeNumberPropertyTests {
    /// One valid call of each method with numbers in its params (experiment documents included).
    static func templates() -> [(String, JSON)] {
        let doc = exampleExperiment(["key": "extreme"])
        let binomial: JSON = ["metric": "binomial", "control": ["n": 83, "successes": 5], "treatment": ["n": 99, "successes": 12]]
        return [
            ("experiment.check", ["experiment": doc]),
            ("experiment.register", ["experiment": doc]),
            ("experiment.update", ["key": "extreme", "version": 1, "changes": ["traffic": 0.4, "design": ["alpha": 0.05, "expected_daily_units": 100]]]),
            ("experiment.transition", ["key": "extreme", "version": 1, "to": "aborted"]),
            ("experiment.list", ["limit": 10]),
            ("audit.log", ["limit": 10, "after": 0]),
            ("audit.verify", ["expected_head": ["entries": 1, "hash": "00"]]),
            ("assign", ["unit": "u1", "layer": "checkout", "attributes": ["country": "US", "platform": "ios", "age": 30]]),
            ("conflicts.scan", [:]),
            ("stats.compare", binomial),
            ("stats.compare", ["metric": "continuous", "control": ["n": 10, "mean": 1, "variance": 2], "treatment": ["n": 12, "mean": 1.5, "variance": 2], "alpha": 0.05]),
            ("stats.compare", ["metric": "continuous", "control": ["n": 10, "sum": 10, "sum_squares": 30], "treatment": ["n": 12, "sum": 18, "sum_squares": 40]]),
            ("stats.compare", ["metric": "ratio", "control": ["n": 10, "numerator": ["sum": 10, "sum_squares": 20], "denominator": ["sum": 20, "sum_squares": 50], "numerator_denominator_sum_of_products": 25],
                               "treatment": ["n": 10, "numerator": ["sum": 12, "sum_squares": 22], "denominator": ["sum": 20, "sum_squares": 50], "numerator_denominator_sum_of_products": 26]]),
            ("stats.compare", ["metric": "binomial", "control": ["n": 1000, "successes": 100], "treatment": ["n": 1000, "successes": 120], "analysis": "bayesian", "prior": ["mean": 0, "stddev": 1]]),
            ("stats.compare", ["metric": "binomial", "control": ["n": 1000, "successes": 100], "treatment": ["n": 1000, "successes": 120], "analysis": "sequential", "sequential_tuning": 5000]),
            ("stats.compare_batch", ["comparisons": [binomial]]),
            ("stats.chance_to_beat", ["control": ["n": 100, "successes": 10], "treatment": ["n": 100, "successes": 12], "prior": ["alpha": 1, "beta": 1]]),
            ("stats.srm", ["observed": [89, 37, 30], "weights": [40, 20, 20], "threshold": 0.001]),
            ("stats.sample_size", ["metric": "binomial", "baseline": ["rate": 0.5], "mde": ["absolute": 0.25], "alpha": 0.05, "power": 0.9, "ratio": 1]),
            ("stats.sample_size", ["metric": "continuous", "baseline": ["mean": 10, "sd": 3], "mde": ["relative": 0.05], "alpha": 0.05, "power": 0.8, "formula": "t"]),
            ("stats.power", ["metric": "binomial", "baseline": ["rate": 0.5], "mde": ["absolute": 0.25], "n_control": 50, "alpha": 0.05]),
            ("stats.mde", ["metric": "continuous", "baseline": ["mean": 10, "sd": 3], "n_control": 500, "alpha": 0.05, "power": 0.8]),
            ("stats.adjust", ["p_values": [0.01, 0.04, 0.03], "method": "holm", "alpha": 0.05]),
            ("stats.mann_whitney", ["treatment": [19, 22, 16, 29, 24], "control": [20, 11, 17, 12]]),
            ("results.record", ["key": "extreme", "metric": "checkout_conversion", "variant": "control", "stats": ["n": 100, "successes": 10]]),
            ("results.record", ["key": "extreme", "metric": "revenue_per_user", "variant": "control", "stats": ["n": 100, "mean": 3, "variance": 4]]),
            ("results.record", ["key": "extreme", "metric": "revenue_per_user", "variant": "green", "stats": ["n": 100, "post": ["sum": 300, "sum_squares": 1000], "pre": ["sum": 280, "sum_squares": 900], "post_pre_sum_of_products": 950]]),
            ("results.summary", ["key": "extreme"]),
            ("results.timeseries", ["key": "extreme"]),
        ]
    }

    /// Paths of the numeric leaves of a value.
    static func numericPaths(_ value: JSON, _ path: [JSON] = []) -> [[JSON]] {
        switch value {
        case .number: return [path]
        case .object(let o): return o.keys.sorted().flatMap { numericPaths(o[$0]!, path + [.string($0)]) }
        case .array(let a): return a.indices.flatMap { numericPaths(a[$0], path + [JSON($0)]) }
        default: return []
        }
    }

    static func replacing(_ value: JSON, at path: ArraySlice<JSON>, with new: String) -> JSON {
        guard let head = path.first else { return .raw(new) }
        switch (value, head) {
        case (.object(var o), .string(let k)): o[k] = replacing(o[k] ?? .null, at: path.dropFirst(), with: new); return .object(o)
        case (.array(var a), .number(let i)): a[Int(i)] = replacing(a[Int(i)], at: path.dropFirst(), with: new); return .array(a)
        default: return value
        }
    }

    static let extremes = ["0", "-0", "5e-324", "-5e-324", "1e-300", "1e300", "-1e300", "1.7976931348623157e308", "-1.7976931348623157e308",
                           "9007199254740993", "123456789012345678901234567890", "-9223372036854775809", "0.5", "-1"]

    @Test func everyNumericFieldGetsAStructuredAnswer() throws {
        let dir = TemporaryDirectory()
        let daemon = try PipeClient(store: dir.path("x.sqlite"), actor: "root")
        try daemon.result("experiment.register", ["experiment": exampleExperiment(["key": "extreme"])])
        var sent = 0
        for (method, params) in Self.templates() {
            for path in Self.numericPaths(params) {
                for value in Self.extremes {
                    let mutated = Self.replacing(params, at: path[...], with: value)
                    daemon.send(raw: #"{"jsonrpc":"2.0","id":\#(sent),"method":"\#(method)","params":\#(mutated.serialized())}"#)
                    let reply = try daemon.readJSON()
                    let structured = reply["result"] != nil || (reply["error"]?["code"]?.intValue != nil && reply["error"]?["message"]?.stringValue != nil)
                    #expect(structured, "\(method) with \(path) = \(value): \(reply.serialized().prefix(200))")
                    #expect(reply["error"]?["code"] != -32603, "internal error for \(method) \(path) = \(value): \(reply.serialized().prefix(300))")
                    sent += 1
                }
            }
        }
        #expect(sent > 1000)
        #expect(try daemon.result("server.info")["name"] == "referee")
        #expect(try daemon.result("audit.verify")["ok"] == true)
    }
}

/// Review findings: compile-time and match-time bounds of `$regex`, busy pipelining clients, stale targeting.
@Suite struct HardeningReviewTests {
    @Test func storedTargetingThatNoLongerParsesMatchesNoOne() throws {
        let parsed = ExperimentDocument.read(exampleExperiment(["targeting": ["email": ["$regex": "(?!test)"]]]))
        #expect(parsed.0?.targeting == .never)
        #expect(parsed.0?.targeting.evaluate(["email": .string("x")]) == false)
    }

    @Test func aBusyPipeliningClientIsNotTakenForAHalfSentLine() throws {
        let dir = TemporaryDirectory()
        let server = try SharedServiceHardeningTests.Server(store: dir.path("p.sqlite"), socket: dir.path("p.sock"), extra: ["--partial-line-timeout", "1"])
        defer { server.stop() }
        let fd = SharedServiceHardeningTests.connect(server.socket)
        defer { close(fd) }
        // Lines that always straddle the writes: there is always a partial line pending, but each completes at once.
        let line = #"{"jsonrpc":"2.0","id":1,"method":"stats.srm","params":{"observed":[10,12],"weights":[1,1]}}"# + "\n"
        let deadline = Date().addingTimeInterval(3)
        var sent = 0
        var received = 0
        while Date() < deadline {
            let text = String(repeating: line, count: 5)
            let cut = text.index(text.startIndex, offsetBy: line.count * 2 + 17)
            SharedServiceHardeningTests.send(fd, String(text[..<cut]))
            usleep(20_000)
            SharedServiceHardeningTests.send(fd, String(text[cut...]))
            sent += 5
            let (got, closed) = SharedServiceHardeningTests.drain(fd, timeout: 0.05)
            #expect(!closed, "the server closed a busy connection")
            if closed { return }
            received += got.split(separator: "\n").count
        }
        received += SharedServiceHardeningTests.drain(fd, timeout: 1).text.split(separator: "\n").count
        #expect(received == sent)
    }
}

/// Issue 11's I/O rule: input and output failures are 1010 naming the path (the CLI exits 2), never invalid params.
@Suite(.serialized) struct IngestIOErrorTests {
    let dir = TemporaryDirectory()

    @Test func aFullDiskOrAMissingSpillFolderIsAnIOErrorAndWritesNothing() throws {
        let store = ["--store", dir.path("io.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path]
        let file = dir.path("e.json")
        try exampleExperiment().serialized().write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try runReferee(["register", file, "--actor", "pm.alice"] + store).status == 0)
        try makeRunning(store)
        var csv = "unit_id,variant,day,checkout_conversion,revenue_per_user\n"
        for i in 0..<60_000 { csv += "unit-\(i),\(i % 2 == 0 ? "control" : "green"),2026-12-0\(1 + i % 9),\(i % 7 == 0 ? 1 : 0),\(Double(i % 1000) / 7)\n" }
        let rows = dir.path("rows.csv")
        try csv.write(toFile: rows, atomically: true, encoding: .utf8)
        // A spill folder that cannot be made.
        let notADir = dir.path("plain-file")
        try "x".write(toFile: notADir, atomically: true, encoding: .utf8)
        let missing = try runReferee(["ingest", "checkout-green-button", rows, "--json", "--spill-dir", notADir + "/spill"] + store)
        #expect(missing.status == 2)
        #expect(missing.stdout.contains("\"code\":1010") && missing.stdout.contains(notADir), "\(missing.stdout)")
        // A full disk: a 256 KiB tmpfs as the spill folder (when this machine lets the test mount one).
        let small = dir.path("small")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=256k", "tmpfs", small]
        mount.standardError = FileHandle.nullDevice
        try mount.run()
        mount.waitUntilExit()
        if mount.terminationStatus == 0 {
            defer {
                let umount = Process()
                umount.executableURL = URL(fileURLWithPath: "/bin/umount")
                umount.arguments = [small]
                try? umount.run()
                umount.waitUntilExit()
            }
            let full = try runReferee(["ingest", "checkout-green-button", rows, "--json", "--spill-dir", small] + store)
            #expect(full.status == 2)
            #expect(full.stdout.contains("\"code\":1010") && full.stdout.contains("No space left on device") && full.stdout.contains(small), "\(full.stdout)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: small).isEmpty, "spill files left behind")
        }
        let summary = try runReferee(["call", "results.summary", #"{"key":"checkout-green-button"}"#, "--json"] + store)
        #expect(summary.stdout.contains("\"units\":0"), "nothing was written: \(summary.stdout.prefix(300))")
    }
}
