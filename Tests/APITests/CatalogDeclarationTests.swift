import Testing
import JSONCore
@testable import API

/// The catalog on its own: every method declared once, documented, and decoded as it is described.
@Suite struct CatalogDeclarationTests {
    @Test func namesAreUniqueAndEveryMemberIsDocumented() {
        #expect(Set(Catalog.methods.map(\.name)).count == Catalog.methods.count)
        for m in Catalog.methods {
            #expect(!m.summary.isEmpty, "\(m.name)")
            for p in m.params { #expect(!p.summary.isEmpty && p.schema != .null, "\(m.name).\(p.name)") }
        }
    }

    @Test func requiredMembersAreRequiredByTheDecoderAndOptionalOnesAreNot() throws {
        // Every params type, decoded from nothing: exactly its required members are reported missing, in order.
        for m in Catalog.methods {
            let required = m.params.filter(\.required).map(\.name)
            func decodeEmpty<M: MethodSpec>(_ type: M.Type) -> String? {
                do throws(FieldError) { _ = try JSONValueDecoder.decode(M.Params.self, from: [:]); return nil } catch { return error.path }
            }
            #expect(decodeEmpty(m.type) == required.first, "\(m.name)")
        }
    }

    @Test func choicesAreDescribedAsEnumsAndRefusedWithTheList() throws {
        let grant = try #require(Catalog.byName["access.grant"])
        #expect(grant.params.first { $0.name == "role" }?.schema["enum"] == ["admin", "pm", "approver", "ci", "analyst"])
        #expect(throws: FieldError(path: "role", message: "\"root\" is not one of admin, pm, approver, ci, analyst")) {
            _ = try JSONValueDecoder.decode(AccessGrant.Params.self, from: ["principal": "x", "role": "root"])
        }
        #expect(throws: FieldError(path: "window.start", message: "must be a string, got number")) {
            _ = try JSONValueDecoder.decode(ConflictsScan.Params.self, from: ["window": ["start": 1, "end": "x"]])
        }
        #expect(throws: FieldError(path: "window.stop", message: "is not a known field; expected one of end, start")) {
            _ = try JSONValueDecoder.decode(ConflictsScan.Params.self, from: ["window": ["start": "a", "end": "b", "stop": "c"]])
        }
        #expect(throws: FieldError(path: "units[1]", message: "must be a string, got boolean")) {
            _ = try JSONValueDecoder.decode(AssignBulk.Params.self, from: ["units": ["a", true], "layer": "l"])
        }
    }
}

/// The fast paths of hot methods give exactly what the general decoder gives, or step aside.
@Suite struct FastDecodingTests {
    @Test func compareParamsFastPathAgreesWithTheDecoder() throws {
        var rng = SystemRandomNumberGenerator()
        let pool: [String: [JSON]] = [
            "metric": ["binomial", "ratio", "nope", 3, .null], "control": [["n": 1], .null, "x"], "treatment": [["n": 2], .null],
            "difference": ["absolute", "relative", "sideways", .null], "test": ["z", "welch", "student", 1], "variance": ["pooled", "x"],
            "alpha": [0.05, "0.05", .null], "alternative": ["two-sided", "less", "up"], "analysis": ["fixed", "bayesian", "frequentist"],
            "prior": [["mean": 0], .null], "sequential_tuning": [5000, "x"],
        ]
        for _ in 0..<3000 {
            var members: [String: JSON] = [:]
            for (k, values) in pool where Bool.random(using: &rng) { members[k] = values.randomElement(using: &rng)! }
            let general = try? JSONValueDecoder.decode(CompareParams.self, from: .object(members))
            if let fast = CompareParams.decodeFast(members) {
                #expect(fast == general, "\(members)")
            }
            if general != nil, members["prior"] == nil { #expect(CompareParams.decodeFast(members) != nil, "\(members)") }
        }
    }

    @Test func experimentGetFastPathAgreesWithTheDecoder() throws {
        for members: [String: JSON] in [["key": "a"], ["key": 1], [:], ["key": "a", "x": 1], ["key": .null]] {
            if let fast = ExperimentGet.Params.decodeFast(members) {
                #expect(fast.key == (try JSONValueDecoder.decode(ExperimentGet.Params.self, from: .object(members))).key)
            }
        }
        #expect(ExperimentGet.Params.decodeFast(["key": "a"])?.key == "a")
    }
}
