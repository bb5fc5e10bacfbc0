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

-- hamonitor.status shows this evidence; the view is defined once, in the
-- Durability section below, where its last columns are known.

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

-- ERROR (53400) unless the probe worker of the cluster can hold a connection
-- to one more node: the worker is found by the workers' own hash, in C
CREATE FUNCTION hamonitor.check_worker_capacity(cluster_name text)
RETURNS void
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'hamonitor_check_worker_capacity';
REVOKE EXECUTE ON FUNCTION hamonitor.check_worker_capacity(text) FROM PUBLIC;

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

    -- the node's worker must be able to hold its connection; refused here,
    -- nothing of the node is written (the cluster row above goes with the
    -- error)
    PERFORM hamonitor.check_worker_capacity(register_node.cluster_name);

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
 * The action engine: every action on the peers is a row here first
 * --------------------------------------------------------------------- */

-- One row per action sequence (a failover, a manual promotion, a
-- switchover, a fence).  The row is committed before the action starts:
-- the probe worker writes it in the transaction that records its decision,
-- and a manual function's request is written by the action's own worker,
-- so the intent outlives the caller's transaction.  The state moves on
-- with each step, each committed before the next step touches a peer, so a
-- witness that restarts mid-action knows where it stopped; in particular
-- 'promote_sent' means pg_promote() may have reached the candidate, and no
-- other candidate is chosen until the witness sees how that ended.
CREATE TABLE hamonitor.action (
    action_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_name    text NOT NULL,
    kind            text NOT NULL
                    CHECK (kind IN ('failover', 'promote', 'switchover',
                                    'fence', 'unfence')),
    -- the candidate, or the node fenced or unfenced
    node_id         integer,
    node_name       text,
    -- the cluster's primary when the action was planned
    old_primary_id  integer,
    -- fence: the witness's own probe session on the node, spared
    keep_pid        integer,
    force           boolean NOT NULL DEFAULT false,
    requested_by    text NOT NULL,
    reason          text,
    state           text NOT NULL DEFAULT 'planned'
                    CHECK (state IN ('planned', 'running', 'promote_sent',
                                     'promoted', 'done', 'failed',
                                     'abandoned')),
    -- promote_sent and the candidate still in recovery after
    -- promote_timeout: waits for a human (hamonitor.abandon_action)
    stalled         boolean NOT NULL DEFAULT false,
    attempts        integer NOT NULL DEFAULT 0,
    planned_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    promote_sent_at timestamptz,
    finished_at     timestamptz,
    error_sqlstate  text,
    outcome         text
);
-- one open action per cluster: a second decision waits for the first
CREATE UNIQUE INDEX action_open_per_cluster ON hamonitor.action (cluster_name)
    WHERE state IN ('planned', 'running', 'promote_sent', 'promoted');
CREATE INDEX action_time ON hamonitor.action (planned_at);
REVOKE ALL ON hamonitor.action FROM PUBLIC;

CREATE VIEW hamonitor.actions AS
SELECT action_id, cluster_name, kind, node_name, requested_by, state,
       stalled, attempts, planned_at, promote_sent_at, finished_at,
       error_sqlstate, outcome, reason
  FROM hamonitor.action;
GRANT SELECT ON hamonitor.actions TO pg_monitor;

