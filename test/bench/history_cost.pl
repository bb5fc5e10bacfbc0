#!/usr/bin/perl
#
# history_cost.pl - what keeping probe history costs, and whether it slows
# down the views and the probes
#
# What it measures: a witness running pg_hamonitor at its DEFAULT settings
# probes 101 nodes (a node "healthy" in cluster "live", and "n1".."n100",
# each in a cluster of its own, all pointing at one real server on
# loopback).  The script then inserts --rows history rows (default 10
# million; --quick: 100 000) straight into hamonitor.probe_history with
# generate_series, spread over n1..n100, one row per node per second going
# back from now (the shape of a live primary's probe rows, copied from one),
# then VACUUM ANALYZE, and reports:
#   bytes_per_row        pg_total_relation_size(probe_history) / count(*)
#                        (heap and indexes), and the heap alone
#   rows per node per day at the default probe_interval (86400 at 1 s), and
#                        what that makes per node per day and for the
#                        default retention
#   status_ms            SELECT * FROM hamonitor.status, 20 runs in one
#                        psql session, \timing (client side, rows fetched)
#                        target: median < 10 ms
#   last_hour_ms         SELECT * FROM hamonitor.lsn_history WHERE
#                        node_name = 'n50' AND probed_at > now() - 1 hour,
#                        same way; target: median < 20 ms
#   probe gaps           max time between two consecutive probes of
#                        "healthy" (from its history rows) during a window
#                        with nothing to purge (baseline), and during a
#                        retention purge of the big table (history_retention
#                        set to 10min with ALTER SYSTEM + reload, purge
#                        watched for --purge-window seconds, default 120;
#                        --quick 20): the purge must not block probing, so
#                        the gap should stay near probe_interval (1 s)
#   idle_purge_*_ms      the worker's purge DELETE, prepared with parameters
#                        as SPI does, at the default retention (nothing to
#                        purge), 3 runs each with a custom and a generic
#                        plan: the worker runs it every 10 s, in its probe
#                        loop, and the plan cache may pick the generic plan
#   purge rate           rows purged per second during that window (the
#                        purge counts as complete once no node has rows
#                        older than 10 min 15 s)
#   history_interval     then pg_hamonitor.history_interval is set to
#                        --history-interval (default 10s) and, over
#                        --interval-window seconds (default 60; --quick 6,
#                        with --history-interval 2s),
#                        the rows the live nodes actually make are counted:
#                        rows and bytes per node per day (at bytes_per_row),
#                        and what that makes per day for 1,000 and 10,000
#                        nodes, beside the same at every probe (0)
#
# How to run (as a non-root user, from a copy of the tree it can write; the
# extension installed with make install):
#   perl test/bench/history_cost.pl [--rows N] [--runs R] [--purge-window S]
#        [--baseline-window S] [--quick]
# or, as root, test/bench/run-all.sh (copies the tree, runs as postgres).
#
# Output: RESULT lines, e.g.
#   RESULT history_cost status_ms median=2.100ms p95=2.500ms max=3.000ms n=20 target: median<=10ms
#
# Copyright (c) 2026, pg_hamonitor developers

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use lib "$FindBin::RealBin/../perl";
use lib '/usr/lib/postgresql/15/lib/pgxs/src/test/perl';
use HamonBench;
use HamonTest;

