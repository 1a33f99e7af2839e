#if canImport(Glibc)
import POSIX
import Glibc
#endif
public import JSONCore

/// A blocking JSON-lines client of a `referee serve --socket PATH` server: one request, one response line.
public final class SocketClient {
    public struct Failure: Error, CustomStringConvertible { public var description: String }

    private let fd: Int32
    private var buffer: [UInt8] = []

    public init(path: String) throws(Failure) {
        guard let address = UnixAddress(path) else { throw Failure(description: "socket path too long: \(path)") }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        let ok = address.withSockaddr { [fd] in connect(fd, $0, $1) }
        guard ok == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot connect to \(path): \(reason)")
        }
    }

    deinit { close(fd) }

    /// Sends one message and returns the next response line, parsed.
    public func request(_ message: JSON) throws(Failure) -> JSON {
        var out: [UInt8] = []
        message.write(into: &out)
        out.append(0x0A)
        try send(out)
        return try readLine()
    }

    /// Sends raw bytes (a whole line, newline included).
    public func send(_ bytes: [UInt8]) throws(Failure) {
        let fd = self.fd
        guard bytes.withUnsafeBytes({ SystemCall.writeAll(fd, $0.baseAddress!, $0.count) }) else {
            throw Failure(description: "the server closed the connection")
        }
    }

    /// Reads `count` reply lines without parsing them (a benchmark's client, which must not be the bottleneck).
    public func skipLines(_ count: Int) throws(Failure) {
        var left = count
        while left > 0 {
            var consumed = 0
            while left > 0, let nl = buffer[consumed...].firstIndex(of: 0x0A) {
                consumed = nl + 1
                left -= 1
            }
            buffer.removeSubrange(..<consumed)
            if left == 0 { return }
            try fill()
        }
    }

    public func readLine() throws(Failure) -> JSON {
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                do { return try JSONParser.parse(line) } catch { throw Failure(description: "bad response from the server: \(error)") }
            }
            try fill()
        }
    }

    /// Appends what one read brings to the buffer.
    private func fill() throws(Failure) {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let n = chunk.withUnsafeMutableBytes { b in SystemCall.retrying { read(fd, b.baseAddress!, 1 << 16) } }
        guard n > 0 else { throw Failure(description: "the server closed the connection") }
        buffer.append(contentsOf: chunk[..<n])
    }
}
