
# Copyright (c) 2026, pg_hamonitor developers

# The witness's HTTP endpoint, with raw sockets: which node is primary or
# replica before and after a failover; stale state is never reported as
# primary or replica (the probe worker frozen with SIGSTOP), while the
# endpoint, a process of its own, keeps answering; bad requests get 400,
# unknown paths 404, other methods 405; HAProxy's agent protocol (a bare
# path, "up"/"down" back) on the same port; a slow client is cut; at most 16
# connections are served at once; no password in any answer; SIGTERM
# ends the endpoint within a second and the postmaster restarts it.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';
my $port    = PostgreSQL::Test::Cluster::get_free_port();

my ($primary, $sb1, $sb2) =
  create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);
my $witness = create_witness(
	'witness',
	failover   => 1,
	extra_conf => "pg_hamonitor.http_port = $port\n");

# a password in a registered conninfo (trust ignores it) must show nowhere
my $secret = 'hunter2secret';
ok( register_ha_cluster(
		$witness, $cluster, $primary, $sb1, $sb2,
		{
			conninfo => {
				primary => $primary->connstr('postgres') . " password=$secret"
			}
		}),
	'witness sees the primary and two streaming standbys');

ok(wait_for_http($port, '/health', 200), '/health: 200');

my $r = http_get($port, '/primary/main/primary');
is($r->{status}, 200, '/primary of the primary: 200');
is($r->{body}, "primary\n", 'body says primary');
is($r->{headers}{'content-length'}, length($r->{body}), 'Content-Length');
is($r->{headers}{connection}, 'close', 'Connection: close');
ok($r->{closed}, 'the server closes the connection after its answer');

is(http_get($port, '/primary/main/sb1')->{status}, 503,
	'/primary of a standby: 503');
like(http_get($port, '/primary/main/sb1')->{body}, qr/not a primary \(role standby\)/,
	'and the body says why');
ok(wait_for_http($port, '/replica/main/sb1', 200), '/replica of a streaming standby: 200');
like(http_get($port, '/replica/main/sb1')->{body}, qr/^replica, lag \d+ bytes$/,
	'with its lag');
$r = http_get($port, '/replica/main/primary');
is($r->{status}, 503, '/replica of the primary: 503');
like($r->{body}, qr/not a standby/, 'the primary is not a standby');
is(http_get($port, '/read-only/main/primary')->{status}, 200, '/read-only of the primary: 200');
is(http_get($port, '/read-only/main/sb2')->{status}, 200, '/read-only of a standby: 200');

# HAProxy's agent-check on the same port: a bare path, one line back
$r = http_request($port, "/primary/main/primary\n");
is($r->{raw}, "up #primary\n", 'agent protocol: the primary is up');
ok($r->{closed}, 'and the connection is closed after the answer');
like(http_request($port, "/primary/main/sb1\n")->{raw},
	qr/^down #node "sb1" is not a primary \(role standby\)\n\z/,
	'agent protocol: a standby as primary is down, with the reason');
