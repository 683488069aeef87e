-- Issue 14: the history rows of a service were found through `service_revisions_by_service`
-- (namespace, name, id), an index every revision went into at a random place: one more 8 KiB
-- page in the WAL, and in the fsync, for almost every write of a group commit. Only the rows
-- kept whole (`depth` = 0: a service's first revision, a deletion, one after `maxPatchDepth`
-- patches, one a patch would not shrink, one whose last row the writer could not find, and
-- those retention stored whole) stay in it now, a partial index. A row kept as a patch names
-- the row its patch applies to, the one just before it of the same name, in `previous_id`
-- (NULL on a row kept whole), and `service_revisions_patches` finds the patch that follows a
-- row: its keys are the ids of rows written a moment before, so each write's entry lands next
-- to the others of the same group commit. The rows of a name are its whole rows, each followed
-- by the patches that chain from it (`ServiceStore.historyRows`).
ALTER TABLE service_revisions ADD COLUMN previous_id INTEGER;
UPDATE service_revisions SET previous_id = (
    SELECT max(p.id) FROM service_revisions p
    WHERE p.namespace = service_revisions.namespace AND p.name = service_revisions.name AND p.id < service_revisions.id
) WHERE depth > 0;
CREATE INDEX service_revisions_patches ON service_revisions (previous_id) WHERE previous_id IS NOT NULL;
-- A watch event of a creation or change names the history row of the same write by its id
-- (`revision_id`), no longer by its uid and revision, which only this index would find; events
-- written before: the row whose event version is theirs, found through an index needed only here.
ALTER TABLE watch_events ADD COLUMN revision_id INTEGER;
CREATE INDEX service_revisions_by_event ON service_revisions (event_version);
UPDATE watch_events SET revision_id = (
    SELECT max(r.id) FROM service_revisions r
    WHERE r.event_version = watch_events.resource_version AND r.namespace = watch_events.namespace AND r.name = watch_events.name
      AND r.uid = watch_events.uid AND r.revision = watch_events.revision AND (r.document IS NOT NULL OR r.patch IS NOT NULL)
) WHERE uid IS NOT NULL AND length(document) = 0;
DROP INDEX service_revisions_by_event;
DROP INDEX service_revisions_by_service;
CREATE INDEX service_revisions_by_service ON service_revisions (namespace, name, id) WHERE depth = 0;
