-- durability settings: per-cluster synchronous quorum, its input checks,
-- the synchronous_standby_names the witness wants, and the view
CREATE FUNCTION pg_temp.try(cmd text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE cmd;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SHOW pg_hamonitor.synchronous;
SELECT hamonitor.register_node('p', 'host=10.9.0.1', cluster_name => 'dur') AS p_id \gset
-- the primary alone: no standby a quorum could list
UPDATE hamonitor.cluster SET primary_node_id = :p_id WHERE cluster_name = 'dur';
UPDATE hamonitor.node_state SET role = 'primary', health = 'up' WHERE node_id = :p_id;
SELECT count(*) AS events_before FROM hamonitor.event \gset
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'quorum')$$);
-- nothing changed, nothing logged
SELECT synchronous, synchronous_k, degrade_policy FROM hamonitor.cluster WHERE cluster_name = 'dur';
SELECT count(*) - :events_before AS new_events FROM hamonitor.event;

SELECT hamonitor.register_node('s1', 'host=10.9.0.2', cluster_name => 'dur') IS NOT NULL AS registered;
SELECT hamonitor.register_node('Node-2', 'host=10.9.0.3', cluster_name => 'dur') IS NOT NULL AS registered;
-- priority 0 is never promoted: never counted in the quorum
SELECT hamonitor.register_node('never', 'host=10.9.0.4', cluster_name => 'dur', priority => 0) IS NOT NULL AS registered;
-- a cascading standby (fed by s1) never acknowledges to the primary
SELECT hamonitor.register_node('casc', 'host=10.9.0.5', cluster_name => 'dur') AS casc_id \gset
UPDATE hamonitor.node_state SET role = 'standby',
       upstream_node_id = (SELECT node_id FROM hamonitor.node WHERE node_name = 's1' AND cluster_name = 'dur')
 WHERE node_id = :casc_id;
-- the listed name is the managed slot name, the same for both uses
SELECT node_name, application_name FROM hamonitor.quorum_standbys('dur') ORDER BY 1;

-- bad input: a clear error, nothing changed
SELECT count(*) AS events_before FROM hamonitor.event \gset
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'sync')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronus', 'quorum')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronous_k', '0')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronous_k', '3')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronous_k', 'two')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronous_k', '99999999999')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'degrade', 'sometimes')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'degrade_grace', 'soon')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'degrade_grace', '-5s')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('nope', 'synchronous', 'quorum')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronous', NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('bad name!', 'synchronous', 'off')$$);
SELECT synchronous, synchronous_k, degrade_policy FROM hamonitor.cluster WHERE cluster_name = 'dur';
SELECT count(*) - :events_before AS new_events FROM hamonitor.event;

-- off by default: nothing is wanted on the primary
SELECT synchronous, durability, configured_standby_names FROM hamonitor.cluster_durability WHERE cluster_name = 'dur';
SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'quorum');
SELECT hamonitor.set_cluster_option('dur', 'synchronous_k', '2');
SELECT hamonitor.set_cluster_option('dur', 'degrade', 'preferred');
SELECT hamonitor.set_cluster_option('dur', 'degrade_grace', '30s');
SELECT degrade_grace FROM hamonitor.cluster WHERE cluster_name = 'dur';
SELECT kind, detail FROM hamonitor.events WHERE kind = 'cluster_option_set' ORDER BY 1, 2;
-- not applied yet (the primary has not shown it): not guaranteed
SELECT synchronous, synchronous_k, degrade_policy, quorum_standbys, durability,
       configured_standby_names, applied_standby_names
  FROM hamonitor.cluster_durability WHERE cluster_name = 'dur';
-- once the primary shows it (its probe): guaranteed
UPDATE hamonitor.node_state SET synchronous_standby_names = hamonitor.synchronous_standby_names('dur') WHERE node_id = :p_id;
SELECT durability, configured_standby_names = applied_standby_names AS applied
  FROM hamonitor.cluster_durability WHERE cluster_name = 'dur';
-- status: each standby's sync_state from its primary's walsenders (by
-- the listed name), and the cluster's durability
UPDATE hamonitor.node_state SET sync_states = E'hamonitor_s1\tquorum\nother\tasync' WHERE node_id = :p_id;
UPDATE hamonitor.node_state SET role = 'standby'
 WHERE node_id = (SELECT node_id FROM hamonitor.node WHERE node_name = 's1' AND cluster_name = 'dur');
SELECT node_name, role, sync_state, durability FROM hamonitor.status
 WHERE cluster_name = 'dur' ORDER BY node_name;
