
# Copyright (c) 2026, pg_hamonitor developers

=pod

=head1 NAME

HamonTest - the one helper module of the pg_hamonitor TAP tests and benchmarks

=head1 SYNOPSIS

  use FindBin;
  use lib "$FindBin::RealBin/../perl";
  use HamonTest;

  my $witness = create_witness('witness', failover => 1);
  my ($primary, $sb1, $sb2) =
    create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);
  ok(register_ha_cluster($witness, 'main', $primary, $sb1, $sb2),
     'the witness sees the cluster up');

  my $mark = last_event_id($witness);
  kill9_all($primary);
  ok(wait_for_event($witness, 'main', 'promoted', undef, $mark),
     'a standby was promoted');
  is_sqlstate($witness, "SELECT hamonitor.failover('main')", '55000',
              'failover() refused: 55000');

=head1 DESCRIPTION

Everything the TAP tests under test/t and the benchmarks under test/bench
share, one way for each thing:

=over

=item servers

create_witness (fast probe settings; failover => 1 adds the failover
settings; defaults => 1 keeps the extension's defaults, for benchmarks),
create_node (a lone server), create_ha_cluster (a primary and streaming
standbys, each naming itself in application_name; logical, wal_log_hints,
conf, primary_conf options), add_standby; create_witness_pair (an active
witness and its standby witness, witness_takeover on) and witness_status
(a column of hamonitor.witness_status()) for the witness redundancy tests
and benchmark.

=item registration and waits

register_node, unregister_node, register_ha_cluster (register and wait
until the witness sees every node up), wait_for_status, status_value,
cluster_value, cluster_primary, wait_for_streaming, wait_until_promoted,
worker_sessions, wait_for_worker_sessions, wait_for_more_probes,
wait_for_probed_since, wait_seconds, wait_for_setting, set_witness_guc,
reset_witness_guc.

=item SQL and SQLSTATEs

psql_result, sqlstate_of, is_sqlstate, start_bg_psql, finish_bg_psql: one
parser finds the SQLSTATE in psql's verbose error report.

=item events

last_event_id, wait_for_event, event_value, count_events, events_text,
diag_witness, start_event_listener, wait_for_notification.

=item crashes and stalls

postmaster_pid, server_pids, kill9_all, freeze_server, thaw_server.

=item helper processes

start_blackhole, blackhole_accepted, start_proxy, proxy_hold_new,
proxy_held, start_receivewal, stop_helper (one way to stop them all; for the TCP servers SIGKILL to the
whole process group, a network cut), refused_port.  Every helper still running at exit is
stopped.

=item slots and logs

peer_slot, wait_for_peer_slot, wait_for_slot_active, slot_view,
wait_for_slot_view, log_position, count_in_log.

=item the witness's HTTP endpoint

http_request (raw bytes over a socket, the answer parsed), http_get,
wait_for_http (poll a path until its status is the one expected).  Used by
every test of the endpoint, of Prometheus, HAProxy and pgbouncer.
start_haproxy (HAProxy in front of a cluster, each server checked at the
witness; for the HAProxy test and benchmark), a helper process.

=back

Only methods present in PostgreSQL 15's Cluster.pm are used.  Cluster
names default to 'main' where a function takes one last.

=cut

package HamonTest;

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  $PROBE_INTERVAL_MS
  quote_literal
  psql_result
  sqlstate_of
  is_sqlstate
  start_bg_psql
  finish_bg_psql
  create_witness
  create_witness_pair
  witness_status
  create_node
  create_ha_cluster
  add_standby
  standby_conninfo
  in_recovery
  wait_until_promoted
  wait_for_streaming
  register_node
  unregister_node
  register_ha_cluster
  wait_for_status
  status_value
  cluster_value
  cluster_primary
  worker_sessions
  wait_for_worker_sessions
  wait_for_more_probes
  wait_for_probed_since
  wait_seconds
  wait_for_setting
  set_witness_guc
  reset_witness_guc
  last_event_id
  wait_for_event
  event_value
  count_events
  events_text
  diag_witness
  start_event_listener
  wait_for_notification
  postmaster_pid
  server_pids
  kill9_all
  freeze_server
  thaw_server
  start_blackhole
  blackhole_accepted
  start_proxy
  proxy_hold_new
  proxy_held
  start_receivewal
  stop_helper
  refused_port
  peer_slot
  wait_for_peer_slot
  wait_for_slot_active
  slot_view
  wait_for_slot_view
  log_position
  count_in_log
  http_request
  http_get
  wait_for_http
  start_haproxy
  haproxy_binary
);

# probe_interval set in every test witness, in milliseconds
our $PROBE_INTERVAL_MS = 200;

# every helper process started and not yet stopped, stopped at exit
my @helpers;

=pod

=head1 FUNCTIONS

=head2 SQL

=over

=item quote_literal($string)

Returns the string as an SQL literal.

=cut

sub quote_literal
{
	my ($str) = @_;
	$str =~ s/'/''/g;
	return "'$str'";
}

# 'ok', the SQLSTATE of the error in a verbose psql report, or a message
# saying none was found; the one place SQLSTATEs are parsed
sub _sqlstate
{
	my ($ret, $err) = @_;
	return 'ok' if $ret == 0 && $err !~ /ERROR:/;
	return $1 if $err =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):/;
	return "no SQLSTATE (exit $ret): $err";
}

=pod

=item psql_result($node, $sql)

Runs $sql in the postgres database with psql (VERBOSITY=verbose,
ON_ERROR_STOP).  Returns ($state, $stdout, $stderr): $state is 'ok' if it
succeeded, else the SQLSTATE of the error, or "no SQLSTATE ..." if none
could be found.  The HINT of an error is in $stderr.

=cut

sub psql_result
{
	my ($node, $sql) = @_;
	my ($out, $err) = ('', '');
	my $ret = $node->psql(
		'postgres', $sql,
		stdout        => \$out,
		stderr        => \$err,
		on_error_stop => 1,
		extra_params  => [ '-v', 'VERBOSITY=verbose' ]);
	chomp $out;
	return (_sqlstate($ret, $err), $out, $err);
}

=pod

=item sqlstate_of($node, $sql)

Returns only the $state of psql_result: 'ok', the error's SQLSTATE, or
"no SQLSTATE ...".

=cut

sub sqlstate_of
{
	my ($state) = psql_result(@_);
	return $state;
}

=pod

=item is_sqlstate($node, $sql, $expected, $test_name)

A test: psql_result's state of $sql is $expected (an SQLSTATE, or 'ok');
on failure its stderr is printed.  Returns the test's result.

