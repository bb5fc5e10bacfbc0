
# Copyright (c) 2026, pg_hamonitor developers

# The standby slots the witness manages on a cluster's primary: one
# physical slot hamonitor_<node> per standby, each standby streaming through
# its own (primary_slot_name set by the witness); after a crash of the
# primary the surviving standby has its slot on the new primary before it is
# repointed, and keeps streaming through it; unregistering a standby drops
# its slot; the old primary's logical slots are reported lost; an idle slot
# raises exactly one alert, which clears when the slot is used again.  Slots
# the witness did not create, even one named like its own, are never
# dropped.

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

my ($primary, $sb1, $sb2) = create_ha_cluster(
	primary  => 'primary',
	standbys => [ 'sb1', 'sb2' ],
	logical  => 1);
my $witness = create_witness('witness', failover => 1,
	extra_conf => "pg_hamonitor.slot_inactive_alert = '2s'\n");
is($witness->safe_psql('postgres', 'SHOW pg_hamonitor.slot_inactive_alert'),
	'2s', 'slot_inactive_alert is 2s');

# the user's own slots, made without the witness: on the primary, and on
# both standbys (whichever is promoted has them when it becomes primary)
foreach my $node ($primary, $sb1, $sb2)
{
	$node->safe_psql(
		'postgres', q{
		SELECT pg_create_physical_replication_slot('hamonitor_mine');
		SELECT pg_create_physical_replication_slot('user_slot');});
}
$primary->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('logi_old', 'test_decoding')");
# and on each standby, a slot of the user named as the witness would name
# the managed slot of that standby (on its primary, not on itself)
foreach my $sb ($sb1, $sb2)
{
	$sb->safe_psql('postgres',
		"SELECT pg_create_physical_replication_slot('hamonitor_"
		  . $sb->name . "')");
}

# true if both user slots are still on the node
sub user_slots_kept
{
	my ($node) = @_;
	return $node->safe_psql(
		'postgres',
		"SELECT count(*) = 2 FROM pg_catalog.pg_replication_slots
		  WHERE slot_name IN ('hamonitor_mine', 'user_slot')");
}

# LISTEN before anything happens, to see the NOTIFY of the slot alert
my $listener = start_event_listener($witness);

ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
	'witness sees the primary and two streaming standbys');

# ---------------------------------------------------------------------
# Each standby streams through its managed slot on the primary
# ---------------------------------------------------------------------

ok( wait_for_peer_slot(
		$primary,
		"count(*) FILTER (WHERE slot_name IN ('hamonitor_sb1', 'hamonitor_sb2')
		                    AND slot_type = 'physical' AND active) = 2"),
	'the primary has hamonitor_sb1 and hamonitor_sb2, both active');
foreach my $sb ($sb1, $sb2)
{
	my $name = $sb->name;
	ok( $sb->poll_query_until(
			'postgres',
			"SELECT slot_name || ':' || status FROM pg_stat_wal_receiver",
			"hamonitor_$name:streaming"),
		"$name streams through hamonitor_$name");
	is($sb->safe_psql('postgres', 'SHOW primary_slot_name'),
		"hamonitor_$name", "${name}'s primary_slot_name is hamonitor_$name");
	is( peer_slot(
			$primary, "hamonitor_$name",
			"active_pid = (SELECT pid FROM pg_stat_replication
			                WHERE application_name = '$name')"),
		't',
		"hamonitor_$name is held by the walsender of $name");
	ok( wait_for_event(
			$witness, $cluster, 'slot_created',
			"node_name = 'primary' AND detail LIKE '%hamonitor_$name%'"),
		"a slot_created event on the primary for hamonitor_$name");
	ok( wait_for_event(
			$witness, $cluster, 'primary_slot_name_set',
			"node_name = '$name'"),
		"a primary_slot_name_set event for $name");
}
is(peer_slot($primary, 'hamonitor_primary', 'count(*)'),
	'0', 'no managed slot for the primary on itself');

ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'hamonitor_sb1',
		"managed AND active AND slot_type = 'physical' AND NOT failover_risk
		 AND inactive_since IS NULL"),
	'hamonitor.slots shows hamonitor_sb1 managed and active');
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'hamonitor_sb2',
		'managed AND active'),
	'hamonitor.slots shows hamonitor_sb2 managed and active');
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'hamonitor_mine', 'NOT managed'),
	'hamonitor.slots shows the user\'s hamonitor_mine as not managed');
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'user_slot', 'NOT managed'),
	'hamonitor.slots shows user_slot as not managed');

# ---------------------------------------------------------------------
# A node whose managed slot name is taken by a user's slot: not claimed
# ---------------------------------------------------------------------

# a standby "mine" that is down: its slot would be hamonitor_mine, which
# the user already has on the primary; the witness did not create it, so
# it must not drop it when "mine" goes away
my $before_mine = last_event_id($witness);
register_node($witness, 'mine',
	'host=127.0.0.1 port=' . refused_port() . ' connect_timeout=1', $cluster);
