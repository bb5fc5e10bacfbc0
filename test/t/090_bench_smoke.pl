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

# the benchmarks start the servers of the installation the other tests use
# (the first pg_ctl on PATH, as make installcheck sets it), not by default
# /usr/lib/postgresql/15/bin
unless ($ENV{PG_BINDIR})
{
	my ($dir) = grep { -x "$_/pg_ctl" } split /:/, $ENV{PATH};
	$ENV{PG_BINDIR} = $dir if defined $dir;
}
my %figures = (
	failover_time  => qr/^RESULT failover_time writes_accepted /m,
	false_failover => qr/^RESULT false_failover /m,
	probe_scale    => qr/^RESULT probe_scale /m,
	history_cost   => qr/^RESULT history_cost /m);

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
