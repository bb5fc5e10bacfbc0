/* sql/pg_hamonitor--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_hamonitor UPDATE TO '1.1'" to load this file. \quit

/*
 * 1.1: failover you can trust (fail closed on missing evidence, never two
 * writable primaries).  A fresh CREATE EXTENSION runs 1.0 then this script,
 * so every change here is written to be correct both on an empty catalog
 * and on one with registered nodes, history and managed slots.
 */

/* ---------------------------------------------------------------------
 * search_path: every function runs with a pinned path, C ones included
 * (their SPI queries resolve operators through it), so an object a user
 * created in a schema on the caller's path is never called by them.
 * --------------------------------------------------------------------- */

ALTER FUNCTION hamonitor.mask_conninfo(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.validate_conninfo(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.validate_name(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.node_changed() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.create_slot(text, text, text, text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.drop_slot(text, text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.advance_slot(text, text, pg_lsn, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.managed_slot_name(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.promote(text, text, boolean) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.failover(text, boolean) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.switchover(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION hamonitor.simulate_failover(hamonitor.simulated_node[], timestamptz, boolean, integer, integer, bigint) SET search_path = pg_catalog, pg_temp;

/* ---------------------------------------------------------------------
 * Evidence for the failover decision (probe -> state -> decide)
 * --------------------------------------------------------------------- */

/* ---------------------------------------------------------------------
 * Actions: slot names, repointing, fencing
 * --------------------------------------------------------------------- */
