import Dispatch
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
final class PostgresCommitClock: CommitClock, @unchecked Sendable {
    /// One question to the database, which requests that had arrived before it was asked may wait for instead of
    /// asking their own (concurrent clients one request at a time each would otherwise ask once per request).
    private final class Ask: @unchecked Sendable {
        /// The arrival count read just before asking, and this process's writes then.
        let covers: UInt64
        let writes: UInt64
        let finished = DispatchGroup()
        /// The answer, for waiters: nil when the ask failed or a local commit overtook it.
        var shared: Int?
        init(covers: UInt64, writes: UInt64) { self.covers = covers; self.writes = writes; finished.enter() }
    }
    private struct State {
        /// The last count asked and the arrival stamp read just before asking.
        var known: (commits: Int, coversThrough: UInt64)?
        /// Writes through this process: an ask that a local commit overtook must not be kept, or a read pipelined
        /// after this daemon's own write could be answered from before it.
        var localWrites: UInt64 = 0
        var asking: Ask?
    }
    private enum Step { case known(Int), wait(Ask), ask(Ask) }
    private let backend: PostgresBackend
    /// Both read by every request, under `lock` shared; changed under it exclusive.
    private var arrivals: (any ArrivalClock)?
    private var state = State()
    private let lock = SharedLock()

    init(backend: PostgresBackend) { self.backend = backend }

    func use(_ clock: any ArrivalClock) { lock.writing { arrivals = clock } }

    /// Called after every commit through this process (and every write whose outcome is unknown), with the count the
    /// commit left when it is known: what it held under the write lock plus its own, for the requests that had arrived
    /// before its COMMIT was sent.
    func committedHere(now known: (commits: Int, coversThrough: UInt64)?) {
        lock.writing {
            state.localWrites &+= 1
            guard let known else { state.known = nil; return }
            // The larger count wins. An ask that finished between this commit and this report may hold the count from
            // before it, for requests pipelined after this write: this count replaces it. A later write of this process
            // may have reported first (the next can commit before this one reports): its count stays.
            if let current = state.known, current.commits > known.commits
                || (current.commits == known.commits && current.coversThrough >= known.coversThrough) { return }
            state.known = known
        }
    }

    /// The arrival count now (nil when the transport gave no clock).
    func arrivalStamp() -> UInt64? {
        lock.reading { arrivals?.now }
    }

    func token(arrival stamp: UInt64?) throws -> Int? {
        guard let stamp else { return nil }
        // Most requests of a pipelined batch are covered by the count already known: a shared lock answers them.
        let fast: (clock: (any ArrivalClock)?, commits: Int?) = lock.reading {
            if let known = state.known, stamp <= known.coversThrough { return (arrivals, known.commits) }
            return (arrivals, nil)
        }
        guard let clock = fast.clock else { return nil }
        if let commits = fast.commits { return commits }
        let step = lock.writing { () -> Step in
            let s = state
            if let known = s.known, stamp <= known.coversThrough { return .known(known.commits) }
            if let ask = s.asking, stamp <= ask.covers { return .wait(ask) }
            let ask = Ask(covers: clock.now, writes: s.localWrites)
            state.asking = ask
            return .ask(ask)
        }
        switch step {
        case .known(let commits):
            return commits
        case .wait(let ask):
            // The ask began after this request arrived; its answer holds for it unless a local commit overtook it.
            if ask.finished.wait(timeout: .now() + backend.statementSeconds + 1) == .success, let commits = ask.shared { return commits }
            return try commitCount()
        case .ask(let ask):
            defer { ask.finished.leave() }
            let commits: Int
            do {
                commits = try commitCount()
            } catch {
                lock.writing { if state.asking === ask { state.asking = nil } }
                throw error
            }
            lock.writing {
                if state.asking === ask { state.asking = nil }
                guard state.localWrites == ask.writes else { return }
                ask.shared = commits
                if (state.known?.coversThrough ?? 0) < ask.covers { state.known = (commits, ask.covers) }
            }
            return commits
        }
    }

    private func commitCount() throws -> Int {
        try backend.withSession { s in try s.one("SELECT value FROM meta WHERE name = 'commits'", []) { $0.integer(0) } ?? 0 }
    }
}
