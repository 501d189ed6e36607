//! A SQLite VFS that reads one already-open, already-verified file descriptor, and nothing else.
//!
//! Why it exists: SQLite's own `unix` VFS opens databases *by name*, and its `xFullPathname`
//! follows every symlink in that name itself (`/proc/self/fd/N` included: it is read back to
//! the path outside). So whatever hostready resolved inside `--root`, SQLite would resolve the
//! name again, on this machine, outside the root: a `rpmdb.sqlite` symlink, or a `var/lib/rpm`
//! swapped for a symlink between our check and SQLite's open, would make it read a database
//! outside the root. Here SQLite never sees a path: [`open`] hands it the descriptor
//! [`hostready_host::Root`] opened (`openat2(RESOLVE_IN_ROOT)` or the rooted walker), through a
//! one-use token, and the VFS's `xOpen` takes that descriptor. `xAccess` says no side file
//! exists, `xDelete`, `xWrite` and `xTruncate` refuse, and any open other than the main
//! database (journal, WAL, temp file) fails, so SQLite can touch no other file either.
//! No crate offers a VFS over a descriptor for our rusqlite (the VFS crates on crates.io bring
//! their own SQLite build or a different rusqlite), hence this file.
//!
//! Why it needs `unsafe`: a VFS is a table of C callbacks SQLite calls with raw pointers
//! (`sqlite3_vfs`, `sqlite3_file`, output buffers); there is no safe binding for registering
//! one. Every callback checks its pointers for null, touches only the memory SQLite documents
//! as its own (sqlite.org/c3ref/vfs.html, c3ref/io_methods.html), and never unwinds into C
//! (each body is plain arithmetic, a `pread`/`fstat` through rustix, or a copy).

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use rusqlite::{Connection, OpenFlags, ffi};

/// The name this VFS is registered under (never the default VFS).
const VFS_NAME: &CStr = c"hostready-fd";

/// Descriptors handed to [`open`] and not yet taken by `xOpen`, by one-use token.
static PENDING: Mutex<Option<HashMap<u64, OwnedFd>>> = Mutex::new(None);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Opens a read-only, immutable SQLite connection on `file` (a duplicate of its descriptor),
/// never on any path. `immutable=1` makes SQLite take no lock and look for no journal or WAL.
pub(crate) fn open(file: &File) -> rusqlite::Result<Connection> {
    register()?;
    let fd = file
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    pending().get_or_insert_with(HashMap::new).insert(token, fd);
    let uri = format!("file:/hostready-fd/{token}?mode=ro&immutable=1");
    let conn = Connection::open_with_flags_and_vfs(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        VFS_NAME,
    );
    // If SQLite failed before xOpen took it, the duplicate is closed here.
    if let Some(map) = pending().as_mut() {
        map.remove(&token);
    }
    let conn = conn?;
    // Sorts and temporary tables stay in memory: this VFS opens no temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

fn pending() -> std::sync::MutexGuard<'static, Option<HashMap<u64, OwnedFd>>> {
    // A poisoned lock only means another thread panicked holding it; the map is still sound.
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers the VFS once per process (SQLite keeps the pointer forever, so it is leaked).
fn register() -> rusqlite::Result<()> {
    static DONE: OnceLock<c_int> = OnceLock::new();
    let rc = *DONE.get_or_init(|| {
        let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
            iVersion: 1,
            szOsFile: std::mem::size_of::<FdFile>() as c_int,
            mxPathname: 512,
            pNext: std::ptr::null_mut(),
            zName: VFS_NAME.as_ptr(),
            pAppData: std::ptr::null_mut(),
            xOpen: Some(x_open),
            xDelete: Some(x_delete),
            xAccess: Some(x_access),
            xFullPathname: Some(x_full_pathname),
            xDlOpen: Some(x_dl_open),
            xDlError: Some(x_dl_error),
            xDlSym: Some(x_dl_sym),
            xDlClose: Some(x_dl_close),
            xRandomness: Some(x_randomness),
            xSleep: Some(x_sleep),
            xCurrentTime: Some(x_current_time),
            xGetLastError: Some(x_get_last_error),
            xCurrentTimeInt64: None,
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        }));
        // SAFETY: `vfs` is a valid, fully initialised sqlite3_vfs that lives for the rest of
        // the process (leaked); 0 = do not make it the default VFS. sqlite3_vfs_register
        // initialises the library itself if needed.
        unsafe { ffi::sqlite3_vfs_register(vfs, 0) }
    });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

