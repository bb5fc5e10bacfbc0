
# Copyright (c) 2026, pg_hamonitor developers

# Probe history older than pg_hamonitor.history_retention is purged by the
# worker, in batches of pg_hamonitor.history_purge_batch rows, and newer
# history is kept.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $peer    = create_node('peer');
my $witness = create_witness('witness',
	extra_conf => "pg_hamonitor.history_purge_batch = 100");
is($witness->safe_psql('postgres', 'SHOW pg_hamonitor.history_retention'),
	'7d', 'default retention is 7 days');

# rows of probe_history where the SQL condition holds
sub history_rows
{
	my ($cond) = @_;
	return $witness->safe_psql('postgres',
		"SELECT count(*) FROM hamonitor.probe_history WHERE $cond");
}

my $node_id =
  register_node($witness, 'peer', $peer->connstr('postgres'), 'main');
ok(wait_for_status($witness, 'peer', "health = 'up'"), 'peer is probed');

# fake history: 1000 rows past the retention, 50 within it
$witness->safe_psql(
	'postgres', qq{
	INSERT INTO hamonitor.probe_history (node_id, probed_at, success)
	SELECT $node_id, now() - interval '8 days' - g * interval '1 s', true
	  FROM generate_series(1, 1000) g;
	INSERT INTO hamonitor.probe_history (node_id, probed_at, success)
	SELECT $node_id, now() - interval '6 days' - g * interval '1 s', true
	  FROM generate_series(1, 50) g;});

ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM hamonitor.probe_history
		  WHERE probed_at < now() - interval '7 days'", '0'),
	'history older than history_retention is purged');
is( history_rows(
		"probed_at BETWEEN now() - interval '6 days 1 hour'
		               AND now() - interval '6 days'"),
	'50',
	'history within history_retention is kept');
cmp_ok(history_rows("probed_at > now() - interval '1 hour'"), '>', 0,
	'recent probes are kept');

# a shorter retention, set by reload, is obeyed too
$witness->safe_psql('postgres', qq{
	INSERT INTO hamonitor.probe_history (node_id, probed_at, success)
	SELECT $node_id, now() - interval '2 hours' - g * interval '1 s', true
	  FROM generate_series(1, 300) g;});
ok(set_witness_guc($witness, 'history_retention', '1h'),
	'history_retention reloaded as 1h');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM hamonitor.probe_history
		  WHERE probed_at < now() - interval '1 hour'", '0'),
	'after reloading history_retention = 1h, older history is purged');
cmp_ok(history_rows("probed_at > now() - interval '1 hour'"), '>', 0,
	'recent probes are still kept');
ok(wait_for_status($witness, 'peer', "health = 'up'"),
	'the peer is still probed');

done_testing();
