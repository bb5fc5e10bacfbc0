
# Copyright (c) 2026, pg_hamonitor developers

# Connection attempts are paced (probe.c): a worker has at most
# pg_hamonitor.max_connecting_per_peer attempts in flight to one peer
# address, so a black-holed peer with many registered nodes neither gets
# them all at once nor makes the nodes of another peer wait; and an attempt
# whose peer keeps answering, however slowly, is not cut at connect_timeout
# from its start.  The convergence of a witness (re)starting with 1,000
# nodes registered is measured by test/bench/probe_scale.pl.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $n_bh = 16;

# connect_timeout 3s: an attempt to the black hole holds its slot that long,
# a window wide enough to count the attempts in flight on a busy machine
my $witness = create_witness(
	'witness',
	extra_conf => q(
pg_hamonitor.max_connecting = 8
pg_hamonitor.max_connecting_per_peer = 2
pg_hamonitor.connect_timeout = '3s'
));
my $primary = create_node('primary');
my $bh = start_blackhole();

# --------------------------------------------------------------------------
# A black-holed peer with many nodes: two attempts at a time
# --------------------------------------------------------------------------

$witness->safe_psql(
	'postgres', sprintf(
		"SELECT count(hamonitor.register_node(format('bh_%%s', g),
		            'host=127.0.0.1 port=%d dbname=postgres', 'bad'))
		   FROM generate_series(1, %d) g", $bh->{port}, $n_bh));
ok( $witness->poll_query_until(
		'postgres', "SELECT true FROM pg_stat_activity
		  WHERE backend_type = 'pg_hamonitor worker'"),
	'the worker runs');

# the other peer's node, registered after the black-holed ones: it must not
# queue behind them (the worker has slots left; the black hole may not take
# more than its two)
register_node($witness, 'primary', $primary->connstr('postgres'), 'main');
ok(wait_for_status($witness, 'primary', "health = 'up'"),
	'a node of another peer is probed while the black-holed peer has attempts in flight');
my $accepted_when_up = blackhole_accepted($bh);
cmp_ok($accepted_when_up, '<', $n_bh,
	"the black-holed nodes were not all tried at once ($accepted_when_up of $n_bh connections accepted by then)"
);

# when the first black-holed attempts fail (connect_timeout 3s after they
# started), their two successors may have started; never more
ok( $witness->poll_query_until(
		'postgres', "SELECT count(*) > 0 FROM hamonitor.status
		  WHERE cluster_name = 'bad' AND health = 'down'"),
	'the first black-holed attempts timed out');
my $accepted = blackhole_accepted($bh);
cmp_ok($accepted, '<=', 4,
	"at most max_connecting_per_peer attempts to the black hole in flight ($accepted accepted after the first timeout)"
);

# all of them are tried in turn nevertheless
ok( $witness->poll_query_until(
		'postgres', "SELECT count(*) = $n_bh FROM hamonitor.status
		  WHERE cluster_name = 'bad' AND health = 'down'"),
	'every black-holed node is tried and found down in turn');
is(status_value($witness, 'primary', 'health'),
	'up', 'the other peer\'s node stayed up meanwhile');

$witness->safe_psql('postgres',
	"SELECT count(hamonitor.unregister_node(node_name, 'bad'))
	   FROM hamonitor.node WHERE cluster_name = 'bad'");
stop_helper($bh);

# --------------------------------------------------------------------------
# A slow peer that keeps answering keeps its attempt
# --------------------------------------------------------------------------

# a SCRAM login is three replies of the server, then the session's start:
# through a proxy that holds each reply 0.6 s, the connection takes well
# over connect_timeout (1 s), though no step takes as long
ok(set_witness_guc($witness, 'connect_timeout', '1s'),
	'connect_timeout is 1s');
my $slow = create_node('slow');
$slow->safe_psql('postgres',
	"CREATE ROLE slowpeer LOGIN SUPERUSER PASSWORD 'slow-secret'");
open my $hba, '>', $slow->data_dir . '/pg_hba.conf' or die $!;
print $hba "local all slowpeer scram-sha-256\nlocal all all trust\n";
close $hba;
$slow->reload;
my $proxy = start_proxy($slow, reply_delay => 0.6);
my $conninfo =
  "host=127.0.0.1 port=$proxy->{port} dbname=postgres user=slowpeer password=slow-secret";

my $t0 = time();
my ($ret, $out, $err) = (0, '', '');
$ret = $witness->psql('postgres', 'SELECT 1', connstr => $conninfo,
	stdout => \$out, stderr => \$err);
my $took = time() - $t0;
is($out, '1', 'the slow peer accepts a password login through the proxy')
  or diag($err);
cmp_ok($took, '>', 1.2,
	sprintf('a login through the proxy takes longer than connect_timeout (%.1fs)', $took));

register_node($witness, 'slow', $conninfo, 'slowcluster');
ok(wait_for_status($witness, 'slow', "health = 'up'", 'slowcluster'),
	'the witness connects to a peer that answers slowly but steadily');

# a peer that never answers is still cut at connect_timeout: see
# 003_blackhole.pl

done_testing();
