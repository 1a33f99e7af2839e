public import JSONCore
public import Registry

/// `results.record {key, metric, variant, day?, segment?, stats}`: upserts one aggregate of an experiment that has
/// run. `stats` has the shape of the metric's type; counts are whole and below 2^53, sums finite (else 1009).
public enum ResultsRecord: MethodSpec {
    public static let name = "results.record"
    public static let summary = "Upserts one aggregate (metric, variant, day, segment)."
    public static let permission = Permission.resultsWrite
    public static let result = Schema.object(["key": Schema.string, "metric": Schema.string, "variant": Schema.string, "day": Schema.string,
                                              "segment": Schema.string, "stats": Schema.object])
    public static let errors: [ErrorCode] = [.notFound, .invalidInput, .forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let key: String
        public let metric: String
        public let variant: String
        public let day: String?
        public let segment: SegmentSelector?
        public let stats: JSON
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "metric": "a metric of the experiment", "variant": "a variant", "day": "YYYY-MM-DD",
            "segment": "a segment ('' for all units)", "stats": FieldDoc("counts below 2^53, finite sums", schema: Schema.arm),
        ]
    }
}

public enum IngestFormat: String, ParamChoice { case csv, jsonl }

/// `results.ingest {key, path, format?, allow_partial?, strict_dates?}`: folds a unit-level CSV or JSON-lines file
/// into per-arm, per-day, per-segment sufficient statistics and stores them in one transaction; all or nothing
/// unless `allow_partial`. Over the socket the file must be a regular file the caller owns. Errors: 1009 with the
/// row problems; 1010 when the file cannot be read or a spill file cannot be written.
public enum ResultsIngest: MethodSpec {
    public static let name = "results.ingest"
    public static let summary = "Loads a unit-level CSV or JSON-lines file into aggregates; all or nothing unless allow_partial."
    public static let permission = Permission.resultsWrite
    public static let result = Schema.object(["loaded": Schema.boolean, "rows_read": Schema.integer, "units_loaded": Schema.integer], additional: true)
    public static let errors: [ErrorCode] = [.notFound, .invalidInput, .ioError, .forbidden, .storeUnavailable]
    public struct Params: MethodParams {
        public let key: String
        public let path: String
        public let format: IngestFormat?
        public let allow_partial: Bool?
        public let strict_dates: Bool?
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "path": "the file (over the socket: a regular file the caller owns)", "format": "from the file name by default",
            "allow_partial": "load the valid rows",
            "strict_dates": "rows dated outside the schedule reject the file (default: they are left out and counted)",
        ]
    }
}

/// `results.summary {key, as_of?, segment?}`: the pre-registered analysis of every metric (sample-ratio check,
/// corrections, guardrails) and the decision its rules give. As of T, a row dated day D counts once D has ended
/// (D before T's day), and a unit with only its rows dated before then. Errors: 1003 for an unknown segment,
/// naming those that exist.
public enum ResultsSummary: MethodSpec {
    public static let name = "results.summary"
    public static let summary = "The pre-registered analysis and a decision."
    public static let permission = Permission.read
    public static let result = Schema.object(["experiment": Schema.string, "as_of": Schema.string, "srm": Schema.object, "metrics": Schema.array(Schema.object),
                                              "progress": Schema.object, "decision": Schema.object], additional: true)
    public static let errors: [ErrorCode] = [.notFound, .invalidInput, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public let as_of: String?
        public let segment: SegmentSelector?
        public static let docs: [String: FieldDoc] = ["key": keyDoc, "as_of": FieldDoc("read as of this time", schema: Schema.time), "segment": segmentDoc]
    }
}

