#if canImport(Glibc)
import POSIX
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a byte stream from a file descriptor into lines without ever holding more than
/// `maxLineBytes` of one line: a longer line is skipped to its newline and reported as oversized.
///
/// The stdio server's reader, which blocks on its one client; the socket server's connections are fed to a
/// ``LineSplitter`` instead.
public struct LineReader {
    public enum Item {
        /// A line and its arrival stamp (``Arrivals``).
        case line(UnsafeBufferPointer<UInt8>, arrival: UInt64)
        case oversized(bytes: Int)
    }

    private let fd: Int32
    private let maxLineBytes: Int
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var eof = false
    private var discarding = false
    private var discarded = 0
    private let chunkSize: Int
    /// Set from a signal handler: stop reading at the next opportunity.
    public var interrupted: () -> Bool = { false }
    /// The stamp of the last read: every line in the buffer had arrived by then.
    private var arrival: UInt64 = 0

    public init(fd: Int32, maxLineBytes: Int, chunkSize: Int = 1 << 16) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
        self.chunkSize = max(chunkSize, 1024)
        self.buffer = [UInt8](repeating: 0, count: self.chunkSize)
    }

    /// Calls `body` for each line; returns at end of input, on interruption, or when `body` returns false.
    public mutating func forEach(_ body: (Item) -> Bool) {
        while true {
            // Emit every complete line in the buffer.
            while let newline = firstNewline() {
                let lineEnd = newline
                if discarding {
                    discarded += lineEnd - start
                    start = lineEnd + 1
                    discarding = false
                    let count = discarded
                    discarded = 0
                    if !body(.oversized(bytes: count)) { return }
                    continue
                }
                if lineEnd - start > maxLineBytes {
                    let count = lineEnd - start
                    start = lineEnd + 1
                    if !body(.oversized(bytes: count)) { return }
                    continue
                }
                var trimmedEnd = lineEnd
                if trimmedEnd > start, buffer[trimmedEnd - 1] == 0x0D { trimmedEnd -= 1 }
                let keepGoing = buffer.withUnsafeBufferPointer { all in
                    body(.line(UnsafeBufferPointer(rebasing: all[start..<trimmedEnd]), arrival: arrival))
                }
                start = lineEnd + 1
                if !keepGoing { return }
            }
            if eof {
                if discarding {
                    _ = body(.oversized(bytes: discarded + end - start))
                } else if end - start > maxLineBytes {
                    _ = body(.oversized(bytes: end - start))
                } else if end > start {
                    _ = buffer.withUnsafeBufferPointer { all in body(.line(UnsafeBufferPointer(rebasing: all[start..<end]), arrival: arrival)) }
                }
                return
            }
            // Pending partial line: compact, enforce the limit, grow if needed, read more.
            if discarding {
                discarded += end - start
                start = 0; end = 0; scanned = 0
            } else if end - start > maxLineBytes {
                discarding = true
                discarded = end - start
                start = 0; end = 0; scanned = 0
            } else if start > 0 {
                let pending = end - start
                if pending > 0 { buffer.withUnsafeMutableBufferPointer { b in b.baseAddress!.update(from: b.baseAddress! + start, count: pending) } }
                scanned = max(scanned - start, 0)
                start = 0; end = pending
            }
            // A buffer that grew for one large line goes back to its first size once that line is done.
            if !discarding, end - start <= chunkSize / 2, buffer.count > chunkSize {
                var fresh = [UInt8](repeating: 0, count: chunkSize)
                let pending = end - start
                if pending > 0 { fresh.withUnsafeMutableBufferPointer { f in buffer.withUnsafeBufferPointer { b in f.baseAddress!.update(from: b.baseAddress! + start, count: pending) } } }
                buffer = fresh
                scanned = max(scanned - start, 0)
                start = 0; end = pending
            }
            if end == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            if interrupted() { return }
            if SignalFlag.wakeFD >= 0 {
                // Wait for input or the signal's wake-up, whichever comes first.
                var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: SignalFlag.wakeFD, events: Int16(POLLIN), revents: 0)]
                let ready = poll(&fds, 2, -1)
                if ready < 0 && !SystemCall.wasInterrupted { eof = true; continue }
                if ready <= 0 { continue }
                if fds[1].revents != 0 || interrupted() { return }
                if fds[0].revents == 0 { continue }
            }
            let n = buffer.withUnsafeMutableBufferPointer { b in read(fd, b.baseAddress! + end, b.count - end) }
            if n > 0 {
                end += n
                arrival = Arrivals.record()
            } else if n == 0 {
                eof = true
            } else if SystemCall.wasInterrupted {
                if interrupted() { return }
            } else {
                eof = true
            }
        }
    }

    /// Seconds on the monotonic clock: the one clock of the transport's timeouts.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Bytes before this index (and at or after `start`) are known to hold no newline.
    private var scanned = 0

    private mutating func firstNewline() -> Int? {
        let from = max(start, scanned)
        guard from < end else { return nil }
        let found = buffer.withUnsafeBufferPointer { b -> Int? in
            guard let p = memchr(b.baseAddress! + from, 0x0A, end - from) else { return nil }
            return b.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
        }
        scanned = found.map { $0 + 1 } ?? end
        return found
    }
}
