
# Copyright (c) 2026, pg_hamonitor developers

# What the witness does must not be turned against it or against the
# cluster (issue 8, items 8, 11, 12, 14):
#  - a session holding a registry row lock delays that node's writes only:
#    the other clusters' state keeps being written;
#  - an operator a user defines in public is never run by the superuser
#    worker (its search_path is pinned);
#  - a standby without primary_conninfo is not repointed with the witness's
#    own credentials: the repoint is refused and says what to set;
#  - a client cannot dodge the fence by calling itself pg_hamonitor/...,
#    while the witness's own probe session survives it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';

my ($primary, $sb1, $sb2) = create_ha_cluster(
	primary  => 'primary',
	standbys => [ 'sb1', 'sb2' ]);
# one worker: both clusters share its loop and its batches
my $witness = create_witness('witness', failover => 1,
	extra_conf => "pg_hamonitor.workers = 1\n");
ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
	'witness sees the primary and both streaming standbys');

# a second cluster on the same worker
my $solo = create_node('solo');
register_node($witness, 'solo', $solo->connstr('postgres'), 'other');
ok(wait_for_status($witness, 'solo', "health = 'up'", 'other'),
	'the other cluster\'s node is up');

# ---------------------------------------------------------------------
# A registry row lock held by a session (item 12)
# ---------------------------------------------------------------------

my $locker = start_bg_psql($witness,
	"BEGIN; SELECT hamonitor.set_maintenance('primary', true, 'main');
	 SELECT pg_sleep(10); ROLLBACK;");
ok( $witness->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE query LIKE '%set_maintenance%' AND wait_event = 'PgSleep'"),
	'a session holds the primary\'s registry row');
my $t0 = $witness->safe_psql('postgres', 'SELECT now()');
ok( $witness->poll_query_until(
		'postgres', "SELECT last_probe_at > '$t0'::timestamptz + interval '2 s'
		   FROM hamonitor.status WHERE node_name = 'solo'"),
	'the other cluster\'s probes are written while the lock is held');
ok( wait_for_status(
		$witness, 'sb1', "last_probe_at > '$t0'::timestamptz + interval '2 s'",
		$cluster),
	'so are the same cluster\'s other nodes');
is( $witness->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity
		  WHERE query LIKE '%set_maintenance%' AND wait_event = 'PgSleep'"),
	'1', '(and the lock is still held)');
is(finish_bg_psql($locker), 'ok', 'the locking session ends');
my $t1 = $witness->safe_psql('postgres', 'SELECT now()');
ok(wait_for_status($witness, 'primary', "last_probe_at > '$t1'", $cluster),
	'the locked node\'s probes are written once the lock is gone');
unlike(slurp_file($witness->logfile),
	qr/pg_hamonitor worker \d+ dropped/, 'no probe result was dropped');

# ---------------------------------------------------------------------
# An operator in public is not the worker's (item 11)
# ---------------------------------------------------------------------

$witness->safe_psql(
	'postgres', q{
	CREATE ROLE mallory LOGIN;
	GRANT CREATE ON SCHEMA public TO mallory;
	CREATE TABLE public.pwned (who text, at timestamptz DEFAULT now());
	GRANT INSERT ON public.pwned TO PUBLIC;
	SET ROLE mallory;
	CREATE FUNCTION public.evil(integer, interval) RETURNS interval
	LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.pwned (who) VALUES (current_user);
		RETURN $2;
	END $$;
	CREATE OPERATOR public.* (LEFTARG = integer, RIGHTARG = interval,
							  FUNCTION = public.evil);
	RESET ROLE;
});
# a history row the purge (which multiplies an integer by an interval)
# deletes: its absence says the purge ran
$witness->safe_psql('postgres',
	"INSERT INTO hamonitor.probe_history (node_id, probed_at, success)
	 SELECT node_id, now() - interval '1 year', true
	   FROM hamonitor.node WHERE node_name = 'solo'");
ok( $witness->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM hamonitor.probe_history
		  WHERE probed_at < now() - interval '300 days'"),
	'the worker purged the old history row');
is($witness->safe_psql('postgres', 'SELECT count(*) FROM public.pwned'),
	'0', 'the worker never called the operator mallory put in public');

# ---------------------------------------------------------------------
# A standby with an empty primary_conninfo (item 14)
# ---------------------------------------------------------------------

$sb2->safe_psql('postgres', "ALTER SYSTEM SET primary_conninfo = ''");
$sb2->reload;
ok( $sb2->poll_query_until(
		'postgres', 'SELECT count(*) = 0 FROM pg_stat_wal_receiver'),
	'sb2 no longer streams: it has no primary_conninfo');
# sb1 holds everything the primary wrote
$primary->safe_psql('postgres', 'CREATE TABLE t (id integer)');
$primary->wait_for_catchup('sb1', 'replay', $primary->lsn('insert'));

my $mark = last_event_id($witness);
kill9_all($primary);
ok(wait_for_event($witness, $cluster, 'promoted', "node_name = 'sb1'", $mark),
	'sb1 is promoted after the crash of the primary');
ok( wait_for_event(
		$witness, $cluster, 'repoint_failed',
		"node_name = 'sb2' AND detail LIKE '%empty primary_conninfo%'"
		  . " AND detail LIKE '%Set primary_conninfo%'", $mark),
	'the repoint of sb2 is refused, and the event says what to set');
is($sb2->safe_psql('postgres', 'SHOW primary_conninfo'),
	'', 'sb2 was not given the witness\'s conninfo');
ok(wait_for_status($witness, 'sb2', 'needs_rejoin', $cluster),
	'status: sb2 needs a rejoin');

# ---------------------------------------------------------------------
# The fence ends a client calling itself pg_hamonitor (item 8)
# ---------------------------------------------------------------------

ok(set_witness_guc($witness, 'fence_old_primary', 'off'),
	'fence_old_primary off: a stale primary is only flagged');
$primary->start;
ok( wait_for_status(
		$witness, 'primary', "role = 'primary' AND timeline = 1 AND fenced",
		$cluster),
	'status: the old primary is back on timeline 1, flagged fenced');
is($primary->safe_psql('postgres', 'SHOW default_transaction_read_only'),
	'off', 'and still writable: nothing was done to it');

my $dodger = start_bg_psql($primary,
	"SET application_name = 'pg_hamonitor/main/primary';
	 SELECT pg_sleep(120);");
ok( $primary->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE application_name = 'pg_hamonitor/main/primary'
			AND wait_event = 'PgSleep'"),
	'a client session calls itself pg_hamonitor/main/primary');
my $probe_pid = $primary->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity
	  WHERE application_name = 'pg_hamonitor/main/primary'
		AND wait_event IS DISTINCT FROM 'PgSleep'
		AND backend_type = 'client backend'");
like($probe_pid, qr/^\d+$/, 'the witness\'s probe session is there');

$mark = last_event_id($witness);
ok(set_witness_guc($witness, 'fence_old_primary', 'on'),
	'fence_old_primary on');
ok(wait_for_event($witness, $cluster, 'fenced', "node_name = 'primary'", $mark),
	'the old primary is fenced');
is(finish_bg_psql($dodger), '57P01',
	'the client that called itself pg_hamonitor was ended by the fence');
is( $primary->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $probe_pid"),
	'1',
	'the witness\'s probe session survived the fence');

done_testing();
