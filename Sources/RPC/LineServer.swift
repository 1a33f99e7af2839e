#if canImport(Glibc)
import POSIX
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import JSONCore
internal import Logging

/// Serves JSON-RPC over JSON lines: one request per input line, one response per output line.
///
/// Stops at end of input, when `shouldStop` turns true (the `shutdown` method), or after SIGTERM/SIGINT:
/// a request already read is answered before the server returns.
public final class LineServer {
    private let dispatcher: Dispatcher
    private let input: Int32
    private let output: Int32
    private let context: RPCContext
    private let logger = Logger(label: "referee.rpc")
    public var shouldStop: @Sendable () -> Bool

    public init(dispatcher: Dispatcher, input: Int32, output: Int32, context: RPCContext, shouldStop: @escaping @Sendable () -> Bool = { false }) {
        self.dispatcher = dispatcher
        self.input = input
        self.output = output
        self.context = context
        self.shouldStop = shouldStop
    }

    public func run() {
        var reader = LineReader(fd: input, maxLineBytes: dispatcher.limits.maxLineBytes)
        let stop = shouldStop
        reader.interrupted = { SignalFlag.isRaised || stop() }
        let output = ReplyWriter(fd: self.output)
        defer { output.finish(stopping: SignalFlag.isRaised || stop()) }
        var context = self.context
        reader.forEach { item in
            switch item {
            case .line(let bytes, let arrival):
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }
                context.arrival = arrival
                if let reply = dispatcher.handle(line: bytes, context: context) { output.send(reply) }
            case .oversized(let count):
                logger.warning("refused a line of \(count) bytes (limit \(dispatcher.limits.maxLineBytes))")
                output.send(dispatcher.oversizedLineReply(count))
            }
            // A client whose replies were given up (it stopped reading) gets no more work done for it.
            return !(SignalFlag.isRaised || stop() || output.isAbandoned)
        }
    }
}

/// Writes reply lines from a thread of its own, so the requests that follow are served while replies go
/// out, and replies to a pipelined burst leave in one system call: whatever accumulated while the previous
/// write ran is written next. A reply is never held back for the next request. When the client reads
/// slower than requests are served, `send` waits once `maxPending` bytes are queued (backpressure).
///
/// A client that stops reading must not keep the daemon from stopping: once the server is asked to stop
/// (`shutdown`, SIGTERM, SIGINT) the client gets `graceSeconds` to take its replies; then they are dropped
/// and a blocked write is interrupted with SIGUSR2 (a no-op handler without SA_RESTART).
final class ReplyWriter: @unchecked Sendable {
    private let fd: Int32
    private var mutex = pthread_mutex_t()
    private var ready = pthread_cond_t()      // replies queued, or finishing
    private var drained = pthread_cond_t()    // the writer took the queue, or gave up
    private var stopped = pthread_cond_t()    // the writer thread returned
    private var queued: [UInt8] = []
    private var finishing = false
    private var abandoned = false             // replies are being dropped; the writer must not block
    private var exited = false
    private var thread = pthread_t()
    private var threaded = false
    private static let maxPending = 4 << 20
    private static let graceSeconds = 5.0

