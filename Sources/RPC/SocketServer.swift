#if canImport(Glibc)
import Glibc
#endif
internal import Logging
import JSONCore

/// Serves the JSON-lines protocol to many concurrent clients on a Unix domain socket.
///
/// Each client's principal is the operating-system user of the connecting process, taken from the
/// kernel (`SO_PEERCRED`), so a client cannot claim another identity. The socket file is created with
/// mode 0660. SIGTERM/SIGINT stop accepting; requests in flight are answered before `run` returns.
///
/// The thread that calls `run` accepts and admits connections and closes those that idle, send half a line too
/// slowly or stop taking replies; a fixed set of workers (``SocketWorkers``) serves them all through one epoll set.
public final class SocketServer: @unchecked Sendable {
    /// Limits that keep one user from taking the service from the others.
    public struct Limits: Sendable {
        /// Connections open at once from one operating-system user.
        public var perUser: Int
        /// Connections open at once in all.
        public var total: Int
        /// A connection with nothing pending for this long is closed.
        public var idleSeconds: Double
        /// A request line must arrive in full within this time of its first byte.
        public var partialLineSeconds: Double
        /// A client that takes no reply bytes for this long while replies wait is disconnected.
        public var writeStallSeconds: Double
        /// Unfinished request lines of all connections together hold at most this many bytes beyond each
        /// connection's first 64 KiB buffer.
        public var bufferBudgetBytes: Int
        /// Threads serving the connections; one user holds at most half of them at once.
        public var workers: Int

        public init(perUser: Int = 256, total: Int = 4096, idleSeconds: Double = 600, partialLineSeconds: Double = 30,
                    writeStallSeconds: Double = 30, bufferBudgetBytes: Int = 256 << 20, workers: Int = 32) {
            self.perUser = perUser
            self.total = total
            self.idleSeconds = idleSeconds
            self.partialLineSeconds = partialLineSeconds
            self.writeStallSeconds = writeStallSeconds
            self.bufferBudgetBytes = bufferBudgetBytes
            self.workers = workers
        }
    }

    private let path: String
    private let dispatcher: Dispatcher
    private let limits: Limits
    private let logger = Logger(label: "referee.socket")
    private let shouldStop: @Sendable () -> Bool
    private let lock = PThreadMutex()
    private var active = 0
    private var perUser: [UInt32: Int] = [:]
    private var connectionsMade: UInt64 = 0
    private let budget: ByteBudget

    public init(path: String, dispatcher: Dispatcher, limits: Limits = Limits(), shouldStop: @escaping @Sendable () -> Bool) {
        self.path = path
        self.dispatcher = dispatcher
        self.limits = limits
        self.shouldStop = shouldStop
        self.budget = ByteBudget(bytes: limits.bufferBudgetBytes)
    }

    public struct SocketError: Error, CustomStringConvertible { public var description: String }

    /// Raises the soft descriptor limit so `total` connections fit (with room for the store and spill files).
    static func raiseDescriptorLimit(toFit connections: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
        let wanted = rlim_t(connections + 256)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(wanted, limit.rlim_max)
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }

