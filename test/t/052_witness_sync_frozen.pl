
# Copyright (c) 2026, pg_hamonitor developers

# pg_hamonitor.witness_synchronous: the active witness names its standby
# witness in its own synchronous_standby_names, so that the decision
# records (action rows, committed synchronously) are on the standby witness
# before the action starts; with the standby witness gone for
# witness_takeover_timeout the list is emptied (degrade), so a failover
# never waits for it longer than that.
# Then, on the same servers, a frozen active witness (SIGSTOP): stale
# sessions, a takeover, and the old witness superseded once it wakes up.

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
my ($w1, $w2, $proxy) = create_witness_pair(
	'w1', 'w2',
	timeout    => 3000,
	extra_conf => "pg_hamonitor.witness_synchronous = on\n");

ok(register_ha_cluster($w1, $cluster, $primary, $sb1, $sb2),
	'w1 sees the primary and two standbys');
ok($w1->poll_query_until('postgres', 'SHOW synchronous_standby_names',
		'ANY 1 (w2)'),
	'w1 names its standby witness in synchronous_standby_names');
ok( $w1->poll_query_until(
		'postgres', "SELECT sync_state FROM pg_stat_replication
		  WHERE application_name = 'w2'", 'quorum'),
	'w2 is a synchronous (quorum) standby of w1');

# a failover: its action row commits on w2 too
my $mark = last_event_id($w1);
kill9_all($primary);
ok(wait_for_event($w1, $cluster, 'promoted', undef, $mark),
	'w1 fails the primary over');
my $action = $w1->safe_psql('postgres',
	"SELECT action_id FROM hamonitor.action
	  WHERE cluster_name = '$cluster' AND kind = 'failover'");
ok( $w2->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM hamonitor.action
		  WHERE action_id = $action"),
	'the failover\'s action row is on w2');
my $new = event_value($w1, $cluster, 'promoted', 'min(node_name)', undef,
	$mark);
my ($np, $other) = $new eq 'sb1' ? ($sb1, $sb2) : ($sb2, $sb1);
ok(wait_until_promoted($np), "$new is the new primary");
ok(wait_for_streaming($other, $np), 'the other standby follows it');

# the standby witness goes away: the list is emptied, failovers go on
stop_helper($proxy);
ok($w1->poll_query_until('postgres', 'SHOW synchronous_standby_names', ''),
	'link cut: w1 degrades (synchronous_standby_names emptied)');
is(in_recovery($w2), 't', 'w2 did not take over: w1 still probes the nodes');
$mark = last_event_id($w1);
ok(wait_for_status($w1, $other->name, "health = 'up' AND role = 'standby'
		AND wal_receiver_status = 'streaming'"),
	'w1 sees the remaining standby streaming');
kill9_all($np);
ok(wait_for_event($w1, $cluster, 'promoted', undef, $mark),
	'a failover without the standby witness does not wait for it');
ok(wait_until_promoted($other), "${\ $other->name} is the new primary");

# the standby witness comes back: named again
$proxy = start_proxy($w1, port => $proxy->{port});
ok($w1->poll_query_until('postgres', 'SHOW synchronous_standby_names',
		'ANY 1 (w2)'),
	'link back: w2 is named again');

# The active witness hangs instead of dying (SIGSTOP of every process):
# its sessions stay open on the data nodes, as those of a host that
# vanished without a TCP reset would, but stop running queries.  Stale
# sessions prove nothing: the standby witness takes over.  When the old
# witness wakes up, acting all along in its own eyes, its guard finds the
# newer witness on the data nodes and it stops: superseded.
my $live = $other;
$w1->wait_for_catchup('w2', 'replay', $w1->lsn('insert'));
ok( $w2->poll_query_until(
		'postgres', "SELECT role = 'standby' AND active_witness_reachable
		   AND fresh_sessions >= 1 FROM hamonitor.witness_status()"),
	'w2 watches w1 and its session on the live node');
my $sysid = witness_status($w1, 'to_hex(system_identifier::bigint)');
my $w1_sessions = "SELECT count(*) FROM pg_stat_activity
  WHERE application_name ILIKE 'pg_hamonitor/main/${\ $live->name }\@$sysid.1'";
is($live->safe_psql('postgres', $w1_sessions), '1',
	'w1 probes the live node');

$mark = last_event_id($w2);
my @frozen = freeze_server($w1);
ok( $w2->poll_query_until(
		'postgres', 'SELECT acting FROM hamonitor.witness_status()'),
	'w1 frozen: w2 takes over');
is($live->safe_psql('postgres', $w1_sessions),
	'1',
	'w1\'s probe session is still open on the live node: it was stale, not gone'
);
like(
	event_value($w2, $cluster, 'witness_takeover', 'detail', undef, $mark),
	qr/none of the 1 data nodes reached/,
	'the witness_takeover event says why (the two dead nodes do not count)');
ok($w2->poll_query_until('postgres', 'SHOW synchronous_standby_names', ''),
	'w2, with no standby witness, names none');

thaw_server(@frozen);
ok( $w1->poll_query_until(
		'postgres', "SELECT role = 'superseded' AND NOT acting
		   AND newer_timeline = 2 FROM hamonitor.witness_status()"),
	'w1 wakes up, finds w2 on witness timeline 2: superseded');
ok(wait_for_event($w1, $cluster, 'witness_superseded'),
	'a witness_superseded event on w1');
ok($live->poll_query_until('postgres', $w1_sessions, '0'),
	'w1\'s probe workers stopped: its session on the live node is closed');
is(witness_status($w2, 'role'), 'active', 'w2 is still the active witness');
is(in_recovery($live), 'f', 'the data cluster is untouched');

done_testing();
