#if canImport(Glibc)
import Glibc
#endif
import CEpoll
import POSIX

/// One client of the socket server: the bytes of its unfinished line, the requests it sent that are not yet answered,
/// and the replies the socket has not yet taken.
///
/// Whoever holds it reads, answers and writes: one worker at a time, handed over by epoll's one-shot events
/// (``SocketWorkers``), so requests are answered in the order they arrived with no lock around the state. The
/// server's housekeeping only reads the connection's clocks (``Clocks``), under their own lock.
final class SocketConnection: @unchecked Sendable {
    struct Request {
        let item: LineSplitter.Item
        let arrival: UInt64

        var bytes: Int {
            if case .line(let line, _) = item { return line.count }
            return 0
        }

        var reserved: Int {
            if case .line(_, let reserved) = item { return reserved }
            return 0
        }
    }

    /// What the holder does with the connection after a turn.
    enum Next {
        /// Wait for these epoll events (readable, writable or both).
        case wait(UInt32)
        /// More requests are ready: another turn, after the connections waiting.
        case again
        /// Done: the client went away, its input ended and everything is answered, or the housekeeping expired it.
        case close
        /// The server is stopping: leave it for the server to finish.
        case leave
    }

    /// What the housekeeping reads to find idle, slow and stalled clients.
    struct Clocks {
        /// The last byte read or reply written (monotonic seconds).
        var lastActivity: Double
        /// When the unfinished line being read began, while the server is reading.
        var partialSince: Double?
        /// Since when replies have waited with the socket taking none of them.
        var blockedSince: Double?
        /// Requests waiting or being answered, or replies waiting: the connection is not idle.
        var busy = false
    }

    let id: UInt64
    let fd: Int32
    let uid: UInt32
    private var context: RPCContext
    private let dispatcher: Dispatcher
    private let budget: ByteBudget?
    private var splitter: LineSplitter
    private var requests: [Request] = []
    private var head = 0
    private var queuedBytes = 0
    private var out: [UInt8] = []
    private var written = 0
    private var inputEnded = false
    private var failed = false

    private let clockLock = PThreadMutex()
    private var clocks: Clocks
    /// Set by the housekeeping before it shuts the socket down; the holder then closes it without answering more.
    private var expired = false
    private var descriptorClosed = false

    /// Past this many bytes of requests waiting, the connection is not read until they are answered.
    static let maxQueuedBytes = 1 << 16
    /// Past this many bytes of replies the socket has not taken, no more requests are answered until it takes some.
    static let maxPendingReplyBytes = 1 << 20
    /// One turn answers at most this many requests (or runs this long) before other connections get theirs.
    private static let turnRequests = 64
    private static let turnSeconds = 0.002
    /// One turn reads at most this many times.
    private static let turnReads = 4
    /// Replies to one client's pipelined requests go out together, this many at most (`answer(stopping:)`).
    static let repliesPerSend = 8

    init(id: UInt64, fd: Int32, uid: UInt32, context: RPCContext, dispatcher: Dispatcher, budget: ByteBudget?) {
        self.id = id
        self.fd = fd
        self.uid = uid
        self.context = context
        self.dispatcher = dispatcher
        self.budget = budget
        self.splitter = LineSplitter(maxLineBytes: dispatcher.limits.maxLineBytes, budget: budget)
        self.clocks = Clocks(lastActivity: LineReader.now())
    }

    // MARK: the housekeeping's side

    var currentClocks: Clocks { clockLock.withLock { clocks } }

