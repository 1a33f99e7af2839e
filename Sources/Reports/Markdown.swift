public import JSONCore

/// Renders experiment summaries for people: Markdown for pull requests, one self-contained HTML page.
public enum ReportRenderer {
    /// summary: the `results.summary` result; series: the `results.timeseries` result for the primary metric (may be nil);
    /// segments: `results.segments` results, one per dimension; everyMetric: `results.timeseries` of every metric, for the
    /// HTML page's small multiples.
    public static func markdown(summary: JSON, series: JSON?, segments: [JSON] = []) -> String {
        let s = Summary(summary)
        return MarkdownReport(s, series.map(Series.init), segments.compactMap { Segments($0, primary: s.primary) }).render()
    }

    /// One self-contained HTML5 page: inline CSS and SVG only, no script, no external resources.
    public static func html(summary: JSON, series: JSON?, segments: [JSON] = [], everyMetric: [JSON] = []) -> String {
        let s = Summary(summary)
        return HTMLReport(s, series.map(Series.init), segments.compactMap { Segments($0, primary: s.primary) },
                          everyMetric: everyMetric.map(Series.init)).render()
    }

    /// The report in `format`; `.json` is the canonical serialisation of the summary itself.
    public static func render(_ format: ReportFormat, summary: JSON, series: JSON?, segments: [JSON] = [], everyMetric: [JSON] = []) -> String {
        switch format {
        case .json: summary.serialized()
        case .markdown: markdown(summary: summary, series: series, segments: segments)
        case .html: html(summary: summary, series: series, segments: segments, everyMetric: everyMetric)
        }
    }
}

/// How a recommendation is shown: words and an icon, never colour alone.
struct DecisionStyle {
    var key: String  // css class suffix
    var label: String
    var icon: String
    var emoji: String
    var blurb: String

    init(_ recommendation: String?) {
        switch recommendation {
        case "ship": self.init("ship", "Ship", "✔", "✅", "The treatment won on the primary metric without harming a guardrail.")
        case "rollback": self.init("rollback", "Roll back", "✖", "⛔", "The treatment caused harm; turn it off.")
        case "keep_running": self.init("keep_running", "Keep running", "↻", "⏳", "Not enough evidence yet; keep collecting data.")
        case "inconclusive": self.init("inconclusive", "Inconclusive", "?", "❔", "The experiment ended without a clear effect.")
        case "invalid": self.init("invalid", "Invalid", "⚠", "⚠️", "The results cannot be trusted.")
        case nil: self.init("none", "No decision", "–", "➖", "The summary carries no recommendation.")
        case let other?:
            self.init("other", other.replacingUnderscores(), "•", "🔹", "")
        }
    }

    private init(_ key: String, _ label: String, _ icon: String, _ emoji: String, _ blurb: String) {
        self.key = key
        self.label = label
        self.icon = icon
        self.emoji = emoji
        self.blurb = blurb
    }

    /// The blurb naming the arm the decision is about, when the summary names it.
    func blurb(variant: String?) -> String {
        guard key == "ship", let variant else { return blurb }
        return "\(variant) won on the primary metric without harming a guardrail."
    }
}

extension String {
    /// "keep_running" → "Keep running".
    func replacingUnderscores() -> String {
        String(map { $0 == "_" ? " " : $0 }).capitalizedFirst()
    }

    func capitalizedFirst() -> String { prefix(1).uppercased() + dropFirst() }
}

/// Cells shared by the Markdown and HTML metric tables.
struct MetricCells {
    var control: String
    var treatment: String
    var absoluteEstimate: String
    var absoluteCI: String?
    var relativeEstimate: String
    var relativeCI: String?
    var absolute: String { absoluteEstimate + (absoluteCI.map { " " + $0 } ?? "") }
    var relative: String { relativeEstimate + (relativeCI.map { " " + $0 } ?? "") }
    var p: String
    var adjustedP: String
    var verdict: Verdict
    var chanceToWin: String?
    /// CUPED: the unadjusted difference with its interval, and the variance removed.
    var unadjusted: String?

