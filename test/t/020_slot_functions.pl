
# Copyright (c) 2026, pg_hamonitor developers

# The slot functions of the witness against a live primary (wal_level =
# logical) and standby: hamonitor.create_slot() for physical and logical
# slots, idempotent and refusing a slot of another kind; its input checks,
# including a slot name crafted for SQL injection; hamonitor.advance_slot()
# forward, beyond the node's WAL and backwards; hamonitor.drop_slot() of a
# missing slot, and of a slot held by a real pg_receivewal: retried with
# backoff, then refused with the walsender's PID in the hint, and dropped
# once pg_receivewal goes away while it retries; the hamonitor.slots view.

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

# the default cluster, so that calls need not name it
my $cluster = 'default';

my ($primary, $standby) = create_ha_cluster(
	primary  => 'primary',
	standbys => ['standby'],
	logical  => 1);
my $witness = create_witness('witness');
ok(register_ha_cluster($witness, $cluster, $primary, $standby),
	'witness sees the primary and a streaming standby');
$primary->safe_psql('postgres', 'CREATE TABLE t (id integer)');

# SQL on the witness, which must succeed
sub wsql
{
	my ($sql) = @_;
	return $witness->safe_psql('postgres', $sql);
}

# the slots on the primary not named like the witness's managed ones
sub user_slots
{
	return $primary->safe_psql(
		'postgres',
		"SELECT coalesce(string_agg(slot_name, ',' ORDER BY slot_name), '')
		   FROM pg_catalog.pg_replication_slots
		  WHERE slot_name NOT LIKE 'hamonitor\\_%'");
}

# pg_lsn comparison evaluated on the primary
sub lsn_holds
{
	my ($expr) = @_;
	return $primary->safe_psql('postgres', "SELECT $expr");
}

# ---------------------------------------------------------------------
# The settings, with their defaults
# ---------------------------------------------------------------------

is(wsql('SHOW pg_hamonitor.slot_retry_count'),
	'5', 'slot_retry_count defaults to 5');
is(wsql('SHOW pg_hamonitor.slot_inactive_alert'),
	'1h', 'slot_inactive_alert defaults to 1h');
is(wsql('SHOW pg_hamonitor.slot_retained_alert'),
	'1GB', 'slot_retained_alert defaults to 1GB');
is(wsql('SHOW pg_hamonitor.manage_standby_slots'),
	'on', 'manage_standby_slots defaults to on');

# ---------------------------------------------------------------------
# create_slot(): physical, idempotent, logical, conflicting kinds
# ---------------------------------------------------------------------

is(wsql("SELECT hamonitor.create_slot('primary', 'phys1')"),
	'created', 'create_slot of a physical slot: created');
is( peer_slot(
		$primary, 'phys1',
		"slot_type || ':' || (restart_lsn IS NOT NULL) || ':' || temporary"),
	'physical:true:false',
	'the primary has phys1: physical, permanent, WAL reserved at once');
is(wsql("SELECT hamonitor.create_slot('primary', 'phys1')"),
	'exists', 'create_slot of the same physical slot again: exists');
is( wsql(
		"SELECT hamonitor.create_slot('primary', 'phys1', 'physical', NULL,
		                              'default')"),
	'exists',
	'create_slot with every argument spelt out: exists');

is( wsql(
		"SELECT hamonitor.create_slot('primary', 'logi1', 'logical',
		                              'test_decoding')"),
	'created',
	'create_slot of a logical slot with test_decoding: created');
is( peer_slot(
		$primary, 'logi1',
		"slot_type || ':' || plugin || ':' || database || ':' || temporary"),
	'logical:test_decoding:postgres:false',
	'the primary has logi1: logical, test_decoding, in database postgres');
is( wsql(
		"SELECT hamonitor.create_slot(node_name => 'primary',
		                              slot_name => 'logi1',
		                              slot_type => 'logical',
		                              plugin => 'test_decoding',
		                              cluster_name => 'default')"),
	'exists',
	'create_slot of the same logical slot (named arguments): exists');

# [ arguments of create_slot, expected SQLSTATE, what is tried ]
foreach my $case (
	[
		"'primary', 'phys1', 'logical', 'test_decoding'", '42710',
		'logical over an existing physical slot'
	],
	[
		"'primary', 'logi1'", '42710',
		'physical over an existing logical slot'
	],
	[
		"'primary', 'logi1', 'logical', 'pgoutput'", '42710',
		'logical with another plugin over an existing one'
	])
{
	my ($args, $expected, $what) = @$case;
	is_sqlstate($witness, "SELECT hamonitor.create_slot($args)",
		$expected, "create_slot $what: $expected");
}
is(peer_slot($primary, 'phys1', 'slot_type'),
	'physical', 'phys1 is still physical');
is(peer_slot($primary, 'logi1', 'plugin'),
	'test_decoding', 'logi1 still uses test_decoding');

my $longest = 'a' x 63;
is(wsql("SELECT hamonitor.create_slot('primary', '$longest')"),
	'created', 'a slot name of 63 bytes is accepted');
is(peer_slot($primary, $longest, 'slot_type'),
	'physical', 'the slot with the 63-byte name exists on the primary');
is(wsql("SELECT hamonitor.drop_slot('primary', '$longest')"),
	'dropped', 'the slot with the 63-byte name is dropped');

# ---------------------------------------------------------------------
# create_slot(): invalid input changes nothing on the peer
# ---------------------------------------------------------------------

is(user_slots(), 'logi1,phys1', 'the primary has phys1 and logi1');

my %bad_name = (
	'an empty slot name'                => "''",
	'a slot name of 64 bytes'           => "'" . ('a' x 64) . "'",
	'a slot name with upper case'       => "'Phys2'",
	'a slot name with a hyphen'         => "'phys-2'",
	'a slot name with a space'          => "'phys 2'",
	# U+00E9 in UTF-8
	'a slot name with a non-ASCII letter' => "'phys\xc3\xa9'");
foreach my $what (sort keys %bad_name)
{
	# as the server says: name_too_long for a long name, invalid_name else
	my $expected = $what =~ /64 bytes/ ? '42622' : '42602';
	is_sqlstate($witness,
		"SELECT hamonitor.create_slot('primary', $bad_name{$what})",
		$expected, "create_slot with $what: $expected");
}

# only superusers may touch the peers' slots
wsql('CREATE ROLE hamon_user LOGIN');

# [ SQL, expected SQLSTATE, what is tried ]
foreach my $case (
	[
		"hamonitor.create_slot('primary', 'x', 'foo')", '22023',
		'create_slot with an unknown slot type'
	],
	[
		"hamonitor.create_slot('primary', 'x', 'logical')", '22023',
		'create_slot logical without a plugin'
	],
	[
		"hamonitor.create_slot('primary', 'x', 'physical', 'test_decoding')",
		'22023', 'create_slot physical with a plugin'
	],
	[
		"hamonitor.create_slot('nosuch', 'x')", '42704',
		'create_slot on an unknown node'
	],
	[
		"hamonitor.create_slot('primary', 'x', cluster_name => 'nosuch')",
		'42704', 'create_slot in an unknown cluster'
	],
	[
		"hamonitor.create_slot(NULL, 'x')", '22004',
		'create_slot with a NULL node name'
	],
	[
		"hamonitor.create_slot('primary', NULL)", '22004',
		'create_slot with a NULL slot name'
	],
	[
		"hamonitor.create_slot('primary', 'x', NULL)", '22004',
		'create_slot with a NULL slot type'
	],
	[
		"hamonitor.drop_slot('primary', NULL)", '22004',
		'drop_slot with a NULL slot name'
	],
	[
		"hamonitor.advance_slot('primary', 'phys1', NULL)", '22004',
		'advance_slot with a NULL LSN'
	],
	[
		"hamonitor.create_slot('primary', 'perm_slot')", '42501',
		'create_slot by a non-superuser', 'hamon_user'
	],
	[
		"hamonitor.drop_slot('primary', 'phys1')", '42501',
		'drop_slot by a non-superuser', 'hamon_user'
	])
{
	my ($call, $expected, $what, $role) = @$case;
	my $sql = "SELECT $call";
	$sql = "SET ROLE $role;\n$sql" if defined $role;
	is_sqlstate($witness, $sql, $expected, "$what: $expected");
}

is(user_slots(), 'logi1,phys1',
	'none of the refused calls created or dropped a slot on the primary');

# ---------------------------------------------------------------------
# A slot name crafted for SQL injection never reaches the peer as SQL
# ---------------------------------------------------------------------

foreach my $evil ("x'; DROP TABLE t; --", 'x"); DROP TABLE t; --',
	"x\$\$; DROP TABLE t; --")
{
	my $lit = quote_literal($evil);
	is_sqlstate($witness, "SELECT hamonitor.create_slot('primary', $lit)",
		'42602', "create_slot refuses the slot name <$evil>: 42602");

	# drop and advance may check the name or find no such slot: either
	# way nothing may happen on the peer
	my ($state, $out) =
	  psql_result($witness, "SELECT hamonitor.drop_slot('primary', $lit)");
	ok( $state eq '42602' || ($state eq 'ok' && $out eq 'absent'),
		"drop_slot with the slot name <$evil>: refused or absent")
	  or diag("drop_slot: $state $out");
	my $lsn = $primary->lsn('flush');
	$state = sqlstate_of($witness,
		"SELECT hamonitor.advance_slot('primary', $lit, '$lsn')");
	like($state, qr/^(42602|42704)$/,
		"advance_slot with the slot name <$evil>: refused");
}
is( $primary->safe_psql(
		'postgres', "SELECT to_regclass('public.t') IS NOT NULL"),
	't',
	'table t still exists on the primary');
is(user_slots(), 'logi1,phys1',
	'no slot was created or dropped on the primary by the crafted names');

# ---------------------------------------------------------------------
# advance_slot(): physical and logical, beyond the WAL, backwards
# ---------------------------------------------------------------------

my $phys_before = peer_slot($primary, 'phys1', 'restart_lsn');
my $logi_before = peer_slot($primary, 'logi1', 'confirmed_flush_lsn');
$primary->safe_psql('postgres',
	'INSERT INTO t SELECT g FROM generate_series(1, 20000) g');
my $target = $primary->lsn('flush');
is(lsn_holds("'$target'::pg_lsn > '$phys_before'::pg_lsn"),
	't', 'the primary wrote WAL past phys1\'s restart_lsn');

is(wsql("SELECT hamonitor.advance_slot('primary', 'phys1', '$target')"),
	$target, 'advance_slot of phys1 returns the new position');
is(peer_slot($primary, 'phys1', 'restart_lsn'),
	$target, 'phys1\'s restart_lsn moved to the target on the primary');

my $logi_new =
  wsql("SELECT hamonitor.advance_slot('primary', 'logi1', '$target')");
is( lsn_holds(
		"'$logi_new'::pg_lsn > '$logi_before'::pg_lsn
		 AND '$logi_new'::pg_lsn <= '$target'::pg_lsn"),
	't',
	'advance_slot of logi1 returns a position past the old one, up to the target'
);
is(peer_slot($primary, 'logi1', 'confirmed_flush_lsn'),
	$logi_new, 'logi1\'s confirmed_flush_lsn is the position returned');

my $beyond = $primary->safe_psql('postgres',
	'SELECT pg_current_wal_lsn() + 17179869184::numeric');
# [ node, slot, target LSN, expected SQLSTATE, what is tried ]
foreach my $case (
	[ 'primary', 'phys1', $beyond, '22023', "phys1 beyond the primary's WAL" ],
	[ 'primary', 'logi1', $beyond, '22023', "logi1 beyond the primary's WAL" ],
	[ 'primary', 'phys1', $phys_before, '22023', 'phys1 backwards' ],
	[ 'primary', 'logi1', $logi_before, '22023', 'logi1 backwards' ])
{
	my ($node, $slot, $lsn, $expected, $what) = @$case;
	is_sqlstate($witness,
		"SELECT hamonitor.advance_slot('$node', '$slot', '$lsn')",
		$expected, "advance_slot of $what: $expected");
}
is(peer_slot($primary, 'phys1', 'restart_lsn'),
	$target, 'phys1 did not move on the refused calls');
is(peer_slot($primary, 'logi1', 'confirmed_flush_lsn'),
	$logi_new, 'logi1 did not move on the refused calls');
is_sqlstate($witness,
	"SELECT hamonitor.advance_slot('primary', 'nosuch', '$target')",
	'42704', 'advance_slot of an unknown slot: 42704');
is_sqlstate($witness,
	"SELECT hamonitor.advance_slot('nosuch', 'phys1', '$target')",
	'42704', 'advance_slot on an unknown node: 42704');

# ---------------------------------------------------------------------
# The hamonitor.slots view follows the probes
# ---------------------------------------------------------------------

ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'phys1',
		"slot_type = 'physical' AND plugin IS NULL AND NOT temporary
		 AND NOT active AND active_pid IS NULL AND restart_lsn = '$target'
		 AND NOT failover_risk AND inactive_since IS NOT NULL
		 AND probed_at IS NOT NULL"),
	'hamonitor.slots shows phys1, inactive, at its new position');
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'logi1',
		"slot_type = 'logical' AND plugin = 'test_decoding'
		 AND database = 'postgres' AND confirmed_flush_lsn = '$logi_new'
		 AND failover_risk"),
	'hamonitor.slots shows logi1 with its plugin, position and failover risk');
