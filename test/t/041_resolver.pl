
# Copyright (c) 2026, pg_hamonitor developers

# Host names are resolved outside the probe loop (resolve.c): a DNS server
# that never answers fails that node's probe with 08001 after
# connect_timeout and stops no other node's probes; a name that does not
# exist is skipped in a host list as libpq skips it; hostaddr needs no
# resolution; a changed DNS record is followed at the next reconnect.
#
# The test's own DNS server (UDP on loopback, below) answers A queries for
# the names of a map file, NXDOMAIN for names mapped to "nx" and for names
# outside the test domain, and nothing at all for the other names of the
# test domain.  pg_hamonitor.resolver_nameserver points the witness's
# resolver at it: the TAP tests run unprivileged, so no network namespace
# with its own resolv.conf.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $domain  = 'hamon-test.example';
my $mapfile = "$PostgreSQL::Test::Utils::tmp_check/dns_map";
my $portfile = "$PostgreSQL::Test::Utils::tmp_check/dns_port";

sub set_dns
{
	my (%map) = @_;
	open my $fh, '>', "$mapfile.tmp" or die $!;
	print $fh "$_ $map{$_}\n" foreach sort keys %map;
	close $fh;
	rename "$mapfile.tmp", $mapfile or die $!;
	return;
}

my $dns_script = <<'EOS';
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
my ($mapfile, $portfile, $domain, $parent) = @ARGV;
my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
	Proto => 'udp') or die "udp: $!";
open my $pf, '>', "$portfile.tmp" or die $!;
print $pf $sock->sockport, "\n";
close $pf;
rename "$portfile.tmp", $portfile or die $!;
my $sel = IO::Select->new($sock);
while (getppid() == $parent)
{
	next unless $sel->can_read(1);
	my $peer = $sock->recv(my $q, 512);
	next unless defined $peer && length($q) > 16;
	my ($id) = unpack('n', $q);
	my ($off, @labels) = (12);
	while ($off < length($q))
	{
		my $len = ord(substr($q, $off++, 1));
		last if $len == 0;
		push @labels, substr($q, $off, $len);
		$off += $len;
	}
	my ($qtype) = unpack('n', substr($q, $off, 2));
	my $question = substr($q, 12, $off + 4 - 12);
	my $name = lc join('.', @labels);
	my %map;
	if (open my $fh, '<', $mapfile)
	{
		while (<$fh>) { my ($k, $v) = split; $map{$k} = $v if defined $v; }
	}
	my $v = $map{$name};
	$v = 'nx' if !defined $v && $name !~ /(^|\.)\Q$domain\E$/;
	next if !defined $v || $v eq 'silent';    # never answers
	my ($rcode, @ans) = (0);
	if ($v eq 'nx') { $rcode = 3 }
	elsif ($qtype == 1)
	{
		push @ans, pack('n n n N n', 0xC00C, 1, 1, 0, 4) . pack('C4', split /\./, $v);
	}
	$sock->send(pack('n n n n n n', $id, 0x8180 | $rcode, 1, scalar(@ans), 0, 0)
		. $question . join('', @ans), 0, $peer);
}
EOS

set_dns();
unlink $portfile;
my $dns = IPC::Run::start([ $^X, '-e', $dns_script, $mapfile, $portfile, $domain, $$ ]);
my $waited = 0;
while (!-s $portfile && $waited++ < 100) { select(undef, undef, undef, 0.1); }
my $dns_port = slurp_file($portfile);
chomp $dns_port;
note "test DNS server on 127.0.0.1:$dns_port";

my $witness = create_witness(
	'witness',
	extra_conf => "pg_hamonitor.resolver_nameserver = '127.0.0.1:$dns_port'\n");
my $primary = create_node('primary');
my $other = create_node('other');
my $proxy = start_proxy($other);

# --------------------------------------------------------------------------
# a name the DNS server never answers, next to a node probed by socket
# --------------------------------------------------------------------------

register_node($witness, 'primary', $primary->connstr('postgres'), 'main');
ok(wait_for_status($witness, 'primary', "health = 'up'"), 'primary is up');

my ($window_start) = $witness->safe_psql('postgres', 'SELECT clock_timestamp()');
register_node($witness, 'silent', "host=silent.$domain port=5432 dbname=postgres",
	'dns');
ok( wait_for_status(
		$witness, 'silent',
		"health = 'down' AND last_error_sqlstate = '08001'"
		  . " AND last_error LIKE 'could not resolve host name \"silent.$domain\": no answer within connect_timeout%'",
		'dns'),
	'a name with no answer fails its probe with 08001 after connect_timeout');
my (undef, $window_end) = wait_seconds($witness, 4);

