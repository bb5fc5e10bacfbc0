
# Copyright (c) 2026, pg_hamonitor developers

# Acknowledged writes survive a crash under synchronous = 'quorum' (README
# "Durability"): a client commits rows one at a time, as fast as it can,
# and prints each id once the server acknowledged its commit; the primary
# is killed with SIGKILL (postmaster and every child at once); after the
# failover, every acknowledged id is on the new primary.  Five rounds, each
# on a fresh three-node cluster (primary, two standbys, ANY 1).

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
my $witness = create_witness('witness', failover => 1);
my $tmp = PostgreSQL::Test::Utils::tempdir();

# a psql that commits one row per statement and echoes its id afterwards:
# an "ack N" line means the commit of N was acknowledged
sub start_writer
{
	my ($node, $n) = @_;
	my $script = "$tmp/writer.sql";
	open my $fh, '>', $script or die "writer script: $!";
	print $fh "INSERT INTO t VALUES ($_);\n\\echo ack $_\n" foreach 1 .. $n;
	close $fh;
	my %w = (out => '', err => '');
	$w{h} = IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $script
		],
		'<', \undef, '>', \$w{out}, '2>', \$w{err});
	return \%w;
}

foreach my $round (1 .. $rounds)
{
	my $cluster = "r$round";
	my ($primary, $sb1, $sb2) = create_ha_cluster(
		primary  => "p$round",
		standbys => [ "a$round", "b$round" ]);
	ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
		"round $round: witness sees the cluster");
	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum')"
	);
	ok( $primary->poll_query_until(
			'postgres',
			"SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'",
			'2'),
		"round $round: both standbys acknowledge as a quorum");
	ok( $witness->poll_query_until(
			'postgres',
			"SELECT durability FROM hamonitor.cluster_durability
			  WHERE cluster_name = '$cluster'", 'guaranteed'),
		"round $round: the witness saw the quorum applied");
	$primary->safe_psql('postgres', 'CREATE TABLE t (id integer PRIMARY KEY)');

	my $w = start_writer($primary, 1_000_000);
	ok($primary->poll_query_until('postgres', 'SELECT count(*) >= 200 FROM t'),
		"round $round: the client is writing");
	my $before = last_event_id($witness);
	kill9_all($primary);
	$w->{h}->finish;    # psql stops at the broken connection
	my @acked = $w->{out} =~ /^ack (\d+)$/mg;
	cmp_ok(scalar(@acked), '>=', 200,
		"round $round: " . scalar(@acked) . ' commits acknowledged before the crash');

	ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
		"round $round: a standby is promoted");
	my $new = event_value($witness, $cluster, 'promoted', 'min(node_name)',
		undef, $before);
	my $new_primary = $new eq $sb1->name ? $sb1 : $sb2;
	ok(wait_until_promoted($new_primary), "round $round: $new is primary");

	my $max = $acked[-1];
	my $missing = $new_primary->safe_psql(
		'postgres',
		"SELECT count(*) FROM generate_series(1, $max) g
		  WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = g)");
	is($missing, '0',
		"round $round: all $max acknowledged ids are on the new primary");

	$_->stop('immediate') foreach ($sb1, $sb2);
	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'off');
		 SELECT hamonitor.unregister_node(node_name, '$cluster')
		   FROM hamonitor.node WHERE cluster_name = '$cluster'");
}

done_testing();
