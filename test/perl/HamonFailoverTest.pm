
# Copyright (c) 2026, pg_hamonitor developers

=pod

=head1 NAME

HamonFailoverTest - helpers for the failover TAP tests of pg_hamonitor

=head1 SYNOPSIS

  use HamonTest;
  use HamonFailoverTest;

  my $witness = create_failover_witness('witness');
  my ($primary, $sb1, $sb2) =
    create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);
  register_ha_cluster($witness, 'main', $primary, $sb1, $sb2);

  kill9_all($primary);
  ok(wait_for_event($witness, 'main', 'promoted'), 'a standby was promoted');

=head1 DESCRIPTION

Builds on HamonTest: a witness with the failover settings the tests rely
on, a primary with any number of streaming standbys (each naming itself in
primary_conninfo's application_name), ways to crash or freeze a server with
all its processes, a forking TCP proxy that can be killed together with every
connection it carries, and shortcuts for events and SQLSTATEs.

Only methods present in PostgreSQL 15's Cluster.pm are used: new, init,
append_conf, start, stop, kill9, restart, reload, backup, init_from_backup,
set_standby_mode, safe_psql, psql, poll_query_until, wait_for_catchup,
data_dir, host, port, connstr, name, logfile.

=cut

package HamonFailoverTest;

use strict;
use warnings;

use Exporter 'import';
use File::Copy ();
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

use HamonTest;

our @EXPORT = qw(
  psql_result
  create_failover_witness
  create_ha_cluster
  add_standby
  register_ha_cluster
  standby_conninfo
  postmaster_pid
  server_pids
  kill9_all
  freeze_server
  thaw_server
  start_proxy
  stop_proxy
  sqlstate_of
  last_event_id
  wait_for_event
  count_events
  events_text
  in_recovery
  set_witness_guc
  reset_witness_guc
  wait_for_streaming
  start_bg_psql
  finish_bg_psql
  diag_witness
);

# every proxy started and not yet stopped, killed at exit
my @proxies;

=pod

=over

=item create_failover_witness($name, %params)

create_witness (HamonTest) with the failover settings spelled out, so the
tests do not depend on the defaults: failover_timeout 500ms, restart_grace
30s, auto_failover on, fence_old_primary on.  extra_conf is appended after.

=cut

sub create_failover_witness
{
	my ($name, %params) = @_;

	my $conf = q(
pg_hamonitor.auto_failover = on
pg_hamonitor.failover_timeout = '500ms'
pg_hamonitor.restart_grace = '30s'
pg_hamonitor.fence_old_primary = on
pg_hamonitor.repoint_timeout = '10s'
);
	$conf .= $params{extra_conf} if defined $params{extra_conf};
	return create_witness($name, %params, extra_conf => $conf);
}

=pod

=item standby_conninfo($upstream, $application_name)

A primary_conninfo for a standby of $upstream, naming itself
$application_name.

=cut

sub standby_conninfo
{
	my ($upstream, $appname) = @_;
	return sprintf('host=%s port=%d application_name=%s',
		$upstream->host, $upstream->port, $appname);
}

=pod

=item create_ha_cluster(primary => $name, standbys => [ ... ], %params)

Creates and starts a primary allowing streaming and one streaming standby
per name in standbys, made from one base backup; each standby's
primary_conninfo carries application_name = its name.  Returns
($primary, @standbys) once every standby has caught up.

wal_log_hints => 1 prepares the primary for pg_rewind (wal_log_hints on,
and wal_keep_size so its WAL back to the divergence is still there);
primary_conf => '...' is appended to the primary's postgresql.conf after
the base backup (so the standbys do not inherit it) and reloaded.

=cut

sub create_ha_cluster
{
	my (%params) = @_;

	my $primary = PostgreSQL::Test::Cluster->new($params{primary});
	$primary->init(allows_streaming => 1);
	# pg_rewind needs hint bits logged, and the WAL back to the last
	# checkpoint before the divergence still in the target's pg_wal
	$primary->append_conf('postgresql.conf',
		"wal_log_hints = on\nwal_keep_size = '320MB'\n")
	  if $params{wal_log_hints};
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
streaming with application_name = $name; waits until it has caught up.

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
	$primary->wait_for_catchup($name, 'replay', $primary->lsn('insert'));
	return $standby;
}

=pod

=item register_ha_cluster($witness, $cluster_name, $primary, @standbys)

Registers the servers in $cluster_name under their Cluster.pm names, and
waits until the witness sees the primary up as primary and every standby up
as a streaming standby.  Returns true if all that happened.

=cut

sub register_ha_cluster
{
	my ($witness, $cluster, $primary, @standbys) = @_;

	foreach my $node ($primary, @standbys)
	{
		register_node($witness, $node->name, $node->connstr('postgres'),
			$cluster);
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

=item postmaster_pid($node)

The PID in the node's postmaster.pid, or undef.

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

The postmaster's PID followed by the PIDs of all its live children (from
/proc), or an empty list if the server is not running.

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

=pod

=item kill9_all($node)

Crashes the server as a machine failure would: SIGKILL to the postmaster
and all its children at the same time, so no backend survives to send its
clients an error (Cluster.pm's kill9 only kills the postmaster, whose
backends then end their sessions with "terminating connection due to
unexpected postmaster exit", SQLSTATE 57P01).  The postmaster is stopped
first so it forks nothing meanwhile.  Waits until all are gone and tells
Cluster.pm the node is stopped (via kill9), so it can be started again.

=cut

sub kill9_all
{
	my ($node) = @_;
	my $pm = postmaster_pid($node);
	die 'no postmaster.pid for node ' . $node->name unless defined $pm;

	kill 'STOP', $pm;
	my (undef, @children) = server_pids($node);
	note 'killing node ' . $node->name . " (postmaster $pm and "
	  . scalar(@children) . ' children) with SIGKILL';
	kill 'KILL', @children if @children;
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
with every connection open, as on a stalled host.  Returns the PIDs for
thaw_server.

=cut

sub freeze_server
{
	my ($node) = @_;
	my $pm = postmaster_pid($node);
	die 'no postmaster.pid for node ' . $node->name unless defined $pm;
	kill 'STOP', $pm;
	my (undef, @children) = server_pids($node);
	kill 'STOP', @children if @children;
	note 'froze node ' . $node->name . " (postmaster $pm and "
	  . scalar(@children) . ' children)';
	return ($pm, @children);
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

=item start_proxy($node, %params)

Starts a TCP proxy on 127.0.0.1 forwarding to $node's Unix socket (the test
servers listen on Unix sockets only), in a separate perl process that leads
its own process group and forks one process per connection.  port => N
binds that port (to bring a proxy back where it was), otherwise the kernel
picks one.  Returns a hash with port; stop_proxy kills the whole group, which
cuts every connection it carries at once.  The processes also exit by
themselves when this test process goes away.

=cut

sub start_proxy
{
	my ($node, %params) = @_;
	my $target = sprintf('%s/.s.PGSQL.%d', $node->host, $node->port);
	my $port = $params{port} || 0;

	my $script = <<'EOS';
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX ();
use Socket qw(SOCK_STREAM);

my ($target, $port, $testpid) = @ARGV;
setpgrp(0, 0);
$| = 1;
$SIG{CHLD} = 'IGNORE';    # children are reaped by the kernel
my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => $port,
	Proto     => 'tcp',
	Listen    => 128,
	ReuseAddr => 1) or die "could not listen on port $port: $!";
print $listener->sockport, " $$\n";

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

	my ($stdin, $stdout, $stderr) = ('', '', '');
	my $h = IPC::Run::start([ $^X, '-e', $script, $target, $port, $$ ],
		'<', \$stdin, '>', \$stdout, '2>', \$stderr);
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$timer->start;
	$h->pump
	  until $stdout =~ /^(\d+) (\d+)\n/
	  || $timer->is_expired
	  || !$h->pumpable;
	die "proxy did not start: $stderr" unless $stdout =~ /^(\d+) (\d+)\n/;

	my $proxy = { port => $1, pid => $2, harness => $h };
	push @proxies, $proxy;
	note "proxy 127.0.0.1:$proxy->{port} -> $target (process group $2)";
	return $proxy;
}

=pod

=item stop_proxy($proxy)

SIGKILL to the proxy's whole process group: the listener and every
connection it forwards are gone at once, as if the network had been cut.

=cut

sub stop_proxy
{
	my ($proxy) = @_;
	return unless $proxy->{harness};
	kill 'KILL', -$proxy->{pid};
	$proxy->{harness}->kill_kill(grace => 1);
	$proxy->{harness} = undef;
	@proxies = grep { $_ != $proxy } @proxies;
	return;
}

=pod

=item psql_result($node, $sql)

Runs $sql in the postgres database with psql (VERBOSITY=verbose,
ON_ERROR_STOP); returns ($state, $stdout, $stderr) where $state is 'ok' if
it succeeded, else the SQLSTATE of the error, or "no SQLSTATE: ..." if none
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
	return ('ok', $out, $err) if $ret == 0 && $err !~ /ERROR:/;
	return ($1, $out, $err) if $err =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):/;
	return ("no SQLSTATE (exit $ret): $err", $out, $err);
}

=pod

=item sqlstate_of($node, $sql)

The SQLSTATE part of psql_result: 'ok', the error's SQLSTATE, or
"no SQLSTATE: ...".

=cut

sub sqlstate_of
{
	my ($state) = psql_result(@_);
	return $state;
}

=pod

=item last_event_id($witness)

The newest event_id, 0 if none: a marker to look for later events only.

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
	my $where = sprintf('cluster_name = %s AND kind = %s',
		quote_literal($cluster), quote_literal($kind));
	$where .= " AND ($cond)" if defined $cond && $cond ne '';
	$where .= " AND event_id > $after" if defined $after;
	return $where;
}

