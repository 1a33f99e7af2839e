import Foundation
import Statistics
import Testing

/// Loading of the generated reference data (Reference/*.json, written by
/// Scripts/reference/generate_statistics.py from scipy, statsmodels, gbstats 0.8.0 and mpmath).
enum Reference {
    struct File<Case: Decodable>: Decodable {
        let cases: [Case]
    }

    static func load<Case: Decodable>(_ name: String, as: Case.Type = Case.self) -> [Case] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Reference") else {
            fatalError("missing reference file Reference/\(name).json")
        }
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try decoder.decode(File<Case>.self, from: Data(contentsOf: url)).cases
        } catch {
            fatalError("cannot decode Reference/\(name).json: \(error)")
        }
    }
}

/// One generated reference case: an input, and either the expected output (with its tolerance class)
/// or the field the error must name.
struct ReferenceCase<Input: Decodable & Sendable, Expected: Decodable & Sendable>: Decodable, Sendable, CustomTestStringConvertible {
    let id: String
    let tol: Tolerance?
    let input: Input
    let expected: Expected?
    let error: ExpectedError?
    var testDescription: String { id }
}

/// Tolerance class of a reference value.
enum Tolerance: String, Decodable, Sendable {
    /// Closed form: relative 1e-9, absolute 1e-12 near zero.
    case closed
    /// Numerical quadrature: relative 1e-8.
    case integral
    /// Root finding: relative 1e-6.
    case root

    func agrees(_ a: Double, _ b: Double) -> Bool {
        switch self {
        case .closed: close(a, b, rel: 1e-9, abs: 1e-12)
        case .integral: close(a, b, rel: 1e-8, abs: 1e-12)
        case .root: close(a, b, rel: 1e-6, abs: 1e-12)
        }
    }
}

struct ExpectedError: Decodable, Sendable {
    let field: String
}

/// Compares one named quantity, recording a readable issue on mismatch.
func expectAgree(_ name: String, _ actual: Double?, _ expected: Double?, _ tol: Tolerance, _ id: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    switch (actual, expected) {
    case (nil, nil): return
    case let (a?, e?):
        #expect(tol.agrees(a, e), "\(id) \(name): got \(a), expected \(e)", sourceLocation: sourceLocation)
    default:
        Issue.record("\(id) \(name): got \(String(describing: actual)), expected \(String(describing: expected))", sourceLocation: sourceLocation)
    }
}

/// Runs `body`, which must throw a ``StatisticsError`` naming `field`.
func expectError<T>(_ field: String, _ id: String, sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () throws(StatisticsError) -> T) {
    do {
        let value = try body()
        Issue.record("\(id): expected an error on \(field), got \(value)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.field == field, "\(id): error names \(error.field) (\(error.reason)), expected \(field)", sourceLocation: sourceLocation)
        #expect(!error.reason.isEmpty)
    }
}
