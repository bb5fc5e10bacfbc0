
# Copyright (c) 2026, pg_hamonitor developers

# HAProxy (Debian's haproxy, 2.6) in front of a cluster, each server
# checked at the witness's HTTP endpoint for that very node with the
# per-server form HAProxy 2.6 supports: "http-check send ... uri-lf
# /primary/<cluster>/%[srv_name]" (the server names are the node names).
# A client writes through HAProxy; the primary is killed with SIGKILL; the
# client writes again through HAProxy, to the promoted standby; the old
# primary is restarted (it comes back writable until the witness fences
# it), and no write through HAProxy reaches it.  When the witness itself is
# unreachable every server is down: writes stop rather than go anywhere
# unchecked (the README says why).  A read pool checked with agent-check
# (the witness answering HAProxy's agent protocol, the README's second
# configuration) sends reads to the replica only, and goes on serving it
# while the witness is down.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

if (!haproxy_binary())
{
	my $msg = 'HAPROXY NOT INSTALLED: the HAProxy test is SKIPPED. '
	  . "Install Debian's \"haproxy\" package (test/run-tests.sh does).";
	diag('*' x 72);
	diag($msg);
	diag('*' x 72);
	plan skip_all => $msg;
}

my $cluster = 'main';
my $http    = PostgreSQL::Test::Cluster::get_free_port();

