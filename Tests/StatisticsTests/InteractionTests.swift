import Foundation
import Statistics
import Testing

/// The interaction test against statsmodels' OLS with an interaction term on the same simulated units
/// (Reference/interactions.json, Scripts/reference/generate_interactions.py), and its false-positive rate.
@Suite struct InteractionTests {
    struct Case: Decodable {
        let kind: String
        let bArms: Int
        let planted: Double
        let n: Int
        let arm: Int
        let cells: [[CellSums]]
        let unpooled: Expected
        let pooled: Expected
        struct CellSums: Decodable { let n: Double; let sum: Double; let sumSquares: Double }
        struct Expected: Decodable { let estimate: Double; let se: Double; let pValue: Double; let ci: [Double]; let df: Double? }
    }

    @Test func agreesWithOLSWithAnInteractionTerm() throws {
        let cases = Reference.load("interactions", as: Case.self)
        #expect(cases.count >= 20)
        for c in cases {
            let cells = c.cells.map { $0.map { Interaction.Cell(n: $0.n, sum: $0.sum, sumSquares: $0.sumSquares) } }
            let id = "\(c.kind) B×\(c.bArms) arm \(c.arm) n=\(c.n) planted \(c.planted)"
            for (variance, want) in [(Interaction.Variance.unpooled, c.unpooled), (.pooled, c.pooled)] {
                let r = try Interaction.test(cells, arm: c.arm, variance: variance)
                #expect(close(r.estimate, want.estimate, rel: 1e-9, abs: 1e-12), "\(id) \(variance): estimate \(r.estimate) vs \(want.estimate)")
                #expect(close(r.se, want.se, rel: 1e-8), "\(id) \(variance): se \(r.se) vs \(want.se)")
                #expect(close(r.ci.lower, want.ci[0], rel: 1e-8, abs: 1e-10) && close(r.ci.upper, want.ci[1], rel: 1e-8, abs: 1e-10), "\(id) \(variance): ci")
                if want.pValue > 1e-8 { #expect(close(r.pValue, want.pValue, rel: 1e-6), "\(id) \(variance): p \(r.pValue) vs \(want.pValue)") }
                #expect(r.df == want.df, "\(id) \(variance): df")
            }
        }
    }

    /// 1,000 simulated pairs with no interaction: the 5% test flags 5% of them (within the simulation's noise); a
    /// planted interaction of a realistic size (A's lift doubles in one arm of B) is found nearly always.
    @Test func flagsAtTheNominalRateAndFindsAPlantedInteraction() throws {
        let rng = GSLRandom(seed: 17)
        func cells(_ interaction: Double, n: Int) -> [[Interaction.Cell]] {
            var sums = [[Interaction.Cell]](repeating: [Interaction.Cell](repeating: .init(n: 0, sum: 0, sumSquares: 0), count: 2), count: 2)
            for _ in 0..<n {
                let a = rng.uniform() < 0.5 ? 1 : 0, b = rng.uniform() < 0.5 ? 1 : 0
                let y = 20 + 1.0 * Double(a) + 0.5 * Double(b) + interaction * Double(a * b) + exp(1 + 0.8 * rng.normal())
                sums[b][a].n += 1; sums[b][a].sum += y; sums[b][a].sumSquares += y * y
            }
            return sums
        }
        var flagged = 0, found = 0
        for _ in 0..<1000 { if try Interaction.test(cells(0, n: 2000), arm: 1).pValue < 0.05 { flagged += 1 } }
        for _ in 0..<200 { if try Interaction.test(cells(1.0, n: 8000), arm: 1).pValue < 0.05 { found += 1 } }
        #expect(flagged >= 35 && flagged <= 65, "no interaction: \(flagged) of 1000 flagged")
        #expect(found >= 190, "planted interaction found \(found) of 200")
        #expect(throws: StatisticsError.self) { try Interaction.test([[.init(n: 1, sum: 1, sumSquares: 1), .init(n: 5, sum: 5, sumSquares: 6)]], arm: 1) }
    }
}
