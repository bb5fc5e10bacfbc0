
# Copyright (c) 2026, pg_hamonitor developers

# The decision fails closed on missing evidence (issue 8, items 1 and 2):
#  (a) peers reached as a role with LOGIN only: the standby's WAL receiver
#      status is hidden, and a partition between the witness and a live
#      primary promotes nothing, automatically or by promote(); the
#      failover_blocked event says the standby could not vote, and why;
#  (b) the privilege check at each new session names each missing grant in
#      an event of its own, once, and in hamonitor.status, as grants are
#      revoked one at a time from a registered node; a probe that fails on
#      a missing privilege is a failed probe saying so, not a silent NULL;
#  (c) a primary crash-restart (a backend killed, the postmaster
#      reinitialising, its crash recovery held up) is not failed over;
#  (d) a restarted witness still knows which standbys streamed: a primary
#      that dies while the witness is down is failed over;
#  (e) a late round of the worker loop (here: each write of probe results
#      takes 1.5 s, longer than probe_timeout) does not fail a probe whose
#      answer already waits in its socket (item 13).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes ();

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $witness = create_witness('witness', failover => 1);

# no failover or promoted event in $cluster since event $after
sub no_promotion
{
	my ($cluster, $what, $after, @standbys) = @_;
	is( $witness->safe_psql(
			'postgres',
			"SELECT count(*) FROM hamonitor.events
			  WHERE cluster_name = '$cluster'
			    AND kind IN ('failover', 'promote', 'promoted')
			    AND event_id > $after"),
		'0',
		"$what: no failover or promoted event");
	is(join('', map { in_recovery($_) } @standbys),
		't' x scalar(@standbys), "$what: every standby still in recovery");
	return;
}

# ends the witness's sessions on $node, so that it reconnects (and checks
# its privileges again)
sub kick_witness
{
	my ($node, $cluster) = @_;
	$node->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		  WHERE application_name LIKE 'pg_hamonitor/$cluster/%'");
	return;
}

# ---------------------------------------------------------------------
# (a) A role with LOGIN only, and a witness-only partition of the primary
# ---------------------------------------------------------------------

{
	my $cluster = 'login';
	my ($p, $s) =
	  create_ha_cluster(primary => 'login_p', standbys => ['login_s']);
	$p->safe_psql('postgres', 'CREATE ROLE peer LOGIN');
	$p->safe_psql('postgres', 'CREATE TABLE t (id integer)');
	$p->wait_for_catchup('login_s', 'replay', $p->lsn('write'));

	my $proxy = start_proxy($p);
	register_node($witness, 'login_p',
		"host=127.0.0.1 port=$proxy->{port} dbname=postgres user=peer",
		$cluster);
	register_node($witness, 'login_s',
		$s->connstr('postgres') . ' user=peer', $cluster);

	ok( wait_for_status(
			$witness, 'login_p', "health = 'up' AND role = 'primary'",
			$cluster),
		'(a) the witness probes the primary as a LOGIN-only role');
	ok( wait_for_status(
			$witness, 'login_s',
			"health = 'up' AND role = 'standby' AND wal_receiver = 'hidden'",
			$cluster),
		'(a) the standby\'s WAL receiver runs, its status hidden from the role');
	is(status_value($witness, 'login_s', 'wal_receiver_status', $cluster),
		'', '(a) the status itself reads as NULL');
	ok(wait_for_streaming($s, $p), '(a) the standby really streams');
	ok( wait_for_event(
			$witness, $cluster, 'missing_privilege',
			"node_name = 'login_s' AND detail ~ 'pg_read_all_stats'"),
		'(a) missing_privilege names pg_read_all_stats, up front');
	like(
		status_value($witness, 'login_s', 'missing_privileges', $cluster),
		qr/pg_read_all_stats.*pg_promote/,
		'(a) status.missing_privileges lists the grants it lacks');

	my $mark = last_event_id($witness);
	stop_helper($proxy);
	ok(wait_for_status($witness, 'login_p', "health = 'down'", $cluster),
		'(a) cut from the witness, the primary turns down');
	ok( wait_for_event(
			$witness, $cluster, 'failover_blocked',
			"detail ~ 'standby \"login_s\" could not vote' AND detail ~ 'hidden'",
			$mark),
		'(a) failover_blocked: the standby could not vote, its status hidden');
	wait_seconds($witness, 3);
	no_promotion($cluster, '(a)', $mark, $s);

	# a DBA's promote() applies the same rule
	my ($state, $out, $err) =
	  psql_result($witness, "SELECT hamonitor.promote('login_s', '$cluster')");
	is($state, '55000', '(a) promote() without force: 55000');
	like($err, qr/could not vote/, '(a) ... and says why');
	no_promotion($cluster, '(a) after promote()', $mark, $s);
	# and so does failover(), the automatic choice made now
	($state, $out, $err) =
	  psql_result($witness, "SELECT hamonitor.failover('$cluster')");
	is($state, '55000', '(a) failover() without evidence: 55000');
	like($err, qr/could not vote/, '(a) ... and says why');
	no_promotion($cluster, '(a) after failover()', $mark, $s);
	$p->safe_psql('postgres', 'INSERT INTO t VALUES (1)');

	# the partition heals
	$proxy = start_proxy($p, port => $proxy->{port});
	ok(wait_for_status($witness, 'login_p', "health = 'up'", $cluster),
		'(a) the primary is up again once the link is back');
	no_promotion($cluster, '(a) after the partition', $mark, $s);

	foreach my $node ('login_p', 'login_s')
	{
		$witness->safe_psql('postgres',
			"SELECT hamonitor.unregister_node('$node', '$cluster')");
	}
	stop_helper($proxy);
	$s->stop;
	$p->stop;
}

# ---------------------------------------------------------------------
# (b) The privilege check: grants revoked one at a time
# ---------------------------------------------------------------------

{
	my $cluster = 'grants';
	my $node = PostgreSQL::Test::Cluster->new('grants_p');
	$node->init;
	$node->start;
	# the README's least-privilege role
	$node->safe_psql(
		'postgres', q{
CREATE ROLE hamonitor LOGIN REPLICATION;
GRANT pg_monitor TO hamonitor;
GRANT pg_signal_backend TO hamonitor;
GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO hamonitor;
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO hamonitor;
GRANT ALTER SYSTEM ON PARAMETER primary_conninfo, primary_slot_name,
      default_transaction_read_only, synchronous_standby_names TO hamonitor;
});
	register_node($witness, 'grants_p',
		$node->connstr('postgres') . ' user=hamonitor', $cluster);
	ok( wait_for_status(
			$witness, 'grants_p', "health = 'up' AND role = 'primary'",
			$cluster),
		'(b) the witness probes the node as the README\'s role');
	# one probe after the check that ran first on the session
	wait_seconds($witness, 1);
	is(status_value($witness, 'grants_p', 'missing_privileges', $cluster),
		'', '(b) the README\'s grants are all the witness needs');
	is(count_events($witness, $cluster, 'missing_privilege'),
		'0', '(b) no missing_privilege event');

	my @revokes = (
		[
			'REVOKE EXECUTE ON FUNCTION pg_promote(boolean, integer) FROM hamonitor',
			'pg_promote'
		],
		[ 'REVOKE pg_signal_backend FROM hamonitor', 'pg_signal_backend' ],
		[ 'ALTER ROLE hamonitor NOREPLICATION', 'REPLICATION' ],
		[
			'REVOKE ALTER SYSTEM ON PARAMETER primary_conninfo FROM hamonitor',
			'ALTER SYSTEM ON PARAMETER primary_conninfo'
		],
		[
			'REVOKE ALTER SYSTEM ON PARAMETER default_transaction_read_only FROM hamonitor',
			'ALTER SYSTEM ON PARAMETER default_transaction_read_only'
		],
		[
			'REVOKE EXECUTE ON FUNCTION pg_reload_conf() FROM hamonitor',
			'pg_reload_conf'
		],
		[ 'REVOKE pg_monitor FROM hamonitor', 'pg_read_all_stats' ]);
	my $mark = last_event_id($witness);
	foreach my $r (@revokes)
	{
		my ($sql, $grant) = @$r;
		my $before = last_event_id($witness);
		$node->safe_psql('postgres', $sql);
		kick_witness($node, $cluster);
		ok( wait_for_event(
				$witness, $cluster, 'missing_privilege',
				"strpos(detail, " . quote_literal($grant) . ") > 0", $before),
			"(b) $sql: a missing_privilege event names $grant");
		ok( wait_for_status(
				$witness, 'grants_p',
				"health = 'up' AND strpos(missing_privileges, "
				  . quote_literal($grant) . ") > 0",
				$cluster),
			"(b) ... and status.missing_privileges lists it");
	}
	# each grant is reported once, though the check runs at every session
	kick_witness($node, $cluster);
	ok(wait_for_status($witness, 'grants_p', "health = 'up'", $cluster),
		'(b) reconnected once more');
	wait_seconds($witness, 1);
	is( $witness->safe_psql(
			'postgres',
			"SELECT count(*) FROM hamonitor.events
			  WHERE cluster_name = '$cluster' AND kind = 'missing_privilege'
			    AND event_id > $mark AND detail ~ 'pg_promote'"),
		'1',
		'(b) pg_promote is reported once, not at every session');
	is(count_events($witness, $cluster, 'promoted'),
		'0', '(b) no failover came of it');

	# a grant given back
	my $before = last_event_id($witness);
	$node->safe_psql('postgres',
		'GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO hamonitor');
	kick_witness($node, $cluster);
	ok( wait_for_event(
			$witness, $cluster, 'privilege_granted', "detail ~ 'pg_promote'",
			$before),
		'(b) privilege_granted once pg_promote is granted again');

	# the probe itself loses a function: a failed probe that says so
	$before = last_event_id($witness);
	$node->safe_psql('postgres',
		'REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC');
	kick_witness($node, $cluster);
	ok( wait_for_status(
			$witness, 'grants_p',
			"health = 'down' AND last_error_sqlstate = '42501'
			 AND failure_class = 'auth'", $cluster),
		'(b) a probe denied pg_control_system fails with 42501, class auth');
	ok( wait_for_event(
			$witness, $cluster, 'missing_privilege',
			"detail ~ 'pg_control_system'", $before),
		'(b) ... and the check names the function');
	$node->safe_psql('postgres',
		'GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC');
	ok(wait_for_status($witness, 'grants_p', "health = 'up'", $cluster),
		'(b) the node is up again once the function is granted back');

	$witness->safe_psql('postgres',
		"SELECT hamonitor.unregister_node('grants_p', '$cluster')");
	$node->stop;
}

# ---------------------------------------------------------------------
# (c) A crash-restart of the primary is not failed over
# ---------------------------------------------------------------------

{
	my $cluster = 'restart';
	# Test::Cluster turns restart_after_crash off: on, as by default
	my ($p, $s) = create_ha_cluster(
		primary      => 'restart_p',
		standbys     => ['restart_s'],
		primary_conf => "restart_after_crash = on\n");
	ok(register_ha_cluster($witness, $cluster, $p, $s),
		'(c) the witness sees the primary and its streaming standby');
	$p->safe_psql('postgres', 'CHECKPOINT');
	# some WAL to replay, so that the startup process lives a moment
	$p->safe_psql('postgres',
		"CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad
		   FROM generate_series(1, 100000) g");
	$p->wait_for_catchup('restart_s', 'replay', $p->lsn('write'));
	ok( wait_for_status(
			$witness, 'restart_s', "seen_streaming_at IS NOT NULL",
			$cluster),
		'(c) the witness saw the standby streaming');

	my $mark = last_event_id($witness);
	my $pm = postmaster_pid($p);
	# a backend killed: the postmaster ends every session with 57P02 (a
	# WARNING since PostgreSQL 14) and starts a crash recovery
	my $bg = $p->background_psql('postgres');
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	chomp $pid;
	kill 'KILL', $pid;
	# a long crash recovery: its startup process frozen for a while
	my $startup;
	for (my $i = 0; $i < 5000 && !defined $startup; $i++)
	{
		foreach my $child (server_pids($p))
		{
			next if $child == $pm;
			open my $fh, '<', "/proc/$child/cmdline" or next;
			my $cmd = <$fh> // '';
			close $fh;
			$startup = $child if $cmd =~ /startup/;
		}
		Time::HiRes::usleep(1000) unless defined $startup;
	}
	ok(defined $startup, '(c) the postmaster restarts: a startup process');
	kill 'STOP', $startup if defined $startup;
	ok( wait_for_event(
			$witness, $cluster, 'health_down',
			"node_name = 'restart_p' AND detail ~ 'crash_restart'", $mark),
		'(c) the witness reads the crash-restart (57P02) of the primary');
	ok( wait_for_status(
			$witness, 'restart_p',
			"health = 'down' AND failure_class = 'starting'", $cluster),
		'(c) reconnecting, it is told the primary is in recovery: alive');
	# far longer than failover_timeout, the standby not streaming
	wait_seconds($witness, 4);
	no_promotion($cluster, '(c) during the crash recovery', $mark, $s);
	kill 'CONT', $startup if defined $startup;
	ok( $p->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
		'(c) the primary is back after its crash recovery');
	ok( wait_for_status(
			$witness, 'restart_p', "health = 'up' AND role = 'primary'",
			$cluster),
		'(c) the witness sees it up again');
	no_promotion($cluster, '(c)', $mark, $s);
	note "events of cluster $cluster:\n" . events_text($witness, $cluster);
	eval { $bg->quit };

	foreach my $node ('restart_p', 'restart_s')
	{
		$witness->safe_psql('postgres',
			"SELECT hamonitor.unregister_node('$node', '$cluster')");
	}
	$s->stop;
	$p->stop;
}

# ---------------------------------------------------------------------
# (d) "Seen streaming" survives a restart of the witness
# ---------------------------------------------------------------------

{
	my $cluster = 'wrestart';
	my ($p, $s) =
	  create_ha_cluster(primary => 'wr_p', standbys => ['wr_s']);
	ok(register_ha_cluster($witness, $cluster, $p, $s),
		'(d) the witness sees the primary and its streaming standby');
	ok( wait_for_status(
			$witness, 'wr_s', "seen_streaming_at IS NOT NULL", $cluster),
		'(d) the witness saw the standby streaming');

	# the primary dies while the witness is down: once it is back, the
	# standby never streams again, and only the catalog remembers it did
	my $mark = last_event_id($witness);
	$witness->stop;
	kill9_all($p);
	ok( $s->poll_query_until(
			'postgres',
			"SELECT count(*) = 0 FROM pg_stat_wal_receiver
			  WHERE status = 'streaming'"),
		'(d) the standby lost its primary');
	$witness->start;
	ok(wait_for_event($witness, $cluster, 'promoted', undef, $mark),
		'(d) the restarted witness fails over');
	ok($s->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
		'(d) the standby is out of recovery');
	note "events of cluster $cluster:\n" . events_text($witness, $cluster);
	$s->stop;
}

# ---------------------------------------------------------------------
# (e) Deadlines are checked after what already arrived is read
# ---------------------------------------------------------------------

{
	my $cluster = 'late';
	my ($p, $s) =
	  create_ha_cluster(primary => 'late_p', standbys => ['late_s']);
	# the standby answers its probes 0.4 s late, the primary at once
	my $proxy = start_proxy($s, reply_delay => 0.4);
	is($witness->safe_psql('postgres', 'SHOW pg_hamonitor.probe_timeout'),
		'1s', '(e) probe_timeout is 1s');
	register_node($witness, 'late_p', $p->connstr('postgres'), $cluster);
	register_node($witness, 'late_s',
		"host=127.0.0.1 port=$proxy->{port} dbname=postgres"
		  . ' sslmode=disable gssencmode=disable connect_timeout=10',
		$cluster);
	ok( wait_for_status(
			$witness, 'late_s', "health = 'up' AND role = 'standby'",
			$cluster),
		'(e) the witness probes the slow standby');

	# each write of the worker now takes 1.5 s: the round after it comes
	# when the standby's probe, sent before, is past its deadline, its
	# answer in the socket
	$witness->safe_psql(
		'postgres', q{
CREATE FUNCTION public.slow_write() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN PERFORM pg_catalog.pg_sleep(1.5); RETURN NULL; END$$;
CREATE TRIGGER slow_write AFTER INSERT ON hamonitor.probe_history
    FOR EACH STATEMENT EXECUTE FUNCTION public.slow_write();
});
	my $mark = last_event_id($witness);
	my ($start) = wait_seconds($witness, 12);
	$witness->safe_psql(
		'postgres', q{
DROP TRIGGER slow_write ON hamonitor.probe_history;
DROP FUNCTION public.slow_write();
});
	cmp_ok(
		$witness->safe_psql(
			'postgres',
			"SELECT count(*) FROM hamonitor.lsn_history
			  WHERE cluster_name = '$cluster' AND node_name = 'late_s'
			    AND probed_at > '$start' AND success"),
		'>=', 3,
		'(e) the slow standby was probed in the late rounds');
	is( $witness->safe_psql(
			'postgres',
			"SELECT count(*) FROM hamonitor.lsn_history
			  WHERE cluster_name = '$cluster' AND probed_at > '$start'
			    AND NOT success"),
		'0',
		'(e) no probe failed though its round came after its deadline');
	is(count_events($witness, $cluster, 'health_down', undef, $mark),
		'0', '(e) no node was taken for down');
	stop_helper($proxy);
	$s->stop;
	$p->stop;
}

done_testing();
