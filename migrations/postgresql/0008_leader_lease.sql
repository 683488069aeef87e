-- PostgreSQL only (several replicas share one database; SQLite serves one): the lease that
-- elects the one replica doing the background work (issue 16). One row per lease name, changed
-- only by compare-and-set (see Sources/PostgresStorage/PostgresLeaderLease.swift). `generation`
-- grows by one with every new term (a new holder, or a holder taking the lease again after it
-- expired), so that writes made for an old term can be refused (fencing). Times are the
-- database's clock (`now()`), the one clock every replica compares against.
CREATE TABLE leader_lease (
    name        TEXT        COLLATE "C" PRIMARY KEY,
    holder      TEXT        NOT NULL,
    generation  BIGINT      NOT NULL CHECK (generation >= 1),
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
