-- PostgreSQL twin of ../sqlite/0018_history_links.sql: a row kept as a patch names the row its
-- patch applies to in `previous_id`, `service_revisions_patches` finds the patch that follows a
-- row, and a watch event names the history row of its write in `revision_id`. The index of every
-- revision by name stays here: a replica of an earlier version may still write while others run
-- this one (a rolling upgrade, one pod at a time), and the two triggers below give what it
-- writes the links it does not know (a patch's `previous_id`, found through that index; the
-- `revision_id` of the event it wrote just before the history row). They change nothing this
-- version writes.
ALTER TABLE service_revisions ADD COLUMN previous_id BIGINT;
UPDATE service_revisions SET previous_id = (
    SELECT max(p.id) FROM service_revisions p
    WHERE p.namespace = service_revisions.namespace AND p.name = service_revisions.name AND p.id < service_revisions.id
) WHERE depth > 0;
CREATE INDEX service_revisions_patches ON service_revisions (previous_id) WHERE previous_id IS NOT NULL;
-- Events written before: the row whose event version is theirs, found through an index needed only here.
ALTER TABLE watch_events ADD COLUMN revision_id BIGINT;
CREATE INDEX service_revisions_by_event ON service_revisions (event_version);
UPDATE watch_events SET revision_id = (
    SELECT max(r.id) FROM service_revisions r
    WHERE r.event_version = watch_events.resource_version AND r.namespace = watch_events.namespace AND r.name = watch_events.name
      AND r.uid = watch_events.uid AND r.revision = watch_events.revision AND (r.document IS NOT NULL OR r.patch IS NOT NULL)
) WHERE uid IS NOT NULL AND length(document) = 0;
DROP INDEX service_revisions_by_event;
CREATE FUNCTION service_revisions_link_previous() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.depth > 0 AND NEW.previous_id IS NULL THEN
        NEW.previous_id := (
            SELECT max(p.id) FROM service_revisions p WHERE p.namespace = NEW.namespace AND p.name = NEW.name);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER service_revisions_link_previous BEFORE INSERT ON service_revisions
    FOR EACH ROW EXECUTE FUNCTION service_revisions_link_previous();
CREATE FUNCTION service_revisions_name_in_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_version IS NOT NULL AND (NEW.document IS NOT NULL OR NEW.patch IS NOT NULL) THEN
        UPDATE watch_events SET revision_id = NEW.id
        WHERE resource_version = NEW.event_version AND revision_id IS NULL AND uid IS NOT NULL AND length(document) = 0
          AND namespace = NEW.namespace AND name = NEW.name AND uid = NEW.uid AND revision = NEW.revision;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER service_revisions_name_in_event AFTER INSERT ON service_revisions
    FOR EACH ROW EXECUTE FUNCTION service_revisions_name_in_event();
