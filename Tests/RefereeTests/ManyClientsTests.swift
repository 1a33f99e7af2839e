import Foundation
import Testing
import TestSupport
import JSONCore
import RPC
import Synchronization

/// The shared socket service with 1,000 clients connected at once (issue 15), each with a read and a write in flight,
/// on both stores: every request answered correctly, every write there afterwards, the audit log whole. Each client
/// registers an experiment of its own cohort (a distinct `cohort` equality), so no two conflict, yet every
/// registration still checks the audience of every other (they share a primary metric across layers).
/// `REFEREE_TEST_CLIENTS` sets another count.
@Suite(.serialized) struct ManyClientsTests {
    let dir = TemporaryDirectory()

    @Test func manyClientsOnSQLite() throws {
        try manyClients(store: dir.path("many.sqlite"))
    }

    @Test(.enabled(if: TestStores.clusterURL != nil || ProcessInfo.processInfo.environment["REFEREE_REQUIRE_POSTGRES"] == "1"))
    func manyClientsOnPostgreSQL() throws {
        // The writes queue in the daemon (one at a time, as the advisory lock runs them anyway) without holding a
        // connection, so the gets are answered while a thousand writes wait their turn.
        try manyClients(store: try TestStores.freshDatabase())
    }

    func manyClients(store: String, count: Int = Int(ProcessInfo.processInfo.environment["REFEREE_TEST_CLIENTS"] ?? "") ?? 1000) throws {
        // The test holds as many descriptors too.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 4096 { limit.rlim_cur = min(4096, limit.rlim_max); setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        let server = try SharedServiceHardeningTests.Server(store: store, socket: dir.path("many.sock"), extra: ["--max-connections-per-user", "\(count + 10)"])
        defer { server.stop() }
        let setup = try SocketClient(path: server.socket)
        let registered = try setup.request(["jsonrpc": "2.0", "id": 0, "method": "experiment.register",
                                            "params": ["experiment": exampleExperiment(["key": "shared", "layer": "shared"])]])
        #expect(registered["result"]?["version"] == 1, "\(registered.serialized().prefix(300))")
        // Every connection open before any request is sent.
        // Each thread uses only its own connections.
        nonisolated(unsafe) let clients = try (0..<count).map { _ in try SocketClient(path: server.socket) }
        let failures = Mutex<[String]>([])
        let group = DispatchGroup()
        for t in 0..<8 {
            group.enter()
            Thread {
                defer { group.leave() }
                let mine = stride(from: t, to: count, by: 8).map { $0 }
                do {
                    // A read and a write in flight on each of this thread's connections, then every reply read.
                    for i in mine {
                        let get = JSON.object(["jsonrpc": "2.0", "id": JSON(2 * i), "method": "experiment.get", "params": ["key": "shared"]]).serialized()
                        let register = JSON.object(["jsonrpc": "2.0", "id": JSON(2 * i + 1), "method": "experiment.register",
                                                    "params": ["experiment": exampleExperiment(["key": .string("client-\(i)"), "layer": .string("layer-\(i)"),
                                                                                                "parameters": [.string("p-\(i)")],
                                                                                                "targeting": ["cohort": .string("client-\(i)")]])]]).serialized()
                        try clients[i].send(Array((get + "\n" + register + "\n").utf8))
                    }
                    for i in mine {
                        let first = try clients[i].readLine(), second = try clients[i].readLine()
                        if first["id"]?.intValue != 2 * i || first["result"]?["key"] != "shared" {
                            failures.withLock { $0.append("client \(i) get: \(first.serialized().prefix(200))") }
                        }
                        if second["id"]?.intValue != 2 * i + 1 || second["result"]?["key"] != .string("client-\(i)") {
                            failures.withLock { $0.append("client \(i) register: \(second.serialized().prefix(200))") }
                        }
                    }
                } catch {
                    failures.withLock { $0.append("thread \(t): \(error)") }
                }
            }.start()
        }
        // While the thousand are connected (and their writes still queue), the server runs a fixed set of threads, not one each.
        usleep(200_000)
        let threads = server.threadCount
        group.wait()
        #expect(threads > 0 && threads < 64, "the server ran \(threads) threads for \(count) connections")
        let problems = failures.withLock { $0 }
        #expect(problems.isEmpty, "\(problems.count) failures, first: \(problems.prefix(3))")
        // Every acknowledged write is there, read back in one pipelined batch.
        let gets = (0..<count).map { JSON.object(["jsonrpc": "2.0", "id": JSON($0), "method": "experiment.get", "params": ["key": .string("client-\($0)")]]).serialized() }
        try setup.send(Array((gets.joined(separator: "\n") + "\n").utf8))
        let found = try (0..<count).map { _ in try setup.readLine() }.filter { $0["result"]?["version"] == 1 }.count
        #expect(found == count)
        let verified = try setup.request(["jsonrpc": "2.0", "id": 2, "method": "audit.verify"])
        #expect(verified["result"]?["ok"] == true, "\(verified.serialized().prefix(300))")
    }
}
