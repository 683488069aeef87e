-- PostgreSQL twin of ../sqlite/0010_pruned_revisions.sql.
-- Issue 14: a history revision beyond `--history-limit` that a watch event still names (the
-- event stores no document of its own, see 0007) is no longer deleted with its document copied
-- into the event (a whole document per event: ~330 KB for a service of 10,000 addresses).
-- It stays as it is stored (usually a patch of a few hundred bytes) with `pruned` = 1: the
-- history no longer lists it, the watch log still reads it, and the watch log's retention
-- deletes it with the event that names it. `event_version` is the resource version of that
-- event, recorded by the same write (NULL for rows written before this migration), so that
-- neither side needs to search the other: the event is kept while its version is above
-- `watch_state.compacted`, and the index finds the pruned rows of the events deleted.
ALTER TABLE service_revisions ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE service_revisions ADD COLUMN event_version BIGINT;
CREATE INDEX service_revisions_pruned ON service_revisions (event_version) WHERE pruned = 1;