is( wsql(
		"SELECT count(*) FROM hamonitor.slots
		  WHERE slot_name IN ('phys1', 'logi1') AND alert IS NOT NULL"),
	'0',
	'no alert for fresh slots with the default thresholds');

# ---------------------------------------------------------------------
# A slot retaining more WAL than slot_retained_alert: one alert, cleared
# once advance_slot() lets the WAL go
# ---------------------------------------------------------------------

my $before_alert = last_event_id($witness);
ok(set_witness_guc($witness, 'slot_retained_alert', '1MB'),
	'slot_retained_alert lowered to 1MB');
$primary->safe_psql('postgres',
	'INSERT INTO t SELECT g FROM generate_series(1, 100000) g');
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'phys1',
		'retained_bytes > 1024 * 1024 AND alert IS NOT NULL'),
	'hamonitor.slots shows phys1 retaining over 1MB, with an alert');
ok( wait_for_event(
		$witness, $cluster, 'slot_alert',
		"node_name = 'primary' AND detail LIKE '%phys1%'", $before_alert),
	'a slot_alert event for phys1 on the primary');
like(status_value($witness, 'primary', 'slot_alerts', $cluster),
	qr/phys1/, 'hamonitor.status.slot_alerts of the primary names phys1');
is(status_value($witness, 'standby', 'slot_alerts', $cluster),
	'', 'no slot alert for the standby');