=cut

sub is_sqlstate
{
	my ($node, $sql, $expected, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($state, $out, $err) = psql_result($node, $sql);
	return is($state, $expected, $name) || diag("psql stderr: $err");
}

=pod

=item start_bg_psql($node, $sql)

Starts psql running $sql in the postgres database (VERBOSITY=verbose,
ON_ERROR_STOP) in the background.  Returns a handle for finish_bg_psql.

=cut

sub start_bg_psql
{
	my ($node, $sql) = @_;
	my $bg = { out => '', err => '' };
	$bg->{harness} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
			'-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
			'-c', $sql
		],
		'<', \undef, '>', \$bg->{out}, '2>', \$bg->{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return $bg;
}

=pod

=item finish_bg_psql($bg)

Waits for a start_bg_psql to end.  Returns its state as psql_result does
('ok', the SQLSTATE, or "no SQLSTATE ..."); its stdout is in $bg->{out},
its stderr in $bg->{err}.

=cut

sub finish_bg_psql
{
	my ($bg) = @_;
	$bg->{harness}->finish;
	chomp $bg->{out};
	return _sqlstate($bg->{harness}->result(0), $bg->{err});
}

=pod

=back

=head2 Servers

=over

=item create_witness($name, %params)

Creates, starts and returns a witness: pg_hamonitor preloaded and the
extension created in the postgres database.  By default with the fast
probe settings every test relies on (probe_interval $PROBE_INTERVAL_MS ms,
probe_timeout, connect_timeout and reconnect_backoff_max 1s), and
history_interval 0: tests read the history of every probe.
(slots_interval keeps its default: the slot tests wait for what the
witness reads, at most that late.)

failover => 1 also spells out the failover settings, so tests do not
depend on the defaults: auto_failover on, failover_timeout 500ms,
restart_grace 30s, fence_old_primary on, repoint_timeout 10s.

defaults => 1 sets nothing but shared_preload_libraries (the benchmarks
measure the extension's defaults); it excludes failover.

allows_streaming => 1 makes it usable as the primary of a standby witness.
extra_conf => '...' is appended to postgresql.conf last, before the start.

=cut

sub create_witness
{
	my ($name, %params) = @_;

	my $conf = "shared_preload_libraries = 'pg_hamonitor'\n";
	$conf .= qq(pg_hamonitor.probe_interval = '${PROBE_INTERVAL_MS}ms'
pg_hamonitor.probe_timeout = '1s'
pg_hamonitor.connect_timeout = '1s'
pg_hamonitor.reconnect_backoff_max = '1s'
pg_hamonitor.history_interval = 0
) unless $params{defaults};
	$conf .= q(pg_hamonitor.auto_failover = on
pg_hamonitor.failover_timeout = '500ms'
pg_hamonitor.restart_grace = '30s'
pg_hamonitor.fence_old_primary = on
pg_hamonitor.repoint_timeout = '10s'
) if $params{failover} && !$params{defaults};
	$conf .= $params{extra_conf} if defined $params{extra_conf};

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $params{allows_streaming} ? 1 : 0);
	$node->append_conf('postgresql.conf', $conf);
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_hamonitor');
	return $node;
}

=pod

=item create_witness_pair($name1, $name2, %params)

Creates a witness pair: $name1 (create_witness with failover => 1,
allows_streaming, pg_hamonitor.witness_takeover on and
witness_takeover_timeout $params{timeout} ms, 3000 by default) and $name2,
a hot standby of it from a base backup, started.  The standby reaches the
active witness through a TCP proxy (start_proxy) in its primary_conninfo,
so that stop_helper on the proxy cuts the link between the two witnesses
(streaming and the guard's check alike).  extra_conf => '...' is added to
the first witness's settings (and so the second's).  Returns ($w1, $w2,
$proxy) once the standby has caught up.

=cut

sub create_witness_pair
{
	my ($name1, $name2, %params) = @_;
	my $timeout = $params{timeout} || 3000;

	my $w1 = create_witness(
		$name1,
		failover         => 1,
		allows_streaming => 1,
		extra_conf       => "pg_hamonitor.witness_takeover = on\n"
		  . "pg_hamonitor.witness_takeover_timeout = '${timeout}ms'\n"
		  . ($params{extra_conf} // ''));
	$w1->backup("${name1}_pair_backup");
	my $proxy = start_proxy($w1);
	my $w2 = PostgreSQL::Test::Cluster->new($name2);
	$w2->init_from_backup($w1, "${name1}_pair_backup", has_streaming => 1);
	$w2->append_conf('postgresql.conf',
		"primary_conninfo = 'host=127.0.0.1 port=$proxy->{port} "
		  . "application_name=$name2'\n");
	$w2->start;
	$w1->wait_for_catchup($name2, 'replay', $w1->lsn('insert'));
	return ($w1, $w2, $proxy);
}

=pod

=item witness_status($witness, $sql_expr)

Returns an SQL expression over hamonitor.witness_status() on $witness
(e.g. 'role', 'acting').

=cut

sub witness_status
{
	my ($witness, $expr) = @_;
	return $witness->safe_psql('postgres',
		"SELECT $expr FROM hamonitor.witness_status()");
}

=pod

=item create_node($name, %params)

Creates, starts and returns a lone server (a peer to monitor); %params go
to Cluster.pm's init.

=cut

sub create_node
{
	my ($name, %params) = @_;

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%params);
	$node->start;
	return $node;
}

=pod

=item create_ha_cluster(primary => $name, standbys => [ ... ], %params)

Creates and starts a primary allowing streaming and one streaming standby
per name in standbys, made from one base backup; each standby's
primary_conninfo carries application_name = its name.  Returns
($primary, @standbys) once every standby has caught up.

logical => 1: wal_level = logical (for logical slots).
wal_log_hints => 1: prepares the primary for pg_rewind (wal_log_hints on,
and wal_keep_size so its WAL back to the divergence is still there).
conf => '...': appended to the primary's postgresql.conf before its start,
so the standbys inherit it.
primary_conf => '...': appended to the primary's postgresql.conf after
the base backup (the standbys do not inherit it) and reloaded.

=cut

sub create_ha_cluster
{
	my (%params) = @_;

	my $primary = PostgreSQL::Test::Cluster->new($params{primary});
	$primary->init(allows_streaming => $params{logical} ? 'logical' : 1);
	# pg_rewind needs hint bits logged, and the WAL back to the last
	# checkpoint before the divergence still in the target's pg_wal
	$primary->append_conf('postgresql.conf',
		"wal_log_hints = on\nwal_keep_size = '320MB'\n")
	  if $params{wal_log_hints};
	$primary->append_conf('postgresql.conf', $params{conf})
	  if defined $params{conf};
	$primary->start;
	$primary->backup('hamon_ha_backup');

	my @standbys;
	foreach my $name (@{ $params{standbys} || [] })
	{
		push @standbys, add_standby($primary, $name, 'hamon_ha_backup');
	}

	if (defined $params{primary_conf})
	{
		$primary->append_conf('postgresql.conf', $params{primary_conf});
		$primary->reload;
	}
	return ($primary, @standbys);
}

=pod

=item add_standby($primary, $name, $backup_name)

Creates and starts a standby of $primary from an existing base backup,
streaming with application_name = $name; returns it once it has caught up.

=cut

sub add_standby
{
	my ($primary, $name, $backup) = @_;

	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, $backup, has_streaming => 0);
	$standby->append_conf('postgresql.conf',
		sprintf("primary_conninfo = '%s'\n",
			standby_conninfo($primary, $name)));
	$standby->set_standby_mode;
	$standby->start;
	# the write LSN (Cluster.pm's default), not the insert LSN: right after
	# the base backup's segment switch the insert LSN is past the new
	# segment's page header, where no record ends until the bgwriter logs
	# running xacts (15 s or more later), so a wait for it took ~20 s
	$primary->wait_for_catchup($name, 'replay', $primary->lsn('write'));
	return $standby;
}

=pod

=item standby_conninfo($upstream, $application_name)

Returns a primary_conninfo for a standby of $upstream naming itself
$application_name.

=cut

sub standby_conninfo
{
	my ($upstream, $appname) = @_;
	return sprintf('host=%s port=%d application_name=%s',
		$upstream->host, $upstream->port, $appname);
}

=pod

=item in_recovery($node)

Returns pg_is_in_recovery() of the node: 't' or 'f'.

=cut

sub in_recovery
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT pg_is_in_recovery()');
}

