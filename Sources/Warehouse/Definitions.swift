import Foundation
public import JSONCore
public import Registry

/// The SQL dialects Referee writes. PostgreSQL and DuckDB are executed in the tests; BigQuery and Snowflake are
/// checked by parsing (sqlglot) and by running sqlglot's translation to DuckDB.
public enum Dialect: String, Sendable, CaseIterable {
    case postgresql, duckdb, bigquery, snowflake
}

/// A table the warehouse holds: a table reference (`analytics.orders`) or a query of the source's dialect.
public enum Relation: Sendable, Equatable {
    case table(String)
    case sql(String)
}

/// Who saw which variant of which experiment, and when.
public struct ExposureTable: Sendable, Equatable {
    public var relation: Relation
    public var unitColumn: String
    public var experimentColumn: String
    public var variantColumn: String
    public var timestampColumn: String
    /// An experiment's dimension name → the column holding it (by default a column of the same name).
    public var dimensionColumns: [String: String]
}

/// Events (or facts) per unit and time.
public struct FactTable: Sendable, Equatable {
    public var name: String
    public var relation: Relation
    public var unitColumn: String
    public var timestampColumn: String
}

/// How a unit's rows in its window become its value.
public enum UnitAggregation: String, Sendable, CaseIterable {
    case sum, max, count
}

/// A span relative to a unit's first exposure, in whole seconds: `[from, to)`; `to == nil` runs to the end of the
/// experiment (and never past the as-of time).
public struct Window: Sendable, Equatable {
    public var fromSeconds: Int
    public var toSeconds: Int?
}

/// One unit-level quantity: a fact table's value expression aggregated over a window, rows kept by the filters.
public struct Measure: Sendable, Equatable {
    public var factTable: String
    /// A SQL expression over the fact table's columns; nil for `count` (each row counts one).
    public var value: String?
    public var aggregation: UnitAggregation
    public var window: Window
    public var filters: [String]
}

/// How a catalog metric is computed in the warehouse.
public struct WarehouseMetric: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// binomial: a unit succeeds when its measure is above zero; continuous: the measure itself, with an
        /// optional CUPED covariate (the same measure over a window before exposure).
        case single(Measure, covariate: Window?)
        case ratio(numerator: Measure, denominator: Measure)
    }
    public var name: String
    public var type: MetricType
    public var kind: Kind
    /// An absolute cap applied to the value and the covariate (the query takes it from the catalog).
    public var cap: Double?

    public var measures: [Measure] {
        switch kind {
        case .single(let m, let covariate):
            guard let covariate else { return [m] }
            var pre = m
            pre.window = covariate
            return [m, pre]
        case .ratio(let n, let d): return [n, d]
        }
    }
}

/// One warehouse: how to reach it, its exposure table, its fact tables and the metrics it computes.
public struct WarehouseSource: Sendable, Equatable {
    public var name: String
    public var dialect: Dialect
    /// `postgresql://USER@HOST:PORT/DB[?sslmode=…]`, without a password (that comes from ``passwordEnvironment``).
    public var url: String?
    /// The environment variable holding the password: read when a query runs, never stored, logged or audited.
    public var passwordEnvironment: String?
    /// The longest a query may run before it is cancelled.
    public var timeoutSeconds: Double
    public var exposures: ExposureTable
    public var factTables: [String: FactTable]
    public var metrics: [String: WarehouseMetric]
}

/// `Protocols/warehouse.json`: the warehouses Referee may query.
public struct WarehouseDefinitions: Sendable, Equatable {
    public var sources: [String: WarehouseSource]
    public var contentHash: String

    public static let fileName = "warehouse.json"
    public static let defaultTimeoutSeconds = 300.0

    /// Every problem of the file at once, each with its path, or the definitions.
    public static func parse(_ text: String, catalog: MetricsCatalog) -> Result<WarehouseDefinitions, Problems> {
        var reader = Reader()
        let json: JSON
        do { json = try JSONParser.parse(text) } catch {
            return .failure(Problems(items: [FieldError(path: fileName, message: "is not valid JSON: \(error)")]))
        }
        var sources: [String: WarehouseSource] = [:]
        if let root = reader.fields(json, path: "") {
            reader.reject(root, allowed: ["$schema", "description", "sources"])
            if let list = reader.object(root, "sources") {
                if list.members.isEmpty { reader.add(list.path, "must name at least one source") }
                for name in list.members.keys.sorted() {
                    if let source = reader.source(name, list, catalog: catalog) { sources[name] = source }
                }
            }
        }
        guard reader.problems.isEmpty else { return .failure(Problems(items: reader.problems)) }
        return .success(WarehouseDefinitions(sources: sources, contentHash: SHA256.hex(text)))
    }

