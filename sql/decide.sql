-- the failover decision as a pure function of injected state and time
-- (hamonitor.simulate_failover runs decide.c; nothing is touched)
CREATE FUNCTION pg_temp.n(name text, is_primary boolean, role text, health text,
                          lsn pg_lsn, streaming boolean DEFAULT false,
                          last_seen timestamptz DEFAULT '2026-01-01 00:00:00+00',
                          down_since timestamptz DEFAULT NULL,
                          priority integer DEFAULT 100,
                          maintenance boolean DEFAULT false,
                          timeline integer DEFAULT 1,
                          alive_signal boolean DEFAULT false,
                          sysid_mismatch boolean DEFAULT false,
                          fenced boolean DEFAULT false)
RETURNS hamonitor.simulated_node LANGUAGE sql AS $$
    SELECT ROW(name, is_primary, role, health, maintenance, priority, timeline,
               CASE WHEN is_primary THEN lsn END,
               CASE WHEN NOT is_primary THEN lsn END,
               CASE WHEN NOT is_primary THEN lsn END,
               streaming, last_seen, down_since, alive_signal, sysid_mismatch,
               fenced)::hamonitor.simulated_node
$$;
-- t0: the primary's last successful probe; it failed at t0 + 0.1 s
\set t0 '''2026-01-01 00:00:00+00'''
\set down '''2026-01-01 00:00:00.1+00'''
\set fresh '''2026-01-01 00:00:00.3+00'''
\set late '''2026-01-01 00:00:03+00'''

-- primary up: healthy
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'up', '0/3000000'),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', true)],
    :t0::timestamptz + interval '10 s');

-- crashed primary, standbys lost it, 0.4 s later: wait for failover_timeout
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '0.4 s', failover_timeout_ms => 500);

-- 0.6 s later: promote
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '0.6 s', failover_timeout_ms => 500);

-- a standby still streams from it, probed well after the primary went
-- down: witness-only partition or a stall
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :late),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000000', true, last_seen => :late)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);
-- ... but probed right after it went down, its WAL receiver may not have
-- noticed yet: look again rather than call it a partition
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000000', true, last_seen => :fresh)],
    :t0::timestamptz + interval '0.6 s', failover_timeout_ms => 500);

-- a standby not probed since the primary went down: wait for it
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :t0)],
    :t0::timestamptz + interval '1 s', failover_timeout_ms => 500);

-- no standby reachable: no second opinion, nothing promoted
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'down', '0/3000000', down_since => :down)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);

-- orderly shutdown: restart grace applies first, then failover
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, alive_signal => true),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '10 s', failover_timeout_ms => 500, restart_grace_ms => 30000);
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, alive_signal => true),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '31 s', failover_timeout_ms => 500, restart_grace_ms => 30000);

-- maintenance on the primary, auto_failover off
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, maintenance => true),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500);
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', auto_failover => false, failover_timeout_ms => 500);

-- the candidate: most WAL, then priority, then name
SELECT candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000100', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, priority => 900),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000100', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500);
SELECT candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000100', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000100', last_seen => :fresh, priority => 50),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000100', last_seen => :fresh, priority => 60)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500);
SELECT candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000100', down_since => :down),
    pg_temp.n('sb', false, 'standby', 'up', '0/3000100', last_seen => :fresh),
    pg_temp.n('sa', false, 'standby', 'up', '0/3000100', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500);

-- nobody eligible: every refusal is named
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/9000000', down_since => :down),
    pg_temp.n('s0', false, 'standby', 'up', '0/9000000', last_seen => :fresh, priority => 0),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh),
    pg_temp.n('s2', false, 'standby', 'up', '0/9000000', last_seen => :fresh, maintenance => true),
    pg_temp.n('s3', false, 'standby', 'up', '0/9000000', last_seen => :fresh, timeline => 2),
    pg_temp.n('s4', false, 'standby', 'up', '0/9000000', last_seen => :fresh, sysid_mismatch => true)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500, max_failover_lag => 1048576);
-- the lag limit is a setting
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/9000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500, max_failover_lag => 200000000);

-- no primary known: nothing to decide
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000')],
    :t0::timestamptz);
SELECT * FROM hamonitor.simulate_failover(NULL, now());
