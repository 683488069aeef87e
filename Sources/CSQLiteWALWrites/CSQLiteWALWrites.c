#include "CSQLiteWALWrites.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/// A WAL file: the default VFS's file (`real`, allocated right after this struct) and the
/// writes held back (`pending` bytes from offset `start`, in `buffer`, allocated at the first
/// write).
typedef struct WALFile {
    sqlite3_file base;
    sqlite3_file *real;
    unsigned char *buffer;
    int pending;
    sqlite3_int64 start;
    /// Where the page of the commit frame whose header was written last starts (its header's
    /// offset + 24), or -1: a write there of a page ends the commit.
    sqlite3_int64 commitPage;
} WALFile;

/// The unix VFS writes at most 128 KiB − 1 bytes per call (`seekAndWriteFd` masks the length
/// with 0x1ffff; a longer write comes back short, as SQLITE_FULL).
enum { maxHeld = 0x1ffff, frameHeaderBytes = 24 };

static sqlite3_vfs *defaultVFS;
static sqlite3_vfs wrapper;
/// Counted per thread, so that a test sees its own connection's calls only.
static _Thread_local long long writeCalls;

/// Writes what is held back. On an error the bytes stay held (and the error is returned): the
/// next write of the buffer tries them again, first, so that no later write is made durable or
/// published without them.
static int flush(WALFile *file) {
    if (file->pending == 0) return SQLITE_OK;
    writeCalls += 1;
    int rc = file->real->pMethods->xWrite(file->real, file->buffer, file->pending, file->start);
    if (rc == SQLITE_OK) file->pending = 0;
    return rc;
}

static int walClose(sqlite3_file *f) {
    WALFile *file = (WALFile *)f;
    int rc = flush(file);
    int closed = file->real->pMethods->xClose(file->real);
    sqlite3_free(file->buffer);
    file->buffer = NULL;
    return rc != SQLITE_OK ? rc : closed;
}

static int walWrite(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
    WALFile *file = (WALFile *)f;
    int rc;
    // The page of the commit frame whose header came just before: the commit's last write.
    int commitPage = offset == file->commitPage && amount != frameHeaderBytes;
    file->commitPage = -1;
    if (file->pending > 0 && (offset != file->start + file->pending || file->pending + amount > maxHeld)) {
        if ((rc = flush(file)) != SQLITE_OK) return rc;
    }
    if (amount > maxHeld) {
        writeCalls += 1;
        return file->real->pMethods->xWrite(file->real, data, amount, offset);
    }
    if (file->buffer == NULL && (file->buffer = sqlite3_malloc(maxHeld)) == NULL) return SQLITE_NOMEM;
    int startsRun = file->pending == 0;
    if (startsRun) file->start = offset;
    memcpy(file->buffer + file->pending, data, (size_t)amount);
    file->pending += amount;
    if (commitPage) return flush(file);
    // A frame header: bytes 4–7 are the database size after the commit, 0 for other frames.
    const unsigned char *bytes = data;
    if (amount == frameHeaderBytes && (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0) {
        // A commit frame's header. After the frames just written its page follows; alone (a
        // commit of one frame, or a header SQLite writes again in place to fix the checksums,
        // `walRewriteChecksums`, after reading its frame, and then publishes the commit) it is
        // written now: it may be the commit's last write.
        if (startsRun && (rc = flush(file)) != SQLITE_OK) return rc;
        file->commitPage = offset + frameHeaderBytes;
    }
    return SQLITE_OK;
}

#define FLUSHED(file) \
    WALFile *file = (WALFile *)f; \
    int flushed = flush(file); \
    if (flushed != SQLITE_OK) return flushed

static int walRead(sqlite3_file *f, void *data, int amount, sqlite3_int64 offset) {
    FLUSHED(file);
    return file->real->pMethods->xRead(file->real, data, amount, offset);
}
static int walTruncate(sqlite3_file *f, sqlite3_int64 size) {
    FLUSHED(file);
    return file->real->pMethods->xTruncate(file->real, size);
}
static int walSync(sqlite3_file *f, int flags) {
    FLUSHED(file);
    return file->real->pMethods->xSync(file->real, flags);
}
static int walFileSize(sqlite3_file *f, sqlite3_int64 *size) {
    FLUSHED(file);
    return file->real->pMethods->xFileSize(file->real, size);
}
static int walLock(sqlite3_file *f, int level) {
    FLUSHED(file);
    return file->real->pMethods->xLock(file->real, level);
}
static int walUnlock(sqlite3_file *f, int level) {
    FLUSHED(file);
    return file->real->pMethods->xUnlock(file->real, level);
}
static int walCheckReservedLock(sqlite3_file *f, int *out) {
    FLUSHED(file);
    return file->real->pMethods->xCheckReservedLock(file->real, out);
}
static int walFileControl(sqlite3_file *f, int op, void *arg) {
    FLUSHED(file);
    return file->real->pMethods->xFileControl(file->real, op, arg);
}
static int walSectorSize(sqlite3_file *f) {
    WALFile *file = (WALFile *)f;
    return file->real->pMethods->xSectorSize(file->real);
}
static int walDeviceCharacteristics(sqlite3_file *f) {
    WALFile *file = (WALFile *)f;
    return file->real->pMethods->xDeviceCharacteristics(file->real);
}
static int walShmMap(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
    FLUSHED(file);
    return file->real->pMethods->xShmMap(file->real, page, size, extend, out);
}
static int walShmLock(sqlite3_file *f, int offset, int n, int flags) {
    FLUSHED(file);
    return file->real->pMethods->xShmLock(file->real, offset, n, flags);
}
static void walShmBarrier(sqlite3_file *f) {
    WALFile *file = (WALFile *)f;
    (void)flush(file);
    file->real->pMethods->xShmBarrier(file->real);
}
static int walShmUnmap(sqlite3_file *f, int deleteFlag) {
    FLUSHED(file);
    return file->real->pMethods->xShmUnmap(file->real, deleteFlag);
}
static int walFetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) {
    FLUSHED(file);
    return file->real->pMethods->xFetch(file->real, offset, amount, out);
}
static int walUnfetch(sqlite3_file *f, sqlite3_int64 offset, void *page) {
    WALFile *file = (WALFile *)f;
    return file->real->pMethods->xUnfetch(file->real, offset, page);
}

