-- PostgreSQL twin of ../sqlite/0017_audit_targets_in_bulk.sql.
-- The audit lines of a service are found through `audit_log_targets`, filled in bulk by the
-- writer (`ServiceStore.indexAuditTargets`) once a few thousand lines have come, instead of
-- through an index every audit line went into; `audit_state.targets_through` is the highest
-- audit line id moved so far (lines are numbered in commit order: every write holds the
-- global write lock first, `beginWrite`).
CREATE TABLE audit_log_targets (
    namespace TEXT   COLLATE "C" NOT NULL,
    name      TEXT   COLLATE "C" NOT NULL,
    id        BIGINT NOT NULL,
    PRIMARY KEY (namespace, name, id)
);
INSERT INTO audit_log_targets (namespace, name, id)
    SELECT namespace, name, id FROM audit_log WHERE namespace IS NOT NULL AND name IS NOT NULL;
CREATE TABLE audit_state (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    targets_through BIGINT NOT NULL
);
INSERT INTO audit_state (id, targets_through) SELECT 1, coalesce(max(id), 0) FROM audit_log;
DROP INDEX audit_log_by_target;
