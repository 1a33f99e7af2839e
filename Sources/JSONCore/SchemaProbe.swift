/// One member a `Decodable` type reads, as ``SchemaProbe`` found it.
public struct FieldSchema: Sendable {
    public let name: String
    public let required: Bool
    public let schema: JSON
}

/// Reads a `Decodable` type's declaration back as JSON Schema by decoding it from nothing: every member it asks
/// for is recorded with its type and whether it is optional (`decodeIfPresent`), nested types and arrays included.
/// The control interface describes its params this way, so the schema and the decoder cannot disagree.
/// Types whose `init(from:)` validates must validate after decoding, not in it (the probe hands out placeholders).
public enum SchemaProbe {
    /// The members `type` decodes, in the order it decodes them.
    public static func fields<T: Decodable>(of type: T.Type) -> [FieldSchema] {
        let recorder = Recorder()
        _ = try? T(from: ProbeDecoder(recorder: recorder))
        return recorder.fields
    }

    /// `type` as one JSON Schema.
    public static func schema<T: Decodable>(of type: T.Type) -> JSON { probe(type).schema }

    fileprivate static func probe<T: Decodable>(_ type: T.Type) -> (value: T?, schema: JSON) {
        if T.self == JSON.self { return (JSON.null as? T, [:]) }
        if T.self == String.self { return ("" as? T, ["type": "string"]) }
        if T.self == Int.self { return (0 as? T, ["type": "integer"]) }
        if T.self == Double.self { return (0.0 as? T, ["type": "number"]) }
        if T.self == Bool.self { return (false as? T, ["type": "boolean"]) }
        if let choice = T.self as? any ParamChoice.Type {
            return (choice.firstCase as? T, ["type": "string", "enum": .array(choice.choiceNames.map(JSON.string))])
        }
        let recorder = Recorder()
        let value = try? T(from: ProbeDecoder(recorder: recorder))
        return (value, recorder.schema)
    }
}

private final class Recorder {
    var fields: [FieldSchema] = []
    var arrayItems: JSON?
    var singleSchema: JSON?
    var keyed = false

    var schema: JSON {
        if keyed {
            var properties: [String: JSON] = [:]
            for f in fields { properties[f.name] = f.schema }
            return ["type": "object", "properties": .object(properties), "required": .array(fields.filter(\.required).map { .string($0.name) }),
                    "additionalProperties": false]
        }
        if let arrayItems { return ["type": "array", "items": arrayItems] }
        return singleSchema ?? [:]
    }

    func record<T: Decodable>(_ type: T.Type, name: String, required: Bool) -> T? {
        let (value, schema) = SchemaProbe.probe(type)
        fields.append(FieldSchema(name: name, required: required, schema: schema))
        return value
    }

    func single<T: Decodable>(_ type: T.Type) -> T {
        let (value, schema) = SchemaProbe.probe(type)
        singleSchema = schema
        return value!
    }
}

private struct ProbeDecoder: Decoder {
    let recorder: Recorder
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        recorder.keyed = true
        return KeyedDecodingContainer(ProbeKeyed<Key>(recorder: recorder))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { ProbeUnkeyed(recorder: recorder) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { ProbeSingle(recorder: recorder) }
}

private struct ProbeFailed: Error {}

private struct ProbeKeyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let recorder: Recorder
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { [] }
    func contains(_ key: Key) -> Bool { true }
    func decodeNil(forKey key: Key) throws -> Bool { false }
    private func required<T: Decodable>(_ type: T.Type, _ key: Key) -> T { recorder.record(type, name: key.stringValue, required: true)! }
    private func optional<T: Decodable>(_ type: T.Type, _ key: Key) -> T? {
        _ = recorder.record(type, name: key.stringValue, required: false)
        return nil
    }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { required(type, key) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { optional(type, key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { required(type, key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { optional(type, key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { required(type, key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { optional(type, key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { required(type, key) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { optional(type, key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { required(type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { optional(type, key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { required(type, key) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { optional(type, key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { required(type, key) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { optional(type, key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { required(type, key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { optional(type, key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { required(type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { optional(type, key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { required(type, key) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { optional(type, key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { required(type, key) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { optional(type, key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { required(type, key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { optional(type, key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { required(type, key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { optional(type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { required(type, key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { optional(type, key) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let value = recorder.record(type, name: key.stringValue, required: true) else { throw ProbeFailed() }
        return value
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        _ = recorder.record(type, name: key.stringValue, required: false)
        return nil
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> { throw ProbeFailed() }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { throw ProbeFailed() }
    func superDecoder() throws -> any Decoder { throw ProbeFailed() }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw ProbeFailed() }
}

private struct ProbeUnkeyed: UnkeyedDecodingContainer {
    let recorder: Recorder
    var currentIndex = 0
    init(recorder: Recorder) { self.recorder = recorder }
    var codingPath: [any CodingKey] { [] }
    var count: Int? { nil }
    var isAtEnd: Bool { currentIndex > 0 }
    mutating func decodeNil() throws -> Bool { false }
    private mutating func item<T: Decodable>(_ type: T.Type) -> T {
        let (value, schema) = SchemaProbe.probe(type)
        recorder.arrayItems = schema
        currentIndex += 1
        return value!
    }
    mutating func decode(_ type: Bool.Type) throws -> Bool { item(type) }
    mutating func decode(_ type: String.Type) throws -> String { item(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { item(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { item(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { item(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { item(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { item(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { item(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { item(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { item(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { item(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { item(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { item(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { item(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, schema) = SchemaProbe.probe(type)
        recorder.arrayItems = schema
        currentIndex += 1
        guard let value else { throw ProbeFailed() }
        return value
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> { throw ProbeFailed() }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { throw ProbeFailed() }
    mutating func superDecoder() throws -> any Decoder { throw ProbeFailed() }
}

private struct ProbeSingle: SingleValueDecodingContainer {
    let recorder: Recorder
    var codingPath: [any CodingKey] { [] }
    func decodeNil() -> Bool { false }
    func decode(_ type: Bool.Type) throws -> Bool { recorder.single(type) }
    func decode(_ type: String.Type) throws -> String { recorder.single(type) }
    func decode(_ type: Double.Type) throws -> Double { recorder.single(type) }
    func decode(_ type: Float.Type) throws -> Float { recorder.single(type) }
    func decode(_ type: Int.Type) throws -> Int { recorder.single(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { recorder.single(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { recorder.single(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { recorder.single(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { recorder.single(type) }
    func decode(_ type: UInt.Type) throws -> UInt { recorder.single(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { recorder.single(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { recorder.single(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { recorder.single(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { recorder.single(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, schema) = SchemaProbe.probe(type)
        recorder.singleSchema = schema
        guard let value else { throw ProbeFailed() }
        return value
    }
}
