
# Copyright (c) 2026, pg_hamonitor developers

# The README's least-privilege peer role, tested: the roles and grants of
# the README's "Peer setup" section are run as they are written on the
# primary (they replicate to the standbys), the nodes are registered with
# that role (not a superuser), and the standbys stream as a separate
# replication role.  With it, the witness must: probe (including the WAL
# receiver's status), manage the standbys' slots, run the slot functions,
# fail over after a crash and repoint the second standby (which keeps its
# own replication user), fence the old primary when it comes back, and
# switch over with a superuser session and a client session open on the
# old primary (the client's session is ended; the superuser's is left
# alone, as pg_signal_backend allows, but turns read-only).  Without the
# grant on synchronous_standby_names, the event of a failed quorum names
# it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';

# ---------------------------------------------------------------------
# The README's peer setup, as written
# ---------------------------------------------------------------------

my $readme_path = "$ENV{TESTDIR}/README.md";
$readme_path = "$FindBin::RealBin/../../README.md" unless -f $readme_path;
my $readme = slurp_file($readme_path);
my ($peer_setup) = $readme =~ /^## Peer setup\n(.*?)^## /ms;
ok(defined $peer_setup, 'README has a "Peer setup" section');
$peer_setup = '' unless defined $peer_setup;

# every ```sql block of the section, without psql meta-commands
my $setup_sql = '';
while ($peer_setup =~ /^```sql\n(.*?)^```/msg)
{
	$setup_sql .= join('', grep { !/^\s*\\/ } split /^/, $1);
}
note "peer setup SQL from the README:\n$setup_sql";
like($setup_sql, qr/CREATE ROLE hamonitor LOGIN/,
	'the README creates the witness role hamonitor');
like($setup_sql, qr/CREATE ROLE replicator LOGIN REPLICATION/,
	'the README creates a separate replication role replicator');
unlike($setup_sql, qr/SUPERUSER/i,
	'the README gives no role SUPERUSER');

# the primary, with wal_level = logical for a logical slot; the roles are
# made before the base backup, so the standbys have them as well
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 'logical');
$primary->start;
$primary->safe_psql('postgres', $setup_sql);
# a client of the application, to be ended by the fence
$primary->safe_psql('postgres',
	'CREATE ROLE app LOGIN; GRANT pg_write_all_data TO app');
$primary->backup('lp_backup');

# a standby streaming as the replication role, naming itself
sub add_lp_standby
{
	my ($name) = @_;
	my $sb = PostgreSQL::Test::Cluster->new($name);
	$sb->init_from_backup($primary, 'lp_backup', has_streaming => 0);
	$sb->append_conf('postgresql.conf',
		sprintf("primary_conninfo = 'host=%s port=%d user=replicator application_name=%s'\n",
			$primary->host, $primary->port, $name));
	$sb->set_standby_mode;
	$sb->start;
	$primary->wait_for_catchup($name, 'replay', $primary->lsn('write'));
	return $sb;
}
my $sb1 = add_lp_standby('sb1');
my $sb2 = add_lp_standby('sb2');

is( $primary->safe_psql(
		'postgres',
		"SELECT string_agg(usename || ':' || application_name, ','
		                   ORDER BY application_name)
		   FROM pg_stat_replication"),
	'replicator:sb1,replicator:sb2',
	'both standbys stream as the replication role');
