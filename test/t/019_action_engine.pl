
# Copyright (c) 2026, pg_hamonitor developers

# Actions run beside the probes, and a requested promotion is never
# withdrawn nor doubled (issue 10 item 1; issue 8 items 6 and 7):
#  - while cluster A's promotion hangs (its candidates' startup processes
#    are stopped), cluster B on the same worker is probed on time;
#  - SIGTERM ends the probe worker at once with that action in flight;
#  - the candidate still in recovery after promote_timeout leaves the
#    action open and stalled: no second candidate is chosen, not even by a
#    witness restarted meanwhile;
#  - once the candidate finishes, the witness records it and repoints the
#    other standby: one promotion in all.
#  - a manual promote() whose caller is cancelled still happens.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

# one worker: both clusters share its loop
my $witness = create_witness('witness', failover => 1,
	extra_conf => "pg_hamonitor.workers = 1\npg_hamonitor.promote_timeout = 6\n");

my ($pa, $sa1, $sa2) = create_ha_cluster(
	primary  => 'pa',
	standbys => [ 'sa1', 'sa2' ]);
ok(register_ha_cluster($witness, 'A', $pa, $sa1, $sa2), 'cluster A is up');
my ($pb, $sb1) = create_ha_cluster(primary => 'pb', standbys => ['sb1']);
ok(register_ha_cluster($witness, 'B', $pb, $sb1), 'cluster B is up');

# the startup process of a standby: stopped, it cannot finish a promotion
sub startup_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'");
}
my %startup = map { $_->name => startup_pid($_) } ($sa1, $sa2);
kill 'STOP', values %startup;

# ---------------------------------------------------------------------
# A's primary dies; its promotion hangs
# ---------------------------------------------------------------------

my $mark = last_event_id($witness);
kill9_all($pa);
ok( $witness->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM hamonitor.actions
		  WHERE cluster_name = 'A' AND kind = 'failover'
		    AND state = 'promote_sent'"),
	'A: the failover is decided and its promotion requested');
my $candidate = $witness->safe_psql('postgres',
	"SELECT node_name FROM hamonitor.actions WHERE cluster_name = 'A'");
my ($other) = grep { $_ ne $candidate } ('sa1', 'sa2');
note "candidate $candidate, other $other";

is( $witness->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity
		  WHERE backend_type = 'pg_hamonitor action'"),
	'1', 'A\'s action runs in a worker of its own');

# B while A's action waits for its candidate
my $max_age = 0;
my $end = time() + 2;
while (time() < $end)
{
	my $age = $witness->safe_psql('postgres',
		"SELECT extract(epoch FROM now() - min(last_probe_at))
		   FROM hamonitor.status WHERE cluster_name = 'B'");
	$max_age = $age if $age > $max_age;
	usleep(100_000);
}
note "B's oldest probe during A's promotion: ${max_age}s";
cmp_ok($max_age, '<', 1.0,
	'B: probed on time while A\'s promotion hangs (oldest probe under 1 s)');
# SIGTERM to the probe worker with that action in flight
my $probe_pid = $witness->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hamonitor worker'");
my $t0 = time();
$witness->safe_psql('postgres', "SELECT pg_terminate_backend($probe_pid)");
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $probe_pid"),
	'the probe worker ends on SIGTERM');
my $stop_s = time() - $t0;
note "probe worker gone ${stop_s}s after SIGTERM";
cmp_ok($stop_s, '<', 1.0, 'and within 1 s, with an action in flight');

ok( wait_for_event(
		$witness, 'A', 'promote_stalled', "node_name = '$candidate'", $mark),
	'A: the candidate still in recovery after promote_timeout: promote_stalled');