use POSIX ();
use Time::HiRes qw(time usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

my %opt = bench_options(
	{
		rows            => 10_000_000,
		runs            => 20,
		purge_window    => 120,
		baseline_window => 30,
		nodes           => 100,
		history_interval => '10s',
		interval_window => 60
	},
	'rows=i', 'runs=i', 'purge_window|purge-window=f',
	'baseline_window|baseline-window=f', 'nodes=i',
	'history_interval|history-interval=s',
	'interval_window|interval-window=f');
if ($opt{quick})
{
	$opt{rows}            = 100_000 unless defined $opt{given}{rows};
	$opt{purge_window}    = 20      unless defined $opt{given}{purge_window};
	$opt{baseline_window} = 10      unless defined $opt{given}{baseline_window};
	$opt{interval_window} = 6       unless defined $opt{given}{interval_window};
	$opt{history_interval} = '2s'   unless defined $opt{given}{history_interval};
}

my $script = 'history_cost';
my $nodes = $opt{nodes};
my $per_node = int($opt{rows} / $nodes);

my $server  = create_node('server');
my $witness = create_witness('witness', defaults => 1);
my $conn = $server->connstr('postgres');

register_node($witness, 'healthy', $conn, 'live');
$witness->safe_psql('postgres',
	sprintf("SELECT count(hamonitor.register_node('n' || g, %s, 'h' || g))
	           FROM generate_series(1, %d) g", quote_literal($conn), $nodes));
poll_until($witness,
	"SELECT count(*) = " . ($nodes + 1)
	  . " FROM hamonitor.status WHERE health = 'up' AND role = 'primary'",
	't', 120)
  or die "the witness did not see all nodes up\n";

my $interval_ms = $witness->safe_psql('postgres',
	"SELECT setting FROM pg_settings WHERE name = 'pg_hamonitor.probe_interval'");
my $retention_min = $witness->safe_psql('postgres',
	"SELECT setting FROM pg_settings WHERE name = 'pg_hamonitor.history_retention'");
my $healthy_id = $witness->safe_psql('postgres',
	"SELECT node_id FROM hamonitor.node WHERE node_name = 'healthy'");
poll_until($witness,
	"SELECT count(*) > 0 FROM hamonitor.probe_history
	  WHERE node_id = $healthy_id AND success",
	't', 30)
  or die "no successful probe of healthy in the history\n";

# ---------------------------------------------------------------------
# Fill the history
# ---------------------------------------------------------------------

my $t = time();
$witness->safe_psql(
	'postgres', sprintf(
		"SET session_replication_role = replica;  -- no FK trigger per row
		 INSERT INTO hamonitor.probe_history
		 SELECT n.node_id, now() - k * interval '%d ms',
		        t.success, t.latency_ms * (0.5 + random()), t.role, t.timeline,
		        t.current_lsn, t.flush_lsn,
		        t.receive_lsn, t.replay_lsn, t.last_replay_at,
		        t.error_sqlstate, t.error
		   FROM (SELECT * FROM hamonitor.probe_history
		          WHERE node_id = %d AND success
		          ORDER BY probed_at DESC LIMIT 1) t,
		        generate_series(%d, 1, -1) k,
		        (SELECT node_id FROM hamonitor.node
		          WHERE node_name ~ '^n[0-9]+\$' ORDER BY node_id) n",
		$interval_ms, $healthy_id, $per_node),
	timeout => 3600);
my $t_insert = time() - $t;
$t = time();
$witness->safe_psql('postgres', 'VACUUM ANALYZE hamonitor.probe_history',
	timeout => 3600);
# and fresh statistics of the small tables, as autovacuum would give them
$witness->safe_psql('postgres',
	'ANALYZE hamonitor.node, hamonitor.node_state, hamonitor.cluster, hamonitor.slot_state');
my $t_vacuum = time() - $t;

my ($count, $total, $heap) = split /\|/,
  $witness->safe_psql(
	'postgres',
	"SELECT count(*), pg_total_relation_size('hamonitor.probe_history'),
	        pg_relation_size('hamonitor.probe_history')
	   FROM hamonitor.probe_history");
my $per_row      = $total / $count;
my $heap_per_row = $heap / $count;
my $rows_per_day = 86_400_000 / $interval_ms;
say_out(sprintf('# inserted %d rows in %.1fs (%.0f rows/s), VACUUM ANALYZE %.1fs; %d rows in probe_history, %.1f MB (heap %.1f MB)',
	$nodes * $per_node, $t_insert, $nodes * $per_node / $t_insert, $t_vacuum,
	$count, $total / 1048576, $heap / 1048576));
say_out(sprintf('RESULT %s bytes_per_row total=%.1fB heap=%.1fB rows=%d',
	$script, $per_row, $heap_per_row, $count));
say_out(sprintf('RESULT %s rows_per_node_per_day=%d at probe_interval=%sms: %.1f MB per node per day, %.1f MB per node for history_retention=%smin',
	$script, $rows_per_day, $interval_ms, $rows_per_day * $per_row / 1048576,
	$rows_per_day * $per_row * $retention_min / 1440 / 1048576, $retention_min));

# ---------------------------------------------------------------------
# Query times
# ---------------------------------------------------------------------

my $q_status = 'SELECT * FROM hamonitor.status';
my $q_hour = "SELECT * FROM hamonitor.lsn_history WHERE node_name = 'n50'"
  . " AND probed_at > now() - interval '1 hour'";
$q_hour =~ s/n50/n1/ if $nodes < 50;
foreach my $q ($q_status, $q_hour)
{
	print "EXPLAIN ANALYZE $q:\n"
	  . $witness->safe_psql('postgres', "EXPLAIN (ANALYZE, BUFFERS) $q") . "\n";
}
psql_timings($witness, $q_status, 2);    # warm the caches
psql_timings($witness, $q_hour,   2);
my @status_ms = psql_timings($witness, $q_status, $opt{runs});
my @hour_ms   = psql_timings($witness, $q_hour,   $opt{runs});
my $hour_rows = $witness->safe_psql('postgres',
	"SELECT count(*) FROM ($q_hour) s");
say_out("# the last-hour query returns $hour_rows rows; status "
	  . ($nodes + 1) . ' rows');

# ---------------------------------------------------------------------
# Probe gaps of "healthy": baseline, then during a purge
# ---------------------------------------------------------------------

# max gap between consecutive probes of healthy in [from, to] (epoch s),
# and the number of probes
sub probe_gaps
{
	my ($from, $to) = @_;
	return split /\|/,
	  $witness->safe_psql(
		'postgres',
		sprintf(
			"SELECT coalesce(max(gap), 0), count(*) FROM (
			   SELECT extract(epoch FROM probed_at - lag(probed_at) OVER (ORDER BY probed_at)) AS gap
			     FROM hamonitor.probe_history
			    WHERE node_id = %d
			      AND probed_at BETWEEN to_timestamp(%.6f) AND to_timestamp(%.6f)) s",
			$healthy_id, $from, $to));
}

# the 3 largest gaps in [from, to], with when they ended, for the log
sub largest_gaps
{
	my ($from, $to) = @_;
	return $witness->safe_psql(
		'postgres',
		sprintf(
			"SELECT string_agg(format('%%ss ending %%s', round(gap::numeric, 3), probed_at::time), ', ')
			   FROM (SELECT gap, probed_at FROM (
			   SELECT extract(epoch FROM probed_at - lag(probed_at) OVER (ORDER BY probed_at)) AS gap, probed_at
			     FROM hamonitor.probe_history
			    WHERE node_id = %d
			      AND probed_at BETWEEN to_timestamp(%.6f) AND to_timestamp(%.6f)) s
			    WHERE gap IS NOT NULL ORDER BY gap DESC LIMIT 3) t",
			$healthy_id, $from, $to));
}

# what else ran: autovacuum of probe_history, checkpoints
sub background_activity
{
	return $witness->safe_psql(
		'postgres',
		"SELECT format('autovacuum %s, autoanalyze %s, checkpoints timed %s req %s',
		               coalesce(last_autovacuum::time::text, 'never'),
		               coalesce(last_autoanalyze::time::text, 'never'),
		               checkpoints_timed, checkpoints_req)
		   FROM pg_stat_user_tables, pg_stat_bgwriter
		  WHERE relid = 'hamonitor.probe_history'::regclass");
}

sub healthy_downs
{
	my ($from) = @_;
	return $witness->safe_psql(
		'postgres',
		sprintf(
			"SELECT count(*) FROM hamonitor.events
			  WHERE node_name = 'healthy' AND kind = 'health_down'
			    AND event_time >= to_timestamp(%.6f)", $from));
}

print "EXPLAIN of the purge's row selection:\n"
  . $witness->safe_psql(
	'postgres',
	"EXPLAIN SELECT ctid FROM hamonitor.probe_history
	  WHERE probed_at < now() - 10 * interval '1 minute' LIMIT 5000")
  . "\n";

# what the worker's purge costs when it has nothing to purge (it runs
# every 10 s, in its probe loop): its exact DELETE (catalog.c), prepared
# with parameters as SPI_prepare does, at the default retention (nothing
# is that old: it deletes nothing), with the plan the plan cache picks for
# the first runs (custom) and the one it may switch to (generic)
my $purge_sql = "DELETE FROM hamonitor.probe_history WHERE ctid = ANY"
  . " (ARRAY(SELECT ctid FROM hamonitor.probe_history"
  . "   WHERE probed_at < now() - \$1 * interval '1 minute' LIMIT \$2))";
my $purge_batch = $witness->safe_psql('postgres',
	"SELECT setting FROM pg_settings WHERE name = 'pg_hamonitor.history_purge_batch'");
my $purge_args = "$retention_min, $purge_batch";
my %idle_ms;
foreach my $mode (qw(custom generic))
{
	my $setup = "SET plan_cache_mode = force_${mode}_plan;\n"
	  . "PREPARE hamon_purge(integer, integer) AS $purge_sql;";
	print "EXPLAIN ANALYZE EXECUTE hamon_purge($purge_args), $mode plan:\n"
	  . $witness->safe_psql('postgres',
		"$setup\nEXPLAIN (ANALYZE, BUFFERS) EXECUTE hamon_purge($purge_args)")
	  . "\n";
	$idle_ms{$mode} =
	  [ psql_timings($witness, "EXECUTE hamon_purge($purge_args)", 3, $setup) ];
}

my $b0 = time();
usleep($opt{baseline_window} * 1e6);
my $b1 = time();
my ($base_gap, $base_n) = probe_gaps($b0, $b1);
say_out(sprintf('# baseline (nothing to purge, retention %smin): %d probes of healthy in %.0fs, max gap %.3fs',
	$retention_min, $base_n, $b1 - $b0, $base_gap));
say_out('#   largest gaps: ' . largest_gaps($b0, $b1)
	  . '; window ' . join('-', map { POSIX::strftime('%H:%M:%S', gmtime($_)) } ($b0, $b1))
	  . ' UTC; ' . background_activity());

my $old_cond = "probed_at < now() - interval '10 min'";
my $to_purge = $witness->safe_psql('postgres',
	"SELECT count(*) FROM hamonitor.probe_history WHERE $old_cond");
my $p0 = time();
set_witness_guc($witness, 'history_retention', '10min')
  or die "could not set history_retention\n";
my ($left, $p_done) = ($to_purge, undef);
my $end = $p0 + $opt{purge_window};
while (time() < $end)
{
	usleep(2_000_000);
	# one index probe per node: cheap even on a table full of dead rows
	my $oldest = $witness->safe_psql(
		'postgres',
		"SELECT coalesce(min(m), 'infinity') > now() - interval '10 min 15 s'
		   FROM (SELECT (SELECT min(probed_at) FROM hamonitor.probe_history h
		                  WHERE h.node_id = n.node_id) AS m
		           FROM hamonitor.node n) s");
	if ($oldest eq 't')
	{
		$p_done = time();
		last;
	}
}
my $p1 = time();
my ($purge_gap, $purge_n) = probe_gaps($p0, $p1);
say_out('#   largest gaps during the purge: ' . largest_gaps($p0, $p1)
	  . '; ' . background_activity());
my $downs = healthy_downs($p0);
$left = $witness->safe_psql('postgres',
	"SELECT count(*) FROM hamonitor.probe_history WHERE $old_cond");
my $purged = $to_purge - $left;
my $rate = $purged / ($p1 - $p0);
say_out(sprintf('# purge: %d rows older than 10 min; %d purged in %.0fs (%.0f rows/s)%s; healthy: %d probes, max gap %.3fs, %d health_down events',
	$to_purge, $purged, $p1 - $p0, $rate,
	defined $p_done ? ', purge complete' : sprintf(', %d left (%s at this rate)', $left,
		$rate > 0 ? sprintf('%.0fs more', $left / $rate) : 'never'),
	$purge_n, $purge_gap, $downs));
say_out('# ' . machine_info());

bench_result($script, 'status_ms', \@status_ms, unit => 'ms', median => 10);
bench_result($script, 'last_hour_ms', \@hour_ms, unit => 'ms', median => 20);
bench_result($script, 'idle_purge_custom_plan_ms', $idle_ms{custom}, unit => 'ms');
bench_result($script, 'idle_purge_generic_plan_ms', $idle_ms{generic}, unit => 'ms');
bench_result($script, 'probe_gap_baseline', [$base_gap],
	max => 2 * $interval_ms / 1000);
bench_result($script, 'probe_gap_during_purge', [$purge_gap],
	max => 2 * $interval_ms / 1000);
say_out(sprintf('RESULT %s purge_rate rows_per_s=%.0f purged=%d of=%d window=%.0fs%s',
	$script, $rate, $purged, $to_purge, $p1 - $p0,
	defined $p_done ? ' complete' : ' incomplete'));
bench_count($script, 'healthy_down_during_purge', $downs, target => 0);

# ---------------------------------------------------------------------
# Rows per node per day with history_interval
# ---------------------------------------------------------------------

# the rows the live nodes made in a window, per node per day
sub rows_per_node_day
{
	my ($window) = @_;
	my ($from, $to) = wait_seconds($witness, $window);
	my ($rows, $nn) = split /\|/,
	  $witness->safe_psql(
		'postgres',
		"SELECT count(*), count(DISTINCT node_id) FROM hamonitor.probe_history
		  WHERE probed_at > '$from' AND probed_at <= '$to'");
	return $nn ? $rows / $nn * 86_400 / $window : 0;
}

set_witness_guc($witness, 'history_interval', '0')
  or die "could not set history_interval\n";
wait_seconds($witness, 2);
my $every = rows_per_node_day($opt{interval_window});
set_witness_guc($witness, 'history_interval', $opt{history_interval})
  or die "could not set history_interval\n";
wait_seconds($witness, 2);
my $thinned = rows_per_node_day($opt{interval_window});
foreach my $case ([ '0', $every ], [ $opt{history_interval}, $thinned ])
{
	my ($hi, $rows) = @$case;
	my $bytes = $rows * $per_row;
	say_out(sprintf('RESULT %s history_interval=%s rows_per_node_per_day=%.0f bytes_per_node_per_day=%.1fMB 1000_nodes=%.2fGB/day 10000_nodes=%.1fGB/day (measured over %ss, %.1fB per row)',
		$script, $hi, $rows, $bytes / 1048576, $bytes * 1000 / 1073741824,
		$bytes * 10_000 / 1073741824, $opt{interval_window}, $per_row));
}
exit 0;