# the README's configuration is valid for this HAProxy
my $readme = slurp_file("$FindBin::RealBin/../../README.md");
my ($section) = $readme =~ /^### HAProxy\n(.*?)^### /ms;
my ($readme_cfg) = ($section // '') =~ /^```\n(global\n.*?)^```$/ms;
ok($readme_cfg, 'the README has an HAProxy configuration');
my ($readme_agent) = ($section // '') =~ /^```\n(# reads that go on .*?)^```$/ms;
ok($readme_agent, 'and a read pool checked with agent-check');
my $cfgdir = PostgreSQL::Test::Utils::tempdir('readme_haproxy');
PostgreSQL::Test::Utils::append_to_file("$cfgdir/haproxy.cfg",
	($readme_cfg // '') . "\n" . ($readme_agent // ''));
my ($out, $err) = ('', '');
ok( IPC::Run::run([ haproxy_binary(), '-c', '-f', "$cfgdir/haproxy.cfg" ],
		'>', \$out, '2>', \$err),
	'haproxy -c accepts them') or diag "$out$err";
like($readme_cfg // '', qr{uri-lf /primary/main/%\[srv_name\]},
	'with the per-server check this test runs');

# HAProxy forwards TCP: the nodes listen on 127.0.0.1 too
my ($primary, $sb1, $sb2) = create_ha_cluster(
	primary  => 'primary',
	standbys => [ 'sb1', 'sb2' ],
	conf     => "listen_addresses = '127.0.0.1'\n");
my $witness = create_witness(
	'witness',
	failover   => 1,
	extra_conf => "pg_hamonitor.http_port = $http\n");
ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
	'witness sees the primary and two streaming standbys');
ok(wait_for_http($http, '/primary/main/primary', 200), 'the endpoint says primary');

my $haproxy = start_haproxy($http, $cluster, 'primary', $primary, $sb1, $sb2);
my $front = "host=127.0.0.1 port=$haproxy->{port} dbname=postgres connect_timeout=2";

# one write through HAProxy, on a new connection: the port that took it, or
# '' when refused.  A psql refused before it read its input (HAProxy not
# listening yet) makes IPC::Run die on the broken pipe: refused too.
sub write_through
{
	my ($tag) = @_;
	my ($out, $err) = ('', '');
	eval {
		$witness->psql('postgres',
			"INSERT INTO w VALUES (clock_timestamp(), '$tag', current_setting('port')::int)
			 RETURNING port",
			connstr => $front, stdout => \$out, stderr => \$err);
		1;
	} or return '';
	return $out;
}

$primary->safe_psql('postgres',
	'CREATE TABLE w (at timestamptz, tag text, port int)');
# HAProxy starts with every server up, until its first checks (200 ms):
# wait until ten writes in a row land on the primary
my ($port, $in_a_row) = ('', 0);
foreach my $i (1 .. 600)
{
	$port = write_through('before');
	$in_a_row = $port eq $primary->port ? $in_a_row + 1 : 0;
	last if $in_a_row == 10;
	usleep(50_000);
}
is($in_a_row, 10, 'writes through HAProxy land on the primary, ten in a row');

# ---------------------------------------------------------------------
# SIGKILL of the primary
# ---------------------------------------------------------------------

my $before = last_event_id($witness);
my $t_kill = time();
kill9_all($primary);
my $first = '';
while (time() - $t_kill < 60)
{
	last if ($first = write_through('after')) ne '';
	usleep(20_000);
}
ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
	'a standby was promoted');
my ($new) = split /:/, cluster_primary($witness, $cluster);
my $new_node = $new eq 'sb1' ? $sb1 : $sb2;
note $witness->safe_psql('postgres', sprintf(
		"SELECT string_agg(format('%%s %%s +%%s s', kind, node_name,
		          round((extract(epoch FROM event_time) - %.3f)::numeric, 3)), E'\n' ORDER BY event_id)
		   FROM hamonitor.events WHERE event_id > $before", $t_kill));
# (kill9_all waits for the killed processes to be reaped, which may take a
# second: test/bench/haproxy_failover.pl measures the time, from a writer
# of its own)
is($first, $new_node->port,
	"the client writes again through HAProxy, to the new primary $new");

# the old primary comes back, writable until fenced: HAProxy must not send
# it a single write, before or after the fence
$primary->start;
my $t_back = time();
my @ports;
while (time() - $t_back < 4)
{
	push @ports, write_through('old back');
	usleep(50_000);
}
is(join(',', grep { $_ ne $new_node->port } @ports), '',
	scalar(@ports) . ' writes through HAProxy while the old primary is back: all on the new primary');
is($primary->safe_psql('postgres', "SELECT count(*) FROM w WHERE tag <> 'before'"),
	'0', 'the old primary has no row written after the kill');
ok(wait_for_status($witness, 'primary', 'fenced', $cluster),
	'the witness fenced the old primary meanwhile');
is(write_through('fenced'), $new_node->port, 'writes still go to the new primary');

# ---------------------------------------------------------------------
# a read pool checked by agent-check, as the README's second configuration
# ---------------------------------------------------------------------

my ($other) = grep { $_->name ne $new && $_->name ne 'primary' } ($sb1, $sb2);
ok(wait_for_http($http, '/replica/main/' . $other->name, 200),
	'the other standby, repointed, is a replica');
my $rport = PostgreSQL::Test::Cluster::get_free_port();
my $rcfg = <<"EOC";
global
    maxconn 50
defaults
    mode tcp
    timeout connect 250ms
    timeout client 60s
    timeout server 60s
    timeout check 1s
listen pg_replicas_agent
    bind 127.0.0.1:$rport
    balance roundrobin
    default-server inter 200ms fall 1 rise 1 on-marked-down shutdown-sessions agent-check agent-addr 127.0.0.1 agent-port $http agent-inter 200ms
EOC
$rcfg .= sprintf(qq(    server %s 127.0.0.1:%d check agent-send "/replica/main/%s?lag=16MB\\n"\n),
	$_->name, $_->port, $_->name) foreach ($primary, $sb1, $sb2);
PostgreSQL::Test::Utils::append_to_file("$cfgdir/agent.cfg", $rcfg);
my $agent_haproxy = IPC::Run::start([ haproxy_binary(), '-db', '-f', "$cfgdir/agent.cfg" ],
	'<', \undef, '>', "$cfgdir/agent.out", '2>&1');
sub read_through
{
	my ($out, $err) = ('', '');
	# refused before psql read its input: '' (see write_through)
	eval {
		$witness->psql('postgres', "SELECT current_setting('port')",
			connstr => "host=127.0.0.1 port=$rport dbname=postgres connect_timeout=2",
			stdout => \$out, stderr => \$err);
		1;
	} or return '';
	return $out;
}
($port, $in_a_row) = ('', 0);
foreach my $i (1 .. 600)
{
	$port = read_through();
	$in_a_row = $port eq $other->port ? $in_a_row + 1 : 0;
	last if $in_a_row == 10;
	usleep(50_000);
}
is($in_a_row, 10, 'agent-check: reads land on the one replica, ten in a row');

# ---------------------------------------------------------------------
# the witness unreachable: every server down, no write goes anywhere
# ---------------------------------------------------------------------

$witness->stop('fast');
my $refused = 0;
my $t_stop = time();
while (time() - $t_stop < 10)
{
	if (write_through('no witness') eq '')
	{
		$refused = 1;
		last;
	}
	usleep(100_000);
}
ok($refused, 'with the witness stopped, HAProxy refuses writes (every check fails)');
# the agent pool: HAProxy ignores the unreachable agent
# (reads for a second: five agent checks fail meanwhile)
my @read_ports;
my $t_refused = time();
while (time() - $t_refused < 1)
{
	push @read_ports, read_through();
	usleep(100_000);
}
note 'reads through the agent pool without the witness: ' . join(',', @read_ports);
is(join(',', grep { $_ ne $other->port } @read_ports), '',
	'with the witness stopped, reads through the agent-check pool go on, '
	  . 'to the servers the agent had left up');
$witness->start;
$port = '';
my $t_start = time();
while (time() - $t_start < 60)
{
	last if ($port = write_through('witness back')) ne '';
	usleep(100_000);
}
is($port, $new_node->port, 'with the witness back, writes go to the new primary again');

stop_helper($haproxy);
$agent_haproxy->kill_kill(grace => 1);
done_testing();