my $target2 = $primary->lsn('flush');
is(wsql("SELECT hamonitor.advance_slot('primary', 'phys1', '$target2')"),
	$target2, 'phys1 advanced past the WAL it retained');
ok( wait_for_event(
		$witness, $cluster, 'slot_alert_cleared',
		"node_name = 'primary' AND detail LIKE '%phys1%'", $before_alert),
	'a slot_alert_cleared event for phys1');
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'phys1',
		"alert IS NULL AND restart_lsn = '$target2'"),
	'hamonitor.slots shows phys1 at its new position, without alert');
is( count_events(
		$witness, $cluster, 'slot_alert', "detail LIKE '%phys1%'",
		$before_alert),
	'1',
	'exactly one slot_alert event for phys1');
ok(reset_witness_guc($witness, 'slot_retained_alert', '1GB'),
	'slot_retained_alert reset');

# ---------------------------------------------------------------------
# drop_slot(): missing, inactive
# ---------------------------------------------------------------------

is(wsql("SELECT hamonitor.drop_slot('primary', 'nosuch')"),
	'absent', 'drop_slot of a missing slot: absent');
is_sqlstate($witness, "SELECT hamonitor.drop_slot('nosuch', 'phys1')", '42704',
	'drop_slot on an unknown node: 42704');
