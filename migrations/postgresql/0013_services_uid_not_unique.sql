-- PostgreSQL twin of ../sqlite/0013_services_uid_not_unique.sql: `services.uid` without its
-- UNIQUE constraint (a random version 4 UUID the server makes, which nothing looks up; the
-- constraint's index cost every create a random page). PostgreSQL names the constraint of
-- `uid TEXT NOT NULL UNIQUE` `services_uid_key`.
ALTER TABLE services DROP CONSTRAINT services_uid_key;