=pod

=item wait_until_promoted($node)

Polls the node until it is out of recovery; returns true if it got there.

=cut

sub wait_until_promoted
{
	my ($node) = @_;
	return $node->poll_query_until('postgres', 'SELECT pg_is_in_recovery()',
		'f');
}

=pod

=item wait_for_streaming($standby, $upstream)

Polls the standby until its WAL receiver streams from $upstream's port;
returns true if it did.

=cut

sub wait_for_streaming
{
	my ($standby, $upstream) = @_;
	return $standby->poll_query_until(
		'postgres',
		sprintf(
			"SELECT count(*) = 1 FROM pg_stat_wal_receiver
			  WHERE status = 'streaming' AND sender_port = %d",
			$upstream->port));
}

=pod

=back

=head2 Registration, status and waits

=over

=item register_node($witness, $node_name, $conninfo, $cluster_name)

Registers a node with hamonitor.register_node (cluster 'main' if not
given); returns its node_id.

=cut

sub register_node
{
	my ($witness, $node_name, $conninfo, $cluster_name) = @_;

	$cluster_name = 'main' unless defined $cluster_name;
	return $witness->safe_psql('postgres',
		sprintf('SELECT hamonitor.register_node(%s, %s, %s)',
			quote_literal($node_name), quote_literal($conninfo),
			quote_literal($cluster_name)));
}

=pod

=item unregister_node($witness, $node_name, $cluster_name)

Unregisters a node with hamonitor.unregister_node (cluster 'main' if not
given); returns what the function returned.

=cut

sub unregister_node
{
	my ($witness, $node_name, $cluster_name) = @_;

	$cluster_name = 'main' unless defined $cluster_name;
	return $witness->safe_psql('postgres',
		sprintf('SELECT hamonitor.unregister_node(%s, %s)',
			quote_literal($node_name), quote_literal($cluster_name)));
}

=pod

=item register_ha_cluster($witness, $cluster, $primary, @standbys [, \%opts])