/// `results.timeseries {key, metric?, segment?, as_of?}`: the cumulative estimate of one metric (the primary by default)
/// per day and variant, as of `as_of` (the days that ended by then).
public enum ResultsTimeseries: MethodSpec {
    public static let name = "results.timeseries"
    public static let summary = "Cumulative estimates per day and variant."
    public static let permission = Permission.read
    public static let result = Schema.object(["metric": Schema.string, "points": Schema.array(Schema.object)])
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public let metric: String?
        public let segment: SegmentSelector?
        public let as_of: String?
        public static let docs: [String: FieldDoc] = ["key": keyDoc, "metric": "the metric (primary)", "segment": segmentDoc,
                                                      "as_of": FieldDoc("only the days that ended by then", schema: Schema.time)]
    }
}

/// `results.export {key, what, as_of?, segment?, dimension?, format?}`: the summary (a row per metric × arm), the time
/// series of every metric (a row per metric × arm × day) or the segments (a row per dimension value × metric × arm) as
/// CSV or JSON lines, for tools outside Referee; the columns are listed in the answer and in the README.
public enum ResultsExportMethod: MethodSpec {
    public static let name = "results.export"
    public static let summary = "The summary, the time series or the segments as CSV or JSON lines (a row per metric × arm (× day | × segment value))."
    public static let permission = Permission.read
    public static let result = Schema.object(["what": Schema.string, "format": Schema.string, "columns": Schema.array(Schema.string),
                                              "rows": Schema.integer, "text": Schema.string])
    public static let errors: [ErrorCode] = [.notFound, .invalidInput, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public let what: ResultsExport.What
        public let as_of: String?
        public let segment: SegmentSelector?
        public let dimension: String?
        public let format: ResultsExport.Format?
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "what": "summary, timeseries or segments", "as_of": FieldDoc("read as of this time", schema: Schema.time),
            "segment": segmentDoc, "dimension": "with what: segments, one dimension (all declared ones by default)", "format": "csv (default) or jsonl",
        ]
    }
}

/// A segment: its name as recorded (`"US"` through results.record), or `{dimension, value}` of a declared dimension
/// (stored as `dimension=value` by ingestion).
public struct SegmentSelector: Decodable, Sendable {
    public let name: String
    public init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            name = text
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .dimension) + "=" + c.decode(String.self, forKey: .value)
    }
    enum CodingKeys: String, CodingKey, CaseIterable { case dimension, value }
}

let segmentDoc = FieldDoc("one segment: a name, or {dimension, value}",
                          schema: ["oneOf": [Schema.string, Schema.object(["dimension": Schema.string, "value": Schema.string], required: ["dimension", "value"])]])

/// `results.interactions {key, metric?, as_of?}`: for every experiment overlapping this one whose arm ingestion
/// recorded per unit, and every primary and guardrail metric (or `metric`), this experiment's effect within each of
/// the other's arms, the interaction (the difference of those effects) with its interval and p-value,
/// Benjamini–Hochberg-adjusted across every pair, metric and arm examined, and a verdict in plain words.
public enum ResultsInteractions: MethodSpec {
    public static let name = "results.interactions"
    public static let summary = "Whether this experiment's effect differs between the arms of each overlapping experiment (BH-adjusted)."
    public static let permission = Permission.read
    public static let result = Schema.object(["experiment": Schema.string, "pairs": Schema.array(Schema.object), "flagged": Schema.array(Schema.object),
                                              "tests": Schema.integer, "method": Schema.object], additional: true)
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public let metric: String?
        public let as_of: String?
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "metric": "only this metric (the primary and guardrail metrics by default)",
            "as_of": FieldDoc("read as of this time", schema: Schema.time),
        ]
    }
}

