-- Issue 14: the audit lines of a service were found through `audit_log_by_target` (namespace,
-- name, id), an index every audit line went into at a random place: one more 8 KiB page in the
-- WAL, and in the fsync, for almost every write of a group commit (a write of a service writes
-- an audit line). The index is replaced by a table filled in bulk: the writer moves the lines
-- added since the last time into `audit_log_targets` once a few thousand have come, and at
-- start (`ServiceStore.indexAuditTargets`), sorted, so that each of its pages is written once
-- per move rather than once per line. `audit_state.targets_through` is the highest audit line
-- id moved so far; a query of one service's lines reads `audit_log_targets` up to it and the
-- lines after it in id order. The mark is set first and the lines up to it moved after, as the
-- PostgreSQL twin must (lines committed meanwhile come after the mark).
CREATE TABLE audit_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    targets_through INTEGER NOT NULL
);
INSERT INTO audit_state (id, targets_through) SELECT 1, coalesce(max(id), 0) FROM audit_log;
CREATE TABLE audit_log_targets (
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    id        INTEGER NOT NULL,
    PRIMARY KEY (namespace, name, id)
) WITHOUT ROWID;
INSERT INTO audit_log_targets (namespace, name, id)
    SELECT namespace, name, id FROM audit_log
    WHERE id <= (SELECT targets_through FROM audit_state WHERE id = 1) AND namespace IS NOT NULL AND name IS NOT NULL
    ORDER BY namespace, name, id;
DROP INDEX audit_log_by_target;
