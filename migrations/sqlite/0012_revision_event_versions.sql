-- Issue 14: each history revision records the resource version of the watch event the same
-- write recorded, so that retention needs no search of one log in the other: a revision beyond
-- `--history-limit` is kept (`pruned` = 1, see 0010) while its event's version is above
-- `watch_state.compacted`, and the index finds the pruned rows of the events the watch log's
-- retention deletes.
ALTER TABLE service_revisions ADD COLUMN event_version INTEGER;
-- Rows written before: the version of the event that names them (one without a document of its
-- own), found through an index that is needed only here; 0 when none does (its event is gone).
CREATE INDEX watch_events_naming ON watch_events (namespace, name, uid, revision);
UPDATE service_revisions SET event_version = coalesce((
    SELECT max(e.resource_version) FROM watch_events e
    WHERE e.namespace = service_revisions.namespace AND e.name = service_revisions.name AND e.uid = service_revisions.uid
      AND e.revision = service_revisions.revision AND length(e.document) = 0
), 0);
DROP INDEX watch_events_naming;
CREATE INDEX service_revisions_pruned ON service_revisions (event_version) WHERE pruned = 1;