/// `results.segments {key, dimension, metric?, as_of?}`: the experiment broken down by one declared dimension: per
/// value every arm's estimate, interval and p-value, p-values adjusted by Benjamini–Hochberg across the values
/// (per metric and arm), and Cochran's Q across the values (`flagged` when an effect differs). The 50 largest values
/// are kept by ingestion, the rest are `(other)`. Errors: 1003 for a dimension the experiment does not declare.
public enum ResultsSegments: MethodSpec {
    public static let name = "results.segments"
    public static let summary = "One dimension's breakdown: every value's estimates, BH-adjusted p-values, and a heterogeneity test."
    public static let permission = Permission.read
    public static let result = Schema.object(["experiment": Schema.string, "dimension": Schema.string, "values": Schema.array(Schema.object),
                                              "heterogeneity": Schema.array(Schema.object), "flagged": Schema.boolean], additional: true)
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public let dimension: String
        public let metric: String?
        public let as_of: String?
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "dimension": "a dimension the experiment declares", "metric": "only this metric (all by default)",
            "as_of": FieldDoc("read as of this time", schema: Schema.time),
        ]
    }
}

public enum SQLDialect: String, ParamChoice { case postgresql, duckdb, bigquery, snowflake }

/// `results.sql {key, source?, dialect?, as_of?}`: the one query that computes an experiment's sufficient statistics
/// in a warehouse of `Protocols/warehouse.json`, with the columns it answers and how each is read. Nothing runs.
public enum ResultsSQL: MethodSpec {
    public static let name = "results.sql"
    public static let summary = "The warehouse query of an experiment's sufficient statistics, in a dialect; nothing runs."
    public static let permission = Permission.read
    public static let result = Schema.object(["experiment": Schema.string, "source": Schema.string, "dialect": Schema.string, "as_of": Schema.string,
                                              "sql": Schema.string, "sha256": Schema.string, "columns": Schema.array(Schema.string),
                                              "metrics": Schema.array(Schema.object), "not_in_warehouse": Schema.array(Schema.string),
                                              "left_out": Schema.array(Schema.object)])
    public static let errors: [ErrorCode] = [.notFound, .invalidInput, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public let source: String?
        public let dialect: SQLDialect?
        public let as_of: String?
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "source": "a source of warehouse.json (the only one by default)", "dialect": "the source's own by default",
            "as_of": FieldDoc("only exposures and events before then (default: now, or the end of the schedule when it has passed plus the longest window)", schema: Schema.time),
        ]
    }
}

/// `results.pull {key, source, as_of?}`: runs the experiment's query on a PostgreSQL source and stores the aggregates
/// it returns in one transaction, replacing those of earlier pulls, with its provenance (source, query hash, as-of,
/// rows, bytes) in the audit log. A failed, lost or timed-out query stores nothing (1012).
public enum ResultsPull: MethodSpec {
    public static let name = "results.pull"
    public static let summary = "Runs the warehouse query on a PostgreSQL source and stores its aggregates; all or nothing."
    public static let permission = Permission.resultsWrite
    public static let result = Schema.object(["loaded": Schema.boolean, "source": Schema.string, "sha256": Schema.string, "rows_returned": Schema.integer,
                                              "bytes_fetched": Schema.integer, "units_loaded": Schema.number], additional: true)
    public static let errors: [ErrorCode] = [.notFound, .invalidInput, .forbidden, .warehouseError, .storeUnavailable]
    public struct Params: MethodParams {
        public let key: String
        public let source: String
        public let as_of: String?
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "source": "a PostgreSQL source of warehouse.json",
            "as_of": FieldDoc("only exposures and events before then (as results.sql)", schema: Schema.time),
        ]
    }
}

/// `results.aggregates {key, segment?, metric?}`: the stored sufficient statistics themselves, each with where it came
/// from (`ingest`, `record`, `pull`): what every analysis reads, for checking one route against another.
public enum ResultsAggregates: MethodSpec {
    public static let name = "results.aggregates"
    public static let summary = "The stored aggregates (metric, variant, day, segment, stats, source)."
    public static let permission = Permission.read
    public static let result = Schema.object(["experiment": Schema.string, "aggregates": Schema.array(Schema.object), "count": Schema.integer])
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public let segment: SegmentSelector?
        public let metric: String?
        public static let docs: [String: FieldDoc] = ["key": keyDoc, "segment": "only this segment ('' for all units; every segment by default)",
                                                      "metric": "only this metric"]
    }
}
