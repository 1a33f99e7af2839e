import Testing
import JSONCore
@testable import API

/// The catalog on its own: every method declared once, documented, and decoded as it is described.
@Suite struct CatalogDeclarationTests {
    @Test func namesAreUniqueAndEveryMemberIsDocumented() {
        #expect(Set(Catalog.methods.map(\.name)).count == Catalog.methods.count)
        for m in Catalog.methods {
            #expect(!m.summary.isEmpty, "\(m.name)")
            for p in m.params { #expect(!p.summary.isEmpty && p.schema != .null, "\(m.name).\(p.name)") }
        }
    }

    @Test func requiredMembersAreRequiredByTheDecoderAndOptionalOnesAreNot() throws {
        // Every params type, decoded from nothing: exactly its required members are reported missing, in order.
        for m in Catalog.methods {
            let required = m.params.filter(\.required).map(\.name)
            func decodeEmpty<M: MethodSpec>(_ type: M.Type) -> String? {
                do throws(FieldError) { _ = try JSONValueDecoder.decode(M.Params.self, from: [:]); return nil } catch { return error.path }
            }
            #expect(decodeEmpty(m.type) == required.first, "\(m.name)")
        }
    }

    @Test func choicesAreDescribedAsEnumsAndRefusedWithTheList() throws {
        let grant = try #require(Catalog.byName["access.grant"])
        #expect(grant.params.first { $0.name == "role" }?.schema["enum"] == ["admin", "pm", "approver", "ci", "analyst"])
        #expect(throws: FieldError(path: "role", message: "\"root\" is not one of admin, pm, approver, ci, analyst")) {
            _ = try JSONValueDecoder.decode(AccessGrant.Params.self, from: ["principal": "x", "role": "root"])
        }
        #expect(throws: FieldError(path: "window.start", message: "must be a string, got number")) {
            _ = try JSONValueDecoder.decode(ConflictsScan.Params.self, from: ["window": ["start": 1, "end": "x"]])
        }
        #expect(throws: FieldError(path: "window.stop", message: "is not a known field; expected one of end, start")) {
            _ = try JSONValueDecoder.decode(ConflictsScan.Params.self, from: ["window": ["start": "a", "end": "b", "stop": "c"]])
        }
        #expect(throws: FieldError(path: "units[1]", message: "must be a string, got boolean")) {
            _ = try JSONValueDecoder.decode(AssignBulk.Params.self, from: ["units": ["a", true], "layer": "l"])
        }
    }
}
