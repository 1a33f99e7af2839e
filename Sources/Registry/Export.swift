public import JSONCore

/// Results as a table for other tools (meta-analyses across experiments, spreadsheets, notebooks): one row per
/// metric × arm of a summary, per metric × arm × day of the time series. Pure: the summary and series in, rows out.
public enum ResultsExport {
    public enum What: String, ParamChoice { case summary, timeseries, segments }
    public enum Format: String, ParamChoice { case csv, jsonl }

    /// The columns of `what`, documented in the README.
    public static func columns(_ what: What) -> [String] {
        switch what {
        case .summary:
            ["experiment", "as_of", "metric", "role", "variant", "control_n", "variant_n", "control_mean", "variant_mean",
             "estimate", "ci_lower", "ci_upper", "relative", "relative_ci_lower", "relative_ci_upper", "p_value", "adjusted_p_value",
             "significant", "readable", "guardrail_verdict", "adjustment", "variance_reduction", "unadjusted_estimate",
             "srm_p_value", "srm_mismatch", "decision", "decision_variant", "metric_type", "quantile", "capping", "cap", "units_capped"]
        case .timeseries:
            ["experiment", "as_of", "metric", "variant", "day", "control_n", "variant_n", "control_mean", "variant_mean",
             "estimate", "ci_lower", "ci_upper", "relative", "relative_ci_lower", "relative_ci_upper"]
        case .segments:
            ["experiment", "as_of", "dimension", "value", "units", "metric", "role", "variant", "control_n", "variant_n", "control_mean",
             "variant_mean", "estimate", "ci_lower", "ci_upper", "p_value", "adjusted_p_value", "significant",
             "heterogeneity_q", "heterogeneity_p_value", "effect_differs"]
        }
    }

    /// One row per dimension value, metric and treatment arm of `results.segments` answers (one per dimension).
    public static func segmentRows(_ answers: [JSON]) -> [[JSON]] {
        var rows: [[JSON]] = []
        for s in answers {
            let tests = s["heterogeneity"]?.arrayValue ?? []
            for v in s["values"]?.arrayValue ?? [] {
                for m in v["metrics"]?.arrayValue ?? [] {
                    let arms = m["variants"]?.arrayValue ?? []
                    let compared = Set((m["comparisons"]?.arrayValue ?? []).compactMap { $0["variant"]?.stringValue })
                    let control = arms.first { !compared.contains($0["variant"]?.stringValue ?? "") }
                    for c in m["comparisons"]?.arrayValue ?? [] {
                        let arm = arms.first { $0["variant"] == c["variant"] }
                        let test = tests.first { $0["metric"] == m["metric"] && $0["variant"] == c["variant"] }
                        rows.append([s["experiment"] ?? .null, s["as_of"] ?? .null, s["dimension"] ?? .null, v["value"] ?? .null, v["units"] ?? .null,
                                     m["metric"] ?? .null, m["role"] ?? .null, c["variant"] ?? .null, control?["n"] ?? .null, arm?["n"] ?? .null,
                                     control?["mean"] ?? .null, arm?["mean"] ?? .null, c["estimate"] ?? .null, item(c["ci"], 0), item(c["ci"], 1),
                                     c["p_value"] ?? .null, c["adjusted_p_value"] ?? .null, c["significant"] ?? .null,
                                     test?["q"] ?? .null, test?["p_value"] ?? .null, test?["differs"] ?? .null])
                    }
                }
            }
        }
        return rows
    }

    static func item(_ array: JSON?, _ i: Int) -> JSON {
        guard let a = array?.arrayValue, i < a.count else { return .null }
        return a[i]
    }

    /// One row per metric and treatment arm of a `results.summary` answer.
    public static func summaryRows(_ s: JSON) -> [[JSON]] {
        var rows: [[JSON]] = []
        for m in s["metrics"]?.arrayValue ?? [] {
            let arms = m["variants"]?.arrayValue ?? []
            func arm(_ key: String?) -> JSON? { arms.first { $0["variant"]?.stringValue == key } }
            let compared = Set((m["comparisons"]?.arrayValue ?? []).compactMap { $0["variant"]?.stringValue })
            let control = arms.first { !compared.contains($0["variant"]?.stringValue ?? "") }
            for c in m["comparisons"]?.arrayValue ?? [] {
                let v = arm(c["variant"]?.stringValue)
                rows.append([s["experiment"] ?? .null, s["as_of"] ?? .null, m["metric"] ?? .null, m["role"] ?? .null, c["variant"] ?? .null,
                             control?["n"] ?? .null, v?["n"] ?? .null, control?["mean"] ?? .null, v?["mean"] ?? .null,
                             c["estimate"] ?? .null, item(c["ci"], 0), item(c["ci"], 1),
                             c["relative"] ?? .null, item(c["relative_ci"], 0), item(c["relative_ci"], 1),
                             c["p_value"] ?? .null, c["adjusted_p_value"] ?? .null, c["significant"] ?? .null, c["readable"] ?? .null,
                             c["guardrail"]?["verdict"] ?? .null, c["adjustment"]?["method"] ?? .null, c["adjustment"]?["variance_reduction"] ?? .null,
                             c["unadjusted_estimate"] ?? .null, s["srm"]?["p_value"] ?? .null, s["srm"]?["mismatch"] ?? .null,
                             s["decision"]?["recommendation"] ?? .null, s["decision"]?["variant"] ?? .null,
                             m["type"] ?? .null, m["quantile"] ?? .null, m["capping"]?["type"] ?? .null,
                             m["capping"]?["cap"] ?? (m["capping"]?["type"] == "absolute" ? m["capping"]?["value"] : nil) ?? .null,
                             m["capping"]?["units_capped"] ?? .null])
            }
        }
        return rows
    }

    /// One row per metric, treatment arm and day of `results.timeseries` answers (one per metric).
    public static func timeseriesRows(experiment: String, asOf: String, _ series: [JSON]) -> [[JSON]] {
        var rows: [[JSON]] = []
        for s in series {
            for p in s["points"]?.arrayValue ?? [] {
                rows.append([.string(experiment), .string(asOf), s["metric"] ?? .null, p["variant"] ?? .null, p["day"] ?? .null,
                             p["control_n"] ?? .null, p["n"] ?? .null, p["control_mean"] ?? .null, p["mean"] ?? .null,
                             p["estimate"] ?? .null, item(p["ci"], 0), item(p["ci"], 1),
                             p["relative"] ?? .null, item(p["relative_ci"], 0), item(p["relative_ci"], 1)])
            }
        }
        return rows
    }

    /// The table as CSV (RFC 4180: a header line, fields with a comma, quote or line break quoted, null empty,
    /// numbers as JSON writes them) or as JSON lines (one object a row, null kept).
    public static func encode(columns: [String], rows: [[JSON]], format: Format) -> String {
        switch format {
        case .csv:
            func field(_ v: JSON) -> String {
                let text: String
                switch v {
                case .null: return ""
                case .string(let s): text = s
                case .bool(let b): return b ? "true" : "false"
                default: text = v.serialized()
                }
                guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
                return "\"" + text.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
            }
            return ([columns.map { field(.string($0)) }] + rows.map { $0.map(field) }).map { $0.joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
        case .jsonl:
            return rows.map { row in
                JSON.object(Dictionary(uniqueKeysWithValues: zip(columns, row))).serialized()
            }.joined(separator: "\n") + (rows.isEmpty ? "" : "\n")
        }
    }
}
