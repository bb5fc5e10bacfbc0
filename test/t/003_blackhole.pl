
# Copyright (c) 2026, pg_hamonitor developers

# Peers that never answer (a TCP server that accepts and stays silent) and
# refused ports must not delay the probes of a healthy node, and must not
# hold up the shutdown of the witness.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(gettimeofday tv_interval usleep);

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $n_bad = 100;    # of each kind

my $primary = create_node('primary');
my $witness = create_witness('witness');
my $bh      = start_blackhole();
my $refused = refused_port();

register_node($witness, 'primary', $primary->connstr('postgres'), 'main');
ok(wait_for_status($witness, 'primary', "health = 'up'"),
	'healthy primary is probed');

# the bad nodes, registered in one go; the measurement window starts here,
# so it covers the first (hanging) connection attempts to all of them
my ($window_start) = $witness->safe_psql(
	'postgres', sprintf(
		"SELECT clock_timestamp();
		 SELECT count(hamonitor.register_node(
		            format('blackhole_%%s', g),
		            'host=127.0.0.1 port=%d dbname=postgres', 'bad'))
		   FROM generate_series(1, $n_bad) g;
		 SELECT count(hamonitor.register_node(
		            format('refused_%%s', g),
		            'host=127.0.0.1 port=%d dbname=postgres', 'bad'))
		   FROM generate_series(1, $n_bad) g;",
		$bh->{port}, $refused)) =~ /^(.*)$/m;
my (undef, $window_end) = wait_seconds($witness, 5);

# Successful probes of the primary between two witness timestamps, and the
# largest gap (ms) between two of them, counting the edges of the window.
sub primary_probes
{
	my ($from, $to) = @_;
	return split /\|/, $witness->safe_psql(
		'postgres', qq{
	WITH p AS (SELECT probed_at FROM hamonitor.lsn_history
	            WHERE cluster_name = 'main' AND node_name = 'primary'
	              AND success
	              AND probed_at >= '$from' AND probed_at < '$to'),
	     t AS (SELECT probed_at FROM p
	           UNION ALL SELECT '$to'::timestamptz),
	     g AS (SELECT probed_at - lag(probed_at, 1, '$from'::timestamptz)
	                              OVER (ORDER BY probed_at) AS gap
	             FROM t)
	SELECT (SELECT count(*) FROM p),
	       (SELECT round(max(extract(epoch FROM gap)) * 1000) FROM g),
	       round(extract(epoch FROM '$to'::timestamptz
	                              - '$from'::timestamptz) * 1000)});
}

my ($probes, $max_gap_ms, $window_ms) =
  primary_probes($window_start, $window_end);
my $expected = $window_ms / $PROBE_INTERVAL_MS;
note "window ${window_ms}ms: $probes successful probes of the primary "
  . "(interval predicts $expected), largest gap ${max_gap_ms}ms";

cmp_ok($probes, '>=', $expected / 2,
	'with 200 bad peers, the primary still gets at least half its probes');
cmp_ok($max_gap_ms, '<', 5 * $PROBE_INTERVAL_MS,
	'no gap between probes of the primary reaches 5 probe intervals');

# the bad nodes are all down, with an error
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM hamonitor.status
		  WHERE cluster_name = 'bad' AND health = 'down'
		    AND last_error IS NOT NULL AND last_error <> ''",
		2 * $n_bad),
	'all bad nodes are down with a last_error');
is( $witness->safe_psql(
		'postgres',
		"SELECT count(*) FROM hamonitor.status
		  WHERE cluster_name = 'bad' AND health = 'up'"),
	'0',
	'no bad node is up');
cmp_ok(blackhole_accepted($bh), '>=', $n_bad,
	'the black-hole server did receive the connections to its nodes');
is(status_value($witness, 'primary', 'health'), 'up', 'the primary is still up');

# A fresh window, now that the bad nodes are in their reconnect cycle
my ($w2_start, $w2_end) = wait_seconds($witness, 3);
my (undef, $max_gap2_ms) = primary_probes($w2_start, $w2_end);
cmp_ok($max_gap2_ms, '<', 5 * $PROBE_INTERVAL_MS,
	'while the bad nodes reconnect, the primary is still probed on time');

# the black-holed connection attempts are hanging right now (connect_timeout
# and reconnect_backoff_max are both 1s): shutting down must not wait on them
my $accepted = blackhole_accepted($bh);
my $retry = 0;
while (blackhole_accepted($bh) <= $accepted
	&& $retry++ < 10 * $PostgreSQL::Test::Utils::timeout_default)
{
	usleep(100_000);
}
cmp_ok(blackhole_accepted($bh), '>', $accepted,
	'the worker keeps reconnecting to the black-holed nodes');
my $t0 = [gettimeofday];
my $stopped = $witness->stop('fast', fail_ok => 1);
my $elapsed = tv_interval($t0);
note "fast shutdown took ${elapsed}s";
ok($stopped, 'the witness stopped');
cmp_ok($elapsed, '<', 10, 'fast shutdown of the witness is prompt');

stop_helper($bh);

done_testing();
