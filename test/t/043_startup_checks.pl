
# Copyright (c) 2026, pg_hamonitor developers

# The limits a witness needs are checked, with a clear message:
#  - a probe worker given more nodes than it can hold connections (a third
#    of its descriptors, max_files_per_process) says so in a WARNING;
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

# about 100 descriptors: a worker holds some 30 peer connections
my $witness = create_witness('witness',
	extra_conf => "max_files_per_process = 100\n");

# 60 nodes on a port nobody listens on: the count is what matters
$witness->safe_psql('postgres',
	"SELECT count(hamonitor.register_node('n' || g,
	          'host=127.0.0.1 port=1 dbname=postgres', 'c' || g))
	   FROM generate_series(1, 60) g");
ok( $witness->wait_for_log(
		qr/WARNING:  pg_hamonitor worker 0 has 60 nodes to probe but can hold at most \d+ peer connections/
	),
	'a worker with more nodes than descriptors says so');
like(
	slurp_file($witness->logfile),
	qr/HINT:  Raise max_files_per_process and the open-files limit/,
	'with what to raise');

# max_worker_processes: 3 probe workers and the hook worker need 4
$witness->stop;
$witness->append_conf('postgresql.conf',
	"max_files_per_process = 1000\npg_hamonitor.workers = 3\nmax_worker_processes = 3\n");
my $offset = -s $witness->logfile;
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
