#if canImport(Glibc)
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
        // Replies to a pipelined burst go out together: held until the reader has no complete line left
        // (it is about to wait), a buffer's worth has built up, or the oldest has waited a millisecond.
        var output = ReplyBuffer(fd: self.output)
        reader.idle = { output.flush() }
        let maxLine = dispatcher.limits.maxLineBytes
        reader.forEach { item in
            switch item {
            case .line(let bytes):
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }
                if let reply = dispatcher.handle(line: bytes, context: context) { output.append(reply) }
            case .oversized(let count):
                logger.warning("refused a line of \(count) bytes (limit \(maxLine))")
                output.append(dispatcher.errorLine(RPCError(
                    code: .invalidRequest,
                    message: "Invalid request: line of \(count) bytes exceeds the limit of \(maxLine) bytes (--max-line-bytes)",
                    data: ["reason": "limit_exceeded", "limit": "max_line_bytes", "max": JSON(maxLine), "got": JSON(count)])))
            }
            return !(SignalFlag.isRaised || stop())
        }
        output.flush()
    }
}

/// Reply lines waiting to be written in one system call.
struct ReplyBuffer {
    private let fd: Int32
    private var bytes: [UInt8] = []
    private var oldest: UInt64 = 0
    private static let flushBytes = 1 << 16
    private static let maxWaitNanoseconds: UInt64 = 1_000_000

    init(fd: Int32) {
        self.fd = fd
        bytes.reserveCapacity(Self.flushBytes * 2)
    }

    mutating func append(_ reply: [UInt8]) {
        let now = Self.monotonicNanoseconds()
        if bytes.isEmpty { oldest = now }
        bytes.append(contentsOf: reply)
        bytes.append(0x0A)
        if bytes.count >= Self.flushBytes || now - oldest >= Self.maxWaitNanoseconds { flush() }
    }

    mutating func flush() {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBufferPointer { buf in
            var offset = 0
            while offset < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
        bytes.removeAll(keepingCapacity: bytes.capacity <= Self.flushBytes * 4)
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
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
