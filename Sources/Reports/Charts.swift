import JSONCore
/// Inline SVG charts. Every chart is a well-formed XML fragment (no HTML entities, no external
/// references, not even an xmlns URL: inline SVG in HTML5 does not need one), with `role="img"`,
/// an `aria-label`, a `<title>` and a `<desc>`. Colours come from the Okabe–Ito palette and every
/// colour-coded mark also differs in shape or carries a text label.
enum Palette {
    static let green = "#009E73"  // bluish green: improvement
    static let vermillion = "#D55E00"  // harm
    static let blue = "#0072B2"
    static let orange = "#E69F00"
    static let purple = "#CC79A7"
    static let sky = "#56B4E9"
    static let neutral = "#5F5F5F"  // 6.5:1 on white
    static let ink = "#1A1A1A"
    static let muted = "#4D4D4D"
    static let grid = "#D9D9D9"
    /// Series colours, in order; yellow is left out (too little contrast on white).
    static let series = [blue, orange, purple, sky, vermillion, green, ink]
    /// Dash patterns paired with series colours so lines differ without colour too.
    static let dashes = ["", "7 4", "2 3", "10 3 2 3", "4 4", "1 5", "12 6"]
}

/// A linear map from a data domain onto pixels.
struct LinearScale {
    var lo: Double, hi: Double, a: Double, b: Double
    func callAsFunction(_ x: Double) -> Double {
        hi == lo ? (a + b) / 2 : a + (x - lo) / (hi - lo) * (b - a)
    }
    /// The pixel, held inside the range.
    func clamped(_ x: Double) -> Double { min(max(self(x), min(a, b)), max(a, b)) }
}

enum Axis {
    /// Pixel coordinates with at most one decimal.
    static func px(_ x: Double) -> String {
        guard x.isFinite else { return "0" }
        let r = (x * 10).rounded() / 10
        return r == r.rounded() ? r.wholeText : String(r)
    }

    /// A 1-2-2.5-5 × 10^k step giving about `count` intervals over `span`.
    static func niceStep(_ span: Double, count: Double = 6) -> Double {
        guard span > 0, span.isFinite else { return 0.01 }
        let raw = span / count
        var mag = 1.0
        while mag * 10 <= raw { mag *= 10 }
        while mag > raw { mag /= 10 }
        for m in [1.0, 2.0, 2.5, 5.0, 10.0] where m * mag >= raw { return m * mag }
        return 10 * mag
    }

    /// The axis domain for relative lifts: covers every estimate and interval and zero, but is capped
    /// so that one extreme value or one enormous interval does not flatten everything else. The cap is
    /// the largest of 3 × the largest |estimate|, 2 × the (lower) median |interval bound| and 2 %,
    /// and never more than `hardCap` (±200 % by default). Values outside are drawn clipped at the edge.
    static func relativeDomain(estimates: [Double], bounds: [Double], hardCap: Double = 2.0) -> (lo: Double, hi: Double, step: Double) {
        let est = estimates.filter(\.isFinite)
        let bnd = bounds.filter(\.isFinite)
        let all = est + bnd
        var lo = min(all.min() ?? -0.05, 0)
        var hi = max(all.max() ?? 0.05, 0)
        let maxEst = est.map(abs).max() ?? 0
        let absBounds = bnd.map(abs).sorted()
        let medianBound = absBounds.isEmpty ? 0 : absBounds[(absBounds.count - 1) / 2]
        let cap = min(hardCap, max(3 * maxEst, 2 * medianBound, 0.02))
        lo = max(lo, -cap)
        hi = min(hi, cap)
        if hi - lo < 1e-9 { lo -= 0.01; hi += 0.01 }
        let pad = (hi - lo) * 0.05
        if lo < 0 { lo -= pad }
        if hi > 0 { hi += pad }
        let step = niceStep(hi - lo, count: 8)
        let limit = (cap / step).rounded(.up) * step
        lo = max((lo / step).rounded(.down) * step, -limit)
        hi = min((hi / step).rounded(.up) * step, limit)
        return (lo, hi, step)
    }

    static func ticks(_ lo: Double, _ hi: Double, _ step: Double) -> [Double] {
        guard step > 0 else { return [] }
        var out: [Double] = []
        var i = (lo / step).rounded(.up)
        while i * step <= hi + step * 1e-6, out.count < 50 {
            let v = i * step
            out.append(abs(v) < step * 1e-6 ? 0 : v)
            i += 1
        }
        return out
    }

