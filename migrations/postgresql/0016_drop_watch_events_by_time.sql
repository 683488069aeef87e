-- PostgreSQL twin of ../sqlite/0016_drop_watch_events_by_time.sql.
-- No query reads watch events by time: watches read them by resource version, and the pruning
-- of the watch log walks them in resource-version order too (`WatchLog.pruneWatchEvents`: its
-- time condition is one side of an `OR`, checked row by row in that order, the rows ordered by
-- the primary key and cut at the batch size). The index only cost every write one more entry.
DROP INDEX watch_events_by_time;
