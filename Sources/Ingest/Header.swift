import Foundation
import Synchronization
import JSONCore
import Registry

extension Ingestor {

    /// The file's columns, from the CSV header or the first JSON line.
    func readHeader(_ names: [some StringProtocol], line: Int) throws {
        // A column named twice has no one meaning: which of the two values would count?
        var counts: [String: Int] = [:]
        for raw in names { counts[String(raw), default: 0] += 1 }
        let repeated = counts.filter { $0.value > 1 }.keys.sorted()
        if !repeated.isEmpty {
            throw IngestError(.invalidInput,
                           message: "the header (line \(line)) names \(repeated.map { "\"\($0.prefix(60))\"" }.joined(separator: ", ")) more than once; each column must appear once. Nothing was written",
                           data: ["reason": "invalid_input", "field": "path", "line": JSON(line), "duplicate_columns": JSON(repeated.map { String($0.prefix(200)) })])
        }
        var seenUnit = false, seenVariant = false
        let known = metricNames
        let attributeNames = Set(crossings.flatMap(\.attributes))
        for raw in names {
            let name = String(raw)
            switch name {
            case "unit_id": columns.append(.unit); seenUnit = true
            case "variant": columns.append(.variant); seenVariant = true
            case "day": columns.append(.day)
            case _ where dimensionNames.contains(name): columns.append(.dimension(dimensionNames.firstIndex(of: name)!))
            case _ where attributeNames.contains(name) && !known.contains(name): columns.append(.attribute)
            default:
                var base = name, role = ValueRole.value
                for (suffix, r) in [(".pre", ValueRole.pre), (".numerator", .numerator), (".denominator", .denominator)] where name.hasSuffix(suffix) {
                    base = String(name.dropLast(suffix.count)); role = r
                }
                // Quantile metrics whose per-unit value is this column (other than a metric of this name).
                let readers = role == .value ? known.filter { $0 != base && catalog.metrics[$0]?.type == .quantile && catalog.metrics[$0]?.valueColumn == name } : []
                guard known.contains(base), let def = catalog.metrics[base] else {
                    if let first = readers.first {
                        // A value column only quantile metrics read: the first holds it, the others read its slot.
                        let m = slot(for: first)
                        for other in readers.dropFirst() { metrics[slot(for: other)].source = m }
                        columns.append(.value(metric: m, role: .value))
                        continue
                    }
                    problem(line, "unknown_metric", "column \"\(name.prefix(60))\" is not a metric of \(experimentKey) (\(known.joined(separator: ", ")))")
                    columns.append(.value(metric: -1, role: .value))
                    continue
                }
                let wrongRole = (def.type == .ratio) != (role == .numerator || role == .denominator) || (role == .pre && def.type != .continuous)
                if wrongRole {
                    problem(line, "unknown_metric", "column \"\(name)\": \(base) is a \(def.type.rawValue) metric" + (def.type == .ratio ? "; use \(base).numerator and \(base).denominator" : ""))
                    columns.append(.value(metric: -1, role: .value))
                    continue
                }
                if def.type == .quantile && def.valueColumn != base {
                    problem(line, "unknown_metric", "column \"\(name)\": \(base) is a quantile metric of column \(def.valueColumn); name that column instead")
                    columns.append(.value(metric: -1, role: .value))
                    continue
                }
                let m = slot(for: base)
                if def.type == .continuous || def.type == .quantile {
                    for other in readers { metrics[slot(for: other)].source = m }
                }
                if role == .pre { metrics[m].hasPre = true }
                columns.append(.value(metric: m, role: role))
            }
        }
        if !seenUnit || !seenVariant {
            throw FieldError(path: "path", message: "the header (line \(line)) must name unit_id and variant columns")
        }
        guard names.count <= 4096 else {
            throw FieldError(path: "path", message: "the header (line \(line)) has \(names.count) columns; at most 4096 are supported")
        }
        planCrossings(names.map { String($0) })
        // Unknown metric columns (metric -1) are skipped in the records; they were reported above.
        // Slots: four per metric, then one per dimension (the number of the value, see DimensionValues).
        valueCount = metrics.count * 4 + dimensionNames.count
        for case .value(let m, let role) in columns where m >= 0 { usedSlots.append(m * 4 + role.rawValue) }
        for case .dimension(let d) in columns { usedSlots.append(metrics.count * 4 + d) }
        for arm in computedArms { usedSlots.append(metrics.count * 4 + arm.dimension) }
        usedSlots = Array(Set(usedSlots)).sorted()
        recordPosition = [Int](repeating: -1, count: valueCount)
        for (i, k) in usedSlots.enumerated() { recordPosition[k] = i }
    }

    /// Decides where each crossing's arm comes from: the file's `arm:KEY` column, the unit id (and the attribute
    /// columns B's targeting reads), or nowhere (skipped, with the reason in the report).
    func planCrossings(_ names: [String]) {
        computedArms = []
        let base = dimensionNames.count - crossings.count
        for (i, crossing) in crossings.enumerated() {
            if names.contains(crossing.dimension) {
                crossingReport[crossing.key] = ["source": "column", "column": .string(crossing.dimension)]
                continue
            }
            guard let assigner = crossing.assigner else {
                crossingReport[crossing.key] = ["source": "skipped", "reason": .string("its arms cannot be computed here; add a column \(crossing.dimension) naming each unit's arm")]
                continue
            }
            let missing = crossing.attributes.filter { !names.contains($0) }
            guard missing.isEmpty else {
                crossingReport[crossing.key] = ["source": "skipped",
                                                "reason": .string("\(crossing.key) targets on \(missing.joined(separator: ", ")), which the file lacks; add \(missing.count == 1 ? "that column" : "those columns") or a column \(crossing.dimension) naming each unit's arm")]
                continue
            }
            computedArms.append(ComputedArm(dimension: base + i, assigner: assigner,
                                            attributes: crossing.attributes.map { a in (a, names.firstIndex(of: a)!) },
                                            notAssigned: crossing.arms.count + 1))
            crossingReport[crossing.key] = ["source": "computed", "attributes": JSON(crossing.attributes)]
        }
    }

    /// The metric slot of `name`, made on first sight with its definition's type, capping and q.
    func slot(for name: String) -> Int {
        if let existing = metrics.firstIndex(where: { $0.name == name }) { return existing }
        let def = catalog.metrics[name]!
        var slot = MetricSlot(name: name, type: def.type, quantile: def.quantile)
        switch def.capping {
        case .absolute(let x)?: slot.cap = x
        case .percentile(let p)?: slot.percentile = p
        case nil: break
        }
        metrics.append(slot)
        return metrics.count - 1
    }

    /// A copy with no columns read yet (the JSON-lines worker reads its header from the first row).
    func headerState() -> HeaderState {
        HeaderState(columns: columns, metrics: metrics, valueCount: valueCount, usedSlots: usedSlots, recordPosition: recordPosition,
                    computedArms: computedArms, problems: [])
    }

    func readJSONLHeader(_ keys: [String], line: Int) throws -> HeaderState {
        let before = problems
        let beforeCounts = problemCounts
        try readHeader(keys, line: line)
        let added = Array(problems.dropFirst(before.count))
        problems = before
        problemCounts = beforeCounts
        var state = headerState()
        state.problems = added
        return state
    }

    /// Splits one CSV record (RFC 4180 quoting).
    static func splitCSV(_ line: String) -> [Substring] {
        if !line.contains("\"") { return line.split(separator: ",", omittingEmptySubsequences: false) }
        var out: [Substring] = []
        var field = ""
        var quoted = false
        var iterator = line.makeIterator()
        var previousQuote = false
        while let ch = iterator.next() {
            if quoted {
                if ch == "\"" { quoted = false; previousQuote = true } else { field.append(ch) }
            } else if ch == "\"" {
                if previousQuote { field.append("\"") }
                quoted = true; previousQuote = false
            } else if ch == "," {
                out.append(Substring(field)); field = ""; previousQuote = false
            } else {
                field.append(ch); previousQuote = false
            }
        }
        out.append(Substring(field))
        return out
    }

    /// FNV-1a 64 of the unit id: 64 bits keep collisions negligible (about 7e-5 chance of any among 50 million units).
    static func fingerprint(_ s: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s { h ^= UInt64(b); h = h &* 0x0000_0100_0000_01b3 }
        return h
    }

    /// A decimal number from bytes (the one number parser, shared with JSON).
    static func number(_ f: UnsafeBufferPointer<UInt8>) -> Double? { DecimalNumber.parse(f) }
}

struct HeaderState: @unchecked Sendable {
    var columns: [Ingestor.Column]
    var metrics: [Ingestor.MetricSlot]
    var valueCount: Int
    var usedSlots: [Int]
    var recordPosition: [Int]
    var computedArms: [Ingestor.ComputedArm]
    var problems: [Ingestor.Problem]
}
