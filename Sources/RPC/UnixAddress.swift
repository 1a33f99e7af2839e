#if canImport(Glibc)
public import Glibc
#endif

/// A Unix domain socket address, built in one place for the server, the client and tests.
public struct UnixAddress {
    private var address = sockaddr_un()
    public let path: String

    /// Nil when `path` does not fit in `sun_path` (108 bytes on Linux, with its terminating NUL).
    public init?(_ path: String) {
        self.path = path
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buf in
            buf.copyBytes(from: bytes)
            buf[bytes.count] = 0
        }
    }

    /// Calls `bind` or `connect` (or any call taking a `sockaddr`) with the address.
    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
