
# Copyright (c) 2026, pg_hamonitor developers

# A hot standby of the witness carries the registry but must not probe;
# once promoted, its worker takes over the probing.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $peer = create_node('peer');
my $w1   = create_witness('w1', allows_streaming => 1);

register_node($w1, 'peer', $peer->connstr('postgres'), 'main');
ok(wait_for_status($w1, 'peer', "health = 'up' AND role = 'primary'"),
	'w1 probes the peer');

# pg_hamonitor connections on the peer, whichever witness made them
ok(wait_for_worker_sessions($peer, 'main', 'peer', 1),
	'one worker connection on the peer');

# W2: a physical standby of W1, preloading pg_hamonitor with the same
# settings (postgresql.conf comes with the base backup)
$w1->backup('w1_backup');
my $w2 = PostgreSQL::Test::Cluster->new('w2');
$w2->init_from_backup($w1, 'w1_backup', has_streaming => 1);
$w2->start;
$w1->wait_for_catchup($w2);

is(in_recovery($w2), 't', 'w2 is in recovery');
is($w2->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'pg_hamonitor', 'w2 preloads pg_hamonitor');
is( $w2->safe_psql(
		'postgres', "SELECT count(*) FROM hamonitor.node WHERE node_name = 'peer'"),
	'1',
	'w2 carries the registry');

# Give a probing w2 every chance to show up: many probe intervals, during
# which w1's worker keeps its single connection.
wait_seconds($w2, 3);
is(worker_sessions($peer, 'main', 'peer'),
	'1', 'still a single worker connection on the peer: w2 does not probe');

# Without w1, nobody may be connected.
$w1->stop('fast');
ok(wait_for_worker_sessions($peer, 'main', 'peer', 0),
	'w1\'s connection is gone after stopping it');
wait_seconds($peer, 3);
is(worker_sessions($peer, 'main', 'peer'),
	'0', 'w2, still in recovery, opened no connection to the peer');
my $rows_in_recovery =
  $w2->safe_psql('postgres', 'SELECT count(*) FROM hamonitor.probe_history');

# Promote w2: its worker starts probing.
$w2->promote;
ok(wait_until_promoted($w2), 'w2 promoted');
my $promoted_at = $w2->safe_psql('postgres', 'SELECT now()');
cmp_ok($w2->safe_psql('postgres', 'SELECT count(*) FROM hamonitor.probe_history'),
	'>=', $rows_in_recovery, 'history replicated from w1 is kept on promotion');
ok(wait_for_worker_sessions($peer, 'main', 'peer', 1),
	'w2 connects to the peer once promoted');
ok( $w2->poll_query_until(
		'postgres',
		"SELECT count(*) > 3 FROM hamonitor.lsn_history
		  WHERE node_name = 'peer' AND success AND probed_at > '$promoted_at'"),
	'w2 records new probes of the peer');
ok(wait_for_status($w2, 'peer', "health = 'up' AND role = 'primary'"),
	'w2 shows the peer up');

# and it reacts to changes like w1 did
$peer->stop;
ok(wait_for_status($w2, 'peer', "health = 'down'"),
	'w2 notices the peer going down');
ok( wait_for_event(
		$w2, 'main', 'health_down',
		"node_name = 'peer' AND event_time > '$promoted_at'"),
	'w2 records a health_down event');

done_testing();