    init(_ m: Summary.Metric, _ c: Summary.Comparison, _ d: TableDecimals) {
        control = TableDecimals.mean(m, m.control?.mean, d.mean)
        treatment = TableDecimals.mean(m, m.stat(c.variant)?.mean, d.mean)
        let unit = m.isBinomial ? " pp" : ""
        let (est, lo, hi) = Fmt.deltaTriple(c.estimate, c.ci, scale: m.isBinomial ? 100 : 1, decimals: d.absolute)
        absoluteEstimate = c.estimate == nil ? "n/a" : est + unit
        absoluteCI = c.estimate == nil ? nil : (lo.map { "(\($0) to \(hi!))" } ?? "(no CI)")
        let (rest, rlo, rhi) = Fmt.deltaTriple(c.relative, c.relativeCI, scale: 100, decimals: d.relative)
        relativeEstimate = c.relative == nil ? "n/a" : rest + "%"
        relativeCI = c.relative == nil ? nil : (rlo.map { "(\($0)% to \(rhi!)%)" } ?? "(no CI)")
        p = c.pValue.map(Fmt.pValue) ?? "n/a"
        adjustedP = c.adjustedPValue.map(Fmt.pValue) ?? "n/a"
        verdict = Verdict(c, m)
        chanceToWin = c.chanceToWin.map { Fmt.percent($0) }
        if c.adjustment != nil, let raw = c.unadjustedEstimate {
            let (u, ulo, uhi) = Fmt.deltaTriple(raw, c.unadjustedCI, scale: m.isBinomial ? 100 : 1)
            unadjusted = u + unit + (ulo.map { " (\($0) to \(uhi!))" } ?? "") + (c.varianceReduction.map { ", variance −\(Fmt.percent($0))" } ?? "")
        }
    }
}

/// The decimal places of a metric table's number columns: one rule per column (``ColumnDecimals``).
struct TableDecimals {
    var mean: Int
    var absolute: Int
    var relative: Int

    init(_ metrics: [Summary.Metric]) {
        var mean = ColumnDecimals(), absolute = ColumnDecimals(), relative = ColumnDecimals()
        for m in metrics {
            let scale = m.isBinomial ? 100.0 : 1
            for v in [m.control?.mean] + m.comparisons.map({ m.stat($0.variant)?.mean }) { if let v { mean.add(abs(v * scale)) } }
            for c in m.comparisons {
                absolute.add(Fmt.tripleMagnitude(c.estimate, c.ci, scale: scale))
                relative.add(Fmt.tripleMagnitude(c.relative, c.relativeCI, scale: 100))
            }
        }
        self.mean = mean.value
        self.absolute = absolute.value
        self.relative = relative.value
    }

    /// A mean in its column's places: a rate as a percentage, else the number.
    static func mean(_ m: Summary.Metric, _ v: Double?, _ places: Int) -> String {
        guard let v else { return "n/a" }
        return m.isBinomial ? Fmt.fixed(v * 100, places) + "%" : Fmt.fixed(v, places)
    }
}

/// The sample-ratio verdict as one sentence.
func srmSentence(_ srm: Summary.SRM) -> (ok: Bool?, text: String) {
    var stats: [String] = []
    if let chi2 = srm.chi2 { stats.append("χ² = \(Fmt.plain(chi2))" + (srm.df.map { " (df \(Fmt.plain($0)))" } ?? "")) }
    if let p = srm.pValue { stats.append(Fmt.pEquals(p)) }
    if let t = srm.threshold { stats.append("threshold \(Fmt.pValue(t))") }
    let detail = stats.isEmpty ? "" : " (" + stats.joined(separator: ", ") + ")"
    switch srm.mismatch {
    case true?: return (false, "Sample-ratio mismatch detected" + detail + ": the traffic split differs from the design, so the results are not trustworthy.")
    case false?: return (true, "No sample-ratio mismatch" + detail + ".")
    case nil: return (nil, "Sample-ratio check unavailable" + detail + ".")
    }
}

struct MarkdownReport {
    let s: Summary
    let series: Series?
    let segments: [Segments]

    init(_ s: Summary, _ series: Series?, _ segments: [Segments] = []) {
        self.s = s
        self.series = series
        self.segments = segments
    }

