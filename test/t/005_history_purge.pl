
# Copyright (c) 2026, pg_hamonitor developers

# Probe history older than pg_hamonitor.history_retention is purged by the
# worker, in batches of pg_hamonitor.history_purge_batch rows, and newer
# history is kept.  With pg_hamonitor.history_interval, a node whose probes
# say nothing new makes one row per interval, and a change (the node goes
# down, comes back) is kept with the probe before it and every probe after
# it for one interval.

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

# ---------------------------------------------------------------------
# history_interval
# ---------------------------------------------------------------------

is($witness->safe_psql('postgres',
		"SELECT boot_val FROM pg_settings WHERE name = 'pg_hamonitor.history_interval'"),
	'10000', 'history_interval is 10s by default');
is($witness->safe_psql('postgres', 'SHOW pg_hamonitor.history_interval'),
	'0', 'the test witness keeps every probe (create_witness sets 0)');
ok(set_witness_guc($witness, 'history_interval', '2s'),
	'history_interval reloaded as 2s');
wait_seconds($witness, 1);    # the worker has reloaded too
my ($from, $to) = wait_seconds($witness, 6);
my $steady = history_rows("node_id = $node_id AND probed_at BETWEEN '$from' AND '$to'");
note "steady node, 6 s at a probe every ${PROBE_INTERVAL_MS} ms: $steady rows";
cmp_ok($steady, '>=', 2, 'a steady node still makes a row per interval');
cmp_ok($steady, '<=', 4, 'and no more (not one per probe)');
cmp_ok(status_value($witness, 'peer', 'extract(epoch FROM now() - last_probe_at)'),
	'<', 1, 'the node itself is still probed at probe_interval');

# a change: the node goes down, then comes back.  With an interval of an
# hour, a steady node's last row is from before this reload: only the
# rule "the probe before a change" keeps a row just before the failure.
ok(set_witness_guc($witness, 'history_interval', '1h'),
	'history_interval reloaded as 1h');
my ($quiet_from) = wait_seconds($witness, 2);
my $mark = last_event_id($witness);
$peer->stop('fast');
ok(wait_for_status($witness, 'peer', "health = 'down'"), 'peer is down');
cmp_ok(history_rows("node_id = $node_id AND NOT success AND probed_at > '$to'"),
	'>=', 1, 'the failed probe that changed the node is kept');
my $before_gap = $witness->safe_psql(
	'postgres', "SELECT extract(epoch FROM f.at - (
	     SELECT max(probed_at) FROM hamonitor.probe_history
	      WHERE node_id = $node_id AND success AND probed_at < f.at))
	   FROM (SELECT min(probed_at) AS at FROM hamonitor.probe_history
	          WHERE node_id = $node_id AND NOT success
	            AND probed_at > '$quiet_from') f");
note "last successful row ${before_gap}s before the first failed one";
cmp_ok($before_gap, '<', 1,
	'the probe just before the change is kept too');
$peer->start;
ok(wait_for_event($witness, 'main', 'health_up', "node_name = 'peer'", $mark),
	'peer is up again');
wait_seconds($witness, 3);
my $first_ok = "(SELECT min(probed_at) FROM hamonitor.probe_history
                  WHERE node_id = $node_id AND success AND probed_at > '$to'
                    AND probed_at > (SELECT max(probed_at) FROM hamonitor.probe_history
                                      WHERE node_id = $node_id AND NOT success))";
cmp_ok(
	$witness->safe_psql(
		'postgres', "SELECT abs(extract(epoch FROM $first_ok - max(event_time)))
		   FROM hamonitor.events
		  WHERE node_name = 'peer' AND kind = 'health_up' AND event_id > $mark"),
	'<', 1, 'the first successful probe after the outage is kept');
my $after = history_rows("node_id = $node_id AND success
	  AND probed_at >= $first_ok AND probed_at < $first_ok + interval '2 s'");
note "rows in the 2 s after the change: $after";
cmp_ok($after, '>=', 5,
	'every probe is kept for one interval after the change');
ok(reset_witness_guc($witness, 'history_interval', '0'),
	'history_interval back to 0');

# Event counters (hamonitor.event_count, one row per inserting backend) of
# a backend that is gone are folded by probe worker 0 after its history
# purge, without any HTTP scrape: the table does not grow per session.
my ($pid, $own) = split /\|/, $witness->safe_psql('postgres',
	"SELECT hamonitor.set_maintenance('peer', true, 'main');
	 SELECT hamonitor.set_maintenance('peer', false, 'main');
	 SELECT pg_backend_pid(), sum(events) FROM hamonitor.event_count
	  WHERE backend_pid = pg_backend_pid()");
is($own, '2', 'a session inserting two events has a counter row of its own');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) FROM hamonitor.event_count WHERE backend_pid = $pid",
		'0'),
	'the gone session\'s counter row is folded by the probe worker');
is( $witness->safe_psql(
		'postgres',
		"SELECT (SELECT sum(events) FROM hamonitor.event_count
		          WHERE kind IN ('maintenance_on', 'maintenance_off'))
		      = (SELECT count(*) FROM hamonitor.event
		          WHERE kind IN ('maintenance_on', 'maintenance_off'))"),
	't', 'and the counts still match the events');

done_testing();
