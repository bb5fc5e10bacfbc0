#!/usr/bin/perl
#
# rpo.pl - acknowledged writes lost in a failover, synchronous = off vs quorum
#
# What it measures, from outside the witness: one witness at its DEFAULT
# settings, and per iteration and mode a FRESH primary with two streaming
# standbys in a cluster of their own, set to synchronous = 'off' or
# 'quorum' (ANY 1, degrade required).  A client (psql, one INSERT per
# commit, "ack N" printed after each acknowledged commit) writes to the
# primary as fast as it can, then one of two failures:
#   crash      the primary is killed (SIGKILL to the postmaster and every
#              child at once, HamonTest::kill9_all);
#   isolation  the primary's connections to the witness and to its
#              standbys go through one TCP forwarder, which is cut, while
#              the client goes on writing to it directly; after the
#              promotion it has 2 s more, then it is stopped;
# and the script records
#   lost              acknowledged ids missing on the new primary
#   writes_accepted   (crash) kill -> first INSERT accepted by a standby
#                     and acknowledged (under quorum: by the remaining
#                     standby too, once it is repointed)
# writes_accepted is timed by a child process that starts trying right
# before the kill, as failover_time.pl's pollers are already running when
# it kills (kill9_all then waits for the dead postmaster to be reaped,
# which can take a second: not part of the outage).  It differs from
# failover_time.pl in that each try is a new psql session (about every
# 10 ms plus a connection, alternating between the standbys) where
# failover_time.pl keeps one session per standby and tries every 5 ms,
# and in that nothing else writes (failover_time.pl runs pgbench -c 2).
# Then pgbench (-n -c 4, --pgbench-seconds, simple update) on one cluster
# with off and with quorum, same machine, same run: TPS and mean latency.
#
# Targets (issue 9): lost = 0 under quorum, in both cases; writes_accepted
# median <= 0.4 s under quorum.  A missed target is printed as MISSED.
#
# How to run (as a non-root user, from a copy of the tree it can write; the
# extension installed with make install):
#   perl test/bench/rpo.pl [--iterations N] [--quick] [--pgbench-seconds S]
#   --iterations N       failovers per mode and case (default 10)
#   --quick              1 iteration, pgbench 3 s (CI smoke)
#   --pgbench-seconds S  each pgbench run (default 20)
# or, as root, test/bench/run-all.sh (BENCH_SCRIPTS=rpo).
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

use IPC::Run;
use POSIX ();
use Time::HiRes qw(time usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

my %opt = bench_options({ iterations => 10, 'pgbench-seconds' => 20 },
	'iterations=i', 'pgbench-seconds=i');
if ($opt{quick})
{
	$opt{iterations} = 1 unless defined $opt{given}{iterations};
	$opt{'pgbench-seconds'} = 3 unless defined $opt{given}{'pgbench-seconds'};
}
my $script = 'rpo';
my $witness = create_witness('witness', defaults => 1);
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $serial = 0;

# one INSERT per commit, "ack N" once commit N was acknowledged
sub start_writer
{
	my ($node) = @_;
	my $file = "$tmp/writer.sql";
	if (!-e $file)
	{
		open my $fh, '>', $file or die "writer script: $!";
		print $fh "INSERT INTO t VALUES ($_);\n\\echo ack $_\n"
		  foreach 1 .. 2_000_000;
		close $fh;
	}
	# its output goes to a file: a pipe nobody reads would stop psql after
	# 64 kB of "ack" lines, and with it the writes
	my %w = (out => "$tmp/writer_$serial.out", err => '');
	$w{h} = IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $file
		],
		'<', \undef, '>', $w{out}, '2>', \$w{err});
	return \%w;
}

sub acked
{
	my ($w) = @_;
	$w->{h}->finish;
	my @ids = slurp_file($w->{out}) =~ /^ack (\d+)$/mg;
	unlink $w->{out};
	return \@ids;
}

sub missing
{
	my ($node, $ids) = @_;
	return 0 unless @$ids;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM unnest('{" . join(',', @$ids) . "}'::int[]) a
		  WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = a)");
}