is(wsql("SELECT hamonitor.drop_slot('primary', 'logi1')"),
	'dropped', 'drop_slot of logi1: dropped');
is(user_slots(), 'phys1', 'logi1 is gone from the primary');
is(wsql("SELECT hamonitor.drop_slot('primary', 'logi1')"),
	'absent', 'drop_slot of logi1 again: absent');
ok(wait_for_slot_view($witness, $cluster, 'primary', 'logi1', undef),
	'hamonitor.slots no longer shows logi1');

# ---------------------------------------------------------------------
# drop_slot() of a slot held by pg_receivewal
# ---------------------------------------------------------------------

my $rw  = start_receivewal($primary, 'phys1');
my $pid = wait_for_slot_active($primary, 'phys1');
ok(defined $pid && $pid =~ /^\d+$/, 'pg_receivewal holds phys1');
ok( wait_for_slot_view(
		$witness, $cluster, 'primary', 'phys1',
		"active AND active_pid = $pid AND inactive_since IS NULL"),
	'hamonitor.slots shows phys1 active with the walsender\'s PID');

my $log_offset = log_position($primary);
my $t0         = time;
my ($state, $out, $err) =
  psql_result($witness, "SELECT hamonitor.drop_slot('primary', 'phys1')");
my $elapsed = time - $t0;
is($state, '55006', 'drop_slot of the active slot fails with 55006');
like($err, qr/^HINT:[^\n]*\bPID $pid\b/m,
	'the hint names the PID of the walsender holding the slot');
