
# Copyright (c) 2026, pg_hamonitor developers

# Witness redundancy when the witness and the data go down together:
#  - the active witness and the data primary are killed at once: the
#    standby witness takes over and fails the cluster over, with exactly
#    one new primary;
#  - the new active witness gets a new standby witness (a base backup of
#    it, the README's rejoin procedure);
#  - a failover in flight on the active witness at the moment it dies (its
#    candidate's promotion hangs) is finished and recorded by the witness
#    that takes over, not started twice.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';

my ($primary, $sb1, $sb2) =
  create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);
my ($w1, $w2, $proxy) = create_witness_pair('w1', 'w2', timeout => 3000);

ok(register_ha_cluster($w1, $cluster, $primary, $sb1, $sb2),
	'w1 sees the primary and two streaming standbys');
$w1->wait_for_catchup('w2', 'replay', $w1->lsn('insert'));
ok( $w2->poll_query_until(
		'postgres', "SELECT role = 'standby' AND active_witness_reachable
		   AND fresh_sessions >= 3 FROM hamonitor.witness_status()"),
	'w2 watches w1 and its sessions on the data nodes');

# (d) the witness and the data primary die together
kill9_all($w1);
kill9_all($primary);
ok( $w2->poll_query_until(
		'postgres', 'SELECT acting FROM hamonitor.witness_status()'),
	'w2 takes over (2 of the 3 data nodes reached: a majority)');
ok(wait_for_event($w2, $cluster, 'promoted'),
	'w2 fails over the primary that died with w1');
my $new = event_value($w2, $cluster, 'promoted', 'min(node_name)');
my ($np, $other) = $new eq 'sb1' ? ($sb1, $sb2) : ($sb2, $sb1);
ok(wait_until_promoted($np), "$new is out of recovery");
ok(wait_for_streaming($other, $np), 'the other standby follows it');
is(count_events($w2, $cluster, 'promoted'), '1', 'exactly one promotion');
is(in_recovery($other), 't', 'exactly one new primary');
is( $w2->safe_psql(
		'postgres', "SELECT count(*) FROM hamonitor.action
		  WHERE cluster_name = '$cluster' AND kind = 'failover'"),
	'1', 'one failover action in the catalog');

# rejoin: a new standby witness from a base backup of w2
$w2->backup('w2_backup');
my $w3 = PostgreSQL::Test::Cluster->new('w3');
$w3->init_from_backup($w2, 'w2_backup', has_streaming => 1);
$w3->start;
$w2->wait_for_catchup('w3', 'replay', $w2->lsn('insert'));
ok( $w3->poll_query_until(
		'postgres', "SELECT role = 'standby' AND active_witness_reachable
		   AND fresh_sessions >= 2 FROM hamonitor.witness_status()"),
	'w3, a base backup of w2, watches w2');

# a failover in flight when the active witness dies: its candidate's
# startup process is stopped, so the promotion w2 sends hangs
my $startup = $other->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'");
kill 'STOP', $startup;
my $mark = last_event_id($w2);
kill9_all($np);
ok( $w2->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM hamonitor.actions
		  WHERE cluster_name = '$cluster' AND kind = 'failover'
		    AND state = 'promote_sent'"),
	'w2 decided the failover and sent the promotion');
$w2->wait_for_catchup('w3', 'replay', $w2->lsn('insert'));
kill9_all($w2);
ok( $w3->poll_query_until(
		'postgres', 'SELECT acting FROM hamonitor.witness_status()'),
	'w3 takes over');
is(witness_status($w3, 'timeline'), '3', 'on witness timeline 3');
ok( $w3->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM hamonitor.actions
		  WHERE cluster_name = '$cluster' AND kind = 'failover'
		    AND state = 'promote_sent'"),
	'w3 finds the open action of w2');

kill 'CONT', $startup;
ok(wait_until_promoted($other), "${\ $other->name} finishes its promotion");
ok(wait_for_event($w3, $cluster, 'promoted', "node_name = '${\ $other->name}'",
		$mark),
	'w3 records the promotion w2 started');
is( $w3->safe_psql(
		'postgres', "SELECT count(*) FROM hamonitor.action
		  WHERE cluster_name = '$cluster' AND kind = 'failover'"),
	'2', 'two failover actions in all: the in-flight one was not started again');
is(count_events($w3, $cluster, 'promoted', undef, $mark),
	'1', 'one promotion after the second crash');

done_testing();
