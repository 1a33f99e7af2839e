#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// System calls as the transport and ingestion make them: a call a signal interrupted (`EINTR`) is made again,
/// here and nowhere else. Loops that must notice the signal itself (a reader that stops on SIGTERM) check
/// ``SystemCall/wasInterrupted`` instead of comparing `errno` themselves.
public enum SystemCall {
    /// `call()` again while it fails with `EINTR`; otherwise its result, with `errno` as it left it.
    @inline(__always)
    public static func retrying<T: SignedInteger>(_ call: () -> T) -> T {
        while true {
            let r = call()
            if r < 0 && errno == EINTR { continue }
            return r
        }
    }

    /// Writes all `count` bytes, through partial and interrupted writes; false when `write` fails otherwise
    /// (`errno` says why) or writes nothing.
    public static func writeAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int) -> Bool {
        var done = 0
        while done < count {
            let n = retrying { write(fd, base + done, count - done) }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    /// Whether the last failed call was interrupted by a signal.
    public static var wasInterrupted: Bool { errno == EINTR }
}
