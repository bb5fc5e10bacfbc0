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
    -- a stale primary the witness made read-only (or would have)
    fenced              boolean NOT NULL DEFAULT false,
    -- repointed after a failover but not following the new primary
    needs_rejoin        boolean NOT NULL DEFAULT false,
    -- repointed at, until seen streaming from the new primary
    repointed_at        timestamptz,
    health_changed_at   timestamptz
);

-- Every probe of every node, kept for pg_hamonitor.history_retention.
CREATE TABLE hamonitor.probe_history (
    node_id        integer NOT NULL
                   REFERENCES hamonitor.node ON DELETE CASCADE,
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
-- the purge walks the oldest rows; a BRIN index suits append-only time
CREATE INDEX probe_history_time ON hamonitor.probe_history USING brin (probed_at);

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

SELECT pg_catalog.pg_extension_config_dump('hamonitor.cluster', '');
SELECT pg_catalog.pg_extension_config_dump('hamonitor.node', '');
SELECT pg_catalog.pg_extension_config_dump('hamonitor.event', '');

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
        AND NOT s.sysid_mismatch
        AND (SELECT count(*) FROM hamonitor.node bn
               JOIN hamonitor.node_state bs USING (node_id)
              WHERE bn.cluster_name = n.cluster_name
                AND bs.role = 'primary' AND bs.health = 'up'
                AND NOT bs.fenced AND NOT bs.sysid_mismatch) > 1)
           AS split_brain,
       s.read_only,
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
        WHERE c.cluster_name = n.cluster_name) p ON true;

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
                           hamonitor.switchover(text, text)
    FROM PUBLIC;
GRANT USAGE ON SCHEMA hamonitor TO pg_monitor;
GRANT SELECT ON hamonitor.status, hamonitor.lsn_history, hamonitor.events
    TO pg_monitor;
