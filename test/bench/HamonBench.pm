
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
  proc_socket_count
  pgbouncer_binary
  start_pgbouncer
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

=item poll_until($node, $sql, $expected, $timeout_s, $db, $every_s)

Runs $sql every $every_s seconds (default 0.1) until it returns $expected
(default 't') or $timeout_s (default 60) passed; returns true if it did.
(A query over thousands of nodes is polled less often, so that the
polling does not load the witness it watches.)

=cut

sub poll_until
{
	my ($node, $sql, $expected, $timeout, $db, $every) = @_;
	$expected = 't'      unless defined $expected;
	$timeout  = 60       unless defined $timeout;
	$db       = 'postgres' unless defined $db;
	$every    = 0.1      unless defined $every;
	my $end = time() + $timeout;
	while (time() < $end)
	{
		my ($ret, $out) = (0, '');
		$ret = $node->psql($db, $sql, stdout => \$out, stderr => \my $err);
		return 1 if $ret == 0 && $out eq $expected;
		usleep($every * 1e6);
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

=item proc_socket_count($pid)

Number of sockets the process holds open (links "socket:[...]" in
/proc/PID/fd), or undef if they cannot be read (another user's process).
For a probe worker: its peer connections, plus a few of its own (the
resolver helper's, the postmaster's).

=cut

sub proc_socket_count
{
	my ($pid) = @_;
	opendir my $dh, "/proc/$pid/fd" or return undef;
	my $n = 0;
	foreach my $fd (readdir $dh)
	{
		next unless $fd =~ /^\d+$/;
		my $target = readlink "/proc/$pid/fd/$fd";
		$n++ if defined $target && $target =~ /^socket:/;
	}
	closedir $dh;
	return $n;
}

=item pgbouncer_binary()

The path of pgbouncer (Debian package pgbouncer), or undef.

=cut

sub pgbouncer_binary
{
	my ($bin) =
	  grep { -x $_ } ('/usr/sbin/pgbouncer', '/usr/bin/pgbouncer');
	return $bin;
}

=item start_pgbouncer($name, %params)

Starts a pgbouncer in transaction pooling mode on 127.0.0.1 (a free port),
as test/t/042_pooler.pl does: trust authentication of the current user,
no Unix socket, and B<no> ignore_startup_parameters (a client sending the
"options" startup parameter is refused).  Parameters:

  databases       => [ [ alias => $node ], ... ]  each alias the postgres
                     database of that server (its Unix socket)
  max_client_conn => N (default 1000)
  pool_size       => server sessions per alias (default_pool_size, 4)

The process inherits the open-files limit of the script (which
probe_scale.pl raises); pgbouncer logs at its start if the limit is too
low for max_client_conn.  Waits until a SELECT 1 through the first alias
answers (dies after 30 s).  Returns a hash: port, pid, dir (config and
log), harness (IPC::Run).  It is killed when the script ends.

=cut

my @POOLERS;

sub start_pgbouncer
{
	my ($name, %params) = @_;
	my $bin = pgbouncer_binary()
	  or die "pgbouncer is not installed (Debian package pgbouncer)\n";
	my $dbs       = $params{databases} or die 'no databases';
	my $max_conn  = $params{max_client_conn} || 1000;
	my $pool_size = $params{pool_size} || 4;
	my $dir       = "$PostgreSQL::Test::Utils::tmp_check/pgbouncer_$name";
	File::Path::make_path($dir);
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $user = getpwuid($>);

	open my $fh, '>', "$dir/users.txt" or die "$dir/users.txt: $!";
	print $fh qq{"$user" ""\n};
	close $fh;
	open $fh, '>', "$dir/pgbouncer.ini" or die "$dir/pgbouncer.ini: $!";
	print $fh "[databases]\n";
	foreach my $db (@$dbs)
	{
		my ($alias, $node) = @$db;
		printf $fh "%s = host=%s port=%d dbname=postgres\n",
		  $alias, $node->host, $node->port;
	}
	# log_connections off: thousands of probe sessions would fill the log;
	# a stats line every 10 s (queries/s, mean query and wait times)
	print $fh <<"EOC";

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
listen_backlog = 4096
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = $max_conn
log_connections = 0
log_disconnections = 0
stats_period = 10
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOC
	close $fh;

	my $h = IPC::Run::start([ $bin, "$dir/pgbouncer.ini" ],
		'<', \undef, '>', "$dir/stdout", '2>', "$dir/stderr");
	push @POOLERS, $h;
	my $first = $dbs->[0][0];
	my $ready = 0;
	for (1 .. 300)
	{
		my ($out, $err) = ('', '');
		IPC::Run::run(
			[ 'psql', '-X', '-A', '-t', '-h', '127.0.0.1', '-p', $port,
			  '-d', $first, '-c', 'SELECT 1' ],
			'<', \undef, '>', \$out, '2>', \$err);
		if ($out =~ /^1$/m) { $ready = 1; last; }
		usleep(100_000);
	}
	die "pgbouncer $name did not answer on 127.0.0.1:$port within 30 s "
	  . "(see $dir)\n"
	  unless $ready;
	my $pid;
	if (open my $pf, '<', "$dir/pgbouncer.pid")
	{
		$pid = <$pf>;
		chomp $pid if defined $pid;
	}
	$pid = $h->{KIDS}[0]{PID} unless defined $pid && $pid =~ /^\d+$/;
	note "pgbouncer $name (pid $pid) on 127.0.0.1:$port, transaction pooling";
	return { name => $name, port => $port, pid => $pid, dir => $dir,
		harness => $h };
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
	foreach my $h (@POOLERS)
	{
		eval { $h->kill_kill(grace => 2); };
	}
	if ($status != 0)
	{
		print $OUT "$BENCH_NAME: FAILED (exit status $status); see "
		  . ($PostgreSQL::Test::Utils::test_logfile || 'the log') . "\n";
	}
	$? = $status;
}

1;