Registers the servers in $cluster under their Cluster.pm names, and waits
until the witness sees the primary up as primary and every standby up as a
streaming standby.  Returns true if all that happened (a wait that failed
has printed the node's status).

A last argument { conninfo => { $node_name => '...' } } registers those
nodes with that conninfo (e.g. through start_proxy) instead of connstr.

=cut

sub register_ha_cluster
{
	my ($witness, $cluster, @nodes) = @_;
	my $opts = ref($nodes[-1]) eq 'HASH' ? pop @nodes : {};
	my %conninfo = %{ $opts->{conninfo} || {} };
	my ($primary, @standbys) = @nodes;

	foreach my $node ($primary, @standbys)
	{
		register_node($witness, $node->name,
			$conninfo{ $node->name } // $node->connstr('postgres'), $cluster);
	}
	my $ok = wait_for_status($witness, $primary->name,
		"health = 'up' AND role = 'primary'", $cluster);
	foreach my $sb (@standbys)
	{
		$ok &&= wait_for_status($witness, $sb->name,
			"health = 'up' AND role = 'standby'
			 AND wal_receiver_status = 'streaming'", $cluster);
	}
	return $ok;
}

=pod

=item wait_for_status($witness, $node_name, $sql_condition, $cluster_name)

Polls hamonitor.status until $sql_condition (any SQL boolean expression
over its columns) holds for the node; returns true if it did before
poll_query_until gave up, else prints the node's status row and returns
false.

=cut

sub wait_for_status
{
	my ($witness, $node_name, $cond, $cluster_name) = @_;

	$cluster_name = 'main' unless defined $cluster_name;
	my $ok = $witness->poll_query_until(
		'postgres', sprintf(
			'SELECT coalesce((%s), false) FROM hamonitor.status '
			  . 'WHERE node_name = %s AND cluster_name = %s',
			$cond, quote_literal($node_name), quote_literal($cluster_name)));
	diag("status of $cluster_name/$node_name: "
		  . status_value($witness, $node_name, 's::text', $cluster_name))
	  unless $ok;
	return $ok;
}

=pod

=item status_value($witness, $node_name, $sql_expr, $cluster_name)

Returns the value of an SQL expression over the node's hamonitor.status
row (alias s); empty if there is no such row.

=cut

sub status_value
{
	my ($witness, $node_name, $expr, $cluster_name) = @_;

	$cluster_name = 'main' unless defined $cluster_name;
	return $witness->safe_psql(
		'postgres',
		sprintf(
			'SELECT %s FROM hamonitor.status s '
			  . 'WHERE node_name = %s AND cluster_name = %s',
			$expr, quote_literal($node_name), quote_literal($cluster_name)));
}

=pod

=item cluster_value($witness, $cluster, $sql_expr)

Returns the value of an SQL expression over the cluster's row of
hamonitor.cluster (alias c); empty if there is no such cluster.

=cut

sub cluster_value
{
	my ($witness, $cluster, $expr) = @_;
	return $witness->safe_psql('postgres',
		"SELECT $expr FROM hamonitor.cluster c WHERE cluster_name = "
		  . quote_literal($cluster));
}

=pod

=item cluster_primary($witness, $cluster)

Returns "node_name:timeline" of the primary the hamonitor.cluster row
names, or an empty string if it names none.

=cut

sub cluster_primary
{
	my ($witness, $cluster) = @_;
	return cluster_value($witness, $cluster,
		"(SELECT n.node_name FROM hamonitor.node n
		   WHERE n.node_id = c.primary_node_id) || ':' || c.timeline");
}

# the pg_stat_activity query counting the worker's sessions for one node
sub _worker_sessions_sql
{
	my ($cluster, $node_name) = @_;
	return sprintf(
		'SELECT count(*) FROM pg_stat_activity WHERE application_name = %s',
		quote_literal("pg_hamonitor/$cluster/$node_name"));
}

=pod

=item worker_sessions($peer, $cluster, $node_name)

Returns how many sessions on the server $peer carry the application_name
of the witness worker's connection for $cluster/$node_name.

=cut

sub worker_sessions
{
	my ($peer, $cluster, $node_name) = @_;
	return $peer->safe_psql('postgres',
		_worker_sessions_sql($cluster, $node_name));
}

=pod

=item wait_for_worker_sessions($peer, $cluster, $node_name, $count)

Polls $peer until worker_sessions is $count; returns true if it got there.

=cut

sub wait_for_worker_sessions
{
	my ($peer, $cluster, $node_name, $count) = @_;
	return $peer->poll_query_until('postgres',
		_worker_sessions_sql($cluster, $node_name), $count);
}

=pod

=item wait_for_more_probes($witness, $sql_condition, $n)

Counts the rows of hamonitor.lsn_history matching $sql_condition now, then
polls until more than $n further rows match: the nodes keep being probed.
Returns true if they did.

=cut

sub wait_for_more_probes
{
	my ($witness, $cond, $n) = @_;
	my $before = $witness->safe_psql('postgres',
		"SELECT count(*) FROM hamonitor.lsn_history WHERE $cond");
	return $witness->poll_query_until('postgres',
		"SELECT count(*) > $before + $n FROM hamonitor.lsn_history WHERE $cond"
	);
}

=pod

=item wait_for_probed_since($witness, $cluster, $since, $n_nodes)

Polls until $n_nodes distinct nodes of $cluster have a successful probe in
hamonitor.lsn_history after the timestamp $since; returns true if so.

=cut

sub wait_for_probed_since
{
	my ($witness, $cluster, $since, $n_nodes) = @_;
	return $witness->poll_query_until(
		'postgres',
		sprintf(
			"SELECT count(DISTINCT node_name) FROM hamonitor.lsn_history
			  WHERE cluster_name = %s AND success AND probed_at > %s",
			quote_literal($cluster), quote_literal($since)),
		$n_nodes);
}

=pod

=item wait_seconds($node, $seconds)

Waits until $seconds have passed on $node's clock, by polling it; returns
the (start, end) timestamps as the server printed them, to delimit a
measurement window in SQL.  Dies if the wait fails.

=cut

sub wait_seconds
{
	my ($node, $seconds) = @_;

	my $start = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
	$node->poll_query_until('postgres',
		"SELECT clock_timestamp() >= '$start'::timestamptz + interval '$seconds s'"
	) or die "could not wait $seconds s on node " . $node->name;
	my $end = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
	return ($start, $end);
}

=pod

=item set_witness_guc($witness, $name, $value)

ALTER SYSTEM SET pg_hamonitor.$name on the witness, reload, and wait until
a new session sees it.  $value is a literal as SHOW prints it.  Returns
true if the setting took.

=cut

sub set_witness_guc
{
	my ($witness, $name, $value) = @_;
	$witness->safe_psql('postgres',
		"ALTER SYSTEM SET pg_hamonitor.$name = " . quote_literal($value));
	return _reload_until($witness, $name, $value);
}

=pod

=item reset_witness_guc($witness, $name, $value)

ALTER SYSTEM RESET pg_hamonitor.$name, reload, and wait until a new
session shows $value (the value it falls back to, as SHOW prints it).
Returns true if it did.

=cut

sub reset_witness_guc
{
	my ($witness, $name, $value) = @_;
	$witness->safe_psql('postgres', "ALTER SYSTEM RESET pg_hamonitor.$name");
	return _reload_until($witness, $name, $value);
}

sub _reload_until
{
	my ($witness, $name, $value) = @_;
	$witness->reload;
	return wait_for_setting($witness, "pg_hamonitor.$name", $value);
}

=pod

=item wait_for_setting($node, $name, $value)

Polls $node until a new session shows the setting $name as $value (as
SHOW prints it); returns true if it did.

=cut

sub wait_for_setting
{
	my ($node, $name, $value) = @_;
	return $node->poll_query_until('postgres',
		sprintf('SELECT current_setting(%s) = %s',
			quote_literal($name), quote_literal($value)));
}

=pod

=back

=head2 Events

The functions taking ($cluster, $kind, $cond, $after_id) select the
events of $cluster whose kind is $kind (or one of them, for an array
reference), for which the optional SQL condition $cond over the columns of
hamonitor.events holds, and newer than the optional $after_id.

=over

=item last_event_id($witness)

Returns the newest event_id, 0 if none: a marker to look at later events
only.

=cut

sub last_event_id
{
	my ($witness) = @_;
	return $witness->safe_psql('postgres',
		'SELECT coalesce(max(event_id), 0) FROM hamonitor.events');
}

sub _event_where
{
	my ($cluster, $kind, $cond, $after) = @_;
	my @kinds = ref $kind ? @$kind : ($kind);
	my $where = sprintf('cluster_name = %s AND kind IN (%s)',
		quote_literal($cluster), join(', ', map { quote_literal($_) } @kinds));
	$where .= " AND ($cond)" if defined $cond && $cond ne '';
	$where .= " AND event_id > $after" if defined $after;
	return $where;
}

=pod

=item wait_for_event($witness, $cluster, $kind, $cond, $after_id)

Polls until a matching event exists.  Returns true if one showed up;
otherwise prints the cluster's events and status and returns false.

=cut

sub wait_for_event
{
	my ($witness, $cluster, $kind, $cond, $after) = @_;
	my $ok = $witness->poll_query_until('postgres',
		'SELECT count(*) > 0 FROM hamonitor.events WHERE '
		  . _event_where($cluster, $kind, $cond, $after));
	diag_witness($witness, $cluster) unless $ok;
	return $ok;
}

=pod

=item event_value($witness, $cluster, $kind, $sql_expr, $cond, $after_id)

Returns the value of the SQL aggregate expression $sql_expr over the
matching events, e.g. "string_agg(node_name, ',')" or "min(event_id)".

=cut

sub event_value
{
	my ($witness, $cluster, $kind, $expr, $cond, $after) = @_;
	return $witness->safe_psql('postgres',
		"SELECT $expr FROM hamonitor.events WHERE "
		  . _event_where($cluster, $kind, $cond, $after));
}

=pod

=item count_events($witness, $cluster, $kind, $cond, $after_id)

Returns how many events match: event_value with count(*).

=cut

sub count_events
{
	my ($witness, $cluster, $kind, $cond, $after) = @_;
	return event_value($witness, $cluster, $kind, 'count(*)', $cond, $after);
}

=pod

=item events_text($witness, $cluster)

Returns the cluster's events, one per line (id, kind, node, detail), for
diagnostics.

=cut

sub events_text
{
	my ($witness, $cluster) = @_;
	return $witness->safe_psql(
		'postgres',
		sprintf(
			"SELECT string_agg(format('%%s %%s %%s: %%s', event_id, kind,
			                          coalesce(node_name, '-'), detail),
			                   E'\\n' ORDER BY event_id)
			   FROM hamonitor.events WHERE cluster_name = %s",
			quote_literal($cluster)));
}

=pod

=item diag_witness($witness, $cluster)

Prints the cluster's events and status rows with diag.

=cut

sub diag_witness
{
	my ($witness, $cluster) = @_;
	diag("events of cluster $cluster:\n" . events_text($witness, $cluster));
	diag(
		"status of cluster $cluster:\n"
		  . $witness->safe_psql(
			'postgres',
			sprintf(
				"SELECT string_agg(s::text, E'\\n' ORDER BY node_name)
				   FROM hamonitor.status s WHERE cluster_name = %s",
				quote_literal($cluster))));
	return;
}

=pod

=item start_event_listener($witness)

Opens a background psql session on the witness that ran LISTEN
hamonitor_event; returns it (for wait_for_notification; ->quit ends it).

=cut

sub start_event_listener
{
	my ($witness) = @_;
	my $listener = $witness->background_psql('postgres');
	$listener->query_safe('LISTEN hamonitor_event');
	return $listener;
}

=pod

=item wait_for_notification($listener, $event_id)

Polls a start_event_listener session (psql prints what it received with
each query's result) for about 5 s, until the notification on
hamonitor_event carrying $event_id has been received.  Returns true if it
was; otherwise prints what the session received and returns false.

=cut

sub wait_for_notification
{
	my ($listener, $event_id) = @_;
	my $notifications = '';
	my $expected =
	  qr/Asynchronous notification "hamonitor_event" with payload "$event_id" received/;

	foreach my $i (1 .. 50)
	{
		$notifications .= $listener->query_safe('SELECT pg_sleep(0.1)');
		return 1 if $notifications =~ $expected;
	}
	diag("no notification with payload $event_id; received:\n$notifications");
	return 0;
}

=pod

=back

=head2 Crashes and stalls

=over

=item postmaster_pid($node)

Returns the PID in the node's postmaster.pid, or undef.

=cut

sub postmaster_pid
{
	my ($node) = @_;
	my $file = $node->data_dir . '/postmaster.pid';
	return undef unless -f $file;
	open my $fh, '<', $file or return undef;
	my $pid = <$fh>;
	close $fh;
	return undef unless defined $pid;
	chomp $pid;
	return $pid =~ /^\d+$/ ? $pid : undef;
}

# state and parent of a process from /proc/PID/stat, or () if gone
sub _proc_stat
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return ();
	my $line = <$fh>;
	close $fh;
	return () unless defined $line && $line =~ /^\d+ \(.*\) (\S) (\d+)/s;
	return ($1, $2);
}

=pod

=item server_pids($node)

Returns the postmaster's PID followed by the PIDs of all its live children
(from /proc), or an empty list if the server is not running.  (The
postmaster's children lead process groups of their own, so a server cannot
be signalled as one group.)

=cut

sub server_pids
{
	my ($node) = @_;
	my $pm = postmaster_pid($node);
	return () unless defined $pm;
	my ($state) = _proc_stat($pm);
	return () unless defined $state && $state ne 'Z';

	my @children;
	opendir my $dh, '/proc' or die "could not open /proc: $!";
	foreach my $pid (grep { /^\d+$/ } readdir $dh)
	{
		my ($st, $ppid) = _proc_stat($pid);
		push @children, $pid
		  if defined $ppid && $ppid == $pm && $st ne 'Z';
	}
	closedir $dh;
	return ($pm, @children);
}

# true once none of the PIDs is a live process (zombies count as gone)
sub _all_gone
{
	my @pids = @_;
	foreach my $pid (@pids)
	{
		my ($st) = _proc_stat($pid);
		return 0 if defined $st && $st ne 'Z';
	}
	return 1;
}

# SIGSTOP to the postmaster (so it forks nothing meanwhile), then $signal
# to each of its children; returns ($postmaster, @children)
sub _signal_server
{
	my ($node, $signal) = @_;
	my $pm = postmaster_pid($node);
	die 'no postmaster.pid for node ' . $node->name unless defined $pm;
	kill 'STOP', $pm;
	my (undef, @children) = server_pids($node);
	kill $signal, @children if @children;
	note "SIG$signal to node " . $node->name . " (postmaster $pm stopped, "
	  . scalar(@children) . ' children)';
	return ($pm, @children);
}

=pod

=item kill9_all($node)

Crashes the server as a machine failure would: SIGKILL to the postmaster
and all its children at the same time, so no backend survives to send its
clients an error (Cluster.pm's kill9 only kills the postmaster, whose
backends then end their sessions with SQLSTATE 57P01).  Waits until all
are gone and tells Cluster.pm the node is stopped, so it can be started
again.  Dies if a process survives.

=cut

sub kill9_all
{
	my ($node) = @_;
	my ($pm, @children) = _signal_server($node, 'KILL');
	$node->kill9;    # SIGKILL to the postmaster, and forgets its PID
	kill 'KILL', $pm;

	# The postmaster must be reaped too, not just dead: a new postmaster
	# takes a zombie's PID in postmaster.pid for a live server.  Orphans are
	# reaped by PID 1, which may take a while (over a second here).
	foreach my $i (1 .. 100 * $PostgreSQL::Test::Utils::timeout_default)
	{
		last if _all_gone(@children) && !-e "/proc/$pm";
		usleep(10_000);
	}
	die 'processes of node ' . $node->name . ' survived SIGKILL'
	  unless _all_gone($pm, @children);
	note "postmaster $pm of node " . $node->name . ' was not reaped'
	  if -e "/proc/$pm";
	return;
}

=pod

=item freeze_server($node)

SIGSTOP to the postmaster, then to each of its children: the server hangs
with every connection open, as on a stalled host.  Returns the PIDs, for
thaw_server.

=cut

sub freeze_server
{
	my ($node) = @_;
	return _signal_server($node, 'STOP');
}

=pod

=item thaw_server(@pids)

SIGCONT to the children, then the postmaster, given by freeze_server.

=cut

sub thaw_server
{
	my ($pm, @children) = @_;
	kill 'CONT', @children if @children;
	kill 'CONT', $pm;
	return;
}

=pod

=back

=head2 Helper processes

Black holes, proxies and pg_receivewal run as helper processes: each is a
hash with harness (IPC::Run), what (a name for messages), and for the TCP
servers port and pgid.  The TCP servers are perl processes that lead their
own process group (pgid) and exit by themselves when the test process goes
away.  stop_helper stops any of them; those still running at exit are
stopped then.

=cut

# Starts a helper process; with announce => 1 (the TCP servers) waits for
# its first line "PORT PID" (PID its process group).  Registers it for
# stop_helper and the END block.
sub _start_helper
{
	my ($what, $cmd, %params) = @_;
	my $h = { what => $what, out => '', err => '' };
	$h->{harness} = IPC::Run::start($cmd, '<', \undef, '>', \$h->{out}, '2>',
		\$h->{err});
	if ($params{announce})
	{
		my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
		$timer->start;
		$h->{harness}->pump
		  until $h->{out} =~ /^(\d+) (\d+)\n/
		  || $timer->is_expired
		  || !$h->{harness}->pumpable;
		die "$what did not start: $h->{err}"
		  unless $h->{out} =~ /^(\d+) (\d+)\n/;
		($h->{port}, $h->{pgid}) = ($1, $2);
	}
	push @helpers, $h;
	return $h;
}

=pod

=over

=item stop_helper($helper)

Stops a helper process: SIGKILL to its whole process group for the TCP
servers (the listener and every connection it holds or forwards are gone
at once, as if the network had been cut), SIGTERM then SIGKILL for
pg_receivewal; reaps it and notes its stderr.  Does nothing if already
stopped.

=cut

sub stop_helper
{
	my ($h) = @_;
	return unless $h->{harness};
	kill 'KILL', -$h->{pgid} if $h->{pgid};
	$h->{harness}->kill_kill(grace => 1);
	$h->{harness} = undef;
	note "$h->{what} stderr: $h->{err}" if $h->{err} ne '';
	@helpers = grep { $_ != $h } @helpers;
	return;
}

END
{
	my $exit_code = $?;
	stop_helper($_) foreach (@helpers);
	$? = $exit_code;
}

# the start of every TCP server script: its own process group, a listener
# on 127.0.0.1 (port $port, 0 for any), "PORT PGID" on stdout
my $tcp_server_prelude = <<'EOS';
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;

sub tcp_listen
{
	my ($port) = @_;
	setpgrp(0, 0);
	$| = 1;
	my $listener = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $port,
		Proto     => 'tcp',
		Listen    => 1024,
		ReuseAddr => 1) or die "could not listen on port $port: $!";
	print $listener->sockport, " $$\n";
	return $listener;
}
EOS

