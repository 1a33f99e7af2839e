#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cuts a connection's bytes into request lines as they arrive, never holding more than `maxLineBytes` of one line:
/// a longer line is skipped to its newline and reported by its size. What one unfinished line holds beyond the first
/// 64 KiB is taken from a budget shared by all connections; when the budget is spent the line is skipped and
/// reported as over budget, and the connection stays.
///
/// The socket server's counterpart of ``LineReader`` (which pulls from a descriptor it may block on): this one is fed
/// whatever an event loop read.
struct LineSplitter {
    enum Item {
        /// A whole line without its newline (or a trailing CR), and the budget bytes it still holds: they are given
        /// back once the line has been answered, so lines waiting for a worker stay inside the budget.
        case line([UInt8], reserved: Int)
        case oversized(bytes: Int)
        case overBudget(bytes: Int)
    }

    /// What one connection may hold of an unfinished line without drawing on the budget.
    static let freeBytes = 1 << 16

    private let maxLineBytes: Int
    private let budget: ByteBudget?
    private var pending: [UInt8] = []
    /// Bytes skipped so far of a line that is being skipped.
    private var skipped: Int?
    private var skippedForBudget = false
    private var reserved = 0

    init(maxLineBytes: Int, budget: ByteBudget?) {
        self.maxLineBytes = maxLineBytes
        self.budget = budget
    }

    /// Some of a line has arrived, but not its end.
    var holdsPartialLine: Bool { !pending.isEmpty || skipped != nil }

    /// Splits `bytes`; `emit` is called for each line (or skipped line) they complete.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (Item) -> Void) {
        guard var base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var left = bytes.count
        while left > 0 {
            guard let found = memchr(base, 0x0A, left) else {
                take(UnsafeBufferPointer(start: base, count: left))
                return
            }
            let length = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            finishLine(UnsafeBufferPointer(start: base, count: length), emit)
            base += length + 1
            left -= length + 1
        }
    }

    /// The input ended: an unfinished last line counts as a line, as at the end of a file.
    mutating func finish(_ emit: (Item) -> Void) {
        if holdsPartialLine { finishLine(UnsafeBufferPointer(start: nil, count: 0), emit) }
    }

    /// Gives back what the connection holds of the budget; call when it ends.
    mutating func release() {
        budget?.give(reserved)
        reserved = 0
        pending = []
        skipped = nil
    }

    private mutating func finishLine(_ tail: UnsafeBufferPointer<UInt8>, _ emit: (Item) -> Void) {
        if let count = skipped {
            emit(skippedForBudget ? .overBudget(bytes: count + tail.count) : .oversized(bytes: count + tail.count))
            skipped = nil
            skippedForBudget = false
        } else if pending.count + tail.count > maxLineBytes {
            emit(.oversized(bytes: pending.count + tail.count))
            pending = []
        } else {
            var line = pending
            pending = []
            line.append(contentsOf: tail)
            if line.last == 0x0D { line.removeLast() }
            emit(.line(line, reserved: reserved))
            reserved = 0
            return
        }
        budget?.give(reserved)
        reserved = 0
    }

    /// Keeps the start of a line whose end has not arrived, within the line limit and the budget.
    private mutating func take(_ bytes: UnsafeBufferPointer<UInt8>) {
        if let count = skipped {
            skipped = count + bytes.count
            return
        }
        let total = pending.count + bytes.count
        if total > maxLineBytes {
            skip(total, forBudget: false)
            return
        }
        let needed = total - Self.freeBytes
        if let budget, needed > reserved {
            // In steps of the free size, so a line arriving in small reads does not take the budget's lock for each.
            let step = (needed - reserved + Self.freeBytes - 1) / Self.freeBytes * Self.freeBytes
            guard budget.take(step) else {
                skip(total, forBudget: true)
                return
            }
            reserved += step
        }
        pending.append(contentsOf: bytes)
    }

    private mutating func skip(_ count: Int, forBudget: Bool) {
        skipped = count
        skippedForBudget = forBudget
        pending = []
        budget?.give(reserved)
        reserved = 0
    }
}

/// Bytes that all connections together may hold beyond their first buffer, shared and thread-safe.
public final class ByteBudget: @unchecked Sendable {
    private let mutex = PThreadMutex()
    private var left: Int
    public let total: Int

    public init(bytes: Int) {
        left = bytes
        total = bytes
    }

    /// Takes `n` bytes; false (and nothing taken) when fewer are left.
    public func take(_ n: Int) -> Bool {
        mutex.withLock {
            guard left >= n else { return false }
            left -= n
            return true
        }
    }

    public func give(_ n: Int) {
        guard n > 0 else { return }
        mutex.withLock { left += n }
    }

    public var available: Int { mutex.withLock { left } }
}
