public import RPC
import JSONCore
import Registry
import Store
import Statistics
import Ingest

extension RPCErrorCode {
    public static let protocolViolation = RPCErrorCode(rawValue: 1001)
    public static let conflict = RPCErrorCode(rawValue: 1002)
    public static let notFound = RPCErrorCode(rawValue: 1003)
    public static let forbidden = RPCErrorCode(rawValue: 1004)
    public static let invalidTransition = RPCErrorCode(rawValue: 1005)
    public static let versionConflict = RPCErrorCode(rawValue: 1006)
    public static let duplicateKey = RPCErrorCode(rawValue: 1007)
    public static let lockedField = RPCErrorCode(rawValue: 1008)
    public static let invalidInput = RPCErrorCode(rawValue: 1009)
    /// Input or output failed (cannot read, no data, disk full): `data.path` names the file.
    public static let ioError = RPCErrorCode(rawValue: 1010)
    public static let storeUnavailable = RPCErrorCode(rawValue: 1011)
    public static let warehouseError = RPCErrorCode(rawValue: 1012)
}

extension RegistryError {
    /// The one place a domain error becomes a wire error.
    var rpc: RPCError {
        switch self {
        case .protocolViolation(let violations):
            let head = violations.prefix(3).map(\.description).joined(separator: "; ")
            let more = violations.count > 3 ? " (and \(violations.count - 3) more)" : ""
            return RPCError(code: .protocolViolation,
                            message: "\(violations.count) protocol violation\(violations.count == 1 ? "" : "s"): \(head)\(more)",
                            data: ["reason": "protocol_violation", "violations": .array(violations.map(\.json))])
        case .notFound(let key):
            return RPCError(code: .notFound, message: "no experiment with key \"\(key)\"; see experiment.list",
                            data: ["reason": "not_found", "key": .string(key)])
        case .protocolNotFound(let name, let loaded):
            return RPCError(code: .notFound, message: "no protocol named \"\(name)\"; loaded: \(loaded.joined(separator: ", "))",
                            data: ["reason": "not_found", "name": .string(name)])
        case .segmentNotFound(let key, let segment, let known):
            let list = known.filter { !$0.isEmpty }
            return RPCError(code: .notFound,
                            message: "\(key) has no results for segment \"\(segment)\"; " + (list.isEmpty ? "it has results for all units only" : "its segments: \(list.joined(separator: ", "))"),
                            data: ["reason": "not_found", "segment": .string(segment), "segments": JSON(list)])
        case .dimensionNotFound(let key, let dimension, let known):
            return RPCError(code: .notFound,
                            message: "\(key) has no dimension \"\(dimension)\"; " + (known.isEmpty ? "it declares none (add dimensions to the document)" : "its dimensions: \(known.joined(separator: ", "))"),
                            data: ["reason": "not_found", "dimension": .string(dimension), "dimensions": JSON(known)])
        case .groupNotFound(let name, let known):
            return RPCError(code: .notFound, message: "no saved group named \"\(name)\"; " + (known.isEmpty ? "there are none yet (define one with groups.put)" : "saved groups: \(known.prefix(20).joined(separator: ", "))"),
                            data: ["reason": "not_found", "name": .string(name), "groups": JSON(Array(known.prefix(100)))])
        case .groupVersionConflict(let name, let expected, let actual):
            return RPCError(code: .versionConflict,
                            message: "saved group \"\(name)\" is at version \(actual), not \(expected): someone changed it; get it again and reapply your change",
                            data: ["reason": "version_conflict", "name": .string(name), "expected": JSON(expected), "actual": JSON(actual)])
        case .conflict(let message, let findings):
            return RPCError(code: .conflict, message: message, data: ["reason": "conflict", "conflicts": .array(findings)])
        case .inconsistent(let what):
            return .internalError(what)
        case .forbidden(let message, let details):
            var data = details
            data["reason"] = "forbidden"
            return RPCError(code: .forbidden, message: message, data: .object(data))
        case .invalidTransition(let from, let to, let allowed, let why):
            if let why {
                return RPCError(code: .invalidTransition, message: "cannot move from \(from.rawValue) to \(to): \(why)",
                                data: ["reason": "invalid_transition", "from": .string(from.rawValue), "to": .string(to), "detail": .string(why),
                                       "allowed": JSON(from.allowedNext.map(\.rawValue))])
            }
            let options = allowed.isEmpty ? "none: \(from.rawValue) is final" : allowed.map(\.rawValue).joined(separator: ", ")
            return RPCError(code: .invalidTransition,
                            message: "cannot move from \(from.rawValue) to \(to); allowed from \(from.rawValue): \(options)",
                            data: ["reason": "invalid_transition", "from": .string(from.rawValue), "to": .string(to),
                                   "allowed": JSON(allowed.map(\.rawValue))])
        case .versionConflict(let key, let expected, let actual):
            return RPCError(code: .versionConflict,
                            message: "experiment \"\(key)\" is at version \(actual), not \(expected): someone changed it; get it again and reapply your change",
                            data: ["reason": "version_conflict", "key": .string(key), "expected": JSON(expected), "actual": JSON(actual)])
        case .duplicateKey(let key):
            return RPCError(code: .duplicateKey, message: "key \"\(key)\" is taken by an experiment or a holdout (keys are unique across both); choose another key, or change the existing one with experiment.update or holdout.update",
                            data: ["reason": "duplicate_key", "key": .string(key)])
        case .lockedField(let paths, let state, let protocolName):
            return RPCError(code: .lockedField,
                            message: "\(paths.joined(separator: ", ")) cannot change while the experiment is \(state.rawValue) (locked by protocol '\(protocolName)')",
                            data: ["reason": "locked_field", "paths": JSON(paths), "state": .string(state.rawValue), "protocol": .string(protocolName)])
        }
    }
}

extension StatisticsError {
    var rpc: RPCError {
        RPCError(code: .invalidInput, message: "\(field): \(reason)",
                 data: ["reason": "invalid_input", "field": .string(field), "detail": .string(reason)])
    }
}

extension IngestError {
    var rpc: RPCError {
        var data = data.objectValue ?? [:]
        switch kind {
        case .io:
            data["reason"] = "io_error"
            return RPCError(code: .ioError, message: message, data: .object(data))
        case .invalidInput:
            data["reason"] = "invalid_input"
            return RPCError(code: .invalidInput, message: message, data: .object(data))
        case .forbidden:
            data["reason"] = "forbidden"
            return RPCError(code: .forbidden, message: message, data: .object(data))
        case .internal:
            return .internalError(message)
        }
    }
}

extension RefereeService {
    /// The wire error for any error the service can throw (for callers outside the dispatcher, like the CLI).
    public static func wireError(_ error: any Error) -> RPCError {
        do { _ = try mapErrors { throw error } } catch { return error }
        return .internalError("\(error)")
    }
}

/// Runs a handler body, mapping every error type the service can meet to exactly one wire error.
func mapErrors(_ body: () throws -> JSON) throws(RPCError) -> JSON {
    do {
        return try body()
    } catch let e as RPCError {
        throw e
    } catch let e as RegistryError {
        throw e.rpc
    } catch let e as FieldError {
        throw .invalidParams(e)
    } catch let e as StatisticsError {
        throw e.rpc
    } catch let e as IngestError {
        throw e.rpc
    } catch let e as StoreUnavailable {
        throw RPCError(code: .storeUnavailable, message: e.message, data: ["reason": "store_unavailable", "detail": .string(e.message)])
    } catch {
        throw .internalError(String(describing: error))
    }
}