ok(wait_for_status($witness, 'mine', "health = 'down'", $cluster),
	'the witness sees node mine down');
wait_seconds($witness, 2);
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'hamonitor_mine', 'NOT managed'),
	'the user\'s hamonitor_mine is not taken as managed for node mine');
unregister_node($witness, 'mine', $cluster);
wait_seconds($witness, 2);
is(peer_slot($primary, 'hamonitor_mine', 'count(*)'),
	'1', 'hamonitor_mine survives the unregistration of node mine');
is( count_events(
		$witness, $cluster, 'slot_dropped', "detail LIKE '%hamonitor_mine%'",
		$before_mine),
	'0',
	'no slot_dropped event for hamonitor_mine');

# a position for the logical slot, to find in logical_slots_lost
$primary->safe_psql('postgres',
	'CREATE TABLE t (id integer PRIMARY KEY, phase text)');
$primary->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'before' FROM generate_series(1, 1000) g");
my $logi_lsn = $primary->safe_psql(
	'postgres',
	"SELECT end_lsn FROM pg_replication_slot_advance('logi_old',
	                                                 pg_current_wal_flush_lsn())");
is(peer_slot($primary, 'logi_old', 'confirmed_flush_lsn'),
	$logi_lsn, 'logi_old advanced on the primary');
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'logi_old',
		"slot_type = 'logical' AND plugin = 'test_decoding' AND NOT managed
		 AND failover_risk AND confirmed_flush_lsn = '$logi_lsn'"),
	'hamonitor.slots shows logi_old at risk on failover, at its position');

# give the worker time to (wrongly) tidy up the user's slots
wait_seconds($witness, 2);
is(user_slots_kept($primary), 't',
	'the user\'s hamonitor_mine and user_slot survive on the primary');
is(peer_slot($primary, 'logi_old', 'count(*)'),
	'1', 'the logical slot survives on the primary');

foreach my $sb ($sb1, $sb2)
{
	$primary->wait_for_catchup($sb->name, 'replay', $primary->lsn('insert'));
}

# ---------------------------------------------------------------------
# Crash the primary: the other standby keeps its slot on the new primary
# ---------------------------------------------------------------------

my $before = last_event_id($witness);
kill9_all($primary);

ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
	'a standby is promoted after the crash of the primary');
my $new_name = event_value($witness, $cluster, 'promoted',
	'(array_agg(node_name ORDER BY event_id))[1]', undef, $before);
my ($new, $other) = $new_name eq 'sb1' ? ($sb1, $sb2) : ($sb2, $sb1);
my $other_name = $other->name;
my $other_slot = "hamonitor_$other_name";
note "promoted: $new_name; the other standby: $other_name";
ok(wait_until_promoted($new), "$new_name is out of recovery");

ok( wait_for_peer_slot(
		$new,
		"count(*) FILTER (WHERE slot_name = '$other_slot'
		                    AND slot_type = 'physical' AND active) = 1"),
	"the new primary $new_name has $other_slot, active");
ok( $other->poll_query_until(
		'postgres',
		"SELECT slot_name || ':' || sender_port || ':' || status
		   FROM pg_stat_wal_receiver",
		"$other_slot:" . $new->port . ':streaming'),
	"$other_name streams from $new_name through $other_slot");
ok( wait_for_event(
		$witness, $cluster, 'slot_created',
		"node_name = '$new_name' AND detail LIKE '%$other_slot%'", $before),
	"a slot_created event on $new_name for $other_slot");
ok(wait_for_event($witness, $cluster, 'repointed', "node_name = '$other_name'",
		$before),
	"$other_name was repointed");
cmp_ok(
	event_value(
		$witness, $cluster, 'slot_created', 'min(event_id)',
		"node_name = '$new_name' AND detail LIKE '%$other_slot%'", $before),
	'<',
	event_value(
		$witness, $cluster, 'repointed', 'min(event_id)',
		"node_name = '$other_name'", $before),
	"$other_slot was created on $new_name before $other_name was repointed");

$new->safe_psql('postgres', "INSERT INTO t VALUES (1000001, 'after')");
ok( $other->poll_query_until(
		'postgres', "SELECT count(*) FROM t WHERE phase = 'after'", '1'),
	"a row written on $new_name after the failover reaches $other_name");
ok( wait_for_slot_view(
		$witness, $cluster, $new_name, $other_slot,
		'managed AND active'),
	"hamonitor.slots shows $other_slot managed and active on $new_name");

# the old primary's logical slot is reported lost, with its position
ok( wait_for_event(
		$witness, $cluster, 'logical_slots_lost',
		"detail LIKE '%logi_old%'", $before),
	'a logical_slots_lost event names logi_old');
my $lost_detail = event_value($witness, $cluster, 'logical_slots_lost',
	"string_agg(detail, E'\\n')", undef, $before);