static const sqlite3_io_methods walMethods = {
    3, walClose, walRead, walWrite, walTruncate, walSync, walFileSize, walLock, walUnlock, walCheckReservedLock,
    walFileControl, walSectorSize, walDeviceCharacteristics, walShmMap, walShmLock, walShmBarrier, walShmUnmap,
    walFetch, walUnfetch,
};

static int wrapperOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *outFlags) {
    (void)vfs;
    // Other files are the default VFS's own, opened in place (`szOsFile` leaves room for them).
    if ((flags & SQLITE_OPEN_WAL) == 0) return defaultVFS->xOpen(defaultVFS, name, f, flags, outFlags);
    WALFile *file = (WALFile *)f;
    memset(file, 0, sizeof(WALFile));
    file->commitPage = -1;
    file->real = (sqlite3_file *)(file + 1);
    int rc = defaultVFS->xOpen(defaultVFS, name, file->real, flags, outFlags);
    // The methods are set only once the real file is open: SQLite calls xClose only on a file
    // whose pMethods is set.
    if (rc == SQLITE_OK && file->real->pMethods != NULL) {
        if (file->real->pMethods->iVersion < 3) {
            file->real->pMethods->xClose(file->real);
            return SQLITE_CANTOPEN;
        }
        file->base.pMethods = &walMethods;
    }
    return rc;
}

int CSQLiteWALWrites_register(void) {
    if (defaultVFS != NULL) return SQLITE_OK;
    sqlite3_vfs *found = sqlite3_vfs_find(NULL);
    if (found == NULL) return SQLITE_ERROR;
    wrapper = *found;
    wrapper.zName = "unix-wal-writes";
    wrapper.pNext = NULL;
    wrapper.szOsFile = (int)sizeof(WALFile) + found->szOsFile;
    // Other methods are the default VFS's, given this copy of it (they read only the fields copied).
    wrapper.xOpen = wrapperOpen;
    defaultVFS = found;
    return sqlite3_vfs_register(&wrapper, 1);
}

long long CSQLiteWALWrites_writeCalls(void) { return writeCalls; }
