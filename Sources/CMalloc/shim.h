#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H

#include <malloc.h>

/// Why this exists: glibc's malloc.h is not part of Swift's Glibc module.
///
/// Blocks up to `mmapThreshold` bytes come from the heap rather than from an mmap of their own
/// (whose pages the kernel zero-fills again at every first touch), and free memory at the top
/// of a heap is returned to the system once `trimThreshold` bytes of it are free (mallopt(3),
/// M_MMAP_THRESHOLD and M_TRIM_THRESHOLD; setting them turns glibc's dynamic thresholds off).
/// Returns 1 when glibc took both, 0 otherwise (M_MMAP_THRESHOLD is at most 32 MiB on 64-bit).
static inline int CMalloc_keepBlocksInHeap(int mmapThreshold, int trimThreshold) {
    return mallopt(M_MMAP_THRESHOLD, mmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, trimThreshold) == 1;
}

#endif
