-- PostgreSQL twin of ../sqlite/0014_check_constraints_without_in_lists.sql, which rewrites
-- SQLite's CHECK constraints of three or more allowed values (`outcome`, `type`, `state`) as
-- comparisons joined by OR, because SQLite builds a temporary b-tree of an IN list's values
-- for every row it checks. PostgreSQL compares an IN list of constants in place: its
-- constraints stay as they are (they allow the same values), and this migration only keeps the
-- two stores' versions numbered alike.
SELECT 1;
