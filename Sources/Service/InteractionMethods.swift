import API
import Registry
import Store
import RPC
import JSONCore

extension RefereeService {
    func interactions(_ p: ResultsInteractions.Params) throws -> JSON {
        throw FieldError(path: "key", message: "interactions are not measured yet")
    }

    func measuredInteractions(from: Timestamp?, to: Timestamp?) throws -> (findings: [Finding], summary: JSON) {
        ([], .null)
    }
}
