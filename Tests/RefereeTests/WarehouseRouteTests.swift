import Foundation
import Testing
import JSONCore
import Registry
import Service
import TestSupport

/// The throwaway PostgreSQL cluster `Scripts/test` starts (`Scripts/dev/postgres`); without it these tests are
/// skipped, unless `REFEREE_REQUIRE_POSTGRES=1` (as CI sets) makes its absence a failure.
enum TestPostgres {
    static let environment = ProcessInfo.processInfo.environment
    static var url: String? { environment["REFEREE_TEST_POSTGRES_URL"] }
    static var password: String { environment["REFEREE_TEST_POSTGRES_PASSWORD"] ?? "" }
    static var available: Bool { url != nil || environment["REFEREE_REQUIRE_POSTGRES"] == "1" }
    static var python: String { repositoryRoot.appendingPathComponent(".venv-tests/bin/python").path }
    static var helper: String { repositoryRoot.appendingPathComponent("Tests/RefereeTests/Warehouse/warehouse_routes.py").path }

    /// The cluster's URL with another database.
    static func url(database: String) throws -> String {
        let base = try #require(url, "REFEREE_TEST_POSTGRES_URL is not set: run the suite with Scripts/test, which starts PostgreSQL")
        let head = base[..<base.lastIndex(of: "/")!]
        return "\(head)/\(database)?sslmode=disable"
    }

    static func run(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
        try runToEnd(path, arguments, environment: environment)
    }

