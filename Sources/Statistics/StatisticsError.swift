/// Degenerate or invalid input to a statistical routine (wire code 1009 `invalid_input`).
///
/// `field` is the path of the offending input (e.g. `control.n`), `reason` says what is wrong and how to fix it.
public struct StatisticsError: Error, Equatable, Sendable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}
