public import JSONCore
public import Registry
import Statistics

/// One cell of a result row, as any driver gives it.
public enum WarehouseValue: Sendable, Equatable {
    case null
    case text(String)
    case number(Double)
}

/// One aggregate to store: what ingestion would have stored for the same units.
public struct PulledAggregate: Sendable, Equatable {
    public var segment: String
    public var metric: String
    public var variant: String
    public var day: String
    public var aggregate: Aggregate
}

/// The rows of ``WarehouseQuery`` read back as aggregates, with what was left out.
public struct PulledResults: Sendable {
    public var aggregates: [PulledAggregate] = []
    public var units = 0.0
    public var unitsInSeveralVariants = 0.0
    public var unitsInUnknownVariants = 0.0
    public var firstDay: String?
    public var lastDay: String?

    public var report: [String: JSON] {
        ["units_loaded": .number(units), "units_in_several_variants": .number(unitsInSeveralVariants),
         "units_in_unknown_variants": .number(unitsInUnknownVariants), "aggregates_written": JSON(aggregates.count),
         "first_day": JSON(firstDay), "last_day": JSON(lastDay)]
    }
}

public struct RowsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension WarehouseQuery {
    /// Reads the query's answer; any row that is not what the query produces is refused (nothing is stored then).
    public func read(columns answered: [String], rows: [[WarehouseValue]]) throws(RowsError) -> PulledResults {
        guard answered.map({ $0.lowercased() }) == columns else {
            throw RowsError(message: "the warehouse answered columns \(answered.joined(separator: ", ")), not the query's \(columns.joined(separator: ", "))")
        }
        let position = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($0.element, $0.offset) })
        var out = PulledResults()
        for (r, row) in rows.enumerated() {
            guard row.count == columns.count else { throw RowsError(message: "row \(r + 1) has \(row.count) cells, not \(columns.count)") }
            func text(_ c: String) throws(RowsError) -> String {
                guard case .text(let t) = row[position[c]!] else { throw RowsError(message: "row \(r + 1): \(c) is not text") }
                return t
            }
            func number(_ c: String) throws(RowsError) -> Double {
                switch row[position[c]!] {
                case .number(let x) where x.isFinite: return x
                case .null: return 0   // SUM over no rows
                default: throw RowsError(message: "row \(r + 1): \(c) is not a finite number")
                }
            }
            let kind = try text("row_kind")
            let units = try number("units")
            switch kind {
            case WarehouseQuery.severalVariants: out.unitsInSeveralVariants = units; continue
            case WarehouseQuery.unknownVariant: out.unitsInUnknownVariants = units; continue
            case WarehouseQuery.total, WarehouseQuery.segment: break
            default: throw RowsError(message: "row \(r + 1): unknown row_kind \(kind)")
            }
            let segment = kind == WarehouseQuery.segment ? try text("dimension") + "=" + text("dimension_value") : ""
            let variant = try text("variant"), day = try text("exposure_day")
            guard variants.contains(variant) else { throw RowsError(message: "row \(r + 1) names variant \(variant), not one of the experiment's (\(variants.joined(separator: ", ")))") }
            guard day.count == 10, CalendarDay.parse(day) != nil else { throw RowsError(message: "row \(r + 1): exposure_day \(day) is not YYYY-MM-DD") }
            if segment.isEmpty {
                out.units += units
                if out.firstDay.map({ day < $0 }) ?? true { out.firstDay = day }
                if out.lastDay.map({ day > $0 }) ?? true { out.lastDay = day }
            }
            func add(_ metric: String, _ a: Aggregate) throws(RowsError) {
                guard a.isFinite else { throw RowsError(message: "row \(r + 1): \(metric)'s sums are not finite or its counts not whole") }
                out.aggregates.append(PulledAggregate(segment: segment, metric: metric, variant: variant, day: day, aggregate: a))
            }
            try add(exposuresMetric, .exposures(n: units))
            for m in metrics {
                var v: [String: Double] = [:]
                for (role, column) in m.columns { v[role] = try number(column) }
                switch m.type {
                case .binomial: try add(m.name, .binomial(n: units, successes: v["successes"]!))
                case .continuous where m.hasCovariate:
                    try add(m.name, .cuped(n: units, post: Moments(sum: v["sum"]!, sumSquares: v["sum_squares"]!),
                                           pre: Moments(sum: v["pre_sum"]!, sumSquares: v["pre_sum_squares"]!), postPre: v["post_pre"]!))
                case .continuous: try add(m.name, .continuous(n: units, sum: v["sum"]!, sumSquares: v["sum_squares"]!))
                case .ratio:
                    try add(m.name, .ratio(n: units, numerator: Moments(sum: v["numerator_sum"]!, sumSquares: v["numerator_sum_squares"]!),
                                           denominator: Moments(sum: v["denominator_sum"]!, sumSquares: v["denominator_sum_squares"]!),
                                           product: v["numerator_denominator"]!))
                case .nps, .quantile: throw RowsError(message: "\(m.name) is a \(m.type.rawValue) metric, which the warehouse does not compute")
                }
            }
        }
        return out
    }
}
