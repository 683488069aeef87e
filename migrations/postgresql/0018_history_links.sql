-- PostgreSQL twin of ../sqlite/0018_history_links.sql.
-- Only the history rows kept whole (`depth` = 0) stay in `service_revisions_by_service`; a row
-- kept as a patch names the row its patch applies to in `previous_id`, and
-- `service_revisions_patches` finds the patch that follows a row. Every replica must run a
-- version with this migration before writing again: an earlier version would write patches
-- that name no `previous_id`, which the history no longer reaches.
ALTER TABLE service_revisions ADD COLUMN previous_id BIGINT;
UPDATE service_revisions SET previous_id = (
    SELECT max(p.id) FROM service_revisions p
    WHERE p.namespace = service_revisions.namespace AND p.name = service_revisions.name AND p.id < service_revisions.id
) WHERE depth > 0;
CREATE INDEX service_revisions_patches ON service_revisions (previous_id) WHERE previous_id IS NOT NULL;
CREATE INDEX service_revisions_by_event ON service_revisions (event_version);
DROP INDEX service_revisions_by_service;
CREATE INDEX service_revisions_by_service ON service_revisions (namespace, name, id) WHERE depth = 0;