# a fresh cluster in mode; with proxy => 1 the standbys and the witness
# reach the primary through one forwarder.  Returns ($cluster, $primary,
# $proxy, @standbys).
sub setup
{
	my ($mode, %p) = @_;
	$serial++;
	my $cluster = "rpo$serial";
	my ($primary, @standbys, $proxy);
	if ($p{proxy})
	{
		$primary = PostgreSQL::Test::Cluster->new("p$serial");
		$primary->init(allows_streaming => 1);
		$primary->start;
		$proxy = start_proxy($primary);
		$primary->backup("b$serial");
		foreach my $name ("a$serial", "b$serial")
		{
			my $sb = PostgreSQL::Test::Cluster->new($name);
			$sb->init_from_backup($primary, "b$serial", has_streaming => 0);
			$sb->append_conf('postgresql.conf',
				"primary_conninfo = 'host=127.0.0.1 port=$proxy->{port} application_name=$name'\n");
			$sb->set_standby_mode;
			$sb->start;
			push @standbys, $sb;
		}
	}
	else
	{
		($primary, @standbys) =
		  bench_ha_cluster("p$serial", [ "a$serial", "b$serial" ]);
	}
	my %conninfo;
	$conninfo{ $primary->name } =
	  "host=127.0.0.1 port=$proxy->{port} dbname=postgres"
	  if $proxy;
	register_ha_cluster($witness, $cluster, $primary, @standbys,
		{ conninfo => \%conninfo })
	  or die "cluster $cluster not seen by the witness";
	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', '$mode')");
	if ($mode eq 'quorum')
	{
		poll_until($witness,
			"SELECT durability FROM hamonitor.cluster_durability
			  WHERE cluster_name = '$cluster'", 'guaranteed', 60)
		  or die "quorum of $cluster not applied";
	}
	$primary->safe_psql('postgres', 'CREATE TABLE t (id integer PRIMARY KEY)');
	return ($cluster, $primary, $proxy, @standbys);
}

# kill -> an INSERT accepted on a standby (epoch seconds), or undef
sub first_write
{
	my ($t0, @standbys) = @_;
	while (time() - $t0 < 60)
	{
		foreach my $sb (@standbys)
		{
			my ($out, $err) = ('', '');
			IPC::Run::run(
				[
					'psql', '-X', '-A', '-t', '-q', '-d',
					$sb->connstr('postgres') . ' connect_timeout=1',
					'-c', 'INSERT INTO t VALUES (-1) RETURNING 1'
				],
				'<', \undef, '>', \$out, '2>', \$err);
			return time() - $t0 if $out =~ /^1$/m;
		}
		usleep(10_000);
	}
	return undef;
}

# first_write in a child process started now, before the kill: returns
# a function that waits for it and gives first_write's result
sub start_first_write
{
	my ($t0, @standbys) = @_;
	my $file = "$tmp/first_write_$serial.txt";
	unlink $file;
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# never run Cluster.pm's END blocks here (they stop the servers)
		my $acc = first_write($t0, @standbys);
		if (open my $fh, '>', $file)
		{
			print $fh defined $acc ? "$acc\n" : "undef\n";
			close $fh;
		}
		POSIX::_exit(0);
	}
	return sub {
		waitpid($pid, 0);
		my $v = -e $file ? slurp_file($file) : 'undef';
		chomp $v;
		return $v eq 'undef' ? undef : $v;
	};
}

