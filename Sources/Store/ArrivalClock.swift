import Synchronization

/// When the request being answered arrived, on a count the transport keeps (the RPC module's `Arrivals`); the store
/// sees it only through this interface.
public protocol ArrivalClock: Sendable {
    /// No earlier than the stamp of every request that has arrived in full.
    var now: UInt64 { get }
}

/// The commit count of a PostgreSQL store (`meta.commits`, bumped by every write transaction), asked of the
/// database at most once per arrival: a request that had arrived in full before the last ask is answered on that
/// ask's count, as every write acknowledged before the request was sent had committed before the ask. A pipelined
/// batch of reads thus costs one round trip, and a read still sees every write acknowledged before it was sent.
final class PostgresCommitClock: CommitClock, Sendable {
    private struct State {
        /// The last count asked and the arrival stamp read just before asking.
        var known: (commits: Int, coversThrough: UInt64)?
        /// Writes through this process: an ask that a local commit overtook must not be kept, or a read pipelined
        /// after this daemon's own write could be answered from before it.
        var localWrites: UInt64 = 0
    }
    private let backend: PostgresBackend
    private let arrivals: Mutex<(any ArrivalClock)?> = Mutex(nil)
    private let state = Mutex(State())

    init(backend: PostgresBackend) { self.backend = backend }

    func use(_ clock: any ArrivalClock) { arrivals.withLock { $0 = clock } }

    /// Called after every commit through this process.
    func committedHere() { state.withLock { $0.known = nil; $0.localWrites &+= 1 } }

    func token(arrival stamp: UInt64?) throws -> Int? {
        guard let clock = arrivals.withLock({ $0 }), let stamp else { return nil }
        let (known, writes) = state.withLock { ($0.known, $0.localWrites) }
        if let known, stamp <= known.coversThrough { return known.commits }
        let covers = clock.now
        let commits = try backend.withSession { s in
            try s.one("SELECT value FROM meta WHERE name = 'commits'", []) { $0.integer(0) } ?? 0
        }
        state.withLock { s in
            if s.localWrites == writes, (s.known?.coversThrough ?? 0) < covers { s.known = (commits, covers) }
        }
        return commits
    }
}