    func render() -> String {
        var out: [String] = []
        let d = DecisionStyle(s.decision?.recommendation)
        var heading = "## \(d.emoji) \(Fmt.markdown(s.title))"
        if let key = s.experiment, key != s.title { heading += " (\(Fmt.code(key)))" }
        out.append(heading)
        out.append("")
        out.append("**Decision: \(Fmt.markdown(d.label.uppercased()))**" + (s.decision?.variant.map { " \(Fmt.code($0))" } ?? "")
                   + (d.blurb(variant: s.decision?.variant).isEmpty ? "" : " — \(d.blurb(variant: s.decision?.variant))"))
        let reasons = s.decision?.reasons ?? []
        if !reasons.isEmpty {
            out.append("")
            for r in reasons { out.append("- \(Fmt.markdown(r))") }
        }
        var meta: [String] = []
        if let a = s.asOf { meta.append("as of \(Fmt.markdown(a))") }
        if let st = s.state { meta.append("state \(Fmt.markdown(st))") }
        if let an = s.analysis { meta.append("\(Fmt.markdown(an)) analysis") }
        if let al = s.alpha { meta.append("α = \(Fmt.plain(al))") }
        meta += s.window
        if !meta.isEmpty {
            out.append("")
            out.append("_" + meta.joined(separator: " · ") + "_")
        }
        for seg in segments where seg.flagged {
            out.append("")
            out.append("⚠️ **The effect differs by \(Fmt.markdown(seg.dimension))**: see Segments below.")
        }

        // Sample ratio.
        out.append("")
        out.append("### Sample ratio")
        out.append("")
        if let srm = s.srm {
            let (ok, text) = srmSentence(srm)
            out.append((ok == true ? "✅ " : ok == false ? "⚠️ **" : "❔ ") + text + (ok == false ? "**" : ""))
            if !srm.variants.isEmpty {
                out.append("")
                out.append("| Variant | Units | Expected share | Observed share |")
                out.append("|---|---:|---:|---:|")
                for v in srm.variants {
                    out.append("| \(Fmt.code(v.variant)) | \(v.n.map(Fmt.count) ?? "n/a") | \(v.expected.map { Fmt.percent($0) } ?? "n/a") | \(v.observed.map { Fmt.percent($0) } ?? "n/a") |")
                }
            }
        } else {
            out.append("No sample-ratio check in this summary.")
        }

        // Metrics, one table per role.
        let ci = s.ciLabel
        if s.metrics.isEmpty {
            out.append("")
            out.append("### Metrics")
            out.append("")
            out.append("No metrics in this summary.")
        }
        for (role, metrics) in s.metricsByRole {
            out.append("")
            out.append("### \(role.title)")
            out.append("")
            out.append("| Metric | Variant | Control | Treatment | Absolute Δ (\(ci)) | Relative Δ (\(ci)) | p | Adjusted p | Result |")
            out.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
            let decimals = TableDecimals(metrics)
            for m in metrics {
                let metricCell = Fmt.code(m.metric) + (m.decreaseIsGood ? " ↓" : "") + (m.qualifiers.isEmpty ? "" : " (\(m.qualifiers.joined(separator: "; ")))")
                if m.comparisons.isEmpty {
                    let ctl = TableDecimals.mean(m, m.control?.mean, decimals.mean)
                    out.append("| \(metricCell) | n/a | \(ctl) | n/a | n/a | n/a | n/a | n/a | no comparison |")
                }
                for c in m.comparisons {
                    let cells = MetricCells(m, c, decimals)
                    var result = "\(markdownIcon(cells.verdict)) \(cells.verdict.label)"
                    if let margin = c.margin, m.role == .guardrail, cells.verdict != .unreadable { result += " (margin \(Fmt.plain(margin * (m.isBinomial ? 100 : 1)))\(m.isBinomial ? " pp" : ""))" }
                    if let raw = cells.unadjusted { result += "; CUPED-adjusted, unadjusted Δ \(raw)" }
                    if let w = cells.chanceToWin { result += "; P(win) \(w)" }
                    out.append("| \(metricCell) | \(Fmt.code(c.variant)) | \(cells.control) | \(cells.treatment) | \(cells.absolute) | \(cells.relative) | \(cells.p) | \(cells.adjustedP) | \(result) |")
                }
            }
            if metrics.contains(where: \.isBinomial) || metrics.contains(where: \.decreaseIsGood) {
                var notes: [String] = []
                if metrics.contains(where: \.isBinomial) { notes.append("binomial means are rates; their absolute Δ is in percentage points (pp)") }
                if metrics.contains(where: \.decreaseIsGood) { notes.append("↓ lower is better") }
                out.append("")
                out.append("_" + notes.joined(separator: "; ").capitalizedFirst() + "._")
            }
        }

        // Progress.
        if let p = s.progress, !p.isEmpty {
            out.append("")
            out.append("### Progress")
            out.append("")
            out.append(contentsOf: progressLines(p).map { "- \($0)" })
        }
        for seg in segments {
            out.append("")
            out.append("### Segments by \(Fmt.markdown(seg.dimension))" + (seg.metric.map { " (\(Fmt.code($0)))" } ?? ""))
            out.append("")
            for v in seg.verdicts { out.append("- \(Fmt.markdown(v))") }
            out.append("")
            out.append("| \(Fmt.markdown(seg.dimension)) | Units | " + seg.arms.map { "\(Fmt.code($0)) Δ (\(s.ciLabel)) | BH-adjusted p" }.joined(separator: " | ") + " |")
            out.append("|---|---:|" + seg.arms.map { _ in "---:|---:|" }.joined())
            for r in seg.rows {
                let cells = r.cells.enumerated().map { i, c -> String in
                    let (e, lo, hi) = Fmt.deltaTriple(c.estimate, c.ci, scale: seg.isBinomial ? 100 : 1, decimals: seg.decimals[i])
                    let unit = seg.isBinomial ? " pp" : ""
                    return (c.estimate == nil ? "n/a" : e + unit + (lo.map { " (\($0) to \(hi!))" } ?? "")) + " | " + (c.adjustedP.map(Fmt.pValue) ?? "n/a")
                }
                out.append("| \(Fmt.markdown(r.value)) | \(r.units.map(Fmt.count) ?? "n/a") | " + cells.joined(separator: " | ") + " |")
            }
        }
        if let i = s.interactions, let lead = s.interactionsLead {
            out.append("")
            out.append("### Interactions with overlapping experiments")
            out.append("")
            out.append((i.flagged.isEmpty ? "✅ " : "⚠️ ") + lead)
            if !i.flagged.isEmpty { out.append("") }
            for f in i.flagged { out.append("- \(Fmt.code(f.with)), \(Fmt.code(f.metric)): \(Fmt.markdown(f.verdict))") }
        }
        if let series, !series.points.isEmpty {
            out.append("")
            out.append("_Cumulative lift series: \(series.points.count) points over \(Set(series.points.map(\.day)).count) days; see the HTML report for the chart._")
        }
        return out.joined(separator: "\n") + "\n"
    }

