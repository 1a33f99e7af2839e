import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Limits applied while parsing untrusted JSON.
public struct JSONLimits: Sendable, Equatable {
    /// Maximum nesting of arrays and objects.
    public var maxDepth: Int
    /// Maximum elements in one array or members in one object.
    public var maxContainerLength: Int
    /// Maximum length in bytes of one string.
    public var maxStringBytes: Int

    public init(maxDepth: Int = 64, maxContainerLength: Int = 1_000_000, maxStringBytes: Int = 8 << 20) {
        self.maxDepth = maxDepth
        self.maxContainerLength = maxContainerLength
        self.maxStringBytes = maxStringBytes
    }
}

/// Why a text is not acceptable JSON, with the byte offset where parsing stopped.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    /// True when the text is valid JSON syntax that exceeds a configured limit.
    public var isLimit: Bool

    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes: rejects invalid UTF-8, lone surrogates, duplicate
/// keys, non-finite numbers and trailing garbage, and enforces ``JSONLimits``.
public struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private let limits: JSONLimits

    public static func parse(_ text: String, limits: JSONLimits = JSONLimits()) throws(JSONParseError) -> JSON {
        var text = text
        let result = text.withUTF8 { buffer in Result { () throws(JSONParseError) in try parse(buffer, limits: limits) } }
        return try result.get()
    }

    public static func parse(_ bytes: [UInt8], limits: JSONLimits = JSONLimits()) throws(JSONParseError) -> JSON {
        let result = bytes.withUnsafeBufferPointer { buffer in Result { () throws(JSONParseError) in try parse(buffer, limits: limits) } }
        return try result.get()
    }

    public static func parse(_ buffer: UnsafeBufferPointer<UInt8>, limits: JSONLimits = JSONLimits()) throws(JSONParseError) -> JSON {
        try parse(buffer, limits: limits, parallel: true)
    }

    /// `parallel: false` is the reference the parallel parse of large arrays is tested against.
    static func parse(_ buffer: UnsafeBufferPointer<UInt8>, limits: JSONLimits, parallel: Bool) throws(JSONParseError) -> JSON {
        var parser = JSONParser(bytes: buffer, limits: limits)
        parser.mayParallelise = parallel
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == buffer.count else { throw parser.error("unexpected data after the JSON value") }
        return value
    }

    /// False inside a worker of ``parseLargeArray(depth:)``: one level of parallelism is enough.
    private var mayParallelise = true

    private init(bytes: UnsafeBufferPointer<UInt8>, limits: JSONLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    private func error(_ reason: String, limit: Bool = false) -> JSONParseError {
        JSONParseError(offset: index, reason: reason, isLimit: limit)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSON {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("invalid literal") }
        let base = literal.utf8Start
        for i in 0..<count where bytes[index + i] != base[i] {
            throw error("invalid literal")
        }
        index += count
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSON {
        guard depth <= limits.maxDepth else { throw error("nesting deeper than \(limits.maxDepth) levels", limit: true) }
        index += 1
        var object: [String: JSON] = Dictionary(minimumCapacity: 8)
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after key") }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            guard object.updateValue(value, forKey: key) == nil else { throw error("duplicate key \"\(key)\"") }
            guard object.count <= limits.maxContainerLength else {
                throw error("object has more than \(limits.maxContainerLength) members", limit: true)
            }
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
            throw error("expected ',' or '}' in object")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSON {
        guard depth <= limits.maxDepth else { throw error("nesting deeper than \(limits.maxDepth) levels", limit: true) }
        if mayParallelise, bytes.count - index >= Self.parallelBytes, let large = try parseLargeArray(depth: depth) { return large }
        index += 1
        var array: [JSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth))
            guard array.count <= limits.maxContainerLength else {
                throw error("array has more than \(limits.maxContainerLength) elements", limit: true)
            }
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
            throw error("expected ',' or ']' in array")
        }
    }

    private static let parallelBytes = 1 << 16
    private static let workers = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// A large array (a batch of requests) parsed on every core. A structural scan that skips over strings
    /// finds the elements; each is then parsed by the strict parser, which must end exactly where the scan
    /// put the next separator, so the value and any error (the first in byte order) are those of the
    /// sequential parse. Anything the scan cannot settle (an unterminated string, an unclosed bracket, too
    /// many elements, a small array) returns nil and the sequential parse takes over.
    private mutating func parseLargeArray(depth: Int) throws(JSONParseError) -> JSON? {
        var bounds: [Int] = []  // start and end of each element, in pairs
        var i = index + 1, level = 0, elementStart = i, close = -1
        scan: while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
            case UInt8(ascii: "["), UInt8(ascii: "{"): level += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if level == 0 {
                    guard b == UInt8(ascii: "]") else { return nil }
                    bounds.append(elementStart); bounds.append(i)
                    close = i
                    break scan
                }
                level -= 1
            case UInt8(ascii: ","):
                if level == 0 { bounds.append(elementStart); bounds.append(i); elementStart = i + 1 }
            default: break
            }
            i += 1
        }
        let count = bounds.count / 2
        guard close >= 0, count >= 64, count <= limits.maxContainerLength else {
            // Whatever made the scan give up would make every nested array's scan give up too: scan once.
            if close < 0 { mayParallelise = false }
            return nil
        }
        var values = [JSON](repeating: .null, count: count)
        var failures = [JSONParseError?](repeating: nil, count: Self.workers)
        nonisolated(unsafe) let source = bytes
        let limits = self.limits, workers = Self.workers, elements = bounds
        values.withUnsafeMutableBufferPointer { out in
            failures.withUnsafeMutableBufferPointer { failed in
                nonisolated(unsafe) let out = out, failed = failed
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    var parser = JSONParser(bytes: source, limits: limits)
                    parser.mayParallelise = false
                    for e in (count * w / workers)..<(count * (w + 1) / workers) {
                        do throws(JSONParseError) {
                            parser.index = elements[2 * e]
                            parser.skipWhitespace()
                            let value = try parser.parseValue(depth: depth)
                            parser.skipWhitespace()
                            guard parser.index == elements[2 * e + 1] else { throw parser.error("expected ',' or ']' in array") }
                            out[e] = value
                        } catch {
                            failed[w] = error
                            return
                        }
                    }
                }
            }
        }
        if let first = failures.lazy.compactMap({ $0 }).first { throw first }
        index = close + 1
        return .array(values)
    }

    private mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw error("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(bytes[index]) {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        } else {
            throw error("invalid number")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number: digit expected after '.'") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number: digit expected in exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        guard index - start <= 400 else { throw error("number literal longer than 400 characters", limit: true) }
        let literal = UnsafeBufferPointer(rebasing: bytes[start..<index])
        if let fast = DecimalNumber.fast(literal) { return fast }
        let text = String(decoding: literal, as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            index = start
            throw error("number \(text.prefix(40)) is outside the range of a double", limit: true)
        }
        return value
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes, validate UTF-8 in one go (nothing to validate when every byte is ASCII).
        var ascii = true
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                guard slice.count <= limits.maxStringBytes else { throw error("string longer than \(limits.maxStringBytes) bytes", limit: true) }
                let text: String
                if ascii {
                    text = String(decoding: slice, as: UTF8.self)
                } else {
                    guard let s = String(validating: slice, as: UTF8.self) else {
                        throw JSONParseError(offset: start, reason: "invalid UTF-8 in string", isLimit: false)
                    }
                    text = s
                }
                index += 1
                return text
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("unescaped control character in string") }
            if b >= 0x80 { ascii = false }
            index += 1
        }
        guard index < bytes.count else { throw error("unterminated string") }
        // Slow path with escapes.
        var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                guard out.count <= limits.maxStringBytes else { throw error("string longer than \(limits.maxStringBytes) bytes", limit: true) }
                guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
                return s
            }
            if b < 0x20 { throw error("unescaped control character in string") }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { throw error("unterminated escape") }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("unpaired surrogate in \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw error("invalid escape character")
            }
        }
        throw error("unterminated string")
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let digit: UInt32
            switch b {
            case 0x30...0x39: digit = UInt32(b - 0x30)
            case 0x41...0x46: digit = UInt32(b - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(b - 0x61 + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            v = v * 16 + digit
            index += 1
        }
        return v
    }
}

