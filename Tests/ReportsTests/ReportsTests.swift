import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import JSONCore
import Testing
@testable import Reports

/// Every `<svg …>…</svg>` fragment of a page (charts are never nested).
func svgFragments(_ html: String) -> [String] {
    var out: [String] = []
    var rest = html[...]
    while let start = rest.range(of: "<svg"), let end = rest.range(of: "</svg>", range: start.upperBound..<rest.endIndex) {
        out.append(String(rest[start.lowerBound..<end.upperBound]))
        rest = rest[end.upperBound...]
    }
    return out
}

func occurrences(_ needle: String, in haystack: String) -> Int {
    haystack.components(separatedBy: needle).count - 1
}

/// Parses a fragment as XML; returns the parse error, if any.
func xmlError(_ fragment: String) -> (any Error)? {
    do {
        _ = try XMLDocument(xmlString: fragment, options: [])
        return nil
    } catch {
        return error
    }
}

func position(_ needle: String, _ haystack: String) -> Int? {
    haystack.range(of: needle).map { haystack.distance(from: haystack.startIndex, to: $0.lowerBound) }
}

@Suite("Markdown report")
struct MarkdownReportTests {
    let md = ReportRenderer.markdown(summary: Fixtures.summary, series: Fixtures.series)

    @Test func startsWithHeadingAndBoldDecisionAndReasons() {
        let lines = md.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0].hasPrefix("## "))
        #expect(lines[0].contains("Green checkout button"))
        #expect(lines[0].contains("`checkout-green-button`"))
        #expect(md.contains("**Decision: SHIP**"))
        #expect(md.contains("- primary metric +1.8 points (95% CI +0.9 to +2.7), p = 0.0001; no guardrail harmed"))
        #expect(md.contains("- ship green only: blue raised crash\\_rate"))
        // Decision comes before any table.
        #expect(position("**Decision", md)! < position("| Metric", md)!)
    }

    @Test func listsEveryMetricAndVariantInRoleTables() {
        for metric in ["checkout_conversion", "revenue_per_user", "crash_rate"] {
            #expect(md.contains("| `\(metric)`"), "missing \(metric)")
        }
        for variant in ["green", "blue"] { #expect(occurrences("| `\(variant)` |", in: md) == 4, "variant \(variant)") }  // 3 metrics + SRM table
        #expect(md.contains("| `control` | 10,000 | 33.3% | 33.2% |"))
        #expect(md.contains("### Primary metric"))
        #expect(md.contains("### Secondary metrics"))
        #expect(md.contains("### Guardrail metrics"))
        #expect(position("### Primary", md)! < position("### Secondary", md)!)
        #expect(position("### Secondary", md)! < position("### Guardrail", md)!)
        // Column header with the confidence level from alpha.
        #expect(md.contains("| Metric | Variant | Control | Treatment | Absolute Δ (95% CI) | Relative Δ (95% CI) | p | Adjusted p | Result |"))
    }

    @Test func formatsNumbersWithSignsUnitsAndThreeSignificantDigits() {
        // Binomial: means in %, absolute delta in percentage points, shared decimals across the interval.
        #expect(md.contains("| `checkout_conversion` | `green` | 12.0% | 13.8% | +1.80 pp (+0.90 to +2.70) | +15.00% (+7.00% to +23.00%) | 0.0001 | 0.0001 | ✅ significant improvement |"))
        // Continuous: plain numbers, typographic minus on negative deltas.
        #expect(md.contains("| `revenue_per_user` | `green` | 4.21 | 4.10 | −0.110 (−0.310 to +0.090) | −2.61% (−7.36% to +2.14%) | 0.28 | 0.56 | ➖ not significant |"))
        // Guardrail where lower is better, harmed: labelled by the guardrail's own test, with its margin.
        #expect(md.contains("| `crash_rate` ↓ | `blue` | 0.400% | 0.610% | +0.210 pp (+0.030 to +0.390) | +52.5% (+7.0% to +98.0%) | 0.021 | 0.042 | ❌ harm beyond the margin (margin 0.1 pp) |"))
        #expect(md.contains("No sample-ratio mismatch (χ² = 0.4 (df 2), p = 0.52, threshold 0.001)"))
        #expect(md.contains("- Units: 30,135 of 13,314 planned (226% of plan)"))
        #expect(md.contains("- Days: 19 of 28 scheduled"))
        #expect(md.contains("- Achieved power: 99.0%"))
    }

    @Test func escapesHostileText() {
        let out = ReportRenderer.markdown(summary: Fixtures.hostile, series: nil)
        // Every angle bracket and ampersand is backslash-escaped (CommonMark shows it as text): no tag can form,
        // and the raw Markdown carries no HTML entities.
        let chars = Array(out)
        let opensTag = chars.indices.contains { i in
            chars[i] == "<" && (i == 0 || chars[i - 1] != "\\") && i + 1 < chars.count && (chars[i + 1].isLetter || chars[i + 1] == "/" || chars[i + 1] == "!")
        }
        #expect(!opensTag)
        #expect(!out.contains("&lt;") && !out.contains("&amp;"))
        #expect(out.contains("\\<script\\>alert(1)\\</script\\> \\&"))
        #expect(out.contains("⚠️ **Sample-ratio mismatch detected"))
        // Pipes in identifiers never break a table row.
        let piped = ReportRenderer.markdown(summary: ["metrics": [["metric": "a|b", "comparisons": [["variant": "x|y", "relative": 0.1]]]]], series: nil)
        #expect(piped.contains("`a\\|b`"))
        #expect(piped.contains("`x\\|y`"))
    }

    @Test func rendersEmptyAndPartialSummaries() {
        for input: JSON in [.null, [:], ["metrics": .null, "decision": .null], "not an object"] {
            let out = ReportRenderer.markdown(summary: input, series: nil)
            #expect(out.contains("**Decision: NO DECISION**"))
            #expect(out.contains("No metrics in this summary."))
        }
        let noCI = ReportRenderer.markdown(summary: ["metrics": [["metric": "m", "role": "primary", "type": "binomial",
            "comparisons": [["variant": "t", "estimate": 0.01, "ci": .null, "relative": 0.1, "relative_ci": [.null, 0.2]]]]]], series: nil)
        #expect(noCI.contains("+1.00 pp (no CI)"))
        #expect(noCI.contains("+10.0% (no CI)"))
    }
}

