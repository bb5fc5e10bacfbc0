# test/t/090_bench_smoke.pl
#
# The benchmarks under test/bench/ are run by hand, but they must not rot:
# this runs each one once, short (--quick), and checks that it set up its
# servers, measured, and printed its RESULT lines.  It asserts nothing
# about the figures: timing goals live in the benchmarks, not in tests.
# probe_scale runs a second time in its pooled mode (--pooler, 60 nodes:
# every real node probed through transaction-pooling pgbouncers), skipped
# without pgbouncer.

use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;

my $top = $ENV{TESTDIR} // '.';

# The benchmarks must run the servers of the installation under test, the
# one first in PATH as for every other TAP test; left alone, HamonBench
# takes the system's bindir, where this build's pg_hamonitor may be absent.
my ($bindir) = grep { -x "$_/initdb" } split /:/, $ENV{PATH};
$ENV{PG_BINDIR} = $bindir if defined $bindir;
my %figures = (
	failover_time  => qr/^RESULT failover_time writes_accepted /m,
	false_failover => qr/^RESULT false_failover /m,
	probe_scale    => qr/^RESULT probe_scale /m,
	history_cost   => qr/^RESULT history_cost /m,
	rpo            => qr/^RESULT rpo writes_accepted_quorum /m,
	haproxy_failover => qr/^RESULT haproxy_failover first_write /m,
	witness_takeover => qr/^RESULT witness_takeover takeover .*\n^RESULT witness_takeover overhead .*\n^RESULT witness_takeover combined_writable /m,
	isolation      => qr/^RESULT isolation writes_accepted_both /m);
my @runs = map { [ $_, $_, [] ] } sort keys %figures;

# probe_scale's pooled mode (the 10,000-node layout: real nodes through
# transaction-pooling pgbouncers), 60 nodes, one run; needs pgbouncer
my ($pgbouncer) =
  grep { -x $_ } ('/usr/sbin/pgbouncer', '/usr/bin/pgbouncer');
push @runs,
  [ 'probe_scale --pooler', 'probe_scale',
	[ '--pooler', '--nodes', '60', '--runs', '1' ],
	qr/^RESULT probe_scale pooler_cpu_pct /m ];

for my $run (@runs)
{
	my ($label, $script, $args, $re) = @$run;
	$re //= $figures{$script};
  SKIP:
	{
		skip "$label: pgbouncer is not installed (Debian package pgbouncer)", 3
		  if grep({ $_ eq '--pooler' } @$args) && !$pgbouncer;
		my ($stdout, $stderr);
		my $ok = IPC::Run::run(
			[ 'perl', "$top/test/bench/$script.pl", '--quick', @$args ],
			'>' => \$stdout,
			'2>' => \$stderr);
		note("$label stderr:\n$stderr") unless $ok;
		ok($ok, "$label --quick exits 0");
		like($stdout, $re, "$label --quick prints its RESULT lines");
		unlike($stdout, qr/SETUP FAILED/, "$label --quick set up its servers");
		note(join("\n", grep { /^RESULT/ } split /\n/, $stdout));
	}
}

done_testing();
