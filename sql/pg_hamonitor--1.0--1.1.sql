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
