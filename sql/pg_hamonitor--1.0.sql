/* sql/pg_hamonitor--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_hamonitor" to load this file. \quit

/*
 * The catalog is made of ordinary tables so that a hot standby of the
 * witness carries the whole registry, state and history, and its worker can
 * take over where this one stopped when it is promoted.
 *
 * Tables are readable by their owner only (the node table holds conninfo
 * strings, which may contain a password).  Dashboards read the views, which
 * mask secrets and are granted to pg_monitor.
 */

CREATE SCHEMA hamonitor;

-- One row per monitored cluster (a primary and its standbys).
CREATE TABLE hamonitor.cluster (
    cluster_name      text PRIMARY KEY,
    -- learnt from the first successful probe; every node must match it
    system_identifier bigint,
    -- the node the witness holds to be the primary, and its timeline;
    -- changed only under this row's lock (see hamonitor.promote)
    primary_node_id   integer,
    timeline          integer,
    last_failover_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- The node registry, written only by the SQL functions below.
CREATE TABLE hamonitor.node (
    node_id      integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_name text NOT NULL REFERENCES hamonitor.cluster ON DELETE CASCADE,
    node_name    text NOT NULL,
    conninfo     text NOT NULL,
    -- 0 means "never promote this node"
    priority     integer NOT NULL DEFAULT 100 CHECK (priority >= 0),
    maintenance  boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cluster_name, node_name)
);

-- Current state of each node, written by the probe worker.
CREATE TABLE hamonitor.node_state (
    node_id             integer PRIMARY KEY
                        REFERENCES hamonitor.node ON DELETE CASCADE,
    health              text NOT NULL DEFAULT 'unknown'
                        CHECK (health IN ('unknown', 'up', 'down')),
    role                text NOT NULL DEFAULT 'unknown'
                        CHECK (role IN ('unknown', 'primary', 'standby')),
    -- the node's system identifier differs from its cluster's
    sysid_mismatch      boolean NOT NULL DEFAULT false,
    system_identifier   bigint,
    timeline            integer,
    server_version      integer,
    last_probe_at       timestamptz,
    last_seen           timestamptz,
    latency_ms          double precision,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_error_sqlstate text,
    last_error          text,
    -- primary: current and flush LSN; standby: receive and replay LSN
    current_lsn         pg_lsn,
    flush_lsn           pg_lsn,
    receive_lsn         pg_lsn,
    replay_lsn          pg_lsn,
    last_replay_at      timestamptz,
    -- standby: its WAL receiver and the upstream it streams from
    wal_receiver_status text,
    upstream_host       text,
    upstream_port       integer,
    last_wal_receipt_at timestamptz,
    -- the node's replication slots as last probed (pg_replication_slots)
    slots               jsonb,
    -- default_transaction_read_only is on
    read_only           boolean,
    -- standby: the slot its WAL receiver asks for
    primary_slot_name   text,
    -- a stale primary the witness made read-only (or would have)
    fenced              boolean NOT NULL DEFAULT false,
    -- repointed after a failover but not following the new primary
    needs_rejoin        boolean NOT NULL DEFAULT false,
    -- repointed at, until seen streaming from the new primary
    repointed_at        timestamptz,
    health_changed_at   timestamptz
);

-- Every probe of every node, kept for pg_hamonitor.history_retention.
-- No foreign key: its check would run a query per row, the bulk of the
-- cost of writing history; the worker locks the node rows of each batch
-- and skips nodes gone, and unregister_node deletes a node's history.
CREATE TABLE hamonitor.probe_history (
    node_id        integer NOT NULL,
    probed_at      timestamptz NOT NULL,
    success        boolean NOT NULL,
    latency_ms     double precision,
    role           text,
    timeline       integer,
    current_lsn    pg_lsn,
    flush_lsn      pg_lsn,
    receive_lsn    pg_lsn,
    replay_lsn     pg_lsn,
    last_replay_at timestamptz,
    error_sqlstate text,
    error          text
);
-- one node's time range is an index range scan
CREATE INDEX probe_history_node_time ON hamonitor.probe_history (node_id, probed_at);
-- the purge takes the oldest rows from the left end of this index: cheap
-- whether there is much to purge or nothing (a BRIN index, or a generic
-- plan that missed it, made an idle purge of 10M rows scan seconds long)
CREATE INDEX probe_history_time ON hamonitor.probe_history (probed_at);

