#if canImport(Glibc)
import Glibc
#endif
public import JSONCore

/// Limits on one request line; each is configurable and each refusal is a clear error.
public struct RPCLimits: Sendable {
    public var maxLineBytes: Int
    public var maxBatch: Int
    public var json: JSONLimits
    /// The largest reply line (one response, or a whole batch): past it a reply is an error and the rest of a
    /// batch is not run.
    public var maxReplyBytes: Int

    public init(maxLineBytes: Int = 8 << 20, maxBatch: Int = 1000, json: JSONLimits = JSONLimits(), maxReplyBytes: Int = 64 << 20) {
        self.maxLineBytes = maxLineBytes
        self.maxBatch = maxBatch
        self.json = json
        self.maxReplyBytes = maxReplyBytes
    }
}

/// Who sent a request, as the transport knows it.
public struct RPCContext: Sendable {
    public enum Transport: Sendable { case stdio, socket, inProcess }

    /// The principal as established by the transport (stdio: the daemon's actor; socket: peer credentials).
    public var principal: String
    /// An identity the client claims to act for; recorded, never trusted.
    public var onBehalfOf: String?
    public var transport: Transport
    /// The operating-system user id of a socket client, from the kernel.
    public var peerUID: UInt32?
    /// When the request being answered had arrived in full, on the transport's count (``Arrivals``); nil when it did
    /// not come through a transport (the CLI, an in-process client), which is read as "arrived just now".
    public var arrival: UInt64?
    /// Per-connection state a method may set (the socket client's "on behalf of" claim).
    public let session: Session
    /// For an in-process caller (the CLI): long methods report progress (bytes, rows) and stop when asked.
    public var progress: (@Sendable (Int, Int) -> Void)?
    public var isCancelled: @Sendable () -> Bool = { false }

    public init(principal: String, onBehalfOf: String? = nil, transport: Transport = .stdio, peerUID: UInt32? = nil) {
        self.principal = principal
        self.onBehalfOf = onBehalfOf
        self.transport = transport
        self.peerUID = peerUID
        self.session = Session()
    }

    /// Mutable per-connection state; a connection's requests are answered one at a time (by one worker at a time on the
    /// socket), so it needs no lock.
    public final class Session: @unchecked Sendable {
        public var onBehalfOf: String?
        public init() {}
    }
}

public typealias RPCHandler = (_ params: JSON?, _ context: RPCContext) throws(RPCError) -> JSON

/// Routes JSON-RPC 2.0 requests to handlers by method name and frames the responses.
///
/// Knows nothing of experiments: it validates the envelope, handles batches and notifications,
/// and turns any error into a structured response.
public final class Dispatcher: @unchecked Sendable {
    private var handlers: [String: RPCHandler] = [:]
    public let limits: RPCLimits

    public init(limits: RPCLimits = RPCLimits()) {
        self.limits = limits
    }

    public func register(_ method: String, _ handler: @escaping RPCHandler) {
        handlers[method] = handler
    }

    public var methods: [String] { handlers.keys.sorted() }