/// Decimal numbers from bytes, for the JSON parser and ingestion alike: the one number parser.
public enum DecimalNumber {
    @usableFromInline static let exactPowers: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

    /// Clinger's fast path: a mantissa below 2^53 scaled by an exact power of ten (|e| ≤ 22) is correctly
    /// rounded with one multiplication or division. An optional sign, digits, an optional fraction; nil for
    /// anything else (an exponent, too many digits), which ``parse(_:)`` hands to the standard parser.
    @inlinable
    public static func fast(_ s: UnsafeBufferPointer<UInt8>) -> Double? {
        guard !s.isEmpty else { return nil }
        var i = 0
        var negative = false
        if s[0] == UInt8(ascii: "-") { negative = true; i = 1 } else if s[0] == UInt8(ascii: "+") { i = 1 }
        var mantissa: UInt64 = 0
        var digits = 0
        var scale = 0
        while i < s.count, s[i] >= 0x30, s[i] <= 0x39 {
            mantissa = mantissa &* 10 &+ UInt64(s[i] - 0x30); digits += 1; i += 1
        }
        if i < s.count, s[i] == UInt8(ascii: ".") {
            i += 1
            while i < s.count, s[i] >= 0x30, s[i] <= 0x39 {
                mantissa = mantissa &* 10 &+ UInt64(s[i] - 0x30); digits += 1; scale -= 1; i += 1
            }
        }
        guard i == s.count, digits > 0, digits <= 15, mantissa < (1 << 53), scale >= -22 else { return nil }
        let value = scale == 0 ? Double(mantissa) : Double(mantissa) / exactPowers[-scale]
        return negative ? -value : value
    }

    /// Any decimal number Swift's `Double(_:)` reads (exponents, `inf`, `nan` included: callers check finiteness).
    public static func parse(_ s: UnsafeBufferPointer<UInt8>) -> Double? {
        fast(s) ?? Double(String(decoding: s, as: UTF8.self))
    }
}
