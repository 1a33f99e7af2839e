import Foundation
import Testing
import JSONCore
import TestSupport
@testable import Registry

/// The linear-time regular expressions targeting uses, against JavaScript's answers.
@Suite struct LinearRegexTests {
    @Test func regexAgreesWithJavaScript() throws {
        let url = repositoryRoot.appendingPathComponent("Tests/RegistryTests/Reference/regex_vectors.json")
        let doc = try JSONParser.parse(try String(contentsOf: url, encoding: .utf8))
        let cases = try #require(doc["cases"]?.arrayValue)
        #expect(cases.count > 2000)
        var disagreements: [String] = []
        for c in cases {
            let pattern = c["pattern"]!.stringValue!, value = c["value"]!.stringValue!
            do {
                let plain = try LinearRegex(pattern), folded = try LinearRegex(pattern, caseInsensitive: true)
                if plain.matches(value) != c["test"]?.boolValue { disagreements.append("/\(pattern)/ on \(value.debugDescription)") }
                if folded.matches(value) != c["test_i"]?.boolValue { disagreements.append("/\(pattern)/i on \(value.debugDescription)") }
            } catch {
                disagreements.append("/\(pattern)/ refused: \(error)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, e.g. \(disagreements.prefix(10))")
    }

    @Test func regexCompilationAndMatchingStayBounded() throws {
        // Repeating a part that emits nothing must not run for ever.
        #expect(throws: Never.self) { _ = try LinearRegex("(?:(?:){999999}){999999}") }
        #expect(try LinearRegex("(?:a{0}){999999}b").matches("b"))
        // A huge class repeated: refused by weight, not matched in quadratic time.
        let big = "[^" + stride(from: 0x100, to: 0x4100, by: 2).map { String(UnicodeScalar($0)!) }.joined() + "]{19000}"
        #expect(throws: LinearRegex.CompileError.self) { _ = try LinearRegex(big) }
        // Class ranges are merged and searched: [a-cb-dx] is [a-dx].
        let r = try LinearRegex("^[a-cb-dx]+$")
        #expect(r.matches("abcdx") && !r.matches("abcde"))
        #expect(try LinearRegex("[\\8]").matches("8"))
    }
}