=pod

=item start_blackhole()

Starts a TCP server on 127.0.0.1 (port chosen by the kernel) that accepts
every connection, keeps it open and never reads or writes, like a host
whose server hangs.  Returns the helper (its port in {port}).

=cut

sub start_blackhole
{
	my $countfile = File::Temp->new(
		TEMPLATE => 'blackhole_XXXX',
		DIR      => $PostgreSQL::Test::Utils::tmp_check,
		UNLINK   => 1);
	my $script = $tcp_server_prelude . <<'EOS';
my ($countfile, $parent) = @ARGV;
my $listener = tcp_listen(0);
my $sel = IO::Select->new($listener);
my @held;
my $accepted = 0;
# wake up every second, to exit when the test process is gone
while (getppid() == $parent)
{
	next unless $sel->can_read(1);
	my $conn = $listener->accept or next;
	push @held, $conn;      # keep it open, never read, never write
	$accepted++;
	open my $fh, '>', "$countfile.tmp" or next;
	print $fh "$accepted\n";
	close $fh;
	rename "$countfile.tmp", $countfile;
}
exit 0;
EOS

	my $bh = _start_helper('black-hole server',
		[ $^X, '-e', $script, $countfile->filename, $$ ],
		announce => 1);
	$bh->{countfile} = $countfile;
	note "black-hole server listening on 127.0.0.1:$bh->{port}";
	return $bh;
}

