import Foundation

/// A value read from the store and kept until a generation counter there moves (every write of that kind, by any
/// process, bumps it in the same transaction). Read inside a transaction, it is exactly what that transaction sees.
final class GenerationCache<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var generation = -1
    private var value: Value

    init(_ empty: Value) { value = empty }

    func current(generation latest: () throws -> Int, load: () throws -> Value) throws -> Value {
        lock.lock()
        defer { lock.unlock() }
        let now = try latest()
        if now != generation {
            value = try load()
            generation = now
        }
        return value
    }

    /// Forgets the value (the store was replaced, or a write the counter does not see).
    func reset() {
        lock.lock()
        defer { lock.unlock() }
        generation = -1
    }
}
