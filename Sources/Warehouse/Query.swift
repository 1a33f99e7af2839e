public import JSONCore
public import Registry

/// What the query needs to know of an experiment.
public struct QueryRequest: Sendable {
    public var experimentKey: String
    public var variants: [String]
    public var start: Timestamp
    public var end: Timestamp
    /// Only exposures and events before this instant count.
    public var asOf: Timestamp
    public var dimensions: [String]
    /// The experiment's metrics, in its order; those the source does not define are reported and left out.
    public var metrics: [String]
    /// The catalog's capping of each metric: absolute caps are applied; a percentile cap needs every unit's value,
    /// so such a metric is left out, with the reason.
    public var capping: [String: Capping] = [:]

    public init(experimentKey: String, variants: [String], start: Timestamp, end: Timestamp, asOf: Timestamp, dimensions: [String], metrics: [String]) {
        self.experimentKey = experimentKey; self.variants = variants; self.start = start; self.end = end; self.asOf = asOf
        self.dimensions = dimensions; self.metrics = metrics
    }
}

/// A metric's place in the query's output: which columns hold which sums.
public struct OutputMetric: Sendable {
    public var name: String
    public var type: MetricType
    public var hasCovariate: Bool
    /// Sum name (`successes`, `sum`, `sum_squares`, `pre_sum`, …) → output column.
    public var columns: [(role: String, column: String)]

    public var json: JSON {
        ["metric": .string(name), "type": .string(type.rawValue), "covariate": .bool(hasCovariate),
         "columns": .object(Dictionary(uniqueKeysWithValues: columns.map { ($0.role, JSON.string($0.column)) }))]
    }
}

/// The one query of an experiment: its text, the columns it answers and how to read them.
public struct WarehouseQuery: Sendable {
    public var sql: String
    public var dialect: Dialect
    public var source: String
    public var asOf: Timestamp
    public var metrics: [OutputMetric]
    /// Metrics of the experiment left out of the query, and why.
    public var notDefined: [String]
    public var leftOut: [(metric: String, reason: String)] = []
    /// The experiment's variants: an answer naming another is refused.
    public var variants: [String]
    public var columns: [String]

    /// SHA-256 of the text: the provenance recorded with what it returned.
    public var sha256: String { SHA256.hex(sql) }

    /// The rows' kinds (`row_kind`).
    public static let total = "total", segment = "segment", severalVariants = "excluded_several_variants", unknownVariant = "excluded_unknown_variant"
    public static let leadingColumns = ["row_kind", "dimension", "dimension_value", "variant", "exposure_day", "units"]

    public var json: JSON {
        ["source": .string(source), "dialect": .string(dialect.rawValue), "as_of": .string(asOf.description), "sql": .string(sql),
         "sha256": .string(sha256), "columns": JSON(columns), "metrics": .array(metrics.map(\.json)), "not_in_warehouse": JSON(notDefined),
         "left_out": leftOutJSON]
    }

    public var leftOutJSON: JSON { .array(leftOut.map { ["metric": .string($0.metric), "reason": .string($0.reason)] }) }

    /// What the answer and the audit entry say of the query itself.
    public var provenance: [String: JSON] {
        ["source": .string(source), "dialect": .string(dialect.rawValue), "sha256": .string(sha256), "as_of": .string(asOf.description)]
    }
}

public struct QueryError: Error, Sendable, CustomStringConvertible {
    public var field: String
    public var message: String
    public var description: String { "\(field): \(message)" }
}

