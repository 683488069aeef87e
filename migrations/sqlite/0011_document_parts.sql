-- Issue 14: a change of a few addresses of a large service no longer rewrites its whole
-- document. A document larger than 64 KiB is kept apart: its `services` row stores an empty
-- `document`, and this table holds the document of one revision (`whole` = 1) followed by the
-- byte patches (RegistryCore `DocumentPatch`) that turn it into each later revision's, in
-- `revision` order. A change appends its patch; after 32 patches, or patches of a quarter of
-- the document, the next change writes the document whole again and deletes the patches.
CREATE TABLE service_document_parts (
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    whole     INTEGER NOT NULL CHECK (whole IN (0, 1)),
    bytes     BLOB    NOT NULL,
    PRIMARY KEY (namespace, name, revision)
);
