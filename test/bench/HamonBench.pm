
# Copyright (c) 2026, pg_hamonitor developers

=pod

=head1 NAME

HamonBench - what the pg_hamonitor benchmarks under test/bench/ share

=head1 SYNOPSIS

  use FindBin;
  use lib $FindBin::RealBin;
  use lib "$FindBin::RealBin/../perl";
  use lib '/usr/lib/postgresql/15/lib/pgxs/src/test/perl';
  use HamonBench;          # first: sets up the environment of Cluster.pm
  use HamonTest;

  my %opt = bench_options({ iterations => 20 }, 'iterations=i');
  my $witness = create_witness('witness', defaults => 1);
  my ($primary, @standbys) = bench_ha_cluster('primary', [ 'sb1', 'sb2' ]);
  ...
  bench_result('failover_time', 'writes_accepted', \@seconds,
               median => 0.8, p95 => 1.5);

=head1 DESCRIPTION

Lets the benchmark scripts run standalone (not under prove/make): before
PostgreSQL::Test::Utils is loaded it sets PATH to PostgreSQL 15's bindir,
PG_REGRESS (needed by Cluster.pm's init) and TESTDIR (the servers and logs
go to test/bench/out/<script>/tmp_check), and keeps a handle on the real
standard output, which Utils.pm redirects to its log file.  What the
benchmarks print goes to both; what the TAP helpers print (note/diag) goes
to the log only.

The servers refuse to run as root: run the scripts as an ordinary user
(postgres) from a tree that user can write, or use test/bench/run-all.sh,
which makes that copy when invoked as root.

Everything that sets up, registers, waits for, crashes or partitions
servers comes from HamonTest (test/perl), as in the TAP tests: the
witness at the extension's defaults is create_witness($name, defaults =>
1).  This module keeps only what is particular to benchmarks: the
environment, the command line, the figures, production-like server
settings, process accounting.

Figures are summarised as median, 95th percentile (nearest rank) and max,
in a stable format, one line per figure:

  RESULT <script> <figure> median=0.62s p95=0.90s max=1.10s n=20 [MISSED ...]

=cut

package HamonBench;

use strict;
use warnings;

use Cwd ();
use File::Basename ();
use File::Path ();
use POSIX ();

our ($OUT, $BENCH_NAME, $BENCH_DIR);

BEGIN
{
	$BENCH_DIR  = Cwd::abs_path(File::Basename::dirname(__FILE__));
	$BENCH_NAME = File::Basename::basename($0, '.pl');

	die "$BENCH_NAME: PostgreSQL refuses to run as root; run this as an "
	  . "ordinary user (e.g. postgres) from a tree it can write, or use "
	  . "test/bench/run-all.sh, which does that for you\n"
	  if $> == 0;

	my $bindir = $ENV{PG_BINDIR} || '/usr/lib/postgresql/15/bin';
	die "$BENCH_NAME: $bindir/initdb not found (set PG_BINDIR)\n"
	  unless -x "$bindir/initdb";
	$ENV{PATH} = "$bindir:$ENV{PATH}";
	$ENV{PG_REGRESS} ||=
	  '/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress';
	die "$BENCH_NAME: $ENV{PG_REGRESS} not found (postgresql-server-dev-15)\n"
	  unless -x $ENV{PG_REGRESS};

	# production-like settings for every server (see bench.conf)
	$ENV{TEMP_CONFIG} = "$BENCH_DIR/bench.conf";

	# every script its own output directory; an earlier run's is removed
	$ENV{TESTDIR} = "$BENCH_DIR/out/$BENCH_NAME";
	File::Path::remove_tree("$ENV{TESTDIR}/tmp_check");
	File::Path::make_path($ENV{TESTDIR});
	-w $ENV{TESTDIR}
	  or die "$BENCH_NAME: $ENV{TESTDIR} is not writable by this user\n";

	# the real stdout, before Utils.pm's INIT sends STDOUT to its log
	open($OUT, '>&', \*STDOUT) or die "could not dup stdout: $!";
	$OUT->autoflush(1);
}

