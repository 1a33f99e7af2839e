import Testing
import TestSupport
import JSONCore
import RPC

/// The statistics methods over the control interface, checked against the public reference values
/// of ../shared/reference/STATISTICS.md.
@Suite struct StatsServiceTests {
    func close(_ x: JSON?, _ y: Double, rel: Double = 1e-6, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let v = x?.doubleValue else { Issue.record("missing number", sourceLocation: sourceLocation); return }
        #expect(abs(v - y) <= rel * max(abs(y), 1e-12), "\(v) vs \(y)", sourceLocation: sourceLocation)
    }

    @Test func welchOnTheSleepData() throws {
        // R t.test(extra ~ group, data = sleep): group 1 is control, group 2 treatment (signs flip, p does not).
        let r = try TestClient().ok("stats.compare", ["metric": "continuous",
                                                      "control": ["n": 10, "mean": 0.75, "variance": 3.200556],
                                                      "treatment": ["n": 10, "mean": 2.33, "variance": 4.009]])
        close(r["statistic"], 1.8608, rel: 1e-4)
        close(r["df"], 17.776, rel: 1e-4)
        close(r["p_value"], 0.07939, rel: 1e-3)
        close(r["ci"]?.arrayValue?[0], -0.2054832, rel: 1e-4)
        close(r["ci"]?.arrayValue?[1], 3.3654832, rel: 1e-4)
        #expect(r["difference"] == "absolute")
        #expect(r["significant"] == false)
    }

    @Test func pooledTwoProportionZ() throws {
        let r = try TestClient().ok("stats.compare", ["metric": "binomial", "control": ["n": 83, "successes": 5], "treatment": ["n": 99, "successes": 12]])
        close(r["statistic"], 1.40783, rel: 1e-5)
        close(r["p_value"], 0.1591813, rel: 1e-6)
        #expect(r["df"] == .null)
    }

    @Test func studentFromSummaryStatistics() throws {
        let r = try TestClient().ok("stats.compare", ["metric": "continuous", "test": "student",
                                                      "control": ["n": 11, "mean": 12.0, "variance": 39.0],
                                                      "treatment": ["n": 13, "mean": 15.0, "variance": 87.5]])
        close(r["statistic"], 0.9051358093310269, rel: 1e-9)
        close(r["p_value"], 0.3751996797581487, rel: 1e-9)
    }

    @Test func sampleSizePowerAndSRM() throws {
        let c = try TestClient()
        let n = try c.ok("stats.sample_size", ["metric": "binomial", "baseline": ["rate": 0.5], "mde": ["absolute": 0.25], "alpha": 0.05, "power": 0.9, "alternative": "two-sided"])
        close(n["control"], 76.70693, rel: 1e-6)
        #expect(n["control_ceil"] == 77)
        let p = try c.ok("stats.power", ["metric": "binomial", "baseline": ["rate": 0.5], "mde": ["absolute": 0.25], "n_control": 50, "alpha": 0.05, "alternative": "two-sided"])
        close(p["power"], 0.7401659, rel: 1e-6)
        let srm = try c.ok("stats.srm", ["observed": [89, 37, 30, 28, 2], "weights": [40, 20, 20, 15, 5]])
        close(srm["chi2"], 9.9901, rel: 1e-4)
        close(srm["p_value"], 0.04059, rel: 1e-3)
        #expect(srm["mismatch"] == false)
        let mw = try c.ok("stats.mann_whitney", ["treatment": [19, 22, 16, 29, 24], "control": [20, 11, 17, 12]])
        #expect(mw["u_treatment"] == 17)
        close(mw["p_value"], 0.11134688653314041, rel: 1e-9)
        let adj = try c.ok("stats.adjust", ["p_values": [0.01, 0.04, 0.03], "method": "holm"])
        #expect(adj["adjusted"] == [0.03, 0.06, 0.06])
        #expect(adj["reject"] == [true, false, false])
        let ctb = try c.ok("stats.chance_to_beat", ["control": ["n": 100, "successes": 10], "treatment": ["n": 100, "successes": 10], "prior": ["alpha": 1, "beta": 1]])
        close(ctb["chance_to_beat_control"], 0.5, rel: 1e-9)
    }

    @Test func degenerateInputIsError1009NamingTheField() throws {
        let c = try TestClient()
        let e = try #require(c.error("stats.compare", ["metric": "binomial", "control": ["n": 10, "successes": 11], "treatment": ["n": 10, "successes": 1]]))
        #expect(e.code == 1009)
        #expect(e.reason == "invalid_input")
        #expect(e.json["data"]?["field"] == "control.successes")
        #expect(c.error("stats.compare", ["metric": "continuous", "control": ["n": 10, "mean": 1, "variance": 0], "treatment": ["n": 10, "mean": 1, "variance": 0]])?.code == 1009)
        #expect(c.error("stats.compare", ["metric": "binomial", "control": ["n": 10], "treatment": ["n": 10, "successes": 1]])?.json["data"]?["path"] == "control.successes")
        #expect(c.error("stats.compare", ["metric": "poisson", "control": [:], "treatment": [:]])?.json["data"]?["path"] == "metric")
        #expect(c.error("stats.compare", ["metric": "binomial", "control": ["n": 10, "successes": 1], "treatment": ["n": 10, "successes": 1], "prior": ["mean": 0]])?.code == -32602)
    }