    /// Every problem found, in file order of their paths.
    public struct Problems: Error, Sendable, CustomStringConvertible {
        public var items: [FieldError]
        public var description: String {
            "\(fileName): \(items.count) problem\(items.count == 1 ? "" : "s"): " + items.map { "\($0.path): \($0.message)" }.joined(separator: "; ")
        }
        public var json: JSON { .array(items.map { ["path": .string($0.path), "message": .string($0.message)] }) }
    }
}

/// Reads the file, noting every problem rather than stopping at the first.
struct Reader {
    var problems: [FieldError] = []

    mutating func add(_ path: String, _ message: String) { problems.append(FieldError(path: path, message: message)) }

    mutating func attempt<T>(_ body: () throws(FieldError) -> T) -> T? {
        do { return try body() } catch { problems.append(error); return nil }
    }

    mutating func fields(_ value: JSON?, path: String) -> Fields? { attempt { () throws(FieldError) in try Fields(value, path: path) } }
    mutating func object(_ f: Fields, _ key: String) -> Fields? { attempt { () throws(FieldError) in try f.object(key) } }
    mutating func string(_ f: Fields, _ key: String) -> String? {
        guard let s = attempt({ () throws(FieldError) in try f.string(key) }) else { return nil }
        if s.isEmpty { add(f.fieldPath(key), "must not be empty") }
        return s
    }
    mutating func optionalString(_ f: Fields, _ key: String) -> String? { attempt { () throws(FieldError) in try f.optionalString(key) } ?? nil }
    mutating func reject(_ f: Fields, allowed: Set<String>) {
        for key in f.members.keys.sorted() where !allowed.contains(key) {
            add(f.fieldPath(key), "is not a known field; allowed: \(allowed.sorted().joined(separator: ", "))")
        }
    }

    /// A column name: any text but empty, without NUL (it is quoted as an identifier in the query).
    mutating func column(_ f: Fields, _ key: String) -> String? {
        guard let name = string(f, key) else { return nil }
        if name.contains("\u{0}") { add(f.fieldPath(key), "must not contain a NUL character") }
        return name
    }

    mutating func relation(_ f: Fields) -> Relation? {
        switch (f.has("table"), f.has("sql")) {
        case (true, false): return string(f, "table").map(Relation.table)
        case (false, true):
            guard let sql = string(f, "sql") else { return nil }
            if sql.contains(";") { add(f.fieldPath("sql"), "must be one SELECT without ';': it is embedded in Referee's query as a subquery") }
            return .sql(sql)
        case (true, true): add(f.path, "has both table and sql; give one"); return nil
        case (false, false): add(f.path, "needs table (a table name, e.g. analytics.orders) or sql (one SELECT)"); return nil
        }
    }

