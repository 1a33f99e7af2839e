import Foundation
import Testing
import TestSupport
import JSONCore

/// Gates that say no: four eyes from the audit log, owners, the schedule, results before running, missing stores.
@Suite struct GatesTests {
    @Test func fourEyesExcludesEveryAuthorNotOnlyTheOwnerField() throws {
        // Open mode: registering with someone else as owner does not make the registrant an approver.
        let c = try TestClient(principal: "pm.mallory")
        try c.register(["owner": "pm.zed"])
        try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 1, "to": "review"])
        let e = try #require(c.error("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "approved"]))
        #expect(e.code == 1004)
        #expect(e.message.contains("pm.mallory registered it") && e.message.contains("pm.zed (owns it)"), "\(e.message)")
        // Changing owner with experiment.update does not help either.
        try c.ok("experiment.update", ["key": "checkout-green-button", "version": 2, "changes": ["owner": "pm.other"]], as: "pm.eve")
        #expect(c.error("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "approved"], as: "pm.eve")?.message.contains("pm.eve updated it") == true)
        try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "approved"], as: "approver.bob")
    }

    @Test func fourEyesHoldsWithGrantsInForce() throws {
        // A user holding pm and approver changes the owner of her own experiment and tries to approve it.
        let c = try TestClient(principal: "root")
        try c.ok("access.grant", ["principal": "pm.eve", "role": "pm"])
        try c.ok("access.grant", ["principal": "pm.eve", "role": "approver"])
        try c.ok("access.grant", ["principal": "approver.bob", "role": "approver"])
        try c.register(["owner": "pm.eve"], as: "pm.eve")
        try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 1, "to": "review"], as: "pm.eve")
        // With grants in force, only an admin hands an experiment to another owner.
        let handOver = try #require(c.error("experiment.update", ["key": "checkout-green-button", "version": 2, "changes": ["owner": "pm.zed"]], as: "pm.eve"))
        #expect(handOver.code == 1004 && handOver.message.contains("another owner"))
        let e = try #require(c.error("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "approved"], as: "pm.eve"))
        #expect(e.code == 1004 && e.message.contains("pm.eve owns it"), "\(e.message)")
        // Acting for the author through another principal does not help either.
        try c.ok("access.grant", ["principal": "portal", "role": "approver"])
        let viaPortal = try #require(c.error("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "approved"], as: "portal", onBehalfOf: "pm.eve"))
        #expect(viaPortal.code == 1004, "\(viaPortal.message)")
        try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 2, "to": "approved"], as: "approver.bob")
    }

    @Test func withGrantsAPmRegistersOnlyAsOwner() throws {
        let c = try TestClient(principal: "root")
        try c.ok("access.grant", ["principal": "pm.alice", "role": "pm"])
        let e = try #require(c.error("experiment.register", ["experiment": exampleExperiment(["owner": "pm.zed"])], as: "pm.alice"))
        #expect(e.code == 1004 && e.message.contains("only with itself as owner"))
        let r = try c.ok("experiment.register", ["experiment": exampleExperiment(["owner": "pm.zed"])], as: "root")
        #expect(r["owner"] == "pm.zed" && r["created_by"] == "root")
        let entry = try c.ok("audit.log", ["key": "checkout-green-button"])["entries"]?.arrayValue?.last
        #expect(entry?["principal"] == "root" && entry?["after"]?["owner"] == "pm.zed")
    }

    @Test func theScheduleGatesRunning() throws {
        // The fixed clock is 2026-11-20: before the example's start (warning), after a past schedule's end (refused).
        let c = try TestClient()
        try c.register()
        try c.advance("checkout-green-button", to: ["review", "approved"])
        let early = try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 3, "to": "running"])
        #expect(early["warnings"]?.arrayValue?.contains { $0["kind"] == "schedule" && $0["message"]?.stringValue?.contains("before the scheduled start") == true } == true)
        try c.register(["key": "past", "layer": "other", "schedule": ["start": "2026-10-01T00:00:00Z", "end": "2026-10-29T00:00:00Z"]])
        try c.advance("past", to: ["review", "approved"])
        let late = try #require(c.error("experiment.transition", ["key": "past", "version": 3, "to": "running"]))
        #expect(late.code == 1005)
        #expect(late.message.contains("schedule ended") && late.message.contains("experiment.amend"), "\(late.message)")
    }

    @Test func onePairHasOneSeverityWhateverReportsIt() throws {
        let c = try TestClient()
        // Both registered while neither holds traffic; then one runs and the other waits in review.
        try c.register(["key": "live", "layer": "one"])
        try c.register(["key": "pending", "layer": "two"])
        try c.ok("experiment.transition", ["key": "pending", "version": 1, "to": "review"])
        try c.advance("live", to: ["review", "approved", "running"])
        // Running and in review: a warning in the scan and in the running one's check alike.
        let scan = try c.ok("conflicts.scan")["findings"]?.arrayValue ?? []
        #expect(scan.contains { $0["kind"] == "parameter" && $0["severity"] == "warning" })
        #expect(!scan.contains { $0["severity"] == "error" })
        let check = try c.ok("experiment.check", ["experiment": exampleExperiment(["key": "live", "layer": "one"])])
        #expect(check["conflicts"]?.arrayValue?.contains { $0["with"] == "pending" && $0["severity"] == "warning" } == true)
        // When the one in review is to be admitted, both would hold traffic: an error, and it is refused.
        #expect(c.error("experiment.transition", ["key": "pending", "version": 2, "to": "approved"], as: "approver.bob")?.code == 1002)
    }

    @Test func resultsNeedAnExperimentThatHasRun() throws {
        let c = try TestClient()
        try c.register()
        try c.ok("experiment.transition", ["key": "checkout-green-button", "version": 1, "to": "review"])
        let e = try #require(c.error("results.record", ["key": "checkout-green-button", "metric": "checkout_conversion", "variant": "control", "stats": ["n": 10, "successes": 1]]))
        #expect(e.code == 1009 && e.message.contains("has never run"))
    }
}

