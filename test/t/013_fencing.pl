
# Copyright (c) 2026, pg_hamonitor developers

# The old primary comes back after a failover, still a primary on the old
# timeline: the witness fences it (read-only, flagged, event), and once the
# DBA has rejoined it as a standby of the new primary with pg_rewind, the
# witness unfences it.

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

# wal_log_hints for pg_rewind
my ($primary, $sb1) = create_ha_cluster(
	primary       => 'primary',
	standbys      => ['sb1'],
	wal_log_hints => 1);
my $witness = create_witness('witness', failover => 1);
ok(register_ha_cluster($witness, $cluster, $primary, $sb1),
	'witness sees the primary and its streaming standby');

$primary->safe_psql('postgres',
	"CREATE TABLE t (id integer PRIMARY KEY, phase text);
	 INSERT INTO t SELECT g, 'old' FROM generate_series(1, 100) g;");
$primary->wait_for_catchup('sb1', 'replay', $primary->lsn('write'));

# ---------------------------------------------------------------------
# Failover to sb1
# ---------------------------------------------------------------------

my $mark = last_event_id($witness);
kill9_all($primary);
ok(wait_for_event($witness, $cluster, 'promoted', "node_name = 'sb1'", $mark),
	'sb1 is promoted after the crash of the primary');
ok(wait_until_promoted($sb1), 'sb1 is out of recovery');
ok( wait_for_status(
		$witness, 'sb1', "role = 'primary' AND health = 'up' AND timeline = 2",
		$cluster),
	'status: sb1 is the primary on timeline 2');
$sb1->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'new' FROM generate_series(101, 200) g");

# ---------------------------------------------------------------------
# The old primary comes back: fenced
# ---------------------------------------------------------------------

$mark = last_event_id($witness);
$primary->start;

ok( wait_for_status(
		$witness, 'primary',
		"role = 'primary' AND timeline = 1 AND fenced", $cluster),
	'status: the old primary, on timeline 1, is fenced');
ok(wait_for_event($witness, $cluster, 'fenced', "node_name = 'primary'", $mark),
	'a fenced event for the old primary');
ok(wait_for_setting($primary, 'default_transaction_read_only', 'on'),
	'default_transaction_read_only is on on the old primary');
# (only now: the witness ends the client sessions when it fences)
is(in_recovery($primary), 'f',
	'the old primary came back as a primary, not a standby');
is_sqlstate($primary, "INSERT INTO t VALUES (1000, 'stale')", '25006',
	'an INSERT on the fenced old primary fails with 25006');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id > 100'),
	'0', 'nothing was written on the old primary');

is( $witness->safe_psql(
		'postgres',
		"SELECT string_agg(node_name || ':' || split_brain, ','
		                   ORDER BY node_name)
		   FROM hamonitor.status WHERE cluster_name = '$cluster'"),
	'primary:false,sb1:false',
	'no split brain: the old primary is on an older timeline');
is(cluster_primary($witness, $cluster),
	'sb1:2',
	'the cluster\'s primary is still sb1 on timeline 2');
is(status_value($witness, 'sb1', 'fenced', $cluster),
	'f', 'the new primary is not fenced');
wait_seconds($witness, 2);
is(count_events($witness, $cluster, 'fenced'), '1',
	'one fenced event, not one per probe');
is(count_events($witness, $cluster, 'promoted'),
	'1', 'still a single promotion');

# ---------------------------------------------------------------------
# The DBA rejoins it: stop, pg_rewind from sb1, standby of sb1
# ---------------------------------------------------------------------

$mark = last_event_id($witness);
$primary->stop;

# pg_rewind copies the source's configuration files; keep the node's own
# (its port, and the default_transaction_read_only the witness set)
my $pgdata = $primary->data_dir;
my $tmp    = PostgreSQL::Test::Utils::tempdir;
foreach my $f ('postgresql.conf', 'postgresql.auto.conf')
{
	copy("$pgdata/$f", "$tmp/$f") or die "could not copy $f: $!";
}
like(
	slurp_file("$tmp/postgresql.auto.conf"),
	qr/default_transaction_read_only\s*=\s*'?on'?/,
	'the witness fenced the old primary with ALTER SYSTEM');

# pg_rewind reads the source's timeline from its control file, updated
# only by a checkpoint after the promotion (else: "no rewind required")
$sb1->safe_psql('postgres', 'CHECKPOINT');
command_ok(
	[
		'pg_rewind', '--target-pgdata', $pgdata,
		'--source-server', $sb1->connstr('postgres')
	],
	'pg_rewind of the old primary from sb1');
foreach my $f ('postgresql.conf', 'postgresql.auto.conf')
{
	copy("$tmp/$f", "$pgdata/$f") or die "could not copy $f back: $!";
}
$primary->append_conf('postgresql.conf',
	sprintf("primary_conninfo = '%s'\n", standby_conninfo($sb1, 'primary')));
$primary->set_standby_mode;
$primary->start;

ok(wait_for_streaming($primary, $sb1), 'the old primary streams from sb1');
is(in_recovery($primary), 't', 'the old primary is a standby');
ok( wait_for_status(
		$witness, 'primary',
		"role = 'standby' AND health = 'up' AND NOT fenced", $cluster),
	'status: the rejoined node is an up standby, no longer fenced');
ok(wait_for_event($witness, $cluster, 'unfenced', "node_name = 'primary'", $mark),
	'an unfenced event for it');
ok(wait_for_setting($primary, 'default_transaction_read_only', 'off'),
	'the witness reset default_transaction_read_only on it');

$sb1->safe_psql('postgres', "INSERT INTO t VALUES (201, 'rejoined')");
ok( $primary->poll_query_until(
		'postgres', 'SELECT count(*) FROM t', '201'),
	'the rejoined standby has every row of the new primary');
is( $witness->safe_psql(
		'postgres',
		"SELECT count(*) FROM hamonitor.status
		  WHERE cluster_name = '$cluster' AND (fenced OR split_brain)"),
	'0',
	'status: nothing fenced, no split brain');
is(count_events($witness, $cluster, 'promoted'),
	'1', 'a single promotion in the whole story');

note "events of cluster $cluster:\n" . events_text($witness, $cluster);

done_testing();