    /// Handles one line of input; returns the response line (without newline) or nil when nothing is due.
    public func handle(line: UnsafeBufferPointer<UInt8>, context: RPCContext) -> [UInt8]? {
        let value: JSON
        do {
            value = try JSONParser.parse(line, limits: limits.json)
        } catch where error.isLimit {
            // Well-formed so far but over a configured limit: say which, not "parse error".
            return encode(.failure(id: .null, error: RPCError(
                code: .invalidRequest, message: "Invalid request: \(error.reason) (byte \(error.offset)); raise the limit or split the request",
                data: ["reason": "limit_exceeded", "limit": "json", "detail": .string(error.reason), "offset": JSON(error.offset)])))
        } catch {
            return encode(.failure(id: .null, error: .parseError(error.reason, offset: error.offset)))
        }
        // A JSON string holds U+0000 only as the escape `\u0000`: look for NUL only in lines that have one.
        let mayHoldNUL = Self.contains(line, Array(#"\u0000"#.utf8))
        if case .array(let batch) = value, !batch.isEmpty, batch.count <= limits.maxBatch {
            return encodeBatch(batch, line: line, context: context, checkNUL: mayHoldNUL)
        }
        guard var reply = reply(to: value, context: context, checkNUL: mayHoldNUL) else { return nil }
        reply.restoreExactIDs(from: line)
        let bytes = encode(reply)
        guard bytes.count > limits.maxReplyBytes else { return bytes }
        return encode(.failure(id: reply.id, error: replyTooLarge(bytes.count, executed: reply.succeeded)))
    }

    /// `executed`: the request ran (and any change it made is committed); only its reply is withheld.
    private func replyTooLarge(_ bytes: Int, executed: Bool) -> RPCError {
        RPCError(code: .invalidRequest,
                 message: "Invalid request: the reply of \(bytes) bytes exceeds the limit of \(limits.maxReplyBytes) bytes (--max-reply-bytes)"
                    + (executed ? "; the request ran and its changes are kept, only the reply is withheld (read the result back in smaller parts)" : "; ask for less (experiment.list pages with limit and after)"),
                 data: ["reason": "limit_exceeded", "limit": "max_reply_bytes", "max": JSON(limits.maxReplyBytes), "got": JSON(bytes), "executed": .bool(executed)])
    }

    /// A batch is answered one request at a time into the reply, so memory is one reply at a time plus the
    /// reply line; once the line passes `maxReplyBytes`, the requests left are not run.
    private func encodeBatch(_ batch: [JSON], line: UnsafeBufferPointer<UInt8>, context: RPCContext, checkNUL: Bool) -> [UInt8]? {
        var out: [UInt8] = [UInt8(ascii: "[")]
        var any = false
        var full = false
        var exactIDs: [String?]?
        for (i, message) in batch.enumerated() {
            var reply: Reply
            if full {
                // Not run; the same envelope rules as a request that is run.
                guard case .object(let envelope) = message else {
                    reply = .failure(id: .null, error: .invalidRequest("a request must be a JSON object, got \(message.typeName)"))
                    out.append(UInt8(ascii: ","))
                    reply.write(into: &out)
                    continue
                }
                guard let rawID = envelope["id"] else { continue }
                let id: JSON
                switch rawID { case .string, .number, .null: id = rawID; default: id = .null }
                reply = .failure(id: id, error: RPCError(
                    code: .invalidRequest, message: "Invalid request: not run; the batch's replies reached the limit of \(limits.maxReplyBytes) bytes (--max-reply-bytes); send it again in a later batch",
                    data: ["reason": "limit_exceeded", "limit": "max_reply_bytes", "max": JSON(limits.maxReplyBytes)]))
            } else {
                guard let r = handleSingle(message, context: context, checkNUL: checkNUL) else { continue }
                reply = r
            }
            if case .number(let d) = reply.id, !(d.rounded() == d && abs(d) < 9_007_199_254_740_992) {
                exactIDs = exactIDs ?? RawMember.texts("id", in: line)
                if let texts = exactIDs, i < texts.count, let text = texts[i] { reply = reply.with(id: .raw(text)) }
            }
            var bytes: [UInt8] = []
            reply.write(into: &bytes)
            if !full && out.count + bytes.count > limits.maxReplyBytes {
                full = true
                var refused: [UInt8] = []
                Reply.failure(id: reply.id, error: replyTooLarge(out.count + bytes.count, executed: reply.succeeded)).write(into: &refused)
                bytes = refused
            }
            if any { out.append(UInt8(ascii: ",")) }
            out += bytes
            any = true
        }
        guard any else { return nil }
        out.append(UInt8(ascii: "]"))
        return out
    }

    private static func contains(_ line: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        guard line.count >= needle.count, let base = line.baseAddress else { return false }
        var from = 0
        while from + needle.count <= line.count {
            guard let hit = memchr(base + from, Int32(needle[0]), line.count - from) else { return false }
            let at = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if at + needle.count <= line.count, (0..<needle.count).allSatisfy({ line[at + $0] == needle[$0] }) { return true }
            from = at + 1
        }
        return false
    }

    /// An error response for a line that could not even be read (e.g. oversized).
    public func errorLine(_ error: RPCError) -> [UInt8] {
        encode(.failure(id: .null, error: error))
    }

    /// Handles a request already in memory (in-process callers); nil when nothing is due.
    public func handle(message: JSON, context: RPCContext) -> JSON? {
        reply(to: message, context: context, checkNUL: true)?.json
    }

    private func reply(to message: JSON, context: RPCContext, checkNUL: Bool) -> Reply? {
        if case .array(let batch) = message {
            guard !batch.isEmpty else { return .failure(id: .null, error: .invalidRequest("empty batch")) }
            guard batch.count <= limits.maxBatch else {
                return .failure(id: .null, error: RPCError(
                    code: .invalidRequest,
                    message: "Invalid request: batch of \(batch.count) requests exceeds the limit of \(limits.maxBatch); split it",
                    data: ["reason": "limit_exceeded", "limit": "max_batch", "max": JSON(limits.maxBatch), "got": JSON(batch.count)]))
            }
            let replies = batch.compactMap { handleSingle($0, context: context, checkNUL: checkNUL) }
            return replies.isEmpty ? nil : .batch(replies)
        }
        return handleSingle(message, context: context, checkNUL: checkNUL)
    }

    private func handleSingle(_ message: JSON, context: RPCContext, checkNUL: Bool) -> Reply? {
        guard case .object(let envelope) = message else {
            return .failure(id: .null, error: .invalidRequest("a request must be a JSON object, got \(message.typeName)"))
        }
        let id = envelope["id"]
        if let id {
            switch id {
            case .string, .number, .null: break
            default: return .failure(id: .null, error: .invalidRequest("id must be a string, a number or null, got \(id.typeName)"))
            }
        }
        let replyID = id ?? .null
        guard envelope["jsonrpc"] == .string("2.0") else {
            return .failure(id: replyID, error: .invalidRequest("jsonrpc must be \"2.0\""))
        }
        guard case .string(let method)? = envelope["method"] else {
            return .failure(id: replyID, error: .invalidRequest("method must be a string"))
        }
        if let extra = envelope.keys.sorted().first(where: { !Self.envelopeMembers.contains($0) }) {
            return .failure(id: replyID, error: .invalidRequest("unknown member \"\(extra)\" in the request envelope"))
        }
        let params = envelope["params"]
        if let params {
            switch params {
            case .object: break
            case .array: return id == nil ? nil : .failure(id: replyID, error: .invalidParams(path: "params", "must be an object with named fields; positional params are not supported"))
            default: return .failure(id: replyID, error: .invalidRequest("params must be an object or an array"))
            }
        }
        let result: Result<JSON, RPCError>
        if checkNUL, let path = params?.pathOfNUL() {
            result = .failure(.invalidParams(path: path, "must not contain the NUL character (U+0000)"))
        } else if let handler = handlers[method] {
            do throws(RPCError) {
                result = .success(try handler(params, context))
            } catch {
                result = .failure(error)
            }
        } else {
            result = .failure(.methodNotFound(method, known: methods))
        }
        guard id != nil else { return nil }  // notification
        switch result {
        case .success(let value): return .success(id: replyID, result: value)
        case .failure(let error): return .failure(id: replyID, error: error)
        }
    }

    private static let envelopeMembers: Set<String> = ["jsonrpc", "id", "method", "params"]

    private func encode(_ reply: Reply) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        reply.write(into: &out)
        return out
    }
}

extension Reply {
    /// Numeric ids that a double does not hold exactly (beyond 2^53, fractions) are echoed from the request's
    /// own text, so a client always gets back the id it sent (batches: in ``Dispatcher/encodeBatch``).
    mutating func restoreExactIDs(from line: UnsafeBufferPointer<UInt8>) {
        func needsText(_ id: JSON) -> Bool {
            guard case .number(let d) = id else { return false }
            return !(d.rounded() == d && abs(d) < 9_007_199_254_740_992)
        }
        switch self {
        case .success(let id, let result) where needsText(id):
            if let text = RawMember.texts("id", in: line).first ?? nil { self = .success(id: .raw(text), result: result) }
        case .failure(let id, let error) where needsText(id):
            if let text = RawMember.texts("id", in: line).first ?? nil { self = .failure(id: .raw(text), error: error) }
        default: break
        }
    }

