#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
#include <libpq-fe.h>

/// libpq's default notice processor prints every NOTICE and WARNING the server sends (e.g.
/// "relation already exists, skipping") to stderr; the wrapper reports errors itself, so
/// connections get this one, which drops them.
static void CLibPQ_ignoreNotice(void *context, const char *message) {
    (void)context;
    (void)message;
}

static inline void CLibPQ_silenceNotices(PGconn *connection) {
    PQsetNoticeProcessor(connection, CLibPQ_ignoreNotice, NULL);
}

#endif
