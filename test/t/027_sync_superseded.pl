
# Copyright (c) 2026, pg_hamonitor developers

# A 'sync' action open when the primary dies does not hold up the failover
# (README "Durability"): the witness reaches the primary through a proxy
# that, from some moment on, holds every new connection without
# forwarding it (a primary that hangs for new sessions while the probe's
# session and the standbys' streams go on).  A change of k makes the
# witness plan a 'sync' action, whose connection to the primary hangs
# there (connect_timeout is 30 s here); then the primary is killed.  The
# failover supersedes the sync action (closed as failed, its worker
# stopped, an action_superseded event) and promotes a standby well within
# connect_timeout, instead of waiting for the sync action to fail.  The
# same with a manual promote() (in a cluster whose primary is in
# maintenance, so that nothing is automatic): it supersedes the sync
# action instead of being refused with 55006.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $connect_timeout = 30;
my $witness = create_witness('witness', failover => 1,
	extra_conf => "pg_hamonitor.connect_timeout = '${connect_timeout}s'\n");

# A primary the witness and two standbys reach through a proxy, under
# quorum; then the proxy holds new sessions and k = 2 makes the witness
# plan a sync action, whose connection to the primary hangs there.
# Returns ($primary, $sync_action_id, $event_id_before, @standbys).
sub hung_sync
{
	my ($cluster, $p, %params) = @_;
	my $primary = PostgreSQL::Test::Cluster->new("${p}primary");
	$primary->init(allows_streaming => 1);
	$primary->start;
	my $proxy = start_proxy($primary);
	$primary->backup('b');
	my @standbys;
	foreach my $name ("${p}sb1", "${p}sb2")
	{
		my $sb = PostgreSQL::Test::Cluster->new($name);
		$sb->init_from_backup($primary, 'b', has_streaming => 0);
		$sb->append_conf('postgresql.conf',
			"primary_conninfo = 'host=127.0.0.1 port=$proxy->{port} application_name=$name'\n");
		$sb->set_standby_mode;
		$sb->start;
		push @standbys, $sb;
	}
	ok( register_ha_cluster(
			$witness, $cluster, $primary, @standbys,
			{
				conninfo => {
					$primary->name =>
					  "host=127.0.0.1 port=$proxy->{port} dbname=postgres"
				}
			}),
		"$cluster: witness sees the primary (through the proxy) and two standbys");
	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_maintenance('${p}primary', true, '$cluster')")
	  if $params{maintenance};
	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum')");
	ok( $primary->poll_query_until(
			'postgres',
			"SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'",
			'2'),
		"$cluster: both standbys acknowledge as a quorum");
	ok( $witness->poll_query_until(
			'postgres',
			"SELECT count(*) FROM hamonitor.action
			  WHERE cluster_name = '$cluster'
			    AND state NOT IN ('done', 'failed', 'abandoned')", '0'),
		"$cluster: no action in progress");

	# new sessions to the primary hang from here on; k = 2 needs a sync
	proxy_hold_new($proxy);
	my $before = last_event_id($witness);
	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous_k', '2')");
	ok( $witness->poll_query_until(
			'postgres',
			"SELECT count(*) FROM hamonitor.action
			  WHERE cluster_name = '$cluster' AND kind = 'sync'
			    AND state = 'running'", '1'),
		"$cluster: a sync action is running");
	my $held = 0;
	foreach (1 .. 300)
	{
		$held = proxy_held($proxy);
		last if $held > 0;
		select(undef, undef, undef, 0.1);
	}
	cmp_ok($held, '>', 0,
		"$cluster: its connection to the primary hangs in the proxy");
	my $sync_id = $witness->safe_psql('postgres',
		"SELECT action_id FROM hamonitor.action
		  WHERE cluster_name = '$cluster' AND kind = 'sync' AND state = 'running'");
	return ($primary, $sync_id, $before, @standbys);
}

# the sync action closed as superseded by $by, with its event, and
# nothing set on the old primary
sub superseded
{
	my ($cluster, $sync_id, $before, $by, $old_primary) = @_;
	is( $witness->safe_psql(
			'postgres',
			"SELECT state || ' ' || error_sqlstate || ' '
			        || (outcome LIKE 'superseded by $by%')
			   FROM hamonitor.action WHERE action_id = $sync_id"),
		'failed 57014 true',
		"$cluster: the sync action was closed as superseded by $by");
	ok( wait_for_event(
			$witness, $cluster, 'action_superseded',
			"detail LIKE 'sync action $sync_id closed%'", $before),
		"$cluster: action_superseded event");
	is( count_events(
			$witness, $cluster, 'synchronous_standby_names_set',
			"node_name = '$old_primary'", $before),
		0,
		"$cluster: the sync action set nothing on the old primary");
	return;
}

# ---------------------------------------------------------------------
# the automatic failover
# ---------------------------------------------------------------------

my ($primary, $sync_id, $before, @standbys) = hung_sync('main', '');
my $t0 = time();
kill9_all($primary);
ok(wait_for_event($witness, 'main', 'promoted', undef, $before),
	'main: a standby is promoted');
my $elapsed = time() - $t0;
cmp_ok($elapsed, '<', $connect_timeout / 2,
	sprintf('main: promoted %.1f s after the kill, without waiting for the sync action (connect_timeout %d s)',
		$elapsed, $connect_timeout));
superseded('main', $sync_id, $before, 'the failover', 'primary');
is(count_events($witness, 'main', 'promoted', undef, $before),
	1, 'main: one promotion');

# ---------------------------------------------------------------------
# a manual promotion (the primary in maintenance: nothing automatic)
# ---------------------------------------------------------------------

($primary, $sync_id, $before, @standbys) =
  hung_sync('manual', 'm_', maintenance => 1);
kill9_all($primary);
ok(wait_for_status($witness, 'm_primary', "health = 'down'", 'manual'),
	'manual: the witness sees the primary down');
$t0 = time();
my ($ret, $stdout, $stderr) = $witness->psql('postgres',
	"SELECT hamonitor.promote('m_sb1', 'manual', force => true)");
$elapsed = time() - $t0;
is($ret, 0, 'manual: promote() during the sync action succeeds (not 55006)')
  or diag($stderr);
like($stdout, qr/promoted "m_sb1"/, 'manual: its result says so');
cmp_ok($elapsed, '<', $connect_timeout / 2,
	sprintf('manual: it returned after %.1f s, without waiting for the sync action',
		$elapsed));
superseded('manual', $sync_id, $before, 'the promote of node "m_sb1"',
	'm_primary');

done_testing();
