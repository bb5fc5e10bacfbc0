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
                          fenced boolean DEFAULT false,
                          receiver text DEFAULT NULL,
                          -- by default, every standby streamed before
                          seen_streaming_at timestamptz DEFAULT '2025-12-31 23:59:59+00',
                          upstream text DEFAULT NULL,
                          failure_class text DEFAULT NULL,
                          alive_at timestamptz DEFAULT NULL,
                          sync_listed boolean DEFAULT NULL)
RETURNS hamonitor.simulated_node LANGUAGE sql AS $$
    SELECT ROW(name, is_primary, role, health, maintenance, priority, timeline,
               CASE WHEN is_primary THEN lsn END,
               CASE WHEN NOT is_primary THEN lsn END,
               CASE WHEN NOT is_primary THEN lsn END,
               streaming, last_seen, down_since, alive_signal, sysid_mismatch,
               fenced, receiver,
               CASE WHEN NOT is_primary THEN seen_streaming_at END,
               upstream, failure_class, alive_at,
               sync_listed)::hamonitor.simulated_node
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

-- ---------------------------------------------------------------------
-- No evidence is not evidence of death (1.1)
-- ---------------------------------------------------------------------

-- a role without pg_read_all_stats sees the receiver's pid, not its status:
-- that standby cannot vote, and may be streaming: a witness-only partition
-- must not promote
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :late, receiver => 'hidden')],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);
-- ... nor with another standby that lost it: the hidden one may stream
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :late, receiver => 'none'),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000000', last_seen => :late, receiver => 'hidden')],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);
-- not probed since the outage is the same as unknown
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :late, receiver => 'unknown')],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);
-- no WAL receiver at all is known (its pid is shown to every role): a
-- standby that streamed before votes that it lost the primary
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, receiver => 'none')],
    :t0::timestamptz + interval '0.6 s', failover_timeout_ms => 500);
-- a standby never seen streaming (archive-only, broken primary_conninfo)
-- gives no vote
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, receiver => 'none', seen_streaming_at => NULL)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500);
-- ... and does not block the vote of one that streamed
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, receiver => 'not_streaming'),
    pg_temp.n('s2', false, 'standby', 'up', '0/2FFFF00', last_seen => :fresh, receiver => 'not_streaming', seen_streaming_at => NULL)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500);
-- a cascading standby (it streams from s1, a registered standby) neither
-- confirms nor denies: s1's vote decides
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :late),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000000', true, last_seen => :late, upstream => 's1')],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);
-- ... and alone, it cannot vote
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000000', true, last_seen => :late, upstream => 's1')],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);
-- a standby whose sender is the primary's registered address streams from
-- the primary: it still denies
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', true, last_seen => :late, upstream => 'p')],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);

-- ---------------------------------------------------------------------
-- A primary whose postmaster is known alive is not failed over (1.1)
-- ---------------------------------------------------------------------

-- a crash-restart (57P02), its standbys disconnected: 0.6 s later, wait
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, failure_class => 'crash_restart', alive_at => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '0.6 s', failover_timeout_ms => 500, restart_grace_ms => 30000);
-- still "starting up" after restart_grace: blocked and reported, never
-- promoted
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, failure_class => 'starting', alive_at => :t0::timestamptz + interval '59 s'),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500, restart_grace_ms => 30000);
-- every class of a live postmaster, after restart_grace
SELECT c AS failure_class, verdict
  FROM unnest(ARRAY['crash_restart', 'starting', 'stopping', 'too_many_connections',
                    'auth', 'server_error']) AS c,
       hamonitor.simulate_failover(ARRAY[
           pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, failure_class => c, alive_at => :down),
           pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
           :t0::timestamptz + interval '60 s', failover_timeout_ms => 500, restart_grace_ms => 30000);
-- the classes that say nothing of life: failover_timeout, if the standbys
-- confirm
SELECT c AS failure_class, verdict
  FROM unnest(ARRAY['unreachable', 'timeout', 'postmaster_gone', 'other']) AS c,
       hamonitor.simulate_failover(ARRAY[
           pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, failure_class => c),
           pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
           :t0::timestamptz + interval '0.6 s', failover_timeout_ms => 500, restart_grace_ms => 30000);
-- an orderly shutdown (57P01), then refused connections: a stop, failed
-- over once restart_grace has passed since the shutdown
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, failure_class => 'unreachable', alive_at => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '29 s', failover_timeout_ms => 500, restart_grace_ms => 30000);
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, failure_class => 'unreachable', alive_at => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '31 s', failover_timeout_ms => 500, restart_grace_ms => 30000);
-- restart_grace counts from the last sign of life: "starting up" answers
-- until 20 s, then refused
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, failure_class => 'unreachable', alive_at => :t0::timestamptz + interval '20 s'),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '40 s', failover_timeout_ms => 500, restart_grace_ms => 30000);
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, failure_class => 'unreachable', alive_at => :t0::timestamptz + interval '20 s'),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '51 s', failover_timeout_ms => 500, restart_grace_ms => 30000);