=pod

=item blackhole_accepted($bh)

Returns how many connections the black-hole server has accepted so far.

=cut

sub blackhole_accepted
{
	my ($bh) = @_;
	my $name = $bh->{countfile}->filename;
	return 0 unless -s $name;
	my $n = slurp_file($name);
	chomp $n;
	return $n + 0;
}

=pod

=item start_proxy($node, %params)

Starts a TCP proxy on 127.0.0.1 forwarding to $node's Unix socket (the test
servers listen on Unix sockets only), forking one process per connection
in its process group.  port => N binds that port (to bring a proxy back
where it was), otherwise the kernel picks one.  reply_delay => S holds
every reply of the server S seconds (a slow peer).  Returns the helper (its
port in {port}); stop_helper on it is a network partition.
proxy_hold_new makes it black-hole the connections that come next, while
those it already forwards go on.

=cut

sub start_proxy
{
	my ($node, %params) = @_;
	my $target = sprintf('%s/.s.PGSQL.%d', $node->host, $node->port);
	my $port = $params{port} || 0;

	my $script = $tcp_server_prelude . <<'EOS';
use IO::Socket::UNIX;
use POSIX ();
use Socket qw(SOCK_STREAM);

my ($target, $port, $testpid, $delay, $countfile) = @ARGV;
$SIG{CHLD} = 'IGNORE';    # children are reaped by the kernel
# SIGUSR1: new connections are held, never forwarded (proxy_hold_new)
my ($hold, @held) = (0);
$SIG{USR1} = sub { $hold = 1 };
my $listener = tcp_listen($port);

# copies bytes both ways until either side closes or the proxy is gone
sub relay
{
	my ($client, $server, $proxypid) = @_;
	my $sel = IO::Select->new($client, $server);
	while (getppid() == $proxypid)
	{
		foreach my $from ($sel->can_read(1))
		{
			my $to = $from == $client ? $server : $client;
			my $n = sysread($from, my $buf, 65536);
			return unless $n;
			# a slow peer: its replies come late
			select(undef, undef, undef, $delay) if $delay && $from == $server;
			my $off = 0;
			while ($off < $n)
			{
				my $w = syswrite($to, $buf, $n - $off, $off);
				return unless defined $w;
				$off += $w;
			}
		}
	}
	return;
}

my $sel = IO::Select->new($listener);
while (getppid() == $testpid)
{
	next unless $sel->can_read(1);
	my $client = $listener->accept or next;
	if ($hold)
	{
		push @held, $client;    # keep it open, never read, never write
		open my $fh, '>', "$countfile.tmp" or next;
		print $fh scalar(@held), "\n";
		close $fh;
		rename "$countfile.tmp", $countfile;
		next;
	}
	my $pid = fork;
	if (defined $pid && $pid == 0)
	{
		my $proxypid = getppid();
		close $listener;
		my $server = IO::Socket::UNIX->new(
			Type => SOCK_STREAM,
			Peer => $target);
		relay($client, $server, $proxypid) if $server;
		POSIX::_exit(0);
	}
	close $client;
}
exit 0;
EOS

	my $delay = $params{reply_delay} || 0;
	my $countfile = File::Temp->new(
		TEMPLATE => 'proxy_XXXX',
		DIR      => $PostgreSQL::Test::Utils::tmp_check,
		UNLINK   => 1);
	my $proxy = _start_helper('proxy',
		[ $^X, '-e', $script, $target, $port, $$, $delay, $countfile->filename ],
		announce => 1);
	$proxy->{countfile} = $countfile;
	note "proxy 127.0.0.1:$proxy->{port} -> $target "
	  . "(process group $proxy->{pgid})"
	  . ($delay ? ", replies $delay s late" : '');
	return $proxy;
}