    @Test func batchAnswersEveryComparison() throws {
        let r = try TestClient().ok("stats.compare_batch", ["comparisons": [
            ["metric": "binomial", "control": ["n": 83, "successes": 5], "treatment": ["n": 99, "successes": 12]],
            ["metric": "binomial", "control": ["n": 0, "successes": 0], "treatment": ["n": 99, "successes": 12]],
            ["metric": "binomial", "control": ["n": 83, "successes": 5], "treatment": ["n": 99, "successes": 12], "analysis": "bayesian"],
        ]])
        let results = try #require(r["results"]?.arrayValue)
        #expect(results.count == 3)
        close(results[0]["p_value"], 0.1591813, rel: 1e-6)
        #expect(results[1]["error"]?["code"] == 1009)
        #expect(results[1]["error"]?["data"]?["field"]?.stringValue?.hasPrefix("comparisons[1].control") == true)
        #expect(results[2]["chance_to_win"]?.doubleValue != nil)
        #expect(results[2]["risk"]?.arrayValue?.count == 2)
    }
}

/// `stats.compare_batch` writes its results straight to wire text on several threads: that text must be
/// byte for byte what `stats.compare` gives for each comparison, in order.
@Suite struct CompareBatchEncodingTests {
    @Test func batchTextEqualsSingleComparisons() throws {
        let client = try TestClient()
        var rng = SystemRandomNumberGenerator()
        func u(_ range: ClosedRange<Double>) -> JSON { .number(Double.random(in: range, using: &rng)) }
        func n() -> JSON { JSON(Int.random(in: 20...100_000, using: &rng)) }
        var items: [JSON] = []
        for i in 0..<1500 {
            var item: [String: JSON]
            switch i % 5 {
            case 0: item = ["metric": "binomial", "control": ["n": 5000, "successes": JSON(Int.random(in: 1...4999))], "treatment": ["n": 4800, "successes": JSON(Int.random(in: 1...4799))]]
            case 1: item = ["metric": "continuous", "control": ["n": n(), "mean": u(1...20), "variance": u(0.5...9)], "treatment": ["n": n(), "mean": u(1...20), "variance": u(0.5...9)]]
            case 2: item = ["metric": "continuous", "control": ["n": 100, "sum": u(100...2000), "sum_squares": u(30_000...90_000)], "treatment": ["n": 120, "sum": u(100...2000), "sum_squares": u(40_000...90_000)], "difference": "relative"]
            case 3: item = ["metric": "nps", "control": ["promoters": n(), "passives": n(), "detractors": n()], "treatment": ["promoters": n(), "passives": n(), "detractors": n()]]
            default: item = ["metric": "binomial", "control": ["n": 900, "successes": 90], "treatment": ["n": 1000, "successes": JSON(Int.random(in: 60...140))]]
            }
            switch i % 7 {
            case 0: item["analysis"] = "bayesian"
            case 1: item["analysis"] = "sequential"
            case 2: item["alternative"] = "greater"
            case 3: item["alpha"] = u(0.001...0.2)
            default: break
            }
            items.append(.object(item))
        }
        let batch = try #require(client.dispatcher.handle(message: ["jsonrpc": "2.0", "id": 1, "method": "stats.compare_batch", "params": ["comparisons": .array(items)]],
                                                         context: RPCContext(principal: "pm.alice"))?["result"])
        let parsed = try #require(try JSONParser.parse(batch.serialized())["results"]?.arrayValue)
        #expect(parsed.count == items.count)
        var expected: [UInt8] = Array(#"{"results":["#.utf8)
        var errors = 0
        for (i, item) in items.enumerated() {
            if i > 0 { expected.append(UInt8(ascii: ",")) }
            let single = try #require(client.dispatcher.handle(message: ["jsonrpc": "2.0", "id": 1, "method": "stats.compare", "params": item],
                                                              context: RPCContext(principal: "pm.alice")))
            if let result = single["result"] {
                result.write(into: &expected)
            } else {
                // Degenerate random input: the batch carries the same error, its field placed inside the batch.
                errors += 1
                #expect(parsed[i]["error"]?["code"] == single["error"]?["code"])
                parsed[i].write(into: &expected)
            }
        }
        #expect(errors < items.count / 10)
        expected.append(contentsOf: "]}".utf8)
        #expect(batch.serialized() == String(decoding: expected, as: UTF8.self))
    }
}

@Suite struct QuantileServiceTests {
    @Test func comparesQuantilesAndNamesTheArmThatCannot() throws {
        let c = try TestClient()
        let r = try c.ok("stats.compare_quantiles", ["control": .array((0..<200).map { JSON(Double($0)) }), "treatment": .array((0..<200).map { JSON(Double($0) + 20) }), "q": 0.5])
        #expect(r["estimate"] == 20 && r["control"]?["quantile"] == 99.5 && r["quantile"] == 0.5 && r["significant"] == true)
        let rel = try c.ok("stats.compare_quantiles", ["control": .array((1...200).map { JSON(Double($0)) }), "treatment": .array((1...200).map { JSON(Double($0) * 1.1) }), "q": 0.9, "difference": "relative"])
        #expect(abs((rel["estimate"]?.doubleValue ?? 0) - 0.1) < 1e-9)
        let few = c.error("stats.compare_quantiles", ["control": .array((0..<500).map { JSON(Double($0)) }), "treatment": [1, 2, 3], "q": 0.99])
        #expect(few?.code == 1009 && few?.json["data"]?["field"] == "treatment" && few?.message.contains("needs at least 381") == true, "\(few?.json.serialized() ?? "")")
        #expect(c.error("stats.compare_quantiles", ["control": [1, 2], "treatment": [1, 2], "q": 1.5])?.json["data"]?["field"] == "q")
    }
}
