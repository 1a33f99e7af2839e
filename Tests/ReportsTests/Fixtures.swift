import Foundation
import JSONCore

/// Sample `results.summary` / `results.timeseries` results for the report tests.
enum Fixtures {
    /// A three-arm experiment: green wins on the primary metric, blue is flat, blue harms a guardrail.
    static let summaryText = #"""
    {"experiment": "checkout-green-button", "name": "Green checkout button", "as_of": "2026-12-20T00:00:00Z",
     "state": "running", "analysis": "fixed", "alpha": 0.05,
     "srm": {"chi2": 0.4, "df": 2, "p_value": 0.52, "mismatch": false, "threshold": 0.001,
             "variants": [{"variant": "control", "n": 10000, "expected_share": 0.3333, "observed_share": 0.3318},
                          {"variant": "green", "n": 10050, "expected_share": 0.3333, "observed_share": 0.3335},
                          {"variant": "blue", "n": 10085, "expected_share": 0.3334, "observed_share": 0.3347}]},
     "metrics": [
       {"metric": "checkout_conversion", "role": "primary", "type": "binomial", "direction": "increase",
        "variants": [{"variant": "control", "n": 10000, "mean": 0.12}, {"variant": "green", "n": 10050, "mean": 0.138},
                     {"variant": "blue", "n": 10085, "mean": 0.1212}],
        "comparisons": [
          {"variant": "green", "estimate": 0.018, "ci": [0.009, 0.027], "relative": 0.15, "relative_ci": [0.07, 0.23],
           "p_value": 0.0001, "adjusted_p_value": 0.0001, "significant": true, "chance_to_win": null, "harm_detected": false},
          {"variant": "blue", "estimate": 0.0012, "ci": [-0.0078, 0.0102], "relative": 0.01, "relative_ci": [-0.065, 0.085],
           "p_value": 0.79, "adjusted_p_value": 1.0, "significant": false, "chance_to_win": null, "harm_detected": false}]},
       {"metric": "revenue_per_user", "role": "secondary", "type": "continuous", "direction": "increase",
        "variants": [{"variant": "control", "n": 10000, "mean": 4.21}, {"variant": "green", "n": 10050, "mean": 4.1},
                     {"variant": "blue", "n": 10085, "mean": 4.3}],
        "comparisons": [
          {"variant": "green", "estimate": -0.11, "ci": [-0.31, 0.09], "relative": -0.0261, "relative_ci": [-0.0736, 0.0214],
           "p_value": 0.28, "adjusted_p_value": 0.56, "significant": false, "chance_to_win": null, "harm_detected": false},
          {"variant": "blue", "estimate": 0.09, "ci": [-0.11, 0.29], "relative": 0.0214, "relative_ci": [-0.0261, 0.0689],
           "p_value": 0.38, "adjusted_p_value": 0.56, "significant": false, "chance_to_win": null, "harm_detected": false}]},
       {"metric": "crash_rate", "role": "guardrail", "type": "binomial", "direction": "decrease",
        "variants": [{"variant": "control", "n": 10000, "mean": 0.0040}, {"variant": "green", "n": 10050, "mean": 0.0038},
                     {"variant": "blue", "n": 10085, "mean": 0.0061}],
        "comparisons": [
          {"variant": "green", "estimate": -0.0002, "ci": [-0.0019, 0.0015], "relative": -0.05, "relative_ci": [-0.45, 0.36],
           "p_value": 0.82, "adjusted_p_value": 0.82, "significant": false, "chance_to_win": null, "harm_detected": false,
           "guardrail": {"verdict": "inconclusive", "margin": 0.001, "harm_p_value": 0.4}},
          {"variant": "blue", "estimate": 0.0021, "ci": [0.0003, 0.0039], "relative": 0.525, "relative_ci": [0.07, 0.98],
           "p_value": 0.021, "adjusted_p_value": 0.042, "significant": true, "chance_to_win": null, "harm_detected": true,
           "guardrail": {"verdict": "harm", "margin": 0.001, "harm_p_value": 0.03}}]}],
     "progress": {"units": 30135, "planned_units": 13314, "share_of_plan": 2.26, "days_elapsed": 19, "days_scheduled": 28,
                  "achieved_power": 0.99},
     "decision": {"recommendation": "ship",
                  "reasons": ["primary metric +1.8 points (95% CI +0.9 to +2.7), p = 0.0001; no guardrail harmed",
                              "ship green only: blue raised crash_rate (+0.21 points, adjusted p = 0.042)"]}}
    """#

    static var summary: JSON { try! JSONParser.parse(summaryText) }

    /// Cumulative daily lift for both treatments over 19 days; intervals narrow as data accrues.
    static var series: JSON {
        var points: [JSON] = []
        for day in 1...19 {
            for (variant, target, wobble) in [("green", 0.15, 0.09), ("blue", 0.01, 0.07)] {
                let n = Double(day) * 530
                let rel = target + wobble * sin(Double(day) * 1.3) / Double(day).squareRoot()
                let half = 0.36 / Double(day).squareRoot()
                points.append(["day": .string(String(format: "2026-12-%02d", day)), "variant": .string(variant),
                               "n": .number(n.rounded()), "relative": .number(rel), "relative_ci": [.number(rel - half), .number(rel + half)]])
            }
        }
        return ["metric": "checkout_conversion", "points": .array(points)]
    }

    /// A summary with `count` metrics, each with one treatment, spread over roles.
    static func manyMetrics(_ count: Int) -> JSON {
        var metrics: [JSON] = []
        for i in 0..<count {
            let role = i == 0 ? "primary" : (i % 3 == 0 ? "guardrail" : "secondary")
            let rel = Double(i - count / 2) * 0.01
            metrics.append([
                "metric": .string("metric_\(i)"), "role": .string(role), "type": i % 2 == 0 ? "binomial" : "continuous",
                "direction": i % 5 == 0 ? "decrease" : "increase",
                "variants": [["variant": "control", "n": 5000, "mean": 0.2], ["variant": "treatment", "n": 5000, "mean": .number(0.2 * (1 + rel))]],
                "comparisons": [["variant": "treatment", "estimate": .number(0.2 * rel), "ci": [.number(0.2 * rel - 0.01), .number(0.2 * rel + 0.01)],
                                 "relative": .number(rel), "relative_ci": [.number(rel - 0.05), .number(rel + 0.05)],
                                 "p_value": .number(0.5), "adjusted_p_value": .number(1), "significant": .bool(abs(rel) > 0.1),
                                 "chance_to_win": nil, "harm_detected": false]],
            ])
        }
        return ["experiment": "many-metrics", "name": "Thirty metrics", "alpha": 0.05, "metrics": .array(metrics),
                "decision": ["recommendation": "keep_running", "reasons": ["not enough units yet"]]]
    }

    /// Hostile strings everywhere text from the input is shown.
    static let hostileName = "<script>alert(1)</script> & \"friends\" 'n' <b>bold</b>"
    static var hostile: JSON {
        ["experiment": "x</title><script>alert(2)</script>", "name": .string(hostileName), "as_of": "<i>now</i>",
         "state": "running&stuff", "analysis": "<svg onload=alert(3)>",
         "srm": ["mismatch": true, "p_value": 0.00001, "threshold": 0.001,
                 "variants": [["variant": "<ctl>", "n": 10, "expected_share": 0.5, "observed_share": 0.2],
                              ["variant": "a&b", "n": 40, "expected_share": 0.5, "observed_share": 0.8]]],
         "metrics": [["metric": "m<1>&\"q\"", "role": "primary", "type": "binomial", "direction": "increase",
                      "variants": [["variant": "<ctl>", "n": 10, "mean": 0.1], ["variant": "a&b", "n": 40, "mean": 0.2]],
                      "comparisons": [["variant": "a&b", "estimate": 0.1, "ci": [0.01, 0.19], "relative": 1.0, "relative_ci": [0.1, 1.9],
                                       "p_value": 0.04, "adjusted_p_value": 0.04, "significant": true]]]],
         "decision": ["recommendation": "invalid", "reasons": ["sample ratio <mismatch> & \"bad\" data https://evil.example/x.png"]]]
    }

    static var hostileSeries: JSON {
        ["metric": "<m>", "points": [["day": "2026-12-01", "variant": "a&b", "relative": 0.5, "relative_ci": [-0.2, 1.2]],
                                     ["day": "2026-12-02", "variant": "a&b", "relative": 0.6, "relative_ci": [0.1, 1.1]]]]
    }
}
