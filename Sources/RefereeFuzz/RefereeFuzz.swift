// The method handlers under libFuzzer: every input is one line of the control interface (a request or a batch),
// sent through the same dispatcher, authorization and handlers as the daemon, on an in-memory store that holds
// a registered and a running experiment. Any crash, trap or sanitizer report is a bug: every line must end in a
// response or a structured error. Built by `Scripts/dev/fuzz handlers` with `-sanitize=fuzzer -D FUZZING`; a plain
// `swift build` makes a replay tool instead: `referee-fuzz FILE...` runs each file's lines and prints the answers.
import RPC
import Service
import JSONCore
#if canImport(Glibc)
import Glibc
#endif

/// The service stays alive with the dispatcher: its handlers hold it unowned, as the daemon's do.
let harness: (Dispatcher, RPCContext, RefereeService) = {
    let service = try! RefereeService.open(storePath: ":memory:", protocolsDirectory: nil)
    let dispatcher = Dispatcher(limits: RPCLimits(maxLineBytes: 1 << 20, maxBatch: 50, json: JSONLimits(maxDepth: 32, maxContainerLength: 10_000, maxStringBytes: 1 << 16)))
    service.install(on: dispatcher)
    let context = RPCContext(principal: "fuzz")
    let setup = [
        #"{"jsonrpc":"2.0","id":1,"method":"experiment.register","params":{"experiment":{"key":"fz","name":"Fuzz","owner":"pm.alice","hypothesis":"h","protocol":"standard","layer":"checkout","parameters":["p"],"unit":"user_id","traffic":0.5,"variants":[{"key":"control","weight":0.5,"control":true},{"key":"b","weight":0.5}],"targeting":{"country":{"$in":["US"]},"email":{"$regex":"^(a+)+$"}},"schedule":{"start":"2026-12-01T00:00:00Z","end":"2026-12-29T00:00:00Z"},"metrics":{"primary":"checkout_conversion","guardrails":["crash_rate"]},"design":{"alpha":0.05,"power":0.8,"mde":{"absolute":0.02},"baseline":{"rate":0.12},"expected_daily_units":20000}}}}"#,
        #"{"jsonrpc":"2.0","id":2,"method":"experiment.transition","params":{"key":"fz","version":1,"to":"review"}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"experiment.transition","params":{"key":"fz","version":2,"to":"approved"}}"#,
        #"{"jsonrpc":"2.0","id":4,"method":"experiment.transition","params":{"key":"fz","version":3,"to":"running"}}"#,
        #"{"jsonrpc":"2.0","id":5,"method":"results.record","params":{"key":"fz","metric":"checkout_conversion","variant":"control","stats":{"n":1000,"successes":120}}}"#,
    ]
    for line in setup { _ = handle(Array(line.utf8), dispatcher, context) }
    return (dispatcher, context, service)
}()

func handle(_ bytes: [UInt8], _ dispatcher: Dispatcher, _ context: RPCContext) -> [UInt8]? {
    bytes.withUnsafeBufferPointer { dispatcher.handle(line: $0, context: context) }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 { fuzzOne(data, size) }

func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let (dispatcher, context, _) = harness
    if let reply = handle(Array(UnsafeBufferPointer(start: data, count: size)), dispatcher, context) {
        // Every reply is one line of valid JSON.
        precondition(!reply.contains(0x0A) && (try? JSONParser.parse(reply)) != nil)
    }
    return 0
}

/// libFuzzer's driver, called from our own entry point (SwiftPM gives an executable its `main`).
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@main struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
    }
}
#else
import Foundation

@main struct Replay {
    static func main() {
        let (dispatcher, context, _) = harness
        for path in CommandLine.arguments.dropFirst() {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                if let reply = handle(Array(line.utf8), dispatcher, context) { print(String(decoding: reply, as: UTF8.self)) }
            }
        }
    }
}
#endif
