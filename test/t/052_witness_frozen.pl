
# Copyright (c) 2026, pg_hamonitor developers

# Witness redundancy when the active witness hangs instead of dying
# (SIGSTOP of every process): its sessions stay open on the data nodes, as
# those of a host that vanished without a TCP reset would, but stop running
# queries.  Stale sessions prove nothing: the standby witness takes over.
# When the old witness wakes up, acting all along in its own eyes, its guard
# finds the newer witness on the data nodes and it stops: superseded.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';

my ($primary, $sb1) =
  create_ha_cluster(primary => 'primary', standbys => ['sb1']);
my ($w1, $w2, $proxy) = create_witness_pair('w1', 'w2', timeout => 3000);

ok(register_ha_cluster($w1, $cluster, $primary, $sb1),
	'w1 sees the primary and its standby');
$w1->wait_for_catchup('w2', 'replay', $w1->lsn('insert'));
ok( $w2->poll_query_until(
		'postgres', "SELECT role = 'standby' AND active_witness_reachable
		   AND fresh_sessions >= 2 FROM hamonitor.witness_status()"),
	'w2 watches w1 and its sessions on the data nodes');
my $sysid = witness_status($w1, 'to_hex(system_identifier::bigint)');
my $w1_sessions = "SELECT count(*) FROM pg_stat_activity
  WHERE application_name ILIKE 'pg_hamonitor/main/primary\@$sysid.1'";

my @frozen = freeze_server($w1);
ok( $w2->poll_query_until(
		'postgres', 'SELECT acting FROM hamonitor.witness_status()'),
	'w1 frozen: w2 takes over');
is($primary->safe_psql('postgres', $w1_sessions),
	'1',
	'w1\'s probe session is still open on the primary: it was stale, not gone'
);
like(
	event_value($w2, $cluster, 'witness_takeover', 'detail'),
	qr/none of the 2 data nodes reached/,
	'the witness_takeover event says why');

thaw_server(@frozen);
ok( $w1->poll_query_until(
		'postgres', "SELECT role = 'superseded' AND NOT acting
		   AND newer_timeline = 2 FROM hamonitor.witness_status()"),
	'w1 wakes up, finds w2 on witness timeline 2: superseded');
ok(wait_for_event($w1, $cluster, 'witness_superseded'),
	'a witness_superseded event on w1');
ok($primary->poll_query_until('postgres', $w1_sessions, '0'),
	'w1\'s probe workers stopped: its session on the primary is closed');
is(witness_status($w2, 'role'), 'active', 'w2 is still the active witness');
is(in_recovery($primary) . in_recovery($sb1),
	'ft', 'the data cluster is untouched: one primary');

done_testing();