=pod

=item proxy_hold_new($proxy)

From now on the proxy accepts new connections and holds them without
forwarding anything (a peer that hangs for new sessions), while the
connections it already forwards go on.  proxy_held($proxy) returns how
many it holds.

=cut

sub proxy_hold_new
{
	my ($proxy) = @_;
	kill 'USR1', $proxy->{pgid};
	return;
}

sub proxy_held
{
	my ($proxy) = @_;
	return blackhole_accepted($proxy);
}

=pod

=item start_receivewal($node, $slot_name)

Starts pg_receivewal streaming from $node through the existing physical
slot $slot_name into a fresh directory (--no-loop: it exits, rather than
reconnects, when its connection ends).  Returns the helper;
wait_for_slot_active tells when it holds the slot.

=cut

sub start_receivewal
{
	my ($node, $slot) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir('receivewal');
	my $rw = _start_helper(
		"pg_receivewal ($slot)",
		[
			$node->installed_command('pg_receivewal'), '--no-loop',
			'--no-password', '-h', $node->host, '-p', $node->port,
			'-S', $slot, '-D', $dir
		]);
	note 'pg_receivewal started on node ' . $node->name . " with slot $slot";
	return $rw;
}

=pod

=item haproxy_binary()

The path of the haproxy binary (Debian's haproxy package), or undef.

=cut

sub haproxy_binary
{
	return (grep { -x } map { "$_/haproxy" } split(/:/, $ENV{PATH} // ''),
		'/usr/sbin', '/usr/bin')[0];
}

=pod

=item start_haproxy($http_port, $cluster, $endpoint, @nodes)

Starts HAProxy (in the foreground, as a helper process) with one frontend
on 127.0.0.1 and one server per node (its TCP address: the nodes must
listen on 127.0.0.1), each checked at the witness's HTTP endpoint
($http_port) for that node: GET /$endpoint/$cluster/<server name> with
HAProxy 2.6's per-server uri-lf, every 200 ms, one failure marks it down,
sessions shut down then.  Returns the helper, with port (the frontend)
and config (the configuration text, also in the test log).

=cut

sub start_haproxy
{
	my ($http_port, $cluster, $endpoint, @nodes) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $cfg = <<"EOC";
global
    maxconn 200

defaults
    mode tcp
    # a connection to a primary that just died is refused at once; the
    # retry comes 250 ms later, by then the server is marked down
    retries 1
    timeout connect 250ms
    timeout client 60s
    timeout server 60s
    timeout check 1s

listen pg_$endpoint
    bind 127.0.0.1:$port
    option httpchk
    http-check send meth GET uri-lf /$endpoint/$cluster/%[srv_name] ver HTTP/1.1 hdr Host witness
    http-check expect status 200
    default-server inter 200ms fall 1 rise 1 on-marked-down shutdown-sessions
EOC
	foreach my $node (@nodes)
	{
		$cfg .= sprintf("    server %s 127.0.0.1:%d check addr 127.0.0.1 port %d\n",
			$node->name, $node->port, $http_port);
	}
	my $dir = PostgreSQL::Test::Utils::tempdir('haproxy');
	PostgreSQL::Test::Utils::append_to_file("$dir/haproxy.cfg", $cfg);
	note "haproxy.cfg:\n$cfg";
	my $h = _start_helper("haproxy ($endpoint)",
		[ haproxy_binary(), '-db', '-f', "$dir/haproxy.cfg" ]);
	$h->{port}   = $port;
	$h->{config} = $cfg;
	return $h;
}

=pod

=item refused_port()

Returns a TCP port on 127.0.0.1 nobody listens on (reserved like a test
server's port, so no test node takes it), where connections are refused at
once.

=cut

sub refused_port
{
	return PostgreSQL::Test::Cluster::get_free_port();
}

=pod

=back

=head2 Slots and logs

=over

=item peer_slot($node, $slot_name, $sql_expr)

Returns the value of an SQL expression over the slot's row of
pg_replication_slots on $node (alias s); empty if there is no such slot.

=cut

sub peer_slot
{
	my ($node, $slot, $expr) = @_;
	return $node->safe_psql('postgres',
		sprintf('SELECT %s FROM pg_catalog.pg_replication_slots s '
			  . 'WHERE slot_name = %s',
			$expr, quote_literal($slot)));
}

=pod

=item wait_for_peer_slot($node, $sql_condition)

Polls pg_replication_slots on $node until the SQL boolean expression
(over the whole view, e.g. "count(*) FILTER (WHERE ...) = 1") holds;
returns true if it did, else prints the node's slots and returns false.

=cut

sub wait_for_peer_slot
{
	my ($node, $cond) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT coalesce(($cond), false) FROM pg_catalog.pg_replication_slots");
	diag('slots of ' . $node->name . ":\n"
		  . $node->safe_psql('postgres',
			"SELECT string_agg(s::text, E'\\n' ORDER BY slot_name)
			   FROM pg_catalog.pg_replication_slots s"))
	  unless $ok;
	return $ok;
}

=pod

=item wait_for_slot_active($node, $slot_name)

Polls $node until the slot is active; returns the PID of the walsender
holding it (pg_replication_slots.active_pid), or undef if it never became
active.

=cut

sub wait_for_slot_active
{
	my ($node, $slot) = @_;
	return undef
	  unless wait_for_peer_slot($node,
		sprintf('count(*) FILTER (WHERE slot_name = %s AND active) = 1',
			quote_literal($slot)));
	return peer_slot($node, $slot, 'active_pid');
}

# the WHERE clause selecting a slot's rows of hamonitor.slots
sub _slot_view_where
{
	my ($cluster, $node_name, $slot) = @_;
	return sprintf('cluster_name = %s AND node_name = %s AND slot_name = %s',
		quote_literal($cluster), quote_literal($node_name),
		quote_literal($slot));
}

=pod

=item slot_view($witness, $cluster, $node_name, $slot_name, $sql_expr)

Returns the value of an SQL expression over the slot's row of
hamonitor.slots (alias s); empty if the witness shows no such slot.

=cut

sub slot_view
{
	my ($witness, $cluster, $node_name, $slot, $expr) = @_;
	return $witness->safe_psql('postgres',
		"SELECT $expr FROM hamonitor.slots s WHERE "
		  . _slot_view_where($cluster, $node_name, $slot));
}

=pod

=item wait_for_slot_view($witness, $cluster, $node_name, $slot, $cond)

Polls hamonitor.slots until the slot's row exists and the SQL boolean
expression $cond holds over it; with $cond undef, until the witness no
longer shows the slot.  The view lags the peer by up to one probe
interval.  Returns true if it happened, else prints the node's rows of the
view and returns false.

=cut

sub wait_for_slot_view
{
	my ($witness, $cluster, $node_name, $slot, $cond) = @_;
	my $where = _slot_view_where($cluster, $node_name, $slot);
	my $query =
	  defined $cond
	  ? "SELECT coalesce(bool_and($cond), false) FROM hamonitor.slots WHERE $where"
	  : "SELECT count(*) = 0 FROM hamonitor.slots WHERE $where";
	my $ok = $witness->poll_query_until('postgres', $query);
	diag("hamonitor.slots of $cluster/$node_name:\n"
		  . $witness->safe_psql(
			'postgres',
			sprintf(
				"SELECT string_agg(s::text, E'\\n' ORDER BY slot_name)
				   FROM hamonitor.slots s
				  WHERE cluster_name = %s AND node_name = %s",
				quote_literal($cluster), quote_literal($node_name))))
	  unless $ok;
	return $ok;
}

=pod

=item log_position($node)

Returns the current size of $node's log: an offset for count_in_log.

=cut

sub log_position
{
	my ($node) = @_;
	return -s $node->logfile || 0;
}

=pod

=item count_in_log($node, $regexp, $offset)

Returns how many times $regexp matches in $node's log after byte $offset.

=cut

sub count_in_log
{
	my ($node, $re, $offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	my $n = () = $log =~ /$re/g;
	return $n;
}

=pod

=back

=head2 The witness's HTTP endpoint

=over

=item http_request($port, $raw, $timeout)

Connects to 127.0.0.1:$port, sends the bytes $raw as they are, and reads
until the server closes the connection or $timeout seconds (default
timeout_default) pass.  Returns a hash: status (undef if no status line),
headers (lower-cased names), body, raw (all that was read), closed (the
server closed the connection), elapsed (seconds).

=cut

sub http_request
{
	my ($port, $raw, $timeout) = @_;
	require IO::Socket::INET;
	require IO::Select;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;

	my $start = Time::HiRes::time();
	my %r = (raw => '', closed => 0, headers => {});
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $port,
		Proto    => 'tcp',
		Timeout  => $timeout);
	if (!$sock)
	{
		$r{error} = "connect: $!";
		return \%r;
	}
	syswrite($sock, $raw) if length $raw;
	my $sel = IO::Select->new($sock);
	while (1)
	{
		my $left = $timeout - (Time::HiRes::time() - $start);
		last if $left <= 0;
		last unless $sel->can_read($left);
		my $n = sysread($sock, my $buf, 65536);
		if (!$n)
		{
			$r{closed} = 1;
			last;
		}
		$r{raw} .= $buf;
	}
	close $sock;
	$r{elapsed} = Time::HiRes::time() - $start;
	if ($r{raw} =~ /^HTTP\/1\.[01] (\d{3}) [^\r\n]*\r\n(.*?)\r\n\r\n(.*)\z/s)
	{
		$r{status} = $1;
		$r{body}   = $3;
		foreach my $line (split /\r\n/, $2)
		{
			my ($k, $v) = split /:\s*/, $line, 2;
			$r{headers}{ lc $k } = $v;
		}
	}
	return \%r;
}

=pod

=item http_get($port, $path, $method)

http_request of "$method $path HTTP/1.1" (GET by default) with a Host
header; returns the same hash.

=cut

sub http_get
{
	my ($port, $path, $method) = @_;
	$method //= 'GET';
	return http_request($port,
		"$method $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n\r\n");
}

=pod

=item wait_for_http($port, $path, $status)

Polls GET $path every 100 ms until its status is $status, for at most
timeout_default seconds; returns the last answer's hash when it got there,
else diags the last answer and returns undef.

=cut

sub wait_for_http
{
	my ($port, $path, $status) = @_;
	my $r;
	foreach my $i (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		$r = http_get($port, $path);
		return $r if defined $r->{status} && $r->{status} eq $status;
		usleep(100_000);
	}
	diag("GET $path: last answer "
		  . ($r->{status} // 'none') . ': '
		  . ($r->{body} // $r->{error} // ''));
	return undef;
}

=pod

=back

=cut

1;
