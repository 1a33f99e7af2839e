public import JSONCore

/// A JSON-RPC error code. Standard codes are static members; applications add their own in extensions,
/// outside the reserved range −32768…−32000.
public struct RPCErrorCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let parseError = RPCErrorCode(rawValue: -32700)
    public static let invalidRequest = RPCErrorCode(rawValue: -32600)
    public static let methodNotFound = RPCErrorCode(rawValue: -32601)
    public static let invalidParams = RPCErrorCode(rawValue: -32602)
    public static let internalError = RPCErrorCode(rawValue: -32603)
    /// Implementation-defined server error (JSON-RPC reserves −32000…−32099): a shared server that does not
    /// admit another connection now.
    public static let serverBusy = RPCErrorCode(rawValue: -32000)
}

/// The `error` member of a response: code, message and structured data (`data.reason` names the error).
public struct RPCError: Error, Sendable, Equatable {
    public var code: RPCErrorCode
    public var message: String
    public var data: JSON?

    public init(code: RPCErrorCode, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static func parseError(_ detail: String, offset: Int? = nil) -> RPCError {
        var data: [String: JSON] = ["reason": "parse_error", "detail": .string(detail)]
        if let offset { data["offset"] = JSON(offset) }
        return RPCError(code: .parseError, message: "Parse error: \(detail)", data: .object(data))
    }

    public static func invalidRequest(_ detail: String) -> RPCError {
        RPCError(code: .invalidRequest, message: "Invalid request: \(detail)", data: ["reason": "invalid_request", "detail": .string(detail)])
    }

    public static func methodNotFound(_ method: String, known: [String]) -> RPCError {
        RPCError(code: .methodNotFound, message: "Unknown method \"\(method)\"",
                 data: ["reason": "method_not_found", "method": .string(method), "methods": JSON(known)])
    }

    public static func invalidParams(path: String, _ detail: String) -> RPCError {
        RPCError(code: .invalidParams, message: "Invalid params: \(path) \(detail)",
                 data: ["reason": "invalid_params", "path": .string(path), "detail": .string(detail)])
    }

    public static func invalidParams(_ error: FieldError) -> RPCError {
        invalidParams(path: error.path, error.message)
    }

    public static func internalError(_ detail: String) -> RPCError {
        RPCError(code: .internalError, message: "Internal error: \(detail)", data: ["reason": "internal_error", "detail": .string(detail)])
    }

    public var json: JSON {
        var o: [String: JSON] = ["code": JSON(code.rawValue), "message": .string(message)]
        if let data { o["data"] = data }
        return .object(o)
    }
}