/// SQLite's file object for this VFS: the base struct first, as SQLite requires.
#[repr(C)]
struct FdFile {
    base: ffi::sqlite3_file,
    /// Owned: closed by `xClose`.
    fd: RawFd,
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(io_close),
    xRead: Some(io_read),
    xWrite: Some(io_write),
    xTruncate: Some(io_truncate),
    xSync: Some(io_sync),
    xFileSize: Some(io_file_size),
    xLock: Some(io_lock),
    xUnlock: Some(io_lock),
    xCheckReservedLock: Some(io_check_reserved_lock),
    xFileControl: Some(io_file_control),
    xSectorSize: Some(io_sector_size),
    xDeviceCharacteristics: Some(io_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// Returns the token of a name this VFS made (`/hostready-fd/<token>`).
fn token_of(name: &CStr) -> Option<u64> {
    name.to_str()
        .ok()?
        .strip_prefix("/hostready-fd/")?
        .parse()
        .ok()
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    if file.is_null() {
        return ffi::SQLITE_CANTOPEN;
    }
    // SAFETY: SQLite passes a buffer of szOsFile bytes; pMethods must be null on failure so
    // SQLite does not call xClose on it.
    unsafe { (*file).pMethods = std::ptr::null() };
    // Only the main database, read-only: never a journal, WAL, temp or any other file.
    if name.is_null() || flags & ffi::SQLITE_OPEN_MAIN_DB == 0 {
        return ffi::SQLITE_CANTOPEN;
    }
    if flags & (ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE) != 0 {
        return ffi::SQLITE_READONLY;
    }
    // SAFETY: a non-null sqlite3_filename is a NUL-terminated string owned by SQLite.
    let name = unsafe { CStr::from_ptr(name) };
    let Some(fd) = token_of(name).and_then(|t| pending().as_mut()?.remove(&t)) else {
        return ffi::SQLITE_CANTOPEN;
    };
    let f = file.cast::<FdFile>();
    // SAFETY: the buffer is szOsFile = size_of::<FdFile>() bytes, suitably aligned by SQLite
    // (it allocates with 8-byte alignment); we fill every field before returning OK.
    unsafe {
        (*f).fd = fd.into_raw_fd();
        (*f).base.pMethods = &IO_METHODS;
        if !out_flags.is_null() {
            *out_flags = ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_MAIN_DB;
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete(_: *mut ffi::sqlite3_vfs, _: *const c_char, _: c_int) -> c_int {
    ffi::SQLITE_IOERR_DELETE
}

unsafe extern "C" fn x_access(
    _: *mut ffi::sqlite3_vfs,
    _: *const c_char,
    _: c_int,
    out: *mut c_int,
) -> c_int {
    // No journal, WAL or other side file exists as far as SQLite is concerned: hostready looks
    // at those itself, through the root.
    if !out.is_null() {
        // SAFETY: SQLite passes a valid int to write the answer to.
        unsafe { *out = 0 };
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_full_pathname(
    _: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    // The name is a token, not a path: returned as is, never resolved.
    if name.is_null() || out.is_null() || n_out <= 0 {
        return ffi::SQLITE_CANTOPEN;
    }
    // SAFETY: `name` is NUL-terminated (SQLite's); `out` has room for n_out bytes.
    unsafe {
        let bytes = CStr::from_ptr(name).to_bytes_with_nul();
        if bytes.len() > n_out as usize {
            return ffi::SQLITE_CANTOPEN;
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), out, bytes.len());
    }
    ffi::SQLITE_OK
}

// Extension loading is never used (and rusqlite's load_extension is not compiled in).
unsafe extern "C" fn x_dl_open(_: *mut ffi::sqlite3_vfs, _: *const c_char) -> *mut c_void {
    std::ptr::null_mut()
}
unsafe extern "C" fn x_dl_error(_: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    if !out.is_null() && n > 0 {
        // SAFETY: `out` has room for n bytes; an empty string is one.
        unsafe { *out = 0 };
    }
}
type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);
unsafe extern "C" fn x_dl_sym(
    _: *mut ffi::sqlite3_vfs,
    _: *mut c_void,
    _: *const c_char,
) -> Option<DlSym> {
    None
}
unsafe extern "C" fn x_dl_close(_: *mut ffi::sqlite3_vfs, _: *mut c_void) {}

unsafe extern "C" fn x_randomness(_: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    // Seeds SQLite's PRNG, which a read-only connection uses for nothing that matters; the
    // clock and address space layout are entropy enough.
    if out.is_null() || n <= 0 {
        return 0;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let seed = h.finish().to_ne_bytes();
    for i in 0..n as usize {
        // SAFETY: `out` has room for n bytes.
        unsafe { *out.add(i) = seed[i % 8] as c_char };
    }
    n
}

unsafe extern "C" fn x_sleep(_: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    // Only reached through a busy handler, and hostready's busy timeout is zero.
    std::thread::sleep(std::time::Duration::from_micros(micros.max(0) as u64));
    micros
}

unsafe extern "C" fn x_current_time(_: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if !out.is_null() {
        // SAFETY: SQLite passes a valid f64; the answer is a Julian day number.
        unsafe { *out = 2_440_587.5 + secs / 86_400.0 };
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_get_last_error(_: *mut ffi::sqlite3_vfs, _: c_int, _: *mut c_char) -> c_int {
    0
}

/// Returns the descriptor of a file this VFS opened.
///
/// # Safety
/// `file` must be a sqlite3_file that `x_open` filled (SQLite calls io methods only on those).
unsafe fn fd_of<'a>(file: *mut ffi::sqlite3_file) -> Option<std::os::fd::BorrowedFd<'a>> {
    if file.is_null() {
        return None;
    }
    // SAFETY: per the contract, `file` is an FdFile whose fd stays open until xClose.
    let fd = unsafe { (*file.cast::<FdFile>()).fd };
    // SAFETY: the descriptor is open and owned by this FdFile until io_close.
    (fd >= 0).then(|| unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
}

unsafe extern "C" fn io_close(file: *mut ffi::sqlite3_file) -> c_int {
    if file.is_null() {
        return ffi::SQLITE_OK;
    }
    let f = file.cast::<FdFile>();
    // SAFETY: SQLite calls xClose once on a file x_open filled; the fd is ours to close.
    unsafe {
        let fd = (*f).fd;
        (*f).fd = -1;
        if fd >= 0 {
            drop(OwnedFd::from_raw_fd(fd));
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn io_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls io methods only on files x_open filled.
    let Some(fd) = (unsafe { fd_of(file) }) else {
        return ffi::SQLITE_IOERR_READ;
    };
    if buf.is_null() || amount < 0 || offset < 0 {
        return ffi::SQLITE_IOERR_READ;
    }
    // SAFETY: SQLite passes a writable buffer of `amount` bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), amount as usize) };
    let mut done = 0;
    while done < out.len() {
        match rustix::io::pread(fd, &mut out[done..], offset as u64 + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return ffi::SQLITE_IOERR_READ,
        }
    }
    if done < out.len() {
        // SQLite requires the rest zeroed on a short read.
        out[done..].fill(0);
        return ffi::SQLITE_IOERR_SHORT_READ;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn io_write(
    _: *mut ffi::sqlite3_file,
    _: *const c_void,
    _: c_int,
    _: ffi::sqlite3_int64,
) -> c_int {
    ffi::SQLITE_READONLY
}

unsafe extern "C" fn io_truncate(_: *mut ffi::sqlite3_file, _: ffi::sqlite3_int64) -> c_int {
    ffi::SQLITE_READONLY
}

unsafe extern "C" fn io_sync(_: *mut ffi::sqlite3_file, _: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn io_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls io methods only on files x_open filled.
    let Some(fd) = (unsafe { fd_of(file) }) else {
        return ffi::SQLITE_IOERR_FSTAT;
    };
    match rustix::fs::fstat(fd) {
        Ok(st) if !size.is_null() => {
            // SAFETY: SQLite passes a valid int64 to write the size to.
            unsafe { *size = st.st_size as ffi::sqlite3_int64 };
            ffi::SQLITE_OK
        }
        _ => ffi::SQLITE_IOERR_FSTAT,
    }
}

unsafe extern "C" fn io_lock(_: *mut ffi::sqlite3_file, _: c_int) -> c_int {
    // Never a lock: immutable mode does not ask, and hostready must never block a writer.
    ffi::SQLITE_OK
}

unsafe extern "C" fn io_check_reserved_lock(_: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    if !out.is_null() {
        // SAFETY: SQLite passes a valid int for the answer.
        unsafe { *out = 0 };
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn io_file_control(_: *mut ffi::sqlite3_file, _: c_int, _: *mut c_void) -> c_int {
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn io_sector_size(_: *mut ffi::sqlite3_file) -> c_int {
    4096
}

unsafe extern "C" fn io_device_characteristics(_: *mut ffi::sqlite3_file) -> c_int {
    ffi::SQLITE_IOCAP_IMMUTABLE
}

#[cfg(test)]
// tests read fixtures and build fake hosts directly.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_database_through_its_descriptor_after_the_path_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (42);")
                .unwrap();
        }
        let file = File::open(&path).unwrap();
        // The name no longer leads to it: only the descriptor does.
        std::fs::remove_file(&path).unwrap();
        let conn = open(&file).unwrap();
        let x: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 42);
        drop(conn);
        // The descriptor handed in is the caller's still; only the duplicate was closed.
        assert!(rustix::fs::fstat(&file).is_ok());
        assert!(pending().as_ref().is_none_or(|m| m.is_empty()));
    }

    #[test]
    fn a_name_without_a_pending_descriptor_opens_nothing() {
        assert_eq!(token_of(c"/hostready-fd/7"), Some(7));
        assert_eq!(token_of(c"/tmp/x"), None);
        register().unwrap();
        for name in [
            "file:/hostready-fd/999999999?mode=ro",
            "file:/etc/passwd?mode=ro",
        ] {
            let conn = Connection::open_with_flags_and_vfs(
                name,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
                VFS_NAME,
            );
            // SQLite may defer the failure to the first read.
            let read = conn.and_then(|c| {
                c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
            });
            assert!(read.is_err(), "{name}");
        }
    }
}