    /// Ends the connection from outside: the holder (now or next) closes it. The descriptor stays open until then, so
    /// the shutdown cannot reach another client's socket.
    func expire() {
        clockLock.withLock {
            expired = true
            if !descriptorClosed { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Closes the descriptor (once), under the lock `expire` takes: a shutdown never reaches a descriptor number
    /// the process has since given to another client.
    func closeDescriptor() {
        clockLock.withLock {
            if !descriptorClosed { close(fd) }
            descriptorClosed = true
        }
    }

    // MARK: the holder's side

    /// Reads what has arrived, answers what is complete and writes the replies, for one turn.
    func turn(readBuffer: inout [UInt8], stopping: () -> Bool) -> Next {
        if clockLock.withLock({ expired }) { return .close }
        read(into: &readBuffer)
        answer(stopping: stopping)
        flush()
        return next(stopping: stopping())
    }

    /// Gives back what the connection holds of the budget; the holder calls it once, as it closes the connection.
    func release() {
        budget?.give(requests[head...].reduce(0) { $0 + $1.reserved })
        requests = []
        head = 0
        splitter.release()
    }

    /// At the server's stop: writes what the client takes before `deadline` (monotonic seconds).
    func flushBeforeClosing(deadline: Double) {
        while written < out.count && !failed && LineReader.now() < deadline {
            flush()
            if written < out.count {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 50)
            }
        }
    }

    private func read(into buffer: inout [UInt8]) {
        var reads = 0
        var completed = false
        while !inputEnded && !failed && hasRoomToRead && reads < Self.turnReads {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if SystemCall.wasInterrupted { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { failed = true }
                break
            }
            reads += 1
            let arrival = Arrivals.record()
            if n == 0 {
                inputEnded = true
                splitter.finish { append($0, arrival) }
                break
            }
            buffer.withUnsafeBytes { all in
                splitter.feed(UnsafeRawBufferPointer(rebasing: all[..<n])) { completed = true; append($0, arrival) }
            }
            if n < buffer.count { break }
        }
        let now = LineReader.now()
        let holdsPartial = splitter.holdsPartialLine
        // The reads the server holds back (its queue or the client's replies are full) do not count against the line.
        let reading = hasRoomToRead
        clockLock.withLock {
            if reads > 0 { clocks.lastActivity = now }
            if !holdsPartial || !reading { clocks.partialSince = nil } else if completed || clocks.partialSince == nil { clocks.partialSince = now }
            clocks.busy = true
        }
    }

    /// More requests are read only while few wait and every reply has been taken: a client that does not read its
    /// replies is not read either.
    private var hasRoomToRead: Bool { queuedBytes < Self.maxQueuedBytes && written == out.count }

    private func append(_ item: LineSplitter.Item, _ arrival: UInt64) {
        let request = Request(item: item, arrival: arrival)
        requests.append(request)
        queuedBytes += request.bytes
    }

    private func answer(stopping: () -> Bool) {
        let started = LineReader.now()
        var served = 0, unsent = 0
        while head < requests.count && out.count - written < Self.maxPendingReplyBytes && !failed {
            if stopping() || served >= Self.turnRequests || LineReader.now() - started > Self.turnSeconds { return }
            let request = requests[head]
            head += 1
            queuedBytes -= request.bytes
            if let reply = answer(request) {
                out.append(contentsOf: reply)
                out.append(0x0A)
                unsent += 1
                // A reply waits only for the requests its client had already sent after it, at most a few of them: a
                // pipelined batch costs one send(2) per `repliesPerSend` (one per reply was a fifth of the daemon's
                // processor time), and a client that waits for each reply gets it at once.
                if head == requests.count || unsent >= Self.repliesPerSend {
                    flush()
                    unsent = 0
                }
            }
            budget?.give(request.reserved)
            served += 1
        }
        if head == requests.count {
            requests.removeAll(keepingCapacity: requests.capacity <= 256)
            head = 0
        }
    }

    private func answer(_ request: Request) -> [UInt8]? {
        switch request.item {
        case .line(let bytes, _):
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
            context.arrival = request.arrival
            return bytes.withUnsafeBufferPointer { dispatcher.handle(line: $0, context: context) }
        case .oversized(let count):
            return dispatcher.oversizedLineReply(count)
        case .overBudget(let count):
            return dispatcher.overBudgetLineReply(count, budget: budget?.total ?? 0)
        }
    }

    /// Writes what the socket takes now.
    private func flush() {
        guard written < out.count, !failed else { return }
        let before = written
        while written < out.count {
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + written, out.count - written, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 { written += n; continue }
            if n < 0 && SystemCall.wasInterrupted { continue }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK { failed = true }
            break
        }
        if written == out.count {
            out.removeAll(keepingCapacity: out.capacity <= 1 << 16)
            written = 0
        } else if written > 1 << 20 {
            out.removeFirst(written)
            written = 0
        }
        let now = LineReader.now()
        let progressed = written != before || out.isEmpty
        let pending = !out.isEmpty
        clockLock.withLock {
            if progressed { clocks.lastActivity = now }
            clocks.blockedSince = pending ? (progressed ? now : (clocks.blockedSince ?? now)) : nil
        }
    }

    private func next(stopping: Bool) -> Next {
        let pendingRequests = head < requests.count
        let pendingReplies = written < out.count
        clockLock.withLock { clocks.busy = pendingRequests || pendingReplies }
        if failed || clockLock.withLock({ expired }) { return .close }
        if stopping { return .leave }
        let roomForReplies = out.count - written < Self.maxPendingReplyBytes
        if pendingRequests && roomForReplies { return .again }
        var events: UInt32 = 0
        if pendingReplies { events |= referee_epoll_out }
        if !inputEnded && hasRoomToRead { events |= referee_epoll_in }
        // Input ended and everything answered and written: done.
        return events == 0 ? .close : .wait(events)
    }
}