    /// A relative tick label: 0.1 → "+10%", with decimals only when the step needs them.
    static func percentTick(_ v: Double, step: Double) -> String {
        let stepPct = step * 100
        let dec = stepPct >= 1 ? (stepPct.rounded() == stepPct ? 0 : 1) : Fmt.decimals(forMagnitude: stepPct, digits: 1)
        return Fmt.fixed(v * 100, dec, signed: true) + "%"
    }
}

/// Builds an SVG fragment as text.
struct SVG {
    private(set) var body = ""
    let width: Int
    var height: Int
    let label: String
    let description: String
    let cssClass: String
    let dataKind: String

    init(kind: String, width: Int, height: Int, label: String, description: String) {
        self.width = width
        self.height = height
        self.label = label
        self.description = description
        self.cssClass = "chart chart-\(kind)"
        self.dataKind = kind
    }

    mutating func add(_ s: String) { body += s + "\n" }

    mutating func text(_ x: Double, _ y: Double, _ content: String, anchor: String = "start", cls: String? = nil, extra: String = "") {
        let c = cls.map { " class=\"\($0)\"" } ?? ""
        add("<text x=\"\(Axis.px(x))\" y=\"\(Axis.px(y))\" text-anchor=\"\(anchor)\"\(c)\(extra)>\(Fmt.html(content))</text>")
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, extra: String = "") {
        add("<line x1=\"\(Axis.px(x1))\" y1=\"\(Axis.px(y1))\" x2=\"\(Axis.px(x2))\" y2=\"\(Axis.px(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Axis.px(width))\"\(extra)/>")
    }

    func render() -> String {
        let l = Fmt.html(label)
        return "<svg class=\"\(cssClass)\" data-chart=\"\(dataKind)\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" "
            + "role=\"img\" aria-label=\"\(l)\" preserveAspectRatio=\"xMinYMin meet\">\n"
            + "<title>\(l)</title>\n<desc>\(Fmt.html(description))</desc>\n" + body + "</svg>"
    }
}

// MARK: - Forest plot

enum ForestPlot {
    static let width = 960
    static let labelRight = 250.0
    static let plotLeft = 262.0
    static let plotRight = 700.0
    static let textLeft = 712.0
    static let rowHeight = 26.0

