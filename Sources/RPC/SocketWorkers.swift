#if canImport(Glibc)
import Glibc
#endif
import CEpoll
import Synchronization

/// The threads that serve the socket server's connections: a fixed number, however many clients are connected.
///
/// Every worker waits on one epoll set in which each connection is registered one-shot: the kernel hands a
/// connection that has bytes (or room for replies) to exactly one waiting worker, which reads, answers and writes
/// it in that same thread, then registers it again. A request costs one wake-up, as with a thread per connection,
/// but a thousand clients cost a thousand descriptors, not a thousand threads. Handlers may block (a store's
/// statement, a write waiting its turn), so one operating-system user holds at most `perUser` workers at once: its
/// other ready connections wait for one of its own to finish, and other users' requests are still answered. A
/// connection with more requests than one turn answers goes to the back of a queue of ready connections.
final class SocketWorkers: @unchecked Sendable {
    let workers: Int
    let perUser: Int
    private let epoll: Int32
    /// Counts connections in the ready queue (a semaphore eventfd in the epoll set, so a waiting worker wakes for them).
    private let readyFD: Int32
    private let lock = PThreadMutex()
    private var connections: [UInt64: SocketConnection] = [:]
    private var ready: [SocketConnection] = []
    private var readyHead = 0
    private var running: [UInt32: Int] = [:]
    /// Ready connections of users who hold all the workers they may, oldest first.
    private var deferred: [UInt32: [SocketConnection]] = [:]
    private var live = 0
    private let stopped = Atomic<Bool>(false)
    private let shouldStop: @Sendable () -> Bool
    private let onClose: @Sendable (UInt32) -> Void
    private static let readyToken: UInt64 = 0

    struct StartError: Error { let description: String }

    init(workers: Int, shouldStop: @escaping @Sendable () -> Bool, onClose: @escaping @Sendable (UInt32) -> Void) throws(StartError) {
        self.workers = max(workers, 1)
        self.perUser = max(self.workers / 2, 1)
        self.shouldStop = shouldStop
        self.onClose = onClose
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        readyFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE))
        guard epoll >= 0, readyFD >= 0 else { throw StartError(description: "cannot create the server's epoll set: \(String(cString: strerror(errno)))") }
        var event = epoll_event(events: referee_epoll_in, data: epoll_data_t(u64: Self.readyToken))
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, readyFD, &event) == 0 else {
            throw StartError(description: "cannot watch the server's ready queue: \(String(cString: strerror(errno)))")
        }
        var started = 0
        for _ in 0..<self.workers where Thread({ [self] in work() }).start() { started += 1 }
        guard started > 0 else { throw StartError(description: "cannot start the threads that answer requests") }
        lock.withLock { live = started }
    }

    deinit {
        close(epoll)
        close(readyFD)
    }

    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// Serves `connection` from now on (its descriptor non-blocking).
    func add(_ connection: SocketConnection) -> Bool {
        lock.withLock { connections[connection.id] = connection }
        if wait(connection, for: referee_epoll_in, first: true) { return true }
        _ = lock.withLock { connections.removeValue(forKey: connection.id) }
        return false
    }

    /// Every connection served now, for the housekeeping.
    var all: [SocketConnection] { lock.withLock { Array(connections.values) } }

    /// Stops the workers after the requests they are answering (waiting at most `seconds` for them), then gives each
    /// client until `grace` seconds from now to take its replies, and closes every connection.
    func stop(waitingAtMost seconds: Double, grace: Double) {
        stopped.store(true, ordering: .relaxed)
        let deadline = LineReader.now() + seconds
        while lock.withLock({ live }) > 0 && LineReader.now() < deadline { usleep(20_000) }
        let left = lock.withLock {
            defer { connections.removeAll() }
            return Array(connections.values)
        }
        let closing = LineReader.now() + grace
        for connection in left {
            connection.flushBeforeClosing(deadline: closing)
            finish(connection)
        }
    }

    private func wait(_ connection: SocketConnection, for events: UInt32, first: Bool = false) -> Bool {
        var event = epoll_event(events: events | referee_epoll_oneshot, data: epoll_data_t(u64: connection.id))
        return epoll_ctl(epoll, first ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, connection.fd, &event) == 0
    }

    private func work() {
        var event = epoll_event()
        var readBuffer = [UInt8](repeating: 0, count: 1 << 16)
        let stopping: () -> Bool = { [self] in isStopped || SignalFlag.isRaised || shouldStop() }
        while !isStopped {
            let n = epoll_wait(epoll, &event, 1, 250)
            guard n == 1, !isStopped else { continue }
            let token = event.data.u64
            // A connection is appended to the ready queue before its count is added, so a worker that takes one from
            // the count always finds one in the queue (and one that finds the count taken by another takes nothing).
            var count: UInt64 = 0
            if token == Self.readyToken && read(readyFD, &count, 8) != 8 { continue }
            let picked: SocketConnection? = lock.withLock {
                if token != Self.readyToken { return connections[token] }
                let connection = ready[readyHead]
                readyHead += 1
                if readyHead == ready.count { ready.removeAll(keepingCapacity: true); readyHead = 0 }
                return connection
            }
            var next = picked.flatMap(claim)
            while let connection = next {
                serve(connection, readBuffer: &readBuffer, stopping: stopping)
                next = finished(connection.uid)
            }
        }
        lock.withLock { live -= 1 }
    }

    /// The connection, if its user may take another worker; otherwise it waits for one of that user's to finish.
    private func claim(_ connection: SocketConnection) -> SocketConnection? {
        lock.withLock {
            if running[connection.uid, default: 0] >= perUser {
                deferred[connection.uid, default: []].append(connection)
                return nil
            }
            running[connection.uid, default: 0] += 1
            return connection
        }
    }

    /// The worker is done with one of `uid`'s connections: it takes the next one of that user waiting for it, if any.
    private func finished(_ uid: UInt32) -> SocketConnection? {
        lock.withLock {
            if var waiting = deferred[uid], !waiting.isEmpty {
                let next = waiting.removeFirst()
                deferred[uid] = waiting.isEmpty ? nil : waiting
                return next
            }
            running[uid, default: 1] -= 1
            if running[uid] == 0 { running[uid] = nil }
            return nil
        }
    }

    private func serve(_ connection: SocketConnection, readBuffer: inout [UInt8], stopping: () -> Bool) {
        // After `wait` or the ready queue, another worker may hold the connection: it is not touched again here.
        switch connection.turn(readBuffer: &readBuffer, stopping: stopping) {
        case .wait(let events):
            if !wait(connection, for: events) { remove(connection) }
        case .again:
            lock.withLock { ready.append(connection) }
            var one: UInt64 = 1
            _ = write(readyFD, &one, 8)
        case .close:
            remove(connection)
        case .leave:
            break
        }
    }

    private func remove(_ connection: SocketConnection) {
        let present = lock.withLock { connections.removeValue(forKey: connection.id) != nil }
        if present { finish(connection) }
    }

    private func finish(_ connection: SocketConnection) {
        connection.release()
        connection.closeDescriptor()
        onClose(connection.uid)
    }
}
