public import JSONCore

/// Lifecycle states: `draft → review → approved → running → stopped → concluded → archived`,
/// plus `aborted` from any state before `concluded`.
public enum ExperimentState: String, Sendable, CaseIterable, Codable {
    case draft, review, approved, running, stopped, concluded, archived, aborted

    /// States reachable in one transition.
    public var allowedNext: [ExperimentState] {
        switch self {
        case .draft: [.review, .aborted]
        case .review: [.approved, .aborted]
        case .approved: [.running, .aborted]
        case .running: [.stopped, .aborted]
        case .stopped: [.concluded, .aborted]
        case .concluded: [.archived]
        case .archived, .aborted: []
        }
    }

    /// A holdout's lifecycle: `draft → review → approved → running → concluded`, `aborted` before it concludes.
    public var allowedNextForHoldout: [ExperimentState] {
        switch self {
        case .draft: [.review, .aborted]
        case .review: [.approved, .aborted]
        case .approved: [.running, .aborted]
        case .running: [.concluded, .aborted]
        case .stopped: [.concluded, .aborted]
        case .concluded, .archived, .aborted: []
        }
    }

    /// Drafts and proposals under review may be edited with `experiment.update`.
    public var isEditable: Bool { self == .draft || self == .review }

    /// Approved and running experiments change only through `experiment.amend`.
    public var isLive: Bool { self == .approved || self == .running }

    /// Holds buckets of its layer: from approval until stopped, concluded, aborted or archived.
    public var holdsTraffic: Bool { isLive }

    /// Has assigned units: running, or stopped, concluded or archived after running. (An aborted experiment may or may
    /// not have run; its state does not say, so it is left out where that matters.)
    public var hasRun: Bool { self == .running || self == .stopped || self == .concluded || self == .archived }

    /// Stopped, concluded, aborted and archived experiments no longer take part in conflicts.
    public var isTerminal: Bool { self == .stopped || self == .concluded || self == .aborted || self == .archived }
}

/// Decision recorded when an experiment is concluded.
public enum Decision: String, Sendable, CaseIterable {
    case ship, rollback, iterate, inconclusive
}

public enum Lifecycle {
    /// Checks a transition's shape (not authorization, not protocol): the move must be allowed and
    /// `concluded` must carry a decision.
    public static func check(from: ExperimentState, to target: String, decision: String?) throws(RegistryError) -> ExperimentState {
        guard let to = ExperimentState(rawValue: target), from.allowedNext.contains(to) else {
            throw .invalidTransition(from: from, to: target, allowed: from.allowedNext)
        }
        if to == .concluded {
            guard let decision, Decision(rawValue: decision) != nil else {
                throw .protocolViolation([Violation(
                    path: "decision", rule: "decision_required",
                    message: "concluding requires decision, one of \(Decision.allCases.map(\.rawValue).joined(separator: ", "))"
                        + (decision.map { "; got \"\($0)\"" } ?? ""))])
            }
        }
        return to
    }
}

/// States are a choice of the control interface (`experiment.list {state}`).
extension ExperimentState: ParamChoice {}
