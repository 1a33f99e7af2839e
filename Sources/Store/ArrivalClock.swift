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
        /// The arrival count read just before asking, and this process's writes then (set when it is sent).
        var covers: UInt64 = 0
        var writes: UInt64 = 0
        let finished = DispatchGroup()
        /// The answer, for waiters: nil when the ask failed or a local commit overtook it.
        var shared: Int?
        init() { finished.enter() }
    }
    private struct State {
        /// The last count asked and the arrival stamp read just before asking.
        var known: (commits: Int, coversThrough: UInt64)?
        /// Writes through this process: an ask that a local commit overtook must not be kept, or a read pipelined
        /// after this daemon's own write could be answered from before it.
        var localWrites: UInt64 = 0
        /// The ask sent and not yet answered, and the one to be sent once it is, for the requests that arrived after it
        /// was sent: every request arriving meanwhile waits for that one ask (sending one each, they were as many
        /// round trips and as many connections as socket workers).
        var asking: Ask?
        var next: Ask?
    }
    private enum Step { case known(Int), wait(Ask, seconds: Double), ask(Ask), askAfter(Ask, Ask) }
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
        let answerSeconds = backend.statementSeconds + 1
        let step = lock.writing { () -> Step in
            if let known = state.known, stamp <= known.coversThrough { return .known(known.commits) }
            // An ask sent after this request arrived holds for it; one not sent yet will be, after this request arrived.
            if let ask = state.asking, stamp <= ask.covers { return .wait(ask, seconds: answerSeconds) }
            if let next = state.next { return .wait(next, seconds: 2 * answerSeconds) }
            if let ask = state.asking {
                let next = Ask()
                state.next = next
                return .askAfter(ask, next)
            }
            let ask = Ask()
            send(ask, clock)
            return .ask(ask)
        }
        switch step {
        case .known(let commits):
            return commits
        case .wait(let ask, let seconds):
            if ask.finished.wait(timeout: .now() + seconds) == .success, let commits = ask.shared { return commits }
            return try commitCount()
        case .ask(let ask):
            return try answer(ask)
        case .askAfter(let current, let next):
            _ = current.finished.wait(timeout: .now() + answerSeconds)
            lock.writing {
                state.next = nil
                send(next, clock)
            }
            return try answer(next)
        }
    }

    /// Marks `ask` sent now (under `lock`, exclusive): it covers every request that has arrived.
    private func send(_ ask: Ask, _ clock: any ArrivalClock) {
        ask.covers = clock.now
        ask.writes = state.localWrites
        state.asking = ask
    }

    /// Asks the database for `ask`, and tells its waiters.
    private func answer(_ ask: Ask) throws -> Int {
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

    private func commitCount() throws -> Int {
        try backend.withSession { s in try s.one("SELECT value FROM meta WHERE name = 'commits'", []) { $0.integer(0) } ?? 0 }
    }
}
