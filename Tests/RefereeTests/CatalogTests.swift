import Foundation
import Testing
import TestSupport
import JSONCore
@testable import API
@testable import Service

/// The method catalog is the one list: the README's table, `Docs/openrpc.json` and `rpc.discover` follow it.
@Suite struct CatalogTests {
    /// The README's method table: names (a row may list several, `a` / `b`) and their top-level params.
    static func readmeTable() throws -> [(names: [String], params: Set<String>)] {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "### Methods").dropFirst().first?.components(separatedBy: "\n### ").first)
        var rows: [(names: [String], params: Set<String>)] = []
        for line in section.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.replacingOccurrences(of: "\\|", with: "¦").split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2 else { continue }
            let names = cells[0].split(separator: "/").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " `")) }
            rows.append((names, Self.topLevelNames(cells[1])))
        }
        return rows
    }

    /// `{unit, layer ¦ key, attributes?, window?: {start, end}}` → unit, layer, key, attributes, window.
    static func topLevelNames(_ cell: String) -> Set<String> {
        let text = cell.replacingOccurrences(of: "`", with: "")
        guard let open = text.firstIndex(of: "{") else { return [] }
        var depth = 0, current = "", parts: [String] = []
        for ch in text[open...] {
            switch ch {
            case "{", "[": depth += 1; if depth > 1 { current.append(ch) }
            case "}", "]": depth -= 1; if depth >= 1 { current.append(ch) }
            case "," where depth == 1: parts.append(current); current = ""
            default: if depth >= 1 { current.append(ch) }
            }
            if depth == 0 { break }
        }
        parts.append(current)
        var names = Set<String>()
        for part in parts {
            let head = part.split(separator: ":").first.map(String.init) ?? part
            for alternative in head.split(separator: "¦") {
                let name = alternative.trimmingCharacters(in: CharacterSet(charactersIn: " ?"))
                if !name.isEmpty { names.insert(name) }
            }
        }
        return names
    }

    @Test func theReadmeTableIsTheCatalog() throws {
        let rows = try Self.readmeTable()
        let documented = rows.flatMap(\.names)
        let catalog = Catalog.methods.map(\.name)
        #expect(Set(documented) == Set(catalog), "README only: \(Set(documented).subtracting(catalog)); catalog only: \(Set(catalog).subtracting(documented))")
        #expect(documented.count == Set(documented).count, "a method is listed twice")
        for row in rows {
            let declared = Set(row.names.compactMap { Catalog.byName[$0] }.flatMap { $0.params.map(\.name) })
            #expect(row.params == declared, "\(row.names): README \(row.params.sorted()), catalog \(declared.sorted())")
        }
    }

    @Test func docsOpenRPCIsWhatTheDaemonAnswersAndValidates() throws {
        let c = try TestClient()
        let discovered = try c.ok("rpc.discover")
        let file = repositoryRoot.appendingPathComponent("Docs/openrpc.json")
        let committed = try JSONParser.parse(try String(contentsOf: file, encoding: .utf8))
        #expect(committed == discovered, "Docs/openrpc.json is stale: regenerate it with Scripts/codegen/openrpc")
        #expect(discovered["methods"]?.arrayValue?.count == Catalog.methods.count)
        // The OpenRPC meta-schema (Draft 7), and every schema inside checked as a Draft 7 schema.
        let script = """
        import json, sys, jsonschema
        meta = json.load(open(sys.argv[1])); doc = json.load(open(sys.argv[2]))
        jsonschema.Draft7Validator(meta).validate(doc)
        for m in doc["methods"]:
            for p in m["params"]: jsonschema.Draft7Validator.check_schema(p["schema"])
            jsonschema.Draft7Validator.check_schema(m["result"]["schema"])
        bad = dict(doc); bad["methods"] = [{"params": []}]
        assert not jsonschema.Draft7Validator(meta).is_valid(bad), "the meta-schema accepts a method without a name"
        print("ok")
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, repositoryRoot.appendingPathComponent("Tests/RefereeTests/Reference/openrpc/meta-schema.json").path, file.path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("ok"))
    }

    /// The CLI is a client of the same dispatcher: every method that needs a role refuses a principal without one
    /// with 1004 from `referee call` too (exit 1), on a store with grants.
    @Test func theCLIRefusesCallersWithoutTheRoleForEveryMethod() throws {
        let dir = TemporaryDirectory()
        let store = dir.path("enforced.sqlite")
        do {
            let c = try TestClient(principal: "root", storePath: store)
            try c.ok("access.grant", ["principal": "someone", "role": "ci"])
        }
        for method in Catalog.methods where method.permission != .public && method.name != "shutdown" {
            let r = try runReferee(["call", method.name, "{}", "--json", "--actor", "stranger", "--store", store,
                                    "--protocols", repositoryRoot.appendingPathComponent("Protocols").path])
            #expect(r.status == 1, "\(method.name): \(r.stdout) \(r.stderr)")
            #expect(try JSONParser.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["code"] == 1004, "\(method.name): \(r.stdout)")
        }
    }

    @Test func everyMethodRefusesUnknownMembersAndCallersWithoutTheRole() throws {
        let c = try TestClient(principal: "root")
        try c.ok("access.grant", ["principal": "someone", "role": "ci"])
        for method in Catalog.methods {
            let e = try #require(c.error(method.name, ["surely_not_a_field": 1], as: "root"), "\(method.name)")
            #expect(e.code == -32602 && e.json["data"]?["path"] == "surely_not_a_field", "\(method.name): \(e.message)")
            // A principal with no role is refused everything but the public methods, before its params are read.
            // (shutdown over stdio trusts its caller, as stdio mode does; over the socket it is refused to all.)
            if method.permission != .public && method.name != "shutdown" {
                #expect(c.error(method.name, [:], as: "stranger")?.code == 1004, "\(method.name)")
            } else if method.permission == .public {
                #expect(c.call(method.name, [:], as: "stranger").isSuccess, "\(method.name)")
            }
        }
    }

    @Test func wrongTypesAreRefusedNamingTheField() throws {
        let c = try TestClient(principal: "root")
        try c.register(["key": "extreme"])
        try c.advance("extreme", to: ["review", "approved", "running"])
        for (name, template) in ExtremeNumberPropertyTests.templates() {
            guard let method = Catalog.byName[name], case .object(let members) = template else { continue }
            for param in method.params where members[param.name] != nil {
                let wrong: JSON = param.schema["type"] == "string" ? 12 : "not-this-type"
                var mutated = members
                mutated[param.name] = wrong
                if name == "experiment.check" {
                    // A validator: a document of the wrong shape is a violation naming it, not an error.
                    let r = try c.ok(name, .object(mutated))
                    #expect(r["violations"]?.arrayValue?.contains { $0["path"]?.stringValue == param.name } == true, "\(name).\(param.name)")
                    continue
                }
                guard let e = c.error(name, .object(mutated)) else { continue }
                if e.code == 1001 { #expect(e.paths.contains(param.name), "\(name).\(param.name)"); continue }
                #expect(e.code == -32602 || e.code == 1009, "\(name).\(param.name): \(e.message)")
                #expect(e.json["data"]?["path"]?.stringValue?.hasPrefix(param.name) == true || e.json["data"]?["field"]?.stringValue?.hasPrefix(param.name) == true,
                        "\(name).\(param.name): \(e.json.serialized().prefix(300))")
            }
        }
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
