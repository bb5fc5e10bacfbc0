
# Copyright (c) 2026, pg_hamonitor developers

# The degrade policy of a synchronous quorum (README "Durability"):
# 'preferred' lowers the quorum when fewer than k listed standbys are
# connected for degrade_grace, after recording durability_degraded, and
# restores it once k standbys are back and have flushed the primary's LSN
# (durability_restored); 'required' never lowers it.

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

my ($primary, $sb1) =
  create_ha_cluster(primary => 'primary', standbys => ['sb1']);
my $witness = create_witness('witness', failover => 1);
ok(register_ha_cluster($witness, $cluster, $primary, $sb1),
	'witness sees the primary and its streaming standby');

my $ssn = "SELECT current_setting('synchronous_standby_names')";
my $list = 'ANY 1 ("hamonitor_sb1")';
$witness->safe_psql(
	'postgres', "
	SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum');
	SELECT hamonitor.set_cluster_option('$cluster', 'degrade', 'preferred');
	SELECT hamonitor.set_cluster_option('$cluster', 'degrade_grace', '2s');");
ok($primary->poll_query_until('postgres', $ssn, $list),
	'the primary gets the quorum');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT durability FROM hamonitor.cluster_durability
		  WHERE cluster_name = '$cluster'", 'guaranteed'),
	'durability guaranteed');
$primary->safe_psql('postgres', 'CREATE TABLE t (id integer)');

# ---------------------------------------------------------------------
# preferred: the standby goes away, the quorum is lowered, on record first
# ---------------------------------------------------------------------

my $before = last_event_id($witness);
$sb1->stop('fast');
ok(wait_for_event($witness, $cluster, 'durability_degraded', undef, $before),
	'durability_degraded once the standby was gone for degrade_grace');
ok($primary->poll_query_until('postgres', $ssn, ''),
	'the witness emptied the list: writes go on');
# its event commits with the sync action, just after the primary shows it
ok( wait_for_event(
		$witness, $cluster, 'synchronous_standby_names_set',
		"detail LIKE '''''%'", $before),
	'the sync action that emptied it is recorded');
my $degraded_id = event_value($witness, $cluster, 'durability_degraded',
	'min(event_id)', undef, $before);
my $emptied_id = event_value($witness, $cluster,
	'synchronous_standby_names_set', 'min(event_id)', "detail LIKE '''''%'",
	$before);
ok($degraded_id < $emptied_id,
	'the degraded state was recorded before the list was emptied');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1)');
pass('a commit is acknowledged while degraded');
is( $witness->safe_psql(
		'postgres',
		"SELECT durability FROM hamonitor.cluster_durability
		  WHERE cluster_name = '$cluster'"),
	'degraded',
	'cluster_durability shows the cluster degraded');

# back and caught up: restored
$before = last_event_id($witness);
$sb1->start;
ok(wait_for_event($witness, $cluster, 'durability_restored', undef, $before),
	'durability_restored once the standby is back and caught up');
ok($primary->poll_query_until('postgres', $ssn, $list),
	'the quorum is set again');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT durability FROM hamonitor.cluster_durability
		  WHERE cluster_name = '$cluster'", 'guaranteed'),
	'durability guaranteed again');

# ---------------------------------------------------------------------
# required: never lowered
# ---------------------------------------------------------------------

$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'degrade', 'required')");
$before = last_event_id($witness);
$sb1->stop('fast');
ok( wait_for_status(
		$witness, 'sb1', "health = 'down'", $cluster),
	'the witness sees the standby down');
# three times degrade_grace, and probes taken since
wait_seconds($witness, 6);
is(count_events($witness, $cluster, 'durability_degraded', undef, $before),
	0, 'required: no durability_degraded');
is($primary->safe_psql('postgres', $ssn), $list,
	'required: the list stays (writes wait for the standby)');
$sb1->start;

done_testing();
