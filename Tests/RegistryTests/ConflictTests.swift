import Foundation
import Testing
import TestSupport
import JSONCore
import Registry
import Statistics
import Synthetic

/// GrowthBook's own Python SDK produced these (Scripts/reference/generate_hash_vectors.py).
@Suite struct GrowthBookHashTests {
    static let vectors: JSON = {
        let url = repositoryRoot.appendingPathComponent("Tests/RegistryTests/Reference/growthbook_hash_vectors.json")
        return try! JSONParser.parse(String(contentsOf: url, encoding: .utf8))
    }()

    @Test func hashV2MatchesTheSDK() throws {
        let cases = try #require(Self.vectors["hash_v2"]?.arrayValue)
        #expect(cases.count >= 300)
        for c in cases {
            let seed = c["seed"]!.stringValue!, value = c["value"]!.stringValue!
            #expect(GrowthBookHash.bucket(seed: seed, value: value) == c["bucket"]!.intValue!, "\(seed) / \(value)")
            #expect(GrowthBookHash.hashV2(seed: seed, value: value) == c["hash"]!.doubleValue!)
        }
    }

    @Test func variantChoiceMatchesTheSDK() throws {
        let cases = try #require(Self.vectors["variants"]?.arrayValue)
        for c in cases {
            let weights = c["weights"]!.arrayValue!.map { $0.doubleValue! }
            let n = GrowthBookHash.hashV2(seed: c["seed"]!.stringValue!, value: c["value"]!.stringValue!)
            #expect(GrowthBookHash.chooseVariation(n, GrowthBookHash.ranges(weights: weights)) == c["variant"]!.intValue!)
        }
    }
}

@Suite struct SatisfiabilityTests {
    func cond(_ text: String) -> Condition { try! Condition.parse(try! JSONParser.parse(text)).get() }

