
# Copyright (c) 2026, pg_hamonitor developers

# The manual SQL API of the witness: hamonitor.promote() refusals,
# hamonitor.switchover() without losing a row, hamonitor.failover()
# refusing while the primary is up and switching over with planned => true,
# and concurrent promote() calls racing the worker: one promotion only.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $witness = create_witness('witness', failover => 1);

my ($primary, $sb1, $sb2) =
  create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);
ok(register_ha_cluster($witness, 'main', $primary, $sb1, $sb2),
	'witness sees the primary and two streaming standbys');
$primary->safe_psql('postgres',
	'CREATE TABLE t (id integer PRIMARY KEY, phase text)');

# ---------------------------------------------------------------------
# promote() and failover() refusals while the primary is up
# ---------------------------------------------------------------------

is_sqlstate($witness, "SELECT hamonitor.promote('nosuch', 'main')", '42704',
	'promote() of an unknown node: 42704');
is_sqlstate($witness, "SELECT hamonitor.promote('sb1', 'nosuch')", '42704',
	'promote() in an unknown cluster: 42704');
is_sqlstate($witness, "SELECT hamonitor.promote('primary', 'main')", '55000',
	'promote() of the primary: 55000');
is_sqlstate($witness, "SELECT hamonitor.promote('sb1', 'main')", '55000',
	'promote() of a standby while the primary is up: 55000');
is_sqlstate($witness, "SELECT hamonitor.promote('sb1', 'main', force => true)",
	'55000', 'force does not override a primary that is up: 55000');
is_sqlstate($witness, "SELECT hamonitor.failover('main')", '55000',
	'failover() while the primary is up: 55000');
is(in_recovery($sb1) . in_recovery($sb2),
	'tt', 'no standby was promoted by the refused calls');
is(count_events($witness, 'main', 'promoted'), '0', 'no promoted event');

# ---------------------------------------------------------------------
# switchover() to sb1
# ---------------------------------------------------------------------

# written just before the switchover, not waited for: the switchover
# itself must make sure sb1 has it
$primary->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'before' FROM generate_series(1, 50000) g");
my $rows = 50000;

my $mark   = last_event_id($witness);
my $result = $witness->safe_psql('postgres',
	"SELECT hamonitor.switchover('sb1', 'main')");
note "switchover returned: $result";

is(in_recovery($sb1), 'f', 'switchover: sb1 is a primary');
is($sb1->safe_psql('postgres', 'SELECT count(*) FROM t'),
	$rows, 'switchover: every row written on the old primary is on sb1');
ok(wait_for_setting($primary, 'default_transaction_read_only', 'on'),
	'switchover: the old primary is read-only');
is_sqlstate($primary, "INSERT INTO t VALUES (0, 'stale')", '25006',
	'switchover: an INSERT on the old primary fails with 25006');
ok(wait_for_status($witness, 'primary', 'fenced', 'main'),
	'switchover: the old primary is fenced in status');
ok(wait_for_event($witness, 'main', 'switchover', undef, $mark),
	'switchover: a switchover event');
like(
	event_value(
		$witness, 'main', 'fenced', "string_agg(detail, E'\\n')",
		"node_name = 'primary'", $mark),
	qr/pg_rewind|standby\.signal|primary_conninfo/i,
	'switchover: the old primary\'s fenced event tells how to rejoin it');
is( event_value(
		$witness, 'main', 'promoted', "string_agg(node_name, ',')", undef,
		$mark),
	'sb1',
	'switchover: one promoted event, for sb1');
ok( wait_for_status(
		$witness, 'sb1', "role = 'primary' AND health = 'up' AND timeline = 2",
		'main'),
	'switchover: status shows sb1 primary on timeline 2');

ok(wait_for_streaming($sb2, $sb1), 'switchover: sb2 streams from sb1');
ok(wait_for_event($witness, 'main', 'following', "node_name = 'sb2'", $mark),
	'switchover: a following event for sb2');
$sb1->safe_psql('postgres', "INSERT INTO t VALUES (${\ ($rows + 1) }, 'sb1')");
$rows++;
ok($sb2->poll_query_until('postgres', 'SELECT count(*) FROM t', $rows),
	'switchover: a row written on sb1 reaches sb2');
is(in_recovery($sb2), 't', 'switchover: sb2 is a standby');

# ---------------------------------------------------------------------
# failover() refuses while sb1 is up; planned => true switches over
# ---------------------------------------------------------------------

is_sqlstate($witness, "SELECT hamonitor.failover('main')", '55000',
	'failover() while the new primary is up: 55000');
is(in_recovery($sb2), 't', 'the refused failover() promoted nothing');

$sb1->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'sb1' FROM generate_series($rows + 1, $rows + 20000) g"
);
$rows += 20000;
$mark = last_event_id($witness);
$result = $witness->safe_psql('postgres',
	"SELECT hamonitor.failover('main', planned => true)");
note "failover(planned => true) returned: $result";

is(in_recovery($sb2), 'f',
	'failover(planned): sb2, the only eligible standby, is a primary');
is($sb2->safe_psql('postgres', 'SELECT count(*) FROM t'),
	$rows, 'failover(planned): no row lost');
ok(wait_for_setting($sb1, 'default_transaction_read_only', 'on'),
	'failover(planned): sb1 is read-only');
ok(wait_for_status($witness, 'sb1', 'fenced', 'main'),
	'failover(planned): sb1 is fenced');
ok( wait_for_status(
		$witness, 'sb2', "role = 'primary' AND health = 'up' AND timeline = 3",
		'main'),
	'failover(planned): status shows sb2 primary on timeline 3');
is( event_value(
		$witness, 'main', 'promoted', "string_agg(node_name, ',')", undef,
		$mark),
	'sb2',
	'failover(planned): one promoted event, for sb2');
