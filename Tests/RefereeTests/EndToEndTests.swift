import Foundation
import Testing
import TestSupport
import JSONCore

/// Drives the real `referee serve` binary through pipes.
@Suite(.serialized) struct EndToEndTests {
    let dir = TemporaryDirectory()

    func registerLine(id: Int, _ changes: JSON = [:]) -> String {
        JSON.object(["jsonrpc": "2.0", "id": JSON(id), "method": "experiment.register", "params": ["experiment": exampleExperiment(changes)]]).serialized()
    }

    @Test func mixedSessionOfValidInvalidAndMalformedLines() throws {
        let d = try PipeClient(store: dir.path("s.sqlite"), extra: ["--max-line-bytes", "4096"])
        d.send(raw: registerLine(id: 1))
        #expect(try d.readJSON()["result"]?["version"] == 1)
        d.send(raw: #"{"jsonrpc":"2.0","id":"two","method":"experiment.get","params":{"key":"checkout-green-button"}}"#)
        #expect(try d.readJSON()["id"] == "two")
        d.send(raw: #"{"jsonrpc":"2.0","id":3,"method":"experiment.get""#)          // truncated
        let parse = try d.readJSON()
        #expect(parse["error"]?["code"] == -32700)
        #expect(parse["id"] == .null)
        d.send(bytes: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D, 0x0A])                     // invalid UTF-8
        #expect(try d.readJSON()["error"]?["code"] == -32700)
        d.send(raw: "[1, 2]")
        let invalid = try d.readJSON()
        #expect(invalid.arrayValue?.count == 2)
        #expect(invalid.arrayValue?.allSatisfy { $0["error"]?["code"] == -32600 } == true)
        d.send(raw: "[]")
        #expect(try d.readJSON()["error"]?["code"] == -32600)
        d.send(raw: #"{"jsonrpc":"1.0","id":4,"method":"server.info"}"#)
        #expect(try d.readJSON()["error"]?["code"] == -32600)
        d.send(raw: #"{"jsonrpc":"2.0","id":5,"method":"experiment.launch"}"#)
        #expect(try d.readJSON()["error"]?["code"] == -32601)
        d.send(raw: #"{"jsonrpc":"2.0","id":6,"method":"experiment.get","params":{"key":7}}"#)
        let params = try d.readJSON()
        #expect(params["error"]?["code"] == -32602)
        #expect(params["error"]?["data"]?["path"] == "key")
        d.send(raw: #"{"jsonrpc":"2.0","id":7,"method":"experiment.register","params":{"experiment":{"key":"x","protocol":"standard"}}}"#)
        let violation = try d.readJSON()
        #expect(violation["error"]?["code"] == 1001)
        #expect((violation["error"]?["data"]?["violations"]?.arrayValue?.count ?? 0) > 5)
        d.send(raw: "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"server.info\",\"params\":{\"pad\":\"" + String(repeating: "x", count: 10_000) + "\"}}")
        let oversized = try d.readJSON()
        #expect(oversized["error"]?["code"] == -32600)
        #expect(oversized["error"]?["data"]?["limit"] == "max_line_bytes")
        // Notifications get no response; the next response is for id 9.
        d.send(raw: #"{"jsonrpc":"2.0","method":"server.info"}"#)
        d.send(raw: #"{"jsonrpc":"2.0","method":"no.such.method"}"#)
        d.send(raw: #"[{"jsonrpc":"2.0","method":"server.info"}]"#)                 // all-notification batch: nothing
        d.send(raw: #"[{"jsonrpc":"2.0","id":9,"method":"experiment.list"},{"jsonrpc":"2.0","method":"server.info"},{"jsonrpc":"2.0","id":10,"method":"protocol.list"}]"#)
        let batch = try #require(try d.readJSON().arrayValue)
        #expect(batch.map { $0["id"] } == [9, 10])
        #expect(batch[0]["result"]?["count"] == 1)
        // The store holds exactly the one valid registration.
        let audit = try d.result("audit.log")
        #expect(audit["entries"]?.arrayValue?.count == 1)
        #expect(try d.result("shutdown") == ["stopping": true])
        #expect(d.waitForExit() == 0)
    }

    @Test func stdoutCarriesOnlyResponses() throws {
        let session = [
            #"{"jsonrpc":"2.0","id":1,"method":"server.info"}"#, "not json", registerLine(id: 2), registerLine(id: 3),
            #"{"jsonrpc":"2.0","method":"server.info"}"#, #"{"jsonrpc":"2.0","id":4,"method":"shutdown"}"#,
            #"{"jsonrpc":"2.0","id":5,"method":"server.info"}"#,
        ].joined(separator: "\n") + "\n"
        let run = try runReferee(["serve", "--store", dir.path("o.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path], stdin: session)
        #expect(run.status == 0)
        let lines = run.stdout.split(separator: "\n").map { try? JSONParser.parse(String($0)) }
        // Five requests with ids before shutdown plus the parse error; nothing after shutdown.
        #expect(lines.count == 5)
        #expect(lines.allSatisfy { $0?["jsonrpc"] == "2.0" })
        #expect(lines.map { $0?["id"] } == [1, .null, 2, 3, 4])
        #expect(lines[3]?["error"]?["code"] == 1007)
        #expect(run.stderr.contains("serving store"))
    }

    @Test func acknowledgedWritesSurviveRestartAndKill() throws {
        let store = dir.path("p.sqlite")
        do {
            let d = try PipeClient(store: store)
            _ = try d.result("experiment.register", ["experiment": exampleExperiment()])
            _ = try d.result("experiment.update", ["key": "checkout-green-button", "version": 1, "changes": ["name": "Persisted"]])
            d.kill(SIGKILL)
            _ = d.waitForExit()
        }
        let d = try PipeClient(store: store)
        let record = try d.result("experiment.get", ["key": "checkout-green-button"])
        #expect(record["version"] == 2)
        #expect(record["document"]?["name"] == "Persisted")
        #expect(try d.result("audit.verify")["ok"] == true)
        try d.closeInput()
        #expect(d.waitForExit() == 0)
    }

    @Test func twoDaemonsOnOneStoreNeverLoseAnUpdate() throws {
        let store = dir.path("race.sqlite")
        let a = try PipeClient(store: store, actor: "pm.a")
        let b = try PipeClient(store: store, actor: "pm.b")
        _ = try a.result("experiment.register", ["experiment": exampleExperiment()])
        for round in 0..<25 {
            let version = try a.result("experiment.get", ["key": "checkout-green-button"])["version"]!
            let line = { (who: String, id: Int) in
                JSON.object(["jsonrpc": "2.0", "id": JSON(id), "method": "experiment.update",
                             "params": ["key": "checkout-green-button", "version": version, "changes": ["name": .string("\(who) \(round)")]]]).serialized()
            }
            // Both daemons get a change against the same version at (nearly) the same time.
            a.send(raw: line("a", 1000 + round))
            b.send(raw: line("b", 2000 + round))
            let ra = try a.readJSON(), rb = try b.readJSON()
            let wins = [ra, rb].filter { $0["result"] != nil }
            let losses = [ra, rb].filter { $0["error"]?["code"] == 1006 }
            #expect(wins.count == 1 && losses.count == 1, "round \(round): \(ra.serialized()) / \(rb.serialized())")
            let now = try b.result("experiment.get", ["key": "checkout-green-button"])
            #expect(now["version"]?.intValue == version.intValue! + 1)
            #expect(now["document"]?["name"] == wins.first?["result"]?["document"]?["name"])
        }
        let audit = try a.result("audit.verify")
        #expect(audit["ok"] == true && audit["entries"] == 26 && audit["first_broken"] == .null && audit["records_ok"] == true)
    }

    @Test func limitsAreConfigurableAndEachIsAClearError() throws {
        let d = try PipeClient(store: dir.path("l.sqlite"), extra: ["--max-variants", "3", "--max-targeting-conditions", "2", "--max-batch", "2", "--max-depth", "8"])
        let variants = try d.request("experiment.register", ["experiment": exampleExperiment(["variants": [
            ["key": "a", "weight": 0.25, "control": true], ["key": "b", "weight": 0.25], ["key": "c", "weight": 0.25], ["key": "d", "weight": 0.25]]])])
        #expect(variants["error"]?["data"]?["violations"]?.arrayValue?.contains { $0["rule"] == "variants_limit" } == true)
        let targeting = try d.request("experiment.register", ["experiment": exampleExperiment(["targeting": ["a": 1, "b": 2, "c": 3]])])
        #expect(targeting["error"]?["data"]?["violations"]?.arrayValue?.contains { $0["rule"] == "targeting_limit" } == true)
        d.send(raw: #"[{"jsonrpc":"2.0","id":1,"method":"server.info"},{"jsonrpc":"2.0","id":2,"method":"server.info"},{"jsonrpc":"2.0","id":3,"method":"server.info"}]"#)
        let batch = try d.readJSON()
        #expect(batch["error"]?["data"]?["limit"] == "max_batch")
        d.send(raw: #"{"jsonrpc":"2.0","id":4,"method":"server.info","params":{"a":[[[[[[[[[1]]]]]]]]]}}"#)
        let deep = try d.readJSON()
        #expect(deep["error"]?["code"] == -32600)
        #expect(deep["error"]?["data"]?["reason"] == "limit_exceeded")
        #expect(deep["error"]?["message"]?.stringValue?.contains("nesting deeper than 8 levels") == true)
        #expect(try d.result("server.info")["name"] == "referee")
    }

    /// Several processes opening a brand-new store at once (WAL switch and migrations race) all succeed.
    @Test func concurrentFirstOpensOfOneStoreAllSucceed() throws {
        for round in 0..<8 {
            let store = dir.path("fresh-\(round).sqlite")
            let processes = (0..<4).map { _ -> Process in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: refereeBinary)
                // serve (with no input) opens, and so creates, the store; read-only commands never create one.
                p.arguments = ["serve", "--store", store]
                p.standardInput = FileHandle.nullDevice
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                return p
            }
            for p in processes { try p.run() }
            for p in processes { p.waitUntilExit() }
            #expect(processes.map(\.terminationStatus) == [0, 0, 0, 0], "round \(round)")
        }
    }

    @Test func sigtermStopsCleanly() throws {
        let d = try PipeClient(store: dir.path("t.sqlite"))
        _ = try d.result("server.info")
        d.kill(SIGTERM)
        #expect(d.waitForExit() == 0)
    }

    /// A client that sends many requests and never reads the replies cannot keep the daemon from stopping:
    /// SIGTERM gives it a grace period, then the replies are dropped and the daemon exits 0.
    @Test func sigtermStopsEvenWhenTheClientNeverReads() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: refereeBinary)
        process.arguments = ["serve", "--store", dir.path("stuck.sqlite"), "--actor", "pm.alice"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output   // never read
        process.standardError = FileHandle.nullDevice
        try process.run()
        // About 12 MB of replies: far more than the pipe and the daemon's queue hold.
        let request = #"{"jsonrpc":"2.0","id":1,"method":"server.info"}"# + "\n"
        let burst = Data(String(repeating: request, count: 40_000).utf8)
        signal(SIGPIPE, SIG_IGN)   // the daemon exits before it has read everything: EPIPE, not death
        let writer = Thread { try? input.fileHandleForWriting.write(contentsOf: burst) }
        writer.start()
        Thread.sleep(forTimeInterval: 1.5)
        let started = Date()
        process.terminate()   // SIGTERM
        while process.isRunning && Date().timeIntervalSince(started) < 20 { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            Issue.record("the daemon did not stop within 20 s of SIGTERM")
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        try? input.fileHandleForWriting.close()
    }

    /// Replays `Protocols/examples/transcript.jsonl`: each `>` line is sent, each `<` line is the expected
    /// response (timestamps masked).
    @Test func documentedTranscriptReplays() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Protocols/examples/transcript.txt"), encoding: .utf8)
        var requests: [String] = []
        var expected: [JSON] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("> ") { requests.append(String(line.dropFirst(2))) }
            if line.hasPrefix("< ") { expected.append(try JSONParser.parse(String(line.dropFirst(2)))) }
        }
        #expect(!requests.isEmpty)
        let run = try runReferee(["serve", "--store", dir.path("transcript.sqlite"), "--protocols", repositoryRoot.appendingPathComponent("Protocols").path,
                                  "--actor", "pm.alice"], stdin: requests.joined(separator: "\n") + "\n")
        let actual = try run.stdout.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(actual.count == expected.count)
        for (a, e) in zip(actual, expected) {
            #expect(maskVolatile(a) == maskVolatile(e))
        }
    }
}

/// Replaces values that differ from run to run (times, store path, chain hashes) with a marker.
func maskVolatile(_ value: JSON) -> JSON {
    switch value {
    case .object(let o):
        var out: [String: JSON] = [:]
        for (k, v) in o {
            out[k] = ["created_at", "updated_at", "at", "store", "hash", "prev_hash"].contains(k) && v.stringValue != nil ? "<volatile>" : maskVolatile(v)
        }
        return .object(out)
    case .array(let a): return .array(a.map(maskVolatile))
    default: return value
    }
}

@Suite(.serialized) struct CLITests {
    let dir = TemporaryDirectory()

    func example() throws -> String {
        let path = dir.path("exp.json")
        try exampleExperiment().serialized().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func oneShotsShareTheStoreAndUseDocumentedExitCodes() throws {
        let store = ["--store", dir.path("cli.sqlite"), "--actor", "pm.alice"]
        let file = try example()
        let reg = try runReferee(["register", file] + store)
        #expect(reg.status == 0)
        #expect(reg.stdout.contains("checkout-green-button  draft  v1"))
        #expect(try runReferee(["register", file] + store).status == 1)                  // duplicate
        #expect(try runReferee(["register", dir.path("missing.json")] + store).status == 2)
        let get = try runReferee(["get", "checkout-green-button", "--json"] + store)
        #expect(get.status == 0)
        #expect(try JSONParser.parse(get.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["version"] == 1)
        #expect(try runReferee(["get", "nope"] + store).status == 1)
        #expect(try runReferee(["transition", "checkout-green-button", "review"] + store).status == 0)
        let selfApprove = try runReferee(["transition", "checkout-green-button", "approved"] + store)
        #expect(selfApprove.status == 1)
        #expect(selfApprove.stderr.contains("four-eyes"))
        #expect(try runReferee(["transition", "checkout-green-button", "approved", "--store", dir.path("cli.sqlite"), "--actor", "bob"]).status == 0)
        let list = try runReferee(["list", "--state", "approved"] + store)
        #expect(list.stdout.contains("checkout-green-button  approved  v3"))
        let call = try runReferee(["call", "experiment.list", #"{"owner":"pm.alice"}"#, "--json"] + store)
        #expect(try JSONParser.parse(call.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["count"] == 1)
        #expect(try runReferee(["call", "experiment.list", "{not json"] + store).status == 2)
        #expect(try runReferee(["call", "experiment.get", #"{"key": 1}"#] + store).status == 2)
        #expect(try runReferee(["frobnicate"]).status == 2)
    }

    @Test func invalidExperimentPrintsEveryViolation() throws {
        let path = dir.path("bad.json")
        try exampleExperiment(["design": ["alpha": 0.1], "metrics": ["guardrails": []]]).serialized().write(toFile: path, atomically: true, encoding: .utf8)
        let run = try runReferee(["register", path, "--store", dir.path("bad.sqlite")])
        #expect(run.status == 1)
        // Each violation once, its path once (the message names it).
        #expect(run.stderr.contains("\n  design.alpha 0.1 exceeds protocol 'standard' ceiling 0.05"))
        #expect(!run.stderr.contains("design.alpha: design.alpha"))
        #expect(run.stderr.contains("[guardrail_required]"))
    }

    @Test func binaryOutsideTheRepositoryUsesBuiltInProtocols() throws {
        // A read-only command does not create a store: the store is made by serve first.
        #expect(try runReferee(["serve", "--store", dir.path("bi.sqlite")], cwd: dir.url.path).status == 0)
        let run = try runReferee(["call", "server.info", "--json", "--store", dir.path("bi.sqlite")], cwd: dir.url.path)
        #expect(run.status == 0)
        let info = try JSONParser.parse(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(info["protocols_origin"] == "built-in")
        #expect(info["protocols"]?.arrayValue?.count == 2)
    }
}