-- the failover decision's view of the applied quorum: k and the listed nodes
SELECT q.sync_k, q.degraded,
       (SELECT array_agg(n.node_name ORDER BY n.node_name) FROM hamonitor.node n
         WHERE n.node_id = ANY (q.listed)) AS listed
  FROM hamonitor.quorum_applied() q WHERE q.cluster_name = 'dur';
-- degraded (preferred, too few standbys): the list is emptied
UPDATE hamonitor.cluster SET degraded_since = now() WHERE cluster_name = 'dur';
SELECT durability, configured_standby_names FROM hamonitor.cluster_durability WHERE cluster_name = 'dur';
UPDATE hamonitor.cluster SET degraded_since = NULL WHERE cluster_name = 'dur';

-- priority 0 takes a standby out of the list (never promoted): refused
-- the same way when fewer than k listed standbys would be left, nothing
-- changed, nothing logged
SELECT count(*) AS events_before FROM hamonitor.event \gset
SELECT pg_temp.try($$SELECT hamonitor.update_node('s1', 'dur', priority => 0)$$);
SELECT node_name, priority FROM hamonitor.node WHERE cluster_name = 'dur' ORDER BY 1;
SELECT count(*) - :events_before AS new_events FROM hamonitor.event;
-- other changes of a listed standby go through
SELECT hamonitor.update_node('s1', 'dur', priority => 50);
-- allowed while k listed standbys are left
SELECT hamonitor.update_node('never', 'dur', priority => 1);
SELECT hamonitor.update_node('s1', 'dur', priority => 0);
SELECT configured_standby_names FROM hamonitor.cluster_durability WHERE cluster_name = 'dur';
SELECT hamonitor.update_node('s1', 'dur', priority => 100);
SELECT hamonitor.update_node('never', 'dur', priority => 0);
SELECT configured_standby_names FROM hamonitor.cluster_durability WHERE cluster_name = 'dur';
-- an unregistration that leaves fewer standbys than k is refused
SELECT pg_temp.try($$SELECT hamonitor.unregister_node('s1', 'dur')$$);
SELECT count(*) AS nodes FROM hamonitor.node WHERE cluster_name = 'dur';
-- under off it goes; then quorum with k above the standbys left is refused
SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'off');
-- off: the witness empties the list it set on the primary, and only that
SELECT synchronous_standby_names AS applied_before FROM hamonitor.node_state WHERE node_id = :p_id \gset
UPDATE hamonitor.cluster SET witness_standby_names = 'ANY 1 ("hamonitor_s1")' WHERE cluster_name = 'dur';
UPDATE hamonitor.node_state SET synchronous_standby_names = 'FIRST 1 (dba_own)' WHERE node_id = :p_id;
SELECT count(*) AS dba_list_reviewed FROM hamonitor.sync_reviews() WHERE cluster_name = 'dur';
UPDATE hamonitor.node_state SET synchronous_standby_names = 'ANY 1 ("hamonitor_s1")' WHERE node_id = :p_id;
SELECT node_name, reason FROM hamonitor.sync_reviews() WHERE cluster_name = 'dur';
UPDATE hamonitor.node_state SET synchronous_standby_names = :'applied_before' WHERE node_id = :p_id;
UPDATE hamonitor.cluster SET witness_standby_names = NULL WHERE cluster_name = 'dur';
SELECT pg_temp.try($$SELECT hamonitor.unregister_node('s1', 'dur')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'quorum')$$);
SELECT hamonitor.set_cluster_option('dur', 'synchronous_k', '1');
SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'quorum');
SELECT configured_standby_names FROM hamonitor.cluster_durability WHERE cluster_name = 'dur';
-- 'default' follows pg_hamonitor.synchronous (off here)
SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'default');
SELECT synchronous, durability, configured_standby_names FROM hamonitor.cluster_durability WHERE cluster_name = 'dur';
-- the last standby of a quorum cluster stays until the quorum is off
SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'quorum');
SELECT hamonitor.unregister_node(node_name, 'dur') FROM hamonitor.node
 WHERE cluster_name = 'dur' AND node_name IN ('never', 'casc', 'p');
SELECT pg_temp.try($$SELECT hamonitor.unregister_node('Node-2', 'dur')$$);
SELECT hamonitor.set_cluster_option('dur', 'synchronous', 'off');
SELECT hamonitor.unregister_node('Node-2', 'dur');
SELECT count(*) FROM hamonitor.cluster WHERE cluster_name = 'dur';