    @discardableResult
    static func psql(_ database: String, _ commands: [String], allowFailure: Bool = false) throws -> String {
        let r = try run("/usr/bin/psql", [try url(database: database).replacingOccurrences(of: "?sslmode=disable", with: ""), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA"]
                            + commands.flatMap { ["-c", $0] },
                        environment: ["PGPASSWORD": password, "PATH": "/usr/bin:/bin", "PGSSLMODE": "disable"])
        if !allowFailure { #expect(r.status == 0, "psql: \(r.err)") }
        return r.out
    }

    /// The seeded dataset generated into `dir`/data and loaded into its own database; returns the data folder.
    static func dataset(_ dir: TemporaryDirectory, database: String, odd: Bool = false) throws -> String {
        let data = dir.path("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try helper(["generate", data] + (odd ? ["--odd"] : []))
        try load(data, database: database)
        return data
    }

    /// A new database holding the generated dataset's tables (schema `analytics`).
    static func load(_ data: String, database: String) throws {
        try psql("postgres", ["DROP DATABASE IF EXISTS \(database)", "CREATE DATABASE \(database)"])
        try psql(database, [
            "CREATE SCHEMA analytics",
            "CREATE TABLE analytics.exposures (user_id text, experiment_key text, variant text, exposed_at timestamp, country text, platform text)",
            "CREATE TABLE analytics.orders (user_id text, ordered_at timestamp, amount double precision, status text)",
            "CREATE TABLE analytics.sessions (user_id text, started_at timestamp, clicks integer, crashed integer)",
            "\\copy analytics.exposures FROM '\(data)/exposures.csv' WITH (FORMAT csv, HEADER true)",
            "\\copy analytics.orders FROM '\(data)/orders.csv' WITH (FORMAT csv, HEADER true)",
            "\\copy analytics.sessions FROM '\(data)/sessions.csv' WITH (FORMAT csv, HEADER true)",
            "ANALYZE",
        ])
    }

    @discardableResult
    static func helper(_ arguments: [String]) throws -> String {
        let r = try run(python, [helper] + arguments)
        #expect(r.status == 0, "warehouse_routes.py \(arguments.first ?? ""): \(r.err)")
        return r.out
    }
}

/// A protocols directory: the shipped files, with `warehouse.json`'s source pointed at the test cluster's `database`
/// (its password from REFEREE_TEST_POSTGRES_PASSWORD) and test-only sources beside it.
func warehouseProtocols(_ dir: TemporaryDirectory, database: String, metricRename: (from: String, to: String)? = nil) throws -> (path: String, set: ProtocolSet) {
    let path = dir.path("protocols")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    let shipped = repositoryRoot.appendingPathComponent("Protocols")
    for name in try FileManager.default.contentsOfDirectory(atPath: shipped.path) where name.hasSuffix(".json") {
        var text = try String(contentsOf: shipped.appendingPathComponent(name), encoding: .utf8)
        if let (from, to) = metricRename, name == "metrics.json" || name == "warehouse.json" {
            text = text.replacingOccurrences(of: "\"\(from)\":", with: "\(JSON.string(to).serialized()):")
        }
        if name == "warehouse.json" {
            var json = try JSONParser.parse(text)
            var source = json["sources"]!["analytics"]!.objectValue!
            source["url"] = .string(try TestPostgres.url(database: database))
            source["password_env"] = "REFEREE_TEST_POSTGRES_PASSWORD"
            func variant(_ changes: [String: JSON]) -> JSON {
                var s = source
                for (k, v) in changes { s[k] = v }
                return .object(s)
            }
            var exposures = source["exposures"]!.objectValue!
            exposures.removeValue(forKey: "table")
            exposures["sql"] = "SELECT x.* FROM analytics.exposures AS x CROSS JOIN (SELECT pg_sleep(4)) AS pause"
            var facts = source["fact_tables"]!.objectValue!
            facts["orders"] = ["table": "analytics.no_such_table", "unit_column": "user_id", "timestamp_column": "ordered_at"]
            json = ["sources": [
                "analytics": .object(source),
                "slow": variant(["timeout_seconds": 1, "exposures": .object(exposures)]),
                "sleepy": variant(["timeout_seconds": 60, "exposures": .object(exposures)]),
                "broken": variant(["fact_tables": .object(facts)]),
                "wrong_password": variant(["password_env": "REFEREE_TEST_WRONG_PASSWORD"]),
            ]]
            text = json.serialized()
        }
        try text.write(toFile: "\(path)/\(name)", atomically: true, encoding: .utf8)
    }
    return (path, try ProtocolLoader.load(directory: path))
}

/// The experiment of the dataset: two dimensions, a ratio metric and CUPED on revenue.
func warehouseExperiment(revenue: String = "revenue_per_user") -> JSON {
    exampleExperiment(["dimensions": ["country", "platform"],
                       "metrics": ["primary": "checkout_conversion", "secondary": [.string(revenue), "clicks_per_session"], "guardrails": ["crash_rate"]]])
}

let warehouseAsOf = "2026-12-18T00:00:00Z"

/// A client whose experiment is running, on `store`.
func runningClient(_ protocols: ProtocolSet, store: String = ":memory:", revenue: String = "revenue_per_user") throws -> TestClient {
    let c = try TestClient(storePath: store, protocols: protocols)
    _ = try c.ok("experiment.register", ["experiment": warehouseExperiment(revenue: revenue)])
    try c.advance("checkout-green-button", to: ["review", "approved", "running"])
    return c
}

/// Stored aggregates by segment|metric|variant|day.
func storedAggregates(_ c: TestClient) throws -> [String: JSON] {
    let answer = try c.ok("results.aggregates", ["key": "checkout-green-button"])
    var out: [String: JSON] = [:]
    for a in answer["aggregates"]!.arrayValue! {
        out["\(a["segment"]!.stringValue!)|\(a["metric"]!.stringValue!)|\(a["variant"]!.stringValue!)|\(a["day"]!.stringValue!)"] = a["stats"]!
    }
    return out
}

/// Whether two JSON values agree, numbers to `tolerance` relative (absolute below 1).
func agree(_ a: JSON, _ b: JSON, tolerance: Double = 1e-9) -> Bool {
    switch (a, b) {
    case let (.number(x), .number(y)): return abs(x - y) <= tolerance * max(1, abs(x), abs(y))
    case let (.object(x), .object(y)): return x.keys.sorted() == y.keys.sorted() && x.keys.allSatisfy { agree(x[$0]!, y[$0]!, tolerance: tolerance) }
    case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { agree($0, $1, tolerance: tolerance) }
    default: return a == b
    }
}

func expectSameAggregates(_ a: [String: JSON], _ b: [String: JSON], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(Set(a.keys) == Set(b.keys), "\(what): keys differ: only in the first \(Set(a.keys).subtracting(b.keys).sorted().prefix(5)), only in the second \(Set(b.keys).subtracting(a.keys).sorted().prefix(5))", sourceLocation: sourceLocation)
    let differing = a.keys.sorted().filter { b[$0] != nil && !agree(a[$0]!, b[$0]!) }
    #expect(differing.isEmpty, "\(what): \(differing.count) aggregates differ, e.g. \(differing.first.map { "\($0): \(a[$0]!.serialized()) vs \(b[$0]!.serialized())" } ?? "")", sourceLocation: sourceLocation)
}

/// Records the rows of the query (as DuckDB answered them) through results.record, as a user without `pull` would.
func recordRows(_ c: TestClient, query: JSON, answer: JSON) throws -> Int {
    let columns = answer["columns"]!.arrayValue!.map { $0.stringValue! }
    var recorded = 0
    for row in answer["rows"]!.arrayValue! {
        let cells = row.arrayValue!
        func cell(_ name: String) -> JSON { cells[columns.firstIndex(of: name)!] }
        func number(_ name: String) -> JSON { cell(name).isNull ? .number(0) : cell(name) }
        let kind = cell("row_kind").stringValue!
        guard kind == "total" || kind == "segment" else { continue }
        let segment = kind == "segment" ? "\(cell("dimension").stringValue!)=\(cell("dimension_value").stringValue!)" : ""
        let base: [String: JSON] = ["key": "checkout-green-button", "variant": cell("variant"), "day": cell("exposure_day"), "segment": .string(segment)]
        func record(_ metric: String, _ stats: JSON) throws {
            var p = base
            p["metric"] = .string(metric)
            p["stats"] = stats
            _ = try c.ok("results.record", .object(p))
            recorded += 1
        }
        let units = cell("units")
        try record(exposuresMetric, ["exposures": units])
        for m in query["metrics"]!.arrayValue! {
            let col = m["columns"]!
            func v(_ role: String) -> JSON { number(col[role]!.stringValue!) }
            let stats: JSON
            switch m["type"]!.stringValue! {
            case "binomial": stats = ["n": units, "successes": v("successes")]
            case "ratio":
                stats = ["n": units, "numerator": ["sum": v("numerator_sum"), "sum_squares": v("numerator_sum_squares")],
                         "denominator": ["sum": v("denominator_sum"), "sum_squares": v("denominator_sum_squares")],
                         "numerator_denominator_sum_of_products": v("numerator_denominator")]
            default:
                stats = m["covariate"]!.boolValue!
                    ? ["n": units, "post": ["sum": v("sum"), "sum_squares": v("sum_squares")], "pre": ["sum": v("pre_sum"), "sum_squares": v("pre_sum_squares")],
                       "post_pre_sum_of_products": v("post_pre")]
                    : ["n": units, "sum": v("sum"), "sum_squares": v("sum_squares")]
            }
            try record(m["metric"]!.stringValue!, stats)
        }
    }
    return recorded
}

@Suite(.serialized, .enabled(if: TestPostgres.available, "needs PostgreSQL: run Scripts/test"))
struct WarehouseRouteTests {
    /// The same dataset in PostgreSQL (pulled by the real binary), in DuckDB (the printed SQL run there, its rows
    /// recorded) and as the unit-level file (ingested) gives the same aggregates; BigQuery's and Snowflake's texts
    /// parse, and their translations to DuckDB answer the same rows.
    @Test func threeRoutesGiveTheSameAggregates() throws {
        let dir = TemporaryDirectory()
        let data = try TestPostgres.dataset(dir, database: "routes")
        let (protocolsPath, protocols) = try warehouseProtocols(dir, database: "routes")

        // Route 1: `referee pull` of the real binary, into a store where the experiment runs.
        let store = dir.path("pulled.db")
        let pulled = try runningClient(protocols, store: store)
        let cli = try runReferee(["pull", "checkout-green-button", "--source", "analytics", "--as-of", warehouseAsOf, "--store", store,
                                  "--protocols", protocolsPath, "--actor", "analyst.ann"],
                                 environment: ["REFEREE_TEST_POSTGRES_PASSWORD": TestPostgres.password])
        #expect(cli.status == 0, "referee pull: \(cli.stderr)")
        let report = try JSONParser.parse(cli.stdout)
        #expect(report["loaded"] == true && report["units_in_several_variants"]!.doubleValue! > 0)
        #expect(report["bytes_fetched"]!.intValue! > 0 && report["bytes_fetched"]!.intValue! < 1_000_000)
        #expect(!cli.stdout.contains(TestPostgres.password) && !cli.stderr.contains(TestPostgres.password))

        // Route 2: the DuckDB text, run in DuckDB, its rows recorded.
        let recorded = try runningClient(protocols)
        let duck = try recorded.ok("results.sql", ["key": "checkout-green-button", "source": "analytics", "dialect": "duckdb", "as_of": .string(warehouseAsOf)])
        try duck["sql"]!.stringValue!.write(toFile: dir.path("duckdb.sql"), atomically: true, encoding: .utf8)
        let duckRows = try JSONParser.parse(try TestPostgres.helper(["duckdb", data, dir.path("duckdb.sql")]))
        #expect(try recordRows(recorded, query: duck, answer: duckRows) > 100)
        // `referee sql` prints exactly that text.
        let printed = try runReferee(["sql", "checkout-green-button", "--source", "analytics", "--dialect", "duckdb", "--as-of", warehouseAsOf,
                                      "--store", store, "--protocols", protocolsPath])
        #expect(printed.status == 0 && printed.stdout == duck["sql"]!.stringValue!, "referee sql: \(printed.stderr)")

        // Route 3: the unit-level file the generator computed with loops (the oracle of windows and exclusions).
        let ingested = try runningClient(protocols)
        let ingest = try ingested.ok("results.ingest", ["key": "checkout-green-button", "path": .string("\(data)/units.csv")])
        #expect(ingest["loaded"] == true)

        let a = try storedAggregates(pulled), b = try storedAggregates(recorded), c = try storedAggregates(ingested)
        #expect(a.count > 300)
        #expect(a.keys.contains { $0.hasPrefix("country=(other)|") } && a.keys.contains { $0.hasPrefix("platform=(missing)|") })
        expectSameAggregates(a, c, "pull vs ingest")
        expectSameAggregates(b, c, "DuckDB rows recorded vs ingest")
        #expect(report["units_loaded"]!.doubleValue! == ingest["units_loaded"]!.doubleValue!)

        // The summaries agree too (the same sums give the same analysis).
        let sa = try pulled.ok("results.summary", ["key": "checkout-green-button"]), sc = try ingested.ok("results.summary", ["key": "checkout-green-button"])
        #expect(agree(sa["metrics"]!, sc["metrics"]!, tolerance: 1e-7))

        // The dialects not run here: their text parses as one statement, and sqlglot's DuckDB translation answers the same rows.
        for dialect in ["bigquery", "snowflake", "postgresql"] {
            let q = try recorded.ok("results.sql", ["key": "checkout-green-button", "source": "analytics", "dialect": .string(dialect), "as_of": .string(warehouseAsOf)])
            #expect(q["columns"] == duck["columns"])
            let file = dir.path("\(dialect).sql")
            try q["sql"]!.stringValue!.write(toFile: file, atomically: true, encoding: .utf8)
            #expect(try TestPostgres.helper(["parse", file, "--read", dialect]).contains("ok"))
            guard dialect != "postgresql" else { continue }
            let rows = try JSONParser.parse(try TestPostgres.helper(["duckdb", data, file, "--read", dialect]))
            #expect(agree(rows["rows"]!, duckRows["rows"]!), "\(dialect) via sqlglot answers other rows than DuckDB's own text")
        }
    }

    /// Quotes, semicolons, comment markers and a newline in a metric's name, and such dimension values, change no
    /// result: the same aggregates as plain ones, under their own names, from one statement.
    @Test func quotingNeverChangesTheQuery() throws {
        let dir = TemporaryDirectory()
        let data = try TestPostgres.dataset(dir, database: "quoting", odd: true)
        let odd = "rev'; DROP TABLE analytics.orders; -- \"x\"\n/* y"
        let (_, protocols) = try warehouseProtocols(dir, database: "quoting", metricRename: ("revenue_per_user", odd))
        let pulled = try runningClient(protocols, revenue: odd)
        let sql = try pulled.ok("results.sql", ["key": "checkout-green-button", "source": "analytics", "as_of": .string(warehouseAsOf)])["sql"]!.stringValue!
        #expect(!sql.contains("DROP TABLE") || sql.contains("-- Metrics: m0 = checkout_conversion, m1 = rev'; DROP TABLE"))
        #expect(!sql.contains(odd), "the name's newline would end its comment line")
        let report = try pulled.ok("results.pull", ["key": "checkout-green-button", "source": "analytics", "as_of": .string(warehouseAsOf)])
        #expect(report["loaded"] == true)
        #expect(try TestPostgres.psql("quoting", ["SELECT count(*) FROM analytics.orders"]).trimmingCharacters(in: .whitespacesAndNewlines) != "0")

        let plainProtocolsDir = TemporaryDirectory()
        let (_, plainProtocols) = try warehouseProtocols(plainProtocolsDir, database: "quoting")
        let plain = try runningClient(plainProtocols)
        _ = try plain.ok("results.pull", ["key": "checkout-green-button", "source": "analytics", "as_of": .string(warehouseAsOf)])
        let renamed = Dictionary(uniqueKeysWithValues: try storedAggregates(pulled).map { ($0.key.replacingOccurrences(of: odd, with: "revenue_per_user"), $0.value) })
        expectSameAggregates(renamed, try storedAggregates(plain), "odd names vs plain names")
        #expect(renamed.keys.contains { $0.hasPrefix("country=O'Brien; -- x|") } && renamed.keys.contains { $0.hasPrefix("country=back\\slash'|") })
        let ingested = try runningClient(plainProtocols)
        _ = try ingested.ok("results.ingest", ["key": "checkout-green-button", "path": .string("\(data)/units.csv")])
        expectSameAggregates(try storedAggregates(plain), try storedAggregates(ingested), "odd values: pull vs ingest")
    }

    /// A query error, a connection dropped mid-query, a timeout and a wrong password each answer 1012 with its kind,
    /// write nothing (the earlier pull's aggregates and the audit log stay as they were) and never show the password.
    @Test func failuresWriteNothing() throws {
        let dir = TemporaryDirectory()
        _ = try TestPostgres.dataset(dir, database: "faults")
        let (_, protocols) = try warehouseProtocols(dir, database: "faults")
        let c = try runningClient(protocols)
        _ = try c.ok("results.pull", ["key": "checkout-green-button", "source": "analytics", "as_of": .string(warehouseAsOf)])
        let before = try storedAggregates(c)
        let audit = try c.ok("audit.head")

        func expectNothingWritten(_ source: String, kind: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let e = c.error("results.pull", ["key": "checkout-green-button", "source": .string(source), "as_of": .string(warehouseAsOf)], as: "analyst.ann")
            #expect(e?.code == 1012 && e?.json["data"]?["kind"]?.stringValue == kind, "\(source): \(e?.json.serialized() ?? "succeeded")", sourceLocation: sourceLocation)
            #expect(e.map { !$0.json.serialized().contains(TestPostgres.password) } == true, sourceLocation: sourceLocation)
            #expect(try storedAggregates(c) == before, sourceLocation: sourceLocation)
            #expect(try c.ok("audit.head") == audit, sourceLocation: sourceLocation)
        }
        try expectNothingWritten("broken", kind: "query")

        let started = Date()
        try expectNothingWritten("slow", kind: "timeout")
        #expect(Date().timeIntervalSince(started) < 3.5, "the 1 s timeout took \(Date().timeIntervalSince(started)) s")

        // The server ends the session while the query runs.
        let killer = Thread {
            Thread.sleep(forTimeInterval: 1.5)
            _ = try? TestPostgres.psql("faults", ["SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'referee' AND datname = 'faults'"])
        }
        killer.start()
        try expectNothingWritten("sleepy", kind: "lost")

        setenv("REFEREE_TEST_WRONG_PASSWORD", "not-the-password", 1)
        try expectNothingWritten("wrong_password", kind: "connect")
        #expect(c.error("results.pull", ["key": "checkout-green-button", "source": "nowhere"])?.code == -32602)
    }
}

/// The shipped definitions satisfy their JSON Schema (checked by jsonschema, a real validator), and the schema
/// refuses what Referee refuses: a password in the URL, both table and sql, an unknown aggregation.
@Suite struct WarehouseSchemaTests {
    @Test func theSchemaAcceptsTheShippedFileAndRefusesMistakes() throws {
        let dir = TemporaryDirectory()
        let schema = repositoryRoot.appendingPathComponent("Protocols/warehouse.schema.json").path
        let shipped = repositoryRoot.appendingPathComponent("Protocols/warehouse.json").path
        #expect(try TestPostgres.helper(["schema", schema, shipped]).contains("ok"))
        let json = try JSONParser.parse(try String(contentsOfFile: shipped, encoding: .utf8))
        let mistakes: [JSON] = [
            ["sources": ["analytics": ["url": "postgresql://reader:secret@127.0.0.1:5432/analytics"]]],
            ["sources": ["analytics": ["fact_tables": ["orders": ["sql": "SELECT 1"]]]]],
            ["sources": ["analytics": ["metrics": ["crash_rate": ["aggregation": "avg"]]]]],
            ["sources": ["analytics": ["exposures": ["variant_column": JSON.null]]]],
        ]
        var files: [String] = []
        for (i, patch) in mistakes.enumerated() {
            let file = dir.path("mistake\(i).json")
            try json.merging(patch: patch).serialized().write(toFile: file, atomically: true, encoding: .utf8)
            files.append(file)
        }
        #expect(try TestPostgres.helper(["schema", schema] + files + ["--invalid"]).contains("ok"))
    }
}