use Exporter 'import';
use Getopt::Long ();
use IPC::Run;
use Test::More;
use Time::HiRes qw(time usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use HamonTest ();

our @EXPORT = qw(
  $OUT
  bench_options
  say_out
  stats
  fmt_s
  bench_result
  bench_count
  bench_ha_cluster
  machine_info
  witness_now
  poll_until
  psql_timings
  proc_cpu_seconds
  proc_rss_kb
  remove_node
);

# a fatal error is shown on the screen too, not only in the log
$SIG{__DIE__} = sub {
	return if $^S;    # inside an eval
	print $OUT "$BENCH_NAME: SETUP FAILED: $_[0]";
	print $OUT "$BENCH_NAME: see $PostgreSQL::Test::Utils::log_path\n"
	  if defined $PostgreSQL::Test::Utils::log_path;
};

# Test::More's note/diag of the TAP helpers go to the log, not the screen
# (runs when the script starts, after Utils.pm's INIT)
sub _quiet_test_more
{
	my $builder = Test::More->builder;
	$builder->output(\*STDOUT);
	$builder->failure_output(\*STDOUT);
	$builder->todo_output(\*STDOUT);
	return;
}

=pod

=head1 FUNCTIONS

=over

=item bench_options(\%defaults, @getopt_specs)

Parses the command line: --quick, --help, and the given Getopt::Long specs
(their values default to %defaults).  Returns the option hash; quick => 1
when --quick was given (the script then applies its own quick values to
options not given explicitly).  Also sends the TAP helpers' chatter to the
log and prints the header of the run.

=cut

sub bench_options
{
	my ($defaults, @specs) = @_;
	my %opt = (quick => 0);
	my %given;
	my @argv = @ARGV;
	Getopt::Long::GetOptions(
		\%given, 'quick', 'help',
		@specs)
	  or die "usage: $0 [--quick] [options]; see the header of $0\n";
	if ($given{help})
	{
		open my $fh, '<', $0 or die;
		while (<$fh>)
		{
			next if $. == 1 && /^#!/;
			last if $. > 1 && !/^#/;
			s/^# ?//;
			print $OUT $_;
		}
		exit 0;
	}
	%opt = (%$defaults, quick => 0, given => {%given});
	$opt{$_} = $given{$_} foreach keys %given;
	_quiet_test_more();
	say_out("# $BENCH_NAME @argv");
	say_out('# ' . machine_info());
	say_out("# logs and servers: $ENV{TESTDIR}/tmp_check");
	return %opt;
}

=item say_out(@lines)

Prints each line on the real stdout and in the log.

=cut

sub say_out
{
	foreach my $line (@_)
	{
		print $OUT "$line\n";
		print STDOUT "$line\n";
	}
	return;
}

=item stats(@values)

(median, p95, max, p99) of the values: p95 and p99 by nearest rank (with
fewer than 100 values p99 is the maximum), median the mean of the two
middle values for an even count.  Empty list: undefs.

=cut

sub stats
{
	my @v = sort { $a <=> $b } grep { defined } @_;
	return (undef, undef, undef, undef) unless @v;
	my $n = @v;
	my $median =
	  $n % 2 ? $v[ ($n - 1) / 2 ] : ($v[ $n / 2 - 1 ] + $v[ $n / 2 ]) / 2;
	my $rank = sub {
		my $r = POSIX::ceil($_[0] * $n);
		return $v[ ($r < 1 ? 1 : $r) - 1 ];
	};
	return ($median, $rank->(0.95), $v[-1], $rank->(0.99));
}

=item fmt_s($value, $unit)

A figure with 3 significant decimals and its unit ('s' by default), or 'n/a'.

=cut

sub fmt_s
{
	my ($v, $unit) = @_;
	$unit = 's' unless defined $unit;
	return 'n/a' unless defined $v;
	return sprintf('%.3f%s', $v, $unit);
}

=item bench_result($script, $figure, \@values, %params)

Prints "RESULT script figure median=... p95=... max=... n=..." and, for
each target given (median => X, p95 => X, p99 => X, max => X, in the
values' unit),
"target ... MISSED" when missed.  unit => 's' (default), 'ms', '%', 'MB'...
failed => N adds failed=N (runs that gave no value).  Returns true when
every target was met.

=cut

sub bench_result
{
	my ($script, $figure, $values, %params) = @_;
	my $unit = defined $params{unit} ? $params{unit} : 's';
	my ($median, $p95, $max, $p99) = stats(@$values);
	my %got = (median => $median, p95 => $p95, p99 => $p99, max => $max);
	my $line = sprintf('RESULT %s %s median=%s p95=%s p99=%s max=%s n=%d',
		$script, $figure, fmt_s($median, $unit), fmt_s($p95, $unit),
		fmt_s($p99, $unit), fmt_s($max, $unit),
		scalar(grep { defined } @$values));
	$line .= " failed=$params{failed}" if $params{failed};
	my $ok = 1;
	my @targets;
	foreach my $k (qw(median p95 p99 max))
	{
		next unless defined $params{$k};
		my $met = defined $got{$k} && $got{$k} <= $params{$k};
		$ok &&= $met;
		push @targets, sprintf('%s<=%s%s', $k, $params{$k}, $unit)
		  . ($met ? '' : ' MISSED');
	}
	$ok = 0 if $params{failed};
	$line .= ' target: ' . join(', ', @targets) if @targets;
	$line .= ' MISSED' if @targets && !$ok && $line !~ /MISSED/;
	say_out($line);
	return $ok;
}

=item bench_count($script, $figure, $count, %params)

Prints "RESULT script figure count=N runs=R"; with target => T, "MISSED"
when count > T.

=cut

sub bench_count
{
	my ($script, $figure, $count, %params) = @_;
	my $line = sprintf('RESULT %s %s count=%d', $script, $figure, $count);
	$line .= " runs=$params{runs}" if defined $params{runs};
	if (defined $params{target})
	{
		$line .= " target: count<=$params{target}";
		$line .= ' MISSED' if $count > $params{target};
	}
	say_out($line);
	return !(defined $params{target} && $count > $params{target});
}

=item bench_ha_cluster($primary_name, \@standby_names, %params)

HamonTest's create_ha_cluster (each standby streams with application_name
= its name, from one base backup, caught up on return) with the settings
of a small production server instead of Cluster.pm's allows_streaming
ones (shared_buffers = 1MB, max_connections = 10): shared_buffers =
128MB, max_connections = 200 (or max_connections => N), inherited by the
standbys.  conf => '...' is appended too, before the start.  Returns
($primary, @standbys).

=cut

sub bench_ha_cluster
{
	my ($pname, $standbys, %params) = @_;
	my $max_conn = $params{max_connections} || 200;
	return HamonTest::create_ha_cluster(
		primary  => $pname,
		standbys => $standbys,
		conf     => "shared_buffers = 128MB\nmax_connections = $max_conn\n"
		  . ($params{conf} || ''));
}

=item machine_info()

One line: date, host, cores, load averages, PostgreSQL version.

=cut

sub machine_info
{
	my $load = '';
	if (open my $fh, '<', '/proc/loadavg')
	{
		my @l = split ' ', scalar <$fh>;
		$load = "load $l[0] $l[1] $l[2]";
	}
	my $cores = 0;
	if (open my $fh, '<', '/proc/cpuinfo')
	{
		$cores = grep { /^processor\s*:/ } <$fh>;
	}
	my $pgver = `postgres --version 2>/dev/null`;
	chomp $pgver;
	my $host = `hostname 2>/dev/null`;
	chomp $host;
	return sprintf('%s host %s, %d cores, %s, %s',
		POSIX::strftime('%Y-%m-%d %H:%M:%S %Z', localtime),
		$host, $cores, $load, $pgver);
}

=item witness_now($node)

clock_timestamp() of the node as epoch seconds (same clock as time()).

=cut

sub witness_now
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		'SELECT extract(epoch FROM clock_timestamp())');
}

