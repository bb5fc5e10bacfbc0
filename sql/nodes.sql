-- node registry: registration, input checks, masking, privileges
-- errors are shown as SQLSTATE: message, so the codes are part of the test
CREATE FUNCTION pg_temp.try(cmd text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE cmd;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SELECT hamonitor.register_node('pg1', 'host=10.0.0.1 port=5432 user=hamonitor dbname=postgres', cluster_name => 'main') AS pg1_id \gset
SELECT hamonitor.register_node('pg2', 'host=10.0.0.2 port=5432 user=hamonitor dbname=postgres', cluster_name => 'main', priority => 50) > :pg1_id AS ids_grow;
-- the same node name in another cluster is another node
SELECT hamonitor.register_node('pg1', 'postgresql://hamonitor@10.1.0.1:5432/postgres', cluster_name => 'other') IS NOT NULL AS registered;
-- default cluster
SELECT hamonitor.register_node('solo', 'host=10.2.0.1') IS NOT NULL AS registered;
SELECT cluster_name, node_name, role, health, priority, maintenance, conninfo
  FROM hamonitor.status ORDER BY cluster_name, node_name;
SELECT cluster_name, system_identifier FROM hamonitor.cluster ORDER BY 1;

-- bad input: a clear error, and nothing written
SELECT count(*) AS nodes_before FROM hamonitor.node \gset
SELECT count(*) AS events_before FROM hamonitor.event \gset
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg1', 'host=10.0.0.9', cluster_name => 'main')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3', 'host=10.0.0.3 bogus=1', cluster_name => 'main')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3', 'host=10.0.0.3 port', cluster_name => 'main')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3', 'postgresql://u@[::1', cluster_name => 'main')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node(NULL, 'host=10.0.0.3')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3', NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3', 'host=10.0.0.3', cluster_name => NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3', 'host=10.0.0.3', priority => NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('', 'host=10.0.0.3')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3', 'host=10.0.0.3', cluster_name => '')$$);
SELECT pg_temp.try(format($$SELECT hamonitor.register_node(%L, 'host=10.0.0.3')$$, repeat('n', 64)));
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg 3', 'host=10.0.0.3')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3''; DROP TABLE x; --', 'host=10.0.0.3')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pgé', 'host=10.0.0.3')$$);
SELECT pg_temp.try($$SELECT hamonitor.register_node('pg3', 'host=10.0.0.3', priority => -1)$$);
SELECT count(*) = :nodes_before AS no_node_written,
       (SELECT count(*) FROM hamonitor.event) = :events_before AS no_event_written,
       (SELECT count(*) FROM hamonitor.node_state) = :nodes_before AS states_match
  FROM hamonitor.node;
-- 63 bytes is the longest name
SELECT pg_temp.try(format($$SELECT hamonitor.register_node(%L, 'host=10.0.0.3')$$, repeat('n', 63)));
SELECT hamonitor.unregister_node(repeat('n', 63));
-- a failed registration in a new cluster leaves no cluster row behind
SELECT pg_temp.try($$SELECT hamonitor.register_node('x', 'host=1 bogus=1', cluster_name => 'ghost')$$);
SELECT count(*) FROM hamonitor.cluster WHERE cluster_name = 'ghost';

