public import JSONCore

/// One broken rule: where (`design.alpha`), which rule (`alpha_max`) and what to do about it.
public struct Violation: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var rule: String
    public var message: String

    public init(path: String, rule: String, message: String) {
        self.path = path
        self.rule = rule
        self.message = message
    }

    public var json: JSON { ["path": .string(path), "rule": .string(rule), "message": .string(message)] }
    public var description: String { "\(path): \(message) [\(rule)]" }
}

/// Errors of the registry's domain rules, each mapped to one wire code by the service.
public enum RegistryError: Error, Equatable, Sendable {
    /// 1001: the document breaks its protocol; every violation at once.
    case protocolViolation([Violation])
    /// 1003
    case notFound(String)
    /// 1003: no protocol with this name; `loaded` names those that are.
    case protocolNotFound(String, loaded: [String])
    /// 1003: no aggregates for this segment of the experiment; `known` lists those it has.
    case segmentNotFound(key: String, segment: String, known: [String])
    /// 1003: the experiment declares no such dimension; `known` lists those it declares.
    case dimensionNotFound(key: String, dimension: String, known: [String])
    /// 1003: no saved group with this name; `known` lists those that exist.
    case groupNotFound(String, known: [String])
    /// 1006 for a saved group.
    case groupVersionConflict(name: String, expected: Int, actual: Int)
    /// 1002: error-severity findings block the change; `findings` are all of them (warnings included), as JSON.
    case conflict(message: String, findings: [JSON])
    /// A broken invariant of stored data (answered as an internal error, -32603).
    case inconsistent(String)
    /// 1004
    case forbidden(String, details: [String: JSON] = [:])
    /// 1005: `allowed` lists the states reachable from `from`.
    /// `why`: a reason beyond the lifecycle graph (a schedule that has ended), with the fix.
    case invalidTransition(from: ExperimentState, to: String, allowed: [ExperimentState], why: String? = nil)
    /// 1006
    case versionConflict(key: String, expected: Int, actual: Int)
    /// 1007
    case duplicateKey(String)
    /// 1008
    case lockedField(paths: [String], state: ExperimentState, protocolName: String)
}