-- ---------------------------------------------------------------------
-- Never promote behind a better standby (1.1)
-- ---------------------------------------------------------------------

-- a standby with priority 0 received 32MB more than the eligible one
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s0', false, 'standby', 'up', '0/5000000', last_seen => :fresh, priority => 0),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500, max_failover_lag => 16777216);
-- the same with one in maintenance, and with a fenced one
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('sm', false, 'standby', 'up', '0/5000000', last_seen => :fresh, maintenance => true),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500, max_failover_lag => 16777216);
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('sf', false, 'standby', 'up', '0/5000000', last_seen => :fresh, fenced => true),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500, max_failover_lag => 16777216);
-- within max_failover_lag: the eligible one is promoted
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s0', false, 'standby', 'up', '0/3800000', last_seen => :fresh, priority => 0),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500, max_failover_lag => 16777216);
-- an unreachable one is not known to hold anything
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s0', false, 'standby', 'down', '0/5000000', down_since => :down, priority => 0),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh)],
    :t0::timestamptz + interval '5 s', failover_timeout_ms => 500, max_failover_lag => 16777216);

-- bad inputs
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'up', '0/3000000'),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', receiver => 'sleeping')], :t0);
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', failure_class => 'dead')], :t0);
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', upstream => 'nosuch')], :t0);

-- no primary known: nothing to decide
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000')],
    :t0::timestamptz);
SELECT * FROM hamonitor.simulate_failover(NULL, now());

-- ---------------------------------------------------------------------
-- Under a synchronous quorum (ANY k of N listed standbys): R + W > N
-- ---------------------------------------------------------------------

-- ANY 1 of 2: both listed standbys must be seen.  s1 alone was probed
-- since: one more needed, even though s1 lost the primary and is eligible
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'down', '0/3000000', down_since => :down, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1);
-- ... the same cluster without a quorum promotes s1 (max_failover_lag rules)
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'down', '0/3000000', down_since => :down, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500);
-- ... and s2 reachable but not probed since the outage is not seen: wait
-- for its probe first (the evidence rule), and it is never counted stale
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000000', last_seen => :t0, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1);
-- both seen: the one with the most WAL received holds every acknowledged
-- commit, whatever max_failover_lag says and whatever the priorities
SELECT * FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/9000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, priority => 200, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000100', last_seen => :fresh, priority => 10, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    max_failover_lag => 0, synchronous_k => 1);
-- ANY 2 of 3: any 2 seen suffice (N - k + 1 = 2); s3 is down
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000200', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s3', false, 'standby', 'down', '0/3000300', down_since => :down, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 2);
-- ANY 1 of 3: all 3 must be seen; with 1 of them down, 1 more is needed
SELECT verdict, reason FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000200', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s3', false, 'standby', 'down', '0/3000300', down_since => :down, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1);
-- an unlisted standby (cascading, or priority 0) counts neither way: it
-- is not in N, and it is never the candidate
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000100', last_seen => :fresh, sync_listed => true),
    pg_temp.n('x', false, 'standby', 'up', '0/3000900', last_seen => :fresh, priority => 0)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1);
-- the most WAL is on a listed standby in maintenance: only it is sure to
-- hold every acknowledged commit, so nothing is promoted
SELECT verdict, candidate, reason FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000100', last_seen => :fresh, maintenance => true, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1);
-- equal WAL: priority, then name, decide among the quorum
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000100', last_seen => :fresh, priority => 50, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000100', last_seen => :fresh, priority => 90, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1);
-- degraded (the quorum was lowered): the primary may have acknowledged
-- commits alone: blocked, with that reason
SELECT verdict, candidate, reason FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000000', last_seen => :fresh, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1, durability_degraded => true);
-- the evidence rules still come first: a listed standby that still
-- streams from the primary blocks, quorum or not
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000000', last_seen => :late, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000000', true, last_seen => :late, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1);
-- a listed standby left on the old timeline (it had WAL beyond the last
-- promotion's fork and awaits a rewind) acknowledged nothing on this one:
-- it counts as seen, and it is never the candidate, however much WAL
SELECT verdict, candidate FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'down', '0/3000000', down_since => :down, timeline => 2),
    pg_temp.n('s1', false, 'standby', 'up', '0/3000900', last_seen => :fresh, timeline => 1, sync_listed => true),
    pg_temp.n('s2', false, 'standby', 'up', '0/3000100', last_seen => :fresh, timeline => 2, sync_listed => true)],
    :t0::timestamptz + interval '60 s', failover_timeout_ms => 500,
    synchronous_k => 1);
-- bad input
SELECT verdict FROM hamonitor.simulate_failover(ARRAY[
    pg_temp.n('p', true, 'primary', 'up', '0/3000000')],
    :t0::timestamptz, synchronous_k => -1);
