#ifndef CSQLITE_WAL_WRITES_H
#define CSQLITE_WAL_WRITES_H

/// Registers, as SQLite's default VFS, a wrapper of the default one ("unix") that writes each
/// WAL file's frames with one `pwrite` per run of contiguous writes instead of two per frame.
///
/// SQLite writes a WAL frame as two writes: its 24-byte header, then the page (8 KiB here),
/// which leaves every page write unaligned; a commit of 30 pages is 60 `pwrite` calls, each
/// marking its file-system blocks dirty. The wrapper keeps the writes to a file opened as a
/// WAL (`SQLITE_OPEN_WAL`) in a buffer of that file while each starts where the one before
/// ended, and writes the buffer with one `pwrite` when:
/// - the write holding the page of a commit frame (a frame header whose "database size after
///   commit" is not 0: https://sqlite.org/fileformat.html#wal_file_format) has been kept, so
///   the commit's frames are in the file before SQLite publishes them in the WAL index, and
///   an error writing them fails that write, and with it the commit; a commit frame's header
///   that does not follow frames just written (a commit of one frame, or a header SQLite
///   writes again after reading its frame, to fix checksums) is written at once;
/// - a write does not follow the one before, or would take the buffer past 128 KiB − 1 bytes,
///   the most the default VFS writes in one call;
/// - any other method of the file is called (read, sync, truncate, size, lock, file control,
///   shared memory, close): nothing reads or syncs the file while writes are held back.
/// Frames that are not a commit's (a page cache spilled in the middle of a transaction) may
/// wait for their commit: no reader uses them before it, and the connection that wrote them
/// reads the file only through `xRead`, which writes the buffer first. A write that fails
/// keeps its bytes held, to be written first by the next write of the buffer. Other files (the
/// database, journals) are the default VFS's own, untouched.
///
/// One connection at a time must write a database's WAL, as the server's one writer connection
/// (and its file lock) ensures: the frames of a rolled-back transaction that were held back are
/// written at that connection's next call on the WAL, which would overwrite another
/// connection's commit made in between.
///
/// Returns SQLITE_OK, or SQLite's error when the default VFS is missing or registering fails.
/// Call once, before the first connection opens; later calls do nothing and return SQLITE_OK.
int CSQLiteWALWrites_register(void);

/// The `pwrite` calls made for WAL files through the wrapper so far on the calling thread (for tests).
long long CSQLiteWALWrites_writeCalls(void);

#endif
