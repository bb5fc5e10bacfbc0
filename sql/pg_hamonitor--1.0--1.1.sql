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

-- What the witness knows of each node beyond the last probe's raw columns;
-- the worker reads it back when it starts, so a restarted witness keeps it.
ALTER TABLE hamonitor.node_state
    -- standby: what the probe could tell of its WAL receiver: 'streaming',
    -- 'not_streaming' (one runs, not streaming), 'none' (none runs),
    -- 'hidden' (one runs, its status hidden: the role lacks
    -- pg_read_all_stats), 'unknown' (not probed)
    ADD COLUMN wal_receiver text NOT NULL DEFAULT 'unknown'
        CHECK (wal_receiver IN ('unknown', 'hidden', 'none', 'not_streaming',
                                'streaming')),
    ADD COLUMN wal_receiver_pid integer,
    -- standby: the last probe that saw it streaming; only a standby that
    -- streamed may confirm that a primary is gone
    ADD COLUMN seen_streaming_at timestamptz,
    -- standby: the registered node its WAL receiver's sender host and port
    -- are (cascading when not the primary); NULL if none matches
    ADD COLUMN upstream_node_id integer,
    -- down: what its latest failure says (hamonitor.classify_failure)
    ADD COLUMN failure_class text,
    -- down: the latest failure that showed its postmaster alive, or
    -- stopping in order, during this outage
    ADD COLUMN alive_at timestamptz,
    -- grants the witness's role lacks on the node, one a line; NULL if none
    ADD COLUMN missing_privileges text;

-- what a failure says about a peer's postmaster (src/classify.c); sqlstate
-- NULL when the server sent none (a failed connection: text only)
CREATE FUNCTION hamonitor.classify_failure(sqlstate text, message text)
RETURNS text
AS 'MODULE_PATHNAME', 'hamonitor_classify_failure'
LANGUAGE C IMMUTABLE
SET search_path = pg_catalog, pg_temp;

-- the evidence of the decision, for simulate_failover; NULL means what it
-- meant in 1.0 (receiver from streaming, never seen streaming, no
-- upstream, no failure class, no sign of life)
ALTER TYPE hamonitor.simulated_node
    ADD ATTRIBUTE receiver text,
    ADD ATTRIBUTE seen_streaming_at timestamptz,
    ADD ATTRIBUTE upstream text,
    ADD ATTRIBUTE failure_class text,
    ADD ATTRIBUTE alive_at timestamptz;

CREATE OR REPLACE VIEW hamonitor.status AS
SELECT n.cluster_name,
       n.node_name,
       s.role,
       s.health,
       s.sysid_mismatch,
       s.last_seen,
       s.timeline,
       s.current_lsn,
       s.flush_lsn,
       s.receive_lsn,
       s.replay_lsn,
       -- bytes of WAL the node has yet to replay against its primary
       CASE WHEN s.role = 'standby' THEN
            pg_catalog.pg_wal_lsn_diff(p.current_lsn,
                                       coalesce(s.replay_lsn, s.receive_lsn))
       END AS lag_bytes,
       CASE WHEN s.role = 'standby' THEN
            CASE WHEN s.replay_lsn >= s.receive_lsn THEN interval '0'
                 ELSE s.last_probe_at - s.last_replay_at END
       END AS replay_lag,
       s.wal_receiver_status,
       s.upstream_host,
       s.upstream_port,
       s.latency_ms,
       s.consecutive_failures AS failures,
       s.last_error_sqlstate,
       s.last_error,
       s.fenced,
       s.needs_rejoin,
       -- two writable primaries in one cluster: shown, never as healthy
       (s.role = 'primary' AND s.health = 'up' AND NOT s.fenced
        AND NOT s.sysid_mismatch AND coalesce(w.writable, 0) > 1)
           AS split_brain,
       s.read_only,
       (SELECT string_agg(format('%s: %s', ss.slot_name, ss.alert), '; '
                          ORDER BY ss.slot_name)
          FROM hamonitor.slot_state ss
         WHERE ss.node_id = n.node_id AND ss.alert IS NOT NULL) AS slot_alerts,
       s.server_version,
       n.priority,
       n.maintenance,
       hamonitor.mask_conninfo(n.conninfo) AS conninfo,
       s.last_probe_at,
       n.node_id,
       -- 1.1: the evidence the failover decision works from
       CASE WHEN s.role = 'standby' THEN s.wal_receiver END AS wal_receiver,
       s.seen_streaming_at,
       (SELECT un.node_name FROM hamonitor.node un
         WHERE un.node_id = s.upstream_node_id) AS upstream_node,
       CASE WHEN s.health = 'down' THEN s.failure_class END AS failure_class,
       pg_catalog.replace(s.missing_privileges, E'\n', '; ') AS missing_privileges
  FROM hamonitor.node n
  JOIN hamonitor.node_state s USING (node_id)
  LEFT JOIN LATERAL (
       SELECT ps.current_lsn
         FROM hamonitor.cluster c
         JOIN hamonitor.node_state ps ON ps.node_id = c.primary_node_id
        WHERE c.cluster_name = n.cluster_name) p ON true
  -- writable primaries per cluster, counted once per cluster
  LEFT JOIN (
       SELECT wn.cluster_name, count(*) AS writable
         FROM hamonitor.node wn
         JOIN hamonitor.node_state ws USING (node_id)
        WHERE ws.role = 'primary' AND ws.health = 'up'
          AND NOT ws.fenced AND NOT ws.sysid_mismatch
        GROUP BY wn.cluster_name) w ON w.cluster_name = n.cluster_name;

/* ---------------------------------------------------------------------
 * Actions: slot names, repointing, fencing
 * --------------------------------------------------------------------- */