    static func render(_ s: Summary) -> String {
        let groups = s.metricsByRole.map { role, ms in (role, ms.filter { !$0.comparisons.isEmpty }) }.filter { !$0.1.isEmpty }
        let comparisons = groups.flatMap { $0.1.flatMap { m in m.comparisons.map { (m, $0) } } }
        let ci = s.ciLabel
        if comparisons.isEmpty {
            var svg = SVG(kind: "forest", width: width, height: 60, label: "Relative lift by metric: no comparisons", description: "The summary has no metric comparisons to plot.")
            svg.text(Double(width) / 2, 34, "No metric comparisons to plot.", anchor: "middle", cls: "muted")
            return svg.render()
        }
        // One panel per role, each on its own scale: a guardrail that moves +126% does not squeeze the primary metric.
        struct Panel { var title: String; var rows: [(y: Double, m: Summary.Metric, c: Summary.Comparison)]; var top: Double; var bottom: Double
                       var lo: Double; var hi: Double; var step: Double }
        var panels: [Panel] = []
        var y = 54.0  // legend row + column headings
        for (role, ms) in groups {
            let cs = ms.flatMap { m in m.comparisons.map { (m, $0) } }
            let (lo, hi, step) = Axis.relativeDomain(estimates: cs.compactMap { $0.1.relative },
                                                     bounds: cs.flatMap { c in c.1.relativeCI.map { [$0.0, $0.1] } ?? [] })
            let top = y + 24
            var rows: [(y: Double, m: Summary.Metric, c: Summary.Comparison)] = []
            var rowY = top
            for (m, c) in cs { rows.append((rowY, m, c)); rowY += rowHeight }
            panels.append(Panel(title: role.title, rows: rows, top: top, bottom: rowY, lo: lo, hi: hi, step: step))
            y = rowY + 34  // the panel's own tick labels
        }
        let height = Int(y + 30)
        var svg = SVG(kind: "forest", width: width, height: height,
                      label: "Forest plot: relative lift of each treatment over control, per metric, with \(ci); each role on its own scale",
                      description: "\(comparisons.count) comparisons. Each row is one metric and treatment variant; the dot is the relative lift and the bar its \(ci). The vertical line marks zero (no effect). Primary, secondary and guardrail metrics each have their own scale.")

        // Legend: shape and words, not colour alone.
        legend(&svg, y: 18)
        svg.text(labelRight, 44, "Metric · variant", anchor: "end", cls: "head")
        svg.text(textLeft, 44, "Relative lift (\(ci))", cls: "head")

        var rows: [(y: Double, m: Summary.Metric, c: Summary.Comparison, x: LinearScale, lo: Double, hi: Double)] = []
        var stripe = 0
        for panel in panels {
            svg.text(8, panel.top - 8, panel.title, cls: "group")
            let x = LinearScale(lo: panel.lo, hi: panel.hi, a: plotLeft, b: plotRight)
            for r in panel.rows {
                if stripe % 2 == 0 { svg.add("<rect x=\"0\" y=\"\(Axis.px(r.y))\" width=\"\(width)\" height=\"\(Axis.px(rowHeight))\" fill=\"#F3F3F3\"/>") }
                stripe += 1
                rows.append((r.y, r.m, r.c, x, panel.lo, panel.hi))
            }
            let ticks = Axis.ticks(panel.lo, panel.hi, panel.step)
            for t in ticks where t != 0 { svg.line(x(t), panel.top, x(t), panel.bottom, stroke: Palette.grid, extra: " class=\"grid\"") }
            svg.line(plotLeft, panel.bottom, plotRight, panel.bottom, stroke: Palette.muted, extra: " class=\"axis\"")
            for t in ticks {
                svg.line(x(t), panel.bottom, x(t), panel.bottom + 5, stroke: Palette.muted)
                svg.text(x(t), panel.bottom + 18, Axis.percentTick(t, step: panel.step), anchor: "middle", cls: "tick")
            }
            if panel.lo <= 0 && panel.hi >= 0 {
                svg.line(x(0), panel.top - 4, x(0), panel.bottom, stroke: Palette.ink, width: 1.5, extra: " class=\"zero\" data-zero=\"true\"")
            }
        }
        svg.text((plotLeft + plotRight) / 2, y + 10, "Relative lift vs control (\(ci)); 0% = no effect; each role on its own scale", anchor: "middle", cls: "axis-title")

        for r in rows {
            let x = r.x, lo = r.lo, hi = r.hi
            let cy = r.y + rowHeight / 2
            let verdict = Verdict(r.c, r.m)
            let colour = colour(verdict)
            let id = Fmt.html(r.m.metric + "/" + r.c.variant)
            // Short enough to fit left of the axis whatever the names (the full names are in the tooltip and tables).
            let metricLabel = Fmt.truncate(r.m.metric, 22) + (r.m.decreaseIsGood ? " ↓" : "")
            let rel = Fmt.deltaTriple(r.c.relative, r.c.relativeCI, scale: 100)
            var summaryText = r.c.relative == nil ? "n/a" : rel.0 + "%"
            if let l = rel.1, let h = rel.2 { summaryText += " (\(l) to \(h))" } else if r.c.relative != nil { summaryText += " (no CI)" }
            var tooltip = "\(r.m.metric) · \(r.c.variant): \(summaryText); \(verdict.label)"
            if let p = r.c.pValue { tooltip += "; " + Fmt.pEquals(p) }
            svg.add("<g class=\"row\" data-comparison=\"\(id)\" data-verdict=\"\(verdict)\">")
            svg.add("<title>\(Fmt.html(tooltip))</title>")
            svg.add("<text x=\"\(Axis.px(labelRight))\" y=\"\(Axis.px(cy + 4))\" text-anchor=\"end\" class=\"label\">\(Fmt.html(metricLabel))<tspan class=\"variant\"> · \(Fmt.html(Fmt.truncate(r.c.variant, 12)))</tspan></text>")
            if let (l, h) = r.c.relativeCI {
                let x1 = x.clamped(l), x2 = x.clamped(h)
                svg.line(x1, cy, x2, cy, stroke: colour, width: 2.5, extra: " class=\"ci\" data-interval=\"\(id)\"")
                for (v, px) in [(l, x1), (h, x2)] {
                    if v < lo { svg.add(arrow(px, cy, left: true, colour)) } else if v > hi { svg.add(arrow(px, cy, left: false, colour)) } else {
                        svg.line(px, cy - 5, px, cy + 5, stroke: colour, width: 2)
                    }
                }
            }
            if let e = r.c.relative {
                svg.add(marker(verdict, x.clamped(e), cy, colour))
                if e < lo || e > hi { svg.text(x.clamped(e) + (e < lo ? 10 : -10), cy - 7, "off scale", anchor: e < lo ? "start" : "end", cls: "note") }
            }
            let textCls = verdict.tone == "neutral" ? "value" : "value \(verdict.tone)"
            svg.text(textLeft, cy + 4, summaryText + " " + verdict.icon, cls: textCls)
            svg.add("</g>")
        }
        return svg.render()
    }

