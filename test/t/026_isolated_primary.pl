
# Copyright (c) 2026, pg_hamonitor developers

# An isolated primary (README "Durability"): the primary's connections to
# the witness and to its standbys go through one TCP forwarder, which is
# cut, while a client keeps committing on the primary directly (its Unix
# socket).  The witness promotes a standby.  Under synchronous = 'quorum'
# the old primary's commits wait for a standby that no longer hears it:
# no write it acknowledged is missing on the new primary.  Under 'off' it
# goes on acknowledging, and the test counts the writes that are lost, so
# that the difference is shown, not assumed.

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

my $witness = create_witness('witness', failover => 1);
my $tmp = PostgreSQL::Test::Utils::tempdir();

# one row per commit, "ack N" once commit N was acknowledged
sub start_writer
{
	my ($node, $n) = @_;
	my $script = "$tmp/writer.sql";
	open my $fh, '>', $script or die "writer script: $!";
	print $fh "INSERT INTO t VALUES ($_);\n\\echo ack $_\n" foreach 1 .. $n;
	close $fh;
	# its output goes to a file: a pipe nobody reads would stop psql after
	# 64 kB of "ack" lines, and with it the writes
	my %w = (out => "$tmp/writer_" . $node->name . '.out', err => '');
	$w{h} = IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $script
		],
		'<', \undef, '>', $w{out}, '2>', \$w{err});
	return \%w;
}

# returns the number of acknowledged ids missing on the new primary
sub isolate
{
	my ($mode) = @_;
	my $cluster = "iso_$mode";

	my $primary = PostgreSQL::Test::Cluster->new("p_$mode");
	$primary->init(allows_streaming => 1);
	$primary->start;
	my $proxy = start_proxy($primary);
	$primary->backup("b_$mode");
	my @standbys;
	foreach my $name ("s1_$mode", "s2_$mode")
	{
		my $sb = PostgreSQL::Test::Cluster->new($name);
		$sb->init_from_backup($primary, "b_$mode", has_streaming => 0);
		$sb->append_conf('postgresql.conf',
			"primary_conninfo = 'host=127.0.0.1 port=$proxy->{port} application_name=$name'\n"
		);
		$sb->set_standby_mode;
		$sb->start;
		push @standbys, $sb;
	}
	ok( register_ha_cluster(
			$witness,
			$cluster,
			$primary,
			@standbys,
			{
				conninfo => {
					$primary->name =>
					  "host=127.0.0.1 port=$proxy->{port} dbname=postgres"
				}
			}),
		"$mode: witness sees the primary (through the forwarder) and its standbys");
	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', '$mode')");
	if ($mode eq 'quorum')
	{
		ok( $primary->poll_query_until(
				'postgres',
				"SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'",
				'2'),
			"$mode: both standbys acknowledge as a quorum");
	}
	$primary->safe_psql('postgres', 'CREATE TABLE t (id integer PRIMARY KEY)');

	my $w = start_writer($primary, 1_000_000);
	ok($primary->poll_query_until('postgres', 'SELECT count(*) >= 100 FROM t'),
		"$mode: the client is writing");
	my $before = last_event_id($witness);
	stop_helper($proxy);    # the partition: witness and standbys lose it
	ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
		"$mode: a standby is promoted");
	my $new = event_value($witness, $cluster, 'promoted', 'min(node_name)',
		undef, $before);
	my ($new_primary) = grep { $_->name eq $new } @standbys;
	ok(wait_until_promoted($new_primary), "$mode: $new is out of recovery");
	# the isolated primary has had its chance to acknowledge more
	wait_seconds($witness, 2);
	$primary->stop('immediate');
	$w->{h}->finish;
	my @acked = slurp_file($w->{out}) =~ /^ack (\d+)$/mg;
	my $max = @acked ? $acked[-1] : 0;
	cmp_ok($max, '>=', 100, "$mode: $max commits acknowledged in all");
	my $missing = $new_primary->safe_psql(
		'postgres',
		"SELECT count(*) FROM generate_series(1, $max) g
		  WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = g)");
	note "$mode: $missing of $max acknowledged writes missing on the new primary";
	$_->stop('immediate') foreach @standbys;
	return $missing;
}

is(isolate('quorum'), '0',
	'quorum: no write the isolated primary acknowledged is lost');
cmp_ok(isolate('off'), '>', 0,
	'off: the isolated primary acknowledged writes that are lost');

done_testing();
