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
        public let segment: String?
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
        public let segment: String?
        public static let docs: [String: FieldDoc] = ["key": keyDoc, "as_of": FieldDoc("read as of this time", schema: Schema.time), "segment": "one segment"]
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
        public let segment: String?
        public let as_of: String?
        public static let docs: [String: FieldDoc] = ["key": keyDoc, "metric": "the metric (primary)", "segment": "one segment",
                                                      "as_of": FieldDoc("only the days that ended by then", schema: Schema.time)]
    }
}

/// `results.export {key, what, as_of?, segment?, format?}`: the summary (a row per metric × arm) or the time series of
/// every metric (a row per metric × arm × day) as CSV or JSON lines, for tools outside Referee; the columns are listed
/// in the answer and in the README.
public enum ResultsExportMethod: MethodSpec {
    public static let name = "results.export"
    public static let summary = "The summary or the time series as CSV or JSON lines (a row per metric × arm (× day))."
    public static let permission = Permission.read
    public static let result = Schema.object(["what": Schema.string, "format": Schema.string, "columns": Schema.array(Schema.string),
                                              "rows": Schema.integer, "text": Schema.string])
    public static let errors: [ErrorCode] = [.notFound, .invalidInput, .forbidden]
    public struct Params: MethodParams {
        public let key: String
        public let what: ResultsExport.What
        public let as_of: String?
        public let segment: String?
        public let format: ResultsExport.Format?
        public static let docs: [String: FieldDoc] = [
            "key": keyDoc, "what": "summary or timeseries", "as_of": FieldDoc("read as of this time", schema: Schema.time),
            "segment": "one segment", "format": "csv (default) or jsonl",
        ]
    }
}
