
# Copyright (c) 2026, pg_hamonitor developers

# Automatic failover after a crash of the primary (SIGKILL to the postmaster
# and every backend): the synchronous standby sb1 is promoted, no commit
# acknowledged with remote_apply is lost, the other standby sb2 (whose
# replay was paused, so it is behind) is repointed to sb1 and follows it on
# the new timeline, and the witness records the whole story in events,
# status and the cluster row.

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

# synchronous_standby_names is set after the base backup: the standbys do
# not inherit it, so the promoted sb1 does not wait for a sync standby
my ($primary, $sb1, $sb2) = create_ha_cluster(
	primary      => 'primary',
	standbys     => [ 'sb1', 'sb2' ],
	primary_conf => "synchronous_standby_names = 'sb1'\n");
my $witness = create_witness('witness', failover => 1);

ok( $primary->poll_query_until(
		'postgres',
		"SELECT string_agg(application_name || ':' || sync_state, ','
		                   ORDER BY application_name)
		   FROM pg_stat_replication",
		'sb1:sync,sb2:async'),
	'sb1 is the synchronous standby, sb2 is asynchronous');

# LISTEN before anything happens, to see the NOTIFY of the failover events
my $listener = start_event_listener($witness);

ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
	'witness sees the primary and two streaming standbys');

# ---------------------------------------------------------------------
# Writes acknowledged by sb1 (remote_apply); sb2 falls behind
# ---------------------------------------------------------------------

$primary->safe_psql('postgres',
	'CREATE TABLE t (id integer PRIMARY KEY, phase text NOT NULL)');
$primary->safe_psql(
	'postgres', "SET synchronous_commit = remote_apply;
	 INSERT INTO t SELECT g, 'before_pause' FROM generate_series(1, 100) g;");
$primary->wait_for_catchup('sb2', 'replay', $primary->lsn('write'));

$sb2->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
ok( $sb2->poll_query_until(
		'postgres', 'SELECT pg_get_wal_replay_pause_state()', 'paused'),
	'replay paused on sb2');

# 50 transactions of 100 rows, each committed only once sb1 applied it
my $n_tx = 50;
my $script = "SET synchronous_commit = remote_apply;\n";
foreach my $i (1 .. $n_tx)
{
	my $from = 100 + ($i - 1) * 100 + 1;
	my $to   = 100 + $i * 100;
	$script .=
	  "INSERT INTO t SELECT g, 'synced' FROM generate_series($from, $to) g;\n";
}
$primary->safe_psql('postgres', $script);
my $committed = 100 + $n_tx * 100;

is($sb1->safe_psql('postgres', 'SELECT count(*) FROM t'),
	$committed,
	'sb1 applied every transaction the primary acknowledged (remote_apply)');
is($sb2->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'100', 'sb2 is behind: it replayed only the rows before the pause');

# the witness knows the primary's last position before the crash
my $last_lsn = $primary->lsn('insert');
ok(wait_for_status($witness, 'primary', "current_lsn >= '$last_lsn'", $cluster),
	'the witness saw the primary\'s last LSN');
ok(wait_for_status($witness, 'sb1', "receive_lsn >= '$last_lsn'", $cluster),
	'the witness saw sb1 receive it');

# ---------------------------------------------------------------------
# Crash the primary: sb1 is promoted
# ---------------------------------------------------------------------

my $before = last_event_id($witness);
kill9_all($primary);

ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
	'a promoted event after the crash of the primary');
is( event_value(
		$witness, $cluster, 'promoted', "string_agg(node_name, ',')", undef,
		$before),
	'sb1',
	'the promoted node is sb1 (most WAL received, then priority, then name)');
like(event_value($witness, $cluster, 'promoted', 'detail', undef, $before),
	qr/\b2\b/,
	'the promoted event gives the new timeline 2');
ok(wait_until_promoted($sb1), 'sb1 is out of recovery');

my $failover_detail = event_value($witness, $cluster, 'failover',
	"string_agg(detail, E'\\n')", undef, $before);
like($failover_detail, qr/\bprimary\b/,
	'the failover event names the old primary');
like($failover_detail, qr/\bsb1\b/, 'the failover event names the candidate');
like($failover_detail, qr{[0-9A-F]+/[0-9A-F]+},
	'the failover event gives LSNs');