like($lost_detail, qr/\Q$logi_lsn\E/,
	'the logical_slots_lost event gives logi_old\'s confirmed_flush_lsn');
unlike($lost_detail,
	qr/hamonitor_mine|user_slot|hamonitor_sb/,
	'physical slots are not listed as lost logical slots');

wait_seconds($witness, 2);
is(user_slots_kept($new), 't',
	"the user's hamonitor_mine and user_slot survive on the new primary");
is(peer_slot($new, "hamonitor_$new_name", 'count(*)'),
	'1',
	"the user's own hamonitor_$new_name, made on $new_name, survives its promotion"
);

# ---------------------------------------------------------------------
# Unregistering the other standby drops its managed slot
# ---------------------------------------------------------------------

# unregistered while it still streams, then stopped: the slot may have
# to wait until its standby lets it go, but it must go
my $before_unreg = last_event_id($witness);
unregister_node($witness, $other_name, $cluster);
$other->stop;
ok( wait_for_peer_slot(
		$new, "count(*) FILTER (WHERE slot_name = '$other_slot') = 0"),
	"$other_slot is dropped from $new_name");
ok( wait_for_event(
		$witness, $cluster, 'slot_dropped',
		"detail LIKE '%$other_slot%'", $before_unreg),
	"a slot_dropped event for $other_slot");
ok(wait_for_slot_view($witness, $cluster, $new_name, $other_slot, undef),
	"hamonitor.slots no longer shows $other_slot");
is(user_slots_kept($new), 't',
	"the user's slots survive the unregistration on $new_name");

# ---------------------------------------------------------------------
# An idle slot raises exactly one alert, cleared once it is used
# ---------------------------------------------------------------------

my $before_alert = last_event_id($witness);
is( $witness->safe_psql(
		'postgres',
		"SELECT hamonitor.create_slot('$new_name', 'idle_slot',
		                              cluster_name => '$cluster')"),
	'created',
	"idle_slot created on $new_name");
$new->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'idle' FROM generate_series(2000000, 2010000) g");

ok( wait_for_event(
		$witness, $cluster, 'slot_alert',
		"node_name = '$new_name' AND detail LIKE '%idle_slot%'", $before_alert),
	'a slot_alert event for idle_slot');
my $alert_id = event_value($witness, $cluster, 'slot_alert', 'min(event_id)',
	"detail LIKE '%idle_slot%'", $before_alert);
ok( wait_for_slot_view(
		$witness, $cluster, $new_name, 'idle_slot',
		'alert IS NOT NULL AND NOT active AND inactive_since IS NOT NULL'),
	'hamonitor.slots shows the alert on idle_slot');
like(status_value($witness, $new_name, 'slot_alerts', $cluster),
	qr/idle_slot/, "hamonitor.status.slot_alerts of $new_name names idle_slot");

ok(wait_for_notification($listener, $alert_id),
	'the slot_alert event was notified on hamonitor_event');
$listener->quit;

# about 15 more probes of a slot still idle
wait_seconds($witness, 3);
is( count_events(
		$witness, $cluster, 'slot_alert', "detail LIKE '%idle_slot%'",
		$before_alert),
	'1',
	'still exactly one slot_alert event for idle_slot');

my $rw  = start_receivewal($new, 'idle_slot');
my $pid = wait_for_slot_active($new, 'idle_slot');
ok(defined $pid, 'pg_receivewal streams through idle_slot');
ok( wait_for_event(
		$witness, $cluster, 'slot_alert_cleared',
		"detail LIKE '%idle_slot%'", $before_alert),
	'a slot_alert_cleared event for idle_slot once it is active');
ok( wait_for_slot_view(
		$witness, $cluster, $new_name, 'idle_slot',
		'alert IS NULL AND active'),
	'hamonitor.slots shows no alert on the active idle_slot');
is( status_value(
		$witness, $new_name,
		"coalesce(slot_alerts, '') NOT LIKE '%idle_slot%'", $cluster),
	't',
	"hamonitor.status.slot_alerts of $new_name no longer names idle_slot");
is( count_events(
		$witness, $cluster, 'slot_alert', "detail LIKE '%idle_slot%'",
		$before_alert),
	'1',
	'one slot_alert event for idle_slot in all');
stop_helper($rw);

is(user_slots_kept($new), 't',
	"the user's slots are still on $new_name at the end");

# ---------------------------------------------------------------------
# The old primary comes back: the user's slots are still there
# ---------------------------------------------------------------------

$primary->start;
ok(wait_for_status($witness, 'primary', "health = 'up'", $cluster),
	'the witness sees the old primary up again');
wait_seconds($witness, 2);
is(user_slots_kept($primary), 't',
	'the user\'s hamonitor_mine and user_slot are still on the old primary');

note "events of cluster $cluster:\n" . events_text($witness, $cluster);

done_testing();
