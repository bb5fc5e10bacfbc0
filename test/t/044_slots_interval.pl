
# Copyright (c) 2026, pg_hamonitor developers

# The probe reads a node's replication slots (pg_replication_slots, half of
# what a probe costs an idle peer) only every pg_hamonitor.slots_interval:
# the probes in between keep the last list read.  A new session reads them
# at its first probe, a primary with a logical slot at every probe, and a
# slots_interval that has passed makes the next probe read them;
# hamonitor.slots.probed_at is when they were read.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $peer    = create_node('peer', allows_streaming => 'logical');
my $witness = create_witness('witness');

is( $witness->safe_psql(
		'postgres',
		"SELECT boot_val FROM pg_settings WHERE name = 'pg_hamonitor.slots_interval'"),
	'10000',
	'slots_interval is 10s by default');

my $node_id =
  register_node($witness, 'peer', $peer->connstr('postgres'), 'main');
ok(wait_for_status($witness, 'peer', "health = 'up'"), 'peer is probed');

# whether the witness's last word on the peer's slots names this one
my $has_slot = sub {
	my ($slot) = @_;
	return "SELECT coalesce(slots @> '[{\"slot_name\": \"$slot\"}]', false)
	          FROM hamonitor.node_state WHERE node_id = $node_id";
};

ok(set_witness_guc($witness, 'slots_interval', '1h'),
	'slots_interval reloaded as 1h');
wait_seconds($witness, 1);    # the worker has reloaded too
$peer->safe_psql('postgres',
	"SELECT pg_create_physical_replication_slot('between_reads')");
my $probed_before = $witness->safe_psql('postgres',
	"SELECT last_probe_at FROM hamonitor.node_state WHERE node_id = $node_id");
wait_seconds($witness, 3);
cmp_ok(
	$witness->safe_psql(
		'postgres',
		"SELECT count(*) FROM hamonitor.lsn_history
		  WHERE node_id = $node_id AND success AND probed_at > '$probed_before'"),
	'>=', 5,
	'the peer was probed meanwhile');
is($witness->safe_psql('postgres', $has_slot->('between_reads')),
	'f', 'a probe between two reads of the slots does not read them');

# a new session reads them at its first probe
$peer->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
ok($witness->poll_query_until('postgres', $has_slot->('between_reads'), 't'),
	'the first probe of a new session reads the slots');

# hamonitor.slots says when the list was read, not when the node was last
# probed
my $read_at = $witness->safe_psql('postgres',
	"SELECT probed_at FROM hamonitor.slots WHERE slot_name = 'between_reads'");
wait_seconds($witness, 2);
is( $witness->safe_psql(
		'postgres',
		"SELECT probed_at = '$read_at' FROM hamonitor.slots
		  WHERE slot_name = 'between_reads'"),
	't',
	'hamonitor.slots.probed_at stays at the read');
cmp_ok(
	$witness->safe_psql(
		'postgres',
		"SELECT extract(epoch FROM last_probe_at - '$read_at')
		   FROM hamonitor.node_state WHERE node_id = $node_id"),
	'>=', 1,
	'while the node is probed on');

# once slots_interval has passed, the next probe reads them
$peer->safe_psql('postgres',
	"SELECT pg_drop_replication_slot('between_reads')");
ok(set_witness_guc($witness, 'slots_interval', '1s'),
	'slots_interval reloaded as 1s');
ok($witness->poll_query_until('postgres', $has_slot->('between_reads'), 'f'),
	'a probe after slots_interval reads them again');

ok(set_witness_guc($witness, 'slots_interval', '1h'),
	'slots_interval reloaded as 1h again');
wait_seconds($witness, 1);

# a primary with a logical slot has its slots read at every probe: a
# failover loses them, and the report of what it lost needs their last
# positions
$peer->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('logical_one', 'test_decoding')");
$peer->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
ok($witness->poll_query_until('postgres', $has_slot->('logical_one'), 't'),
	'the logical slot is read with the new session');
$peer->safe_psql('postgres',
	"SELECT pg_create_physical_replication_slot('seen_at_once')");
ok($witness->poll_query_until('postgres', $has_slot->('seen_at_once'), 't'),
	'a primary with a logical slot has its slots read at every probe');

ok(wait_for_status($witness, 'peer', "health = 'up'"),
	'the peer is up (again) after its session was ended');

done_testing();