foreach my $node ($primary, $sb1, $sb2)
{
	is( $node->safe_psql(
			'postgres',
			"SELECT rolsuper::text || rolcreaterole::text || rolcreatedb::text
			   FROM pg_roles WHERE rolname = 'hamonitor'"),
		'falsefalsefalse',
		'hamonitor is no superuser, cannot create roles or databases on '
		  . $node->name);
}

# the witness itself is a superuser locally; only its peer role is limited
my $witness = create_witness('witness', failover => 1);

# conninfo of a node as the witness's role
sub lp_conninfo
{
	my ($node) = @_;
	return $node->connstr('postgres') . ' user=hamonitor';
}

my %priority = (primary => 100, sb1 => 100, sb2 => 50);
foreach my $node ($primary, $sb1, $sb2)
{
	$witness->safe_psql(
		'postgres',
		sprintf(
			'SELECT hamonitor.register_node(%s, %s, %s, priority => %d)',
			quote_literal($node->name), quote_literal(lp_conninfo($node)),
			quote_literal($cluster), $priority{ $node->name }));
}
ok( wait_for_status(
		$witness, 'primary', "health = 'up' AND role = 'primary'", $cluster),
	'the witness sees the primary up');
foreach my $sb ($sb1, $sb2)
{
	ok( wait_for_status(
			$witness, $sb->name,
			"health = 'up' AND role = 'standby'
			 AND wal_receiver_status = 'streaming'
			 AND upstream_port = ${\ $primary->port }", $cluster),
		$sb->name . ': up, and its WAL receiver status is readable (streaming)');
}
is( $primary->safe_psql(
		'postgres',
		"SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity
		  WHERE application_name LIKE 'pg\\_hamonitor/%'"),
	'hamonitor',
	'the witness is connected to the primary as hamonitor');

# ---------------------------------------------------------------------
# Managed standby slots: created on the primary, primary_slot_name set
# ---------------------------------------------------------------------

ok( wait_for_peer_slot(
		$primary,
		"count(*) FILTER (WHERE slot_name IN ('hamonitor_sb1', 'hamonitor_sb2')
		                    AND active) = 2"),
	'managed slots hamonitor_sb1 and hamonitor_sb2 are on the primary, active');
foreach my $sb ($sb1, $sb2)
{
	my $name = $sb->name;
	ok( $sb->poll_query_until(
			'postgres',
			"SELECT slot_name || ':' || status FROM pg_stat_wal_receiver",
			"hamonitor_$name:streaming"),
		"$name streams through hamonitor_$name (primary_slot_name set by ALTER SYSTEM)");
}

# ---------------------------------------------------------------------
# The slot functions
# ---------------------------------------------------------------------

$primary->safe_psql('postgres',
	"CREATE TABLE t (id integer PRIMARY KEY, phase text);
	 INSERT INTO t SELECT g, 'before' FROM generate_series(1, 1000) g;");

sub wsql
{
	my ($sql) = @_;
	my ($state, $out, $err) = psql_result($witness, $sql);
	return $state eq 'ok' ? $out : "$state: $err";
}

is(wsql("SELECT hamonitor.create_slot('primary', 'lp_phys', cluster_name => '$cluster')"),
	'created', 'create_slot of a physical slot');
is(peer_slot($primary, 'lp_phys', 'slot_type'),
	'physical', 'the physical slot is on the primary');
is( wsql(
		"SELECT hamonitor.create_slot('primary', 'lp_logi', 'logical',
		                              'test_decoding', cluster_name => '$cluster')"),
	'created',
	'create_slot of a logical slot');
$primary->safe_psql('postgres', "INSERT INTO t VALUES (1001, 'slot')");
my $target = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
is( wsql(
		"SELECT hamonitor.advance_slot('primary', 'lp_logi', '$target',
		                               cluster_name => '$cluster')"),
	$target,
	'advance_slot moves the logical slot to the flush position');
is(peer_slot($primary, 'lp_logi', 'confirmed_flush_lsn'),
	$target, 'the logical slot was advanced on the primary');
is(wsql("SELECT hamonitor.drop_slot('primary', 'lp_logi', '$cluster')"),
	'dropped', 'drop_slot of the logical slot');
is(wsql("SELECT hamonitor.drop_slot('primary', 'lp_phys', '$cluster')"),
	'dropped', 'drop_slot of the physical slot');
is( $primary->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_replication_slots
		  WHERE slot_name IN ('lp_phys', 'lp_logi')"),
	'0',
	'both slots are gone from the primary');

foreach my $sb ($sb1, $sb2)
{
	$primary->wait_for_catchup($sb->name, 'replay', $primary->lsn('write'));
}

# ---------------------------------------------------------------------
# Crash failover: sb1 promoted, sb2 repointed with its own user
# ---------------------------------------------------------------------

my $mark = last_event_id($witness);
kill9_all($primary);

ok(wait_for_event($witness, $cluster, 'promoted', "node_name = 'sb1'", $mark),
	'failover: sb1 is promoted after the crash of the primary');
ok($sb1->poll_query_until('postgres', 'SELECT pg_is_in_recovery()', 'f'),
	'failover: sb1 is out of recovery');
ok(wait_for_event($witness, $cluster, 'repointed', "node_name = 'sb2'", $mark),
	'failover: sb2 is repointed');
ok( $sb2->poll_query_until(
		'postgres',
		"SELECT current_setting('primary_conninfo') ~ 'port=${\ $sb1->port }\\M'"),
	'failover: sb2\'s primary_conninfo names sb1\'s port');
my $sb2_conninfo = $sb2->safe_psql('postgres', 'SHOW primary_conninfo');
like($sb2_conninfo, qr/\buser=replicator\b/,
	'failover: sb2 keeps its own replication user');
unlike($sb2_conninfo, qr/hamonitor/,
	'failover: none of the witness\'s connection options reached sb2');
like($sb2_conninfo, qr/\bapplication_name=sb2\b/,
	'failover: sb2 keeps its application_name');
ok(wait_for_streaming($sb2, $sb1), 'failover: sb2 streams from sb1');
is( $sb1->safe_psql(
		'postgres',
		"SELECT usename FROM pg_stat_replication WHERE application_name = 'sb2'"),
	'replicator',
	'failover: sb2 streams from sb1 as the replication role');
ok(wait_for_event($witness, $cluster, 'following', "node_name = 'sb2'", $mark),
	'failover: a following event for sb2');
ok( wait_for_peer_slot(
		$sb1,
		"count(*) FILTER (WHERE slot_name = 'hamonitor_sb2' AND active) = 1"),
	'failover: sb2\'s managed slot is on sb1, in use');
$sb1->safe_psql('postgres', "INSERT INTO t VALUES (2000, 'after')");
ok($sb2->poll_query_until('postgres', 'SELECT count(*) FROM t WHERE id = 2000', '1'),
	'failover: a row written on sb1 reaches sb2');

# ---------------------------------------------------------------------
# The old primary comes back writable: fenced
# ---------------------------------------------------------------------

$mark = last_event_id($witness);
$primary->start;
# (no query on the old primary until the fence is done: only the witness's
# sessions are there when it ends the others)
ok( wait_for_status(
		$witness, 'primary', "role = 'primary' AND timeline = 1 AND fenced",
		$cluster),
	'fence: the returning old primary is fenced');
ok(wait_for_event($witness, $cluster, 'fenced', "node_name = 'primary'", $mark),
	'fence: a fenced event');
ok( $primary->poll_query_until(
		'postgres', 'SHOW default_transaction_read_only', 'on'),
	'fence: default_transaction_read_only is on on the old primary');
is(sqlstate_of($primary, "INSERT INTO t VALUES (3000, 'stale')"),
	'25006', 'fence: an INSERT on the old primary fails with 25006');
$primary->stop;
ok(wait_for_status($witness, 'primary', "health = 'down'", $cluster),
	'the old primary is stopped');

# ---------------------------------------------------------------------
# Switchover from sb1 to sb2, with a superuser's and a client's session
# open on sb1
# ---------------------------------------------------------------------

# (on_error_stop off: the session must survive its refused INSERT)
my $su_session = $sb1->background_psql('postgres', on_error_stop => 0);
$su_session->set_query_timer_restart;
my $su_pid = $su_session->query_safe('SELECT pg_backend_pid()');
my $app_session =
  $sb1->background_psql('postgres', extra_params => [ '-U', 'app' ]);
is($app_session->query_safe('SELECT current_user'),
	'app', 'a client session as app on sb1');
my $app_pid = $app_session->query_safe('SELECT pg_backend_pid()');

$sb1->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'sb1' FROM generate_series(4001, 24000) g");
my $rows = $sb1->safe_psql('postgres', 'SELECT count(*) FROM t');

$mark = last_event_id($witness);
my ($state, $out, $err) =
  psql_result($witness, "SELECT hamonitor.switchover('sb2', '$cluster')");
is($state, 'ok', 'switchover to sb2 succeeds')
  or diag("switchover: $err");
note "switchover returned: $out";

# everything below depends on the switchover: if it failed, one more
# failure rather than a poll timeout per check
fail('switchover: the checks of its outcome cannot run') unless $state eq 'ok';
if ($state eq 'ok')
{
	is(in_recovery($sb2), 'f', 'switchover: sb2 is a primary');
	is($sb2->safe_psql('postgres', 'SELECT count(*) FROM t'),
		$rows, 'switchover: every row written on sb1 is on sb2');
	ok(wait_for_event($witness, $cluster, 'switchover', undef, $mark),
		'switchover: a switchover event');
	ok( wait_for_status(
			$witness, 'sb2', "role = 'primary' AND health = 'up'", $cluster),
		'switchover: status shows sb2 primary');
	ok(wait_for_status($witness, 'sb1', 'fenced', $cluster),
		'switchover: sb1 is fenced');
	ok( $sb1->poll_query_until(
			'postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE pid = $app_pid", '0'),
		'switchover: the fence ended the client\'s session on sb1');
	is( $sb1->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE pid = $su_pid"),
		'1',
		'switchover: the superuser\'s session on sb1 was left alone');
	# it reloaded default_transaction_read_only = on with the configuration
	$su_session->query("INSERT INTO t VALUES (0, 'stale')");
	like($su_session->{stderr}, qr/read-only transaction/,
		'switchover: the superuser\'s remaining session is read-only');
	is($sb1->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 0'),
		'0', 'switchover: nothing was written on sb1 after the fence');
}
$su_session->quit;
$app_session->{run}->kill_kill;

note "events of cluster $cluster:\n" . events_text($witness, $cluster);
is( $witness->safe_psql(
		'postgres',
		"SELECT count(*) FROM hamonitor.events
		  WHERE cluster_name = '$cluster'
		    AND detail ~* 'permission denied|must be superuser|must be a superuser'"),
	'0',
	'no event reports a missing privilege');

# without the grant on synchronous_standby_names, a quorum cannot be set:
# the sync action fails with an event that names the grant
$sb2->safe_psql('postgres',
	'REVOKE ALTER SYSTEM ON PARAMETER synchronous_standby_names FROM hamonitor');
$mark = last_event_id($witness);
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_cluster_option('$cluster', 'synchronous', 'quorum')");
ok( wait_for_event(
		$witness, $cluster, 'synchronous_standby_names_failed',
		"node_name = 'sb2' AND detail LIKE '%permission denied%GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names%'",
		$mark),
	'quorum without the grant: synchronous_standby_names_failed names it');
is($sb2->safe_psql('postgres', "SELECT current_setting('synchronous_standby_names')"),
	'', 'nothing was set on the primary');

done_testing();