sub new_primary
{
	my ($cluster, $before, @standbys) = @_;
	poll_until($witness,
		"SELECT count(*) > 0 FROM hamonitor.events
		  WHERE cluster_name = '$cluster' AND kind = 'promoted'
		    AND event_id > $before", 't', 60)
	  or return undef;
	my $name = $witness->safe_psql('postgres',
		"SELECT min(node_name) FROM hamonitor.events
		  WHERE cluster_name = '$cluster' AND kind = 'promoted'
		    AND event_id > $before");
	my ($n) = grep { $_->name eq $name } @standbys;
	wait_until_promoted($n);
	return $n;
}

my (%lost, %accepted);
foreach my $i (1 .. $opt{iterations})
{
	foreach my $mode ('off', 'quorum')
	{
		# crash
		my ($cluster, $primary, undef, @standbys) = setup($mode);
		my $w = start_writer($primary);
		poll_until($primary, 'SELECT count(*) >= 200 FROM t', 't', 60);
		my $before = last_event_id($witness);
		my $t0 = time();
		my $accepted = start_first_write($t0, @standbys);
		kill9_all($primary);
		my $ids = acked($w);
		my $acc = $accepted->();
		my $np = new_primary($cluster, $before, @standbys);
		my $m = $np ? missing($np, $ids) : scalar(@$ids);
		push @{ $lost{"crash_$mode"} }, $m;
		push @{ $accepted{$mode} }, $acc;
		say_out(sprintf('# %d %s crash: %d acknowledged, %d lost, writes accepted after %s',
				$i, $mode, scalar(@$ids), $m, fmt_s($acc)));
		$_->stop('immediate') foreach @standbys;

		# isolation
		my $proxy;
		($cluster, $primary, $proxy, @standbys) = setup($mode, proxy => 1);
		$w = start_writer($primary);
		poll_until($primary, 'SELECT count(*) >= 200 FROM t', 't', 60);
		$before = last_event_id($witness);
		stop_helper($proxy);
		$np = new_primary($cluster, $before, @standbys);
		usleep(2_000_000);
		$primary->stop('immediate');
		$ids = acked($w);
		$m = $np ? missing($np, $ids) : scalar(@$ids);
		push @{ $lost{"isolation_$mode"} }, $m;
		say_out(sprintf('# %d %s isolation: %d acknowledged, %d lost',
				$i, $mode, scalar(@$ids), $m));
		$_->stop('immediate') foreach @standbys;
	}
}

# pgbench: the cost of the quorum, off and quorum on one cluster
my ($cluster, $primary, undef, @standbys) = setup('off');
my $pgbench = sub {
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pgbench', '-n', '-c', '4', '-j', '2', '-T', $opt{'pgbench-seconds'},
			'-d', $primary->connstr('postgres')
		],
		'<', \undef, '>', \$out, '2>', \$err);
	my ($tps) = $out =~ /^tps = ([0-9.]+)/m;
	my ($lat) = $out =~ /^latency average = ([0-9.]+) ms/m;
	return ($tps, $lat);
};
IPC::Run::run([ 'pgbench', '-i', '-q', '-s', '5', '-d', $primary->connstr('postgres') ],
	'>', \my $iout, '2>', \my $ierr);
my ($tps_off, $lat_off) = $pgbench->();
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum')");
poll_until($witness,
	"SELECT durability FROM hamonitor.cluster_durability
	  WHERE cluster_name = '$cluster'", 'guaranteed', 60);
my ($tps_q, $lat_q) = $pgbench->();

foreach my $case ('crash', 'isolation')
{
	foreach my $mode ('off', 'quorum')
	{
		my $sum = 0;
		$sum += $_ foreach @{ $lost{"${case}_$mode"} };
		bench_count($script, "lost_acknowledged_${case}_$mode", $sum,
			runs => $opt{iterations},
			($mode eq 'quorum' ? (target => 0) : ()));
	}
}
bench_result($script, 'writes_accepted_quorum', $accepted{quorum}, median => 0.4,
	failed => scalar(grep { !defined } @{ $accepted{quorum} }));
bench_result($script, 'writes_accepted_off', $accepted{off},
	failed => scalar(grep { !defined } @{ $accepted{off} }));
say_out(sprintf('RESULT %s pgbench_off tps=%s latency=%sms', $script,
		$tps_off // 'n/a', $lat_off // 'n/a'));
say_out(sprintf('RESULT %s pgbench_quorum tps=%s latency=%sms', $script,
		$tps_q // 'n/a', $lat_q // 'n/a'));
$_->stop('immediate') foreach ($primary, @standbys);
exit 0;
