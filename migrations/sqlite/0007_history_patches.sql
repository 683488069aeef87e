-- Issue 14: a revision of the history may be kept as what changed since the revision before
-- it (the row just before it for the same service name, with the same uid), instead of a
-- second copy of the whole document: `patch` holds byte edits of that revision's document
-- (RegistryCore `DocumentPatch`) and `document` is NULL. `depth` counts the patches back to the
-- nearest revision kept whole (0 for one kept whole), which bounds the work of rebuilding one.
-- A deletion has neither document nor patch. Rows written before this migration are whole.
ALTER TABLE service_revisions ADD COLUMN patch BLOB;
ALTER TABLE service_revisions ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
-- A watch event of a change that left a history revision (ADDED, MODIFIED) names that revision
-- (`uid`, `revision`) and stores an empty `document`: its document is that revision's. Before
-- the history's retention deletes a revision an event names, the event gets the document back.
-- Events written before this migration, and DELETED events, store their document.
ALTER TABLE watch_events ADD COLUMN uid TEXT;
ALTER TABLE watch_events ADD COLUMN revision INTEGER;