-- Every health or role change and every decision, never updated.
CREATE TABLE hamonitor.event (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- names, not keys: events outlive unregistered nodes
    cluster_name text NOT NULL,
    node_name    text,
    kind         text NOT NULL,
    detail       text
);
CREATE INDEX event_time ON hamonitor.event (event_time);

-- every event is announced: LISTEN hamonitor_event gets its id
CREATE FUNCTION hamonitor.event_notify()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('hamonitor_event', NEW.event_id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER event_notify AFTER INSERT ON hamonitor.event
    FOR EACH ROW EXECUTE FUNCTION hamonitor.event_notify();

-- Slots the witness created for a standby on its cluster's primary; only
-- these are ever dropped by it.
CREATE TABLE hamonitor.managed_slot (
    cluster_name text NOT NULL REFERENCES hamonitor.cluster ON DELETE CASCADE,
    -- the primary the slot was created on: a slot of the same name on
    -- another node (after a failover) is not ours
    on_node_id   integer NOT NULL,
    slot_name    text NOT NULL,
    -- the standby the slot serves
    node_name    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_name, on_node_id, slot_name)
);

-- What the worker tracks of each slot it has seen: since when it is
-- inactive, and the alert it raised (NULL when none).
CREATE TABLE hamonitor.slot_state (
    node_id        integer NOT NULL REFERENCES hamonitor.node ON DELETE CASCADE,
    slot_name      text NOT NULL,
    inactive_since timestamptz,
    alert          text,
    PRIMARY KEY (node_id, slot_name)
);

SELECT pg_catalog.pg_extension_config_dump('hamonitor.cluster', '');
SELECT pg_catalog.pg_extension_config_dump('hamonitor.node', '');
SELECT pg_catalog.pg_extension_config_dump('hamonitor.event', '');
SELECT pg_catalog.pg_extension_config_dump('hamonitor.managed_slot', '');

/* ---------------------------------------------------------------------
 * C helpers
 * --------------------------------------------------------------------- */

-- conninfo with every secret option (password) replaced by ********
CREATE FUNCTION hamonitor.mask_conninfo(conninfo text)
RETURNS text
AS 'MODULE_PATHNAME', 'hamonitor_mask_conninfo'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- raises an error unless libpq can parse the conninfo
CREATE FUNCTION hamonitor.validate_conninfo(conninfo text)
RETURNS void
AS 'MODULE_PATHNAME', 'hamonitor_validate_conninfo'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- raises an error unless the name is a valid node or cluster name
CREATE FUNCTION hamonitor.validate_name(name text, what text)
RETURNS void
AS 'MODULE_PATHNAME', 'hamonitor_validate_name'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- statement trigger: tells the probe workers the registry changed
CREATE FUNCTION hamonitor.node_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'hamonitor_node_changed'
LANGUAGE C;

CREATE TRIGGER node_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hamonitor.node
    FOR EACH STATEMENT EXECUTE FUNCTION hamonitor.node_changed();

/* ---------------------------------------------------------------------
 * Registry functions
 * --------------------------------------------------------------------- */

