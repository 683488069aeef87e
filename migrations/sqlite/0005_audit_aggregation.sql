-- Refused and failed requests are recorded as one line per actor, action, target, outcome,
-- status and minute, with how many there were, instead of one durable line each.
ALTER TABLE audit_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