=item poll_until($node, $sql, $expected, $timeout_s, $db)

Runs $sql every 100 ms until it returns $expected (default 't') or
$timeout_s (default 60) passed; returns true if it did.

=cut

sub poll_until
{
	my ($node, $sql, $expected, $timeout, $db) = @_;
	$expected = 't'      unless defined $expected;
	$timeout  = 60       unless defined $timeout;
	$db       = 'postgres' unless defined $db;
	my $end = time() + $timeout;
	while (time() < $end)
	{
		my ($ret, $out) = (0, '');
		$ret = $node->psql($db, $sql, stdout => \$out, stderr => \my $err);
		return 1 if $ret == 0 && $out eq $expected;
		usleep(100_000);
	}
	return 0;
}

=item psql_timings($node, $sql, $runs, $setup)

Runs $sql $runs times in one psql session with \timing on (results thrown
away with \o /dev/null); returns the client-side durations in ms.  $setup,
if given, is run first in the same session, untimed (SET, PREPARE...).

=cut

sub psql_timings
{
	my ($node, $sql, $runs, $setup) = @_;
	my $script = (defined $setup ? "$setup\n" : '')
	  . "\\timing on\n\\o /dev/null\n" . ("$sql;\n" x $runs);
	my ($out, $err) = ('', '');
	my $ret = $node->psql('postgres', $script, stdout => \$out,
		stderr => \$err, on_error_stop => 1);
	die "psql_timings failed: $err" if $ret != 0;
	my @ms = $out =~ /^Time: ([0-9.]+) ms/mg;
	die "psql_timings: expected $runs timings, got " . scalar(@ms) . ": $out"
	  unless @ms == $runs;
	return @ms;
}

=item proc_cpu_seconds($pid)

utime + stime of the process, in seconds (from /proc/PID/stat), or undef.

=cut

my $CLK_TCK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

sub proc_cpu_seconds
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return undef;
	my $line = <$fh>;
	close $fh;
	# the command name may hold spaces: fields start after the last ')'
	$line =~ s/^.*\)\s+//s;
	my @f = split ' ', $line;
	# after the name: state(3) ppid ... utime is field 14, stime 15
	return ($f[11] + $f[12]) / $CLK_TCK;
}

=item proc_rss_kb($pid)

(VmRSS, RssAnon) of the process in kB (from /proc/PID/status), or undefs.

=cut

sub proc_rss_kb
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return (undef, undef);
	my ($rss, $anon);
	while (<$fh>)
	{
		$rss  = $1 if /^VmRSS:\s+(\d+)/;
		$anon = $1 if /^RssAnon:\s+(\d+)/;
	}
	close $fh;
	return ($rss, $anon);
}

=item remove_node($node)

Stops the server (immediate mode) and removes its data directory, to keep
the disk usage of many fresh clusters bounded.

=cut

sub remove_node
{
	my ($node) = @_;
	$node->stop('immediate', fail_ok => 1);
	$node->clean_node;
	return;
}

=back

=cut

END
{
	my $status = $?;
	if ($status != 0)
	{
		print $OUT "$BENCH_NAME: FAILED (exit status $status); see "
		  . ($PostgreSQL::Test::Utils::test_logfile || 'the log') . "\n";
	}
	$? = $status;
}

1;