# 5 tries with 100, 200, 400, 800 ms between them
cmp_ok($elapsed, '>=', 1.2,
	'drop_slot waited (exponential backoff) before giving up');
my $tries = count_in_log($primary,
	qr/ERROR:\s+replication slot "phys1" is active for PID $pid/, $log_offset);
note "elapsed ${elapsed}s, $tries tries logged by the primary";
cmp_ok($tries, '>=', 2, 'the drop was retried on the primary');
cmp_ok($tries, '<=', 5, 'no more than slot_retry_count (5) tries');
is(peer_slot($primary, 'phys1', 'active_pid'),
	$pid, 'phys1 is still there, held by the same walsender');

# 8 tries: about 25 s of backoff, pg_receivewal is killed meanwhile
ok(set_witness_guc($witness, 'slot_retry_count', '8'),
	'slot_retry_count raised to 8');
$log_offset = log_position($primary);
my $bg = start_bg_psql($witness,
	"SELECT hamonitor.drop_slot('primary', 'phys1')");
$primary->wait_for_log(qr/replication slot "phys1" is active for PID $pid/,
	$log_offset);
note 'drop_slot tried once, killing pg_receivewal';
stop_helper($rw);
is(finish_bg_psql($bg), 'ok',
	'drop_slot succeeds once pg_receivewal is gone');
is($bg->{out}, 'dropped', 'drop_slot returns dropped');
is(user_slots(), '', 'phys1 is gone from the primary');
ok(wait_for_slot_view($witness, $cluster, 'primary', 'phys1', undef),
	'hamonitor.slots no longer shows phys1');
ok(reset_witness_guc($witness, 'slot_retry_count', '5'),
	'slot_retry_count reset');

is( $primary->safe_psql(
		'postgres', "SELECT to_regclass('public.t') IS NOT NULL"),
	't',
	'table t survived the whole test');

done_testing();