    @Test(arguments: [
        (#"{"country": {"$in": ["US"]}}"#, #"{"country": {"$nin": ["US", "CA"]}}"#),
        (#"{"app_version": {"$vlt": "5.0.0"}}"#, #"{"app_version": {"$vgte": "5.1.0"}}"#),
        (#"{"age": {"$gt": 30}}"#, #"{"age": {"$lte": 30}}"#),
        (#"{"platform": "ios"}"#, #"{"platform": "android"}"#),
        (#"{"beta": true}"#, #"{"beta": {"$exists": false}}"#),
        (#"{"$or": [{"a": 1}, {"a": 2}]}"#, #"{"a": {"$nin": [1, 2]}}"#),
        (#"{"x": {"$gte": "m", "$lt": "n"}}"#, #"{"x": {"$lt": "m"}}"#),
        (#"{"$not": {"plan": {"$exists": true}}}"#, #"{"plan": "pro"}"#),
    ])
    func unsatisfiablePairsHaveNoWitness(a: String, b: String) {
        #expect(Satisfiability.witness([cond(a), cond(b)]) == nil)
    }

    @Test(arguments: [
        (#"{"country": {"$in": ["US", "CA"]}, "platform": "ios"}"#, #"{"country": {"$ne": "US"}}"#),
        (#"{"app_version": {"$vgte": "5.0.0"}}"#, #"{"app_version": {"$vlt": "5.0.1"}}"#),
        (#"{"age": {"$gt": 30}}"#, #"{"age": {"$lt": 31}}"#),
        (#"{"x": {"$gt": "m"}}"#, #"{"x": {"$lt": "n"}, "$nor": [{"x": "m"}]}"#),
        (#"{"plan": {"$nin": ["free"]}}"#, #"{"plan": {"$exists": false}}"#),
        (#"{}"#, #"{"a": {"$regex": "^x"}}"#),
    ])
    func satisfiablePairsHaveARealWitness(a: String, b: String) throws {
        let w = try #require(Satisfiability.witness([cond(a), cond(b)]))
        if !w.approximate {
            #expect(cond(a).evaluate(w.presentAttributes))
            #expect(cond(b).evaluate(w.presentAttributes))
        }
    }

    @Test func regexIsReportedAsApproximate() throws {
        let w = try #require(Satisfiability.witness([cond(#"{"email": {"$regex": "@corp\\.com$"}}"#)]))
        #expect(w.approximate)
    }

    /// Random conditions over a small attribute space: whenever sampling finds a unit in both, the solver must
    /// find a witness, and every witness must satisfy both conditions.
    @Test func solverAgreesWithExhaustiveSampling() {
        var rng = SplitMix(seed: 42)
        let strings: [AttributeValue] = ["US", "CA", "FR", "a", "b"].map { .string($0) }
        let numbers: [AttributeValue] = [1, 5, 10].map { .number($0) }
        let versions = ["1.0.0", "1.2.0", "2.0.0"]
        func randomTest(_ attr: String) -> AttributeTest {
            switch rng.next() % 8 {
            case 0: return .equals(strings.randomElement(using: &rng))
            case 1: return .isIn(Array(strings.shuffled(using: &rng).prefix(Int(rng.next() % 3) + 1)))
            case 2: return .notIn(Array(strings.shuffled(using: &rng).prefix(2)))
            case 3: return .compare(Ordering.allCases.randomElement(using: &rng)!, numbers.randomElement(using: &rng)!)
            case 4: return .exists(rng.next() % 2 == 0)
            case 5: return .version(VersionOperator.allCases.randomElement(using: &rng)!, versions.randomElement(using: &rng)!)
            case 6: return .notEquals(numbers.randomElement(using: &rng))
            default: return .compare(Ordering.allCases.randomElement(using: &rng)!, strings.randomElement(using: &rng)!)
            }
        }
        func randomCondition(depth: Int) -> Condition {
            let attrs = ["a", "b"]
            switch depth > 1 ? 0 : rng.next() % 4 {
            case 0, 1: return .attribute(attrs.randomElement(using: &rng)!, randomTest(attrs.randomElement(using: &rng)!))
            case 2: return .any([randomCondition(depth: depth + 1), randomCondition(depth: depth + 1)])
            default: return .not(randomCondition(depth: depth + 1))
            }
        }
        // The sample space: every combination of these values (and absence) for a and b.
        let values: [AttributeValue?] = strings + numbers + versions.map { .string($0) } + ["1.1.0", "0.9", "3"].map { .string($0) }
            + [.number(0), .number(7), .number(11), .string("z"), .string(""), .bool(true), nil]
        for _ in 0..<400 {
            let x = Condition.all([randomCondition(depth: 0), randomCondition(depth: 0)])
            let y = Condition.all([randomCondition(depth: 0), randomCondition(depth: 0)])
            var sampled = false
            search: for va in values {
                for vb in values {
                    var attrs: Attributes = [:]
                    attrs["a"] = va
                    attrs["b"] = vb
                    if x.evaluate(attrs) && y.evaluate(attrs) { sampled = true; break search }
                }
            }
            let w = Satisfiability.witness([x, y])
            if sampled { #expect(w != nil, "missed a witness for \(x) AND \(y)") }
            if let w {
                #expect(x.evaluate(w.presentAttributes) && y.evaluate(w.presentAttributes), "bad witness \(w) for \(x) AND \(y)")
            }
        }
    }
}

@Suite struct ConflictIndexTests {
    /// The indexed detector finds exactly what comparing every pair finds.
    @Test(arguments: [1, 2, 3])
    func indexEqualsBruteForce(seed: UInt64) {
        let subjects = randomRegistry(count: 400, layers: 6, parameters: 40, metrics: 12, seed: seed)
        let index = ConflictIndex(subjects)
        var brute: [Finding] = []
        for i in subjects.indices {
            for j in subjects.indices where i < j {
                let (a, b) = subjects[i].key < subjects[j].key ? (subjects[i], subjects[j]) : (subjects[j], subjects[i])
                brute += ConflictRules.findings(a, b, symmetric: true)
            }
        }
        for s in subjects where s.buckets.isEmpty && !s.state.holdsTraffic {
            if let f = ConflictRules.capacity(s, holders: subjects.filter { $0.layer == s.layer }).finding { brute.append(f) }
        }
        let key = { (f: Finding) in "\(f.experiments)|\(f.kind.rawValue)|\(f.severity.rawValue)|\(f.message)" }
        let scanned = index.scan()
        #expect(scanned.count > 50, "the random registry should produce findings")
        #expect(Set(scanned.map(key)) == Set(brute.map(key)))
        #expect(scanned.count == brute.count)
        // A single check equals the pairwise findings of that subject.
        for s in subjects.prefix(40) {
            let checked = index.check(s, includeCapacity: false).map(key)
            let pairwise = subjects.flatMap { ConflictRules.findings(s, $0) }.map(key)
            #expect(Set(checked) == Set(pairwise))
        }
        // Every witness satisfies both targetings.
        for f in scanned {
            guard let w = f.witness, !w.approximate else { continue }
            let a = index.subjects[f.experiments[0]]!, b = index.subjects[f.experiments[1]]!
            #expect(a.targeting.evaluate(w.presentAttributes) && b.targeting.evaluate(w.presentAttributes))
        }
    }

    @Test func allocationIsDeterministicDisjointAndCompact() {
        var taken: [Range<Int>] = []
        for traffic in [0.3, 0.25, 0.2, 0.15] {
            let needed = Allocation.bucketsNeeded(traffic: traffic)
            let got = Allocation.take(needed, from: Allocation.free(taken: taken))!
            #expect(Allocation.count(got) == needed)
            #expect(Allocation.intersectionCount(Allocation.normalize(got), Allocation.normalize(taken)) == 0)
            #expect(got.count == 1, "one contiguous range while the layer is not fragmented")
            taken += got
        }
        #expect(Allocation.take(1001, from: Allocation.free(taken: taken)) == nil)
        #expect(Allocation.take(1000, from: Allocation.free(taken: taken)) == [9000..<10000])
        // Deterministic: same input, same output.
        let free = Allocation.free(taken: [0..<100, 500..<700, 900..<1000, 5000..<9990])
        #expect(Allocation.take(1200, from: free) == Allocation.take(1200, from: free))
        #expect(Allocation.count(Allocation.take(1200, from: free)!) == 1200)
    }
}
