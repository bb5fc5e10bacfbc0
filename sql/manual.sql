-- manual promote/failover/switchover: argument checks and refusals that
-- need no live peer (the live behaviour is in the TAP tests)
CREATE FUNCTION pg_temp.try(cmd text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE cmd;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT hamonitor.register_node('a', 'host=127.0.0.1 port=1', cluster_name => 'm') > 0;
SELECT hamonitor.register_node('b', 'host=127.0.0.1 port=2', cluster_name => 'm') > 0;

SELECT pg_temp.try($$SELECT hamonitor.promote(NULL, 'm')$$);
SELECT pg_temp.try($$SELECT hamonitor.promote('a', NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.promote('a', 'nope')$$);
SELECT pg_temp.try($$SELECT hamonitor.promote('nope', 'm')$$);
-- never probed: not reachable, so not promotable, even with force
SELECT pg_temp.try($$SELECT hamonitor.promote('a', 'm')$$);
SELECT pg_temp.try($$SELECT hamonitor.promote('a', 'm', force => true)$$);
SELECT pg_temp.try($$SELECT hamonitor.failover('m')$$);
SELECT pg_temp.try($$SELECT hamonitor.failover('nope')$$);
SELECT pg_temp.try($$SELECT hamonitor.failover(NULL)$$);
SELECT pg_temp.try($$SELECT hamonitor.switchover('b', 'm')$$);
SELECT pg_temp.try($$SELECT hamonitor.switchover('nope', 'm')$$);
-- refusals write nothing
SELECT count(*) FROM hamonitor.events WHERE cluster_name = 'm' AND kind <> 'registered';

-- one open action per cluster: a second one waits (here: is refused)
INSERT INTO hamonitor.action (cluster_name, kind, node_name, requested_by)
     VALUES ('m', 'failover', 'a', 'test');
SELECT pg_temp.try($$INSERT INTO hamonitor.action (cluster_name, kind, node_name, requested_by)
                     VALUES ('m', 'promote', 'b', 'test')$$);
-- actions of other clusters, or closed ones, do not count
INSERT INTO hamonitor.action (cluster_name, kind, node_name, requested_by)
     VALUES ('other', 'fence', 'x', 'test');
INSERT INTO hamonitor.action (cluster_name, kind, node_name, requested_by, state)
     VALUES ('m', 'fence', 'x', 'test', 'done');
-- an open action is closed by a human, on record; not one under way
UPDATE hamonitor.action SET state = 'running' WHERE cluster_name = 'm' AND state = 'planned';
SELECT pg_temp.try($$SELECT hamonitor.abandon_action('m')$$);
UPDATE hamonitor.action SET state = 'promote_sent' WHERE cluster_name = 'm' AND state = 'running';
SELECT pg_temp.try($$SELECT hamonitor.abandon_action('m')$$);
UPDATE hamonitor.action SET stalled = true WHERE cluster_name = 'm' AND state = 'promote_sent';
SELECT hamonitor.abandon_action('m') > 0 AS abandoned;
SELECT kind, state, outcome ~ '^abandoned by ' AS by_whom
  FROM hamonitor.actions WHERE cluster_name = 'm' ORDER BY action_id;
SELECT kind, detail ~ 'abandoned by' FROM hamonitor.events
 WHERE cluster_name = 'm' AND kind = 'action_abandoned';
SELECT pg_temp.try($$SELECT hamonitor.abandon_action('m')$$);
SELECT pg_temp.try($$SELECT hamonitor.abandon_action('not a name')$$);
SELECT pg_temp.try($$INSERT INTO hamonitor.action (cluster_name, kind, requested_by)
                     VALUES ('m', 'reboot', 'test')$$);
DELETE FROM hamonitor.action;
DELETE FROM hamonitor.event WHERE kind = 'action_abandoned';

-- not for PUBLIC
CREATE ROLE hamon_someone;
GRANT USAGE ON SCHEMA hamonitor TO hamon_someone;
SET ROLE hamon_someone;
SELECT pg_temp.try($$SELECT hamonitor.promote('a', 'm')$$);
SELECT pg_temp.try($$SELECT hamonitor.failover('m')$$);
SELECT pg_temp.try($$SELECT hamonitor.switchover('a', 'm')$$);
SELECT pg_temp.try($$SELECT hamonitor.abandon_action('m')$$);
SELECT pg_temp.try($$SELECT * FROM hamonitor.action$$);
-- the simulation changes nothing and is open to all
SELECT pg_temp.try($$SELECT hamonitor.simulate_failover('{}', now())$$);
RESET ROLE;
REVOKE USAGE ON SCHEMA hamonitor FROM hamon_someone;
DROP ROLE hamon_someone;