my $first_promoted =
  event_value($witness, $cluster, 'promoted', 'min(event_id)', undef, $before);
cmp_ok(
	event_value(
		$witness, $cluster, 'failover', 'min(event_id)', undef, $before),
	'<', $first_promoted,
	'the failover decision is recorded before the promotion');

# ---------------------------------------------------------------------
# sb2 is repointed to sb1 and follows it on timeline 2
# ---------------------------------------------------------------------

ok(wait_for_event($witness, $cluster, 'repointed', "node_name = 'sb2'", $before),
	'sb2 is repointed');
$sb2->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');

# (polled: the postmaster may not have processed the reload yet)
ok( $sb2->poll_query_until(
		'postgres',
		"SELECT current_setting('primary_conninfo') ~ 'port=${\ $sb1->port }\\M'"),
	'sb2\'s primary_conninfo now names sb1\'s port');
like(
	$sb2->safe_psql('postgres', 'SHOW primary_conninfo'),
	qr/application_name=sb2\b/,
	'the rest of sb2\'s primary_conninfo (application_name) is kept');
ok(wait_for_streaming($sb2, $sb1), 'sb2 streams from sb1');
ok( $sb2->poll_query_until(
		'postgres',
		"SELECT received_tli FROM pg_stat_wal_receiver", '2'),
	'sb2 receives timeline 2');
ok(wait_for_event($witness, $cluster, 'following', "node_name = 'sb2'", $before),
	'a following event for sb2');

$sb1->safe_psql('postgres', "INSERT INTO t VALUES (1000000, 'after')");
ok( $sb2->poll_query_until(
		'postgres', "SELECT count(*) FROM t WHERE phase = 'after'", '1'),
	'a row written on sb1 after the failover reaches sb2');
is($sb2->safe_psql('postgres', 'SELECT count(*) FROM t'),
	$committed + 1, 'sb2 replayed everything once resumed');

# ---------------------------------------------------------------------
# No data lost, exactly one primary, and the witness's view
# ---------------------------------------------------------------------

is( $sb1->safe_psql(
		'postgres',
		"SELECT count(*) FILTER (WHERE phase <> 'after'), min(id), max(id)
		   FROM t WHERE id <= $committed"),
	"$committed|1|$committed",
	'every row committed with remote_apply before the crash is on sb1');
is(in_recovery($sb2), 't', 'sb2 is still a standby: one primary only');

ok( wait_for_status(
		$witness, 'sb1',
		"role = 'primary' AND health = 'up' AND timeline = 2", $cluster),
	'status: sb1 is an up primary on timeline 2');
ok( wait_for_status(
		$witness, 'sb2',
		"role = 'standby' AND health = 'up' AND timeline = 2
		 AND wal_receiver_status = 'streaming'
		 AND upstream_port = ${\ $sb1->port }
		 AND NOT needs_rejoin", $cluster),
	'status: sb2 is an up standby streaming from sb1 on timeline 2');
is(status_value($witness, 'primary', 'health', $cluster),
	'down', 'status: the old primary is down');
is( status_value(
		$witness, 'primary',
		"(SELECT count(*) FROM hamonitor.status x
		   WHERE x.cluster_name = s.cluster_name
		     AND (x.split_brain OR x.fenced))", $cluster),
	'0',
	'status: no node fenced or in split brain');
is(cluster_primary($witness, $cluster),
	'sb1:2',
	'the cluster row names sb1 as primary on timeline 2');

# give a second (wrong) promotion every chance to happen
wait_seconds($witness, 3);
is(count_events($witness, $cluster, 'promoted'),
	'1', 'exactly one promoted event');
is(in_recovery($sb2), 't', 'sb2 was not promoted meanwhile');
is(count_events($witness, $cluster, 'needs_rejoin'),
	'0', 'no standby flagged needs_rejoin');

# ---------------------------------------------------------------------
# The events were notified on hamonitor_event
# ---------------------------------------------------------------------

ok(wait_for_notification($listener, $first_promoted),
	'the promoted event was notified on hamonitor_event with its event_id');
$listener->quit;

note "events of cluster $cluster:\n" . events_text($witness, $cluster);

done_testing();
