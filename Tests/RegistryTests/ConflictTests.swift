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
        (#"{"$or": [{"a": 1}, {"a": 2}]}"#, #"{"$nor": [{"a": {"$eq": 1}}, {"a": {"$eq": 2}}, {"a": true}, {"a": {"$type": "array"}}, {"a": {"$type": "string"}}]}"#),
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
        // JavaScript's coercions: `{"a": 1}` is `a * 1 === 1`, which `true` and "1" satisfy, and $nin does not see them.
        (#"{"$or": [{"a": 1}, {"a": 2}]}"#, #"{"a": {"$nin": [1, 2]}}"#),
        (#"{}"#, #"{"a": {"$regex": "^x"}}"#),
    ])
    func satisfiablePairsHaveARealWitness(a: String, b: String) throws {
        let w = try #require(Satisfiability.witness([cond(a), cond(b)]))
        if !w.approximate {
            #expect(cond(a).evaluate(w.attributes))
            #expect(cond(b).evaluate(w.attributes))
        }
    }

    @Test func regexGetsAWitnessFromItsPattern() throws {
        let w = try #require(Satisfiability.witness([cond(#"{"email": {"$regex": "@corp\\.com$"}}"#)]))
        #expect(!w.approximate && cond(#"{"email": {"$regex": "@corp\\.com$"}}"#).evaluate(w.attributes), "\(w)")
        // Two patterns that share no string: the search is not exhaustive for regular expressions, so the answer is
        // "can overlap" with the reason, never "disjoint".
        let both = try #require(Satisfiability.witness([cond(#"{"email": {"$regex": "^a"}}"#), cond(#"{"email": {"$regex": "^b"}}"#)]))
        #expect(both.approximate && both.undecided?.contains("$regex on email") == true)
    }

    @Test(arguments: [
        // Nested attributes, arrays and the newer operators.
        (#"{"father.age": {"$gt": 60}}"#, #"{"father.age": {"$lt": 50}}"#, false),
        (#"{"father.age": {"$gt": 60}}"#, #"{"father": {"$exists": true}, "father.name": "Bob"}"#, true),
        (#"{"tags": {"$elemMatch": {"$eq": "beta"}}}"#, #"{"tags": {"$size": 0}}"#, false),
        (#"{"tags": {"$elemMatch": {"$eq": "beta"}}}"#, #"{"tags": {"$size": {"$gte": 2}}, "tags.1": "x"}"#, true),
        (#"{"tags": {"$all": ["a", "b"]}}"#, #"{"tags": {"$nin": ["b"]}}"#, false),
        (#"{"tags": {"$all": ["a", "b"]}}"#, #"{"tags": {"$in": ["c"]}}"#, true),
        (#"{"country": {"$ini": ["us"]}}"#, #"{"country": {"$nin": ["US", "us", "Us", "uS"]}}"#, false),
        (#"{"n": {"$gt": 5}}"#, #"{"n": {"$type": "string"}}"#, true),
        (#"{"n": {"$lt": 5}}"#, #"{"n": {"$exists": false}}"#, true),
        (#"{"$or": []}"#, #"{"a": 1}"#, true),
        (#"{"$nor": []}"#, #"{}"#, false),
        (#"{"plan": {"$type": "object"}}"#, #"{"plan.tier": "gold"}"#, true),
        (#"{"x": [1, 2]}"#, #"{"x": {"$size": 3}}"#, false),
        (#"{"x": {"a": 1}}"#, #"{"x.a": 1}"#, true),
        // Found in review: large numbers, long arrays, an array read as its element, an array's length.
        (#"{"ts": {"$gt": 1700000000000000000}}"#, #"{"country": "US"}"#, true),
        (#"{"x": {"$gt": 1.7976931348623157e308}}"#, #"{}"#, true),
        (#"{"tags": {"$size": 100}}"#, #"{"country": "US"}"#, true),
        (#"{"tags": {"$elemMatch": {"$type": "number"}}}"#, #"{"tags": 2}"#, true),
        (#"{"tags": {"$type": "array"}}"#, #"{"tags.length": 2}"#, true),
        (#"{"tags": {"$type": "array"}}"#, #"{"tags.length": {"$gt": 3}, "tags": {"$size": 2}}"#, false),
    ])
    func theWholeLanguage(a: String, b: String, overlap: Bool) throws {
        let w = Satisfiability.witness([cond(a), cond(b)])
        if overlap {
            let w = try #require(w, "\(a) and \(b) can overlap")
            #expect(!w.approximate, "\(w)")
            #expect(cond(a).evaluate(w.attributes) && cond(b).evaluate(w.attributes), "\(w)")
        } else {
            #expect(w == nil, "\(a) and \(b) are disjoint, got \(String(describing: w))")
        }
    }

    /// Random conditions over the whole language: whenever sampling finds a unit in both, the solver must find a
    /// witness (or say it could not decide), and every verified witness must satisfy both conditions.
    @Test func solverAgreesWithExhaustiveSampling() throws {
        var rng = SplitMix(seed: 42)
        let pool = RandomTargeting()
        var decided = 0
        for _ in 0..<600 {
            let x = try Condition.parse(pool.condition(&rng)).get(), y = try Condition.parse(pool.condition(&rng)).get()
            var sampled = false
            search: for va in pool.values {
                for vb in pool.values {
                    var attrs: Attributes = [:]
                    if va != .null { attrs["a"] = va }
                    if vb != .null { attrs["b"] = vb }
                    if x.evaluate(attrs) && y.evaluate(attrs) { sampled = true; break search }
                }
            }
            let w = Satisfiability.witness([x, y])
            if sampled { #expect(w != nil, "missed a witness for \(x) AND \(y)") }
            if let w, !w.approximate {
                decided += 1
                #expect(x.evaluate(w.attributes) && y.evaluate(w.attributes), "bad witness \(w) for \(x) AND \(y)")
            }
            if w == nil { decided += 1 }
        }
        #expect(decided > 450, "only \(decided) of 600 pairs decided")
    }
}

/// Random targeting over two attributes `a` and `b` (nested members `a.k`, arrays), from a small pool of values so
/// conditions and attributes interact.
struct RandomTargeting {
    let scalars: [JSON] = ["US", "us", "b", "", "8", "08", "1.2.0", "2.0.0", 5, 8, 0, -1, 2.5, true, false]
    var values: [JSValue] {
        let base: [JSON] = scalars + [.null, ["US", "b"], [5], [], ["k": 5], ["k": "US"], [["k": 5]], [true, 0]]
        return base.map(JSValue.init)
    }

    func scalar(_ rng: inout SplitMix) -> JSON { scalars[Int(rng.next() % UInt64(scalars.count))] }

    func list(_ rng: inout SplitMix) -> JSON { .array((0..<Int(rng.next() % 3 + 1)).map { _ in scalar(&rng) }) }

    func valueCondition(_ rng: inout SplitMix, depth: Int) -> JSON {
        let ops = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$ini", "$nini", "$exists", "$vgt", "$vlte", "$veq",
                   "$size", "$all", "$alli", "$elemMatch", "$type", "$not", "literal", "$regex"]
        let op = ops[Int(rng.next() % UInt64(depth > 1 ? ops.count - 4 : ops.count))]
        switch op {
        case "literal": return scalar(&rng)
        case "$in", "$nin", "$ini", "$nini", "$all", "$alli": return [op: list(&rng)]
        case "$exists": return [op: .bool(rng.next() % 2 == 0)]
        case "$size": return [op: rng.next() % 2 == 0 ? .number(Double(rng.next() % 3)) : ["$gt": .number(Double(rng.next() % 3))]]
        case "$elemMatch": return [op: rng.next() % 2 == 0 ? ["$eq": scalar(&rng)] : ["k": scalar(&rng)]]
        case "$type": return [op: .string(["string", "number", "boolean", "array", "object", "null"][Int(rng.next() % 6)])]
        case "$not": return [op: valueCondition(&rng, depth: depth + 1)]
        case "$regex": return [op: .string(["^U", "S$", "^\\d+$", "b"][Int(rng.next() % 4)])]
        default: return [op: scalar(&rng)]
        }
    }

    func condition(_ rng: inout SplitMix, depth: Int = 0) -> JSON {
        switch depth > 1 ? 0 : rng.next() % 5 {
        case 0, 1: return [["a", "b", "a.k"][Int(rng.next() % 3)]: valueCondition(&rng, depth: depth)]
        case 2: return ["$or": [condition(&rng, depth: depth + 1), condition(&rng, depth: depth + 1)]]
        case 3: return ["$not": condition(&rng, depth: depth + 1)]
        default: return ["$and": [condition(&rng, depth: depth + 1), condition(&rng, depth: depth + 1)]]
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
        let scannedKeys = Set(scanned.map(key)), bruteKeys = Set(brute.map(key))
        #expect(scannedKeys == bruteKeys, "scan only: \(scannedKeys.subtracting(bruteKeys).sorted().prefix(3)); pairs only: \(bruteKeys.subtracting(scannedKeys).sorted().prefix(3))")
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
            #expect(a.targeting.evaluate(w.attributes) && b.targeting.evaluate(w.attributes))
        }
    }

    /// Copies of an index share the solver that compiles conditions across checks; copies that then take different
    /// experiments must still each check exactly what comparing every pair finds.
    @Test func copiesThatDivergeStillCheckExactly() {
        let subjects = randomRegistry(count: 300, layers: 4, parameters: 20, metrics: 6, seed: 7)
        var a = ConflictIndex(Array(subjects.prefix(100)))
        var b = a
        for s in subjects[100..<200] { a.upsert(s) }
        for s in subjects[200..<300] { b.upsert(s) }
        let key = { (f: Finding) in "\(f.experiments)|\(f.kind.rawValue)|\(f.severity.rawValue)|\(f.message)" }
        for (index, members) in [(a, Array(subjects.prefix(200))), (b, Array(subjects.prefix(100) + subjects[200..<300]))] {
            for s in subjects.shuffled().prefix(60) {
                let checked = index.check(s, includeCapacity: false).map(key)
                let pairwise = members.flatMap { ConflictRules.findings(s, $0) }.map(key)
                #expect(Set(checked) == Set(pairwise), "\(s.key)")
            }
        }
    }

    /// Audiences kept apart by two constants on one attribute never overlap, whatever else they share.
    @Test func twoConstantsOnOneAttributeKeepAudiencesApart() throws {
        func subject(_ key: String, _ targeting: String) throws -> ConflictSubject {
            ConflictSubject(key: key, state: .running, layer: "l-\(key)", unit: "user_id", parameters: ["p"], primaryMetric: "m",
                            seed: key, traffic: 1, start: Timestamp(seconds: 0), end: Timestamp(seconds: 86_400),
                            targeting: try Condition.parse(try JSONParser.parse(targeting)).get())
        }
        let index = ConflictIndex([try subject("a", #"{"cohort": "a", "country": {"$in": ["US", "CA"]}}"#),
                                   try subject("b", #"{"cohort": 7, "country": "US"}"#)])
        func overlapping(_ s: ConflictSubject) -> Set<String> { Set(index.check(s).map { $0.experiments[1] }) }
        #expect(overlapping(try subject("c", #"{"country": "US"}"#)) == ["a", "b"])
        #expect(overlapping(try subject("d", #"{"cohort": "d"}"#)) == [], "\"d\" is neither \"a\" nor 7")
        #expect(overlapping(try subject("e", #"{"cohort": "7"}"#)) == ["b"], "the value 7 is \"7\" as a string and 7 as a number")
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
