#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a byte stream from a file descriptor into lines without ever holding more than
/// `maxLineBytes` of one line: a longer line is skipped to its newline and reported as oversized.
public struct LineReader {
    public enum Item {
        case line(UnsafeBufferPointer<UInt8>)
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
    /// Set from a signal handler: stop reading at the next opportunity.
    public var interrupted: () -> Bool = { false }

    public init(fd: Int32, maxLineBytes: Int, chunkSize: Int = 1 << 16) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
        self.buffer = [UInt8](repeating: 0, count: max(chunkSize, 1024))
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
                    body(.line(UnsafeBufferPointer(rebasing: all[start..<trimmedEnd])))
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
                    _ = buffer.withUnsafeBufferPointer { all in body(.line(UnsafeBufferPointer(rebasing: all[start..<end]))) }
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
            if end == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            if interrupted() { return }
            if SignalFlag.wakeFD >= 0 {
                var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: SignalFlag.wakeFD, events: Int16(POLLIN), revents: 0)]
                let ready = poll(&fds, 2, -1)
                if ready < 0 && errno != EINTR { eof = true; continue }
                if fds[1].revents != 0 || interrupted() { return }
                if fds[0].revents == 0 { continue }
            }
            let n = buffer.withUnsafeMutableBufferPointer { b in read(fd, b.baseAddress! + end, b.count - end) }
            if n > 0 {
                end += n
            } else if n == 0 {
                eof = true
            } else if errno == EINTR {
                if interrupted() { return }
            } else {
                eof = true
            }
        }
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