    static func colour(_ v: Verdict) -> String {
        switch v {
        case .win, .guardrailSafe: Palette.green
        case .harm, .guardrailHarm: Palette.vermillion
        case .neutral, .unknown, .unreadable, .guardrailInconclusive: Palette.neutral
        }
    }

    /// Filled circle: improvement; filled square: harm; hollow circle: not significant; hollow diamond: unknown.
    static func marker(_ v: Verdict, _ x: Double, _ y: Double, _ colour: String) -> String {
        let cx = Axis.px(x), cy = Axis.px(y)
        switch v {
        case .win, .guardrailSafe: return "<circle class=\"point\" cx=\"\(cx)\" cy=\"\(cy)\" r=\"6\" fill=\"\(colour)\" stroke=\"#FFFFFF\" stroke-width=\"1.5\"/>"
        case .harm, .guardrailHarm: return "<rect class=\"point\" x=\"\(Axis.px(x - 6))\" y=\"\(Axis.px(y - 6))\" width=\"12\" height=\"12\" fill=\"\(colour)\" stroke=\"#FFFFFF\" stroke-width=\"1.5\"/>"
        case .neutral, .guardrailInconclusive: return "<circle class=\"point\" cx=\"\(cx)\" cy=\"\(cy)\" r=\"5.5\" fill=\"#FFFFFF\" stroke=\"\(colour)\" stroke-width=\"2.5\"/>"
        case .unknown, .unreadable:
            return "<path class=\"point\" d=\"M\(Axis.px(x)) \(Axis.px(y - 7))L\(Axis.px(x + 7)) \(cy)L\(cx) \(Axis.px(y + 7))L\(Axis.px(x - 7)) \(cy)Z\" fill=\"#FFFFFF\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
        }
    }

    static func arrow(_ x: Double, _ y: Double, left: Bool, _ colour: String) -> String {
        let tip = left ? x - 2 : x + 2, base = left ? x + 8 : x - 8
        return "<path class=\"clipped\" d=\"M\(Axis.px(tip)) \(Axis.px(y))L\(Axis.px(base)) \(Axis.px(y - 6))L\(Axis.px(base)) \(Axis.px(y + 6))Z\" fill=\"\(colour)\"/>"
    }

    static func legend(_ svg: inout SVG, y: Double) {
        var x = 8.0
        for (v, text) in [(Verdict.win, "significant improvement"), (.harm, "significant harm"), (.neutral, "not significant")] {
            svg.add(marker(v, x + 6, y - 4, colour(v)))
            svg.text(x + 18, y, text, cls: "legend")
            x += 26 + Double(text.count) * 7
        }
        svg.line(x, y - 4, x + 28, y - 4, stroke: Palette.neutral, width: 2.5)
        svg.text(x + 34, y, "interval; ▶ = continues off scale", cls: "legend")
    }
}

// MARK: - Cumulative lift over time

enum LiftOverTime {
    static let width = 960
    static let height = 340
    static let left = 72.0, right = 820.0, top = 40.0, bottom = 286.0

