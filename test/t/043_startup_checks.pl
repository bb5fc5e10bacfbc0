
# Copyright (c) 2026, pg_hamonitor developers

# The limits a witness needs are checked, with a clear message:
#  - registering a node its probe worker cannot hold a connection to (a
#    third of the worker's safe descriptors, less those its latch and wait
#    sets take) is refused with 53400, before anything is written; a worker
#    given as many nodes as that holds a connection to each; the count is
#    per worker, and the worker is the one that probes the cluster;
#  - a worker that finds more nodes than it can hold in the registry (after
#    pg_hamonitor.workers or max_files_per_process was lowered) says so in
#    a WARNING;
#  - max_worker_processes too low for the probe workers stops the server at
#    start, naming what it needs; room for the probe workers but not for
#    two actions is a WARNING.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

# registers node $name in its own cluster $name; returns psql_result's
# ($state, $stdout, $stderr)
sub try_register
{
	my ($witness, $name, $conninfo) = @_;
	return psql_result($witness,
		sprintf('SELECT hamonitor.register_node(%s, %s, %s)',
			quote_literal($name), quote_literal($conninfo),
			quote_literal($name)));
}

# the lowest max_files_per_process PostgreSQL accepts: a worker holds only
# some 14 peer connections
my $witness = create_witness('witness',
	extra_conf => "max_files_per_process = 64\n");
# a live peer, so that the connections are really held
my $peer = PostgreSQL::Test::Cluster->new('peer');
$peer->init;
$peer->append_conf('postgresql.conf', "max_connections = 60\n");
$peer->start;
my $peer_conninfo = sprintf('host=%s port=%d dbname=postgres',
	$peer->host, $peer->port);

# one node per cluster (each its cluster's only primary), until refused
my ($state, $out, $err);
my $capacity = 0;
for my $i (1 .. 100)
{
	($state, $out, $err) = try_register($witness, "p$i", $peer_conninfo);
	last if $state ne 'ok';
	$capacity++;
}
is($state, '53400', 'a node beyond what the worker can hold is refused (53400)')
  or diag($err);
cmp_ok($capacity, '>=', 10, "after $capacity nodes");
my $refused = 'p' . ($capacity + 1);
like(
	$err,
	qr/pg_hamonitor worker 0, which probes cluster "$refused", has $capacity nodes and can hold at most $capacity peer connections/,
	'the message names the worker, its node count and capacity');
like($err,
	qr/DETAIL:  Each peer connection takes a file descriptor\. max_files_per_process \(64\), cut to the open-files limit/,
	'the detail gives the arithmetic');
like($err,
	qr/HINT:  Raise max_files_per_process and the open-files limit .*ulimit -n.*or pg_hamonitor\.workers/,
	'the hint says what to raise');
is( $witness->safe_psql('postgres',
		"SELECT count(*) FROM hamonitor.node WHERE node_name = '$refused'
		  UNION ALL
		 SELECT count(*) FROM hamonitor.cluster WHERE cluster_name = '$refused'"),
	"0\n0",
	'nothing of the refused node is written');

# the capacity is what the worker really holds: each node has its session
# on the peer and is up (none fails with "no file descriptor left")
ok( $peer->poll_query_until('postgres',
		"SELECT count(*) FROM pg_stat_activity
		  WHERE application_name LIKE 'pg_hamonitor/p%'", $capacity),
	"the worker holds all $capacity connections");
ok( $witness->poll_query_until('postgres',
		"SELECT count(*) FROM hamonitor.status WHERE health = 'up'",
		$capacity),
	'and every node is up');

# two workers: each cluster counts against its own worker only, so the
# registry takes twice the capacity, each worker refusing once it is full
$witness->append_conf('postgresql.conf', "pg_hamonitor.workers = 2\n");
$witness->restart;
my %refused_by;
my $more = 0;
for my $i (1 .. 300)
{
	($state, $out, $err) =
	  try_register($witness, "q$i", 'host=127.0.0.1 port=1 dbname=postgres');
	if ($state eq 'ok')
	{
		$more++;
		next;
	}
	last unless $state eq '53400' && $err =~ /pg_hamonitor worker (\d+),/;
	$refused_by{$1}++;
	last if keys %refused_by == 2;
}
is(join(',', sort keys %refused_by), '0,1', 'with 2 workers each refuses once full');
is($witness->safe_psql('postgres', 'SELECT count(*) FROM hamonitor.node'),
	2 * $capacity, "and the registry holds $capacity nodes per worker");

# back to one worker: it finds twice what it can hold in the registry
$witness->append_conf('postgresql.conf', "pg_hamonitor.workers = 1\n");
my $offset = -s $witness->logfile;
$witness->restart;
my $nodes = 2 * $capacity;
ok( $witness->wait_for_log(
		qr/WARNING:  pg_hamonitor worker 0 has $nodes nodes to probe but can hold at most \d+ peer connections/,
		$offset),
	'a worker with more nodes than descriptors says so');
like(
	substr(slurp_file($witness->logfile), $offset),
	qr/HINT:  Raise max_files_per_process and the open-files limit/,
	'with what to raise');
($state, $out, $err) =
  try_register($witness, 'r1', 'host=127.0.0.1 port=1 dbname=postgres');
like($err, qr/pg_hamonitor worker 0, which probes cluster "r1", has $nodes nodes/,
	'and registering is refused');
$peer->stop;

# max_worker_processes: 3 probe workers and the hook worker need 4
$witness->stop;
$witness->append_conf('postgresql.conf',
	"max_files_per_process = 1000\npg_hamonitor.workers = 3\nmax_worker_processes = 3\n");
$offset = -s $witness->logfile;
ok(!$witness->start(fail_ok => 1),
	'the witness does not start with max_worker_processes too low');
like(
	substr(slurp_file($witness->logfile), $offset),
	qr/max_worker_processes \(3\) is too low for pg_hamonitor: it needs 4 background workers/,
	'and says what it needs');

# room for the probe workers but not for two actions: a warning
$witness->append_conf('postgresql.conf', "max_worker_processes = 4\n");
$offset = -s $witness->logfile;
ok($witness->start(fail_ok => 1), 'with 4 it starts');
like(
	substr(slurp_file($witness->logfile), $offset),
	qr/max_worker_processes \(4\) leaves pg_hamonitor fewer than 2 workers for its actions/,
	'with a warning that actions may wait for a worker');

done_testing();