    private static let interruptHandler: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR2, &action, nil)
    }()

    init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&ready, nil)
        pthread_cond_init(&drained, nil)
        pthread_cond_init(&stopped, nil)
        _ = Self.interruptHandler
        let box = Unmanaged.passRetained(self)
        let created = pthread_create(&thread, nil, { arg in
            Unmanaged<ReplyWriter>.fromOpaque(arg!).takeRetainedValue().writeLoop()
            return nil
        }, box.toOpaque())
        // Out of threads: write from the caller instead.
        if created != 0 { box.release() }
        threaded = created == 0
    }

    deinit {
        pthread_cond_destroy(&ready)
        pthread_cond_destroy(&drained)
        pthread_cond_destroy(&stopped)
        pthread_mutex_destroy(&mutex)
    }

    func send(_ reply: [UInt8]) {
        guard threaded else {
            if !abandoned { abandoned = !writeAll(reply + [0x0A]) }
            return
        }
        pthread_mutex_lock(&mutex)
        var deadline: Double?
        while queued.count >= Self.maxPending && !abandoned {
            wait(&drained)
            if SignalFlag.isRaised {
                deadline = deadline ?? Self.now() + Self.graceSeconds
                if Self.now() > deadline! { abandonLocked() }
            }
        }
        if !abandoned {
            let wasEmpty = queued.isEmpty
            queued.append(contentsOf: reply)
            queued.append(0x0A)
            if wasEmpty { pthread_cond_signal(&ready) }
        }
        pthread_mutex_unlock(&mutex)
    }

    /// Writes everything queued, then stops the writer thread. At the end of input a client may still be
    /// reading, so it gets all its replies; when the server is stopping (now or later, by signal), only
    /// what it takes within the grace period.
    func finish(stopping: Bool) {
        guard threaded else { return }
        pthread_mutex_lock(&mutex)
        finishing = true
        pthread_cond_signal(&ready)
        var deadline = stopping ? Self.now() + Self.graceSeconds : nil
        while !exited {
            if deadline == nil && SignalFlag.isRaised { deadline = Self.now() + Self.graceSeconds }
            if let limit = deadline, !abandoned && Self.now() > limit { abandonLocked() }
            wait(&stopped)
            if abandoned && !exited { pthread_kill(thread, SIGUSR2) }
        }
        pthread_mutex_unlock(&mutex)
        pthread_join(thread, nil)
    }

    /// With the mutex held: drop what is queued and interrupt a write in progress.
    private func abandonLocked() {
        abandoned = true
        queued.removeAll()
        pthread_cond_broadcast(&drained)
        pthread_kill(thread, SIGUSR2)
    }

    /// Waits on `condition` for at most 100 ms (the mutex held).
    private func wait(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        ts.tv_nsec += 100_000_000
        if ts.tv_nsec >= 1_000_000_000 { ts.tv_sec += 1; ts.tv_nsec -= 1_000_000_000 }
        pthread_cond_timedwait(condition, &mutex, &ts)
    }

    private func writeLoop() {
        // The interrupt must reach this thread even if the parent started us with the signal blocked.
        var interrupt = sigset_t()
        sigemptyset(&interrupt)
        sigaddset(&interrupt, SIGUSR2)
        pthread_sigmask(SIG_UNBLOCK, &interrupt, nil)
        var batch: [UInt8] = []
        while true {
            pthread_mutex_lock(&mutex)
            while queued.isEmpty && !finishing { pthread_cond_wait(&ready, &mutex) }
            if queued.isEmpty || abandoned {
                exited = true
                pthread_cond_broadcast(&stopped)
                pthread_mutex_unlock(&mutex)
                return
            }
            swap(&batch, &queued)
            pthread_cond_broadcast(&drained)
            pthread_mutex_unlock(&mutex)
            if !writeAll(batch) {
                // The client went away, or would not read while the server stopped: drop the rest.
                pthread_mutex_lock(&mutex)
                abandoned = true
                queued.removeAll()
                pthread_cond_broadcast(&drained)
                pthread_mutex_unlock(&mutex)
            }
            batch.removeAll(keepingCapacity: batch.capacity <= Self.maxPending)
        }
    }

    /// Writes all of `bytes`; false when the client is gone or the replies were abandoned. A non-blocking
    /// descriptor is waited for with `poll`.
    private func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buf in
            var offset = 0
            while offset < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n > 0 { offset += n; continue }
                guard n < 0, SystemCall.wasInterrupted || errno == EAGAIN || errno == EWOULDBLOCK else { return false }
                if isAbandoned { return false }
                if !SystemCall.wasInterrupted {
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&p, 1, 100)
                }
            }
            return true
        }
    }

    var isAbandoned: Bool {
        guard threaded else { return abandoned }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return abandoned
    }

    private static func now() -> Double { LineReader.now() }
}

/// SIGTERM and SIGINT set a flag and wake the reader through a self-pipe (the signal may land on any
/// thread, so interrupting `read` is not enough); the server finishes the request in flight and returns.
public enum SignalFlag {
    nonisolated(unsafe) private static var raised: sig_atomic_t = 0
    nonisolated(unsafe) private static var pipeFDs: [Int32] = [-1, -1]
    nonisolated(unsafe) private static var writeFD: Int32 = -1

    public static var isRaised: Bool { raised != 0 }

    /// The read end of the self-pipe, or -1 before ``install()``.
    public static var wakeFD: Int32 { pipeFDs[0] }

    public static func install() {
        guard writeFD < 0 else { return }
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
            pipeFDs = fds
            writeFD = fds[1]
        }
        for signal in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in
                SignalFlag.raised = 1
                var byte: UInt8 = 1
                _ = Glibc.write(SignalFlag.writeFD, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(signal, &action, nil)
        }
        // A parent may have started us with these signals blocked (the mask is inherited): unblock them.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        // A client that hangs up must not kill the daemon with SIGPIPE.
        Glibc.signal(SIGPIPE, SIG_IGN)
    }
}
