import Testing
@testable import JSONCore

@Suite struct JSONParserTests {
    @Test(arguments: [
        (#"{"a":1,"b":[true,false,null],"c":"x\u00e9\n"}"#, JSON.object(["a": 1, "b": [true, false, nil], "c": "xé\n"])),
        (#"  [1.5e2, -0, 0.25]  "#, JSON.array([150, 0, 0.25])),
        (#""\ud83d\ude00""#, JSON.string("😀")),
    ])
    func parsesValidJSON(text: String, expected: JSON) throws {
        #expect(try JSONParser.parse(text) == expected)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":}", "tru", "01", "1.", "-", "\"abc", "{\"a\":1}x", "\"\\ud83d\"", "\"\\x\"",
        "{\"a\":1,\"a\":2}", "1e400", "\"\u{01}\"", "[1 2]", "{1:2}",
    ])
    func rejectsMalformedJSON(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
    }

    @Test func enforcesDepthAndLengthLimits() throws {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect { try JSONParser.parse(deep) } throws: { ($0 as? JSONParseError)?.isLimit == true }
        #expect(try JSONParser.parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)) != .null)
        let long = "[" + Array(repeating: "1", count: 11).joined(separator: ",") + "]"
        #expect(throws: JSONParseError.self) { try JSONParser.parse(long, limits: JSONLimits(maxContainerLength: 10)) }
    }

    @Test func serialisesCanonically() throws {
        let value = try JSONParser.parse(#"{"b": 2.5, "a": [1, "q\"\\"], "c": {"z": null, "y": 1e3}}"#)
        #expect(value.serialized() == #"{"a":[1,"q\"\\"],"b":2.5,"c":{"y":1000,"z":null}}"#)
        #expect(try JSONParser.parse(value.serialized()) == value)
    }
}

/// RFC 7386 appendix A test cases.
@Suite struct MergePatchTests {
    @Test(arguments: [
        (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
        (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
        (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
        (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
        (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
        (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
        (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
        (#"{"a":"foo"}"#, "null", "null"),
        (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
        (#"{"e":null}"#, #"{"a":1}"#, #"{"a":1,"e":null}"#),
        (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
        (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
    ])
    func rfc7386(target: String, patch: String, expected: String) throws {
        let result = try JSONParser.parse(target).merging(patch: JSONParser.parse(patch))
        #expect(result == (try JSONParser.parse(expected)))
    }

    @Test func touchedPathsNameLeaves() throws {
        let patch = try JSONParser.parse(#"{"design":{"alpha":0.01,"mde":{"absolute":0.03}},"name":"x"}"#)
        #expect(JSON.touchedPaths(ofPatch: patch) == ["design.alpha", "design.mde.absolute", "name"])
    }
}

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func knownVectors(input: String, digest: String) {
        #expect(SHA256.hex(input) == digest)
    }

    @Test func millionAs() {
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

/// Large arrays (a batch of requests) are parsed on every core: the value and, for broken input, the error
/// (reason and byte offset) must be exactly those of the sequential parse.
@Suite struct ParallelArrayParseTests {
    func parse(_ text: String, parallel: Bool) -> Result<JSON, JSONParseError> {
        var text = text
        return text.withUTF8 { buffer in Result { () throws(JSONParseError) in try JSONParser.parse(buffer, limits: JSONLimits(), parallel: parallel) } }
    }

    func element(_ i: Int) -> String {
        switch i % 5 {
        case 0: return #"{"metric":"continuous","control":{"n":\#(1000 + i),"mean":10.25,"variance":4.5},"label":"a,b]}[{\"\\"}"#
        case 1: return #"[\#(i), -0.5e3, true, null, "x\u00e9", {"k": [1, {"z": []}]}]"#
        case 2: return #" "string with , and ] and \" inside" "#
        case 3: return "\(Double(i) / 7)"
        default: return #"{"nested":{"deeper":[[],[{}],"]"]}}"#
        }
    }

    @Test func largeArraysParseAsSequentially() throws {
        let items = (0..<3000).map(element)
        let text = "[" + items.joined(separator: ",") + "]"
        let parallel = try parse(text, parallel: true).get()
        #expect(parallel == (try parse(text, parallel: false).get()))
        #expect(parallel.arrayValue?.count == 3000)
        let wrapped = #"{"jsonrpc":"2.0","params":{"comparisons":"# + text + "}}"
        #expect(try parse(wrapped, parallel: true).get() == (try parse(wrapped, parallel: false).get()))
    }

    @Test func brokenLargeArraysFailAsSequentially() {
        var rng = SystemRandomNumberGenerator()
        let defects = ["1 2", "", "tru", "\"abc", "{\"a\":1,\"a\":2}", "[1,]", "\"\\x\"", "{\"a\" 1}", "}", "]", "[[", "1e400", "\"\u{01}\"", "01", "{\"k\":\"v\",}"]
        for defect in defects {
            for _ in 0..<4 {
                var items = (0..<2000).map(element)
                items[Int.random(in: 0..<items.count, using: &rng)] = defect
                if Bool.random(using: &rng) { items[Int.random(in: 0..<items.count, using: &rng)] = defect }
                for text in ["[" + items.joined(separator: ",") + "]", "[" + items.joined(separator: ",") + ",]", "[" + items.joined(separator: ",")] {
                    let parallel = parse(text, parallel: true), sequential = parse(text, parallel: false)
                    switch (parallel, sequential) {
                    case (.failure(let a), .failure(let b)): #expect(a == b, "defect \(defect)")
                    default: Issue.record("defect \(defect): \(parallel) vs \(sequential)")
                    }
                }
            }
        }
    }
}

/// Decoding `Decodable` types from JSON values, and reading their declaration back as JSON Schema.
@Suite struct ValueDecoderTests {
    struct Inner: Decodable, Equatable { let n: Int; let tags: [String]? }
    struct Outer: Decodable, Equatable { let name: String; let ratio: Double?; let inner: Inner; let raw: JSON?; let flags: [Bool] }

    @Test func decodesWithPathsInEveryRefusal() throws {
        let ok = try JSONValueDecoder.decode(Outer.self, from: ["name": "a", "inner": ["n": 3], "raw": ["x": [1]], "flags": [true], "ratio": .null])
        #expect(ok == Outer(name: "a", ratio: nil, inner: Inner(n: 3, tags: nil), raw: ["x": [1]], flags: [true]))
        #expect(throws: FieldError(path: "inner.n", message: "must be an integer, got number")) {
            _ = try JSONValueDecoder.decode(Outer.self, from: ["name": "a", "inner": ["n": 1.5], "flags": []])
        }
        #expect(throws: FieldError(path: "inner.tags[0]", message: "must be a string, got null")) {
            _ = try JSONValueDecoder.decode(Outer.self, from: ["name": "a", "inner": ["n": 1, "tags": [.null]], "flags": []])
        }
        #expect(throws: FieldError(path: "name", message: "is required")) {
            _ = try JSONValueDecoder.decode(Outer.self, from: ["inner": ["n": 1], "flags": []])
        }
        #expect(throws: FieldError(path: "params", message: "must be an object, got array")) { _ = try JSONValueDecoder.decode(Outer.self, from: [1]) }
    }

    @Test func theSchemaIsTheDeclaration() {
        let fields = SchemaProbe.fields(of: Outer.self)
        #expect(fields.map(\.name) == ["name", "ratio", "inner", "raw", "flags"])
        #expect(fields.map(\.required) == [true, false, true, false, true])
        #expect(fields[2].schema == ["type": "object", "properties": ["n": ["type": "integer"], "tags": ["type": "array", "items": ["type": "string"]]],
                                     "required": ["n"], "additionalProperties": false])
        #expect(fields[4].schema == ["type": "array", "items": ["type": "boolean"]])
    }
}
