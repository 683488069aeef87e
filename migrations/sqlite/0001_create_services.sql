-- External services, one row per (namespace, name).
-- `document` is the service's JSON representation as the API serves it, written once per
-- revision so that reads do not re-encode; `labels` is its label map as JSON, for selectors.
CREATE TABLE services (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    uid         TEXT    NOT NULL UNIQUE,
    revision    INTEGER NOT NULL CHECK (revision >= 1),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    labels      TEXT    NOT NULL DEFAULT '{}',
    document    BLOB    NOT NULL,
    UNIQUE (namespace, name)
);
