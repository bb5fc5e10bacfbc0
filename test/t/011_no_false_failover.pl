
# Copyright (c) 2026, pg_hamonitor developers

# Situations where a naive witness would promote a standby and must not:
#  (a) the witness alone loses the primary (network cut between them), while
#      the standbys keep streaming from it;
#  (b) the primary's host stalls for 8 s (every process SIGSTOPped), far
#      longer than failover_timeout;
#  (c) a standby crashes;
#  (d) the witness itself restarts;
#  (e) the primary is restarted in an orderly way (restart_grace applies).
# In each case: no failover, no promotion, every standby still in recovery.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';

my ($primary, $sb1, $sb2) =
  create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);
my $witness = create_witness('witness', failover => 1);
is($witness->safe_psql('postgres', 'SHOW pg_hamonitor.failover_timeout'),
	'500ms', 'failover_timeout is 500ms');

$primary->safe_psql('postgres', 'CREATE TABLE t (id integer)');

# No promotion, no failover decision since $after; every standby in
# recovery and the primary still the only writable node.
sub no_failover
{
	my ($what, $after) = @_;
	is( count_events(
			$witness, $cluster, [ 'failover', 'promoted' ], undef, $after),
		'0',
		"$what: no failover or promoted event");
	is(in_recovery($sb1) . in_recovery($sb2),
		'tt', "$what: both standbys still in recovery");
	return;
}

# ---------------------------------------------------------------------
# (a) The witness reaches the primary through a proxy; the proxy dies
# ---------------------------------------------------------------------

my $proxy = start_proxy($primary);
ok( register_ha_cluster(
		$witness, $cluster, $primary, $sb1, $sb2,
		{
			conninfo => {
				primary => "host=127.0.0.1 port=$proxy->{port} dbname=postgres"
			}
		}),
	'the witness probes the primary through the proxy; sb1, sb2 stream');
ok(wait_for_worker_sessions($primary, $cluster, 'primary', 1),
	'the witness has its session on the primary');

my $mark = last_event_id($witness);
stop_helper($proxy);

ok(wait_for_status($witness, 'primary', "health = 'down'", $cluster),
	'(a) cut from the witness, the primary turns down');
ok( wait_for_event(
		$witness, $cluster, 'failover_blocked',
		"detail ~* 'still stream'", $mark),
	'(a) failover_blocked: the standbys still stream from the primary');
wait_seconds($witness, 3);
is(status_value($witness, 'primary', 'health', $cluster),
	'down', '(a) the primary is still down for the witness');
no_failover('(a)', $mark);
ok(wait_for_streaming($sb1, $primary) && wait_for_streaming($sb2, $primary),
	'(a) both standbys still stream from the primary');
# once per distinct reason (the detail may name either standby)
cmp_ok(
	count_events(
		$witness, $cluster, 'failover_blocked', "detail ~* 'still stream'",
		$mark),
	'<=', 2,
	'(a) failover_blocked is not repeated on every probe');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1)');

# the partition heals: a proxy on the same port again
$proxy = start_proxy($primary, port => $proxy->{port});
ok(wait_for_status($witness, 'primary', "health = 'up'", $cluster),
	'(a) the primary is up again once the proxy is back');
no_failover('(a) after the partition', $mark);

# from now on the witness reaches the primary directly
stop_helper($proxy);
$witness->safe_psql(
	'postgres',
	sprintf(
		"SELECT hamonitor.update_node('primary', '$cluster', conninfo => %s)",
		quote_literal($primary->connstr('postgres'))));
ok( wait_for_status(
		$witness, 'primary', "health = 'up' AND role = 'primary'", $cluster),
	'the witness probes the primary directly');

# ---------------------------------------------------------------------
# (b) The primary stalls for 8 s: SIGSTOP to all its processes
# ---------------------------------------------------------------------

$mark = last_event_id($witness);
my $frozen_at = $witness->safe_psql('postgres', 'SELECT clock_timestamp()');
my @pids = freeze_server($primary);
cmp_ok(scalar(@pids), '>', 3,
	'(b) froze the postmaster and its children');

ok(wait_for_status($witness, 'primary', "health = 'down'", $cluster),
	'(b) the stalled primary turns down');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT clock_timestamp() >= '$frozen_at'::timestamptz + interval '8 s'"),
	'(b) 8 s passed with the primary stalled');
thaw_server(@pids);

ok(wait_for_status($witness, 'primary', "health = 'up'", $cluster),
	'(b) the primary is up again after SIGCONT');
no_failover('(b)', $mark);
ok(wait_for_streaming($sb1, $primary) && wait_for_streaming($sb2, $primary),
	'(b) both standbys stream from the primary again');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (2)');
is(count_events($witness, $cluster, 'fenced', undef, $mark),
	'0', '(b) the primary was not fenced');
note "(b) events:\n" . events_text($witness, $cluster);

# ---------------------------------------------------------------------
# (c) A standby crashes
# ---------------------------------------------------------------------

$mark = last_event_id($witness);
kill9_all($sb2);
ok(wait_for_status($witness, 'sb2', "health = 'down'", $cluster),
	'(c) the crashed standby turns down');
wait_seconds($witness, 3);
is(count_events($witness, $cluster, [ 'failover', 'promoted' ], undef, $mark),
	'0',
	'(c) no failover or promoted event');
is(in_recovery($sb1), 't', '(c) sb1 still in recovery');
is(status_value($witness, 'primary', 'health', $cluster),
	'up', '(c) the primary is still up');

$sb2->start;
ok(wait_for_streaming($sb2, $primary), '(c) sb2 restarted and streams again');
ok(wait_for_status($witness, 'sb2', "health = 'up'", $cluster),
	'(c) sb2 is up again');

# ---------------------------------------------------------------------
# (d) The witness restarts
# ---------------------------------------------------------------------

$mark = last_event_id($witness);
$witness->restart;
my $restarted_at = $witness->safe_psql('postgres', 'SELECT clock_timestamp()');
ok(wait_for_probed_since($witness, $cluster, $restarted_at, 3),
	'(d) the restarted witness probes all three nodes');
wait_seconds($witness, 3);
no_failover('(d)', $mark);
is(count_events($witness, $cluster, 'failover_blocked', undef, $mark),
	'0', '(d) the restart was not even taken for a failure of the primary');
is(status_value($witness, 'primary', 'health', $cluster),
	'up', '(d) the primary is up');

# ---------------------------------------------------------------------
# (e) The primary is restarted in an orderly way (restart_grace, 30s)
# ---------------------------------------------------------------------

$mark = last_event_id($witness);
$primary->stop('fast');
ok(wait_for_status($witness, 'primary', "health = 'down'", $cluster),
	'(e) the stopped primary turns down');
# the standbys lose it too, but it ended with "administrator command"
wait_seconds($witness, 3);
no_failover('(e) while stopped', $mark);
$primary->start;
ok(wait_for_status($witness, 'primary', "health = 'up'", $cluster),
	'(e) the restarted primary is up again');
ok(wait_for_streaming($sb1, $primary) && wait_for_streaming($sb2, $primary),
	'(e) both standbys stream from it again');
no_failover('(e)', $mark);

note "events of cluster $cluster:\n" . events_text($witness, $cluster);

done_testing();
