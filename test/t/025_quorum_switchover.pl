
# Copyright (c) 2026, pg_hamonitor developers

# A switchover under synchronous = 'quorum' (README "Durability"): the old
# primary's list is pinned to FIRST 1 (target) before it is fenced, the
# target gets its own list before its promotion, and the quorum holds
# across the change; then a registration change (unregister, register)
# reaches the new primary's list.

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
ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
	'witness sees the primary and two streaming standbys');

my $ssn = "SELECT current_setting('synchronous_standby_names')";
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum')");
ok( $primary->poll_query_until(
		'postgres', $ssn, 'ANY 1 ("hamonitor_sb1", "hamonitor_sb2")'),
	'the primary gets the quorum');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM hamonitor.status
		  WHERE cluster_name = '$cluster' AND sync_state = 'quorum'", '2'),
	'status shows both standbys as quorum standbys');
$primary->safe_psql('postgres', 'CREATE TABLE t (id integer)');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1)');

# no sync action may be open when the switchover is asked for
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM hamonitor.action
		  WHERE cluster_name = '$cluster'
		    AND state NOT IN ('done', 'failed', 'abandoned')", '0'),
	'no action in progress');

my $before = last_event_id($witness);
my $result = $witness->safe_psql('postgres',
	"SELECT hamonitor.switchover('sb1', '$cluster')");
like($result, qr/promoted "sb1"/, 'switchover to sb1');

my $pin_id = event_value($witness, $cluster, 'synchronous_standby_names_set',
	'min(event_id)',
	"node_name = 'primary' AND detail LIKE '''FIRST 1 (\"hamonitor_sb1\")''%'",
	$before);
my $cand_id = event_value($witness, $cluster, 'synchronous_standby_names_set',
	'min(event_id)', "node_name = 'sb1'", $before);
my $promoted_id = event_value($witness, $cluster, 'promoted',
	'min(event_id)', undef, $before);
ok($pin_id ne '' && $pin_id < $promoted_id,
	'the old primary was pinned to FIRST 1 (sb1) before the promotion');
ok($cand_id ne '' && $cand_id < $promoted_id,
	'sb1 got its list before its promotion');
# polled: for the moment between sb2's repointing and its first probe on
# the new timeline the witness still sees sb2 streaming from the old
# primary (a cascading standby, left out of the list); the list is only
# narrower then, never k lower
ok( $sb1->poll_query_until('postgres', $ssn,
		'ANY 1 ("hamonitor_primary", "hamonitor_sb2")'),
	'the new primary lists sb2 and the old primary');
ok( $sb1->poll_query_until(
		'postgres',
		"SELECT string_agg(application_name || ':' || sync_state, ',')
		   FROM pg_stat_replication",
		'hamonitor_sb2:quorum'),
	'sb2, repointed, acknowledges the new primary under its listed name');
$sb1->safe_psql('postgres', 'INSERT INTO t VALUES (2)');
is($sb1->safe_psql('postgres', 'SELECT count(*) FROM t'), '2',
	'commits on the new primary are acknowledged');

# ---------------------------------------------------------------------
# registration changes reach the list
# ---------------------------------------------------------------------

$primary->stop('fast');
unregister_node($witness, 'primary', $cluster);
ok($sb1->poll_query_until('postgres', $ssn, 'ANY 1 ("hamonitor_sb2")'),
	'unregister: the old primary leaves the list');
is( sqlstate_of(
		$witness, "SELECT hamonitor.unregister_node('sb2', '$cluster')"),
	'55000',
	'the last standby of the quorum cannot be unregistered (55000)');
register_node($witness, 'primary', $primary->connstr('postgres'), $cluster);
ok( $sb1->poll_query_until(
		'postgres', $ssn, 'ANY 1 ("hamonitor_primary", "hamonitor_sb2")'),
	'register: the node is listed again');

done_testing();
