#!/usr/bin/perl
#
# haproxy_failover.pl - time from a crash of the primary to the first write
# accepted through HAProxy
#
# What it measures, from OUTSIDE the witness (Time::HiRes, this process's
# clock): one witness at pg_hamonitor's DEFAULT settings plus its HTTP
# endpoint (pg_hamonitor.http_port), and per iteration a FRESH primary with
# two streaming standbys on loopback, behind an HAProxy 2.6 (Debian's
# haproxy) configured as the README's "HAProxy" section says: one server
# per node, each checked at the witness for that node (http-check uri-lf
# /primary/<cluster>/%[srv_name], inter 200ms fall 1 rise 1,
# on-marked-down shutdown-sessions).  A client writes through HAProxy on a
# new connection each time (a process of its own); once ten writes in a
# row landed on the primary, the primary is crashed (SIGKILL to the postmaster and every
# child, HamonTest::kill9_all) at a random phase of the probe interval, and
# the client goes on writing every ~10 ms:
#   first_write  kill -> first INSERT accepted through HAProxy
# It must land on the promoted standby; a write accepted by any other node
# after the kill is counted as wrong_node (target 0).
#
# Target (issue 11): first_write median <= 1 s.  A missed target is printed
# as MISSED; the exit status is 0 unless the setup itself failed.
#
# How to run (as a non-root user, from a copy of the tree it can write; the
# extension installed; haproxy installed):
#   perl test/bench/haproxy_failover.pl [--iterations N] [--quick] [--timeout S]
#   --iterations N  failovers to measure (default 10)
#   --quick         1 iteration (CI smoke)
#   --timeout S     longest wait for the first write (default 60)
# or, as root: BENCH_SCRIPTS=haproxy_failover test/bench/run-all.sh
#
# Output: one line per iteration, then
#   RESULT haproxy_failover first_write median=... p95=... p99=... max=... n=N target: median<=1s
#   RESULT haproxy_failover wrong_node count=0 ...
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

my %opt = bench_options({ iterations => 10, timeout => 60 },
	'iterations=i', 'timeout=f');
$opt{iterations} = 1 if $opt{quick} && !defined $opt{given}{iterations};

my $script = 'haproxy_failover';
die "haproxy is not installed (Debian package haproxy)\n"
  unless haproxy_binary();

my $http = PostgreSQL::Test::Cluster::get_free_port();
my $witness = create_witness(
	'witness',
	defaults   => 1,
	extra_conf => "pg_hamonitor.http_port = $http\n");
my $probe_interval_s = $witness->safe_psql('postgres',
	"SELECT setting::numeric / 1000 FROM pg_settings
	  WHERE name = 'pg_hamonitor.probe_interval'");
say_out("# witness: pg_hamonitor defaults, HTTP endpoint on port $http");

my @first;
my ($failed, $wrong) = (0, 0);

# one INSERT through HAProxy on a new connection: the port that took it
sub write_through
{
	my ($front) = @_;
	my ($out, $err) = ('', '');
	$witness->psql('postgres',
		"INSERT INTO bench_write VALUES (clock_timestamp(), current_setting('port')::int)
		 RETURNING port",
		connstr => $front, stdout => \$out, stderr => \$err);
	return $out;
}

foreach my $i (1 .. $opt{iterations})
{
	my $cluster = "hap$i";
	my ($primary, $sb1, $sb2) = bench_ha_cluster("primary_$i", [ "sb1_$i", "sb2_$i" ],
		conf => "listen_addresses = '127.0.0.1'\n");
	register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2)
	  or die "iteration $i: the witness did not see the cluster up\n";
	$primary->safe_psql('postgres', 'CREATE TABLE bench_write (at timestamptz, port int)');
	$primary->wait_for_catchup("sb1_$i", 'replay', $primary->lsn('insert'));
	$primary->wait_for_catchup("sb2_$i", 'replay', $primary->lsn('insert'));

	my $haproxy = start_haproxy($http, $cluster, 'primary', $primary, $sb1, $sb2);
	my $front = "host=127.0.0.1 port=$haproxy->{port} dbname=postgres connect_timeout=2";
	my $in_a_row = 0;
	my $end = time() + 60;
	while ($in_a_row < 10 && time() < $end)
	{
		$in_a_row = write_through($front) eq $primary->port ? $in_a_row + 1 : 0;
		usleep(20_000);
	}
	die "iteration $i: writes through HAProxy do not reach the primary\n"
	  unless $in_a_row == 10;

	# a random phase of the probe interval
	usleep(rand($probe_interval_s) * 1e6);
	my $before = last_event_id($witness);

	# the writer is a process of its own: kill9_all returns only once the
	# killed processes are reaped, which may take a second
	my $file = "$PostgreSQL::Test::Utils::log_path/haproxy_writer_$i.txt";
	unlink $file;
	my $t0 = time();
	my $writer = fork;
	die "fork: $!" unless defined $writer;
	if (!$writer)
	{
		# never run the END blocks of Cluster.pm (they stop the servers)
		while (time() < $t0 + $opt{timeout})
		{
			my $p = write_through($front);
			if ($p ne '')
			{
				open my $fh, '>', $file or POSIX::_exit(1);
				printf $fh "%.6f %s\n", time(), $p;
				close $fh;
				POSIX::_exit(0);
			}
			usleep(10_000);
		}
		POSIX::_exit(0);
	}
	kill9_all($primary);
	waitpid($writer, 0);
	my ($t, $port);
	if (-s $file)
	{
		($t, $port) = split / /, slurp_file($file);
		chomp $port;
		$t -= $t0;
	}
	my ($promoted, $promoted_at) = split /\|/, $witness->safe_psql('postgres',
		"SELECT string_agg(node_name, ','), min(extract(epoch FROM event_time)) FROM hamonitor.events
		  WHERE cluster_name = '$cluster' AND kind = 'promoted' AND event_id > $before");
	$promoted //= '';
	my %port_of = ("sb1_$i" => $sb1->port, "sb2_$i" => $sb2->port);
	if (!defined $t)
	{
		$failed++;
		say_out("# iteration $i: no write through HAProxy within $opt{timeout} s"
			  . " (promoted: " . ($promoted || 'none') . ')');
	}
	else
	{
		my $right = $promoted ne '' && $promoted !~ /,/ && $port eq $port_of{$promoted};
		$wrong++ unless $right;
		push @first, $t;
		say_out(sprintf('# iteration %d: first write through HAProxy %.3fs after the kill, on %s%s; promoted event at %.3fs',
			$i, $t, $port, $right ? " (the promoted $promoted)" : ' WRONG NODE',
			($promoted_at // $t0) - $t0));
	}

	stop_helper($haproxy);
	foreach my $node ($primary, $sb1, $sb2)
	{
		unregister_node($witness, $node->name, $cluster);
		remove_node($node);
	}
}

bench_result($script, 'first_write', \@first, median => 1, failed => $failed);
bench_count($script, 'wrong_node', $wrong, target => 0);
exit 0;
