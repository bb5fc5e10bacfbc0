
# Copyright (c) 2026, pg_hamonitor developers

# The probe worker against a live primary and standby: health, role,
# timeline, LSNs, WAL receiver, events and their NOTIFY, history across a
# witness restart, unregistration, reload of probe_interval, and a password
# that must never leak out of hamonitor.node.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my ($primary, $standby) =
  create_ha_cluster(primary => 'primary', standbys => ['standby']);
my $witness = create_witness('witness');

# LISTEN before anything happens, to see the NOTIFY of the worker's events
my $listener = start_event_listener($witness);

# ---------------------------------------------------------------------
# Both nodes are probed: health, role, timeline, system identifier
# ---------------------------------------------------------------------

ok(register_ha_cluster($witness, 'main', $primary, $standby),
	'primary reaches health up with role primary, standby with role standby');

is( $witness->safe_psql(
		'postgres',
		"SELECT string_agg(node_name || ':' || timeline, ',' ORDER BY node_name)
		   FROM hamonitor.status WHERE cluster_name = 'main'"),
	'primary:1,standby:1',
	'both nodes report timeline 1');

my $sysid = $primary->safe_psql('postgres',
	'SELECT system_identifier FROM pg_control_system()');
is( $witness->safe_psql(
		'postgres',
		"SELECT string_agg(n.node_name || ':' || s.system_identifier
		                   || ':' || s.sysid_mismatch, ',' ORDER BY n.node_name)
		   FROM hamonitor.node n JOIN hamonitor.node_state s USING (node_id)
		  WHERE n.cluster_name = 'main'"),
	"primary:$sysid:false,standby:$sysid:false",
	'both nodes carry the primary\'s system identifier, no mismatch');
is(cluster_value($witness, 'main', 'system_identifier'),
	$sysid,
	'the cluster learnt its system identifier from the probes');

is( status_value(
		$witness, 'primary',
		'current_lsn IS NOT NULL AND flush_lsn IS NOT NULL
		 AND receive_lsn IS NULL AND replay_lsn IS NULL'),
	't',
	'primary reports current and flush LSN only');
is( status_value(
		$witness, 'standby',
		'receive_lsn IS NOT NULL AND replay_lsn IS NOT NULL
		 AND current_lsn IS NULL AND lag_bytes IS NOT NULL'),
	't',
	'standby reports receive and replay LSN and a lag');

# ---------------------------------------------------------------------
# Events and NOTIFY for the first health_up
# ---------------------------------------------------------------------

is( event_value(
		$witness, 'main', 'health_up',
		"string_agg(DISTINCT node_name, ',' ORDER BY node_name)"),
	'primary,standby',
	'a health_up event for each node');

my $first_up = event_value($witness, 'main', 'health_up', 'min(event_id)');
ok(wait_for_notification($listener, $first_up),
	'the worker\'s event was notified on hamonitor_event with its event_id');

# ---------------------------------------------------------------------
# LSNs move: write on the primary, the witness sees both nodes follow
# ---------------------------------------------------------------------

my %hist_before = map { split /\|/ } split /\n/,
  $witness->safe_psql(
	'postgres',
	"SELECT node_name, count(*) FROM hamonitor.lsn_history
	  WHERE cluster_name = 'main' GROUP BY node_name");
ok( $hist_before{primary} > 0 && $hist_before{standby} > 0,
	'lsn_history has rows for both nodes');

my $status_lsn_before = status_value($witness, 'primary', 'current_lsn');
$primary->safe_psql('postgres',
	'CREATE TABLE t AS SELECT g FROM generate_series(1, 50000) g');
my $target = $primary->lsn('write');
cmp_ok(
	$primary->safe_psql(
		'postgres', "SELECT pg_wal_lsn_diff('$target', '$status_lsn_before')"),
	'>', 0,
	'the write moved the primary past the LSN shown in status');

ok(wait_for_status($witness, 'primary', "current_lsn >= '$target'"),
	'status shows the primary\'s current_lsn advance');
ok( wait_for_status(
		$witness, 'standby',
		"replay_lsn >= '$target' AND receive_lsn >= '$target'"),
	'status shows the standby\'s receive and replay LSN catch up');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FILTER (WHERE node_name = 'primary'
		                          AND current_lsn >= '$target') > 0
		    AND count(*) FILTER (WHERE node_name = 'standby'
		                          AND replay_lsn >= '$target') > 0
		    AND count(*) FILTER (WHERE node_name = 'primary')
		        > $hist_before{primary} + 3
		    AND count(*) FILTER (WHERE node_name = 'standby')
		        > $hist_before{standby} + 3
		   FROM hamonitor.lsn_history WHERE cluster_name = 'main'"),
	'lsn_history grows for both nodes and records the new LSNs');
ok(wait_for_status($witness, 'standby', 'lag_bytes = 0'),
	'the standby\'s lag drops to zero once idle');

# ---------------------------------------------------------------------
# Connections: application_name, WAL receiver, upstream
# ---------------------------------------------------------------------

ok(wait_for_worker_sessions($primary, 'main', 'primary', 1),
	'exactly one worker connection named pg_hamonitor/main/primary on the primary'
);
ok(wait_for_worker_sessions($standby, 'main', 'standby', 1),
	'exactly one worker connection named pg_hamonitor/main/standby on the standby'
);

ok(wait_for_status($witness, 'standby', "wal_receiver_status = 'streaming'"),
	'standby WAL receiver is streaming');
is( status_value($witness, 'standby', 'upstream_host || \':\' || upstream_port'),
	$primary->host . ':' . $primary->port,
	'standby upstream is the primary\'s host and port');

# ---------------------------------------------------------------------
# Standby goes down and comes back
# ---------------------------------------------------------------------

my $last_event = last_event_id($witness);
$standby->stop;
ok( wait_for_status(
		$witness, 'standby',
		"health = 'down' AND failures > 0 AND last_error IS NOT NULL"),
	'stopped standby turns health down with failures and an error');
ok( wait_for_event(
		$witness, 'main', 'health_down', "node_name = 'standby'", $last_event),
	'a health_down event for the standby');
is(count_events($witness, 'main', 'health_down', "node_name = 'primary'"),
	'0',
	'no health_down event for the primary');
is(status_value($witness, 'primary', 'health'),
	'up', 'the primary is still up meanwhile');
my $down_event = event_value($witness, 'main', 'health_down', 'max(event_id)',
	"node_name = 'standby'");

$standby->start;
ok( wait_for_status(
		$witness, 'standby',
		"health = 'up' AND role = 'standby' AND failures = 0"),
	'restarted standby turns health up again');
ok( wait_for_event(
		$witness, 'main', 'health_up', "node_name = 'standby'", $down_event),
	'a health_up event for the standby after its health_down');

# ---------------------------------------------------------------------
# Witness restart: history kept, probing resumes
# ---------------------------------------------------------------------

my $rows_before_restart =
  $witness->safe_psql('postgres', 'SELECT count(*) FROM hamonitor.probe_history');
$listener->quit;
$witness->restart;
my $restart_time = $witness->safe_psql('postgres', 'SELECT now()');
cmp_ok(
	$witness->safe_psql('postgres', 'SELECT count(*) FROM hamonitor.probe_history'),
	'>=', $rows_before_restart,
	'probe history survives a restart of the witness');
ok(wait_for_probed_since($witness, 'main', $restart_time, 2),
	'both nodes are probed successfully again after the restart');

# ---------------------------------------------------------------------
# probe_interval is reloaded on SIGHUP
# ---------------------------------------------------------------------

# successful probes of the primary between two witness timestamps
sub probes_between
{
	my ($from, $to) = @_;
	return $witness->safe_psql(
		'postgres',
		"SELECT count(*) FROM hamonitor.lsn_history
		  WHERE cluster_name = 'main' AND node_name = 'primary' AND success
		    AND probed_at >= '$from' AND probed_at < '$to'");
}

my $window = 4;    # seconds
my $fast   = probes_between(wait_seconds($witness, $window));

ok(set_witness_guc($witness, 'probe_interval', '2s'),
	'probe_interval reloaded');
# let the worker finish the wait it was in when signalled
wait_seconds($witness, 1);
my $slow = probes_between(wait_seconds($witness, $window));

ok(reset_witness_guc($witness, 'probe_interval', "${PROBE_INTERVAL_MS}ms"),
	'probe_interval reset');
wait_seconds($witness, 2.5);
my $fast_again = probes_between(wait_seconds($witness, $window));

note "probes in ${window}s: $fast at 200ms, $slow at 2s, $fast_again at 200ms";
my $expected_fast = $window * 1000 / $PROBE_INTERVAL_MS;
cmp_ok($fast, '>=', $expected_fast / 2,
	'at 200ms, at least half the expected probes');
cmp_ok($slow, '<=', $window / 2 + 2,
	'after reload to 2s, no more probes than 2s allows (with margin)');
cmp_ok($slow, '<', $fast / 2, 'the probe rate dropped after the reload');
cmp_ok($fast_again, '>=', $expected_fast / 2,
	'the probe rate came back after resetting probe_interval');

# ---------------------------------------------------------------------
# A password in a conninfo never leaves hamonitor.node
# ---------------------------------------------------------------------

# The secret is spelt whole only in the registering statement, which is not
# logged (log_statement = all is on); every query looking for it builds it
# with || so the server logs cannot contain it because of the test itself.
my $secret_sql = "'secretpw_' || 'XYZ'";
$witness->safe_psql(
	'postgres', sprintf(
		"SET log_statement = 'none';
		 SELECT hamonitor.register_node('withpw', %s, 'pw');",
		quote_literal(
			$primary->connstr('postgres') . ' password=secretpw_XYZ')));
ok(wait_for_status($witness, 'withpw', "health = 'up'", 'pw'),
	'node registered with a password is probed (trust auth)');
like(status_value($witness, 'withpw', 'conninfo', 'pw'),
	qr/password=\*{8}/, 'status shows the password masked');
is( $witness->safe_psql(
		'postgres',
		"SELECT (SELECT count(*) FROM hamonitor.node
		          WHERE strpos(conninfo, $secret_sql) > 0)"),
	'1',
	'the password is stored in hamonitor.node (sanity check of the search)');
# wait for a few more probes (and a chance to log about them)
ok(wait_for_more_probes($witness, "cluster_name = 'pw'", 3),
	'node with a password keeps being probed');
is( $witness->safe_psql(
		'postgres',
		"SELECT (SELECT count(*) FROM hamonitor.status s
		          WHERE strpos(s::text, $secret_sql) > 0)
		      + (SELECT count(*) FROM hamonitor.events e
		          WHERE strpos(e::text, $secret_sql) > 0)
		      + (SELECT count(*) FROM hamonitor.lsn_history h
		          WHERE strpos(h::text, $secret_sql) > 0)
		      + (SELECT count(*) FROM hamonitor.node_state ns
		          WHERE strpos(ns::text, $secret_sql) > 0)"),
	'0',
	'the password appears in none of status, events, lsn_history, node_state');
is( $primary->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity
		  WHERE strpos(application_name, $secret_sql) > 0
		     OR strpos(query, $secret_sql) > 0"),
	'0',
	'the password is not visible in pg_stat_activity on the probed node');

foreach my $node ($witness, $primary, $standby)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/secretpw_XYZ/,
		'the password is not in the log of ' . $node->name);
}

# ---------------------------------------------------------------------
# Unregistering a node drops its state and closes its connection
# ---------------------------------------------------------------------

ok(wait_for_worker_sessions($primary, 'main', 'primary', 1),
	'the worker is connected to the primary before unregistering it');
$witness->safe_psql('postgres',
	"SELECT hamonitor.unregister_node('primary', 'main')");
is( $witness->safe_psql(
		'postgres',
		"SELECT (SELECT count(*) FROM hamonitor.status
		          WHERE cluster_name = 'main' AND node_name = 'primary')
		      + (SELECT count(*) FROM hamonitor.lsn_history
		          WHERE cluster_name = 'main' AND node_name = 'primary')"),
	'0',
	'the unregistered node is gone from status and lsn_history');
is(count_events($witness, 'main', 'unregistered', "node_name = 'primary'"),
	'1',
	'an unregistered event is recorded');
ok(wait_for_worker_sessions($primary, 'main', 'primary', 0),
	'the worker closed its connection to the unregistered node');
ok(wait_for_worker_sessions($primary, 'pw', 'withpw', 1),
	'the other node on the same server is still connected');
ok(wait_for_status($witness, 'standby', "health = 'up'"),
	'the remaining node of the cluster is still probed');

done_testing();
