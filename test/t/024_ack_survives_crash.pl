
# Copyright (c) 2026, pg_hamonitor developers

# Acknowledged writes survive a crash under synchronous = 'quorum' (README
# "Durability"): a client commits rows one at a time, as fast as it can,
# and prints each id once the server acknowledged its commit; the primary
# is killed with SIGKILL (postmaster and every child at once); after the
# failover, every acknowledged id is on the new primary.  Five rounds on
# one cluster of a primary and five standbys (ANY 1): after each round the
# dead primary is unregistered, and the next round starts once the new
# primary's list no longer names it.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $rounds = 5;
my $cluster = 'main';
my $tmp = PostgreSQL::Test::Utils::tempdir();

# a psql that commits one row per statement and echoes its id afterwards:
# an "ack N" line means the commit of N was acknowledged
sub start_writer
{
	my ($node, $from, $n) = @_;
	my $script = "$tmp/writer.sql";
	open my $fh, '>', $script or die "writer script: $!";
	print $fh "INSERT INTO t VALUES ($_);\n\\echo ack $_\n"
	  foreach $from .. $from + $n - 1;
	close $fh;
	# its output goes to a file: a pipe nobody reads would stop psql after
	# 64 kB of "ack" lines, and the kill would find it idle
	my %w = (out => "$tmp/writer_$from.out", err => '');
	$w{h} = IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $script
		],
		'<', \undef, '>', $w{out}, '2>', \$w{err});
	return \%w;
}

my ($primary, @standbys) = create_ha_cluster(
	primary  => 'p0',
	standbys => [ map { "s$_" } 1 .. $rounds ]);
my $witness = create_witness('witness', failover => 1);
ok(register_ha_cluster($witness, $cluster, $primary, @standbys),
	'witness sees the primary and five streaming standbys');
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum')");
$primary->safe_psql('postgres', 'CREATE TABLE t (id integer PRIMARY KEY)');

my $next_id = 1;
my @all_acked;
foreach my $round (1 .. $rounds)
{
	my $n = scalar(@standbys);
	ok( $primary->poll_query_until(
			'postgres',
			"SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'",
			$n),
		"round $round: the $n standbys acknowledge as a quorum");
	ok( $witness->poll_query_until(
			'postgres',
			"SELECT durability = 'guaranteed' AND quorum_standbys = $n
			   FROM hamonitor.cluster_durability
			  WHERE cluster_name = '$cluster'"),
		"round $round: the witness saw ANY 1 of $n applied");

	my $w = start_writer($primary, $next_id, 1_000_000);
	ok( $primary->poll_query_until(
			'postgres', "SELECT count(*) >= 200 FROM t WHERE id >= $next_id"),
		"round $round: the client is writing");
	my $before = last_event_id($witness);
	kill9_all($primary);
	$w->{h}->finish;    # psql stops at the broken connection
	my @acked = slurp_file($w->{out}) =~ /^ack (\d+)$/mg;
	cmp_ok(scalar(@acked), '>=', 200,
		"round $round: "
		  . scalar(@acked)
		  . ' commits acknowledged before the crash');
	push @all_acked, @acked;

	ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
		"round $round: a standby is promoted");
	my $new = event_value($witness, $cluster, 'promoted', 'min(node_name)',
		undef, $before);
	my ($new_primary) = grep { $_->name eq $new } @standbys;
	ok(wait_until_promoted($new_primary), "round $round: $new is primary");

	my $max = $all_acked[-1];
	my $missing = $new_primary->safe_psql(
		'postgres',
		"SELECT count(*) FROM unnest('{" . join(',', @all_acked) . "}'::int[]) a
		  WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = a)");
	is($missing, '0',
		"round $round: every acknowledged id so far ("
		  . scalar(@all_acked)
		  . ") is on the new primary");

	last if $round == $rounds;

	# the dead primary leaves; the next round starts on the new one
	unregister_node($witness, $primary->name, $cluster);
	$next_id = $max + 1_000_000;
	$primary = $new_primary;
	@standbys = grep { $_ != $new_primary } @standbys;

}

done_testing();
