import POSIX
import Foundation
import Synchronization
import JSONCore
import Registry


/// The spilled form of one row: fingerprint (8 bytes), variant (1), day index (4), then per value slot a tag
/// byte: 0 for no value, 1...254 for the whole numbers 0...253 (0/1 metrics, counts, scores), 255 followed by
/// the 8 bytes of any other double. Most rows take half the bytes of fixed-width doubles, which halves what
/// goes to disk and back.
enum SpillRecord {
    static let header = 13
    static func maxSize(_ slots: Int) -> Int { header + 9 * slots }

    /// Writes a record at `b`; returns its length.
    @inline(__always)
    static func write(fp: UInt64, variant: Int, day: Int32, values: UnsafeMutablePointer<Double>, slots: [Int],
                      to b: UnsafeMutableRawPointer) -> Int {
        b.storeBytes(of: fp.littleEndian, toByteOffset: 0, as: UInt64.self)
        b.storeBytes(of: UInt8(variant), toByteOffset: 8, as: UInt8.self)
        b.storeBytes(of: day.littleEndian, toByteOffset: 9, as: Int32.self)
        var at = header
        for k in slots {
            let x = values[k]
            if x.isNaN {
                b.storeBytes(of: 0, toByteOffset: at, as: UInt8.self); at += 1
            } else if x >= 0 && x <= 253 && x == x.rounded() && x.sign == .plus {
                b.storeBytes(of: UInt8(x) + 1, toByteOffset: at, as: UInt8.self); at += 1
            } else {
                b.storeBytes(of: 255, toByteOffset: at, as: UInt8.self)
                b.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: at + 1, as: UInt64.self)
                at += 9
            }
        }
        return at
    }

    /// The length of the record at `at`, or nil when `raw` ends inside it.
    @inline(__always)
    static func length(_ raw: UnsafeRawBufferPointer, at: Int, slots: Int) -> Int? {
        var i = at + header
        for _ in 0..<slots {
            guard i < raw.count else { return nil }
            i += raw[i] == 255 ? 9 : 1
        }
        return i <= raw.count ? i - at : nil
    }

    /// The value of the slot whose tag is at `at`, and where the next tag is.
    @inline(__always)
    static func value(_ raw: UnsafeRawBufferPointer, at: Int) -> (Double, Int) {
        let tag = raw[at]
        switch tag {
        case 0: return (.nan, at + 1)
        case 255: return (Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 1, as: UInt64.self))), at + 9)
        default: return (Double(tag - 1), at + 1)
        }
    }
}

/// Appends to one file through a buffer.
final class SpillWriter {
    var fd: Int32
    let path: String
    var buffer: [UInt8] = []
    static let bufferBytes = 1 << 18

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Ingestor.ioError("cannot write a spill file", path: path) }
        buffer.reserveCapacity(Self.bufferBytes)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.bufferBytes { try flush() }
    }

    func flush() throws {
        let fd = self.fd
        try buffer.withUnsafeBytes { b in
            guard b.isEmpty || SystemCall.writeAll(fd, b.baseAddress!, b.count) else { throw Ingestor.ioError("cannot write a spill file", path: path) }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        try flush()
        Glibc.close(fd)
        fd = -1
    }
}