    private func markdownIcon(_ v: Verdict) -> String {
        switch v {
        case .win, .guardrailSafe: "✅"
        case .harm, .guardrailHarm: "❌"
        case .neutral, .guardrailInconclusive: "➖"
        case .unknown: "❔"
        case .unreadable: "⚠️"
        }
    }
}

/// Progress facts as short sentences (shared by both renderers).
func progressLines(_ p: Summary.Progress) -> [String] {
    var lines: [String] = []
    if let u = p.units {
        var line = "Units: \(Fmt.count(u))"
        if let planned = p.plannedUnits { line += " of \(Fmt.count(planned)) planned" }
        if let share = p.shareOfPlan ?? p.plannedUnits.flatMap({ $0 > 0 ? u / $0 : nil }) { line += " (\(Fmt.percent(share)) of plan)" }
        lines.append(line)
    } else if let share = p.shareOfPlan {
        lines.append("Share of plan: \(Fmt.percent(share))")
    }
    if let e = p.daysElapsed {
        lines.append("Days: \(Fmt.count(e))" + (p.daysScheduled.map { " of \(Fmt.count($0)) scheduled" } ?? ""))
    } else if let sch = p.daysScheduled {
        lines.append("Days scheduled: \(Fmt.count(sch))")
    }
    if let pw = p.achievedPower { lines.append("Achieved power: \(Fmt.percent(pw))") }
    return lines
}
