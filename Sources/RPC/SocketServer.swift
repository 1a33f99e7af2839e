#if canImport(Glibc)
import Glibc
#endif
internal import Logging

/// Serves the JSON-lines protocol to many concurrent clients on a Unix domain socket.
///
/// Each client's principal is the operating-system user of the connecting process, taken from the
/// kernel (`SO_PEERCRED`), so a client cannot claim another identity. The socket file is created with
/// mode 0660. SIGTERM/SIGINT stop accepting; requests in flight are answered before `run` returns.
public final class SocketServer: @unchecked Sendable {
    private let path: String
    private let dispatcher: Dispatcher
    private let logger = Logger(label: "referee.socket")
    private let shouldStop: @Sendable () -> Bool
    private let lock = PThreadMutex()
    private var active = 0

    public init(path: String, dispatcher: Dispatcher, shouldStop: @escaping @Sendable () -> Bool) {
        self.path = path
        self.dispatcher = dispatcher
        self.shouldStop = shouldStop
    }

    public struct SocketError: Error, CustomStringConvertible { public var description: String }

    public func run() throws(SocketError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw SocketError(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { buf in
            buf.copyBytes(from: bytes)
            buf[bytes.count] = 0
        }
        unlink(path)
        let oldMask = umask(0o117)   // socket file mode 0660: owner and group only
        let bound = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(oldMask)
        guard bound == 0 else { throw SocketError(description: "cannot bind \(path): \(String(cString: strerror(errno)))") }
        defer { unlink(path) }
        chmod(path, 0o660)
        guard listen(fd, 128) == 0 else { throw SocketError(description: "listen(): \(String(cString: strerror(errno)))") }
        logger.info("listening on \(path)")
        while !(SignalFlag.isRaised || shouldStop()) {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: SignalFlag.wakeFD, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, SignalFlag.wakeFD >= 0 ? 2 : 1, 500)
            if ready <= 0 || fds[0].revents == 0 { continue }
            let client = accept(fd, nil, nil)
            if client < 0 { continue }
            guard let (principal, uid) = Self.peer(client) else { close(client); continue }
            lock.withLock { active += 1 }
            let thread = Thread { [self] in
                let server = LineServer(dispatcher: dispatcher, input: client, output: client,
                                        context: RPCContext(principal: principal, transport: .socket, peerUID: uid), shouldStop: shouldStop)
                server.run()
                close(client)
                lock.withLock { active -= 1 }
            }
            thread.start()
        }
        // Stop accepting; let clients finish the request they are in.
        var waited = 0
        while lock.withLock({ active }) > 0 && waited < 100 { usleep(50_000); waited += 1 }
        logger.info("stopped")
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
    func start() {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        pthread_create(&tid, nil, { arg in
            let t = Unmanaged<Thread>.fromOpaque(arg!).takeRetainedValue()
            t.body()
            return nil
        }, box.toOpaque())
        pthread_detach(tid)
    }
}
