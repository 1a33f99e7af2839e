import Foundation
import Testing
import TestSupport
import JSONCore
import RPC
@testable import Service
import Store

/// `experiment.get` is answered from memory while nobody has committed: a commit by any other
/// connection to the same file (another daemon, a CLI) must be seen by the very next get.
@Suite struct CommitCacheTests {
    @Test func anotherConnectionsCommitIsSeenAtOnce() throws {
        let dir = TemporaryDirectory()
        let path = dir.path("shared.sqlite")
        let reader = try TestClient(storePath: path)
        let writer = try TestClient(storePath: path)
        try writer.register()
        for round in 1...100 {
            let seen = try reader.ok("experiment.get", ["key": "checkout-green-button"])
            #expect(seen["version"]?.intValue == round)
            _ = try reader.ok("experiment.get", ["key": "checkout-green-button"])  // a cache hit, still current
            try writer.ok("experiment.update", ["key": "checkout-green-button", "version": JSON(round),
                                                "changes": ["hypothesis": .string("round \(round) of a hypothesis that keeps changing")]])
            let after = try reader.ok("experiment.get", ["key": "checkout-green-button"])
            #expect(after["version"]?.intValue == round + 1)
            #expect(after["document"]?["hypothesis"]?.stringValue == "round \(round) of a hypothesis that keeps changing")
        }
        #expect(reader.error("experiment.get", ["key": "not-there"])?.code == 1003)
        try writer.register(["key": "not-there"])
        #expect(try reader.ok("experiment.get", ["key": "not-there"])["version"] == 1)
    }

    @Test func aCommitFromAnotherProcessIsSeenByTheDaemon() throws {
        let dir = TemporaryDirectory()
        let store = dir.path("store.sqlite")
        let daemon = try PipeClient(store: store)
        _ = try daemon.result("experiment.register", ["experiment": exampleExperiment()])
        #expect(try daemon.result("experiment.get", ["key": "checkout-green-button"])["version"] == 1)
        // A separate process commits to the same file.
        let cli = try runReferee(["transition", "checkout-green-button", "review", "--store", store, "--actor", "pm.alice"])
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect(try daemon.result("experiment.get", ["key": "checkout-green-button"])["state"] == "review")
    }
}
