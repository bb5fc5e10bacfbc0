
# Copyright (c) 2026, pg_hamonitor developers

# A synchronous quorum kept by the witness (README "Durability"): with
# synchronous = 'quorum', the witness sets the primary's
# synchronous_standby_names to ANY k over the standbys, under the names it
# writes into their primary_conninfo (their managed slot names); it follows
# a change of k, a failover (the candidate gets its list before it is
# promoted, naming the remaining standby and the old primary), the old
# primary's rejoin (renamed to its listed name, it acknowledges as a
# quorum standby), and 'off' empties the list it set.  A forced promotion
# under the quorum says that acknowledged commits may be lost.

use strict;
use warnings;

use File::Copy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';

my ($primary, $sb1, $sb2) = create_ha_cluster(
	primary       => 'primary',
	standbys      => [ 'sb1', 'sb2' ],
	wal_log_hints => 1);
my $witness = create_witness('witness', failover => 1);
ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
	'witness sees the primary and two streaming standbys');

my $ssn = "SELECT current_setting('synchronous_standby_names')";
is($primary->safe_psql('postgres', $ssn), '',
	'off (the default): the witness leaves synchronous_standby_names alone');

# ---------------------------------------------------------------------
# quorum: the list appears, the standbys stream under the listed names
# ---------------------------------------------------------------------

my $before = last_event_id($witness);
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum')");
ok( $primary->poll_query_until(
		'postgres', $ssn, 'ANY 1 ("hamonitor_sb1", "hamonitor_sb2")'),
	'the primary gets synchronous_standby_names ANY 1 over both standbys');
like($sb1->safe_psql('postgres', "SELECT current_setting('primary_conninfo')"),
	qr/application_name=hamonitor_sb1\b/,
	'sb1 streams under the name the list has for it');
ok( $primary->poll_query_until(
		'postgres',
		"SELECT string_agg(application_name || ':' || sync_state, ','
		                   ORDER BY application_name)
		   FROM pg_stat_replication",
		'hamonitor_sb1:quorum,hamonitor_sb2:quorum'),
	'both standbys acknowledge as quorum standbys');
ok(wait_for_event($witness, $cluster, 'synchronous_standby_names_set', undef,
		$before),
	'the witness recorded what it set');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT durability FROM hamonitor.cluster_durability
		  WHERE cluster_name = '$cluster'", 'guaranteed'),
	'cluster_durability: guaranteed once the primary shows the list');
is( $witness->safe_psql(
		'postgres',
		"SELECT configured_standby_names = applied_standby_names
		   FROM hamonitor.cluster_durability WHERE cluster_name = '$cluster'"),
	't',
	'cluster_durability: configured and applied lists agree');
$primary->safe_psql('postgres', 'CREATE TABLE t (id integer PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO t VALUES (1)');
pass('a commit under the quorum is acknowledged');

# k follows the setting
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous_k', '2')");
ok( $primary->poll_query_until(
		'postgres', $ssn, 'ANY 2 ("hamonitor_sb1", "hamonitor_sb2")'),
	'k = 2 reaches the primary');
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous_k', '1')");
ok( $primary->poll_query_until(
		'postgres', $ssn, 'ANY 1 ("hamonitor_sb1", "hamonitor_sb2")'),
	'and back to k = 1');

# ---------------------------------------------------------------------
# failover: the candidate gets its list before it is promoted
# ---------------------------------------------------------------------

$primary->safe_psql('postgres', 'INSERT INTO t VALUES (2)');
my $last_lsn = $primary->lsn('insert');
ok(wait_for_status($witness, 'sb1', "receive_lsn >= '$last_lsn'", $cluster),
	'the witness saw sb1 receive the last commit');
ok(wait_for_status($witness, 'sb2', "receive_lsn >= '$last_lsn'", $cluster),
	'the witness saw sb2 receive the last commit');

$before = last_event_id($witness);
kill9_all($primary);
ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
	'a standby is promoted after the crash');
my $new = event_value($witness, $cluster, 'promoted', 'min(node_name)',
	undef, $before);
my ($new_primary, $other) = $new eq 'sb1' ? ($sb1, $sb2) : ($sb2, $sb1);
my $other_name = $other->name;
ok(wait_until_promoted($new_primary), "$new is out of recovery");

my $set_id = event_value($witness, $cluster, 'synchronous_standby_names_set',
	'min(event_id)', "node_name = '$new'", $before);
my $promoted_id = event_value($witness, $cluster, 'promoted',
	'min(event_id)', undef, $before);
ok(defined $set_id && $set_id ne '' && $set_id < $promoted_id,
	'the candidate got its synchronous_standby_names before it was promoted');
is($new_primary->safe_psql('postgres', $ssn),
	qq{ANY 1 ("hamonitor_primary", "hamonitor_$other_name")},
	'the new primary lists the remaining standby and the old primary');
ok( $new_primary->poll_query_until(
		'postgres',
		"SELECT string_agg(application_name || ':' || sync_state, ',')
		   FROM pg_stat_replication",
		"hamonitor_$other_name:quorum"),
	'the remaining standby, repointed, acknowledges under its listed name');