CREATE FUNCTION hamonitor.register_node(node_name text,
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

    INSERT INTO hamonitor.node (cluster_name, node_name, conninfo, priority)
         VALUES (register_node.cluster_name, register_node.node_name,
                 register_node.conninfo, register_node.priority)
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

-- looks a node up and locks its row; raises undefined_object if absent
CREATE FUNCTION hamonitor.node_id(node_name text,
                                  cluster_name text DEFAULT 'default')
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    found_id integer;
BEGIN
    PERFORM hamonitor.validate_name(node_id.node_name, 'node');
    PERFORM hamonitor.validate_name(node_id.cluster_name, 'cluster');
    SELECT n.node_id INTO found_id FROM hamonitor.node n
     WHERE n.cluster_name = node_id.cluster_name
       AND n.node_name = node_id.node_name
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node "%" does not exist in cluster "%"',
                        node_id.node_name, node_id.cluster_name
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN found_id;
END;
$$;

CREATE FUNCTION hamonitor.unregister_node(node_name text,
                                          cluster_name text DEFAULT 'default')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    id integer := hamonitor.node_id(unregister_node.node_name,
                                    unregister_node.cluster_name);
BEGIN
    DELETE FROM hamonitor.probe_history WHERE node_id = id;
    DELETE FROM hamonitor.node WHERE node_id = id;
    -- a cluster with no node left is forgotten, with its system identifier
    DELETE FROM hamonitor.cluster c
     WHERE c.cluster_name = unregister_node.cluster_name
       AND NOT EXISTS (SELECT 1 FROM hamonitor.node n
                        WHERE n.cluster_name = c.cluster_name);
    INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
         VALUES (unregister_node.cluster_name, unregister_node.node_name,
                 'unregistered', NULL);
END;
$$;

CREATE FUNCTION hamonitor.update_node(node_name text,
                                      cluster_name text DEFAULT 'default',
                                      conninfo text DEFAULT NULL,
                                      priority integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    id integer := hamonitor.node_id(update_node.node_name,
                                    update_node.cluster_name);
BEGIN
    IF update_node.conninfo IS NOT NULL THEN
        PERFORM hamonitor.validate_conninfo(update_node.conninfo);
    END IF;
    IF update_node.priority < 0 THEN
        RAISE EXCEPTION 'priority must be zero or a positive integer'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE hamonitor.node n
       SET conninfo = coalesce(update_node.conninfo, n.conninfo),
           priority = coalesce(update_node.priority, n.priority)
     WHERE n.node_id = id;
    INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
    SELECT n.cluster_name, n.node_name, 'updated',
           format('priority %s, conninfo %s', n.priority,
                  hamonitor.mask_conninfo(n.conninfo))
      FROM hamonitor.node n WHERE n.node_id = id;
END;
$$;

CREATE FUNCTION hamonitor.set_maintenance(node_name text,
                                          "on" boolean,
                                          cluster_name text DEFAULT 'default')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    id integer := hamonitor.node_id(set_maintenance.node_name,
                                    set_maintenance.cluster_name);
BEGIN
    IF set_maintenance."on" IS NULL THEN
        RAISE EXCEPTION 'maintenance flag must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE hamonitor.node SET maintenance = set_maintenance."on"
     WHERE node_id = id AND maintenance IS DISTINCT FROM set_maintenance."on";
    IF FOUND THEN
        INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
             VALUES (set_maintenance.cluster_name, set_maintenance.node_name,
                     CASE WHEN set_maintenance."on" THEN 'maintenance_on'
                          ELSE 'maintenance_off' END, NULL);
    END IF;
END;
$$;

/* ---------------------------------------------------------------------
 * Replication slots
 * --------------------------------------------------------------------- */

CREATE FUNCTION hamonitor.create_slot(node_name text,
                                      slot_name text,
                                      slot_type text DEFAULT 'physical',
                                      plugin text DEFAULT NULL,
                                      cluster_name text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'hamonitor_create_slot'
LANGUAGE C VOLATILE;

CREATE FUNCTION hamonitor.drop_slot(node_name text,
                                    slot_name text,
                                    cluster_name text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'hamonitor_drop_slot'
LANGUAGE C VOLATILE;

CREATE FUNCTION hamonitor.advance_slot(node_name text,
                                       slot_name text,
                                       lsn pg_lsn,
                                       cluster_name text DEFAULT 'default')
RETURNS pg_lsn
AS 'MODULE_PATHNAME', 'hamonitor_advance_slot'
LANGUAGE C VOLATILE;

-- the name of the slot the witness keeps for a standby on its primary
CREATE FUNCTION hamonitor.managed_slot_name(node_name text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN 'hamonitor_' || left(regexp_replace(lower(node_name), '[^a-z0-9_]', '_', 'g'), 53);

-- Worker: refreshes slot_state of a cluster's reachable nodes from their
-- last probe and raises (or clears) alerts, each once.
CREATE FUNCTION hamonitor.review_slots(cluster_name text,
                                       inactive_alert interval,
                                       retained_alert bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    r record;
    since timestamptz;
    old_alert text;
    new_alert text;
BEGIN
    -- the node rows first, in order, as every writer of the worker does:
    -- unregister_node() locks a node row, then deletes what hangs from it
    PERFORM 1 FROM hamonitor.node n
      WHERE n.cluster_name = review_slots.cluster_name
      ORDER BY n.node_id FOR KEY SHARE;

    -- slots gone from a node that is up are forgotten
    DELETE FROM hamonitor.slot_state ss
     USING hamonitor.node n, hamonitor.node_state s
     WHERE ss.node_id = n.node_id AND s.node_id = n.node_id
       AND n.cluster_name = review_slots.cluster_name AND s.health = 'up'
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(s.slots, '[]')) e
                        WHERE e->>'slot_name' = ss.slot_name);

    FOR r IN
        SELECT n.node_id, n.node_name, e->>'slot_name' AS slot_name,
               coalesce((e->>'active')::boolean, false) AS active,
               (e->>'retained_bytes')::bigint AS retained,
               e->>'wal_status' AS wal_status
          FROM hamonitor.node n
          JOIN hamonitor.node_state s USING (node_id)
         CROSS JOIN LATERAL jsonb_array_elements(coalesce(s.slots, '[]')) e
         WHERE n.cluster_name = review_slots.cluster_name AND s.health = 'up'
    LOOP
        INSERT INTO hamonitor.slot_state AS ss (node_id, slot_name, inactive_since)
             VALUES (r.node_id, r.slot_name,
                     CASE WHEN NOT r.active THEN now() END)
        ON CONFLICT (node_id, slot_name) DO UPDATE
           SET inactive_since = CASE WHEN r.active THEN NULL
                                     ELSE coalesce(ss.inactive_since, now()) END
        RETURNING inactive_since, alert INTO since, old_alert;

        new_alert := nullif(concat_ws('; ',
            CASE WHEN since IS NOT NULL AND now() - since > inactive_alert
                 THEN format('inactive since %s', since) END,
            CASE WHEN r.retained > retained_alert
                 THEN format('retains more than %s of WAL',
                             pg_size_pretty(retained_alert)) END,
            CASE WHEN r.wal_status IN ('unreserved', 'lost')
                 THEN format('wal_status is %s', r.wal_status) END), '');

        IF new_alert IS DISTINCT FROM old_alert THEN
            UPDATE hamonitor.slot_state SET alert = new_alert
             WHERE node_id = r.node_id AND slot_name = r.slot_name;
            INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
            VALUES (review_slots.cluster_name, r.node_name,
                    CASE WHEN new_alert IS NULL THEN 'slot_alert_cleared'
                         ELSE 'slot_alert' END,
                    format('slot "%s": %s', r.slot_name,
                           coalesce(new_alert, 'no longer ' || old_alert)));
        END IF;
    END LOOP;
END;
$$;

-- Worker: what keeping one slot per standby on the primary takes now:
-- 'create' a slot on the primary, 'set_primary_slot_name' on a standby,
-- 'drop' a slot the witness created for a node no longer a standby here.
CREATE FUNCTION hamonitor.slot_actions(cluster_name text)
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
    SELECT 'create', p.id, hamonitor.managed_slot_name(n.node_name)
      FROM hamonitor.node n JOIN hamonitor.node_state s USING (node_id)
     WHERE n.cluster_name = slot_actions.cluster_name AND n.node_id <> p.id
       AND NOT s.sysid_mismatch AND s.role <> 'primary'
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p.slots) e
                        WHERE e->>'slot_name' = hamonitor.managed_slot_name(n.node_name));

    RETURN QUERY
    SELECT 'set_primary_slot_name', n.node_id, hamonitor.managed_slot_name(n.node_name)
      FROM hamonitor.node n JOIN hamonitor.node_state s USING (node_id)
     WHERE n.cluster_name = slot_actions.cluster_name AND n.node_id <> p.id
       AND NOT s.sysid_mismatch AND s.health = 'up' AND s.role = 'standby'
       AND s.primary_slot_name IS DISTINCT FROM hamonitor.managed_slot_name(n.node_name)
       AND EXISTS (SELECT 1 FROM jsonb_array_elements(p.slots) e
                    WHERE e->>'slot_name' = hamonitor.managed_slot_name(n.node_name));
END;
$$;

/* ---------------------------------------------------------------------
 * Changing a cluster's primary
 * --------------------------------------------------------------------- */

-- promotes a standby while the primary is down (force skips the lag check)
CREATE FUNCTION hamonitor.promote(node_name text,
                                  cluster_name text DEFAULT 'default',
                                  force boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'hamonitor_promote'
LANGUAGE C VOLATILE;

-- the automatic choice, now; with the primary up only when planned
CREATE FUNCTION hamonitor.failover(cluster_name text DEFAULT 'default',
                                   planned boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'hamonitor_failover'
LANGUAGE C VOLATILE;

-- planned change of primary, no data lost
CREATE FUNCTION hamonitor.switchover(node_name text,
                                     cluster_name text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'hamonitor_switchover'
LANGUAGE C VOLATILE;

-- A cluster as the failover decision sees it, for simulate_failover.
CREATE TYPE hamonitor.simulated_node AS (
    node_name      text,
    is_primary     boolean,
    role           text,
    health         text,
    maintenance    boolean,
    priority       integer,
    timeline       integer,
    current_lsn    pg_lsn,
    receive_lsn    pg_lsn,
    replay_lsn     pg_lsn,
    streaming      boolean,
    last_seen      timestamptz,
    down_since     timestamptz,
    alive_signal   boolean,
    sysid_mismatch boolean,
    fenced         boolean
);

-- The worker's failover decision on an injected cluster at an injected
-- time; NULL rules mean the current settings.  Changes nothing: for tests
-- and for "what would the witness do if...".
CREATE FUNCTION hamonitor.simulate_failover(nodes hamonitor.simulated_node[],
                                            now timestamptz,
                                            auto_failover boolean DEFAULT NULL,
                                            failover_timeout_ms integer DEFAULT NULL,
                                            restart_grace_ms integer DEFAULT NULL,
                                            max_failover_lag bigint DEFAULT NULL,
                                            OUT verdict text,
                                            OUT candidate text,
                                            OUT reason text)
RETURNS record
AS 'MODULE_PATHNAME', 'hamonitor_simulate_failover'
LANGUAGE C STABLE;

/* ---------------------------------------------------------------------
 * Views for psql and dashboards
 * --------------------------------------------------------------------- */

CREATE VIEW hamonitor.status AS
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
       n.node_id
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

CREATE VIEW hamonitor.lsn_history AS
SELECT n.cluster_name,
       n.node_name,
       h.probed_at,
       h.success,
       h.latency_ms,
       h.role,
       h.timeline,
       h.current_lsn,
       h.flush_lsn,
       h.receive_lsn,
       h.replay_lsn,
       h.last_replay_at,
       h.error_sqlstate,
       h.error,
       h.node_id
  FROM hamonitor.probe_history h
  JOIN hamonitor.node n USING (node_id);

CREATE VIEW hamonitor.events AS
SELECT event_id, event_time, cluster_name, node_name, kind, detail
  FROM hamonitor.event;

-- every slot on every node, as last probed
CREATE VIEW hamonitor.slots AS
SELECT n.cluster_name,
       n.node_name,
       e->>'slot_name' AS slot_name,
       e->>'slot_type' AS slot_type,
       e->>'plugin' AS plugin,
       e->>'database' AS database,
       (e->>'temporary')::boolean AS temporary,
       (e->>'active')::boolean AS active,
       (e->>'active_pid')::integer AS active_pid,
       (e->>'restart_lsn')::pg_lsn AS restart_lsn,
       (e->>'confirmed_flush_lsn')::pg_lsn AS confirmed_flush_lsn,
       e->>'wal_status' AS wal_status,
       (e->>'retained_bytes')::bigint AS retained_bytes,
       ss.inactive_since,
       (ms.slot_name IS NOT NULL) AS managed,
       -- PostgreSQL 15 keeps no logical slot on a standby: lost on failover
       (e->>'slot_type' = 'logical' AND s.role = 'primary') AS failover_risk,
       ss.alert,
       s.last_probe_at AS probed_at
  FROM hamonitor.node n
  JOIN hamonitor.node_state s USING (node_id)
  JOIN hamonitor.cluster c USING (cluster_name)
 CROSS JOIN LATERAL jsonb_array_elements(coalesce(s.slots, '[]')) e
  LEFT JOIN hamonitor.slot_state ss
         ON ss.node_id = n.node_id AND ss.slot_name = e->>'slot_name'
  LEFT JOIN hamonitor.managed_slot ms
         ON ms.cluster_name = n.cluster_name AND ms.on_node_id = n.node_id
        AND ms.slot_name = e->>'slot_name';

/* ---------------------------------------------------------------------
 * Privileges
 * --------------------------------------------------------------------- */

REVOKE ALL ON ALL TABLES IN SCHEMA hamonitor FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hamonitor.register_node(text, text, text, integer),
                           hamonitor.unregister_node(text, text),
                           hamonitor.update_node(text, text, text, integer),
                           hamonitor.set_maintenance(text, boolean, text),
                           hamonitor.node_id(text, text),
                           hamonitor.node_changed(),
                           hamonitor.promote(text, text, boolean),
                           hamonitor.failover(text, boolean),
                           hamonitor.switchover(text, text),
                           hamonitor.create_slot(text, text, text, text, text),
                           hamonitor.drop_slot(text, text, text),
                           hamonitor.advance_slot(text, text, pg_lsn, text),
                           hamonitor.review_slots(text, interval, bigint),
                           hamonitor.slot_actions(text)
    FROM PUBLIC;
GRANT USAGE ON SCHEMA hamonitor TO pg_monitor;
GRANT SELECT ON hamonitor.status, hamonitor.lsn_history, hamonitor.events,
                hamonitor.slots
    TO pg_monitor;
