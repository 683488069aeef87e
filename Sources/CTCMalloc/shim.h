#ifndef CTCMALLOC_SHIM_H
#define CTCMALLOC_SHIM_H

#include <stdlib.h>
#include <gperftools/malloc_extension_c.h>
#include <gperftools/tcmalloc.h>

/// Why this exists: the server's allocator is tcmalloc (gperftools' `libtcmalloc_minimal`,
/// Debian's libgoogle-perftools-dev), linked into the executable ahead of the C library so that
/// its `malloc` and `free` take the place of glibc's. With glibc's, the group commit's thread
/// frees what the HTTP workers allocated (requests, records, documents): each such free takes
/// the lock of the arena the block came from, and the threads queued on those locks (measured:
/// creates 25 % faster with tcmalloc, BENCHMARKS.md, twelfth session).

/// 1 when the `malloc` this process calls is tcmalloc's (a block it hands out is one tcmalloc
/// owns), 0 when another allocator took its place (an `LD_PRELOAD`, say).
static inline int CTCMalloc_servesMalloc(void) {
    void *block = malloc(64);
    int owned = block != NULL && MallocExtension_GetOwnership(block) == MallocExtension_kOwned;
    free(block);
    return owned;
}

/// tcmalloc's version, "gperftools 2.10" say.
static inline const char *CTCMalloc_version(void) {
    return tc_version(NULL, NULL, NULL);
}

#endif