=pod

=item wait_for_event($witness, $cluster, $kind, $cond, $after_id)

Polls until an event of $kind exists in $cluster, satisfying the optional
SQL condition $cond (over the columns of hamonitor.events) and newer than
the optional $after_id.  Returns true if one showed up; otherwise prints
the cluster's events and status.

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

=item count_events($witness, $cluster, $kind, $cond, $after_id)

How many events match, as wait_for_event would.

=cut

sub count_events
{
	my ($witness, $cluster, $kind, $cond, $after) = @_;
	return $witness->safe_psql('postgres',
		'SELECT count(*) FROM hamonitor.events WHERE '
		  . _event_where($cluster, $kind, $cond, $after));
}

=pod

=item events_text($witness, $cluster)

The cluster's events, one per line (kind, node, detail), for diagnostics.

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

=item in_recovery($node)

pg_is_in_recovery() on the node: 't' or 'f'.

=cut

sub in_recovery
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT pg_is_in_recovery()');
}

=pod

=item set_witness_guc($witness, $name, $value)

ALTER SYSTEM SET pg_hamonitor.$name on the witness, reload, and wait until
a new session sees it.  $value is a literal as SHOW prints it.

=cut

sub set_witness_guc
{
	my ($witness, $name, $value) = @_;
	$witness->safe_psql('postgres',
		"ALTER SYSTEM SET pg_hamonitor.$name = " . quote_literal($value));
	$witness->reload;
	return $witness->poll_query_until('postgres',
		"SELECT current_setting('pg_hamonitor.$name') = "
		  . quote_literal($value));
}

