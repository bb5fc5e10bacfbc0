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

-- Managed slot names are unique per cluster.  1.0 derived them from the
-- node name alone, lower-cased with every other character made '_', so
-- "db-1", "db_1" and "DB_1" shared one slot.  A name that is already a
-- valid slot name keeps the simple form; any other gets a hash of the
-- exact name; and the name is stored per node, unique per cluster, so that
-- it never changes under a node and register_node refuses a collision.
CREATE OR REPLACE FUNCTION hamonitor.managed_slot_name(node_name text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN node_name ~ '^[a-z0-9_]{1,53}$'
            THEN 'hamonitor_' || node_name
            ELSE 'hamonitor_'
                 || left(regexp_replace(lower(node_name), '[^a-z0-9_]', '_', 'g'), 44)
                 || '_' || left(md5(node_name), 8)
       END;

ALTER TABLE hamonitor.node ADD COLUMN slot_name text;
-- existing nodes keep the slot 1.0 gave them (the first registered, where
-- 1.0 gave several the same), so no managed slot is renamed by the update
UPDATE hamonitor.node n
   SET slot_name = CASE WHEN o.rank = 1 THEN o.old_name
                        ELSE hamonitor.managed_slot_name(n.node_name) END
  FROM (SELECT node_id,
               'hamonitor_' || left(regexp_replace(lower(node_name), '[^a-z0-9_]', '_', 'g'), 53) AS old_name,
               row_number() OVER (PARTITION BY cluster_name,
                                  regexp_replace(lower(node_name), '[^a-z0-9_]', '_', 'g')
                                  ORDER BY node_id) AS rank
          FROM hamonitor.node) o
 WHERE o.node_id = n.node_id;
ALTER TABLE hamonitor.node ALTER COLUMN slot_name SET NOT NULL,
    ADD CONSTRAINT node_slot_name_unique UNIQUE (cluster_name, slot_name);

CREATE OR REPLACE FUNCTION hamonitor.register_node(node_name text,
                                        conninfo text,
                                        cluster_name text DEFAULT 'default',
                                        priority integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    new_id integer;
    slot text := hamonitor.managed_slot_name(register_node.node_name);
    holder text;
BEGIN
    PERFORM hamonitor.validate_name(register_node.node_name, 'node');
    PERFORM hamonitor.validate_name(register_node.cluster_name, 'cluster');
    IF register_node.conninfo IS NULL THEN
        RAISE EXCEPTION 'conninfo must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM hamonitor.validate_conninfo(register_node.conninfo);
    IF register_node.priority IS NULL OR register_node.priority < 0 THEN
        RAISE EXCEPTION 'priority must be zero or a positive integer'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Priority 0 means the node is never promoted.';
    END IF;

    -- serialize registrations of one cluster, so the duplicate check holds
    INSERT INTO hamonitor.cluster AS c (cluster_name)
         VALUES (register_node.cluster_name)
    ON CONFLICT (cluster_name) DO NOTHING;
    PERFORM 1 FROM hamonitor.cluster c
      WHERE c.cluster_name = register_node.cluster_name FOR UPDATE;

    IF EXISTS (SELECT 1 FROM hamonitor.node n
                WHERE n.cluster_name = register_node.cluster_name
                  AND n.node_name = register_node.node_name) THEN
        RAISE EXCEPTION 'node "%" already exists in cluster "%"',
                        register_node.node_name, register_node.cluster_name
            USING ERRCODE = 'duplicate_object';
    END IF;

    -- distinct nodes never share a managed slot (nor what is derived from
    -- the same name): a second name that maps to the same one is refused
    SELECT n.node_name INTO holder FROM hamonitor.node n
     WHERE n.cluster_name = register_node.cluster_name AND n.slot_name = slot;
    IF FOUND THEN
        RAISE EXCEPTION 'node name "%" maps to managed slot name "%", which node "%" of cluster "%" already uses',
                        register_node.node_name, slot, holder,
                        register_node.cluster_name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose a node name that differs in more than case or punctuation.';
    END IF;

    INSERT INTO hamonitor.node (cluster_name, node_name, conninfo, priority,
                                slot_name)
         VALUES (register_node.cluster_name, register_node.node_name,
                 register_node.conninfo, register_node.priority, slot)
      RETURNING node_id INTO new_id;
    INSERT INTO hamonitor.node_state (node_id) VALUES (new_id);

    INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
         VALUES (register_node.cluster_name, register_node.node_name,
                 'registered',
                 format('priority %s, conninfo %s', register_node.priority,
                        hamonitor.mask_conninfo(register_node.conninfo)));
    RETURN new_id;
END;
$$;

CREATE OR REPLACE FUNCTION hamonitor.slot_actions(cluster_name text)
RETURNS TABLE (action text, node_id integer, slot_name text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p record;
BEGIN
    SELECT c.primary_node_id AS id, coalesce(s.slots, '[]') AS slots INTO p
      FROM hamonitor.cluster c
      JOIN hamonitor.node_state s ON s.node_id = c.primary_node_id
     WHERE c.cluster_name = slot_actions.cluster_name
       AND s.health = 'up' AND s.role = 'primary' AND NOT s.fenced;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- slots created on another node (an old primary) are not ours to
    -- manage here: forget them.  (The primary's probed slots may not show
    -- a slot created a moment ago, so absence from them proves nothing.)
    DELETE FROM hamonitor.managed_slot ms
     WHERE ms.cluster_name = slot_actions.cluster_name
       AND ms.on_node_id <> p.id;
    -- our slots on the primary that no registered standby needs any more
    RETURN QUERY
    SELECT 'drop', p.id, ms.slot_name
      FROM hamonitor.managed_slot ms
     WHERE ms.cluster_name = slot_actions.cluster_name
       AND ms.on_node_id = p.id
       AND NOT EXISTS (SELECT 1 FROM hamonitor.node n
                        WHERE n.cluster_name = ms.cluster_name
                          AND n.node_name = ms.node_name
                          AND n.node_id <> p.id);

    -- a slot for every other node, but an old primary (down, or back and
    -- fenced): it cannot stream until it is rejoined as a standby, and a
    -- slot for it would only hold WAL
    RETURN QUERY
    SELECT 'create', p.id, n.slot_name
      FROM hamonitor.node n JOIN hamonitor.node_state s USING (node_id)
     WHERE n.cluster_name = slot_actions.cluster_name AND n.node_id <> p.id
       AND NOT s.sysid_mismatch AND s.role <> 'primary'
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p.slots) e
                        WHERE e->>'slot_name' = n.slot_name);

    RETURN QUERY
    SELECT 'set_primary_slot_name', n.node_id, n.slot_name
      FROM hamonitor.node n JOIN hamonitor.node_state s USING (node_id)
     WHERE n.cluster_name = slot_actions.cluster_name AND n.node_id <> p.id
       AND NOT s.sysid_mismatch AND s.health = 'up' AND s.role = 'standby'
       AND s.primary_slot_name IS DISTINCT FROM n.slot_name
       AND EXISTS (SELECT 1 FROM jsonb_array_elements(p.slots) e
                    WHERE e->>'slot_name' = n.slot_name);
END;
$$;

/* ---------------------------------------------------------------------
 * Clients and monitoring
 * --------------------------------------------------------------------- */

-- A libpq multi-host URI of a cluster's nodes (the primary first) for
-- applications: host, port and sslmode of the registered conninfo strings
-- only, never the witness's user, database, password or file paths; the
-- caller adds its own dbname and user.  SECURITY DEFINER: it reads the
-- node table, which holds secrets, and returns none of them.
CREATE FUNCTION hamonitor.connection_uri(cluster_name text,
                                         target text DEFAULT 'primary',
                                         dbname text DEFAULT NULL,
                                         "user" text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'hamonitor_connection_uri'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

REVOKE EXECUTE ON FUNCTION hamonitor.connection_uri(text, text, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hamonitor.connection_uri(text, text, text, text)
    TO pg_monitor;

-- Event hooks (pg_hamonitor.event_command, src/hooks.c).  Delivery is at
-- least once: an event is delivered when its row is in hook_delivery,
-- written with the hook's result event; until then it is run again, after
-- a crash too.  hook_state says since when the command is set: events
-- before that are not delivered.
CREATE TABLE hamonitor.hook_state (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    enabled_since timestamptz NOT NULL
);

CREATE TABLE hamonitor.hook_delivery (
    -- no foreign key: events are never deleted, and the hook worker's
    -- check would only slow its writes
    event_id    bigint PRIMARY KEY,
    outcome     text NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

SELECT pg_catalog.pg_extension_config_dump('hamonitor.hook_state', '');
SELECT pg_catalog.pg_extension_config_dump('hamonitor.hook_delivery', '');
REVOKE ALL ON hamonitor.hook_state, hamonitor.hook_delivery FROM PUBLIC;
