
# Copyright (c) 2026, pg_hamonitor developers

# A server from another initdb registered in a cluster is flagged: the
# cluster learns its system identifier from the first node probed, and a
# node whose identifier differs gets sysid_mismatch and an event.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $genuine  = create_node('genuine');
my $impostor = create_node('impostor');
my $witness  = create_witness('witness');

my $genuine_sysid = $genuine->safe_psql('postgres',
	'SELECT system_identifier FROM pg_control_system()');
my $impostor_sysid = $impostor->safe_psql('postgres',
	'SELECT system_identifier FROM pg_control_system()');
isnt($impostor_sysid, $genuine_sysid,
	'the two servers have different system identifiers');

# the genuine node first, so that the cluster learns its identifier
register_node($witness, 'genuine', $genuine->connstr('postgres'), 'main');
ok( wait_for_status($witness, 'genuine', "health = 'up' AND role = 'primary'"),
	'genuine node is probed');
ok( $witness->poll_query_until(
		'postgres',
		"SELECT system_identifier FROM hamonitor.cluster
		  WHERE cluster_name = 'main'", $genuine_sysid),
	'the cluster learnt the genuine node\'s system identifier');

register_node($witness, 'impostor', $impostor->connstr('postgres'), 'main');
ok(wait_for_status($witness, 'impostor', 'sysid_mismatch'),
	'the node from another initdb is flagged sysid_mismatch');
ok( wait_for_event(
		$witness, 'main', 'sysid_mismatch', "node_name = 'impostor'"),
	'a sysid_mismatch event for it');

# the impostor has been probed a few more times; the genuine node stays clean
ok(wait_for_more_probes($witness, "node_name = 'impostor'", 3),
	'the impostor keeps being probed');
is(status_value($witness, 'genuine', "sysid_mismatch || '/' || health"),
	'false/up', 'the genuine node is not flagged and still up');
is(count_events($witness, 'main', 'sysid_mismatch', "node_name = 'genuine'"),
	'0',
	'no sysid_mismatch event for the genuine node');
is(cluster_value($witness, 'main', 'system_identifier'),
	$genuine_sysid,
	'the impostor did not change the cluster\'s system identifier');
is(status_value($witness, 'impostor', 'sysid_mismatch'),
	't', 'the impostor is still flagged');

# the impostor alone in another cluster is not a mismatch there
register_node($witness, 'impostor', $impostor->connstr('postgres'), 'other');
ok(wait_for_status($witness, 'impostor', "health = 'up'", 'other'),
	'the impostor, registered alone in another cluster, is probed');
is(status_value($witness, 'impostor', 'sysid_mismatch', 'other'),
	'f', 'and not flagged there');

done_testing();
