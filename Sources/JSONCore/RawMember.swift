/// Finds the source text of a member of a JSON object, for values that must be echoed exactly as sent
/// (a JSON-RPC id such as 9007199254740993 has no exact double). The text must already be valid JSON:
/// this only skips over it.
public enum RawMember {
    /// The text of member `name` of the object in `bytes` (top level), or, when the top level is an array,
    /// of each element that is an object (nil for the others).
    public static func texts(_ name: String, in bytes: UnsafeBufferPointer<UInt8>) -> [String?] {
        var scanner = Scanner(bytes: bytes, key: Array(("\"" + name + "\"").utf8))
        scanner.skipSpace()
        guard scanner.index < bytes.count else { return [] }
        if bytes[scanner.index] == UInt8(ascii: "[") {
            scanner.index += 1
            var out: [String?] = []
            while true {
                scanner.skipSpace()
                guard scanner.index < bytes.count, bytes[scanner.index] != UInt8(ascii: "]") else { return out }
                out.append(bytes[scanner.index] == UInt8(ascii: "{") ? scanner.member() : { scanner.skipValue(); return nil }())
                scanner.skipSpace()
                guard scanner.index < bytes.count, bytes[scanner.index] == UInt8(ascii: ",") else { return out }
                scanner.index += 1
            }
        }
        return [scanner.member()]
    }

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        let key: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
        }

        /// At a `{`: the text of the wanted member's value; leaves the index after the object.
        mutating func member() -> String? {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
            index += 1
            var found: String?
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { index += 1; return found }
                let keyStart = index
                skipString()
                let isWanted = index - keyStart == key.count && zip(bytes[keyStart..<index], key).allSatisfy { $0 == $1 }
                skipSpace()
                index += 1  // ':'
                skipSpace()
                let valueStart = index
                skipValue()
                if isWanted { found = String(decoding: UnsafeBufferPointer(rebasing: bytes[valueStart..<index]), as: UTF8.self) }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ",") else { index += 1; return found }
                index += 1
            }
        }

        mutating func skipString() {
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""): index += 1; return
                default: index += 1
                }
            }
        }

        mutating func skipValue() {
            guard index < bytes.count else { return }
            switch bytes[index] {
            case UInt8(ascii: "\""): skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: "\""): skipString(); continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { index += 1; return }
                    default: break
                    }
                    index += 1
                }
            default:
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: return
                    default: index += 1
                    }
                }
            }
        }
    }
}

extension JSON {
    /// The first member path (`key`, `units[2]`) of a string or member name holding U+0000, or nil.
    /// SQLite's text storage cuts a string at NUL while a hash covers all of it, so no text with NUL is accepted.
    public func pathOfNUL(_ path: String = "") -> String? {
        func member(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }
        switch self {
        case .string(let s): return s.utf8.contains(0) ? path : nil
        case .array(let a):
            for (i, v) in a.enumerated() { if let p = v.pathOfNUL("\(path)[\(i)]") { return p } }
            return nil
        case .object(let o):
            for (k, v) in o {
                if k.utf8.contains(0) { return member(k.replacingNUL) }
                if let p = v.pathOfNUL(member(k)) { return p }
            }
            return nil
        default: return nil
        }
    }
}

extension String {
    /// The text with U+0000 shown as `\u0000`, for messages.
    public var replacingNUL: String { utf8.contains(0) ? String(decoding: utf8.flatMap { $0 == 0 ? Array("\\u0000".utf8) : [$0] }, as: UTF8.self) : self }
}
