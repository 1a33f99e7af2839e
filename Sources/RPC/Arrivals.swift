import Synchronization

/// When requests arrived, on one count the process keeps of reads of request bytes from every client.
///
/// A request's stamp is the count after the read that brought its last byte. Any stamp at or below `now` belongs to
/// a request that had arrived in full when `now` was read, so a check of the store made after reading `now` (has
/// anyone committed?) holds for that request too: a write acknowledged before the client sent it was committed
/// before the check. A store on the network uses this to answer a pipelined batch from memory after one check.
public enum Arrivals {
    private static let count = Atomic<UInt64>(0)

    /// Counts one read of request bytes; the new count is the stamp of every line that read completes.
    static func record() -> UInt64 { count.add(1, ordering: .sequentiallyConsistent).newValue }

    /// No earlier than the stamp of every request that has arrived in full.
    public static var now: UInt64 { count.load(ordering: .sequentiallyConsistent) }
}
