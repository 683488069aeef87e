-- PostgreSQL twin of ../sqlite/0015_audit_source_address.sql.
-- The client address of refused and failed requests: their aggregated audit lines are counted
-- per actor and source address (an anonymous caller has no other identity), so that a flood
-- from one address is one line a minute and the line says where it came from.
ALTER TABLE audit_log ADD COLUMN source_address TEXT;
