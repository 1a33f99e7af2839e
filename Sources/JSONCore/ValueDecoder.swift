/// Decodes `Decodable` types from ``JSON`` values with the same policy and messages as ``Fields``: the first
/// problem is thrown as a ``FieldError`` whose path names the member (`window.start`, `units[3]`); `null` counts as
/// absent; integers must be whole. Types of the control interface's params decode through it, so a field's name,
/// type and optionality are declared once, in the type (``SchemaProbe`` reads the same declaration back as JSON Schema).
///
/// ```swift
/// struct Get: Decodable { let key: String; let limit: Int? }
/// let p = try JSONValueDecoder.decode(Get.self, from: params)   // FieldError(path: "key", message: "is required")
/// ```
public enum JSONValueDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSON?, path: String = "") throws(FieldError) -> T {
        do {
            return try T(from: ValueDecoder(value: value ?? .object([:]), path: path))
        } catch let error as FieldError {
            throw error
        } catch {
            throw FieldError(path: path.isEmpty ? "params" : path, message: "\(error)")
        }
    }
}

/// A string-valued choice (an enum of the control interface): decoded with the list of choices in its error,
/// described as a JSON Schema `enum`.
public protocol ParamChoice: RawRepresentable, CaseIterable, Decodable, Sendable where RawValue == String {}

extension ParamChoice {
    static var choiceNames: [String] { allCases.map(\.rawValue) }
    static func decodeChoice(_ value: JSON, path: String) throws(FieldError) -> Self {
        guard let s = value.stringValue else { throw FieldError(path: path, message: "must be a string, got \(value.typeName)") }
        guard let c = Self(rawValue: s) else {
            throw FieldError(path: path, message: "\"\(s)\" is not one of \(choiceNames.joined(separator: ", "))")
        }
        return c
    }
    static var firstCase: Self { allCases.first! }
}

private func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

/// Decodes one value; the primitives and JSON itself are read directly, anything else through its `init(from:)`.
private func decodeValue<T: Decodable>(_ type: T.Type, _ value: JSON, path: String) throws -> T {
    func wrong(_ expected: String) -> FieldError { FieldError(path: path.isEmpty ? "params" : path, message: "must be \(expected), got \(value.typeName)") }
    if T.self == JSON.self { return value as! T }
    if T.self == String.self { guard let s = value.stringValue else { throw wrong("a string") }; return s as! T }
    if T.self == Int.self { guard let i = value.intValue else { throw wrong("an integer") }; return i as! T }
    if T.self == Double.self { guard let d = value.doubleValue else { throw wrong("a number") }; return d as! T }
    if T.self == Bool.self { guard let b = value.boolValue else { throw wrong("a boolean") }; return b as! T }
    if let choice = T.self as? any ParamChoice.Type { return try choice.decodeChoice(value, path: path) as! T }
    // Other scalars are not part of the control interface (and would recurse through their own init(from:)).
    if T.self is any Numeric.Type { throw FieldError(path: path, message: "has a type the control interface does not use (\(T.self))") }
    return try T(from: ValueDecoder(value: value, path: path))
}

private struct ValueDecoder: Decoder {
    let value: JSON
    let path: String
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw FieldError(path: path.isEmpty ? "params" : path, message: "must be an object, got \(value.typeName)")
        }
        // Keys that list themselves (CaseIterable) are the object's only allowed members.
        if let known = Key.self as? any CaseIterable.Type {
            let names = Set((known.allCases as any Collection).map { ($0 as! Key).stringValue })
            if let unknown = members.keys.sorted().first(where: { !names.contains($0) }) {
                throw FieldError(path: join(path, unknown), message: "is not a known field; expected one of \(names.sorted().joined(separator: ", "))")
            }
        }
        return KeyedDecodingContainer(KeyedValues<Key>(members: members, path: path))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw FieldError(path: path.isEmpty ? "params" : path, message: "must be an array, got \(value.typeName)") }
        return UnkeyedValues(items: items, path: path)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValue(value: value, path: path) }
}

