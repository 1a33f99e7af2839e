import Foundation
import Testing
import POSIX

/// The one EINTR rule: interrupted calls are made again, partial writes are finished, real errors are reported.
@Suite struct SystemCallTests {
    @Test func writeAllFinishesPartialWritesThroughAPipe() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let payload = [UInt8](repeating: 7, count: 1 << 20)   // larger than a pipe's buffer: several partial writes
        let readEnd = fds[0]
        let reader = Thread {
            var got = 0
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { b in SystemCall.retrying { read(readEnd, b.baseAddress!, b.count) } }
                if n <= 0 { break }
                got += n
            }
            ReaderResult.bytes = got
        }
        reader.start()
        #expect(payload.withUnsafeBytes { SystemCall.writeAll(fds[1], $0.baseAddress!, $0.count) })
        close(fds[1])
        while !reader.isFinished { usleep(1000) }
        close(fds[0])
        #expect(ReaderResult.bytes == payload.count)
    }

    @Test func aRealErrorIsReportedNotRetried() {
        var byte: UInt8 = 1
        #expect(!SystemCall.writeAll(-1, &byte, 1))
        #expect(errno == EBADF && !SystemCall.wasInterrupted)
        #expect(SystemCall.retrying { read(-1, &byte, 1) } == -1)
    }
}

enum ReaderResult { nonisolated(unsafe) static var bytes = 0 }
