#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Tells, without a system call, whether any connection in any process has committed to a WAL-mode
/// store since a moment, so a hot read can be answered from memory.
///
/// SQLite keeps the WAL-index header in the `-shm` file, mapped shared by every connection (database
/// file format, section 4.5): two copies of a 48-byte header, the second written first, so equal
/// copies are a consistent header. Every commit changes it (the frame count grows, or the salt changes
/// when the log restarts), and a checkpoint changes nothing readers can see. Equal headers at two
/// moments therefore mean no commit happened in between; any doubt (copies differ mid-write, the file
/// is not initialised) answers "unknown" and the caller reads the database.
final class CommitWatch: CommitClock, @unchecked Sendable {
    /// The header's bytes at one moment.
    struct Token: Equatable {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        /// Byte 12 of the header, `isInit`.
        var isInitialised: Bool { withUnsafeBytes(of: words) { $0[12] } == 1 }
        static func == (a: Token, b: Token) -> Bool {
            a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
                && a.words.3 == b.words.3 && a.words.4 == b.words.4 && a.words.5 == b.words.5
        }
    }

    private static let headerBytes = 48
    private static let mappedBytes = 2 * headerBytes
    private let fd: Int32
    private let base: UnsafeRawPointer

    /// Maps the `-shm` file of the store at `path`; nil when there is none (not WAL, not opened yet).
    /// The store's own connections keep the file alive and initialised while this object exists.
    init?(storePath path: String) {
        // SQLite names the `-shm` file after the database file with symbolic links resolved.
        guard let resolved = realpath(path, nil) else { return nil }
        let target = String(cString: resolved)
        free(resolved)
        let fd = open(target + "-shm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) >= Self.mappedBytes,
              let mapped = mmap(nil, Self.mappedBytes, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED
        else {
            close(fd)
            return nil
        }
        self.fd = fd
        self.base = UnsafeRawPointer(mapped)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), Self.mappedBytes)
        close(fd)
    }

    /// The current header, or nil when it cannot be trusted right now.
    func token(arrival _: UInt64?) -> Token? {
        let first = read(at: 0)
        atomicMemoryFence(ordering: .acquiring)
        let second = read(at: Self.headerBytes)
        // Byte 12 is `isInit`; a header that is not initialised says nothing.
        guard first == second, first.isInitialised else { return nil }
        return first
    }

    private func read(at offset: Int) -> Token {
        let p = base + offset
        return Token(words: (p.loadUnaligned(fromByteOffset: 0, as: UInt64.self), p.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                             p.loadUnaligned(fromByteOffset: 16, as: UInt64.self), p.loadUnaligned(fromByteOffset: 24, as: UInt64.self),
                             p.loadUnaligned(fromByteOffset: 32, as: UInt64.self), p.loadUnaligned(fromByteOffset: 40, as: UInt64.self)))
    }
}

/// Tells whether anyone has committed to a store since a moment: equal tokens, no commit in between; nil, "cannot
/// tell" (the caller reads the database). `arrival` is when the request being answered had arrived (nil: unknown).
protocol CommitClock: Sendable {
    associatedtype Token: Equatable & Sendable
    func token(arrival: UInt64?) throws -> Token?
}

/// A read whose answers may be kept in memory while no commit happens, on either store's clock. An enum, not an
/// existential: through `any`, the hot read ran the cache's unspecialized generic code (a metadata lookup per call).
enum ReadCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    case wal(CommitCache<CommitWatch, Key, Value>)
    case postgres(CommitCache<PostgresCommitClock, Key, Value>)

    func value(_ key: Key, arrival: UInt64?, load: () throws -> Value) throws -> Value {
        switch self {
        case .wal(let cache): try cache.value(key, arrival: arrival, load: load)
        case .postgres(let cache): try cache.value(key, arrival: arrival, load: load)
        }
    }

    /// After this process's commit moved a PostgreSQL store's count from `from` to `to` without changing what these
    /// answers depend on: the answers known at `from` hold at `to`.
    func carry(from: Int, to: Int) {
        if case .postgres(let cache) = self { cache.carry(from: from, to: to) }
    }
}

/// Answers of one read method, kept while no commit happens anywhere; emptied by the next commit.
final class CommitCache<Clock: CommitClock, Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    private struct State {
        var token: Clock.Token?
        var entries: [Key: Value] = [:]
    }
    private let clock: Clock
    private let capacity: Int
    /// Read under `lock` shared, changed under it exclusive.
    private var state = State()
    private let lock = SharedLock()

    init(clock: Clock, capacity: Int = 4096) {
        self.clock = clock
        self.capacity = capacity
    }

    /// Keeps the answers known at `from` as answers at `to` (see `ReadCache.carry`).
    func carry(from: Clock.Token, to: Clock.Token) {
        lock.writing { if state.token == from { state.token = to } }
    }

    /// The cached answer for `key` when no commit happened since it was read; otherwise `load()`'s answer,
    /// remembered only if no commit happened while it ran (so it is the answer at a known token).
    func value(_ key: Key, arrival: UInt64?, load: () throws -> Value) throws -> Value {
        guard let before = try clock.token(arrival: arrival) else { return try load() }
        let current: Value?? = lock.reading { state.token == before ? .some(state.entries[key]) : .none }
        switch current {
        case .some(.some(let hit)): return hit
        case .some(.none): break
        case .none:
            lock.writing {
                if state.token != before { state.token = before; state.entries.removeAll(keepingCapacity: true) }
            }
        }
        let value = try load()
        guard try clock.token(arrival: arrival) == before else { return value }
        lock.writing {
            guard state.token == before else { return }
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = value
        }
        return value
    }
}

/// A reader-writer lock for the hot read caches: readers share it without entering the kernel. (On Linux a
/// `Synchronization.Mutex` is a priority-inheritance futex: eight socket workers answering `experiment.get` from one
/// cache spent 40% of their time queued in the kernel for it.)
final class SharedLock: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init() { pthread_rwlock_init(lock, nil) }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func reading<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func writing<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
