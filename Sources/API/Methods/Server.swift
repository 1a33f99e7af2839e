public import JSONCore

/// `server.info`: version, store, protocols loaded, the caller's principal and the methods. Needs no role.
public enum ServerInfo: MethodSpec {
    public static let name = "server.info"
    public static let summary = "Version, store, protocols loaded, the caller's principal and the methods."
    public static let permission = Permission.public
    public static let result = Schema.object(["name": Schema.string, "version": Schema.string, "principal": Schema.string, "methods": Schema.array(Schema.string)],
                                             additional: true)
    public static let errors: [ErrorCode] = []
    public typealias Params = NoParams
}

/// `protocol.list`: the protocols loaded (name, hash, rules) and the metrics catalog.
public enum ProtocolList: MethodSpec {
    public static let name = "protocol.list"
    public static let summary = "Protocols loaded and the metrics catalog."
    public static let permission = Permission.read
    public static let result = Schema.object(["protocols": Schema.array(Schema.object), "metrics": Schema.array(Schema.object)])
    public typealias Params = NoParams
}

/// `protocol.get {name}`: one protocol's rules, content hash and source text. Errors: 1003 naming those loaded.
public enum ProtocolGet: MethodSpec {
    public static let name = "protocol.get"
    public static let summary = "One protocol's rules, hash and source text."
    public static let permission = Permission.read
    public static let result = Schema.object
    public static let errors: [ErrorCode] = [.notFound, .forbidden]
    public struct Params: MethodParams {
        public let name: String
        public static let docs: [String: FieldDoc] = ["name": "the protocol"]
    }
}

/// `rpc.discover`: this interface as an OpenRPC 1.3 document (`Docs/openrpc.json`). Needs no role.
public enum RPCDiscover: MethodSpec {
    public static let name = "rpc.discover"
    public static let summary = "This interface as an OpenRPC 1.3 document."
    public static let permission = Permission.public
    public static let result: JSON = ["type": "object", "description": "an OpenRPC 1.3 document (Docs/openrpc.json)"]
    public static let errors: [ErrorCode] = []
    public typealias Params = NoParams
}

/// `shutdown`: stops the daemon after answering. Refused over the shared socket for every principal.
public enum Shutdown: MethodSpec {
    public static let name = "shutdown"
    public static let summary = "Stops the daemon after answering (refused over the shared socket: SIGTERM stops a service)."
    public static let permission = Permission.shutdown
    public static let result = Schema.object(["stopping": Schema.boolean])
    public typealias Params = NoParams
}