is(cluster_primary($witness, 'main'),
	'sb2:3',
	'failover(planned): the cluster row names sb2 on timeline 3');
is( $witness->safe_psql(
		'postgres',
		"SELECT count(*) FROM hamonitor.status
		  WHERE cluster_name = 'main' AND split_brain"),
	'0',
	'no split brain although three nodes are primaries (two fenced)');

note "events of cluster main:\n" . events_text($witness, 'main');

# the next part has a cluster of its own
foreach my $node ($primary, $sb1, $sb2)
{
	unregister_node($witness, $node->name, 'main');
	$node->stop;
}

# ---------------------------------------------------------------------
# Concurrent promote() calls and the worker: one promotion
# ---------------------------------------------------------------------

my ($cp, $c1, $c2) =
  create_ha_cluster(primary => 'conc_p', standbys => [ 'conc_1', 'conc_2' ]);
ok(register_ha_cluster($witness, 'conc', $cp, $c1, $c2),
	'conc: witness sees the primary and two streaming standbys');
ok(set_witness_guc($witness, 'auto_failover', 'off'),
	'conc: auto_failover is off');

$mark = last_event_id($witness);
kill9_all($cp);
ok(wait_for_status($witness, 'conc_p', "health = 'down'", 'conc'),
	'conc: the crashed primary turns down');
ok( wait_for_event(
		$witness, 'conc', 'failover_blocked', "detail ~* 'auto_failover'",
		$mark),
	'conc: the worker does not fail over with auto_failover off');

# a standby that is down cannot be promoted
$c2->stop;
ok(wait_for_status($witness, 'conc_2', "health = 'down'", 'conc'),
	'conc: conc_2 is down');
is_sqlstate($witness, "SELECT hamonitor.promote('conc_2', 'conc')", '55000',
	'promote() of a standby that is down: 55000');
$c2->start;
ok( wait_for_status(
		$witness, 'conc_2', "health = 'up' AND role = 'standby'", 'conc'),
	'conc: conc_2 is up again');
is(in_recovery($c1) . in_recovery($c2), 'tt', 'conc: no promotion so far');

# Hold the cluster's row lock, which every action takes to check that its
# decision is still current: the first promote() call's action waits for
# it; the second call and the worker find that action open (one action per
# cluster) and are refused, or wait.
my $locker = $witness->background_psql('postgres');
$locker->query_safe(
	"BEGIN; SELECT cluster_name FROM hamonitor.cluster
	         WHERE cluster_name = 'conc' FOR UPDATE;");

my $bg1 = start_bg_psql($witness, "SELECT hamonitor.promote('conc_1', 'conc')");
my $bg2 = start_bg_psql($witness, "SELECT hamonitor.promote('conc_2', 'conc')");
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity
		  WHERE wait_event_type = 'Lock' AND backend_type = 'pg_hamonitor action'",
		'1'),
	'conc: one promote() call\'s action waits for the cluster\'s row lock');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM hamonitor.actions
		  WHERE cluster_name = 'conc' AND state = 'failed'
		    AND error_sqlstate = '55006' AND outcome ~ 'in progress'",
		'1'),
	'conc: the other call is refused while that action is open: 55006');
ok(reset_witness_guc($witness, 'auto_failover', 'on'),
	'conc: auto_failover is on again');
# give the worker time to reach its decision (and the lock) as well
wait_seconds($witness, 1);
$locker->query_safe('COMMIT');
$locker->quit;

my $r1 = finish_bg_psql($bg1);
my $r2 = finish_bg_psql($bg2);
note "promote('conc_1'): $r1 $bg1->{out}";
note "promote('conc_2'): $r2 $bg2->{out}";
like($r1, qr/^(ok|55000|55006)$/,
	'conc: promote(conc_1) succeeded or got 55000 or 55006');
like($r2, qr/^(ok|55000|55006)$/,
	'conc: promote(conc_2) succeeded or got 55000 or 55006');
is(scalar(grep { $_ eq '55006' } ($r1, $r2)),
	1, 'conc: exactly one promote() call was refused for the open action');
cmp_ok(scalar(grep { $_ eq 'ok' } ($r1, $r2)),
	'<=', 1, 'conc: at most one promote() call succeeded');

ok(wait_for_event($witness, 'conc', 'promoted', undef, $mark),
	'conc: a promoted event');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM hamonitor.status
		  WHERE cluster_name = 'conc' AND role = 'primary' AND health = 'up'",
		'1'),
	'conc: the witness sees one primary up');
# let a second promotion, if any, happen
wait_seconds($witness, 3);
is(count_events($witness, 'conc', 'promoted'),
	'1', 'conc: exactly one promoted event');
my $recovery = in_recovery($c1) . in_recovery($c2);
ok($recovery eq 'ft' || $recovery eq 'tf',
	"conc: exactly one node out of recovery (conc_1, conc_2: $recovery)");
my $winner = $recovery eq 'ft' ? 'conc_1' : 'conc_2';
is(event_value($witness, 'conc', 'promoted', 'node_name'),
	$winner,
	'conc: the promoted event names the node out of recovery');
if ($r1 eq 'ok' || $r2 eq 'ok')
{
	is($r1 eq 'ok' ? 'conc_1' : 'conc_2',
		$winner, 'conc: the successful promote() call is the promotion');
}
my ($loser) = grep { $_->name ne $winner } ($c1, $c2);
my ($new_primary) = grep { $_->name eq $winner } ($c1, $c2);
ok(wait_for_streaming($loser, $new_primary),
	'conc: the other standby is repointed to the new primary');

note "events of cluster conc:\n" . events_text($witness, 'conc');

done_testing();