extension WarehouseSource {
    /// The query of `request` in `dialect` (the source's own by default). Each stage is a named CTE:
    /// exposures in the schedule → one row per unit (several variants excluded) → its dimensions from its earliest
    /// exposure → each fact table's events → per unit its values in their windows → per arm × exposure day
    /// (× dimension value) the unit count, sums, sums of squares and cross products.
    public func query(_ request: QueryRequest, dialect requested: Dialect? = nil) throws(QueryError) -> WarehouseQuery {
        let dialect = requested ?? self.dialect
        let s = Spelling(dialect: dialect)
        var leftOut: [(metric: String, reason: String)] = []
        let defined = request.metrics.compactMap { name -> WarehouseMetric? in
            guard var m = metrics[name] else {
                leftOut.append((name, "source \(self.name) does not define it (sources.\(self.name).metrics in \(WarehouseDefinitions.fileName))"))
                return nil
            }
            switch request.capping[name] {
            case .absolute(let x)?: m.cap = x
            case .percentile?:
                leftOut.append((name, "it is capped at a percentile of every unit's value, which the warehouse query does not compute; give it an absolute cap in metrics.json, or ingest it"))
                return nil
            case nil: break
            }
            return m
        }
        let notDefined = leftOut.map(\.metric)
        guard !defined.isEmpty else {
            throw QueryError(field: "key", message: "none of \(request.experimentKey)'s metrics (\(request.metrics.joined(separator: ", "))) is defined in source \(name); add them under sources.\(name).metrics in \(WarehouseDefinitions.fileName)")
        }
        let dimensionColumns = try request.dimensions.map { d throws(QueryError) -> String in
            if let c = exposures.dimensionColumns[d] { return c }
            guard exposures.dimensionColumns.isEmpty else {
                throw QueryError(field: "key", message: "\(request.experimentKey) declares dimension \(d), which source \(name)'s exposure table does not map (\(exposures.dimensionColumns.keys.sorted().joined(separator: ", "))); add it under exposures.dimensions")
            }
            return d
        }
        let end = min(request.end, request.asOf)
        guard request.start < end else {
            throw QueryError(field: "as_of", message: "\(request.asOf) is not after the experiment's start \(request.start); nothing was exposed by then")
        }
        let variantList = request.variants.map(s.string).joined(separator: ", ")
        let double = s.double
        func relation(_ r: Relation) -> String {
            switch r {
            case .table(let t): t
            case .sql(let q): "(\n    \(q.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n    "))\n  )"
            }
        }
        var ctes: [(String, String, String)] = []   // name, comment, body
        let dims = dimensionColumns.indices
        let dimSelect = dims.map { ",\n         CAST(x.\(s.identifier(dimensionColumns[$0])) AS \(s.text)) AS d\($0)" }.joined()
        ctes.append(("exposure_rows", "exposures of this experiment within its schedule (and before the as-of time)", """
          SELECT CAST(x.\(s.identifier(exposures.unitColumn)) AS \(s.text)) AS unit_id,
                 CAST(x.\(s.identifier(exposures.variantColumn)) AS \(s.text)) AS variant,
                 x.\(s.identifier(exposures.timestampColumn)) AS exposed_at\(dimSelect)
          FROM \(relation(exposures.relation)) AS x
          WHERE x.\(s.identifier(exposures.experimentColumn)) = \(s.string(request.experimentKey))
            AND x.\(s.identifier(exposures.timestampColumn)) >= \(s.timestamp(request.start))
            AND x.\(s.identifier(exposures.timestampColumn)) < \(s.timestamp(end))
            AND x.\(s.identifier(exposures.unitColumn)) IS NOT NULL
            AND x.\(s.identifier(exposures.variantColumn)) IS NOT NULL
        """))
        // One grouping per unit, no join: the planner's guesses about joins of these stages are often wrong by orders
        // of magnitude (a nested loop over millions of units), a grouping's cost is always linear.
        let order = (["exposed_at"] + dims.map { "d\($0)\(s.byteOrder)" }).joined(separator: ", ")
        if !dims.isEmpty {
            ctes.append(("ranked_rows", "each unit's exposure rows in time order: the earliest keeps the unit's dimension values", """
              SELECT exposure_rows.*, ROW_NUMBER() OVER (PARTITION BY unit_id ORDER BY \(order)) AS exposure_rank
              FROM exposure_rows
            """))
        }
        let firstValues = dims.map { ",\n         MAX(CASE WHEN exposure_rank = 1 THEN d\($0) END) AS d\($0)" }.joined()
        ctes.append(("unit_variants", "one row per unit: the variants it saw, its first exposure and its dimension values then", """
          SELECT unit_id, MIN(variant) AS variant, COUNT(DISTINCT variant) AS variants, MIN(exposed_at) AS first_exposed_at\(firstValues)
          FROM \(dims.isEmpty ? "exposure_rows" : "ranked_rows")
          GROUP BY unit_id
        """))
        ctes.append(("exposed_units", "units that saw exactly one variant, of this experiment's", """
          SELECT unit_id, variant, first_exposed_at, \(s.dayText("first_exposed_at")) AS exposure_day\(dims.map { ",\n         COALESCE(d\($0), '(missing)') AS d\($0)" }.joined())
          FROM unit_variants
          WHERE variants = 1 AND variant IN (\(variantList))
        """))
        for d in dims {
            ctes.append(("d\(d)_values", "values of dimension \(commentSafe(request.dimensions[d])) by units: beyond the \(Self.segmentsKept) largest they are (other)", """
              SELECT d\(d) AS dimension_value, ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC, d\(d)\(s.byteOrder)) AS rank_by_units
              FROM exposed_units
              GROUP BY d\(d)
            """))
        }
        // Each fact table once: its measures' values per event, then per unit within each window.
        var measureColumns: [Int: (table: Int, column: String)] = [:]
        var allMeasures: [Measure] = []
        for metric in defined { allMeasures += metric.measures }
        let tables = Array(Set(allMeasures.map(\.factTable))).sorted()
        let asOf = s.timestamp(request.asOf), experimentEnd = s.timestamp(end)
        for (t, tableName) in tables.enumerated() {
            let table = factTables[tableName]!
            let measures = allMeasures.enumerated().filter { $0.element.factTable == tableName }
            let values = measures.map { (j, m) -> String in
                let value = m.aggregation == .count ? "1" : "CAST((\(m.value!)) AS \(double))"
                let expr = m.filters.isEmpty ? value : "CASE WHEN \(m.filters.map { "(\($0))" }.joined(separator: " AND ")) THEN \(value) END"
                return ",\n         \(expr) AS v\(j)"
            }.joined()
            ctes.append(("f\(t)_events", "fact table \(commentSafe(tableName)): each event's value of every measure that reads it", """
              SELECT CAST(f.\(s.identifier(table.unitColumn)) AS \(s.text)) AS unit_id, f.\(s.identifier(table.timestampColumn)) AS event_at\(values)
              FROM \(relation(table.relation)) AS f
            """))
            let earliest = measures.map(\.element.window.fromSeconds).min()!
            let perUnit = measures.map { (j, m) -> String in
                let upper = m.window.toSeconds.map { "e.event_at < \(s.shifted("u.first_exposed_at", seconds: $0))" } ?? "e.event_at < \(experimentEnd)"
                let inWindow = "e.event_at >= \(s.shifted("u.first_exposed_at", seconds: m.window.fromSeconds)) AND \(upper)"
                let function = m.aggregation == .count ? "COUNT" : m.aggregation.rawValue.uppercased()
                measureColumns[j] = (t, "u\(j)")
                return ",\n         CAST(\(function)(CASE WHEN \(inWindow) THEN e.v\(j) END) AS \(double)) AS u\(j)"
            }.joined()
            ctes.append(("f\(t)_units", "per exposed unit, each measure over its window (never past the as-of time)", """
              SELECT u.unit_id\(perUnit)
              FROM exposed_units AS u
              JOIN f\(t)_events AS e ON e.unit_id = u.unit_id
              WHERE e.event_at >= \(s.shifted("u.first_exposed_at", seconds: earliest)) AND e.event_at < \(asOf)
              GROUP BY u.unit_id
            """))
        }
        // Per unit: every metric's value (0 without events), capped where the catalog caps it.
        var valueLines: [String] = []
        var outputs: [OutputMetric] = []
        var sums: [String] = []
        var measureIndex = 0
        func measureValue() -> String {
            let column = measureColumns[measureIndex]!.column
            measureIndex += 1
            return "COALESCE(\(column), CAST(0 AS \(double)))"
        }
        func capped(_ x: String, _ cap: Double?) -> String {
            guard let cap else { return x }
            return "LEAST(\(x), CAST(\(Self.number(cap)) AS \(double)))"
        }
        for (i, metric) in defined.enumerated() {
            let p = "m\(i)"
            var columns: [(String, String)] = []
            switch metric.kind {
            case .single(_, let covariate):
                let value = measureValue()
                if metric.type == .binomial {
                    valueLines.append("CASE WHEN \(value) > 0 THEN CAST(1 AS \(double)) ELSE CAST(0 AS \(double)) END AS \(p)")
                    columns = [("successes", "\(p)_successes")]
                    sums.append("SUM(\(p)) AS \(p)_successes")
                } else {
                    valueLines.append("\(capped(value, metric.cap)) AS \(p)")
                    columns = [("sum", "\(p)_sum"), ("sum_squares", "\(p)_sum_squares")]
                    sums += ["SUM(\(p)) AS \(p)_sum", "SUM(\(p) * \(p)) AS \(p)_sum_squares"]
                    if covariate != nil {
                        valueLines.append("\(capped(measureValue(), metric.cap)) AS \(p)_pre")
                        columns += [("pre_sum", "\(p)_pre_sum"), ("pre_sum_squares", "\(p)_pre_sum_squares"), ("post_pre", "\(p)_post_pre")]
                        sums += ["SUM(\(p)_pre) AS \(p)_pre_sum", "SUM(\(p)_pre * \(p)_pre) AS \(p)_pre_sum_squares", "SUM(\(p) * \(p)_pre) AS \(p)_post_pre"]
                    }
                }
                outputs.append(OutputMetric(name: metric.name, type: metric.type, hasCovariate: covariate != nil, columns: columns))
            case .ratio:
                valueLines.append("\(measureValue()) AS \(p)_numerator")
                valueLines.append("\(measureValue()) AS \(p)_denominator")
                columns = [("numerator_sum", "\(p)_numerator_sum"), ("numerator_sum_squares", "\(p)_numerator_sum_squares"),
                           ("denominator_sum", "\(p)_denominator_sum"), ("denominator_sum_squares", "\(p)_denominator_sum_squares"),
                           ("numerator_denominator", "\(p)_numerator_denominator")]
                sums += ["SUM(\(p)_numerator) AS \(p)_numerator_sum", "SUM(\(p)_numerator * \(p)_numerator) AS \(p)_numerator_sum_squares",
                         "SUM(\(p)_denominator) AS \(p)_denominator_sum", "SUM(\(p)_denominator * \(p)_denominator) AS \(p)_denominator_sum_squares",
                         "SUM(\(p)_numerator * \(p)_denominator) AS \(p)_numerator_denominator"]
                outputs.append(OutputMetric(name: metric.name, type: .ratio, hasCovariate: false, columns: columns))
            }
        }
        // Every unit's measures side by side: its exposure row and one row per fact table, stacked and grouped.
        let allColumns = measureColumns.keys.sorted().map { measureColumns[$0]!.column }
        let nullText = "CAST(NULL AS \(s.text))", nullNumber = "CAST(NULL AS \(double))"
        var parts = ["""
          SELECT unit_id, variant, exposure_day\(dims.map { ", d\($0)" }.joined()),
                 \(allColumns.map { "\(nullNumber) AS \($0)" }.joined(separator: ", "))
          FROM exposed_units
        """]
        for t in tables.indices {
            let own = Set(measureColumns.values.filter { $0.table == t }.map(\.column))
            parts.append("""
              SELECT unit_id, \(nullText), \(nullText)\(dims.map { _ in ", \(nullText)" }.joined()),
                     \(allColumns.map { own.contains($0) ? $0 : nullNumber }.joined(separator: ", "))
              FROM f\(t)_units
            """)
        }
        ctes.append(("unit_parts", "each unit's exposure and, per fact table, its measures", parts.joined(separator: "\nUNION ALL\n")))
        ctes.append(("unit_measures", "one row per unit (each column has one value in its group)", """
          SELECT unit_id, MAX(variant) AS variant, MAX(exposure_day) AS exposure_day\(dims.map { ", MAX(d\($0)) AS d\($0)" }.joined()),
                 \(allColumns.map { "MAX(\($0)) AS \($0)" }.joined(separator: ", "))
          FROM unit_parts
          GROUP BY unit_id
        """))
        let segmentValues = dims.map {
            ",\n         CASE WHEN d\($0) IN (SELECT dimension_value FROM d\($0)_values WHERE rank_by_units <= \(Self.segmentsKept)) THEN d\($0) ELSE '(other)' END AS s\($0)"
        }.joined()
        ctes.append(("unit_values", "per unit: its arm, exposure day, segments and every metric's value (0 without events)", """
          SELECT unit_id, variant, exposure_day\(segmentValues),
                 \(valueLines.joined(separator: ",\n         "))
          FROM unit_measures
        """))
        let nullSums = outputs.flatMap(\.columns).map { "CAST(NULL AS \(double)) AS \($0.1)" }
        let noText = "CAST(NULL AS \(s.text))"
        var selects = ["""
          SELECT '\(WarehouseQuery.total)' AS row_kind, \(noText) AS dimension, \(noText) AS dimension_value, variant, exposure_day, CAST(COUNT(*) AS \(double)) AS units,
                 \(sums.joined(separator: ",\n         "))
          FROM unit_values
          GROUP BY variant, exposure_day
        """]
        for d in dims {
            selects.append("""
              SELECT '\(WarehouseQuery.segment)', \(s.string(request.dimensions[d])), s\(d), variant, exposure_day, CAST(COUNT(*) AS \(double)),
                     \(sums.joined(separator: ",\n         "))
              FROM unit_values
              GROUP BY s\(d), variant, exposure_day
            """)
        }
        selects.append("""
          SELECT '\(WarehouseQuery.severalVariants)', \(noText), \(noText), \(noText), \(noText), CAST(COUNT(*) AS \(double)),
                 \(nullSums.joined(separator: ", "))
          FROM unit_variants
          WHERE variants > 1
        """)
        selects.append("""
          SELECT '\(WarehouseQuery.unknownVariant)', \(noText), \(noText), \(noText), \(noText), CAST(COUNT(*) AS \(double)),
                 \(nullSums.joined(separator: ", "))
          FROM unit_variants
          WHERE variants = 1 AND variant NOT IN (\(variantList))
        """)
        var sql = """
        -- Referee: the sufficient statistics of experiment \(commentSafe(request.experimentKey)) (source \(commentSafe(name)), \(dialect.rawValue))
        -- Exposures from \(request.start) to \(end), events before \(request.asOf). Read-only: nothing is written.
        -- Metrics: \(outputs.enumerated().map { "m\($0.offset) = \(commentSafe($0.element.name))" }.joined(separator: ", "))
        -- One row per variant × exposure day (× dimension value), and rows excluded_* counting the units left out.
        WITH

        """
        sql += ctes.map { "-- \($0.1)\n\($0.0) AS (\n\($0.2)\n)" }.joined(separator: ",\n")
        sql += "\n" + selects.joined(separator: "\nUNION ALL\n") + "\nORDER BY 1, 2, 3, 4, 5\n"
        let columns = WarehouseQuery.leadingColumns + outputs.flatMap { $0.columns.map(\.column) }
        return WarehouseQuery(sql: sql, dialect: dialect, source: name, asOf: request.asOf, metrics: outputs, notDefined: notDefined,
                              leftOut: leftOut, variants: request.variants, columns: columns)
    }

    /// Per dimension: values kept by units (the same as ingestion's `Ingestor.segmentsKept`).
    public static let segmentsKept = 50

    /// A number as SQL reads it back exactly.
    static func number(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }
}
