#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H

// `__GLIBC__` comes from <features.h>, which every C library header includes: without it the
// check below would never see glibc.
#if __has_include(<features.h>)
#include <features.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/// Why this exists: glibc's malloc.h is not part of Swift's Glibc module.
///
/// Blocks up to `mmapThreshold` bytes come from the heaps rather than from an mmap of their own
/// (whose pages the kernel zero-fills again at every first touch); free memory at the top of
/// each heap (one per arena) is returned to the system once `trimThreshold` bytes of it are
/// free; at most `arenaMax` arenas (mallopt(3): M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_ARENA_MAX;
/// setting the first two turns glibc's dynamic thresholds off). Returns how many of the three
/// glibc refused (M_MMAP_THRESHOLD is at most 32 MiB on 64-bit); -1 without glibc, where
/// nothing is set.
static inline int CMalloc_keepBlocksInHeap(int mmapThreshold, int trimThreshold, int arenaMax) {
#if defined(__GLIBC__)
    return (mallopt(M_MMAP_THRESHOLD, mmapThreshold) != 1) + (mallopt(M_TRIM_THRESHOLD, trimThreshold) != 1)
        + (mallopt(M_ARENA_MAX, arenaMax) != 1);
#else
    (void)mmapThreshold;
    (void)trimThreshold;
    (void)arenaMax;
    return -1;
#endif
}

#endif
