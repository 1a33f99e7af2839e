import Foundation
import Testing
import JSONCore
import Registry
import Statistics
@testable import Warehouse

let catalogText = """
{"metrics": {
  "checkout_conversion": {"type": "binomial"}, "revenue_per_user": {"type": "continuous"},
  "capped_revenue": {"type": "continuous", "capping": {"type": "absolute", "value": 500}},
  "p99_capped": {"type": "continuous", "capping": {"type": "percentile", "value": 0.99}},
  "clicks_per_session": {"type": "ratio"}, "nps": {"type": "nps"},
  "median_time": {"type": "quantile", "quantile": 0.5}
}}
"""
let catalog = try! MetricsCatalog.parse(catalogText)

func definitions(_ text: String) -> Result<WarehouseDefinitions, WarehouseDefinitions.Problems> {
    WarehouseDefinitions.parse(text, catalog: catalog)
}

let shipped: String = {
    var dir = URL(fileURLWithPath: #filePath)
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { dir.deleteLastPathComponent() }
    return try! String(contentsOf: dir.appendingPathComponent("Protocols/warehouse.json"), encoding: .utf8)
}()

@Suite struct DefinitionsTests {
    @Test func theShippedDefinitionsLoad() throws {
        let shippedCatalog = try MetricsCatalog.parse("""
            {"metrics": {"checkout_conversion": {"type": "binomial"}, "revenue_per_user": {"type": "continuous"},
             "crash_rate": {"type": "binomial"}, "clicks_per_session": {"type": "ratio"}}}
            """)
        let d = try WarehouseDefinitions.parse(shipped, catalog: shippedCatalog).get()
        let source = try #require(d.sources["analytics"])
        #expect(source.dialect == .postgresql && source.passwordEnvironment == "REFEREE_WAREHOUSE_PASSWORD" && source.timeoutSeconds == 300)
        #expect(source.metrics["crash_rate"]?.measures.first?.window == Window(fromSeconds: 0, toSeconds: 302_400))
        #expect(source.metrics["revenue_per_user"]?.measures.map(\.window) == [Window(fromSeconds: 0, toSeconds: nil), Window(fromSeconds: -1_209_600, toSeconds: 0)])
    }

    /// Every kind of mistake at once, each with its path.
    @Test func everyProblemIsReportedAtOnceWithItsPath() throws {
        let text = """
        {"sources": {
          "wh": {"dialect": "oracle", "url": "postgresql://me:secret@db:5432/x", "password_env": "not a name", "timeout_seconds": 0,
                 "extra": 1,
                 "exposures": {"table": "e", "sql": "select 1", "unit_column": "", "variant_column": "v", "timestamp_column": "t"},
                 "fact_tables": {"orders": {"sql": "select 1; drop table x", "unit_column": "u"}},
                 "metrics": {
                   "unknown_metric": {"fact_table": "orders"},
                   "revenue_per_user": {"fact_table": "nowhere", "aggregation": "avg", "window": {"from_days": -1}, "filters": ["a;b"]},
                   "checkout_conversion": {"fact_table": "orders", "covariate": {"from_days": -7}},
                   "clicks_per_session": {"numerator": {"fact_table": "orders", "value": "x"}},
                   "p99_capped": {"fact_table": "orders", "value": "x"},
                   "nps": {"fact_table": "orders", "value": "score"},
                   "median_time": {"fact_table": "orders", "value": "t"},
                   "capped_revenue": {"fact_table": "orders", "value": "amount", "window": {"from_days": 0, "to_days": 0}, "covariate": {"from_days": -7, "to_days": 3}}
                 }},
          "bq": {"dialect": "bigquery", "url": "postgresql://u@h/db", "exposures": {"table": "e", "unit_column": "u", "experiment_column": "x", "variant_column": "v", "timestamp_column": "t"}}
        }}
        """
        guard case .failure(let problems) = definitions(text) else { Issue.record("accepted"); return }
        let paths = Set(problems.items.map(\.path))
        for expected in [
            "sources.wh.dialect", "sources.wh.url", "sources.wh.password_env", "sources.wh.timeout_seconds", "sources.wh.extra",
            "sources.wh.exposures", "sources.wh.exposures.unit_column", "sources.wh.exposures.experiment_column",
            "sources.wh.fact_tables.orders.sql", "sources.wh.fact_tables.orders.timestamp_column",
            "sources.wh.metrics.unknown_metric", "sources.wh.metrics.revenue_per_user.fact_table", "sources.wh.metrics.revenue_per_user.aggregation",
            "sources.wh.metrics.revenue_per_user.window.from_days", "sources.wh.metrics.revenue_per_user.filters[0]",
            "sources.wh.metrics.checkout_conversion.covariate", "sources.wh.metrics.clicks_per_session.denominator",
            "sources.wh.metrics.nps", "sources.wh.metrics.median_time",
            "sources.wh.metrics.capped_revenue.window.to_days", "sources.wh.metrics.capped_revenue.covariate.to_days",
            "sources.bq.url",
        ] {
            #expect(paths.contains(expected), "no problem at \(expected); got \(problems.items.map(\.path))")
        }
        // The password itself is never repeated back.
        #expect(!problems.description.contains("secret"))
        #expect(problems.items.first { $0.path == "sources.wh.url" }?.message.contains("password_env") == true)
    }

    @Test func connectionURLs() throws {
        let u = try ConnectionURL.parse("postgres://reader@db.internal:6432/analytics?sslmode=require").get()
        #expect(u == ConnectionURL(user: "reader", host: "db.internal", port: 6432, database: "analytics", sslMode: .require))
        #expect(try ConnectionURL.parse("postgresql://r@h/db").get().sslMode == .prefer)
        #expect(ConnectionURL.problem("mysql://r@h/db") != nil)
        #expect(ConnectionURL.problem("postgresql://r@h:99999/db") != nil)
        #expect(ConnectionURL.problem("postgresql://r@h/db?sslmode=verify-full") != nil)
        #expect(ConnectionURL.problem("postgresql://r@h") != nil)
    }
}

@Suite struct SpellingTests {
    /// Every dialect's literal means the text itself: quotes, backslashes, comment markers and semicolons stay data.
    @Test func stringLiteralsCannotEscape() {
        let nasty = "a'b\\c;--d/*e*/\"f\nline"
        #expect(Spelling(dialect: .duckdb).string(nasty) == "'a''b\\c;--d/*e*/\"f\nline'")
        #expect(Spelling(dialect: .postgresql).string(nasty) == "E'a''b\\\\c;--d/*e*/\"f\nline'")
        #expect(Spelling(dialect: .postgresql).string("it's") == "'it''s'")
        #expect(Spelling(dialect: .bigquery).string(nasty) == "'a\\'b\\\\c;--d/*e*/\"f\\nline'")
        #expect(Spelling(dialect: .snowflake).string(nasty) == "'a\\'b\\\\c;--d/*e*/\"f\\nline'")
    }

    @Test func identifiers() {
        #expect(Spelling(dialect: .postgresql).identifier("user_id") == "user_id")
        #expect(Spelling(dialect: .postgresql).identifier("UserId") == "\"UserId\"")
        #expect(Spelling(dialect: .snowflake).identifier("order") == "\"order\"")
        #expect(Spelling(dialect: .duckdb).identifier("a\"b") == "\"a\"\"b\"")
        #expect(Spelling(dialect: .bigquery).identifier("a`b") == "`a\\`b`")
    }

    @Test func commentsCannotEndEarly() {
        #expect(commentSafe("rev\n DROP TABLE x\r\u{2028}") == "rev  DROP TABLE x  ")
    }
}

@Suite struct QueryTests {
    let source: WarehouseSource = {
        let c = try! MetricsCatalog.parse("""
            {"metrics": {"checkout_conversion": {"type": "binomial"}, "revenue_per_user": {"type": "continuous"},
             "crash_rate": {"type": "binomial"}, "clicks_per_session": {"type": "ratio"}}}
            """)
        return try! WarehouseDefinitions.parse(shipped, catalog: c).get().sources["analytics"]!
    }()

    func request(key: String = "checkout-green-button", dimensions: [String] = ["country", "platform"]) -> QueryRequest {
        QueryRequest(experimentKey: key, variants: ["control", "green"], start: Timestamp(rfc3339: "2026-12-01")!, end: Timestamp(rfc3339: "2026-12-29")!,
                     asOf: Timestamp(rfc3339: "2026-12-25")!, dimensions: dimensions, metrics: ["checkout_conversion", "revenue_per_user", "crash_rate", "nps"])
    }

    @Test func theQueryHasNamedStagesAndReportsWhatItLeavesOut() throws {
        let q = try source.query(request())
        for cte in ["exposure_rows AS (", "ranked_rows AS (", "unit_variants AS (", "exposed_units AS (", "d0_values AS (", "d1_values AS (",
                    "f0_events AS (", "f0_units AS (", "f1_events AS (", "unit_parts AS (", "unit_measures AS (", "unit_values AS ("] {
            #expect(q.sql.contains(cte), "missing \(cte)")
        }
        #expect(q.notDefined == ["nps"])
        #expect(q.metrics.map(\.name) == ["checkout_conversion", "revenue_per_user", "crash_rate"])
        #expect(q.metrics[1].hasCovariate)
        #expect(q.columns.prefix(6) == ["row_kind", "dimension", "dimension_value", "variant", "exposure_day", "units"])
        #expect(q.sql.contains("TIMESTAMP '2026-12-25 00:00:00'") && q.sql.contains("INTERVAL '302400 seconds'"))
        #expect(q.sql.components(separatedBy: ";").count == 1)
        #expect(q.sha256 == SHA256.hex(q.sql))
    }

    @Test func dialectsSpellInstantsTheirWay() throws {
        #expect(try source.query(request(), dialect: .bigquery).sql.contains("TIMESTAMP_ADD(u.first_exposed_at, INTERVAL 604800 SECOND)"))
        #expect(try source.query(request(), dialect: .bigquery).sql.contains("TIMESTAMP_SUB(u.first_exposed_at, INTERVAL 1209600 SECOND)"))
        #expect(try source.query(request(), dialect: .snowflake).sql.contains("DATEADD(second, -1209600, u.first_exposed_at)"))
        #expect(try source.query(request(), dialect: .duckdb).sql.contains("u.first_exposed_at + INTERVAL 604800 SECOND"))
        #expect(try source.query(request(), dialect: .postgresql).sql.contains("COLLATE \"C\""))
    }

    @Test func aCatalogCapIsAppliedOrTheMetricLeftOutWithTheReason() throws {
        var r = request(dimensions: [])
        r.capping = ["revenue_per_user": .absolute(500), "crash_rate": .percentile(0.99)]
        let q = try source.query(r)
        #expect(q.sql.contains("LEAST(COALESCE(u1, CAST(0 AS DOUBLE PRECISION)), CAST(500 AS DOUBLE PRECISION)) AS m1"))
        #expect(q.sql.contains("LEAST(COALESCE(u2, CAST(0 AS DOUBLE PRECISION)), CAST(500 AS DOUBLE PRECISION)) AS m1_pre"))
        #expect(q.notDefined == ["crash_rate", "nps"] && q.leftOut[0].reason.contains("percentile"))
    }

    @Test func anUnmappedDimensionOrNoMetricIsRefusedByName() {
        #expect(throws: QueryError.self) { try source.query(request(dimensions: ["browser"])) }
        var r = request()
        r.metrics = ["nps"]
        #expect(throws: QueryError.self) { try source.query(r) }
    }

    @Test func rowsReadBackAsAggregates() throws {
        let q = try source.query(request(dimensions: []))
        func row(_ kind: String, _ variant: String?, _ day: String?, units: Double, sums: [Double]) -> [WarehouseValue] {
            [.text(kind), .null, .null, variant.map(WarehouseValue.text) ?? .null, day.map(WarehouseValue.text) ?? .null, .number(units)] + sums.map(WarehouseValue.number)
        }
        let sums: [Double] = [3, 10, 60, 4, 9, 12, 1]
        let r = try q.read(columns: q.columns, rows: [row("total", "green", "2026-12-03", units: 5, sums: sums),
                                                     row("excluded_several_variants", nil, nil, units: 2, sums: [0, 0, 0, 0, 0, 0, 0])])
        #expect(r.units == 5 && r.unitsInSeveralVariants == 2)
        #expect(r.aggregates.map(\.metric) == [exposuresMetric, "checkout_conversion", "revenue_per_user", "crash_rate"])
        #expect(r.aggregates[1].aggregate == .binomial(n: 5, successes: 3))
        #expect(r.aggregates[2].aggregate == .cuped(n: 5, post: Moments(sum: 10, sumSquares: 60), pre: Moments(sum: 4, sumSquares: 9), postPre: 12))
        #expect(throws: RowsError.self) { try q.read(columns: Array(q.columns.dropLast()), rows: []) }
        #expect(throws: RowsError.self) { try q.read(columns: q.columns, rows: [row("total", "green", "2026-13-03", units: 5, sums: sums)]) }
        #expect(throws: RowsError.self) { try q.read(columns: q.columns, rows: [row("total", "green", "2026-12-03", units: 5.5, sums: sums)]) }
    }
}