    static func render(_ series: Series, ci: String, metricFallback: String?) -> String {
        let metric = series.metric ?? metricFallback ?? "primary metric"
        let pts = series.points
        let variants = series.variants
        guard !pts.isEmpty else {
            var svg = SVG(kind: "timeseries", width: width, height: 60, label: "Cumulative relative lift of \(metric): no data", description: "The series has no points.")
            svg.text(Double(width) / 2, 34, "No days of data yet.", anchor: "middle", cls: "muted")
            return svg.render()
        }
        // X: calendar days when every day parses, else the order of distinct days.
        let days = Array(Set(pts.map(\.day))).sorted()
        let useCalendar = pts.allSatisfy { $0.dayNumber != nil }
        func dayX(_ p: Series.Point) -> Double { useCalendar ? Double(p.dayNumber!) : Double(days.firstIndex(of: p.day)!) }
        let xs = pts.map(dayX)
        let x = LinearScale(lo: xs.min()!, hi: xs.max()!, a: left, b: right)
        let (lo, hi, step) = Axis.relativeDomain(
            estimates: pts.compactMap(\.relative), bounds: pts.flatMap { p in p.ci.map { [$0.0, $0.1] } ?? [] })
        let y = LinearScale(lo: lo, hi: hi, a: bottom, b: top)

        var svg = SVG(kind: "timeseries", width: width, height: height,
                      label: "Cumulative relative lift of \(metric) over \(days.count) days, with \(ci) band",
                      description: "Line: cumulative relative lift of each treatment over control by day; shaded band: its \(ci); horizontal line: zero. \(variants.joined(separator: ", ")).")
        svg.text(left, 20, "Cumulative relative lift vs control (\(ci))", cls: "axis-title")
        let yt = Axis.ticks(lo, hi, step)
        for t in yt {
            if t != 0 { svg.line(left, y(t), right, y(t), stroke: Palette.grid, extra: " class=\"grid\"") }
            svg.text(left - 8, y(t) + 4, Axis.percentTick(t, step: step), anchor: "end", cls: "tick")
        }
        svg.line(left, bottom, right, bottom, stroke: Palette.muted, extra: " class=\"axis\"")
        svg.line(left, top, left, bottom, stroke: Palette.muted, extra: " class=\"axis\"")
        // Date labels: every k-th day for at most about 8 labels, starting at the first day; the last
        // day too when it is not crowded out.
        let every = max(1, (days.count - 1 + 6) / 7)
        var labelled = stride(from: 0, to: days.count, by: every).map { days[$0] }
        if (days.count - 1) % every != 0 {
            if (days.count - 1) % every < (every + 1) / 2, labelled.count > 1 { labelled.removeLast() }
            labelled.append(days[days.count - 1])
        }
        for d in labelled {
            guard let p = pts.first(where: { $0.day == d }) else { continue }
            let px = x(dayX(p))
            svg.line(px, bottom, px, bottom + 5, stroke: Palette.muted)
            svg.text(px, bottom + 19, Dates.short(d), anchor: "middle", cls: "tick")
        }
        svg.text((left + right) / 2, bottom + 44, "Day (cumulative data up to and including the day)", anchor: "middle", cls: "axis-title")

        // Bands first, then zero line, then lines on top.
        for (i, v) in variants.enumerated() {
            let colour = Palette.series[i % Palette.series.count]
            let vp = pts.filter { $0.variant == v }.sorted { dayX($0) < dayX($1) }
            // Contiguous runs of days that have an interval.
            var runs: [[Series.Point]] = [[]]
            for p in vp { if p.ci != nil { runs[runs.count - 1].append(p) } else if !runs[runs.count - 1].isEmpty { runs.append([]) } }
            for run in runs where !run.isEmpty {
                if run.count == 1, let c = run[0].ci {  // a lone day: an error bar instead of a band
                    let px = x(dayX(run[0]))
                    svg.line(px, y.clamped(c.0), px, y.clamped(c.1), stroke: colour, width: 2, extra: " class=\"ci\" opacity=\"0.6\"")
                    continue
                }
                var d = ""
                for (k, p) in run.enumerated() { d += (k == 0 ? "M" : "L") + Axis.px(x(dayX(p))) + " " + Axis.px(y.clamped(p.ci!.1)) }
                for p in run.reversed() { d += "L" + Axis.px(x(dayX(p))) + " " + Axis.px(y.clamped(p.ci!.0)) }
                svg.add("<path class=\"band\" data-band=\"\(Fmt.html(v))\" d=\"\(d)Z\" fill=\"\(colour)\" fill-opacity=\"0.18\" stroke=\"\(colour)\" stroke-opacity=\"0.45\" stroke-width=\"0.75\"/>")
            }
        }
        if lo <= 0 && hi >= 0 {
            svg.line(left, y(0), right, y(0), stroke: Palette.ink, width: 1.5, extra: " class=\"zero\" data-zero=\"true\"")
        }
        var ends: [(label: String, colour: String, y: Double)] = []
        for (i, v) in variants.enumerated() {
            let colour = Palette.series[i % Palette.series.count]
            let dash = Palette.dashes[i % Palette.dashes.count]
            let vp = pts.filter { $0.variant == v && $0.relative != nil }.sorted { dayX($0) < dayX($1) }
            guard let last = vp.last else { continue }
            if vp.count > 1 {
                let d = vp.enumerated().map { k, p in (k == 0 ? "M" : "L") + Axis.px(x(dayX(p))) + " " + Axis.px(y.clamped(p.relative!)) }.joined()
                svg.add("<path class=\"lift\" data-line=\"\(Fmt.html(v))\" d=\"\(d)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2.5\"" + (dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"") + "/>")
            }
            for p in vp {
                var tip = "\(v), \(p.day): \(Fmt.percent(p.relative!, signed: true))"
                if let c = p.ci { tip += " (\(Fmt.percent(c.0, signed: true)) to \(Fmt.percent(c.1, signed: true)))" }
                svg.add("<circle cx=\"\(Axis.px(x(dayX(p))))\" cy=\"\(Axis.px(y.clamped(p.relative!)))\" r=\"\(vp.count > 40 ? 1.5 : 3)\" fill=\"\(colour)\"><title>\(Fmt.html(tip))</title></circle>")
            }
            ends.append(("\(Fmt.truncate(v, 9)) \(Fmt.fixed(last.relative! * 100, 1, signed: true))%", colour, y.clamped(last.relative!)))
        }
        // Direct labels at the line ends (name and last value), so colour is not needed to tell lines
        // apart; pushed apart vertically when lines end close together.
        var labelY = 0.0
        for e in ends.sorted(by: { $0.y < $1.y }) {
            let ly = max(e.y + 4, labelY + 15)
            labelY = ly
            svg.line(right + 2, e.y, right + 8, ly - 4, stroke: e.colour, width: 2)
            svg.text(right + 11, ly, e.label, cls: "series-label")
        }
        return svg.render()
    }
}