=pod

=item reset_witness_guc($witness, $name, $value)

ALTER SYSTEM RESET pg_hamonitor.$name, reload, and wait until a new session
shows $value (the default, as SHOW prints it).

=cut

sub reset_witness_guc
{
	my ($witness, $name, $value) = @_;
	$witness->safe_psql('postgres', "ALTER SYSTEM RESET pg_hamonitor.$name");
	$witness->reload;
	return $witness->poll_query_until('postgres',
		"SELECT current_setting('pg_hamonitor.$name') = "
		  . quote_literal($value));
}

=pod

=item wait_for_streaming($standby, $upstream)

Polls the standby until its WAL receiver streams from $upstream's port.

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

=item start_bg_psql($node, $sql)

Starts psql running $sql (VERBOSITY=verbose, ON_ERROR_STOP) in the
background with IPC::Run; returns a handle for finish_bg_psql.

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

Waits for a start_bg_psql to end; returns 'ok' if it succeeded, else the
SQLSTATE of its error (or its stderr).  Its stdout is in $bg->{out}.

=cut

sub finish_bg_psql
{
	my ($bg) = @_;
	$bg->{harness}->finish;
	my $ret = $bg->{harness}->result(0);
	chomp $bg->{out};
	return 'ok' if $ret == 0;
	return $1 if $bg->{err} =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):/;
	return "no SQLSTATE (exit $ret): $bg->{err}";
}

END
{
	my $exit_code = $?;
	stop_proxy($_) foreach (@proxies);
	$? = $exit_code;
}

=pod

=back

=cut

1;
