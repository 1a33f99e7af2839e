#if canImport(Glibc)
import Glibc
#endif

/// The files of a SQLite store on disk, as the shared service must find them.
public enum StoreFiles {
    /// Why the store at `path` must not be served to other users, with the fix; nil when it is safe.
    ///
    /// Clients of the shared service are in its group so they can reach the socket. If they could also
    /// write the store (or its `-wal`/`-shm` files, or replace them in their directory), they could grant
    /// themselves any role with the `sqlite3` shell. So the store belongs to the service user alone: the
    /// files are 0600 and the directory is not writable by anyone else. The server never widens a mode.
    public static func problemForSharedService(_ path: String) -> String? {
        // A PostgreSQL registry is guarded by its roles and password, which clients of the socket never get.
        guard path != ":memory:", !PostgresLocation.isLocation(path) else { return nil }
        // The files SQLite uses are named after the path with symbolic links resolved; check those.
        var path = path
        if let real = realpath(path, nil) { path = String(cString: real); free(real) }
        let me = geteuid()
        let directory = parent(of: path)
        var info = stat()
        if stat(directory, &info) == 0 {
            if info.st_uid != me && info.st_uid != 0 {
                return "the store's directory \(directory) belongs to uid \(info.st_uid), not to the service user (uid \(me)); put the store in a directory the service user owns (install -d -m 0700 DIR)"
            }
            if info.st_mode & 0o022 != 0 {
                return "the store's directory \(directory) is writable by other users (mode \(octal(info.st_mode & 0o7777))), who could replace the store; chmod 0700 \(directory), or put the store in a directory only the service user can write"
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = path + suffix
            guard stat(file, &info) == 0 else { continue }
            if info.st_uid != me {
                return "\(file) belongs to uid \(info.st_uid), not to the service user (uid \(me)); chown it to the service user"
            }
            if info.st_mode & 0o077 != 0 {
                return "\(file) is open to other users (mode \(octal(info.st_mode & 0o7777))); clients need only the socket: chmod 0600 \(path) \(path)-wal \(path)-shm"
            }
        }
        return nil
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let head = String(path[..<slash])
        return head.isEmpty ? "/" : head
    }

    static func octal(_ mode: mode_t) -> String {
        var n = UInt32(mode), digits = ""
        repeat { digits = String(n % 8) + digits; n /= 8 } while n > 0
        return "0" + digits
    }
}