@Suite("HTML report")
struct HTMLReportTests {
    let html = ReportRenderer.html(summary: Fixtures.summary, series: Fixtures.series)
    let comparisonCount = 6

    @Test func isAValidSelfContainedHTML5Document() {
        #expect(html.hasPrefix("<!doctype html>\n<html lang=\"en\">"))
        #expect(html.contains("<meta charset=\"utf-8\">"))
        #expect(html.contains("<title>Ship: Green checkout button — experiment report</title>"))
        #expect(html.hasSuffix("</html>\n"))
        for forbidden in ["<script", "http://", "https://", "src=", "href=", "<link", "@import", "url(", "<img", "<iframe", "<object", "javascript:"] {
            #expect(!html.lowercased().contains(forbidden), "found \(forbidden)")
        }
        // No event-handler attributes anywhere (onload=, onclick=, …).
        #expect(html.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil)
        #expect(occurrences("<style>", in: html) == 1)
        #expect(html.contains("@media print"))
        #expect(html.contains("break-inside: avoid"))
    }

    @Test func escapesEveryStringFromTheInput() {
        let out = ReportRenderer.html(summary: Fixtures.hostile, series: Fixtures.hostileSeries)
        #expect(!out.contains("<script"))
        #expect(!out.contains("<b>"))
        #expect(!out.contains("<i>"))
        #expect(!out.contains("<ctl>"))
        #expect(!out.contains("<svg onload"))
        #expect(out.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot; &#39;n&#39; &lt;b&gt;bold&lt;/b&gt;"))
        #expect(out.contains("<title>Invalid: &lt;script&gt;alert(1)&lt;/script&gt; &amp;"))
        #expect(out.contains("x&lt;/title&gt;&lt;script&gt;alert(2)&lt;/script&gt;"))
        #expect(out.contains("m&lt;1&gt;&amp;&quot;q&quot;"))
        #expect(out.contains("a&amp;b"))
        #expect(!out.contains("a&b"))
        for forbidden in ["src=", "href=", "url("] { #expect(!out.contains(forbidden)) }
        for svg in svgFragments(out) { #expect(xmlError(svg) == nil) }
    }

    @Test func sectionsComeInTheSpecifiedOrder() throws {
        let order = ["class=\"decision ", "data-chart=\"forest\"", "data-chart=\"timeseries\"", "data-chart=\"traffic\"", "id=\"metrics\"", "id=\"progress\""]
        let positions = try order.map { try #require(position($0, html), "missing \($0)") }
        #expect(positions == positions.sorted())
    }

    @Test func decisionIsBigColouredAndLabelledInWords() {
        #expect(html.contains("<section class=\"decision decision-ship\""))
        #expect(html.contains("<span class=\"decision-text\">Ship</span>"))
        #expect(html.contains("<span class=\"decision-icon\" aria-hidden=\"true\">✔</span>"))
        #expect(html.contains("<li>primary metric +1.8 points (95% CI +0.9 to +2.7), p = 0.0001; no guardrail harmed</li>"))
    }

    @Test(arguments: [("ship", "Ship"), ("rollback", "Roll back"), ("keep_running", "Keep running"),
                      ("inconclusive", "Inconclusive"), ("invalid", "Invalid"), ("needs_review", "Needs review")])
    func everyRecommendationHasATextLabel(recommendation: String, label: String) {
        let out = ReportRenderer.html(summary: ["decision": ["recommendation": .string(recommendation)]], series: nil)
        #expect(out.contains("<span class=\"decision-text\">\(label)</span>"))
        #expect(out.contains("data-recommendation=\"\(recommendation)\""))
        let md = ReportRenderer.markdown(summary: ["decision": ["recommendation": .string(recommendation)]], series: nil)
        #expect(md.contains("**Decision: \(label.uppercased())**"))
    }

    @Test func forestPlotHasOneIntervalPerComparisonAndAZeroLine() throws {
        let forest = try #require(svgFragments(html).first { $0.contains("data-chart=\"forest\"") })
        #expect(occurrences("data-comparison=", in: forest) == comparisonCount)
        #expect(occurrences("data-interval=", in: forest) == comparisonCount)
        // One panel per role, each with its own scale and zero line.
        #expect(occurrences("data-zero=\"true\"", in: forest) == 3)
        #expect(forest.contains("role=\"img\""))
        #expect(forest.contains("aria-label=\"Forest plot"))
        #expect(forest.contains("<title>Forest plot"))
        #expect(forest.contains("Relative lift vs control (95% CI)"))
        for tick in ["0%", "+20%", "−20%"] { #expect(forest.contains(">\(tick)</text>"), "tick \(tick)") }
        #expect(forest.contains("data-verdict=\"win\""))
        #expect(forest.contains("data-verdict=\"guardrailHarm\""))
        #expect(forest.contains("data-verdict=\"neutral\""))
        #expect(forest.contains("+15.0% (+7.0 to +23.0)"))
    }

    @Test func seriesChartHasBandLineZeroAndDates() throws {
        let chart = try #require(svgFragments(html).first { $0.contains("data-chart=\"timeseries\"") })
        #expect(occurrences("class=\"band\"", in: chart) == 2)
        #expect(chart.contains("data-band=\"green\""))
        #expect(chart.contains("data-line=\"blue\""))
        #expect(occurrences("data-zero=\"true\"", in: chart) == 1)
        #expect(chart.contains(">Dec 1</text>"))
        #expect(chart.contains(">Dec 19</text>"))
        #expect(chart.contains("role=\"img\""))
    }

    @Test func noSeriesMeansNoBandAndNoTimeseriesChart() {
        let out = ReportRenderer.html(summary: Fixtures.summary, series: nil)
        #expect(!out.contains("data-chart=\"timeseries\""))
        #expect(!out.contains("class=\"band\""))
        #expect(!out.contains("data-band="))
        #expect(out.contains("data-chart=\"forest\""))
    }

    @Test func trafficSplitShowsExpectedAndObservedWithVerdict() throws {
        let chart = try #require(svgFragments(html).first { $0.contains("data-chart=\"traffic\"") })
        #expect(occurrences("class=\"expected\"", in: chart) == 3)
        #expect(occurrences("class=\"observed\"", in: chart) == 3)
        // On two lines, so the text stays inside the chart (ReportLayoutTests measures it in Chromium).
        #expect(chart.contains(">expected 33.3% · observed 33.5%</text>") && chart.contains(">+0.13 pp · n = 10,085</text>"))
        #expect(html.contains("<p class=\"srm srm-ok\"><span class=\"srm-label\"><span aria-hidden=\"true\">✔</span> Sample ratio OK</span>"))
        let bad = ReportRenderer.html(summary: Fixtures.hostile, series: nil)
        #expect(bad.contains("class=\"srm srm-bad\""))
        #expect(bad.contains("Sample ratio MISMATCH"))
        #expect(bad.contains("(p &lt; 0.0001, threshold 0.001)"))
    }

    @Test func tablesAndProgressAreRendered() {
        #expect(occurrences("<table class=\"metrics", in: html) == 3)
        #expect(html.contains("<td class=\"num\">+1.80 pp<br><span class=\"ci\">(+0.90 to +2.70)</span></td>"))
        #expect(html.contains("<td class=\"result good\">"))
        #expect(html.contains("harm beyond the margin"))
        #expect(html.contains("30,135 of 13,314 planned (226%)"))
        #expect(html.contains("<dt>Achieved power</dt>"))
    }

    @Test func everySVGIsWellFormedAndAccessible() {
        let inputs: [(JSON, JSON?)] = [
            (Fixtures.summary, Fixtures.series), (Fixtures.summary, nil), (Fixtures.hostile, Fixtures.hostileSeries),
            (Fixtures.manyMetrics(30), nil), (.null, nil), ([:], ["points": []]),
        ]
        for (summary, series) in inputs {
            let out = ReportRenderer.html(summary: summary, series: series)
            let svgs = svgFragments(out)
            #expect(!svgs.isEmpty)
            for svg in svgs {
                #expect(xmlError(svg) == nil, "not well-formed: \(svg.prefix(200))")
                #expect(svg.contains("role=\"img\""))
                #expect(svg.contains("aria-label=\""))
                #expect(svg.contains("<title>"))
                #expect(svg.range(of: #"="[^"]*(nan|inf)"#, options: .regularExpression) == nil, "non-finite coordinate")
            }
        }
        #expect(svgFragments(html).count == 3)
    }

    @Test func handlesThirtyMetrics() throws {
        let out = ReportRenderer.html(summary: Fixtures.manyMetrics(30), series: nil)
        let forest = try #require(svgFragments(out).first { $0.contains("data-chart=\"forest\"") })
        #expect(occurrences("data-interval=", in: forest) == 30)
        for i in 0..<30 { #expect(forest.contains(">metric_\(i) ") || forest.contains(">metric_\(i)<"), "metric_\(i)") }
        #expect(out.contains("Keep running"))
    }

    @Test func handlesMissingIntervalsAndSingleVariants() throws {
        let summary: JSON = [
            "alpha": .null,
            "srm": ["variants": [["variant": "only", "n": 100, "expected_share": 1, "observed_share": 1]]],
            "metrics": [
                ["metric": "lonely", "role": "primary", "type": "binomial", "variants": [["variant": "control", "n": 100, "mean": 0.5]], "comparisons": []],
                ["metric": "no_ci", "role": "secondary", "comparisons": [["variant": "t", "relative": 0.05, "relative_ci": .null, "significant": .null]]],
                ["metric": "half_ci", "role": "secondary", "comparisons": [["variant": "t", "relative": 0.05, "relative_ci": [0.01, .null]]]],
            ],
        ]
        let out = ReportRenderer.html(summary: summary, series: ["points": [["day": "2026-12-01", "variant": "t", "relative": 0.1, "relative_ci": [0, 0.2]]]])
        let forest = try #require(svgFragments(out).first { $0.contains("data-chart=\"forest\"") })
        #expect(occurrences("data-comparison=", in: forest) == 2)
        #expect(occurrences("data-interval=", in: forest) == 0)
        #expect(forest.contains("(no CI)"))
        #expect(forest.contains("data-verdict=\"unknown\""))
        // A single day: no band, a plain error bar.
        let series = try #require(svgFragments(out).first { $0.contains("data-chart=\"timeseries\"") })
        #expect(!series.contains("class=\"band\""))
        #expect(out.contains("no comparison"))
        #expect(out.contains("Relative Δ (CI)"))  // no alpha: no confidence level claimed
        for svg in svgFragments(out) { #expect(xmlError(svg) == nil) }
    }

    @Test func clampsTheAxisForExtremeValues() throws {
        let summary: JSON = ["metrics": [
            ["metric": "normal", "role": "primary", "comparisons": [["variant": "t", "relative": 0.05, "relative_ci": [0.01, 0.09], "significant": true]]],
            ["metric": "wild", "role": "secondary", "comparisons": [["variant": "t", "relative": 45.0, "relative_ci": [30.0, 60.0], "significant": true]]],
            ["metric": "wide", "role": "guardrail", "comparisons": [["variant": "t", "relative": 0.0, "relative_ci": [-1e12, 1e12], "significant": false]]],
        ]]
        let out = ReportRenderer.html(summary: summary, series: nil)
        let forest = try #require(svgFragments(out).first { $0.contains("data-chart=\"forest\"") })
        // The axis stops at ±200% and the wild values are drawn clipped with an "off scale" mark.
        #expect(forest.contains(">+200%</text>"))
        #expect(!forest.contains(">+300%</text>"))
        #expect(forest.contains("off scale"))
        #expect(occurrences("class=\"clipped\"", in: forest) >= 3)
        #expect(forest.contains("+4500% (+3000 to +6000)"))
        #expect(forest.contains("1.00e14"))
        #expect(xmlError(forest) == nil)
        // Every x coordinate stays inside the viewBox.
        let xs = forest.matches(of: /\sx[12]?="(-?[0-9.]+)"/).compactMap { Double($0.1) }
        #expect(!xs.isEmpty)
        #expect(xs.allSatisfy { $0 >= 0 && $0 <= 960 })
    }

    @Test func jsonFormatIsTheCanonicalSummary() {
        #expect(ReportRenderer.render(.json, summary: Fixtures.summary, series: nil) == Fixtures.summary.serialized())
        #expect(ReportRenderer.render(.html, summary: Fixtures.summary, series: nil).hasPrefix("<!doctype html>"))
        #expect(ReportFormat(rawValue: "markdown") == .markdown)
    }

    /// Writes sample reports when REPORTS_RENDER_DIR is set (for Scripts/dev/render-check and eyeballing).
    @Test func writeSamplesWhenAsked() throws {
        guard let dir = ProcessInfo.processInfo.environment["REPORTS_RENDER_DIR"] else { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let samples: [(String, String)] = [
            ("fixture.html", html),
            ("fixture.md", ReportRenderer.markdown(summary: Fixtures.summary, series: Fixtures.series)),
            ("many.html", ReportRenderer.html(summary: Fixtures.manyMetrics(30), series: nil)),
            ("hostile.html", ReportRenderer.html(summary: Fixtures.hostile, series: Fixtures.hostileSeries)),
        ]
        for (name, text) in samples { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
    }
}

@Suite("Number formatting")
struct FormatTests {
    @Test func significantDigits() {
        #expect(Fmt.sig(0.12345) == "0.123")
        #expect(Fmt.sig(12.345) == "12.3")
        #expect(Fmt.sig(9.996) == "10.0")
        #expect(Fmt.sig(0.0009996) == "0.00100")
        #expect(Fmt.sig(12345.6) == "12,346")
        #expect(Fmt.sig(1234) == "1234")
        #expect(Fmt.sig(-0.5) == "−0.500")
        #expect(Fmt.sig(0.5, signed: true) == "+0.500")
        #expect(Fmt.sig(0) == "0.00")
        #expect(Fmt.fixed(-0.0001, 2, signed: true) == "0.00")  // never "−0.00"
        #expect(Fmt.sig(1e300).contains("e"))
        #expect(Fmt.sig(.nan) == "n/a")
    }

    @Test func percentsAndPValues() {
        #expect(Fmt.percent(0.498) == "49.8%")
        #expect(Fmt.percent(2.26) == "226%")
        #expect(Fmt.percent(0.15, signed: true) == "+15.0%")
        #expect(Fmt.pValue(0.00001) == "< 0.0001")
        #expect(Fmt.pValue(0.52) == "0.52")
        #expect(Fmt.pValue(0.0001) == "0.0001")
        #expect(Fmt.pValue(0.04567) == "0.0457")
        #expect(Fmt.plain(0.05) == "0.05")
        #expect(Fmt.pValue(1) == "> 0.999")
        #expect(Fmt.confidence(alpha: 0.05) == "95%")
        #expect(Fmt.confidence(alpha: 0.1) == "90%")
        #expect(Fmt.confidence(alpha: 0.025) == "97.5%")
    }

    @Test func deltasShareDecimalsWithTheirInterval() {
        let (e, l, h) = Fmt.deltaTriple(0.018, (0.009, 0.027), scale: 100)
        #expect([e, l, h] == ["+1.80", "+0.90", "+2.70"])
        let (e2, l2, h2) = Fmt.deltaTriple(-0.0002, nil, scale: 100)
        #expect(e2 == "−0.0200" && l2 == nil && h2 == nil)
    }

    @Test func oneDecimalRulePerColumn() {
        // Seen: "−0.036 pp" beside "−0.0112 pp" in one column. A column takes the places its smallest row needs
        // for three significant digits (at most four), and every row shows them.
        var column = ColumnDecimals()
        for m in [0.036, 0.0112, 0.5] { column.add(m) }
        #expect(column.value == 4)
        #expect(Fmt.deltaTriple(-0.00036, nil, scale: 100, decimals: column.value).0 == "−0.0360")
        #expect(Fmt.deltaTriple(-0.000112, nil, scale: 100, decimals: column.value).0 == "−0.0112")
        #expect(ColumnDecimals(magnitudes: [12.3, 1.5]).value == 2)
        #expect(ColumnDecimals(magnitudes: [0.000001]).value == ColumnDecimals.cap)
        #expect(ColumnDecimals(magnitudes: [0, .nan]).value == 2)
        // In the report: every number cell of a column has the same number of decimals.
        let md = ReportRenderer.markdown(summary: Fixtures.summary, series: Fixtures.series)
        func places(_ cell: Substring) -> [Int] {
            cell.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == ")" }).compactMap { word in
                guard let dot = word.firstIndex(of: ".") else { return nil }
                return word[word.index(after: dot)...].prefix { $0.isNumber }.count
            }
        }
        for table in ["Primary", "Secondary", "Guardrail"] {
            guard let start = md.range(of: "### \(table)") else { Issue.record("no \(table) table"); continue }
            let body = md[start.upperBound...].split(separator: "\n").drop { !$0.hasPrefix("|---") }.dropFirst().prefix { $0.hasPrefix("|") }
            #expect(!body.isEmpty)
            for column in [4, 5] {  // absolute and relative Δ
                let all = Set(body.flatMap { places($0.split(separator: "|", omittingEmptySubsequences: false)[column + 1]) })
                #expect(all.count == 1, "\(table) column \(column): \(all)")
            }
        }
    }

    @Test func escaping() {
        #expect(Fmt.html("<a href=\"x\">&'</a>") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;")
        #expect(Fmt.html("a\u{1}b") == "ab")  // control characters are not allowed in XML
        #expect(Fmt.markdown("a_b*c|d<e>&") == "a\\_b\\*c\\|d\\<e\\>\\&")
    }

    @Test func axisDomainIsCappedAndNice() {
        let d = Axis.relativeDomain(estimates: [0.15, -0.02], bounds: [0.07, 0.23, -0.06, 0.02])
        #expect(d.lo <= -0.06 && d.lo >= -0.1 && d.hi >= 0.23 && d.hi <= 0.3)
        let wild = Axis.relativeDomain(estimates: [0.05, 45], bounds: [30, 60])
        #expect(wild.hi <= 2.0 + 1e-9)
        #expect(Dates.dayNumber("1970-01-01") == 0)
        #expect(Dates.dayNumber("2026-12-20")! - Dates.dayNumber("2026-12-01")! == 19)
        #expect(Dates.short("2026-12-01") == "Dec 1")
    }
}

/// What the report must never say: a lift under a failed sample-ratio check, a guardrail label the guardrail test
/// contradicts, an adjusted estimate without saying so, a winner without its name.
@Suite("Honest reports")
struct HonestReportTests {
    func summary(_ edit: (inout [String: JSON]) -> Void) throws -> JSON {
        guard case .object(var o) = Fixtures.summary else { throw CancellationError() }
        edit(&o)
        return .object(o)
    }

    func editComparisons(_ o: inout [String: JSON], _ change: (inout [String: JSON], String) -> Void) {
        guard case .array(var metrics) = o["metrics"] ?? .null else { return }
        for i in metrics.indices {
            guard case .object(var m) = metrics[i], case .array(var cs) = m["comparisons"] ?? .null else { continue }
            for j in cs.indices { if case .object(var c) = cs[j] { change(&c, m["role"]?.stringValue ?? ""); cs[j] = .object(c) } }
            m["comparisons"] = .array(cs)
            metrics[i] = .object(m)
        }
        o["metrics"] = .array(metrics)
    }

    @Test func aFailedSampleRatioCheckShowsNoWinOrHarm() throws {
        let s = try summary { o in
            o["decision"] = ["recommendation": "invalid", "reasons": ["sample-ratio mismatch"]]
            editComparisons(&o) { c, _ in c["readable"] = false; c["not_readable_because"] = "sample ratio mismatch" }
        }
        // No result cell marks a win or a harm (the chart's legend, which explains the marks, may stay).
        let rows = ReportRenderer.markdown(summary: s, series: Fixtures.series).split(separator: "\n").filter { $0.hasPrefix("| `") && $0.filter { $0 == "|" }.count == 10 }
        let html = ReportRenderer.html(summary: s, series: Fixtures.series)
        let cells = html.components(separatedBy: "<td class=\"result").dropFirst().compactMap { $0.components(separatedBy: "</td>").first }
        #expect(rows.count == 6 && cells.count == 6)
        for text in rows.map({ String($0) }) + cells {
            #expect(!text.contains("significant improvement") && !text.contains("harm beyond the margin") && !text.contains("significant harm"), "\(text)")
            #expect(text.contains("not readable: sample ratio mismatch"), "\(text)")
        }
        let forest = try #require(svgFragments(ReportRenderer.html(summary: s, series: Fixtures.series)).first { $0.contains("data-chart=\"forest\"") })
        #expect(!forest.contains("data-verdict=\"win\"") && !forest.contains("data-verdict=\"guardrailHarm\""))
    }

    @Test func aGuardrailIsLabelledByItsOwnTest() throws {
        // Two-sided significant, but the one-sided test against the margin finds no harm beyond it.
        let s = try summary { o in
            editComparisons(&o) { c, role in
                if role == "guardrail" { c["harm_detected"] = false; c["significant"] = true; c["guardrail"] = ["verdict": "inconclusive", "margin": 0.001] }
            }
        }
        let md = ReportRenderer.markdown(summary: s, series: nil)
        let crash = md.split(separator: "\n").filter { $0.contains("`crash_rate`") }
        #expect(crash.count == 2 && crash.allSatisfy { $0.contains("inconclusive against the margin") && !$0.contains("significant harm") })
    }

    @Test func aGuardrailThatMovesALotDoesNotSqueezeThePrimaryMetric() throws {
        let s = try summary { o in
            editComparisons(&o) { c, role in
                if role == "guardrail" { c["relative"] = 1.26; c["relative_ci"] = [0.9, 1.6] }
            }
        }
        let forest = try #require(svgFragments(ReportRenderer.html(summary: s, series: nil)).first { $0.contains("data-chart=\"forest\"") })
        // The guardrail's panel reaches past +100%; the primary metric keeps a scale of tens of percent.
        #expect(forest.contains(">+150%</text>") || forest.contains(">+160%</text>") || forest.contains(">+200%</text>"))
        let primaryPanel = try #require(forest.components(separatedBy: ">Secondary metrics<").first)
        #expect(primaryPanel.contains(">+20%</text>") && !primaryPanel.contains(">+100%</text>"))
    }

    @Test func cupedAndTheWinningArmAreNamed() throws {
        let s = try summary { o in
            o["decision"] = ["recommendation": "ship", "variant": "green", "reasons": ["ship green: checkout_conversion green: +1.8 points"]]
            editComparisons(&o) { c, role in
                if role == "secondary" {
                    c["adjustment"] = ["method": "cuped", "covariate": "revenue_per_user.pre", "theta": 0.8, "variance_reduction": 0.42]
                    c["unadjusted_estimate"] = 0.874
                    c["unadjusted_ci"] = [0.2, 1.5]
                }
            }
        }
        let md = ReportRenderer.markdown(summary: s, series: nil)
        #expect(md.contains("**Decision: SHIP** `green` — green won on the primary metric"))
        #expect(md.contains("CUPED-adjusted, unadjusted Δ +0.87 (+0.20 to +1.50), variance −42.0%"))
        let html = ReportRenderer.html(summary: s, series: nil)
        #expect(html.contains("Arm: <code>green</code>") && html.contains("CUPED-adjusted; unadjusted Δ"))
    }
}

@Suite("Interactions in reports")
struct InteractionReportTests {
    func summary(flagged: [JSON]) -> JSON {
        Fixtures.summary.merging(patch: ["interactions": ["pairs": 2, "tests": 12, "flagged": .array(flagged)]])
    }

    @Test func flaggedInteractionsAreListedInBothReports() {
        let hit: JSON = ["with": "search-ranking", "metric": "checkout_conversion", "variant": "green", "arm": "learned",
                         "verdict": "checkout-green-button's effect on checkout_conversion <differs>"]
        let md = ReportRenderer.markdown(summary: summary(flagged: [hit]), series: nil)
        #expect(md.contains("### Interactions with overlapping experiments"))
        #expect(md.contains("⚠️ 1 interaction flagged in 12 tests against 2 overlapping experiments"))
        #expect(md.contains("`search-ranking`, `checkout_conversion`:"))
        let html = ReportRenderer.html(summary: summary(flagged: [hit]), series: nil)
        #expect(html.contains("<section id=\"interactions\">") && html.contains("&lt;differs&gt;"))
    }

    @Test func noneFlaggedSaysSoAndNoneExaminedShowsNothing() {
        #expect(ReportRenderer.markdown(summary: summary(flagged: []), series: nil).contains("✅ No interaction found in 12 tests against 2 overlapping experiments"))
        #expect(!ReportRenderer.markdown(summary: Fixtures.summary, series: nil).contains("Interactions with overlapping"))
        #expect(!ReportRenderer.html(summary: Fixtures.summary, series: nil).contains("id=\"interactions\""))
    }
}