private struct KeyedValues<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSON]
    let path: String
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }
    func decodeNil(forKey key: Key) throws -> Bool { members[key.stringValue].map(\.isNull) ?? true }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(type as Bool.Type, generic: key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(type as String.Type, generic: key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(type as Double.Type, generic: key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(type as Float.Type, generic: key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(type as Int.Type, generic: key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(type as Int8.Type, generic: key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(type as Int16.Type, generic: key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(type as Int32.Type, generic: key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(type as Int64.Type, generic: key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(type as UInt.Type, generic: key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(type as UInt8.Type, generic: key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(type as UInt16.Type, generic: key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(type as UInt32.Type, generic: key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(type as UInt64.Type, generic: key) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decode(type, generic: key) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = members[key.stringValue], !v.isNull else { return nil }
        return try decodeValue(type, v, path: join(path, key.stringValue))
    }

    private func decode<T: Decodable>(_ type: T.Type, generic key: Key) throws -> T {
        let fieldPath = join(path, key.stringValue)
        guard let v = members[key.stringValue], !v.isNull else {
            if let choice = T.self as? any ParamChoice.Type {
                throw FieldError(path: fieldPath, message: "is required; one of \(choice.choiceNames.joined(separator: ", "))")
            }
            throw FieldError(path: fieldPath, message: "is required")
        }
        return try decodeValue(type, v, path: fieldPath)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: members[key.stringValue] ?? .null, path: join(path, key.stringValue)).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: members[key.stringValue] ?? .null, path: join(path, key.stringValue)).unkeyedContainer()
    }
    func superDecoder() throws -> any Decoder { ValueDecoder(value: .object(members), path: path) }
    func superDecoder(forKey key: Key) throws -> any Decoder { ValueDecoder(value: members[key.stringValue] ?? .null, path: join(path, key.stringValue)) }
}

private struct UnkeyedValues: UnkeyedDecodingContainer {
    let items: [JSON]
    let path: String
    var currentIndex = 0
    init(items: [JSON], path: String) { self.items = items; self.path = path }
    var codingPath: [any CodingKey] { [] }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }
    private var itemPath: String { "\(path)[\(currentIndex)]" }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex].isNull else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try decodeGeneric(type) }
    mutating func decode(_ type: String.Type) throws -> String { try decodeGeneric(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try decodeGeneric(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try decodeGeneric(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try decodeGeneric(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try decodeGeneric(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try decodeGeneric(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try decodeGeneric(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try decodeGeneric(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try decodeGeneric(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeGeneric(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeGeneric(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeGeneric(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeGeneric(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeGeneric(type) }

    private mutating func decodeGeneric<T: Decodable>(_ type: T.Type) throws -> T {
        guard !isAtEnd else { throw FieldError(path: itemPath, message: "is missing") }
        let v = try decodeValue(type, items[currentIndex], path: itemPath)
        currentIndex += 1
        return v
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        defer { currentIndex += 1 }
        return try ValueDecoder(value: isAtEnd ? .null : items[currentIndex], path: itemPath).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        defer { currentIndex += 1 }
        return try ValueDecoder(value: isAtEnd ? .null : items[currentIndex], path: itemPath).unkeyedContainer()
    }
    mutating func superDecoder() throws -> any Decoder {
        defer { currentIndex += 1 }
        return ValueDecoder(value: isAtEnd ? .null : items[currentIndex], path: itemPath)
    }
}

private struct SingleValue: SingleValueDecodingContainer {
    let value: JSON
    let path: String
    var codingPath: [any CodingKey] { [] }
    func decodeNil() -> Bool { value.isNull }
    func decode(_ type: Bool.Type) throws -> Bool { try decodeValue(type, value, path: path) }
    func decode(_ type: String.Type) throws -> String { try decodeValue(type, value, path: path) }
    func decode(_ type: Double.Type) throws -> Double { try decodeValue(type, value, path: path) }
    func decode(_ type: Float.Type) throws -> Float { try decodeValue(type, value, path: path) }
    func decode(_ type: Int.Type) throws -> Int { try decodeValue(type, value, path: path) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decodeValue(type, value, path: path) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decodeValue(type, value, path: path) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decodeValue(type, value, path: path) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decodeValue(type, value, path: path) }
    func decode(_ type: UInt.Type) throws -> UInt { try decodeValue(type, value, path: path) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeValue(type, value, path: path) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeValue(type, value, path: path) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeValue(type, value, path: path) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeValue(type, value, path: path) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeValue(type, value, path: path) }
}

/// A JSON value decodes as itself (``JSONValueDecoder`` hands it over directly; other decoders go member by member).
extension JSON: Decodable {
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            var members: [String: JSON] = [:]
            for key in keyed.allKeys { members[key.stringValue] = try keyed.decode(JSON.self, forKey: key) }
            self = .object(members)
        } else if var unkeyed = try? decoder.unkeyedContainer() {
            var items: [JSON] = []
            while !unkeyed.isAtEnd { items.append(try unkeyed.decode(JSON.self)) }
            self = .array(items)
        } else {
            let single = try decoder.singleValueContainer()
            if single.decodeNil() { self = .null }
            else if let b = try? single.decode(Bool.self) { self = .bool(b) }
            else if let d = try? single.decode(Double.self) { self = .number(d) }
            else { self = .string(try single.decode(String.self)) }
        }
    }
}
