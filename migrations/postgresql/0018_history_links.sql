-- PostgreSQL twin of ../sqlite/0018_history_links.sql.
-- Only the history rows kept whole (`depth` = 0) stay in `service_revisions_by_service`; a row
-- kept as a patch names the row its patch applies to in `previous_id`, and
-- `service_revisions_patches` finds the patch that follows a row. Every replica must run a
-- version with this migration before writing again: an earlier version would write patches
-- that name no `previous_id`, which the history no longer reaches, and watch events that name
-- no `revision_id`, whose documents the watch log no longer finds.
ALTER TABLE service_revisions ADD COLUMN previous_id BIGINT;
UPDATE service_revisions SET previous_id = (
    SELECT max(p.id) FROM service_revisions p
    WHERE p.namespace = service_revisions.namespace AND p.name = service_revisions.name AND p.id < service_revisions.id
) WHERE depth > 0;
CREATE INDEX service_revisions_patches ON service_revisions (previous_id) WHERE previous_id IS NOT NULL;
-- A watch event of a creation or change names the history row of the same write by its id
-- (`revision_id`), no longer by its uid and revision, which only this index would find; events
-- written before: the row whose event version is theirs, found through an index needed only here.
ALTER TABLE watch_events ADD COLUMN revision_id BIGINT;
CREATE INDEX service_revisions_by_event ON service_revisions (event_version);
UPDATE watch_events SET revision_id = (
    SELECT max(r.id) FROM service_revisions r
    WHERE r.event_version = watch_events.resource_version AND r.namespace = watch_events.namespace AND r.name = watch_events.name
      AND r.uid = watch_events.uid AND r.revision = watch_events.revision
) WHERE uid IS NOT NULL AND length(document) = 0;
DROP INDEX service_revisions_by_event;
DROP INDEX service_revisions_by_service;
CREATE INDEX service_revisions_by_service ON service_revisions (namespace, name, id) WHERE depth = 0;