    var succeeded: Bool { if case .success = self { true } else { false } }

    var id: JSON {
        switch self {
        case .success(let id, _), .failure(let id, _): id
        case .batch: .null
        }
    }

    func with(id: JSON) -> Reply {
        switch self {
        case .success(_, let result): .success(id: id, result: result)
        case .failure(_, let error): .failure(id: id, error: error)
        case .batch: self
        }
    }
}

/// A response before it is framed: as a JSON value for in-process callers, or written straight to bytes
/// (the same canonical text) for the wire.
enum Reply {
    case success(id: JSON, result: JSON)
    case failure(id: JSON, error: RPCError)
    case batch([Reply])

    var json: JSON {
        switch self {
        case .success(let id, let result): .object(["jsonrpc": "2.0", "id": id, "result": result])
        case .failure(let id, let error): .object(["jsonrpc": "2.0", "id": id, "error": error.json])
        case .batch(let replies): .array(replies.map(\.json))
        }
    }

    /// Members in canonical (sorted) order: error, id, jsonrpc, result.
    func write(into out: inout [UInt8]) {
        switch self {
        case .success(let id, let result):
            out.append(contentsOf: #"{"id":"#.utf8)
            id.write(into: &out)
            out.append(contentsOf: #","jsonrpc":"2.0","result":"#.utf8)
            result.write(into: &out)
            out.append(UInt8(ascii: "}"))
        case .failure(let id, let error):
            out.append(contentsOf: #"{"error":"#.utf8)
            error.json.write(into: &out)
            out.append(contentsOf: #","id":"#.utf8)
            id.write(into: &out)
            out.append(contentsOf: #","jsonrpc":"2.0"}"#.utf8)
        case .batch(let replies):
            out.append(UInt8(ascii: "["))
            for (i, reply) in replies.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                reply.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }
}

extension Dispatcher {
    /// The error line for a request line longer than `--max-line-bytes`, which was skipped unread.
    func oversizedLineReply(_ count: Int) -> [UInt8] {
        errorLine(RPCError(
            code: .invalidRequest,
            message: "Invalid request: line of \(count) bytes exceeds the limit of \(limits.maxLineBytes) bytes (--max-line-bytes)",
            data: ["reason": "limit_exceeded", "limit": "max_line_bytes", "max": JSON(limits.maxLineBytes), "got": JSON(count)]))
    }

    /// The error line for a request line skipped because unfinished lines of all clients held the whole budget.
    func overBudgetLineReply(_ count: Int, budget: Int) -> [UInt8] {
        errorLine(RPCError(
            code: .invalidRequest,
            message: "Invalid request: the server is holding \(budget) bytes of unfinished requests from all clients; this line of \(count) bytes was skipped, send it again",
            data: ["reason": "limit_exceeded", "limit": "request_buffer_budget", "max": JSON(budget), "got": JSON(count)]))
    }
}