    mutating func source(_ name: String, _ list: Fields, catalog: MetricsCatalog) -> WarehouseSource? {
        guard let f = object(list, name) else { return nil }
        reject(f, allowed: ["description", "dialect", "url", "password_env", "timeout_seconds", "exposures", "fact_tables", "metrics"])
        let before = problems.count
        let dialect = attempt { () throws(FieldError) in try f.choice("dialect", Dialect.allCases.map(\.rawValue)) }.flatMap(Dialect.init(rawValue:))
        let url = optionalString(f, "url")
        if let url {
            if let dialect, dialect != .postgresql {
                add(f.fieldPath("url"), "Referee runs queries on PostgreSQL sources only; a \(dialect.rawValue) source prints its SQL (referee sql) for you to run; remove url")
            } else if let problem = ConnectionURL.problem(url) {
                add(f.fieldPath("url"), problem)
            }
        }
        let passwordEnvironment = optionalString(f, "password_env")
        if let passwordEnvironment, passwordEnvironment.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) == nil {
            add(f.fieldPath("password_env"), "must name an environment variable (letters, digits and _), got \"\(passwordEnvironment.prefix(60))\"")
        }
        var timeout = WarehouseDefinitions.defaultTimeoutSeconds
        if let t = attempt({ () throws(FieldError) in try f.optionalDouble("timeout_seconds") }) ?? nil {
            if t > 0, t <= 86_400 { timeout = t } else { add(f.fieldPath("timeout_seconds"), "must be more than 0 and at most 86400 (a day), got \(t)") }
        }
        let exposures = object(f, "exposures").flatMap { exposureTable($0) }
        var factTables: [String: FactTable] = [:]
        if let facts = object(f, "fact_tables") {
            for table in facts.members.keys.sorted() {
                guard let t = object(facts, table) else { continue }
                reject(t, allowed: ["description", "table", "sql", "unit_column", "timestamp_column"])
                let relation = relation(t), unit = column(t, "unit_column"), ts = column(t, "timestamp_column")
                if let relation, let unit, let ts { factTables[table] = FactTable(name: table, relation: relation, unitColumn: unit, timestampColumn: ts) }
            }
        }
        var metrics: [String: WarehouseMetric] = [:]
        if let list = object(f, "metrics") {
            for metric in list.members.keys.sorted() {
                if let m = self.metric(metric, list, catalog: catalog, factTables: Set(factTables.keys)) { metrics[metric] = m }
            }
        }
        guard problems.count == before, let dialect, let exposures else { return nil }
        return WarehouseSource(name: name, dialect: dialect, url: url, passwordEnvironment: passwordEnvironment, timeoutSeconds: timeout,
                               exposures: exposures, factTables: factTables, metrics: metrics)
    }

    mutating func exposureTable(_ f: Fields) -> ExposureTable? {
        reject(f, allowed: ["description", "table", "sql", "unit_column", "experiment_column", "variant_column", "timestamp_column", "dimensions"])
        let relation = relation(f)
        let unit = column(f, "unit_column"), experiment = column(f, "experiment_column")
        let variant = column(f, "variant_column"), ts = column(f, "timestamp_column")
        var dimensions: [String: String] = [:]
        if f.has("dimensions"), let d = object(f, "dimensions") {
            for name in d.members.keys.sorted() { if let c = column(d, name) { dimensions[name] = c } }
        }
        guard let relation, let unit, let experiment, let variant, let ts else { return nil }
        return ExposureTable(relation: relation, unitColumn: unit, experimentColumn: experiment, variantColumn: variant, timestampColumn: ts,
                             dimensionColumns: dimensions)
    }

    mutating func window(_ f: Fields, _ key: String, beforeExposure: Bool) -> Window? {
        guard let w = object(f, key) else { return nil }
        reject(w, allowed: ["from_days", "to_days"])
        func seconds(_ k: String) -> Int?? {
            guard w.has(k) else { return .some(nil) }
            guard let days = attempt({ () throws(FieldError) in try w.double(k) }) else { return nil }
            let s = (days * 86_400).rounded()
            guard abs(days) <= 36_500, abs(s - days * 86_400) < 1e-6 else {
                add(w.fieldPath(k), "must be a number of days within 100 years that is a whole number of seconds, got \(days)")
                return nil
            }
            return .some(Int(s))
        }
        guard let from = seconds("from_days"), let to = seconds("to_days") else { return nil }
        let start = from ?? (beforeExposure ? nil : 0)
        guard let start else { add(w.fieldPath("from_days"), "is required: how many days before first exposure the covariate starts, e.g. -14"); return nil }
        if beforeExposure {
            let end = to ?? 0
            guard end <= 0 else { add(w.fieldPath("to_days"), "must be at most 0: a covariate is measured before exposure"); return nil }
            guard start < end else { add(w.fieldPath("from_days"), "must be before to_days (\(Double(end) / 86_400))"); return nil }
            return Window(fromSeconds: start, toSeconds: end)
        }
        if start < 0 { add(w.fieldPath("from_days"), "must be 0 or more: a metric is measured from first exposure on; a pre-exposure window is a covariate"); return nil }
        if let to, to <= start { add(w.fieldPath("to_days"), "must be after from_days; leave it out to measure to the end of the experiment"); return nil }
        return Window(fromSeconds: start, toSeconds: to)
    }

    mutating func measure(_ f: Fields, factTables: Set<String>, defaultAggregation: UnitAggregation) -> Measure? {
        let before = problems.count
        let table = string(f, "fact_table")
        if let table, !factTables.contains(table) {
            add(f.fieldPath("fact_table"), "\"\(table)\" is not a fact table of this source (\(factTables.sorted().joined(separator: ", ")))")
        }
        let aggregation = attempt { () throws(FieldError) in try f.choice("aggregation", UnitAggregation.allCases.map(\.rawValue), default: defaultAggregation.rawValue) }
            .flatMap(UnitAggregation.init(rawValue:))
        let value = optionalString(f, "value")
        if aggregation != .count, value == nil { add(f.fieldPath("value"), "is required for aggregation \(aggregation?.rawValue ?? "sum"): a SQL expression over the fact table's columns, e.g. amount") }
        if let value, value.contains(";") { add(f.fieldPath("value"), "must be one expression without ';'") }
        let window = f.has("window") ? self.window(f, "window", beforeExposure: false) : Window(fromSeconds: 0, toSeconds: nil)
        var filters: [String] = []
        if f.has("filters") {
            if let list = attempt({ () throws(FieldError) in try f.strings("filters") }) {
                for (i, filter) in list.enumerated() where filter.isEmpty || filter.contains(";") {
                    add("\(f.fieldPath("filters"))[\(i)]", "must be one SQL condition without ';', e.g. status = 'paid'")
                }
                filters = list
            }
        }
        guard problems.count == before, let table, let aggregation, let window else { return nil }
        return Measure(factTable: table, value: value, aggregation: aggregation, window: window, filters: filters)
    }

    mutating func metric(_ name: String, _ list: Fields, catalog: MetricsCatalog, factTables: Set<String>) -> WarehouseMetric? {
        guard let f = object(list, name) else { return nil }
        guard let def = catalog.metrics[name] else {
            add(f.path, "is not a metric of the catalog (metrics.json): \(catalog.metrics.keys.sorted().joined(separator: ", "))")
            return nil
        }
        switch def.type {
        case .binomial, .continuous:
            reject(f, allowed: ["description", "fact_table", "value", "aggregation", "window", "filters", "covariate"])
            let m = measure(f, factTables: factTables, defaultAggregation: def.type == .binomial ? .count : .sum)
            var covariate: Window?
            if f.has("covariate") {
                if def.type == .binomial { add(f.fieldPath("covariate"), "applies to continuous metrics; \(name) is binomial") }
                else { covariate = window(f, "covariate", beforeExposure: true) }
                if covariate == nil { return nil }
            }
            guard let m else { return nil }
            // The catalog's cap is applied when the query is made (the catalog may change without this file).
            return WarehouseMetric(name: name, type: def.type, kind: .single(m, covariate: covariate), cap: nil)
        case .ratio:
            reject(f, allowed: ["description", "numerator", "denominator"])
            let n = object(f, "numerator").flatMap { o -> Measure? in
                reject(o, allowed: ["fact_table", "value", "aggregation", "window", "filters"])
                return measure(o, factTables: factTables, defaultAggregation: .sum)
            }
            let d = object(f, "denominator").flatMap { o -> Measure? in
                reject(o, allowed: ["fact_table", "value", "aggregation", "window", "filters"])
                return measure(o, factTables: factTables, defaultAggregation: .sum)
            }
            guard let n, let d else { return nil }
            return WarehouseMetric(name: name, type: .ratio, kind: .ratio(numerator: n, denominator: d), cap: nil)
        case .nps, .quantile:
            add(f.path, "\(name) is a \(def.type.rawValue) metric, which needs each unit's value rather than sums; ingest it from a unit-level file (referee ingest)")
            return nil
        }
    }
}