-- passwords are masked in every view and event, in key=value and URI form
SELECT hamonitor.register_node('pw1', 'host=10.0.0.5 password=s3cr3t_kv user=x', cluster_name => 'pw') IS NOT NULL;
SELECT hamonitor.register_node('pw2', 'postgresql://x:s3cr3t_uri@10.0.0.6:5433/db', cluster_name => 'pw') IS NOT NULL;
SELECT node_name, conninfo FROM hamonitor.status WHERE cluster_name = 'pw' ORDER BY 1;
SELECT kind, detail FROM hamonitor.events WHERE cluster_name = 'pw' ORDER BY event_id;
SELECT count(*) AS leaks FROM hamonitor.status WHERE conninfo ~ 's3cr3t';
SELECT count(*) AS leaks FROM hamonitor.events WHERE detail ~ 's3cr3t';
-- a malformed string that holds a password is refused without echoing it
SELECT pg_temp.try($$SELECT hamonitor.register_node('pw3', 'host=h password s3cr3t_bad', cluster_name => 'pw')$$);
SELECT hamonitor.mask_conninfo('host=a password=''with space'' port=1');
SELECT hamonitor.mask_conninfo('not a conninfo');
SELECT hamonitor.mask_conninfo('host=''it\''s'' application_name=''a b''');

-- update, maintenance, unregister
SELECT hamonitor.update_node('pg2', cluster_name => 'main', priority => 0);
SELECT hamonitor.update_node('pg2', cluster_name => 'main', conninfo => 'host=10.0.0.22 password=new_s3cr3t');
SELECT pg_temp.try($$SELECT hamonitor.update_node('pg2', cluster_name => 'main', conninfo => 'host=x nonsense')$$);
SELECT pg_temp.try($$SELECT hamonitor.update_node('pg2', cluster_name => 'main', priority => -5)$$);
SELECT pg_temp.try($$SELECT hamonitor.update_node('nope', cluster_name => 'main', priority => 1)$$);
SELECT hamonitor.set_maintenance('pg1', true, cluster_name => 'main');
SELECT hamonitor.set_maintenance('pg1', true, cluster_name => 'main');
SELECT pg_temp.try($$SELECT hamonitor.set_maintenance('pg1', NULL, cluster_name => 'main')$$);
SELECT node_name, priority, maintenance, conninfo FROM hamonitor.status
 WHERE cluster_name = 'main' ORDER BY 1;
SELECT pg_temp.try($$SELECT hamonitor.unregister_node('nope', cluster_name => 'main')$$);
SELECT pg_temp.try($$SELECT hamonitor.unregister_node('pg1', cluster_name => 'nope')$$);
SELECT pg_temp.try($$SELECT hamonitor.unregister_node(NULL)$$);
SELECT hamonitor.unregister_node('pg1', cluster_name => 'other');
-- the last node of a cluster takes the cluster with it
SELECT count(*) FROM hamonitor.cluster WHERE cluster_name = 'other';
SELECT cluster_name, node_name, kind FROM hamonitor.events
 WHERE kind <> 'registered' ORDER BY event_id;

-- privileges: functions that change things are not for PUBLIC,
-- the views are for pg_monitor, the tables for nobody else
CREATE ROLE hamon_nobody;
CREATE ROLE hamon_watcher IN ROLE pg_monitor;
SET ROLE hamon_nobody;
SELECT pg_temp.try($$SELECT hamonitor.register_node('x', 'host=1')$$);
SELECT pg_temp.try($$SELECT count(*) FROM hamonitor.status$$);
SELECT pg_temp.try($$SELECT hamonitor.check_worker_capacity('main')$$);
RESET ROLE;
SET ROLE hamon_watcher;
SELECT pg_temp.try($$SELECT count(*) FROM hamonitor.status$$);
SELECT pg_temp.try($$SELECT count(*) FROM hamonitor.lsn_history$$);
SELECT pg_temp.try($$SELECT count(*) FROM hamonitor.events$$);
SELECT pg_temp.try($$SELECT conninfo FROM hamonitor.node$$);
SELECT pg_temp.try($$SELECT hamonitor.unregister_node('pg2', cluster_name => 'main')$$);
SELECT pg_temp.try($$SELECT hamonitor.set_maintenance('pg2', true, cluster_name => 'main')$$);
RESET ROLE;
DROP ROLE hamon_nobody;
DROP ROLE hamon_watcher;

-- no probe worker here (pg_hamonitor.workers = 0): no capacity to check
SELECT hamonitor.check_worker_capacity('main');
SELECT pg_temp.try($$SELECT hamonitor.check_worker_capacity(NULL)$$);

-- the trigger function is not for direct calls
SELECT pg_temp.try($$SELECT hamonitor.node_changed()$$);
