import Foundation
import Testing
import TestSupport
import JSONCore
import Registry

/// GrowthBook's cross-SDK condition vectors (`evalCondition` of packages/sdk-js/test/cases.json, spec 0.8.0;
/// Tests/RegistryTests/Reference/growthbook/, extracted by Scripts/reference/extract_growthbook_conditions.py).
@Suite struct GrowthBookConditionVectorTests {
    struct Case {
        var name: String
        var condition: JSON
        var attributes: JSON
        var expected: Bool
        var groups: [String: [JSValue]]
    }

    static let cases: [Case] = {
        let url = repositoryRoot.appendingPathComponent("Tests/RegistryTests/Reference/growthbook/eval_condition.json")
        let rows = try! JSONParser.parse(String(contentsOf: url, encoding: .utf8)).arrayValue!
        return rows.map { r in
            Case(name: r["name"]!.stringValue!, condition: r["condition"]!, attributes: r["attributes"]!, expected: r["expected"]!.boolValue!,
                 groups: (r["saved_groups"]?.objectValue ?? [:]).mapValues { ($0.arrayValue ?? []).map(JSValue.init) })
        }
    }()

    /// The vectors Referee refuses at registration instead of answering (documented in Protocols/README.md): an
    /// unknown operator, a pattern JavaScript cannot compile, and a saved group that does not exist.
    static let refused: Set<String> = ["unknown operator - pass", "$regex invalid - pass", "$regex invalid - fail",
                                       "$inGroup fails for unknown group id", "$notInGroup passes for unknown group id"]

    static func attributes(_ json: JSON) -> Attributes { (json.objectValue ?? [:]).mapValues(JSValue.init) }

    @Test func everyVectorAgreesOrIsADocumentedRefusal() {
        #expect(Self.cases.count == 248)
        var refusedNames: Set<String> = []
        var disagreements: [String] = []
        for c in Self.cases {
            switch Condition.parse(c.condition, groups: Set(c.groups.keys)) {
            case .failure(let f):
                refusedNames.insert(c.name)
                #expect(f.violations.allSatisfy { ["targeting_syntax", "regex_not_linear", "unknown_group"].contains($0.rule) }, "\(c.name): \(f.violations)")
            case .success(let condition):
                let bound = condition.bindingGroups(c.groups)
                let attrs = Self.attributes(c.attributes)
                if bound.evaluate(attrs) != c.expected { disagreements.append("\(c.name): \(c.condition.serialized()) on \(c.attributes.serialized())") }
                // The trace decides the same.
                #expect(bound.trace(attrs).0 == bound.evaluate(attrs), "\(c.name)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagree:\n\(disagreements.joined(separator: "\n"))")
        #expect(refusedNames == Self.refused, "refused: \(refusedNames.sorted())")
    }

    /// A witness for each satisfiable vector condition satisfies it, and a condition that holds for the vector's
    /// attributes is never judged unsatisfiable.
    @Test func theSolverAgreesWithEveryVector() {
        for c in Self.cases {
            guard case .success(let condition) = Condition.parse(c.condition, groups: Set(c.groups.keys)) else { continue }
            let bound = condition.bindingGroups(c.groups)
            let w = Satisfiability.witness([bound])
            if c.expected { #expect(w != nil, "\(c.name): judged unsatisfiable, but \(c.attributes.serialized()) satisfies it") }
            if let w, !w.approximate { #expect(bound.evaluate(w.attributes), "\(c.name): bad witness \(w)") }
        }
    }
}

/// Every example of the targeting tables in Protocols/README.md is a condition Referee accepts.
@Suite struct TargetingDocumentationTests {
    @Test func everyDocumentedExampleParses() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Protocols/README.md"), encoding: .utf8)
        var examples = 0
        for line in text.split(separator: "\n") where line.hasPrefix("| ") && line.hasSuffix("|") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false)
            guard let last = cells.dropLast().last else { continue }
            for part in last.split(separator: "`") where part.hasPrefix("{") {
                let json = try JSONParser.parse(String(part))
                examples += 1
                #expect((try? Condition.parse(json, groups: ["beta-testers"]).get()) != nil, "\(part)")
            }
        }
        #expect(examples >= 20, "found \(examples) examples")
    }
}