like(http_request($port, "/replica/main/sb1?lag=1GB\r\n")->{raw},
	qr/^up #replica, lag \d+ bytes\n\z/, 'agent protocol: a replica, with ?lag and CRLF');
like(http_request($port, "/nowhere\n")->{raw}, qr/^down #unknown path/,
	'agent protocol: an unknown path is down');

# lag limits
is(http_get($port, '/replica/main/sb1?lag=1GB')->{status}, 200, '?lag=1GB: 200');
is(http_get($port, '/replica/main/sb1?lag=16%20MB')->{status}, 200, '?lag=16%20MB: 200');
$sb2->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$primary->safe_psql('postgres', 'CREATE TABLE filler AS SELECT g FROM generate_series(1, 100000) g');
ok(wait_for_status($witness, 'sb2', 'lag_bytes > 1000000', $cluster), 'sb2 lags over 1 MB');
$r = http_get($port, '/replica/main/sb2?lag=1MB');
is($r->{status}, 503, '?lag=1MB of a standby 1 MB behind: 503');
like($r->{body}, qr/lags \d+ bytes, more than 1048576/, 'the body gives the lag and the limit');
is(http_get($port, '/replica/main/sb2?lag=1GB')->{status}, 200, '?lag=1GB of it: 200');
is(http_get($port, '/read-only/main/sb2?lag=1MB')->{status}, 503, '/read-only with ?lag=1MB: 503');
$sb2->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
for my $bad ('lag=abc', 'lag=-1', 'lag=', 'lag=1MB&lag=2MB', 'foo=1', 'lag=1%zz')
{
	is(http_get($port, "/replica/main/sb1?$bad")->{status}, 400, "?$bad: 400");
}
is(http_get($port, '/primary/main/primary?lag=1')->{status}, 400, '/primary takes no lag: 400');

# HEAD and OPTIONS (HAProxy's httpchk sends OPTIONS)
$r = http_get($port, '/primary/main/primary', 'HEAD');
is($r->{status}, 200, 'HEAD: 200');
is($r->{body}, '', 'HEAD: no body');
is($r->{headers}{'content-length'}, length("primary\n"), 'HEAD: the GET body\'s length');
$r = http_get($port, '/primary/main/primary', 'OPTIONS');
is($r->{status}, 200, 'OPTIONS: what GET answers');
is(http_get($port, '/primary/main/sb1', 'OPTIONS')->{status}, 503, 'OPTIONS of a standby: 503');
$r = http_request($port, "OPTIONS / HTTP/1.0\r\n\r\n");
is($r->{status}, 404, 'HAProxy\'s default OPTIONS /: 404');

# 404 and 405
for my $path ('/', '/nope', '/primary/main', '/primary/main/nosuch', '/primary/nosuch/primary',
	'/primary/main/primary/x', '/health/', '/clusters/nosuch', '/primary/main/bad%20name',
	'/replica//sb1')
{
	is(http_get($port, $path)->{status}, 404, "GET $path: 404");
}
for my $method ('POST', 'PUT', 'DELETE', 'PATCH', 'TRACE', 'CONNECT', 'BREW')
{
	$r = http_get($port, '/health', $method);
	is($r->{status}, 405, "$method: 405");
	is($r->{headers}{allow}, 'GET, HEAD, OPTIONS', "$method: Allow header");
}
$r = http_request($port,
	"POST /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
is($r->{status}, 405, 'POST with a body: 405');

# malformed requests: 400
my %bad = (
	'garbage'               => "GARBAGE\r\n\r\n",
	'HTTP/2.0'              => "GET /health HTTP/2.0\r\n\r\n",
	'no version'            => "GET /health\r\n\r\n",
	'relative target'       => "GET health HTTP/1.1\r\n\r\n",
	'absolute target'       => "GET http://x/health HTTP/1.1\r\n\r\n",
	'two spaces'            => "GET  /health HTTP/1.1\r\n\r\n",
	'header without colon'  => "GET /health HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
	'space before colon'    => "GET /health HTTP/1.1\r\nHost : x\r\n\r\n",
	'a body'                => "GET /health HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	'chunked'               => "GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	'NUL byte'              => "GET /hea\0lth HTTP/1.1\r\n\r\n",
	'control char in path'  => "GET /he\x01alth HTTP/1.1\r\n\r\n",
	'oversized'             => "GET /health HTTP/1.1\r\nX-Big: " . ('a' x 9000) . "\r\n\r\n",
	'oversized, no end'     => "GET /health HTTP/1.1\r\nX-Big: " . ('a' x 9000));
for my $what (sort keys %bad)
{
	$r = http_request($port, $bad{$what});
	is($r->{status}, 400, "$what: 400");
}
is(http_request($port, "GET /health HTTP/1.0\n\n")->{status}, 200,
	'bare LF line ends are accepted');

# JSON, masked
$r = http_get($port, '/clusters');
is($r->{status}, 200, '/clusters: 200');
is($r->{headers}{'content-type'}, 'application/json', 'as JSON');
my $json = eval { decode_json($r->{body}) };
ok($json, '/clusters parses as JSON') or diag $r->{body};
is(scalar @{ $json->{clusters} }, 1, 'one cluster');
is($json->{clusters}[0]{cluster_name}, 'main', 'named main');
is($json->{clusters}[0]{primary}, 'primary', 'its primary');
is(join(',', map { $_->{node_name} } @{ $json->{clusters}[0]{nodes} }),
	'primary,sb1,sb2', 'its nodes');
ok(!exists $json->{clusters}[0]{nodes}[0]{conninfo}, 'no conninfo in the JSON');
is($json->{clusters}[0]{nodes}[0]{fresh}, JSON::PP::true, 'fresh state');
$r = http_get($port, '/clusters/main');
is(eval { decode_json($r->{body}) }->{cluster_name}, 'main', '/clusters/main is the cluster');
for my $path ('/clusters', '/clusters/main', '/metrics', '/primary/main/primary',
	'/health')
{
	unlike(http_get($port, $path)->{raw}, qr/\Q$secret\E/, "no password in $path");
}

# ---------------------------------------------------------------------
# slow clients and bounded connections; the probe worker never waits
# ---------------------------------------------------------------------

$r = http_request($port, "GET /health HTTP/1.1\r\n", 10);
is($r->{status}, 408, 'a client that never ends its request gets 408');
ok($r->{closed}, 'and is cut');
cmp_ok($r->{elapsed}, '>=', 1.5, 'after the timeout (2 s)');
cmp_ok($r->{elapsed}, '<', 5, 'not much later');

require IO::Socket::INET;
my @idle;
for my $i (1 .. 16)
{
	push @idle,
	  IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or die "connect: $!";
	syswrite($idle[-1], "GET /health HTTP/1.1\r\n");    # and nothing more
}
$r = http_get($port, '/health');
is($r->{status}, 503, 'a 17th connection while 16 are open: 503');
like($r->{body}, qr/too many connections/, 'too many connections');
ok($r->{closed}, 'and closed at once');
ok(wait_for_more_probes($witness, "node_name = 'sb1' AND success", 2),
	'the probe worker goes on probing meanwhile');
close $_ foreach @idle;
ok(wait_for_http($port, '/health', 200), 'served again once they are gone');

# ---------------------------------------------------------------------
# failover
# ---------------------------------------------------------------------

my $before = last_event_id($witness);
kill9_all($primary);
ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
	'a standby is promoted after the crash of the primary');
my ($new) = split /:/, cluster_primary($witness, $cluster);
my $other = $new eq 'sb1' ? 'sb2' : 'sb1';
ok(wait_for_http($port, "/primary/main/$new", 200), "/primary of the new primary $new: 200");
$r = http_get($port, '/primary/main/primary');
is($r->{status}, 503, '/primary of the old primary: 503');
like($r->{body}, qr/is down|stale/, 'it is down');
is(http_get($port, '/read-only/main/primary')->{status}, 503, '/read-only of it: 503');
ok(wait_for_http($port, "/replica/main/$other", 200),
	"/replica of $other, following $new on the new timeline: 200");

# ---------------------------------------------------------------------
# stale state: the probe worker frozen
# ---------------------------------------------------------------------

my $probe_pid = $witness->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hamonitor worker'");
like($probe_pid, qr/^\d+$/, 'the probe worker\'s pid');
kill 'STOP', $probe_pid;
$r = wait_for_http($port, "/primary/main/$new", 503);
ok($r, "with the probe worker stopped, /primary of $new turns 503");
like($r->{body}, qr/stale: last probe \d+ ms ago/, 'because its state is stale')
  if $r;
$r = http_get($port, "/replica/main/$other");
is($r->{status}, 503, 'and /replica too');
ok(wait_for_http($port, '/health', 503), '/health: 503');
like(http_get($port, '/health')->{body}, qr/no probe result written/, 'nothing written');
is(http_get($port, '/metrics')->{status}, 200, 'the endpoint still answers /metrics');
like(http_get($port, '/metrics')->{body}, qr/^hamonitor_node_up\{cluster="main",node="\Q$new\E"\} 0$/m,
	'where the stale node is not up');
kill 'CONT', $probe_pid;
ok(wait_for_http($port, "/primary/main/$new", 200), 'fresh again once it goes on');
ok(wait_for_http($port, '/health', 200), '/health: 200 again');

# ---------------------------------------------------------------------
# SIGTERM: gone within a second, restarted by the postmaster
# ---------------------------------------------------------------------

my $http_pid = $witness->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hamonitor http'");
like($http_pid, qr/^\d+$/, 'the HTTP worker\'s pid');
my @held = map {
	IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
} 1 .. 3;
my $t0 = time();
kill 'TERM', $http_pid;
usleep(10_000) while kill(0, $http_pid) && time() - $t0 < 5;
my $took = time() - $t0;
cmp_ok($took, '<', 1, sprintf('SIGTERM ends it in %.3f s, with clients connected', $took));
close $_ foreach @held;
ok(wait_for_http($port, '/health', 200), 'the postmaster starts it again');

done_testing();