/// `postgresql://USER@HOST:PORT/DB?sslmode=…`, read without ever keeping a password.
public struct ConnectionURL: Sendable, Equatable {
    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    public enum SSLMode: String, Sendable, CaseIterable { case disable, prefer, require }

    /// What is wrong with `text`, in words that say how to fix it; nil when it is usable.
    public static func problem(_ text: String) -> String? {
        switch parse(text) {
        case .success: nil
        case .failure(let e): e.message
        }
    }

    public struct Invalid: Error, Sendable { public var message: String }

    public static func parse(_ text: String) -> Result<ConnectionURL, Invalid> {
        func fail(_ m: String) -> Result<ConnectionURL, Invalid> { .failure(Invalid(message: m)) }
        var rest = Substring(text)
        if rest.hasPrefix("postgresql://") { rest = rest.dropFirst("postgresql://".count) }
        else if rest.hasPrefix("postgres://") { rest = rest.dropFirst("postgres://".count) }
        else { return fail("must start with postgresql:// (postgresql://USER@HOST:PORT/DB)") }
        var query = Substring("")
        if let q = rest.firstIndex(of: "?") { query = rest[rest.index(after: q)...]; rest = rest[..<q] }
        guard let slash = rest.firstIndex(of: "/") else { return fail("must name a database: postgresql://USER@HOST:PORT/DB") }
        let database = String(rest[rest.index(after: slash)...])
        var authority = rest[..<slash]
        var user = "postgres"
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if userInfo.contains(":") { return fail("must not hold a password; name an environment variable that holds it in password_env") }
            user = String(userInfo)
            authority = authority[authority.index(after: at)...]
        }
        var host = String(authority), port = 5432
        if let colon = authority.lastIndex(of: ":") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(p) else { return fail("has a port that is not a number from 1 to 65535") }
            port = p
            host = String(authority[..<colon])
        }
        guard !host.isEmpty, !database.isEmpty, !user.isEmpty else { return fail("must name a user, a host and a database: postgresql://USER@HOST:PORT/DB") }
        var mode = SSLMode.prefer
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0] == "sslmode", let m = SSLMode(rawValue: kv[1]) else {
                return fail("takes only sslmode=disable|prefer|require as a parameter, got \"\(pair.prefix(60))\"")
            }
            mode = m
        }
        return .success(ConnectionURL(user: user, host: host, port: port, database: database, sslMode: mode))
    }

    /// Host, port and database: what errors may name (never the user's secrets).
    public var displayName: String { "\(host):\(port)/\(database)" }
}