@Suite(.serialized) struct GatesEndToEndTests {
    let dir = TemporaryDirectory()

    @Test func rowsOutsideTheScheduleAreLeftOutAndCounted() throws {
        let store = ["--store", dir.path("s.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path]
        let doc = dir.path("e.json")
        try exampleExperiment().serialized().write(toFile: doc, atomically: true, encoding: .utf8)
        #expect(try runReferee(["register", doc, "--actor", "pm.alice"] + store).status == 0)
        let csv = dir.path("rows.csv")
        try """
        unit_id,variant,day,checkout_conversion
        u1,control,2026-12-01,1
        u2,green,2026-12-28,0
        u3,green,2023-01-05,1
        u4,control,2027-02-01,0
        """.write(toFile: csv, atomically: true, encoding: .utf8)
        // Before running: refused.
        let draft = try runReferee(["ingest", "checkout-green-button", csv, "--json"] + store)
        #expect(draft.status == 1 && draft.stdout.contains("has never run"), "\(draft.stdout)")
        try makeRunning(store)
        let strict = try runReferee(["ingest", "checkout-green-button", csv, "--json", "--strict-dates"] + store)
        #expect(strict.status == 1 && strict.stdout.contains("outside_schedule"), "\(strict.stdout)")
        let run = try runReferee(["ingest", "checkout-green-button", csv, "--json"] + store)
        #expect(run.status == 0)
        let report = try JSONParser.parse(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(report["units_loaded"] == 2)
        #expect(report["rows_outside_schedule"] == ["count": 2, "first_day": "2023-01-05", "last_day": "2027-02-01"])
    }

    @Test func readOnlyCommandsNeverCreateAStore() throws {
        // Whether a file is created.
        let missing = TestStores.sqliteOnly(dir.path("nope.sqlite"))
        let file = dir.path("e.json")
        try exampleExperiment().serialized().write(toFile: file, atomically: true, encoding: .utf8)
        for args in [["check", file, "--store", missing], ["get", "k", "--store", missing], ["list", "--store", missing],
                     ["call", "protocol.get", #"{"name":"standard"}"#, "--store", missing]] {
            let r = try runReferee(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("no store at"), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: missing), "\(args) created the store")
        }
        // An existing store is opened read-only by these commands: even a refusal's audit entry is not written.
        let real = TestStores.sqliteOnly(dir.path("real.sqlite"))
        #expect(try runReferee(["call", "access.grant", #"{"principal":"pm.alice","role":"pm"}"#, "--store", real, "--actor", "root"]).status == 0)
        let count = { () throws -> Int in
            let r = try runReferee(["call", "audit.head", "--json", "--store", real, "--actor", "root"])
            return try JSONParser.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["entries"]?.intValue ?? -1
        }
        let entries = try count()
        #expect(try runReferee(["get", "k", "--store", real, "--actor", "stranger"]).status == 1)
        #expect(try count() == entries)
        // Checking against nothing is possible when said so.
        let empty = try runReferee(["check", file, "--store", missing, "--allow-empty-store", "--protocols", repositoryRoot.appendingPathComponent("Protocols").path])
        #expect(empty.status == 0, "\(empty.stdout) \(empty.stderr)")
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    /// The CI script exits 2 with the fix when git cannot tell what changed.
    @Test func theCIGateFailsLoudlyWhenGitCannot() throws {
        let repo = dir.path("repo"), clone = dir.path("shallow")
        func sh(_ command: String, in cwd: String) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-c", command]
            p.currentDirectoryURL = URL(fileURLWithPath: cwd)
            var env = ProcessInfo.processInfo.environment
            env["REFEREE"] = refereeBinary
            env["GIT_AUTHOR_NAME"] = "t"; env["GIT_AUTHOR_EMAIL"] = "t@x"; env["GIT_COMMITTER_NAME"] = "t"; env["GIT_COMMITTER_EMAIL"] = "t@x"
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        let script = repositoryRoot.appendingPathComponent("Scripts/ci/check-experiments").path
        // main: one, two, three; the pull request branched at two and adds an experiment.
        _ = try sh("""
            git init -q -b main && mkdir experiments && echo '{}' > experiments/a.json && git add . && git commit -qm one \
            && git commit -q --allow-empty -m two && git checkout -q -b feature && echo '{}' > experiments/b.json && git add . \
            && git commit -qm feature && git checkout -q main && git commit -q --allow-empty -m three
            """, in: repo)
        let missingBase = try sh("git checkout -q feature && \(script) origin/main", in: repo)
        #expect(missingBase.0 == 2 && missingBase.1.contains("fetch it first"), "\(missingBase.1)")
        // A CI checkout: the branch at depth 1, the base fetched at depth 1: no common ancestor here.
        _ = try sh("git clone -q --depth 1 -b feature file://\(repo) \(clone)", in: dir.url.path)
        let shallow = try sh("git fetch -q --depth 1 origin main:refs/remotes/origin/main && \(script) origin/main", in: clone)
        #expect(shallow.0 == 2 && shallow.1.contains("full depth"), "\(shallow.1)")
    }
}

/// `referee check` as CI's gate: proposals, registered keys, duplicates, JUnit and GitHub output.
@Suite(.serialized) struct CheckGateTests {
    let dir = TemporaryDirectory()

    func files(_ docs: [(String, JSON)]) throws -> [String] {
        try docs.map { name, doc in
            let path = dir.path(name)
            try doc.serialized().write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    var store: [String] { ["--store", dir.path("s.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path] }

    func newStore() throws {
        #expect(try runReferee(["serve"] + store).status == 0)
    }

    @Test func twoFilesChangingOneParameterFromTwoLayersFail() throws {
        try newStore()
        let paths = try files([("a.json", exampleExperiment(["key": "a", "layer": "one"])), ("b.json", exampleExperiment(["key": "b", "layer": "two"]))])
        let text = try runReferee(["check"] + paths + store)
        #expect(text.status == 1, "\(text.stdout)")
        #expect(text.stdout.contains("error parameter"), "\(text.stdout)")
        let last = text.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.contains("exit 1") && last.contains("2 errors"), "\(last)")
        let github = try runReferee(["check"] + paths + store + ["--format", "github"])
        #expect(github.stdout.contains("::error file=\(paths[0]),line="), "\(github.stdout)")
        let junit = try runReferee(["check"] + paths + store + ["--format", "junit"])
        #expect(junit.status == 1)
        #expect(junit.stdout.contains("<failure"))
        #expect(try validatesAgainstJUnitSchema(junit.stdout, in: dir), "the JUnit report does not validate against junit-10.xsd")
        #expect(junit.stdout.contains("file=\"\(paths[0])\"") && junit.stdout.contains("timestamp=") && junit.stdout.contains("errors=\"0\""))
    }

    @Test func unreadableFilesAreJUnitErrorsAndExitTwo() throws {
        try newStore()
        let bad = dir.path("bad.json")
        try "{ not json".write(toFile: bad, atomically: true, encoding: .utf8)
        let junit = try runReferee(["check", bad] + store + ["--format", "junit"])
        #expect(junit.status == 2)
        #expect(junit.stdout.contains("<error") && !junit.stdout.contains("<failure"))
        let text = try runReferee(["check", bad] + store)
        #expect(text.stdout.contains("1 unreadable file; exit 2"), "\(text.stdout)")
    }

    @Test func aKeyInTwoFilesIsAnErrorNamingBoth() throws {
        try newStore()
        let paths = try files([("x.json", exampleExperiment(["key": "same", "layer": "one", "parameters": ["p.x"]])),
                               ("y.json", exampleExperiment(["key": "same", "layer": "two", "parameters": ["p.y"]]))])
        let r = try runReferee(["check"] + paths + store)
        #expect(r.status == 1)
        #expect(r.stdout.contains("duplicate_key") && r.stdout.contains(paths[1]), "\(r.stdout)")
    }

    @Test func aRunningExperimentsLockedFieldsAreErrorsNotAValidFile() throws {
        let doc = exampleExperiment()
        let path = try files([("live.json", doc)])[0]
        #expect(try runReferee(["register", path, "--actor", "pm.alice"] + store).status == 0)
        try makeRunning(store)
        // The same file: registered and unchanged, checked as an amendment, no conflict with itself.
        let same = try runReferee(["check", path] + store)
        #expect(same.status == 0, "\(same.stdout)")
        #expect(same.stdout.contains("registered (running): checked as an amendment") && same.stdout.contains("0 findings"), "\(same.stdout)")
        let changed = try files([("changed.json", doc.merging(patch: ["layer": "elsewhere", "unit": "device_id", "design": ["mde": ["absolute": 0.03]]]))])[0]
        let r = try runReferee(["check", changed] + store)
        #expect(r.status == 1)
        for p in ["layer", "unit", "design.mde"] { #expect(r.stdout.contains("violation \(p)") || r.stdout.contains("violation \(p)."), "\(p): \(r.stdout)") }
        #expect(r.stdout.contains("locked_field"))
    }
}

/// What a person sees in the terminal: warnings on stderr, flags not params, plurals, stdin, the new commands.
@Suite(.serialized) struct TerminalTests {
    let dir = TemporaryDirectory()
    var store: [String] { ["--store", dir.path("t.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path] }

    @Test func warningsReachStderrAndMessagesNameFlags() throws {
        let a = dir.path("a.json"), b = dir.path("b.json")
        try exampleExperiment(["key": "a"]).serialized().write(toFile: a, atomically: true, encoding: .utf8)
        try exampleExperiment(["key": "b", "layer": "search"]).serialized().write(toFile: b, atomically: true, encoding: .utf8)
        #expect(try runReferee(["register", a, "--actor", "pm.alice"] + store).status == 0)
        // From standard input, with a warning (a parameter shared with a draft) that text mode must show.
        let second = try runReferee(["register", "-", "--actor", "pm.alice"] + store, stdin: try String(contentsOfFile: b, encoding: .utf8))
        #expect(second.status == 0)
        #expect(second.stderr.contains("warning: parameter with a"), "\(second.stderr)")
        // Violations: the path once per line, no summary line repeating them.
        let bad = dir.path("bad.json")
        try exampleExperiment(["key": "bad", "design": ["alpha": 0.1]]).serialized().write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try runReferee(["register", bad] + store)
        #expect(refused.status == 1)
        #expect(!refused.stderr.contains("design.alpha: design.alpha"), "\(refused.stderr)")
        #expect(refused.stderr.contains("1 protocol violation:\n  design.alpha 0.1 exceeds"), "\(refused.stderr)")
        // A rejected ingestion names the CLI flag, and the report says "1 unit".
        try makeRunning(store, key: "a")
        let rows = dir.path("rows.csv")
        try "unit_id,variant,checkout_conversion\nu1,control,1\nu2,blue,1\n".write(toFile: rows, atomically: true, encoding: .utf8)
        let rejected = try runReferee(["ingest", "a", rows] + store)
        #expect(rejected.status == 1 && rejected.stderr.contains("pass --allow-partial"), "\(rejected.stderr)")
        let partial = try runReferee(["ingest", "a", rows, "--allow-partial"] + store)
        #expect(partial.stdout.contains("loaded 1 unit from 2 rows"), "\(partial.stdout)")
        #expect(!partial.stderr.contains("\r"), "no progress frames outside a terminal")
    }

    @Test func updateAmendAuditAndScanCommands() throws {
        let doc = dir.path("e.json")
        try exampleExperiment().serialized().write(toFile: doc, atomically: true, encoding: .utf8)
        #expect(try runReferee(["register", doc, "--actor", "pm.alice"] + store).status == 0)
        let updated = try runReferee(["update", "checkout-green-button", "--changes", #"{"name":"Greener"}"#, "--json", "--actor", "pm.alice"] + store)
        #expect(updated.status == 0 && updated.stdout.contains("Greener"), "\(updated.stderr)")
        try makeRunning(store)
        let locked = try runReferee(["amend", "checkout-green-button", "--changes", #"{"layer":"other"}"#, "--reason", "move", "--actor", "pm.alice"] + store)
        #expect(locked.status == 1 && locked.stderr.contains("layer"), "\(locked.stderr)")
        let patch = dir.path("patch.json")
        try #"{"description":"clearer"}"#.write(toFile: patch, atomically: true, encoding: .utf8)
        #expect(try runReferee(["amend", "checkout-green-button", "--changes", "@" + patch, "--reason", "wording", "--actor", "pm.alice"] + store).status == 0)
        let audit = try runReferee(["audit", "checkout-green-button"] + store)
        #expect(audit.status == 0 && audit.stdout.contains("experiment.amend") && audit.stdout.contains("(wording)"), "\(audit.stdout)")
        let scan = try runReferee(["scan"] + store)
        #expect(scan.status == 0 && scan.stdout.contains("0 findings"), "\(scan.stdout)")
        let transition = try runReferee(["transition", "checkout-green-button", "stopped", "--expected-version", "1", "--actor", "pm.alice"] + store)
        #expect(transition.status == 1 && transition.stderr.contains("version"), "\(transition.stderr)")
    }
}

/// Review findings on the gates and the CLI.
@Suite(.serialized) struct GatesReviewTests {
    let dir = TemporaryDirectory()

    @Test func oneOddFileDoesNotSpoilTheOthersAndJUnitStaysValid() throws {
        let store = ["--store", dir.path("s.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path]
        #expect(try runReferee(["serve"] + store).status == 0)
        let odd = dir.path("odd.json"), good = dir.path("good.json")
        try exampleExperiment(["key": 42]).serialized().write(toFile: odd, atomically: true, encoding: .utf8)
        try exampleExperiment(["key": "ctl\u{1}key", "layer": "x", "parameters": ["p.q"]]).serialized().write(toFile: good, atomically: true, encoding: .utf8)
        let r = try runReferee(["check", odd, good, "--format", "junit"] + store)
        #expect(r.status == 1, "violations, not an unreadable file: \(r.stdout)")
        #expect(!r.stdout.contains("<error"))
        #expect(try validatesAgainstJUnitSchema(r.stdout, in: dir), "a control character in a key must not make the report invalid XML")
    }

    @Test func statisticsNeedNoStoreAndCreateNone() throws {
        // Whether a file is created.
        let missing = TestStores.sqliteOnly(dir.path("none.sqlite"))
        let r = try runReferee(["call", "stats.srm", #"{"observed":[10,12],"weights":[1,1]}"#, "--json", "--store", missing])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: missing))
        // Commands on an existing experiment never create a store either.
        let t = try runReferee(["transition", "k", "review", "--expected-version", "1", "--store", missing])
        #expect(t.status == 2 && !FileManager.default.fileExists(atPath: missing))
    }

    @Test func addingAnEmptyObjectUnderALockedFieldIsALockedChange() throws {
        #expect(JSON.touchedPaths(ofPatch: ["design": ["extra": [:]]]) == ["design.extra"])
        let c = try TestClient()
        try c.register()
        try c.advance("checkout-green-button", to: ["review", "approved", "running"])
        let e = try #require(c.error("experiment.amend", ["key": "checkout-green-button", "version": 4, "changes": ["design": ["extra": [:]]], "reason": "r"]))
        #expect(e.code == 1008 || e.code == 1001, "\(e.message)")
    }
}

/// Whether a JUnit report validates against the Jenkins xunit schema, by a real validator (xmllint).
func validatesAgainstJUnitSchema(_ report: String, in dir: TemporaryDirectory) throws -> Bool {
    let xml = dir.path("report-\(UUID().uuidString).xml")
    try report.write(toFile: xml, atomically: true, encoding: .utf8)
    let lint = Process()
    lint.executableURL = URL(fileURLWithPath: "/usr/bin/xmllint")
    lint.arguments = ["--noout", "--schema", repositoryRoot.appendingPathComponent("Tests/RefereeTests/Reference/junit/junit-10.xsd").path, xml]
    lint.standardError = FileHandle.nullDevice
    try lint.run()
    lint.waitUntilExit()
    return lint.terminationStatus == 0
}