ok( $witness->poll_query_until(
		'postgres', "SELECT state = 'promote_sent' AND stalled
		   FROM hamonitor.actions WHERE cluster_name = 'A'
		    AND kind = 'failover'"),
	'A: the action stays open, stalled');
is(count_events($witness, 'A', 'promoted', undef, $mark),
	'0', 'A: nothing promoted');

# ---------------------------------------------------------------------
# A restarted witness does not choose another candidate
# ---------------------------------------------------------------------

$witness->stop('immediate');
$witness->start;
ok(wait_for_status($witness, 'pb', "health = 'up'", 'B'),
	'the restarted witness probes again');
ok( wait_for_event(
		$witness, 'A', 'failover_blocked', "detail ~ 'action .* in progress'",
		$mark),
	'A: the restarted witness waits for the open action');
wait_seconds($witness, 2);
is($witness->safe_psql('postgres',
		"SELECT count(*) FROM hamonitor.action WHERE cluster_name = 'A'"),
	'1', 'A: still one action, no second decision');
is(count_events($witness, 'A', 'promoted', undef, $mark),
	'0', 'A: still nothing promoted');
is( $witness->safe_psql(
		'postgres', "SELECT count(*) FROM hamonitor.action
		  WHERE node_name = '$other'"),
	'0', "A: no action ever named $other");

# ---------------------------------------------------------------------
# The candidate finishes: recorded, the other standby follows it
# ---------------------------------------------------------------------

kill 'CONT', values %startup;
my ($cnode) = grep { $_->name eq $candidate } ($sa1, $sa2);
my ($onode) = grep { $_->name eq $other } ($sa1, $sa2);
ok($cnode->poll_query_until('postgres', 'SELECT pg_is_in_recovery()', 'f'),
	"A: $candidate finishes the promotion it was asked for");
ok(wait_for_event($witness, 'A', 'promoted', "node_name = '$candidate'", $mark),
	'A: the witness records it');
ok( $witness->poll_query_until(
		'postgres', "SELECT state = 'done' FROM hamonitor.actions
		  WHERE cluster_name = 'A' AND kind = 'failover'"),
	'A: the action is done');
ok(wait_for_streaming($onode, $cnode), "A: $other streams from $candidate");
is(count_events($witness, 'A', 'promoted', undef, $mark),
	'1', 'A: exactly one promotion');
is(in_recovery($onode), 't', "A: $other is a standby");

# ---------------------------------------------------------------------
# A manual promote() whose caller is cancelled still happens
# ---------------------------------------------------------------------

ok(set_witness_guc($witness, 'auto_failover', 'off'), 'auto_failover off');
my $spid = startup_pid($sb1);
kill 'STOP', $spid;
$mark = last_event_id($witness);
kill9_all($pb);
ok(wait_for_status($witness, 'pb', "health = 'down'", 'B'),
	'B: the primary is down');
ok(wait_for_status($witness, 'sb1', "wal_receiver_status IS DISTINCT FROM 'streaming'", 'B'),
	'B: its standby lost it');
my $caller = start_bg_psql($witness, "SELECT hamonitor.promote('sb1', 'B')");
ok( $witness->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM hamonitor.actions
		  WHERE cluster_name = 'B' AND state = 'promote_sent'"),
	'B: the manual promotion is requested');
$witness->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	  WHERE query ~ 'hamonitor.promote' AND pid <> pg_backend_pid()");
is(finish_bg_psql($caller), '57014', 'B: the caller is cancelled: 57014');
kill 'CONT', $spid;
ok($sb1->poll_query_until('postgres', 'SELECT pg_is_in_recovery()', 'f'),
	'B: sb1 is promoted all the same');
ok( $witness->poll_query_until(
		'postgres', "SELECT state = 'done' FROM hamonitor.actions
		  WHERE cluster_name = 'B' AND kind = 'promote'"),
	'B: the action that outlived its caller is done');
ok(wait_for_event($witness, 'B', 'promoted', "node_name = 'sb1'", $mark),
	'B: and recorded');

# ---------------------------------------------------------------------
# A switchover that cannot complete gives the old primary back (item 5)
# ---------------------------------------------------------------------

ok(set_witness_guc($witness, 'switchover_timeout', '2s'),
	'switchover_timeout 2s');
my $opid = startup_pid($onode);
kill 'STOP', $opid;
$cnode->safe_psql('postgres', 'CREATE TABLE after_failover (i integer)');
$mark = last_event_id($witness);
is_sqlstate($witness, "SELECT hamonitor.switchover('$other', 'A')", '55000',
	"switchover to $other, which cannot replay: 55000");
kill 'CONT', $opid;
is($cnode->safe_psql('postgres', 'SHOW default_transaction_read_only'),
	'off', "the old primary $candidate is writable again");
$cnode->safe_psql('postgres', 'INSERT INTO after_failover VALUES (1)');
is(status_value($witness, $candidate, 'fenced', 'A'),
	'f', 'and not recorded as fenced');
like(
	event_value(
		$witness, 'A', 'switchover_failed', 'detail', undef, $mark),
	qr/made writable again/,
	'the switchover_failed event says the old primary was given back');
is( $witness->safe_psql(
		'postgres', "SELECT state FROM hamonitor.actions
		  WHERE cluster_name = 'A' AND kind = 'switchover'"),
	'failed', 'the switchover action failed');
is(in_recovery($onode), 't', "$other was not promoted");

note "events:\n" . events_text($witness, 'A') . "\n" . events_text($witness, 'B');
done_testing();
