#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift does not import:
/// binding text or blobs with it makes SQLite copy the bytes before the call returns.
static inline sqlite3_destructor_type CSQLite_transient(void) { return SQLITE_TRANSIENT; }

/// sqlite3_config is variadic, which Swift does not import. Turns SQLite's memory statistics
/// off (SQLITE_CONFIG_MEMSTATUS, https://sqlite.org/c3ref/c_config_covering_index_scan.html):
/// with them on, every allocation and free inside SQLite takes one process-wide mutex. Must run
/// before SQLite is initialized (before the first connection opens); returns SQLITE_OK, or
/// SQLITE_MISUSE when SQLite was initialized already (the setting then stays as it was).
static inline int CSQLite_disableMemoryStatistics(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

#endif