// MARK: - Every metric by day: small multiples

/// Two small panels per metric, on the same day axis: what each day added per exposed unit, by arm
/// (daily), and the cumulative relative lift of each treatment with its interval (cumulative). Each
/// panel has its own y scale; lines differ in dash as well as colour, named in one legend per grid.
enum SmallMultiples {
    static let width = 300, height = 168
    static let left = 54.0, right = 290.0, top = 26.0, bottom = 132.0

    /// The legend for the arms: control first, then the treatments, in series order.
    static func legend(arms: [String]) -> String {
        let rowHeight = 18
        var svg = SVG(kind: "legend", width: 300, height: rowHeight * arms.count + 6, label: "Line styles of the arms",
                      description: arms.enumerated().map { i, a in "\(a): line style \(i + 1)" }.joined(separator: "; "))
        for (i, a) in arms.enumerated() {
            let y = Double(i * rowHeight + 13)
            let dash = Palette.dashes[i % Palette.dashes.count]
            svg.add("<line x1=\"4\" y1=\"\(Axis.px(y - 4))\" x2=\"40\" y2=\"\(Axis.px(y - 4))\" stroke=\"\(colour(i))\" stroke-width=\"2.5\"" + (dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"") + "/>")
            svg.text(48, y, Fmt.truncate(a, 32), cls: "legend")
        }
        return svg.render()
    }

    static func colour(_ arm: Int) -> String { Palette.series[arm % Palette.series.count] }

    /// The daily panel: one line per arm (index 0 is control).
    static func daily(_ series: Series, control: String, isRate: Bool) -> String {
        let metric = series.metric ?? "metric"
        let days = dayAxis(series)
        var lines: [[(x: Double, y: Double)]] = [[]]
        for p in series.points where p.variant == series.variants.first {
            if let v = p.controlDaily, let x = days.x(p) { lines[0].append((x, v)) }
        }
        for v in series.variants {
            lines.append(series.points.filter { $0.variant == v }.compactMap { p in
                guard let d = p.daily, let x = days.x(p) else { return nil }
                return (x, d)
            })
        }
        let values = lines.flatMap { $0.map(\.y) }
        var svg = SVG(kind: "daily", width: width, height: height, label: "Daily value per exposed unit of \(metric), by arm",
                      description: "Each line: what one day added to \(metric) per unit exposed by then, for \(([control] + series.variants).joined(separator: ", ")).")
        svg.text(left, 15, "Daily, per exposed unit", cls: "axis-title")
        guard !values.isEmpty, let lo0 = values.min(), let hi0 = values.max() else {
            svg.text(Double(width) / 2, 80, "No daily values.", anchor: "middle", cls: "muted")
            return svg.render()
        }
        var lo = min(lo0, 0), hi = max(hi0, 0)
        if hi - lo < 1e-12 { hi = lo + 1 }
        let step = Axis.niceStep(hi - lo, count: 4)
        lo = (lo / step).rounded(.down) * step
        hi = (hi / step).rounded(.up) * step
        let y = LinearScale(lo: lo, hi: hi, a: bottom, b: top)
        let dec = Fmt.decimals(forMagnitude: step * (isRate ? 100 : 1), digits: 1)
        for t in Axis.ticks(lo, hi, step) {
            svg.line(left, y(t), right, y(t), stroke: t == 0 ? Palette.muted : Palette.grid, extra: " class=\"grid\"")
            svg.text(left - 6, y(t) + 4, isRate ? Fmt.fixed(t * 100, dec) + "%" : Fmt.fixed(t, dec), anchor: "end", cls: "tick")
        }
        days.labels(&svg)
        for (i, line) in lines.enumerated() where !line.isEmpty {
            path(&svg, line.map { (days.scale($0.x), y.clamped($0.y)) }, arm: i, data: i == 0 ? control : series.variants[i - 1])
        }
        return svg.render()
    }