# the primary's probes went on at their interval meanwhile
my $gap = $witness->safe_psql(
	'postgres', qq{
	WITH p AS (SELECT probed_at FROM hamonitor.lsn_history
	            WHERE cluster_name = 'main' AND node_name = 'primary' AND success
	              AND probed_at >= '$window_start' AND probed_at < '$window_end'
	           UNION ALL SELECT '$window_start'::timestamptz
	           UNION ALL SELECT '$window_end'::timestamptz)
	SELECT extract(epoch FROM max(d)) * 1000 FROM (
	  SELECT probed_at - lag(probed_at) OVER (ORDER BY probed_at) AS d FROM p) g});
my $interval = $witness->safe_psql('postgres',
	"SELECT setting::int FROM pg_settings WHERE name = 'pg_hamonitor.probe_interval'");
cmp_ok($gap, '<', 2 * $interval,
	"the other node's probes went on while the name was unresolved (largest gap ${gap} ms)");
cmp_ok(status_value($witness, 'silent', 'failures', 'dns'), '>=', 2,
	'the unresolved name is retried');

# --------------------------------------------------------------------------
# a name that resolves, through the proxy; hostaddr needs no resolution
# --------------------------------------------------------------------------

set_dns("pg.$domain" => '127.0.0.1', "nx.$domain" => 'nx');
register_node($witness, 'named',
	"host=pg.$domain port=$proxy->{port} dbname=postgres", 'dns');
ok(wait_for_status($witness, 'named', "health = 'up'", 'dns'),
	'a name the resolver answers is probed');

register_node($witness, 'hostaddr',
	"host=silent.$domain hostaddr=127.0.0.1 port=$proxy->{port} dbname=postgres",
	'dns');
ok(wait_for_status($witness, 'hostaddr', "health = 'up'", 'dns'),
	'hostaddr skips resolution (its host name never resolves)');

# libpq's host list: a name that does not exist is skipped
register_node($witness, 'list',
	"host=nx.$domain,pg.$domain port=1,$proxy->{port} dbname=postgres", 'dns');
ok(wait_for_status($witness, 'list', "health = 'up'", 'dns'),
	'a host list: the entry whose name does not exist is skipped, the next one used');

register_node($witness, 'nxonly', "host=nx.$domain port=5432 dbname=postgres",
	'dns');
ok( wait_for_status(
		$witness, 'nxonly',
		"health = 'down' AND last_error_sqlstate = '08001'"
		  . " AND last_error LIKE 'could not translate host name \"nx.$domain\" to address:%'",
		'dns'),
	'a name that does not exist fails its probe with 08001, as libpq says it');

# --------------------------------------------------------------------------
# a changed record is followed at the next reconnect
# --------------------------------------------------------------------------

set_dns("pg.$domain" => '127.0.0.2', "nx.$domain" => 'nx');
$other->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	  WHERE application_name = 'pg_hamonitor/dns/named'");
ok( wait_for_status(
		$witness, 'named',
		"health = 'down' AND last_error LIKE '%refused%'", 'dns'),
	'after a reconnect the node is looked for at its new address (refused there; the old one still serves)'
);
set_dns("pg.$domain" => '127.0.0.1', "nx.$domain" => 'nx');
ok(wait_for_status($witness, 'named', "health = 'up'", 'dns'),
	'and found again once the record points back');

is(status_value($witness, 'primary', 'health'), 'up',
	'the primary stayed up throughout');

# the resolver helper: the worker's child process (Linux /proc)
sub resolver_helpers
{
	my $wpid = $witness->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_hamonitor worker'");
	my @pids;
	foreach my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $fh, '<', $stat or next;
		my $line = <$fh> // '';
		close $fh;
		push @pids, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $wpid;
	}
	return @pids;
}

# a helper that dies is started again, and names resolve through the new one
my @first = resolver_helpers();
is(scalar(@first), 1, "the worker has one resolver helper (pid @first)");
kill 'KILL', @first;
my $mark = $other->safe_psql('postgres',
	"SELECT clock_timestamp() FROM pg_stat_activity, pg_terminate_backend(pid)
	  WHERE application_name = 'pg_hamonitor/dns/named'");
ok( $other->poll_query_until(
		'postgres', "SELECT count(*) > 0 FROM pg_stat_activity
		  WHERE application_name = 'pg_hamonitor/dns/named'
		    AND backend_start > '$mark'"),
	'after the helper was killed, a new session is opened through a new one');

# the resolver helper ends with the worker
my @helpers = resolver_helpers();
is(scalar(@helpers), 1, "the worker has one resolver helper (pid @helpers)");
$witness->stop('fast');
my $left = 1;
for (1 .. 50)
{
	$left = grep { kill(0, $_) } @helpers;
	last unless $left;
	select(undef, undef, undef, 0.1);
}
is($left, 0, 'the resolver helper does not outlive the witness');

$dns->kill_kill;
done_testing();
