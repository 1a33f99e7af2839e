/// An instant as seconds since the Unix epoch, parsed from and printed as RFC 3339 (UTC on output).
///
/// The registry never reads a clock: callers pass `now` in, which keeps rules testable.
public struct Timestamp: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.seconds < b.seconds }

    public func adding(days: Double) -> Timestamp { Timestamp(seconds: seconds + days * 86_400) }

    public static func days(from a: Timestamp, to b: Timestamp) -> Double { (b.seconds - a.seconds) / 86_400 }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; also accepts a bare date `YYYY-MM-DD` (midnight UTC).
    public init?(rfc3339 text: String) {
        let u = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= u.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                guard u[i] >= 0x30, u[i] <= 0x39 else { return nil }
                v = v * 10 + Int(u[i] - 0x30)
            }
            return v
        }
        guard u.count >= 10, let index = u.withUnsafeBufferPointer({ CalendarDay.parse(UnsafeBufferPointer(rebasing: $0[0..<10])) }) else { return nil }
        var secs = Double(Int(index) - CalendarDay.epochIndex) * 86_400
        if u.count == 10 { self.seconds = secs; return }
        guard u.count >= 20, u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: "t"),
              let hh = num(11, 2), u[13] == UInt8(ascii: ":"), let mm = num(14, 2), u[16] == UInt8(ascii: ":"),
              let ss = num(17, 2), hh < 24, mm < 60, ss < 61
        else { return nil }
        secs += Double(hh * 3600 + mm * 60 + ss)
        var i = 19
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < u.count, u[i] >= 0x30, u[i] <= 0x39 {
                secs += Double(u[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < u.count else { return nil }
        if u[i] == UInt8(ascii: "Z") || u[i] == UInt8(ascii: "z") {
            guard i + 1 == u.count else { return nil }
        } else if u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") {
            guard i + 6 == u.count, let oh = num(i + 1, 2), u[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2), oh < 24, om < 60 else { return nil }
            let offset = Double(oh * 3600 + om * 60)
            secs += u[i] == UInt8(ascii: "+") ? -offset : offset
        } else {
            return nil
        }
        self.seconds = secs
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, with milliseconds when the instant has a fraction.
    public var description: String {
        // Open-ended windows use ±infinity; nothing outside years 0000–9999 reaches a conversion that traps.
        guard seconds.isFinite, abs(seconds) < 253_402_300_800 else { return seconds < 0 ? "-infinity" : "infinity" }
        let whole = seconds.rounded(.down)
        var days = Int(whole / 86_400)
        var rem = Int(whole) - days * 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = Timestamp.civilFromDays(days)
        let millis = Int(((seconds - whole) * 1000).rounded())
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func put(_ v: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 { out.append(UInt8(0x30 + (v / divisor) % 10)); divisor /= 10 }
        }
        put(y, 4); out.append(0x2D); put(m, 2); out.append(0x2D); put(d, 2); out.append(0x54)
        put(rem / 3600, 2); out.append(0x3A); put(rem / 60 % 60, 2); out.append(0x3A); put(rem % 60, 2)
        if millis > 0 && millis < 1000 { out.append(0x2E); put(millis, 3) }
        out.append(0x5A)
        return String(decoding: out, as: UTF8.self)
    }

    /// The UTC calendar date, `YYYY-MM-DD`.
    public var day: String { String(description.prefix(10)) }

    @usableFromInline static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    @usableFromInline static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (m <= 2 ? y + 1 : y, m, d)
    }
}

/// A calendar day, `YYYY-MM-DD` (UTC): the one parser of dates in every module (timestamps, ingested rows,
/// reports). Days are indexed from 0000-03-01, so every year 0000-9999 but two months is non-negative and below
/// ``span`` (ingestion keeps them in 32 bits); ``epochDay(_:)`` counts from 1970-01-01 instead.
public enum CalendarDay {
    public static let span = 3_652_425
    /// Index of 1970-01-01.
    @usableFromInline static let epochIndex = 719_468

    /// The day index of exactly ten bytes `YYYY-MM-DD`, validated as a calendar date (inlinable: ingestion calls
    /// it for every row).
    @inlinable
    public static func parse(_ f: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard f.count == 10, f[4] == UInt8(ascii: "-"), f[7] == UInt8(ascii: "-") else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            var v = 0
            for i in from..<(from + count) {
                let d = Int(f[i]) &- 0x30
                guard d >= 0 && d <= 9 else { return nil }
                v = v * 10 + d
            }
            return v
        }
        guard let y = digits(0, 4), let m = digits(5, 2), let d = digits(8, 2), (1...12).contains(m),
              d >= 1, d <= Timestamp.daysIn(month: m, year: y) else { return nil }
        let index = Timestamp.daysFromCivil(y, m, d) + epochIndex
        return index >= 0 && index < span ? Int32(index) : nil
    }

    /// The day index of the first ten characters of `text` (a date, or an RFC 3339 time), else nil.
    public static func parse(_ text: some StringProtocol) -> Int32? {
        var bytes = Array(text.utf8.prefix(10))
        return bytes.withUnsafeMutableBufferPointer { parse(UnsafeBufferPointer($0)) }
    }

    /// Days since 1970-01-01 of a date (or the date part of a time), else nil.
    public static func epochDay(_ text: some StringProtocol) -> Int? { parse(text).map { Int($0) - epochIndex } }

    /// `YYYY-MM-DD` of a day index.
    public static func format(_ index: Int) -> String {
        Timestamp(seconds: Double(index - epochIndex) * 86_400).day
    }
}