    public func run() throws(SocketError) {
        let descriptors = Self.raiseDescriptorLimit(toFit: limits.total)
        if descriptors >= 0 && descriptors < limits.total + 64 {
            logger.warning("the descriptor limit is \(descriptors), below --max-connections \(limits.total); raise it (ulimit -n, LimitNOFILE=) or lower --max-connections")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard UnixAddress(path) != nil else { throw SocketError(description: "socket path too long: \(path)") }
        // Bound and listening under a temporary name, then renamed into place: a client never finds the path
        // before the server accepts on it (a socket file that refuses connections looks like a dead service).
        let staging = path + ".\(getpid()).new"
        let bindPath = UnixAddress(staging) != nil ? staging : path
        let address = UnixAddress(bindPath)!
        unlink(bindPath)
        let oldMask = umask(0o117)   // socket file mode 0660: owner and group only
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        umask(oldMask)
        guard bound == 0 else { throw SocketError(description: "cannot bind \(path): \(String(cString: strerror(errno)))") }
        defer { unlink(path) }
        chmod(bindPath, 0o660)
        guard listen(fd, 512) == 0 else {
            unlink(bindPath)
            throw SocketError(description: "listen(): \(String(cString: strerror(errno)))")
        }
        if bindPath != path {
            guard rename(bindPath, path) == 0 else {
                unlink(bindPath)
                throw SocketError(description: "cannot move the socket into place at \(path): \(String(cString: strerror(errno)))")
            }
        }
        // One descriptor held in reserve: when the process runs out, it is given up to accept and close the
        // waiting connection, so the listener does not spin on a connection it can never take.
        var reserve = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if reserve >= 0 { close(reserve) } }
        let workers: SocketWorkers
        do {
            workers = try SocketWorkers(workers: limits.workers, shouldStop: shouldStop, onClose: { [self] uid in release(uid) })
        } catch {
            throw SocketError(description: error.description)
        }
        logger.info("listening on \(path) (at most \(limits.perUser) connections per user, \(limits.total) in all; \(workers.workers) workers)")
        var lastExhaustedLog = 0.0
        let tick = min(max(min(limits.idleSeconds, limits.partialLineSeconds, limits.writeStallSeconds) / 4, 0.05), 0.5)
        var lastSweep = LineReader.now()
        while !(SignalFlag.isRaised || shouldStop()) {
            if LineReader.now() - lastSweep >= tick {
                sweep(workers.all)
                lastSweep = LineReader.now()
            }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: SignalFlag.wakeFD, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, SignalFlag.wakeFD >= 0 ? 2 : 1, Int32(tick * 1000))
            if ready <= 0 || fds[0].revents == 0 { continue }
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EMFILE || errno == ENFILE {
                    if reserve >= 0 { close(reserve); reserve = -1 }
                    let shed = accept(fd, nil, nil)
                    if shed >= 0 { Self.refuse(shed, "the server has no free file descriptors; try again shortly"); close(shed) }
                    reserve = open("/dev/null", O_RDONLY | O_CLOEXEC)
                    let now = LineReader.now()
                    if now - lastExhaustedLog > 10 { logger.error("out of file descriptors (\(active) connections); shedding new connections"); lastExhaustedLog = now }
                    usleep(10_000)
                }
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            guard let (principal, uid) = Self.peer(client) else { close(client); continue }
            let admitted: String? = lock.withLock {
                if active >= limits.total { return "the server has \(active) connections, its limit (--max-connections \(limits.total)); try again later" }
                if perUser[uid, default: 0] >= limits.perUser {
                    return "\(principal) already has \(limits.perUser) connections open, the limit per user (--max-connections-per-user); close some"
                }
                active += 1
                perUser[uid, default: 0] += 1
                return nil
            }
            if let refusal = admitted {
                Self.refuse(client, refusal)
                close(client)
                continue
            }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            let id = lock.withLock { connectionsMade += 1; return connectionsMade }
            let connection = SocketConnection(id: id, fd: client, uid: uid, context: RPCContext(principal: principal, transport: .socket, peerUID: uid),
                                              dispatcher: dispatcher, budget: budget)
            if !workers.add(connection) {
                Self.refuse(client, "the server cannot take another connection now; try again shortly")
                close(client)
                release(uid)
            }
        }
        // Stop accepting; let the requests being answered finish, and give clients a few seconds to take their replies.
        workers.stop(waitingAtMost: 10, grace: 5)
        logger.info("stopped")
    }

    /// Closes the connections that idled, have sent half a line for too long, or took no replies for too long.
    private func sweep(_ connections: [SocketConnection]) {
        let now = LineReader.now()
        for connection in connections {
            let clocks = connection.currentClocks
            let late = clocks.partialSince.map { now - $0 > limits.partialLineSeconds } ?? false
            let stalled = clocks.blockedSince.map { now - $0 > limits.writeStallSeconds } ?? false
            let idle = !clocks.busy && clocks.partialSince == nil && now - clocks.lastActivity > limits.idleSeconds
            if late || stalled || idle { connection.expire() }
        }
    }

    /// Gives back a connection's place in the per-user and total counts.
    private func release(_ uid: UInt32) {
        lock.withLock {
            active -= 1
            perUser[uid, default: 1] -= 1
            if perUser[uid] == 0 { perUser[uid] = nil }
        }
    }

    /// Tells a connection that is not admitted why, in one JSON-RPC error line, without waiting for it.
    static func refuse(_ fd: Int32, _ message: String) {
        let line = JSON.object(["jsonrpc": "2.0", "id": .null, "error": .object([
            "code": JSON(RPCErrorCode.serverBusy.rawValue), "message": .string("Server busy: " + message),
            "data": ["reason": "server_busy", "detail": .string(message)]])]).serialized() + "\n"
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = line.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// The user name and id of the process at the other end of a Unix socket, from the kernel.
    static func peer(_ fd: Int32) -> (String, UInt32)? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Linux; glibc hides the type behind _GNU_SOURCE).
        var cred: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0 else { return nil }
        if let pw = getpwuid(cred.uid), let name = pw.pointee.pw_name { return (String(cString: name), cred.uid) }
        return ("uid:\(cred.uid)", cred.uid)
    }
}

/// A pthread mutex (the RPC module does not import Foundation).
final class PThreadMutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

/// A detached pthread running a closure.
final class Thread {
    private let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
    /// False when no thread could be created (the body does not run).
    @discardableResult
    func start() -> Bool {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let created = pthread_create(&tid, nil, { arg in
            let t = Unmanaged<Thread>.fromOpaque(arg!).takeRetainedValue()
            t.body()
            return nil
        }, box.toOpaque())
        guard created == 0 else { box.release(); return false }
        pthread_detach(tid)
        return true
    }
}
