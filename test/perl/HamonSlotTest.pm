
# Copyright (c) 2026, pg_hamonitor developers

=pod

=head1 NAME

HamonSlotTest - helpers for the replication slot TAP tests of pg_hamonitor

=head1 SYNOPSIS

  use HamonTest;
  use HamonFailoverTest;
  use HamonSlotTest;

  my ($primary, $sb1) = create_logical_ha_cluster(
      primary => 'primary', standbys => [ 'sb1' ]);
  my $rw = start_receivewal($primary, 'phys1');
  my $pid = wait_for_slot_active($primary, 'phys1');
  my ($state, $out, $err) = psql_result($witness, 'SELECT ...');
  stop_receivewal($rw);

=head1 DESCRIPTION

Builds on HamonTest and HamonFailoverTest: a primary with wal_level =
logical and its streaming standbys, a real pg_receivewal holding a physical
slot, an SQL runner that hands back the whole error report (SQLSTATE and
HINT), and shortcuts over pg_replication_slots on a peer and the
hamonitor.slots view on the witness.

Only methods present in PostgreSQL 15's Cluster.pm are used: new, init,
start, backup, safe_psql, psql, poll_query_until, installed_command, host,
port, name, logfile; and PostgreSQL::Test::Utils' slurp_file and tempdir.

=cut

package HamonSlotTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use Test::More;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

use HamonTest;
use HamonFailoverTest;

our @EXPORT = qw(
  create_logical_ha_cluster
  peer_slot
  wait_for_peer_slot
  slot_view
  wait_for_slot_view
  start_receivewal
  stop_receivewal
  wait_for_slot_active
  log_position
  count_in_log
);

# every pg_receivewal started and not yet stopped, killed at exit
my @receivers;

=pod

=over

=item create_logical_ha_cluster(primary => $name, standbys => [ ... ])

create_ha_cluster (HamonFailoverTest) with wal_level = logical on the
primary (and so on the standbys made from its base backup), for logical
slots.  Each standby streams with application_name = its name, and has
caught up on return.  Returns ($primary, @standbys).

=cut

sub create_logical_ha_cluster
{
	my (%params) = @_;

	my $primary = PostgreSQL::Test::Cluster->new($params{primary});
	$primary->init(allows_streaming => 'logical');
	$primary->start;
	$primary->backup('hamon_slot_backup');

	my @standbys;
	foreach my $name (@{ $params{standbys} || [] })
	{
		push @standbys, add_standby($primary, $name, 'hamon_slot_backup');
	}
	return ($primary, @standbys);
}

=pod

=item peer_slot($node, $slot_name, $sql_expr)

Value of an SQL expression over the slot's row of pg_replication_slots on
$node (alias s); empty if there is no such slot.

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
(over the whole view, e.g. "count(*) FILTER (WHERE ...) = 1") holds.

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

=item slot_view($witness, $cluster, $node_name, $slot_name, $sql_expr)

Value of an SQL expression over the slot's row of hamonitor.slots (alias
s); empty if the witness shows no such slot.

=cut

sub slot_view
{
	my ($witness, $cluster, $node_name, $slot, $expr) = @_;
	return $witness->safe_psql(
		'postgres',
		sprintf(
			'SELECT %s FROM hamonitor.slots s WHERE cluster_name = %s '
			  . 'AND node_name = %s AND slot_name = %s',
			$expr, quote_literal($cluster), quote_literal($node_name),
			quote_literal($slot)));
}

=pod

=item wait_for_slot_view($witness, $cluster, $node_name, $slot, $cond)

Polls hamonitor.slots until the slot's row exists and the SQL boolean
expression $cond holds over it; with $cond undef, until the witness no
longer shows the slot.  The view lags the peer by up to one probe interval.

=cut

sub wait_for_slot_view
{
	my ($witness, $cluster, $node_name, $slot, $cond) = @_;
	my $where = sprintf('cluster_name = %s AND node_name = %s AND slot_name = %s',
		quote_literal($cluster), quote_literal($node_name),
		quote_literal($slot));
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

=item start_receivewal($node, $slot_name)

Starts pg_receivewal streaming from $node through the existing physical
slot $slot_name into a fresh directory (--no-loop: it exits, rather than
reconnects, when its connection ends).  Returns a handle for
stop_receivewal; wait_for_slot_active tells when it holds the slot.

=cut

sub start_receivewal
{
	my ($node, $slot) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir('receivewal');
	my $rw = { out => '', err => '', slot => $slot };
	$rw->{harness} = IPC::Run::start(
		[
			$node->installed_command('pg_receivewal'), '--no-loop',
			'--no-password', '-h', $node->host, '-p', $node->port,
			'-S', $slot, '-D', $dir
		],
		'<', \undef, '>', \$rw->{out}, '2>', \$rw->{err});
	push @receivers, $rw;
	note 'pg_receivewal started on node ' . $node->name . " with slot $slot";
	return $rw;
}

=pod

=item stop_receivewal($rw)

Kills the pg_receivewal (SIGTERM, then SIGKILL after a second) and reaps
it; its stderr is noted.

=cut

sub stop_receivewal
{
	my ($rw) = @_;
	return unless $rw->{harness};
	$rw->{harness}->kill_kill(grace => 1);
	$rw->{harness} = undef;
	note "pg_receivewal ($rw->{slot}) stderr: $rw->{err}" if $rw->{err} ne '';
	@receivers = grep { $_ != $rw } @receivers;
	return;
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

=pod

=item log_position($node)

The current size of $node's log: an offset for count_in_log.

=cut

sub log_position
{
	my ($node) = @_;
	return -s $node->logfile || 0;
}

=pod

=item count_in_log($node, $regexp, $offset)

How many times $regexp matches in $node's log after byte $offset.

=cut

sub count_in_log
{
	my ($node, $re, $offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	my $n = () = $log =~ /$re/g;
	return $n;
}

END
{
	my $exit_code = $?;
	stop_receivewal($_) foreach (@receivers);
	$? = $exit_code;
}

=pod

=back

=cut

1;
