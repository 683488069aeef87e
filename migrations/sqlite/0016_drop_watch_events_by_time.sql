-- No query reads watch events by time: watches read them by resource version, and the pruning
-- of the watch log walks them in resource-version order too (`WatchLog.pruneWatchEvents`: its
-- time condition is one side of an `OR`, checked row by row in that order). The index only
-- cost every group commit one more page in the WAL (8 KiB).
DROP INDEX watch_events_by_time;