    /// The cumulative panel: each treatment's relative lift with its interval band.
    static func cumulative(_ series: Series, ci: String) -> String {
        let metric = series.metric ?? "metric"
        let days = dayAxis(series)
        let pts = series.points.filter { days.x($0) != nil }
        var svg = SVG(kind: "cumulative", width: width, height: height, label: "Cumulative relative lift of \(metric) with \(ci) band",
                      description: "Each line: a treatment's cumulative relative lift over control; band: its \(ci); line at zero.")
        svg.text(left, 15, "Cumulative lift (\(ci))", cls: "axis-title")
        guard pts.contains(where: { $0.relative != nil }) else {
            svg.text(Double(width) / 2, 80, "No comparison yet.", anchor: "middle", cls: "muted")
            return svg.render()
        }
        let (lo, hi, _) = Axis.relativeDomain(estimates: pts.compactMap(\.relative), bounds: pts.flatMap { p in p.ci.map { [$0.0, $0.1] } ?? [] })
        let step = Axis.niceStep(hi - lo, count: 4)
        let y = LinearScale(lo: lo, hi: hi, a: bottom, b: top)
        for t in Axis.ticks(lo, hi, step) {
            svg.line(left, y(t), right, y(t), stroke: t == 0 ? Palette.ink : Palette.grid, width: t == 0 ? 1.25 : 1, extra: t == 0 ? " class=\"zero\"" : " class=\"grid\"")
            svg.text(left - 6, y(t) + 4, Axis.percentTick(t, step: step), anchor: "end", cls: "tick")
        }
        days.labels(&svg)
        for (k, v) in series.variants.enumerated() {
            let vp = pts.filter { $0.variant == v }
            let banded = vp.filter { $0.ci != nil }
            if banded.count > 1 {
                var d = ""
                for (j, p) in banded.enumerated() { d += (j == 0 ? "M" : "L") + Axis.px(days.scale(days.x(p)!)) + " " + Axis.px(y.clamped(p.ci!.1)) }
                for p in banded.reversed() { d += "L" + Axis.px(days.scale(days.x(p)!)) + " " + Axis.px(y.clamped(p.ci!.0)) }
                svg.add("<path class=\"band\" d=\"\(d)Z\" fill=\"\(colour(k + 1))\" fill-opacity=\"0.15\" stroke=\"none\"/>")
            }
            path(&svg, vp.compactMap { p in p.relative.map { (days.scale(days.x(p)!), y.clamped($0)) } }, arm: k + 1, data: v)
        }
        return svg.render()
    }

    private static func path(_ svg: inout SVG, _ points: [(Double, Double)], arm: Int, data: String) {
        let dash = Palette.dashes[arm % Palette.dashes.count]
        if points.count == 1 {
            svg.add("<circle cx=\"\(Axis.px(points[0].0))\" cy=\"\(Axis.px(points[0].1))\" r=\"2.5\" fill=\"\(colour(arm))\"/>")
            return
        }
        let d = points.enumerated().map { j, p in (j == 0 ? "M" : "L") + Axis.px(p.0) + " " + Axis.px(p.1) }.joined()
        svg.add("<path class=\"lift\" data-line=\"\(Fmt.html(data))\" d=\"\(d)\" fill=\"none\" stroke=\"\(colour(arm))\" stroke-width=\"1.75\""
                + (dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"") + "/>")
    }

    /// The shared day axis of a series: calendar days when every day parses, else the order of days.
    struct DayAxis {
        var days: [String]
        var calendar: Bool
        var scale: LinearScale

        func x(_ p: Series.Point) -> Double? {
            calendar ? p.dayNumber.map(Double.init) : days.firstIndex(of: p.day).map(Double.init)
        }

        /// The first and the last day, under the axis.
        func labels(_ svg: inout SVG) {
            svg.line(SmallMultiples.left, SmallMultiples.bottom, SmallMultiples.right, SmallMultiples.bottom, stroke: Palette.muted, extra: " class=\"axis\"")
            guard let first = days.first, let last = days.last else { return }
            svg.text(SmallMultiples.left, SmallMultiples.bottom + 17, Dates.short(first), cls: "tick")
            if last != first { svg.text(SmallMultiples.right, SmallMultiples.bottom + 17, Dates.short(last), anchor: "end", cls: "tick") }
            svg.text((SmallMultiples.left + SmallMultiples.right) / 2, SmallMultiples.bottom + 31, "\(days.count) day\(days.count == 1 ? "" : "s")", anchor: "middle", cls: "tick")
        }
    }

