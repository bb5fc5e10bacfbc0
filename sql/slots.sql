-- slot functions: argument checks that need no live peer, and the name
-- of managed slots (the live behaviour is in the TAP tests)
CREATE FUNCTION pg_temp.try(cmd text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE cmd;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT hamonitor.register_node('a', 'host=127.0.0.1 port=1', cluster_name => 's') > 0;

-- slot names are checked as the server checks them, before any connection
SELECT pg_temp.try($$SELECT hamonitor.create_slot('a', '', cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.create_slot('a', 'Upper', cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.create_slot('a', 'x''; DROP TABLE t; --', cluster_name => 's')$$);
SELECT pg_temp.try(format($$SELECT hamonitor.create_slot('a', %L, cluster_name => 's')$$, repeat('x', 64)));
SELECT pg_temp.try($$SELECT hamonitor.drop_slot('a', 'a-b', cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.advance_slot('a', 'a b', '0/1', cluster_name => 's')$$);
-- types and plugins
SELECT pg_temp.try($$SELECT hamonitor.create_slot('a', 'x', 'temporary', cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.create_slot('a', 'x', 'logical', cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.create_slot('a', 'x', 'physical', 'test_decoding', cluster_name => 's')$$);
-- NULLs and unknown nodes
SELECT pg_temp.try($$SELECT hamonitor.create_slot(NULL, 'x', cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.create_slot('a', NULL, cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.create_slot('a', 'x', NULL, cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.drop_slot('a', 'x', NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.advance_slot('a', 'x', NULL, cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.create_slot('nope', 'x', cluster_name => 's')$$);
SELECT pg_temp.try($$SELECT hamonitor.drop_slot('a', 'x', cluster_name => 'nope')$$);
-- a node that cannot be reached: a connection error, not a hang
SELECT pg_temp.try($$SELECT hamonitor.drop_slot('a', 'x', cluster_name => 's')$$) ~ '^08001: could not connect to node "a"' AS unreachable;

-- managed slot names: valid slot names whatever the node name
SELECT n, hamonitor.managed_slot_name(n)
  FROM unnest(ARRAY['sb1', 'Node-2.east', repeat('n', 63)]) n;
-- distinct nodes never share a managed slot: 1.0 mapped these three to one
SELECT hamonitor.register_node(n, 'host=127.0.0.1 port=1', 'names') > 0 AS registered
  FROM unnest(ARRAY['db-1', 'db_1', 'DB_1']) n;
SELECT node_name, slot_name FROM hamonitor.node
 WHERE cluster_name = 'names' ORDER BY node_name COLLATE "C";
-- a name that would take another node's slot name is refused, nothing written
SELECT pg_temp.try(format('SELECT hamonitor.register_node(%L, %L, %L)',
                          substr(hamonitor.managed_slot_name('DB_1'), 11),
                          'host=127.0.0.1 port=1', 'names'));
SELECT count(*) FROM hamonitor.node WHERE cluster_name = 'names';
SELECT hamonitor.unregister_node(n, 'names')
  FROM unnest(ARRAY['db-1', 'db_1', 'DB_1']) n;
SELECT count(*) FROM hamonitor.slots;
