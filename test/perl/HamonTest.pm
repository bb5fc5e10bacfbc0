
# Copyright (c) 2026, pg_hamonitor developers

=pod

=head1 NAME

HamonTest - helpers shared by the TAP tests of pg_hamonitor

=head1 SYNOPSIS

  use HamonTest;

  my ($primary, $standby) = create_primary_standby('primary', 'standby');
  my $witness = create_witness('witness');
  register_node($witness, 'primary', $primary->connstr('postgres'), 'main');
  ok(wait_for_status($witness, 'primary', "health = 'up'"), 'primary up');

  my $bh = start_blackhole();
  ...
  stop_blackhole($bh);

=head1 DESCRIPTION

Builds the servers the probe worker is tested against, with
PostgreSQL::Test::Cluster (PostgreSQL 15): a witness that preloads
pg_hamonitor with fast probe settings, a streaming primary and standby, and
a "black hole" TCP server that accepts connections and never answers.

Every helper only uses methods that exist in PG15's Cluster.pm: init,
init_from_backup, backup, start, append_conf, safe_psql, poll_query_until.

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
  wait_for_notification
  create_witness
  create_primary_standby
  create_node
  register_node
  quote_literal
  wait_for_status
  status_value
  wait_seconds
  start_blackhole
  stop_blackhole
  blackhole_accepted
  refused_port
);

# probe_interval set in every witness, in milliseconds
our $PROBE_INTERVAL_MS = 200;

# every black-hole server started and not yet stopped, killed at exit
my @blackholes;

=pod

=over

=item quote_literal($string)

The string as an SQL literal.

=cut

sub quote_literal
{
	my ($str) = @_;
	$str =~ s/'/''/g;
	return "'$str'";
}

=pod

=item create_witness($name, %params)

Creates, starts and returns a witness node: pg_hamonitor preloaded, the
fast settings every test relies on, and the extension created in the
postgres database (the default pg_hamonitor.database).

allows_streaming => 1 makes it usable as the primary of a standby witness.
extra_conf => '...' is appended to postgresql.conf before start.

=cut

sub create_witness
{
	my ($name, %params) = @_;

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $params{allows_streaming} ? 1 : 0);
	$node->append_conf(
		'postgresql.conf', qq(
shared_preload_libraries = 'pg_hamonitor'
pg_hamonitor.probe_interval = '${PROBE_INTERVAL_MS}ms'
pg_hamonitor.probe_timeout = '1s'
pg_hamonitor.connect_timeout = '1s'
pg_hamonitor.reconnect_backoff_max = '1s'
));
	$node->append_conf('postgresql.conf', $params{extra_conf})
	  if defined $params{extra_conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_hamonitor');
	return $node;
}

=pod

=item create_node($name, %params)

Creates and starts a plain server (a peer to monitor); %params go to init.

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

=item create_primary_standby($primary_name, $standby_name)

Creates and starts a primary allowing streaming and a standby streaming
from it (made from a base backup); returns both.  The standby has caught up
with the primary on return.

=cut

sub create_primary_standby
{
	my ($primary_name, $standby_name) = @_;

	my $primary = PostgreSQL::Test::Cluster->new($primary_name);
	$primary->init(allows_streaming => 1);
	$primary->start;
	$primary->backup('hamon_backup');

	my $standby = PostgreSQL::Test::Cluster->new($standby_name);
	$standby->init_from_backup($primary, 'hamon_backup', has_streaming => 1);
	$standby->start;
	$primary->wait_for_catchup($standby);

	return ($primary, $standby);
}

=pod

=item register_node($witness, $node_name, $conninfo, $cluster_name)

Registers a node with hamonitor.register_node and returns its node_id.

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

=item wait_for_status($witness, $node_name, $sql_condition, $cluster_name)

Polls hamonitor.status until $sql_condition holds for the node; returns
true if it did before poll_query_until gave up.  The condition is any SQL
boolean expression over the columns of hamonitor.status.

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

Value of an SQL expression over the node's hamonitor.status row (alias s).

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

=item wait_seconds($node, $seconds)

Waits until $seconds have passed on $node's clock, by polling it; returns
the (start, end) timestamps as the server printed them, to delimit a
measurement window in SQL.

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

=item start_blackhole()

Starts a TCP server on 127.0.0.1 (port chosen by the kernel) in a separate
perl process: it accepts every connection, keeps it open and never reads or
writes, like a host whose server hangs.  Returns a hash with port; pass it
to stop_blackhole.  The process also exits by itself if this test process
goes away, and is killed at exit if the test forgets to.

=cut

sub start_blackhole
{
	my $countfile = File::Temp->new(
		TEMPLATE => 'blackhole_XXXX',
		DIR      => $PostgreSQL::Test::Utils::tmp_check,
		UNLINK   => 1);
	my $script = <<'EOS';
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;

my ($countfile, $parent) = @ARGV;
$| = 1;
my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Proto     => 'tcp',
	Listen    => 1024,
	ReuseAddr => 1) or die "could not listen: $!";
print $listener->sockport, "\n";

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

	my ($stdin, $stdout, $stderr) = ('', '', '');
	my $h = IPC::Run::start([ $^X, '-e', $script, $countfile->filename, $$ ],
		'<', \$stdin, '>', \$stdout, '2>', \$stderr);
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$timer->start;
	$h->pump until $stdout =~ /^(\d+)\n/ || $timer->is_expired || !$h->pumpable;
	die "black-hole server did not start: $stderr"
	  unless $stdout =~ /^(\d+)\n/;

	my $bh = { port => $1, harness => $h, countfile => $countfile };
	push @blackholes, $bh;
	note "black-hole server listening on 127.0.0.1:$bh->{port}";
	return $bh;
}

=pod

=item blackhole_accepted($bh)

How many connections the black-hole server has accepted so far.

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

=item stop_blackhole($bh)

Kills the black-hole server, which closes every connection it holds.

=cut

sub stop_blackhole
{
	my ($bh) = @_;
	return unless $bh->{harness};
	$bh->{harness}->kill_kill(grace => 1);
	$bh->{harness} = undef;
	@blackholes = grep { $_ != $bh } @blackholes;
	return;
}

=pod

=item refused_port()

A TCP port on 127.0.0.1 nobody listens on (reserved like a test server's
port, so no test node takes it), where connections are refused at once.

=cut

sub refused_port
{
	return PostgreSQL::Test::Cluster::get_free_port();
}

END
{
	my $exit_code = $?;
	stop_blackhole($_) foreach (@blackholes);
	$? = $exit_code;
}

=pod

=back

=cut

=pod

=item wait_for_notification($listener, $event_id)

Polls a background psql session that ran LISTEN hamonitor_event (psql
prints what it received with each query's result) for about 5 s, until the
notification carrying $event_id has come; returns all it printed.

=cut

sub wait_for_notification
{
	my ($listener, $event_id) = @_;
	my $notifications = '';

	foreach my $i (1 .. 50)
	{
		$notifications .= $listener->query_safe('SELECT pg_sleep(0.1)');
		last
		  if $notifications =~
		  /Asynchronous notification "hamonitor_event" with payload "$event_id"/;
	}
	return $notifications;
}

1;