$new_primary->safe_psql('postgres', 'INSERT INTO t VALUES (3)');
is($new_primary->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'3', 'every acknowledged row is on the new primary, and it takes commits');

# ---------------------------------------------------------------------
# rejoin: the DBA makes the old primary a standby of the new one, under a
# name of its own choosing; the witness renames it to the name the list
# has for it, and it acknowledges as a quorum standby
# ---------------------------------------------------------------------

$before = last_event_id($witness);
# pg_rewind (which first runs the crash recovery the SIGKILL left) copies
# the source's configuration files; keep the node's own
my $pgdata = $primary->data_dir;
my $conf_tmp = PostgreSQL::Test::Utils::tempdir;
copy("$pgdata/$_", "$conf_tmp/$_") or die "could not copy $_: $!"
  foreach ('postgresql.conf', 'postgresql.auto.conf');
$new_primary->safe_psql('postgres', 'CHECKPOINT');
command_ok(
	[
		'pg_rewind', '--target-pgdata', $pgdata,
		'--source-server', $new_primary->connstr('postgres')
	],
	'pg_rewind of the old primary from the new one');
copy("$conf_tmp/$_", "$pgdata/$_") or die "could not copy $_ back: $!"
  foreach ('postgresql.conf', 'postgresql.auto.conf');
$primary->append_conf('postgresql.conf',
	sprintf("primary_conninfo = '%s'\n",
		standby_conninfo($new_primary, 'rejoined_by_hand')));
$primary->set_standby_mode;
$primary->start;
ok( $new_primary->poll_query_until(
		'postgres',
		"SELECT string_agg(application_name || ':' || sync_state, ','
		                   ORDER BY application_name)
		   FROM pg_stat_replication",
		"hamonitor_primary:quorum,hamonitor_$other_name:quorum"),
	'the rejoined old primary streams under its listed name, as a quorum standby');
like($primary->safe_psql('postgres', "SELECT current_setting('primary_conninfo')"),
	qr/application_name=hamonitor_primary\b/,
	'the witness renamed it in its primary_conninfo');
ok( wait_for_event(
		$witness, $cluster, 'application_name_set', "node_name = 'primary'",
		$before),
	'application_name_set event for the old primary');
is($new_primary->safe_psql('postgres', $ssn),
	qq{ANY 1 ("hamonitor_primary", "hamonitor_$other_name")},
	'the new primary lists it under that name');

# ---------------------------------------------------------------------
# off empties the list the witness set; quorum sets it again
# ---------------------------------------------------------------------

$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'off')");
ok($new_primary->poll_query_until('postgres', $ssn, ''),
	'off: the list the witness set is emptied');
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum')");
ok( $new_primary->poll_query_until(
		'postgres', $ssn,
		qq{ANY 1 ("hamonitor_primary", "hamonitor_$other_name")}),
	'quorum again: the list is back');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT durability FROM hamonitor.cluster_durability
		  WHERE cluster_name = '$cluster'", 'guaranteed'),
	'the witness saw it applied');
# the probe worker reads the applied quorum with its review of the open
# actions, every 2 s (engine.c): nothing in the catalog shows when it has,
# so give it two rounds
wait_seconds($witness, 4);

# ---------------------------------------------------------------------
# R + W > N: ANY 1 of 2 listed, the old primary (listed) is down again:
# when the new primary crashes, the remaining standby alone is not enough
# evidence that one holds every acknowledged commit
# ---------------------------------------------------------------------

$primary->stop('immediate');
ok(wait_for_status($witness, 'primary', "health = 'down'", $cluster),
	'the witness sees the old primary down again');
$new_primary->safe_psql('postgres', 'INSERT INTO t VALUES (4)');
$last_lsn = $new_primary->lsn('insert');
ok(wait_for_status($witness, $other_name, "receive_lsn >= '$last_lsn'", $cluster),
	"the witness saw $other_name receive the last commit");
$before = last_event_id($witness);
kill9_all($new_primary);
ok( wait_for_event(
		$witness, $cluster, 'failover_blocked',
		"detail LIKE '%ANY 1 of 2 listed standbys%1 more needed%'", $before),
	'failover blocked: 2 listed standbys must be seen, 1 more is needed');
is(count_events($witness, $cluster, 'promoted', undef, $before),
	0, 'nothing promoted');

# a forced promotion skips that rule, and says what it risks
my ($ret, $stdout, $stderr) = $witness->psql('postgres',
	"SELECT hamonitor.promote('$other_name', '$cluster', force => true)");
is($ret, 0, "promote($other_name, force => true) under the quorum");
like($stdout, qr/forced under a synchronous quorum: acknowledged commits may be lost/,
	'its result says acknowledged commits may be lost');
like($stderr, qr/WARNING:  forced promotion .* acknowledged commits may be lost/,
	'and its warning');
ok( wait_for_event(
		$witness, $cluster, 'promote',
		"node_name = '$other_name' AND detail LIKE '%under a synchronous quorum, forced: acknowledged commits may be lost%'",
		$before),
	'and its event');
ok(wait_until_promoted($other), "$other_name is out of recovery");

done_testing();
