# test/t/090_bench_smoke.pl
#
# The benchmarks under test/bench/ are run by hand, but they must not rot:
# this runs each one once, short (--quick), and checks that it set up its
# servers, measured, and printed its RESULT lines.  It asserts nothing
# about the figures: timing goals live in the benchmarks, not in tests.

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

for my $script (sort keys %figures)
{
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[ 'perl', "$top/test/bench/$script.pl", '--quick' ],
		'>' => \$stdout,
		'2>' => \$stderr);
	note("$script stderr:\n$stderr") unless $ok;
	ok($ok, "$script --quick exits 0");
	like($stdout, $figures{$script}, "$script --quick prints its RESULT lines");
	unlike($stdout, qr/SETUP FAILED/, "$script --quick set up its servers");
	note(join("\n", grep { /^RESULT/ } split /\n/, $stdout));
}

done_testing();
