-- PostgreSQL twin of ../sqlite/0012_revision_event_versions.sql.
-- Issue 14: each history revision records the resource version of the watch event the same
-- write recorded (NULL for rows written before this migration), so that retention needs no
-- search of one log in the other: a revision beyond `--history-limit` is kept (`pruned` = 1,
-- see 0010) while its event's version is above `watch_state.compacted`, and the index finds
-- the pruned rows of the events the watch log's retention deletes.
ALTER TABLE service_revisions ADD COLUMN event_version BIGINT;
CREATE INDEX service_revisions_pruned ON service_revisions (event_version) WHERE pruned = 1;
