
# Copyright (c) 2026, pg_hamonitor developers

# A crashed primary whose failover must not happen, one cluster per reason:
# the primary in maintenance, auto_failover off, the only standby with
# priority 0, the only standby lagging more than max_failover_lag, and no
# standby reachable.  Each time: no promotion and a failover_blocked event
# that says why; then, where it can be, the reason is lifted and the
# failover happens, which shows it was that reason that held it back.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $witness = create_witness('witness', failover => 1);

# a fresh primary and standby, registered as cluster $case
sub new_case
{
	my ($case) = @_;
	my ($p, $s) =
	  create_ha_cluster(primary => "${case}_p", standbys => ["${case}_s"]);
	$p->safe_psql('postgres',
		'CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g');
	$p->wait_for_catchup("${case}_s", 'replay', $p->lsn('write'));
	ok(register_ha_cluster($witness, $case, $p, $s),
		"$case: the witness sees the primary and its streaming standby");
	return ($p, $s);
}

# crash the primary; the failover must be blocked for the reason matching
# the regular expression $reason (SQL, case-insensitive); $s is the standby
# (undef if it is not running)
sub expect_blocked
{
	my ($case, $p, $s, $reason, $label) = @_;

	my $mark = last_event_id($witness);
	kill9_all($p);
	ok(wait_for_status($witness, $p->name, "health = 'down'", $case),
		"$case: the crashed primary turns down");
	ok( wait_for_event(
			$witness, $case, 'failover_blocked', "detail ~* '$reason'", $mark),
		"$case: failover_blocked event saying $label");
	# several failover_timeouts, with the standby probed all along
	wait_seconds($witness, 3);
	is(count_events($witness, $case, 'promoted'), '0', "$case: no promotion");
	is(count_events($witness, $case, 'failover'),
		'0', "$case: no failover decision");
	is(in_recovery($s), 't', "$case: the standby is still in recovery")
	  if defined $s;
	is(count_events($witness, $case, 'failover_blocked', "detail ~* '$reason'"),
		'1', "$case: the reason is written once, not on every probe");
	note "$case events:\n" . events_text($witness, $case);
	return $mark;
}

# the reason is gone: the standby must now be promoted
sub expect_promoted
{
	my ($case, $s) = @_;
	ok( wait_for_event(
			$witness, $case, 'promoted', "node_name = '${\ $s->name }'"),
		"$case: once unblocked, the standby is promoted");
	ok(wait_until_promoted($s), "$case: the standby is out of recovery");
	is(count_events($witness, $case, 'promoted'),
		'1', "$case: one promoted event");
	return;
}

# forget the case's nodes and stop them
sub end_case
{
	my ($case, @nodes) = @_;
	foreach my $node (@nodes)
	{
		unregister_node($witness, $node->name, $case);
		$node->stop('immediate');    # does nothing if already stopped
	}
	return;
}

# ---------------------------------------------------------------------
# The primary is in maintenance
# ---------------------------------------------------------------------

{
	my $case = 'maint';
	my ($p, $s) = new_case($case);
	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_maintenance('${case}_p', true, '$case')");
	expect_blocked($case, $p, $s, 'maintenance', 'the primary is in maintenance');

	$witness->safe_psql('postgres',
		"SELECT hamonitor.set_maintenance('${case}_p', false, '$case')");
	expect_promoted($case, $s);
	end_case($case, $p, $s);
}

# ---------------------------------------------------------------------
# pg_hamonitor.auto_failover = off
# ---------------------------------------------------------------------

{
	my $case = 'off';
	my ($p, $s) = new_case($case);
	ok(set_witness_guc($witness, 'auto_failover', 'off'),
		"$case: auto_failover is off");
	expect_blocked($case, $p, $s, 'auto_failover', 'auto_failover is off');

	ok(reset_witness_guc($witness, 'auto_failover', 'on'),
		"$case: auto_failover is on again");
	expect_promoted($case, $s);
	end_case($case, $p, $s);
}

# ---------------------------------------------------------------------
# The only standby has priority 0
# ---------------------------------------------------------------------

{
	my $case = 'prio';
	my ($p, $s) = new_case($case);
	$witness->safe_psql('postgres',
		"SELECT hamonitor.update_node('${case}_s', '$case', priority => 0)");
	expect_blocked($case, $p, $s, 'no eligible', 'no eligible candidate');

	$witness->safe_psql('postgres',
		"SELECT hamonitor.update_node('${case}_s', '$case', priority => 100)");
	expect_promoted($case, $s);
	end_case($case, $p, $s);
}

# ---------------------------------------------------------------------
# The only standby lags more than max_failover_lag
# ---------------------------------------------------------------------

{
	my $case = 'lag';
	my ($p, $s) = new_case($case);
	ok(set_witness_guc($witness, 'max_failover_lag', '8kB'),
		"$case: max_failover_lag is 8kB");

	# the standby stops receiving: its WAL receiver points to a dead port
	$s->safe_psql(
		'postgres',
		sprintf(
			"ALTER SYSTEM SET primary_conninfo = %s",
			quote_literal(
				sprintf('host=%s port=%d application_name=%s',
					$p->host, refused_port(), $s->name))));
	$s->reload;
	ok( $p->poll_query_until(
			'postgres', 'SELECT count(*) FROM pg_stat_replication', '0'),
		"$case: the standby no longer streams from the primary");
	ok( wait_for_status(
			$witness, $s->name,
			"wal_receiver_status IS DISTINCT FROM 'streaming'", $case),
		"$case: the witness sees the standby not streaming");

	$p->safe_psql('postgres',
		'CREATE TABLE big AS SELECT g, repeat(\'x\', 100) FROM generate_series(1, 20000) g'
	);
	my $target = $p->lsn('insert');
	ok(wait_for_status($witness, $p->name, "current_lsn >= '$target'", $case),
		"$case: the witness saw the primary's LSN after the write");
	cmp_ok(
		status_value(
			$witness, $s->name, "pg_wal_lsn_diff('$target', receive_lsn)",
			$case),
		'>', 1024 * 1024,
		"$case: the standby lacks more than 1MB of WAL");

	expect_blocked($case, $p, $s, 'lag', 'the standby lags too much');

	ok(set_witness_guc($witness, 'max_failover_lag', '1GB'),
		"$case: max_failover_lag is 1GB");
	expect_promoted($case, $s);
	ok(reset_witness_guc($witness, 'max_failover_lag', '16MB'),
		"$case: max_failover_lag reset");
	end_case($case, $p, $s);
}

# ---------------------------------------------------------------------
# No standby reachable: nobody can confirm the primary is gone
# ---------------------------------------------------------------------

{
	my $case = 'alone';
	my ($p, $s) = new_case($case);
	kill9_all($s);
	ok(wait_for_status($witness, $s->name, "health = 'down'", $case),
		"$case: the crashed standby turns down");
	expect_blocked($case, $p, undef, 'no standby (is )?reachable',
		'no standby is reachable');
	end_case($case, $p, $s);
}

done_testing();
