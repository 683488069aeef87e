-- Issue 14: a history revision beyond `--history-limit` that a watch event still names (the
-- event stores no document of its own, see 0007) is no longer deleted with its document copied
-- into the event (a whole document per event: ~330 KB for a service of 10,000 addresses).
-- It stays as it is stored (usually a patch of a few hundred bytes) with `pruned` = 1: the
-- history no longer lists it, the watch log still reads it, and the watch log's retention
-- deletes it with the last event that names it.
ALTER TABLE service_revisions ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;
