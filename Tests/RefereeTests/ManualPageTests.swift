import Foundation
import Testing
import TestSupport
import JSONCore

/// `Docs/referee.1` (swift-argument-parser's manual plugin, `Scripts/codegen/man-page`) stays current: every
/// command and every long option of the CLI appears in it. Completion scripts come from the same definitions.
@Suite struct ManualPageTests {
    @Test func theManualPageHasEveryCommandAndOption() throws {
        let page = try String(contentsOf: repositoryRoot.appendingPathComponent("Docs/referee.1"), encoding: .utf8)
        let dump = try runReferee(["--experimental-dump-help"])
        #expect(dump.status == 0)
        let help = try JSONParser.parse(dump.stdout)
        var missing: [String] = []
        for command in help["command"]?["subcommands"]?.arrayValue ?? [] {
            guard let name = command["commandName"]?.stringValue, name != "help" else { continue }
            if !page.contains(".It Em \(name)") { missing.append("command \(name)") }
            for argument in command["arguments"]?.arrayValue ?? [] {
                for n in argument["names"]?.arrayValue ?? [] where n["kind"] == "long" {
                    let flag = n["name"]?.stringValue ?? ""
                    // `.It Fl -store` or, with a short name first, `.It Fl o , -output`.
                    if !page.contains("Fl -\(flag)") && !page.contains(", -\(flag)") { missing.append("\(name) --\(flag)") }
                }
            }
        }
        #expect(missing.isEmpty, "Docs/referee.1 is stale (run Scripts/codegen/man-page): \(missing)")
    }

    @Test func completionScriptsAreGenerated() throws {
        for shell in ["bash", "zsh", "fish"] {
            let r = try runReferee(["--generate-completion-script", shell])
            #expect(r.status == 0 && r.stdout.contains("referee"), "\(shell)")
            #expect(r.stdout.contains("transition") && r.stdout.contains("amend"), "\(shell)")
        }
    }
}
