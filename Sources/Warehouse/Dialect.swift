import Foundation
import Registry

/// How one dialect spells what the query needs: quoted names and strings, types, instants and their arithmetic.
/// Everything a user or the data controls reaches the query through ``string(_:)`` or ``identifier(_:)``.
struct Spelling {
    let dialect: Dialect

    /// A name as written when it is a plain lower-case word (so Snowflake's upper-cased columns still match),
    /// quoted otherwise.
    func identifier(_ name: String) -> String {
        let plain = name.utf8.first.map { ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x5f } == true
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
        if plain && !Self.reserved.contains(name) { return name }
        switch dialect {
        case .bigquery:
            return "`" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "`", with: "\\`") + "`"
        case .postgresql, .duckdb, .snowflake:
            return "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
    }

    /// A string literal that means exactly `text` in the dialect, whatever it holds.
    func string(_ text: String) -> String {
        switch dialect {
        case .duckdb:
            return "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
        case .postgresql:
            // E'' strings read backslashes the same way whatever standard_conforming_strings says.
            guard text.contains("\\") else { return "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
            return "E'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''") + "'"
        case .bigquery, .snowflake:
            var out = "'"
            for ch in text.unicodeScalars {
                switch ch {
                case "\\": out += "\\\\"
                case "'": out += "\\'"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default: out.unicodeScalars.append(ch)
                }
            }
            return out + "'"
        }
    }

    var double: String {
        switch dialect {
        case .postgresql: "DOUBLE PRECISION"
        case .duckdb, .snowflake: "DOUBLE"
        case .bigquery: "FLOAT64"
        }
    }

    var text: String { dialect == .bigquery ? "STRING" : "VARCHAR" }

    /// Byte order for the tie-break between dimension values with as many units (ingestion's order).
    var byteOrder: String { dialect == .postgresql ? " COLLATE \"C\"" : "" }

    /// An instant as a timestamp literal (UTC).
    func timestamp(_ t: Timestamp) -> String {
        let text = t.description   // YYYY-MM-DDTHH:MM:SS[.mmm]Z
        let plain = text.dropLast().replacingOccurrences(of: "T", with: " ")
        return dialect == .bigquery ? "TIMESTAMP '\(plain)+00'" : "TIMESTAMP '\(plain)'"
    }

    /// `instant` moved by a whole number of seconds.
    func shifted(_ instant: String, seconds: Int) -> String {
        guard seconds != 0 else { return instant }
        let magnitude = seconds.magnitude
        switch dialect {
        case .postgresql: return "\(instant) \(seconds < 0 ? "-" : "+") INTERVAL '\(magnitude) seconds'"
        case .duckdb: return "\(instant) \(seconds < 0 ? "-" : "+") INTERVAL \(magnitude) SECOND"
        case .bigquery: return "TIMESTAMP_\(seconds < 0 ? "SUB" : "ADD")(\(instant), INTERVAL \(magnitude) SECOND)"
        case .snowflake: return "DATEADD(second, \(seconds), \(instant))"
        }
    }

    /// The UTC date of an instant as `YYYY-MM-DD` text.
    func dayText(_ instant: String) -> String {
        dialect == .snowflake ? "TO_VARCHAR(CAST(\(instant) AS DATE), 'YYYY-MM-DD')" : "CAST(CAST(\(instant) AS DATE) AS \(text))"
    }

    /// Words that are reserved in at least one of the four dialects, always quoted.
    static let reserved: Set<String> = [
        "all", "and", "any", "array", "as", "asc", "between", "by", "case", "cast", "check", "collate", "column", "constraint", "create",
        "cross", "current", "current_date", "current_time", "current_timestamp", "current_user", "default", "desc", "distinct", "do",
        "else", "end", "except", "exists", "false", "fetch", "for", "foreign", "from", "full", "grant", "group", "having", "if", "ignore",
        "in", "inner", "interval", "intersect", "into", "is", "join", "lateral", "left", "like", "limit", "natural", "new", "not", "null",
        "of", "offset", "on", "only", "or", "order", "outer", "over", "partition", "primary", "qualify", "range", "references", "right",
        "rows", "sample", "select", "session_user", "set", "some", "table", "tablesample", "then", "to", "true", "union", "unique",
        "unnest", "user", "using", "values", "when", "where", "window", "with", "within",
    ]
}

/// Text safe inside a `--` comment: nothing that ends the line.
func commentSafe(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f || $0 == "\u{2028}" || $0 == "\u{2029}" ? " " : $0 }))
}
