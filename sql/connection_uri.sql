-- hamonitor.connection_uri: the multi-host URI applications connect with
CREATE FUNCTION pg_temp.try(cmd text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE cmd;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- the witness's own user, database, password, passfile and client key are
-- in these conninfo strings; none of them may reach the URI
SELECT hamonitor.register_node('a', 'host=db-a.example port=5433 user=hamon dbname=witnessdb password=secret passfile=/etc/hamon/pgpass sslmode=require sslkey=/etc/hamon/key.pem sslcert=/etc/hamon/cert.pem sslrootcert=/etc/hamon/root.crt', 'uri') IS NOT NULL AS a;
SELECT hamonitor.register_node('b', 'postgresql://hamon:secret@10.0.0.2:5434/witnessdb?sslmode=verify-full', 'uri', 50) IS NOT NULL AS b;
SELECT hamonitor.register_node('c', 'hostaddr=10.0.0.3', 'uri', 50) IS NOT NULL AS c;
SELECT hamonitor.register_node('d', 'host=::1 port=5435', 'uri', 10) IS NOT NULL AS d;
SELECT hamonitor.register_node('e', 'host=/var/run/postgresql,db-e2.example port=5436,5437', 'uri', 10) IS NOT NULL AS e;

-- no primary known yet: by priority, then name; sslmode is the strongest
-- any node asks for (verify-full), so no node gets less than it asked
SELECT hamonitor.connection_uri('uri');

-- the primary the witness holds comes first
UPDATE hamonitor.cluster SET primary_node_id = hamonitor.node_id('e', 'uri')
 WHERE cluster_name = 'uri';
SELECT hamonitor.connection_uri('uri');

-- every target is a target_session_attrs value
SELECT t, hamonitor.connection_uri('uri', t) ~ ('[?&]target_session_attrs=' || t || '$') AS ok
  FROM unnest(ARRAY['primary', 'read-write', 'standby', 'prefer-standby',
                    'read-only', 'any']) t;

-- the caller's database and user, percent-encoded
SELECT hamonitor.connection_uri('uri', 'any', 'app db', 'app&user=x');
SELECT hamonitor.connection_uri('uri', dbname => 'appdb');

-- no secret and no path of the witness, whatever the arguments
SELECT count(*) AS leaks
  FROM unnest(ARRAY['primary', 'standby', 'any']) t,
       LATERAL hamonitor.connection_uri('uri', t, 'appdb', 'app') u
 WHERE u ~ '(secret|password|passfile|pgpass|sslkey|sslcert|sslrootcert|/etc|hamon|witnessdb)';

-- a node with another system identifier is not part of the cluster
UPDATE hamonitor.node_state SET sysid_mismatch = true
 WHERE node_id = hamonitor.node_id('c', 'uri');
SELECT hamonitor.connection_uri('uri', 'any');
UPDATE hamonitor.node_state SET sysid_mismatch = false
 WHERE node_id = hamonitor.node_id('c', 'uri');

-- bad input
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('nosuch')$$);
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('uri', 'master')$$);
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('uri', 'Primary')$$);
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('uri', '')$$);
SELECT pg_temp.try($$SELECT hamonitor.connection_uri(NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('uri', NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('uri', 'any', '')$$);
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('uri', 'any', NULL, '')$$);
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('nosuch', 'master')$$);

-- dashboards (pg_monitor) may ask for it, others may not
CREATE ROLE hamon_uri_nobody;
CREATE ROLE hamon_uri_watcher IN ROLE pg_monitor;
SET ROLE hamon_uri_nobody;
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('uri')$$);
RESET ROLE;
SET ROLE hamon_uri_watcher;
SELECT hamonitor.connection_uri('uri', 'standby') IS NOT NULL AS watcher_gets_it;
RESET ROLE;
DROP ROLE hamon_uri_nobody;
DROP ROLE hamon_uri_watcher;

SELECT hamonitor.unregister_node(n, 'uri') FROM unnest(ARRAY['a', 'b', 'c', 'd', 'e']) n;
SELECT pg_temp.try($$SELECT hamonitor.connection_uri('uri')$$);
