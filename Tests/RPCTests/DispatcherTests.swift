import Foundation
import Testing
import JSONCore
import RPC

/// JSON-RPC 2.0 framing without any method of Referee: envelopes, ids, batches, notifications, limits.
@Suite struct DispatcherTests {
    func dispatcher(maxBatch: Int = 1000) -> Dispatcher {
        let d = Dispatcher(limits: RPCLimits(maxBatch: maxBatch))
        d.register("echo") { params, _ in params ?? .null }
        d.register("fail") { _, _ throws(RPCError) in throw RPCError(code: RPCErrorCode(rawValue: 1234), message: "no", data: ["reason": "test"]) }
        return d
    }

    func line(_ d: Dispatcher, _ text: String) -> JSON? {
        var bytes = Array(text.utf8)
        let reply = bytes.withUnsafeMutableBufferPointer { d.handle(line: UnsafeBufferPointer($0), context: RPCContext(principal: "t")) }
        return reply.map { try! JSONParser.parse(String(decoding: $0, as: UTF8.self)) }
    }

    @Test func resultsCarryTheRequestsID() {
        let d = dispatcher()
        #expect(line(d, #"{"jsonrpc":"2.0","id":"x-1","method":"echo","params":{"a":[1,2]}}"#) == ["jsonrpc": "2.0", "id": "x-1", "result": ["a": [1, 2]]])
        #expect(line(d, #"{"jsonrpc":"2.0","id":7,"method":"fail"}"#)?["error"]?["code"] == 1234)
    }

    @Test func malformedInputGetsTheStandardCodes() {
        let d = dispatcher()
        #expect(line(d, "{not json")?["error"]?["code"] == -32700)
        #expect(line(d, #"{"jsonrpc":"1.0","id":1,"method":"echo"}"#)?["error"]?["code"] == -32600)
        #expect(line(d, #"{"jsonrpc":"2.0","id":{"o":1},"method":"echo"}"#)?["error"]?["code"] == -32600)
        let unknown = line(d, #"{"jsonrpc":"2.0","id":1,"method":"ech0"}"#)
        #expect(unknown?["error"]?["code"] == -32601 && unknown?["id"] == 1)
        #expect(line(d, "[]")?["error"]?["code"] == -32600)
    }

    @Test func notificationsGetNoReplyAndBatchesAnswerInOrder() {
        let d = dispatcher()
        #expect(line(d, #"{"jsonrpc":"2.0","method":"echo","params":[1]}"#) == nil)
        let batch = line(d, #"[{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","id":2,"method":"fail"}]"#)
        #expect(batch?.arrayValue?.map { $0["id"] } == [1, 2])
        #expect(line(dispatcher(maxBatch: 2), #"[{"jsonrpc":"2.0","id":1,"method":"echo"},{"jsonrpc":"2.0","id":2,"method":"echo"},{"jsonrpc":"2.0","id":3,"method":"echo"}]"#)?["error"]?["data"]?["limit"] == "max_batch")
    }
}
