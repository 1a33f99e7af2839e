import Foundation
import Testing
import TestSupport
import JSONCore
import RPC

/// The hardening issue's soak: a shared socket server, 8 well-behaved clients and 4 hostile ones
/// (`Scripts/dev/soak/hostile.py`, run as `nobody`: floods, half-sent and endless lines, extreme numbers,
/// NUL strings, pathological targeting, a backtracking regex) for `REFEREE_SOAK_SECONDS` (default 60).
@Suite(.serialized) struct HardeningSoakTests {
    static var seconds: Double { Double(ProcessInfo.processInfo.environment["REFEREE_SOAK_SECONDS"] ?? "") ?? 60 }
    static var canSwitchUser: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") }
    /// The documented memory bound of the soak's server (README, "Faults, load and bad input").
    static let memoryBoundMiB = 512.0

    @Test(.enabled(if: canSwitchUser)) func wellBehavedClientsStayFastAndCorrectUnderAttack() throws {
        let dir = TemporaryDirectory()
        chmod(dir.url.path, 0o755)
        let socket = dir.path("soak.sock")
        let server = try SharedServiceHardeningTests.Server(store: dir.path("soak.sqlite"), socket: socket)
        defer { server.stop() }
        chmod(socket, 0o666)
        let admin = try SocketClient(path: socket)
        func ok(_ method: String, _ params: JSON) throws -> JSON {
            let r = try admin.request(["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params])
            guard let result = r["result"] else { throw PipeClient.PipeError.error(r) }
            return result
        }
        _ = try ok("access.grant", ["principal": "root", "role": "admin"])
        _ = try ok("access.grant", ["principal": "nobody", "role": "ci"])
        _ = try ok("experiment.register", ["experiment": exampleExperiment(["key": "soak-0", "targeting": ["email": ["$regex": "^(a+)+$"]]])])
        _ = try ok("access.grant", ["principal": "approver.bob", "role": "approver"])
        _ = try ok("experiment.transition", ["key": "soak-0", "version": 1, "to": "review"])
        // Four eyes: root registered it, so approver.bob approves (through stdio on the same store).
        #expect(try runReferee(["transition", "soak-0", "approved", "--actor", "approver.bob", "--store", dir.path("soak.sqlite")]).status == 0)
        _ = try ok("experiment.transition", ["key": "soak-0", "version": 3, "to": "running"])
        let expectedRecord = try ok("experiment.get", ["key": "soak-0"])
        let compareParams: JSON = ["metric": "binomial", "control": ["n": 1000, "successes": 100], "treatment": ["n": 1000, "successes": 125]]
        let expectedCompare = try ok("stats.compare", compareParams)
        let assignParams: JSON = ["unit": "user-42", "layer": "checkout", "attributes": ["email": "aaaa", "country": "US", "platform": "ios"]]
        let expectedAssign = try ok("assign", assignParams)

        // The attackers, as another user.
        let hostile = Process()
        hostile.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        hostile.arguments = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3",
                             repositoryRoot.appendingPathComponent("Scripts/dev/soak/hostile.py").path, socket, String(Self.seconds),
                             repositoryRoot.appendingPathComponent("Protocols/examples/checkout-green-button.json").path]
        let hostileOut = Pipe()
        hostile.standardOutput = hostileOut
        hostile.standardError = FileHandle.nullDevice
        try hostile.run()

        nonisolated(unsafe) var latencies = [[Double]](repeating: [], count: 8)
        nonisolated(unsafe) var wrong = [Int](repeating: 0, count: 8)
        nonisolated(unsafe) var failures = [String?](repeating: nil, count: 8)
        nonisolated(unsafe) var peakMiB = 0.0
        let deadline = Date().addingTimeInterval(Self.seconds)
        let group = DispatchGroup()
        for worker in 0..<8 {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let client = try SocketClient(path: socket)
                    var i = 0
                    while Date() < deadline {
                        let (method, params, expected): (String, JSON, JSON) = switch i % 3 {
                        case 0: ("experiment.get", ["key": "soak-0"], expectedRecord)
                        case 1: ("stats.compare", compareParams, expectedCompare)
                        default: ("assign", assignParams, expectedAssign)
                        }
                        let started = DispatchTime.now().uptimeNanoseconds
                        let reply = try client.request(["jsonrpc": "2.0", "id": JSON(i), "method": .string(method), "params": params])
                        latencies[worker].append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6)
                        if reply["result"] != expected || reply["id"] != JSON(i) { wrong[worker] += 1 }
                        i += 1
                        usleep(2000)
                    }
                } catch {
                    failures[worker] = "\(error)"
                }
            }.start()
        }
        while Date() < deadline {
            peakMiB = max(peakMiB, server.residentMiB)
            usleep(250_000)
        }
        #expect(group.wait(timeout: .now() + 60) == .success)
        hostile.waitUntilExit()
        let attacks = String(decoding: hostileOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)

        let all = latencies.flatMap { $0 }.sorted()
        let p50 = all.isEmpty ? .nan : all[all.count / 2]
        let p99 = all.isEmpty ? .nan : all[min(all.count - 1, Int(Double(all.count) * 0.99))]
        print("soak: \(all.count) well-behaved requests in \(Self.seconds) s, p50 \(p50) ms, p99 \(p99) ms, max \(all.last ?? .nan) ms; server peak \(peakMiB) MiB; attacks \(attacks)")
        #expect(failures.allSatisfy { $0 == nil }, "\(failures)")
        #expect(wrong.reduce(0, +) == 0)
        #expect(all.count > Int(Self.seconds) * 500)
        #expect(p99 < 10, "p99 \(p99) ms")
        #expect(peakMiB < Self.memoryBoundMiB, "peak \(peakMiB) MiB")
        #expect(server.process.isRunning)
        #expect(try ok("audit.verify", [:])["ok"] == true)
        let counts = try JSONParser.parse(attacks.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect((counts["flood_refused"]?.doubleValue ?? 0) > 0, "the flood met the per-user limit")
        #expect((counts["patterns"]?.doubleValue ?? 0) > 0 && (counts["numbers"]?.doubleValue ?? 0) > 0)
    }
}