    static func dayAxis(_ series: Series) -> DayAxis {
        let days = Array(Set(series.points.map(\.day))).sorted()
        let calendar = series.points.allSatisfy { $0.dayNumber != nil }
        let xs = calendar ? series.points.compactMap { $0.dayNumber.map(Double.init) } : days.indices.map(Double.init)
        return DayAxis(days: days, calendar: calendar, scale: LinearScale(lo: xs.min() ?? 0, hi: xs.max() ?? 1, a: left, b: right))
    }
}

// MARK: - Traffic split

enum TrafficSplit {
    static let width = 960
    static let labelRight = 150.0, barLeft = 162.0, barRight = 700.0, textLeft = 712.0

    static func render(_ srm: Summary.SRM) -> String {
        let vs = srm.variants
        let rowH = 44.0
        let top = 30.0
        let height = Int(top + Double(vs.count) * rowH + 44)
        let verdict = srmSentence(srm)
        var svg = SVG(kind: "traffic", width: width, height: max(height, 90),
                      label: "Traffic split: expected versus observed share of units per variant. \(verdict.text)",
                      description: vs.map { "\($0.variant): expected \($0.expected.map { Fmt.percent($0) } ?? "n/a"), observed \($0.observed.map { Fmt.percent($0) } ?? "n/a")" }.joined(separator: "; "))
        let maxShare = max(vs.compactMap { max($0.expected ?? 0, $0.observed ?? 0) }.max() ?? 1, 0.0001)
        let step = Axis.niceStep(maxShare, count: 4)
        let scaleTop = min(1, (maxShare / step).rounded(.up) * step)
        let x = LinearScale(lo: 0, hi: scaleTop, a: barLeft, b: barRight)
        // Legend.
        svg.add("<rect x=\"\(Axis.px(barLeft))\" y=\"8\" width=\"18\" height=\"10\" fill=\"#FFFFFF\" stroke=\"\(Palette.ink)\" stroke-dasharray=\"3 2\"/>")
        svg.text(barLeft + 24, 17, "expected (design)", cls: "legend")
        svg.add("<rect x=\"\(Axis.px(barLeft + 160))\" y=\"8\" width=\"18\" height=\"10\" fill=\"\(Palette.blue)\"/>")
        svg.text(barLeft + 184, 17, "observed", cls: "legend")
        let bottom = top + Double(vs.count) * rowH
        for t in Axis.ticks(0, scaleTop, step) {
            svg.line(x(t), top, x(t), bottom, stroke: Palette.grid, extra: " class=\"grid\"")
            svg.text(x(t), bottom + 16, Fmt.fixed(t * 100, step * 100 >= 1 ? 0 : 1) + "%", anchor: "middle", cls: "tick")
        }
        svg.text((barLeft + barRight) / 2, bottom + 36, "Share of units", anchor: "middle", cls: "axis-title")
        for (i, v) in vs.enumerated() {
            let y0 = top + Double(i) * rowH + 6
            svg.add("<g class=\"share\" data-variant=\"\(Fmt.html(v.variant))\">")
            svg.text(labelRight, y0 + 20, Fmt.truncate(v.variant, 20), anchor: "end", cls: "label")
            if let e = v.expected {
                svg.add("<rect class=\"expected\" x=\"\(Axis.px(barLeft))\" y=\"\(Axis.px(y0))\" width=\"\(Axis.px(max(0, x.clamped(e) - barLeft)))\" height=\"13\" fill=\"#FFFFFF\" stroke=\"\(Palette.ink)\" stroke-dasharray=\"3 2\"/>")
            }
            if let o = v.observed {
                svg.add("<rect class=\"observed\" x=\"\(Axis.px(barLeft))\" y=\"\(Axis.px(y0 + 16))\" width=\"\(Axis.px(max(0, x.clamped(o) - barLeft)))\" height=\"13\" fill=\"\(Palette.blue)\"/>")
            }
            // Two short lines, so the text stays inside the chart.
            let detail = "expected \(v.expected.map { Fmt.percent($0) } ?? "n/a") · observed \(v.observed.map { Fmt.percent($0) } ?? "n/a")"
            var second: [String] = []
            if let e = v.expected, let o = v.observed { second.append("\(Fmt.fixed((o - e) * 100, 2, signed: true)) pp") }
            if let n = v.n { second.append("n = \(Fmt.count(n))") }
            svg.text(textLeft, y0 + 11, detail, cls: "value")
            if !second.isEmpty { svg.text(textLeft, y0 + 27, second.joined(separator: " · "), cls: "muted") }
            svg.add("</g>")
        }
        return svg.render()
    }
}