-- A promotion that was requested and never finished blocks automatic
-- promotion in its cluster until a human has looked: this closes it (or an
-- action still planned).  Only once the candidate is known not to be
-- promoting (stopped, or restarted as a standby) should a DBA call it.  An
-- action under way is not abandoned: its worker holds the row while it
-- acts, and a switchover cut short would leave its old primary fenced.
CREATE FUNCTION hamonitor.abandon_action(cluster_name text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    a record;
BEGIN
    PERFORM hamonitor.validate_name(abandon_action.cluster_name, 'cluster');
    UPDATE hamonitor.action x
       SET state = 'abandoned', finished_at = clock_timestamp(),
           outcome = coalesce(outcome || '; ', '')
                     || format('abandoned by %s', current_user)
     WHERE x.cluster_name = abandon_action.cluster_name
       AND (x.state = 'planned' OR (x.state = 'promote_sent' AND x.stalled))
    RETURNING x.action_id, x.kind, x.node_name, x.state INTO a;
    IF NOT FOUND THEN
        SELECT x.action_id, x.state INTO a FROM hamonitor.action x
         WHERE x.cluster_name = abandon_action.cluster_name
           AND x.state IN ('planned', 'running', 'promote_sent', 'promoted');
        IF FOUND THEN
            RAISE EXCEPTION 'action % on cluster "%" is %, not stalled: it is not abandoned',
                            a.action_id, abandon_action.cluster_name, a.state
                USING ERRCODE = 'object_in_use',
                      HINT = 'Only a planned action, or a promotion stalled after promote_timeout, can be abandoned; a running one ends by itself.';
        END IF;
        RAISE EXCEPTION 'cluster "%" has no action in progress',
                        abandon_action.cluster_name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
         VALUES (abandon_action.cluster_name, a.node_name, 'action_abandoned',
                 format('%s action %s abandoned by %s', a.kind, a.action_id,
                        current_user));
    RETURN a.action_id;
END;
$$;
REVOKE EXECUTE ON FUNCTION hamonitor.abandon_action(text) FROM PUBLIC;

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

/* ---------------------------------------------------------------------
 * Durability: a synchronous quorum kept by the witness
 * --------------------------------------------------------------------- */

-- A cluster's durability.  synchronous NULL follows pg_hamonitor.synchronous;
-- 'quorum' makes the witness keep the primary's synchronous_standby_names
-- at 'ANY k (...)' over the standbys that may be promoted, so that a
-- failover to the right standby (decide.c: R + W > N) loses no commit the
-- primary acknowledged.  Set with hamonitor.set_cluster_option().
ALTER TABLE hamonitor.cluster
    ADD COLUMN synchronous text CHECK (synchronous IN ('off', 'quorum')),
    ADD COLUMN synchronous_k integer NOT NULL DEFAULT 1
        CHECK (synchronous_k >= 1),
    -- 'required': never lower k (writes wait); 'preferred': lower it when
    -- too few standbys are connected, and say so (durability_degraded)
    ADD COLUMN degrade_policy text NOT NULL DEFAULT 'required'
        CHECK (degrade_policy IN ('required', 'preferred')),
    -- preferred: when the witness lowered the quorum; committed before it
    -- lowers it on the primary, cleared once it is restored
    ADD COLUMN degraded_since timestamptz,
    -- the synchronous_standby_names the witness last set on a primary of
    -- the cluster: switching to 'off' empties that, and nothing else
    ADD COLUMN witness_standby_names text;

ALTER TABLE hamonitor.node_state
    -- primary: synchronous_standby_names as probed (what is applied)
    ADD COLUMN synchronous_standby_names text,
    -- primary: its walsenders as probed, one "application_name<TAB>
    -- sync_state" a line; a standby's sync_state is its line here
    ADD COLUMN sync_states text;

-- the durability mode a cluster runs under: its own, or the setting's
CREATE FUNCTION hamonitor.cluster_synchronous(cluster_name text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(c.synchronous,
                        current_setting('pg_hamonitor.synchronous', true),
                        'off')
          FROM hamonitor.cluster c
         WHERE c.cluster_name = cluster_synchronous.cluster_name);

-- The standbys a quorum counts (N): every registered node but the primary
-- that may ever be promoted (priority > 0), of the cluster's system, and
-- not cascading (a standby fed by another standby never acknowledges a
-- commit to the primary).  An old primary is listed too: it acknowledges
-- nothing until it is rejoined, but from then on it may, and under
-- 'required' a two-node cluster keeps waiting for it rather than running
-- unprotected.  A node never probed yet counts: it may be a standby, and
-- leaving it out would let k be met without it.  primary_node_id: the
-- primary to list them for (a candidate about to be promoted), by default
-- the cluster's.
--
-- The name a standby is listed under is its managed slot name
-- (hamonitor.node.slot_name: unique per cluster, [a-z0-9_], at most 63
-- bytes, so PostgreSQL's case-insensitive match and its 63-byte cut of
-- application_name leave it as it is); the witness writes it as
-- application_name into the standby's primary_conninfo.
CREATE FUNCTION hamonitor.quorum_standbys(cluster_name text,
                                          primary_node_id integer DEFAULT NULL)
RETURNS TABLE (node_id integer, node_name text, application_name text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.node_id, n.node_name, n.slot_name
      FROM hamonitor.cluster c
      CROSS JOIN LATERAL (SELECT coalesce(quorum_standbys.primary_node_id,
                                          c.primary_node_id) AS id) p
      JOIN hamonitor.node n USING (cluster_name)
      JOIN hamonitor.node_state s ON s.node_id = n.node_id
     WHERE c.cluster_name = quorum_standbys.cluster_name
       AND n.node_id IS DISTINCT FROM p.id
       AND n.priority > 0
       AND NOT s.sysid_mismatch
       AND (s.upstream_node_id IS NULL
            OR s.upstream_node_id IN (p.id, c.primary_node_id))
     ORDER BY n.slot_name
$$;

-- The synchronous_standby_names the witness wants on the cluster's primary
-- (or on primary_node_id, a candidate): '' under 'off', while degraded, or
-- with no standby to list; otherwise 'ANY k ("name", ...)'.
CREATE FUNCTION hamonitor.synchronous_standby_names(cluster_name text,
                                                    primary_node_id integer DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT CASE
                 WHEN hamonitor.cluster_synchronous(c.cluster_name) <> 'quorum'
                      OR c.degraded_since IS NOT NULL
                      OR q.names IS NULL THEN ''
                 ELSE format('ANY %s (%s)', c.synchronous_k, q.names)
               END
          FROM hamonitor.cluster c
          LEFT JOIN LATERAL (
               SELECT string_agg('"' || qs.application_name || '"', ', '
                                 ORDER BY qs.application_name) AS names
                 FROM hamonitor.quorum_standbys(c.cluster_name,
                          synchronous_standby_names.primary_node_id) qs) q ON true
         WHERE c.cluster_name = synchronous_standby_names.cluster_name);

-- Sets one durability option of a cluster:
--   'synchronous': 'off', 'quorum', or 'default' (follow pg_hamonitor.synchronous)
--   'synchronous_k': k of 'ANY k', 1 .. the number of standbys
--   'degrade': 'required' or 'preferred'
--   'degrade_grace': under preferred, how long fewer than k standbys may
--                    be connected before the quorum is lowered ('10s')
-- Refused with nothing changed: an unknown option or value (22023), k out
-- of range (22023), quorum in a cluster with no standby to list (55000).
-- The witness applies the result to the primary on its next review.
CREATE FUNCTION hamonitor.set_cluster_option(cluster_name text, option text,
                                             value text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c record;
    n integer;
    k integer;
    mode text;
BEGIN
    PERFORM hamonitor.validate_name(set_cluster_option.cluster_name, 'cluster');
    IF option IS NULL OR value IS NULL THEN
        RAISE EXCEPTION 'option and value must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO c FROM hamonitor.cluster x
     WHERE x.cluster_name = set_cluster_option.cluster_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cluster "%" does not exist',
                        set_cluster_option.cluster_name
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT count(*) INTO n
      FROM hamonitor.quorum_standbys(set_cluster_option.cluster_name);

    CASE option
    WHEN 'synchronous' THEN
        IF value NOT IN ('off', 'quorum', 'default') THEN
            RAISE EXCEPTION 'invalid value "%" for option "synchronous"', value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'One of off, quorum, default.';
        END IF;
        mode := CASE value WHEN 'default'
                     THEN coalesce(current_setting('pg_hamonitor.synchronous', true), 'off')
                     ELSE value END;
        IF mode = 'quorum' AND n = 0 THEN
            RAISE EXCEPTION 'cluster "%" has no standby that a quorum could list',
                            set_cluster_option.cluster_name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Register a standby with a priority above 0 first.';
        END IF;
        IF mode = 'quorum' AND c.synchronous_k > n THEN
            RAISE EXCEPTION 'cluster "%" has % standby(s), fewer than synchronous_k %',
                            set_cluster_option.cluster_name, n, c.synchronous_k
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE hamonitor.cluster x
           SET synchronous = CASE value WHEN 'default' THEN NULL ELSE value END,
               degraded_since = CASE WHEN mode = 'off' THEN NULL
                                     ELSE degraded_since END
         WHERE x.cluster_name = set_cluster_option.cluster_name;
    WHEN 'synchronous_k' THEN
        BEGIN
            k := value::integer;
        EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
            RAISE EXCEPTION 'invalid value "%" for option "synchronous_k"', value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'An integer from 1 to the number of standbys.';
        END;
        IF k < 1 OR k > n THEN
            RAISE EXCEPTION 'synchronous_k % is out of range for cluster "%"',
                            k, set_cluster_option.cluster_name
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('It has %s standby(s) that a quorum can list.', n),
                      HINT = 'An integer from 1 to the number of standbys.';
        END IF;
        UPDATE hamonitor.cluster x SET synchronous_k = k
         WHERE x.cluster_name = set_cluster_option.cluster_name;
    WHEN 'degrade_grace' THEN
        DECLARE
            g interval;
        BEGIN
            BEGIN
                g := value::interval;
            EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow
                           OR interval_field_overflow THEN
                RAISE EXCEPTION 'invalid value "%" for option "degrade_grace"', value
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'An interval of zero or more, such as ''10s''.';
            END;
            IF g < interval '0' THEN
                RAISE EXCEPTION 'degrade_grace must not be negative'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            UPDATE hamonitor.cluster x SET degrade_grace = g
             WHERE x.cluster_name = set_cluster_option.cluster_name;
        END;
    WHEN 'degrade' THEN
        IF value NOT IN ('required', 'preferred') THEN
            RAISE EXCEPTION 'invalid value "%" for option "degrade"', value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'One of required, preferred.';
        END IF;
        UPDATE hamonitor.cluster x SET degrade_policy = value
         WHERE x.cluster_name = set_cluster_option.cluster_name;
    ELSE
        RAISE EXCEPTION 'unknown cluster option "%"', option
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'One of synchronous, synchronous_k, degrade, degrade_grace.';
    END CASE;

    INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
         VALUES (set_cluster_option.cluster_name, NULL, 'cluster_option_set',
                 format('%s = %s by %s', option, value, current_user));
    RETURN format('%s = %s; synchronous_standby_names wanted: %L', option,
                  value,
                  hamonitor.synchronous_standby_names(set_cluster_option.cluster_name));
END;
$$;
REVOKE EXECUTE ON FUNCTION hamonitor.set_cluster_option(text, text, text)
    FROM PUBLIC;

-- An unregistration, or a priority of 0 (a standby never promoted is not
-- listed), that would leave a quorum cluster fewer listed standbys than k
-- is refused: the primary's writes would wait for a standby the list no
-- longer names.  (A cluster being deleted as a whole is gone already.)
CREATE FUNCTION hamonitor.node_quorum_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    n integer;
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.priority > 0 OR OLD.priority <= 0) THEN
        RETURN NEW;
    END IF;
    SELECT * INTO c FROM hamonitor.cluster x
     WHERE x.cluster_name = OLD.cluster_name;
    IF NOT FOUND
       OR hamonitor.cluster_synchronous(c.cluster_name) <> 'quorum' THEN
        RETURN CASE TG_OP WHEN 'UPDATE' THEN NEW ELSE OLD END;
    END IF;
    SELECT count(*) INTO n FROM hamonitor.quorum_standbys(c.cluster_name) q
     WHERE q.node_id <> OLD.node_id;
    IF TG_OP = 'UPDATE' THEN
        -- only a standby the list names now leaves it
        IF n < c.synchronous_k
           AND EXISTS (SELECT 1 FROM hamonitor.quorum_standbys(c.cluster_name) q
                        WHERE q.node_id = OLD.node_id) THEN
            RAISE EXCEPTION 'priority 0 for node "%" would leave cluster "%" % listed standby(s), fewer than synchronous_k %',
                            OLD.node_name, OLD.cluster_name, n, c.synchronous_k
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'A standby with priority 0 is never promoted, so the quorum does not list it.',
                      HINT = 'Lower synchronous_k or set synchronous to off first (hamonitor.set_cluster_option).';
        END IF;
        RETURN NEW;
    END IF;
    IF n < c.synchronous_k THEN
        RAISE EXCEPTION 'unregistering node "%" would leave cluster "%" % standby(s), fewer than synchronous_k %',
                        OLD.node_name, OLD.cluster_name, n, c.synchronous_k
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Lower synchronous_k or set synchronous to off first (hamonitor.set_cluster_option).';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER node_quorum_check BEFORE DELETE OR UPDATE OF priority
    ON hamonitor.node
    FOR EACH ROW EXECUTE FUNCTION hamonitor.node_quorum_check();

-- One row per cluster: its durability, and the synchronous_standby_names
-- the witness wants on the primary against what the primary last showed.
CREATE VIEW hamonitor.cluster_durability AS
SELECT c.cluster_name,
       hamonitor.cluster_synchronous(c.cluster_name) AS synchronous,
       c.synchronous_k,
       c.degrade_policy,
       (SELECT count(*) FROM hamonitor.quorum_standbys(c.cluster_name))::integer
           AS quorum_standbys,
       CASE WHEN hamonitor.cluster_synchronous(c.cluster_name) <> 'quorum'
                THEN 'off'
            WHEN c.degraded_since IS NULL
                 AND ps.synchronous_standby_names
                     = hamonitor.synchronous_standby_names(c.cluster_name)
                THEN 'guaranteed'
            ELSE 'degraded'
       END AS durability,
       c.degraded_since,
       hamonitor.synchronous_standby_names(c.cluster_name)
           AS configured_standby_names,
       ps.synchronous_standby_names AS applied_standby_names
  FROM hamonitor.cluster c
  LEFT JOIN hamonitor.node_state ps ON ps.node_id = c.primary_node_id;
GRANT SELECT ON hamonitor.cluster_durability TO pg_monitor;

-- 'sync': the engine's action that sets a primary's
-- synchronous_standby_names (and its standbys' application_name)
ALTER TABLE hamonitor.action DROP CONSTRAINT action_kind_check,
    ADD CONSTRAINT action_kind_check
        CHECK (kind IN ('failover', 'promote', 'switchover', 'fence',
                        'unfence', 'sync'));

-- The clusters whose primary needs a 'sync' action, and why: the list it
-- applies is not the one wanted, or a standby the quorum counts streams
-- from it under another application_name.  Under 'off' only a list the
-- witness set is ever emptied.  The probe workers ask every few seconds
-- (engine.c) and plan the action for a cluster with none open; after a
-- 'sync' action that ran, they wait for a probe of the primary taken
-- since; one that failed is tried again a minute later.
CREATE FUNCTION hamonitor.sync_reviews()
RETURNS TABLE (cluster_name text, primary_node_id integer, node_name text,
               reason text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.cluster_name, c.primary_node_id, pn.node_name,
           CASE WHEN w.wanted IS DISTINCT FROM ps.synchronous_standby_names
                THEN format('synchronous_standby_names is %L, wanted %L',
                            ps.synchronous_standby_names, w.wanted)
                ELSE format('standby "%s" does not stream as "%s"',
                            unnamed.node_name, unnamed.application_name)
           END
      FROM hamonitor.cluster c
      JOIN hamonitor.node pn ON pn.node_id = c.primary_node_id
      JOIN hamonitor.node_state ps ON ps.node_id = c.primary_node_id
      -- mode: hamonitor.cluster_synchronous() written out, and the list
      -- wanted built for a cluster under 'quorum' only ('' otherwise, as
      -- synchronous_standby_names() says): every probe worker asks every
      -- few seconds, and two function calls per cluster were most of what
      -- this cost with hundreds of clusters (their SET search_path keeps
      -- the planner from inlining them)
      CROSS JOIN LATERAL (SELECT coalesce(c.synchronous,
                                          current_setting('pg_hamonitor.synchronous', true),
                                          'off') AS mode) m
      CROSS JOIN LATERAL (SELECT m.mode,
                                 CASE WHEN m.mode = 'quorum'
                                      THEN hamonitor.synchronous_standby_names(c.cluster_name)
                                      ELSE '' END AS wanted) w
      LEFT JOIN LATERAL (
           SELECT q.node_name, q.application_name
             FROM hamonitor.quorum_standbys(c.cluster_name) q
             JOIN hamonitor.node_state qs ON qs.node_id = q.node_id
            WHERE w.mode = 'quorum' AND qs.health = 'up'
              AND qs.role = 'standby' AND qs.wal_receiver = 'streaming'
              AND qs.upstream_node_id = c.primary_node_id
              AND NOT EXISTS (
                  SELECT 1
                    FROM regexp_split_to_table(coalesce(ps.sync_states, ''), E'\n') l
                   WHERE lower(split_part(l, E'\t', 1)) = q.application_name)
            ORDER BY q.application_name LIMIT 1) unnamed ON true
     WHERE ps.health = 'up' AND ps.role = 'primary' AND NOT ps.fenced
       AND NOT ps.sysid_mismatch AND ps.synchronous_standby_names IS NOT NULL
       AND CASE WHEN w.mode = 'quorum'
                THEN w.wanted <> ps.synchronous_standby_names
                     OR unnamed.node_name IS NOT NULL
                ELSE ps.synchronous_standby_names <> ''
                     AND ps.synchronous_standby_names = c.witness_standby_names
           END
       AND NOT EXISTS (
           SELECT 1 FROM hamonitor.action a
            WHERE a.cluster_name = c.cluster_name AND a.kind = 'sync'
              AND CASE a.state
                  WHEN 'done' THEN a.finished_at > ps.last_probe_at
                  ELSE a.finished_at > clock_timestamp() - interval '60 s'
                  END)
$$;

-- The failover rule under a quorum (decide.c: R + W > N), for
-- simulate_failover: sync_listed marks a standby the primary's applied
-- list names; synchronous_k is the k it applied (NULL or 0: no quorum,
-- max_failover_lag rules), durability_degraded a quorum that was lowered.
ALTER TYPE hamonitor.simulated_node ADD ATTRIBUTE sync_listed boolean;
DROP FUNCTION hamonitor.simulate_failover(hamonitor.simulated_node[],
    timestamptz, boolean, integer, integer, bigint);
CREATE FUNCTION hamonitor.simulate_failover(nodes hamonitor.simulated_node[],
                                            now timestamptz,
                                            auto_failover boolean DEFAULT NULL,
                                            failover_timeout_ms integer DEFAULT NULL,
                                            restart_grace_ms integer DEFAULT NULL,
                                            max_failover_lag bigint DEFAULT NULL,
                                            synchronous_k integer DEFAULT NULL,
                                            durability_degraded boolean DEFAULT false,
                                            OUT verdict text,
                                            OUT candidate text,
                                            OUT reason text)
RETURNS record
AS 'MODULE_PATHNAME', 'hamonitor_simulate_failover'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;

-- The quorum each primary applied, as last probed, for the failover
-- decision of the probe workers (engine.c reads it): k of its 'ANY k' (or
-- 'FIRST k'; a plain list is FIRST 1), whether the cluster is degraded,
-- and the nodes the list names.  Only clusters under 'quorum': a list a
-- DBA wrote under 'off' names standbys by names of their own, and the
-- max_failover_lag rules stay theirs.  A degraded cluster is listed even
-- with an empty list: its automatic failover is blocked.
CREATE FUNCTION hamonitor.quorum_applied()
RETURNS TABLE (cluster_name text, sync_k integer, degraded boolean,
               listed integer[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.cluster_name,
           CASE WHEN coalesce(ps.synchronous_standby_names, '') = '' THEN 0
                ELSE coalesce(substring(ps.synchronous_standby_names
                                        FROM '^\s*(?:[Aa][Nn][Yy]|[Ff][Ii][Rr][Ss][Tt])\s+([0-9]+)\s*\(')::integer,
                              1)
           END,
           c.degraded_since IS NOT NULL,
           (SELECT array_agg(n.node_id ORDER BY n.node_id)
              FROM hamonitor.node n
             WHERE n.cluster_name = c.cluster_name
               AND n.node_id IS DISTINCT FROM c.primary_node_id
               AND position(lower('"' || n.slot_name || '"')
                            IN lower(ps.synchronous_standby_names)) > 0)
      FROM hamonitor.cluster c
      LEFT JOIN hamonitor.node_state ps ON ps.node_id = c.primary_node_id
     -- hamonitor.cluster_synchronous(), written out (see sync_reviews())
     WHERE coalesce(c.synchronous,
                    current_setting('pg_hamonitor.synchronous', true),
                    'off') = 'quorum'
$$;

-- degrade = 'preferred': how long fewer than k listed standbys may be
-- connected before the witness lowers the quorum, and its bookkeeping
ALTER TABLE hamonitor.cluster
    ADD COLUMN degrade_grace interval NOT NULL DEFAULT '10 s'
        CHECK (degrade_grace >= interval '0'),
    -- since when fewer than k listed standbys are connected (not degraded)
    ADD COLUMN quorum_short_since timestamptz,
    -- degraded, k standbys back: the primary's LSN they must have flushed
    ADD COLUMN restore_lsn pg_lsn;

-- Degrade and restore under degrade = 'preferred', run by the probe workers
-- with their review of the open actions (engine.c), in that transaction:
--  - fewer than k listed standbys connected to the primary (its
--    pg_stat_replication) for degrade_grace: degraded_since is set and a
--    durability_degraded event written; once that commits, the 'sync'
--    action that follows empties the primary's list (so the catalog says
--    "degraded" before the primary acknowledges a commit alone);
--  - degraded, and k listed standbys connected again: the primary's LSN as
--    probed then is the mark; once k of them have flushed it (their
--    pg_last_wal_receive_lsn), the quorum is restored
--    (durability_restored) and the 'sync' action sets the list again.
-- A cluster row another session holds locked is looked at next time.
CREATE FUNCTION hamonitor.review_durability()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.cluster_name, c.synchronous_k AS k, c.degraded_since,
               c.quorum_short_since, c.restore_lsn, c.degrade_grace,
               ps.current_lsn, pn.node_name AS primary_name,
               (SELECT count(*) FROM hamonitor.quorum_standbys(c.cluster_name) q
                 WHERE EXISTS (
                       SELECT 1
                         FROM regexp_split_to_table(coalesce(ps.sync_states, ''), E'\n') l
                        WHERE lower(split_part(l, E'\t', 1)) = q.application_name)
               )::integer AS connected,
               (SELECT count(*) FROM hamonitor.quorum_standbys(c.cluster_name) q
                  JOIN hamonitor.node_state qs ON qs.node_id = q.node_id
                 WHERE c.restore_lsn IS NOT NULL AND qs.health = 'up'
                   AND qs.role = 'standby'
                   AND qs.upstream_node_id = c.primary_node_id
                   AND qs.receive_lsn >= c.restore_lsn)::integer AS caught_up
          FROM hamonitor.cluster c
          JOIN hamonitor.node pn ON pn.node_id = c.primary_node_id
          JOIN hamonitor.node_state ps ON ps.node_id = c.primary_node_id
         -- hamonitor.cluster_synchronous(), written out (see sync_reviews())
         WHERE coalesce(c.synchronous,
                        current_setting('pg_hamonitor.synchronous', true),
                        'off') = 'quorum'
           AND c.degrade_policy = 'preferred'
           AND ps.health = 'up' AND ps.role = 'primary' AND NOT ps.fenced
           AND NOT ps.sysid_mismatch
           FOR UPDATE OF c SKIP LOCKED
    LOOP
        IF r.degraded_since IS NULL THEN
            IF r.connected >= r.k THEN
                IF r.quorum_short_since IS NOT NULL THEN
                    UPDATE hamonitor.cluster c SET quorum_short_since = NULL
                     WHERE c.cluster_name = r.cluster_name;
                END IF;
            ELSIF r.quorum_short_since IS NULL THEN
                UPDATE hamonitor.cluster c SET quorum_short_since = now()
                 WHERE c.cluster_name = r.cluster_name;
            ELSIF now() - r.quorum_short_since >= r.degrade_grace THEN
                UPDATE hamonitor.cluster c
                   SET degraded_since = now(), quorum_short_since = NULL,
                       restore_lsn = NULL
                 WHERE c.cluster_name = r.cluster_name;
                INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
                     VALUES (r.cluster_name, r.primary_name, 'durability_degraded',
                             format('%s of the listed standbys connected, fewer than k = %s, for %s (degrade = preferred): the witness empties synchronous_standby_names so that writes go on; commits are now acknowledged by the primary alone, and automatic failover is blocked until the quorum is restored',
                                    r.connected, r.k, r.degrade_grace));
            END IF;
        ELSIF r.connected < r.k THEN
            IF r.restore_lsn IS NOT NULL THEN
                UPDATE hamonitor.cluster c SET restore_lsn = NULL
                 WHERE c.cluster_name = r.cluster_name;
            END IF;
        ELSIF r.restore_lsn IS NULL THEN
            UPDATE hamonitor.cluster c SET restore_lsn = r.current_lsn
             WHERE c.cluster_name = r.cluster_name;
        ELSIF r.caught_up >= r.k THEN
            UPDATE hamonitor.cluster c
               SET degraded_since = NULL, restore_lsn = NULL
             WHERE c.cluster_name = r.cluster_name;
            INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)
                 VALUES (r.cluster_name, r.primary_name, 'durability_restored',
                         format('%s listed standbys have flushed %s, the primary''s position when they were back: the witness sets the quorum (k = %s) again',
                                r.caught_up, r.restore_lsn, r.k));
        END IF;
    END LOOP;
END;
$$;

-- hamonitor.status, 1.1's one definition: 1.0's columns, then the
-- evidence the failover decision works from (see "Evidence" above), then
-- each standby's sync_state and the cluster's durability
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
       pg_catalog.replace(s.missing_privileges, E'\n', '; ') AS missing_privileges,
       -- durability: a standby's sync_state in its primary's
       -- pg_stat_replication (quorum, sync, potential, async), matched by
       -- the name the quorum lists it under; the cluster's durability
       CASE WHEN s.role = 'standby' THEN
            (SELECT pg_catalog.split_part(l, E'\t', 2)
               FROM pg_catalog.regexp_split_to_table(p.sync_states, E'\n') l
              WHERE pg_catalog.lower(pg_catalog.split_part(l, E'\t', 1))
                    IN (n.slot_name, pg_catalog.lower(n.node_name))
              ORDER BY pg_catalog.lower(pg_catalog.split_part(l, E'\t', 1)) = n.slot_name DESC
              LIMIT 1)
       END AS sync_state,
       (SELECT d.durability FROM hamonitor.cluster_durability d
         WHERE d.cluster_name = n.cluster_name) AS durability
  FROM hamonitor.node n
  JOIN hamonitor.node_state s USING (node_id)
  LEFT JOIN LATERAL (
       SELECT ps.current_lsn, ps.sync_states
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
 * Clients and monitoring: events counted as they are inserted
 * --------------------------------------------------------------------- */

-- /metrics' hamonitor_events_total and hamonitor_cluster_failovers_total
-- (src/metrics.c): counters that a DELETE or TRUNCATE of old events never
-- makes go down, and that a scrape reads without counting the event table.
-- Each statement that inserts events adds them here, in a row of its own
-- backend: two transactions never write the same row, so an insert of an
-- event never waits for another's (a probe worker's batch must not wait,
-- and one row per cluster and kind could deadlock two transactions that
-- insert two kinds in opposite orders).  Probe worker 0 (every 10 s, after
-- its history purge) and the HTTP worker (before a scrape) fold the rows of
-- backends that are gone into the row of backend_pid 0.  Not dumped: a
-- restore re-inserts the events, and the trigger counts them again.
CREATE TABLE hamonitor.event_count (
    cluster_name text NOT NULL,
    kind         text NOT NULL,
    -- the inserting backend; 0 for the folded rows of those that are gone
    backend_pid  integer NOT NULL,
    events       bigint NOT NULL,
    PRIMARY KEY (cluster_name, kind, backend_pid)
);

-- SECURITY DEFINER: whoever may insert an event has it counted
CREATE FUNCTION hamonitor.event_count_add()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO hamonitor.event_count AS c
           (cluster_name, kind, backend_pid, events)
    SELECT n.cluster_name, n.kind, pg_catalog.pg_backend_pid(), count(*)
      FROM new_events n
     GROUP BY n.cluster_name, n.kind
    ON CONFLICT (cluster_name, kind, backend_pid)
    DO UPDATE SET events = c.events OPERATOR(pg_catalog.+) excluded.events;
    RETURN NULL;
END;
$$;
REVOKE EXECUTE ON FUNCTION hamonitor.event_count_add() FROM PUBLIC;

CREATE TRIGGER event_count AFTER INSERT ON hamonitor.event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION hamonitor.event_count_add();

-- an updated 1.0 starts from the events it has
INSERT INTO hamonitor.event_count (cluster_name, kind, backend_pid, events)
SELECT cluster_name, kind, 0, count(*)
  FROM hamonitor.event
 GROUP BY cluster_name, kind;

REVOKE ALL ON hamonitor.event_count FROM PUBLIC;
GRANT SELECT ON hamonitor.event_count TO pg_monitor;

-- ==========================================================================
-- Witness redundancy (src/witness.c): a standby witness that takes over by
-- itself, a superseded witness that stops acting.  Both functions read the
-- witness guard's shared memory, so they answer on a standby witness (in
-- recovery) too.  Events witness_takeover and witness_superseded go to
-- hamonitor.event like any other.
-- ==========================================================================

-- This witness: its role in the pair (active, starting, standby,
-- promoting, superseded), whether it acts, its identity, what it sees of
-- the active witness (on a standby) and of the data nodes, and why.
CREATE FUNCTION hamonitor.witness_status(
    OUT role text,
    OUT acting boolean,
    OUT takeover boolean,
    OUT system_identifier text,
    OUT timeline bigint,
    OUT active_witness_reachable boolean,
    OUT active_witness_last_seen timestamptz,
    OUT active_witness_lost_since timestamptz,
    OUT data_nodes integer,
    OUT data_nodes_reached integer,
    OUT fresh_sessions integer,
    OUT newer_timeline bigint,
    OUT checked_at timestamptz,
    OUT reason text)
RETURNS record
LANGUAGE C VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'hamonitor_witness_status';

-- The data nodes as the witness guard last saw them: reached or not, in
-- recovery, fresh probe sessions of the witness pair there.
CREATE FUNCTION hamonitor.witness_nodes(
    OUT cluster_name text,
    OUT node_name text,
    OUT reached boolean,
    OUT in_recovery boolean,
    OUT fresh_sessions integer,
    OUT last_reached timestamptz,
    OUT error text)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'hamonitor_witness_nodes';

REVOKE EXECUTE ON FUNCTION hamonitor.witness_status() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hamonitor.witness_nodes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hamonitor.witness_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION hamonitor.witness_nodes() TO pg_monitor;

-- ---------------------------------------------------------------------
-- Issue 10: the probes read a node's replication slots every
-- pg_hamonitor.slots_interval, not at every probe
-- ---------------------------------------------------------------------

ALTER TABLE hamonitor.node_state
    -- when the probe that read the node's slots (slots) was sent; the
    -- probes in between keep that list
    ADD COLUMN slots_read_at timestamptz;

-- every slot on every node, as last read: probed_at is when the slots were
-- read, which may be up to slots_interval before the node's last probe
CREATE OR REPLACE VIEW hamonitor.slots AS
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
       s.slots_read_at AS probed_at
  FROM hamonitor.node n
  JOIN hamonitor.node_state s USING (node_id)
  JOIN hamonitor.cluster c USING (cluster_name)
 CROSS JOIN LATERAL jsonb_array_elements(coalesce(s.slots, '[]')) e
  LEFT JOIN hamonitor.slot_state ss
         ON ss.node_id = n.node_id AND ss.slot_name = e->>'slot_name'
  LEFT JOIN hamonitor.managed_slot ms
         ON ms.cluster_name = n.cluster_name AND ms.on_node_id = n.node_id
        AND ms.slot_name = e->>'slot_name';
