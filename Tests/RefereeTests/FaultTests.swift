import Foundation
import Testing
import TestSupport
import JSONCore
import Synthetic

/// Faults and bad input against the real daemon.
@Suite(.serialized) struct FaultTests {
    let dir = TemporaryDirectory()

    /// Starts a daemon reading `input` (a file) and writing to `output`; returns its peak resident memory in KiB.
    func runWithMemory(_ args: [String], input: String, output: String) throws -> (status: Int32, peakKiB: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: refereeBinary)
        process.arguments = args
        process.standardInput = FileHandle(forReadingAtPath: input)!
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: output)!
        process.standardError = FileHandle.nullDevice
        try process.run()
        var peak = 0
        while process.isRunning {
            if let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
               let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) {
                peak = max(peak, kib)
            }
            usleep(20_000)
        }
        return (process.terminationStatus, peak)
    }

    /// 100,000 mutated and adversarial lines: each gets a structured answer, the daemon survives within a
    /// memory bound, and the store file is byte-for-byte unchanged.
    @Test func fuzzedLinesNeverChangeTheStore() throws {
        // Compares the store file's bytes before and after.
        let store = TestStores.sqliteOnly(dir.path("fuzz.sqlite"))
        let protocols = ["--protocols", repositoryRoot.appendingPathComponent("Protocols").path]
        // A store with one experiment, then closed so the file is settled.
        let setup = try runReferee(["register", try write("e.json", exampleExperiment()), "--store", store, "--actor", "pm.alice"] + protocols)
        #expect(setup.status == 0)
        // One idle session lets SQLite fold the write-ahead log into the file, so the bytes are settled.
        // (serve with no input: read-only commands open the store read-only, and a read-only connection does not checkpoint.)
        #expect(try runReferee(["serve", "--store", store] + protocols).status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: store))

        // Seeds that cannot change the store however they are mutated by one edit: reads, stale versions, invalid documents.
        let invalidDoc = exampleExperiment(["key": "fuzz-new", "design": ["alpha": 0.7]]).serialized()
        let seeds = [
            #"{"jsonrpc":"2.0","id":1,"method":"experiment.get","params":{"key":"checkout-green-button"}}"#,
            #"{"jsonrpc":"2.0","id":"x","method":"experiment.update","params":{"key":"checkout-green-button","version":977,"changes":{"name":"zz"}}}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"experiment.transition","params":{"key":"checkout-green-button","version":977,"to":"review"}}"#,
            #"{"jsonrpc":"2.0","id":4,"method":"experiment.register","params":{"experiment":\#(invalidDoc)}}"#,
            #"{"jsonrpc":"2.0","id":5,"method":"stats.compare","params":{"metric":"binomial","control":{"n":100,"successes":5},"treatment":{"n":100,"successes":9}}}"#,
            #"{"jsonrpc":"2.0","id":6,"method":"experiment.list","params":{"state":"draft"}}"#,
            #"[{"jsonrpc":"2.0","id":7,"method":"server.info"},{"jsonrpc":"2.0","id":8,"method":"audit.log","params":{"limit":1}}]"#,
        ].map { Array($0.utf8) }
        let adversarial: [[UInt8]] = [
            Array(String(repeating: "[", count: 100_000).utf8),
            Array(("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"stats.srm\",\"params\":{\"observed\":[" + Array(repeating: "1", count: 300_000).joined(separator: ",") + "]}}").utf8),
            Array(#"{"jsonrpc":"2.0","id":1e999999,"method":"server.info"}"#.utf8),
            Array(#"{"jsonrpc":"2.0","id":10,"method":"experiment.get","params":{"key":"\ud800"}}"#.utf8),
            [0xFF, 0xFE, 0x7B, 0x7D], [0xC0, 0x80], [0x00],
            Array(#"{"jsonrpc":"2.0","id":11,"method":"experiment.get","params":{"key":"checkout-green-button","unknown":true}}"#.utf8),
            Array(#"{"jsonrpc":"2.0","id":{"a":1},"method":"server.info"}"#.utf8),
            Array(#"{"jsonrpc":"2.0","id":12,"method":["experiment.get"]}"#.utf8),
        ]
        var rng = SplitMix(seed: 2026)
        var lines: [[UInt8]] = adversarial
        let interesting: [[UInt8]] = ["\"", "{", "}", "[", "]", ",", ":", "null", "-1e309", "9999999999999999999999", "\u{FFFF}", "\\", "\\u"].map { Array($0.utf8) }
        while lines.count < 100_000 {
            var line = seeds[Int(rng.next() % UInt64(seeds.count))]
            for _ in 0..<Int(rng.next() % 3 + 1) {
                let at = Int(rng.next() % UInt64(line.count))
                switch rng.next() % 6 {
                case 0: line.removeSubrange(at...)                                        // truncate
                case 1: line[at] = UInt8(truncatingIfNeeded: rng.next())                  // flip a byte
                case 2: line.insert(contentsOf: interesting[Int(rng.next() % UInt64(interesting.count))], at: at)
                case 3: line.remove(at: at)
                case 4: line.insert(contentsOf: Array(repeating: UInt8(ascii: "["), count: Int(rng.next() % 200)), at: at)
                default: line.insert(UInt8(0x80 + rng.next() % 0x40), at: at)            // stray continuation byte
                }
                if line.isEmpty { line = [UInt8(ascii: "x")] }
            }
            line.removeAll { $0 == 0x0A || $0 == 0x0D }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { line = [UInt8(ascii: "?")] }
            lines.append(line)
        }
        let input = dir.path("fuzz.in"), output = dir.path("fuzz.out")
        var payload = Data()
        for l in lines { payload.append(contentsOf: l); payload.append(0x0A) }
        try payload.write(to: URL(fileURLWithPath: input))
        let run = try runWithMemory(["serve", "--store", store, "--actor", "fuzzer"] + protocols, input: input, output: output)
        #expect(run.status == 0)
        #expect(run.peakKiB < 400_000, "peak memory \(run.peakKiB) KiB")
        // Every response is a structured JSON-RPC object (or a batch of them); notifications may get none.
        let responses = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(responses.count > 90_000 && responses.count <= lines.count)
        for r in responses {
            let value = try JSONParser.parse(String(r))
            let objects = value.arrayValue ?? [value]
            for o in objects {
                #expect(o["jsonrpc"] == "2.0")
                if let e = o["error"] {
                    #expect(e["code"]?.intValue != nil && e["message"]?.stringValue != nil && e["data"]?["reason"]?.stringValue != nil)
                } else {
                    #expect(o["result"] != nil)
                }
            }
        }
        let after = try Data(contentsOf: URL(fileURLWithPath: store))
        // Every page after the 100-byte file header is identical. The header's change counter and schema cookie
        // move on every open: GRDB creates and drops a scratch table when it finds no write-ahead log
        // (GRDB issue 102), which changes no content.
        #expect(before.count == after.count)
        #expect(before.dropFirst(100) == after.dropFirst(100), "the store's pages changed")
        let audit = try runReferee(["call", "audit.log", "--json", "--store", store] + protocols)
        #expect(try JSONParser.parse(audit.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["entries"]?.arrayValue?.count == 1)
    }

    func write(_ name: String, _ doc: JSON) throws -> String {
        let path = dir.path(name)
        try doc.serialized().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// SIGKILL at random points while a client streams mutations: every acknowledged write survives, nothing
    /// unacknowledged is half-applied, the file passes integrity_check and the audit chain verifies.
    @Test func killNineNeverLosesAnAcknowledgedWrite() throws {
        let store = dir.path("crash.sqlite")
        var rng = SplitMix(seed: 99)
        var acknowledged = 0   // version acknowledged last
        do {
            let d = try PipeClient(store: store)
            acknowledged = try d.result("experiment.register", ["experiment": exampleExperiment()])["version"]!.intValue!
            d.kill()
        }
        for round in 0..<12 {
            let d = try PipeClient(store: store)
            let current = try d.result("experiment.get", ["key": "checkout-green-button"])
            let version = current["version"]!.intValue!
            // The in-flight request of the last round may or may not have committed; never half of it.
            #expect(version == acknowledged || version == acknowledged + 1, "round \(round): version \(version), acknowledged \(acknowledged)")
            #expect(current["document"]?["name"] == .string("name \(version)") || version == 1)
            acknowledged = version
            let writes = Int(rng.next() % 20)
            for _ in 0..<writes {
                let r = try d.result("experiment.update", ["key": "checkout-green-button", "version": JSON(acknowledged),
                                                           "changes": ["name": .string("name \(acknowledged + 1)")]])
                acknowledged = r["version"]!.intValue!
            }
            // One more request in flight, then kill -9 without waiting for its answer.
            d.send(raw: JSON.object(["jsonrpc": "2.0", "id": 99, "method": "experiment.update",
                                     "params": ["key": "checkout-green-button", "version": JSON(acknowledged),
                                                "changes": ["name": .string("name \(acknowledged + 1)")]]]).serialized())
            usleep(UInt32(rng.next() % 3000))
            d.kill()
            _ = d.waitForExit()
        }
        let d = try PipeClient(store: store)
        #expect(try d.result("store.integrity") == ["integrity_check": "ok"])
        #expect(try d.result("audit.verify")["ok"] == true)
        let final = try d.result("experiment.get", ["key": "checkout-green-button"])["version"]!.intValue!
        #expect(final == acknowledged || final == acknowledged + 1)
    }
}
