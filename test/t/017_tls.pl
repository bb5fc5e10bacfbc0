
# Copyright (c) 2026, pg_hamonitor developers

# Peers over TLS.  A CA, a server certificate for "localhost" and a client
# certificate are made with openssl; the peers run with ssl = on and a
# pg_hba.conf that accepts TCP only over TLS (and the role certuser only
# with a client certificate).  The witness reaches them with
# sslmode=verify-full, the primary with a client certificate; the standbys
# stream over TLS as their own replication role.
#
# First every standby is registered wrongly: sb1 and sb2 by IP address (the
# certificate names only "localhost"), sb3 with another CA.  Their probes
# fail, status says why, and a crash of the primary promotes nothing: a
# probe that failed on a certificate is no evidence.  Then sb1 and sb2 are
# registered right, and the next crash promotes sb1, repoints sb2 (which
# keeps its own TLS options and user) and leaves sb3, still unreachable,
# unpromoted.

use strict;
use warnings;

use File::Copy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# test/perl, also when prove runs without -I test/perl
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';

# ---------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------

my $certdir = PostgreSQL::Test::Utils::tempdir('certs');
PostgreSQL::Test::Utils::append_to_file(
	"$certdir/openssl.cnf", q{
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
[v3_client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
});

my @newkey = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
	'-nodes');

# a self-signed CA: $name.crt, $name.key
sub make_ca
{
	my ($name) = @_;
	system_or_bail(
		'openssl', 'req', '-config', "$certdir/openssl.cnf",
		'-x509', '-new', @newkey, '-days', '2',
		'-subj', "/CN=$name", '-extensions', 'v3_ca',
		'-keyout', "$certdir/$name.key", '-out', "$certdir/$name.crt");
	chmod 0600, "$certdir/$name.key";
	return "$certdir/$name.crt";
}

# a certificate signed by $ca: $name.crt, $name.key (mode 0600)
my $serial = 1;
sub make_cert
{
	my ($name, $cn, $ca, $extensions) = @_;
	system_or_bail(
		'openssl', 'req', '-config', "$certdir/openssl.cnf",
		'-new', @newkey, '-subj', "/CN=$cn",
		'-keyout', "$certdir/$name.key", '-out', "$certdir/$name.csr");
	system_or_bail(
		'openssl', 'x509', '-req', '-in', "$certdir/$name.csr",
		'-CA', "$certdir/$ca.crt", '-CAkey', "$certdir/$ca.key",
		'-set_serial', $serial++, '-days', '2',
		'-extfile', "$certdir/openssl.cnf", '-extensions', $extensions,
		'-out', "$certdir/$name.crt");
	chmod 0600, "$certdir/$name.key";
	return ("$certdir/$name.crt", "$certdir/$name.key");
}

my $ca       = make_ca('root_ca');
my $wrong_ca = make_ca('wrong_ca');
my ($server_crt, $server_key) =
  make_cert('server', 'localhost', 'root_ca', 'v3_server');
my ($client_crt, $client_key) =
  make_cert('client', 'certuser', 'root_ca', 'v3_client');
is((stat $server_key)[2] & 07777, 0600, 'the server key has mode 0600');
is((stat $client_key)[2] & 07777, 0600, 'the client key has mode 0600');
is((stat $server_key)[4], $>, 'the server key belongs to the user running the servers');

# ---------------------------------------------------------------------
# Peers with ssl = on, TCP only over TLS
# ---------------------------------------------------------------------

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq(
listen_addresses = '127.0.0.1'
ssl = on
ssl_cert_file = '$server_crt'
ssl_key_file = '$server_key'
ssl_ca_file = '$ca'
));
# first match wins: certuser only with a certificate of the CA, everyone
# else over TLS only; the tests' own psql keeps the Unix socket
open my $hba, '>', $primary->data_dir . '/pg_hba.conf' or die $!;
print $hba <<'EOH';
local     all          all                      trust
local     replication  all                      trust
hostssl   all          certuser  127.0.0.1/32   cert
hostssl   all          all       127.0.0.1/32   trust
hostssl   replication  all       127.0.0.1/32   trust
EOH
close $hba;
$primary->start;
$primary->safe_psql('postgres',
	'CREATE ROLE replicator LOGIN REPLICATION; CREATE ROLE certuser LOGIN SUPERUSER;');
$primary->backup('tls_backup');

# TLS options of a connection to localhost, as the standbys and the
# witness use them
my $tls = "sslmode=verify-full sslrootcert=$ca";

sub add_tls_standby
{
	my ($name) = @_;
	my $sb = PostgreSQL::Test::Cluster->new($name);
	$sb->init_from_backup($primary, 'tls_backup', has_streaming => 0);
	$sb->append_conf('postgresql.conf',
		sprintf("primary_conninfo = 'host=localhost port=%d user=replicator %s application_name=%s'\n",
			$primary->port, $tls, $name));
	$sb->set_standby_mode;
	$sb->start;
	$primary->wait_for_catchup($name, 'replay', $primary->lsn('insert'));
	return $sb;
}
my $sb1 = add_tls_standby('sb1');
my $sb2 = add_tls_standby('sb2');
my $sb3 = add_tls_standby('sb3');

is( $primary->safe_psql(
		'postgres',
		"SELECT string_agg(r.application_name || ':' || r.usename || ':' || s.ssl,
		                   ',' ORDER BY r.application_name)
		   FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"),
	'sb1:replicator:true,sb2:replicator:true,sb3:replicator:true',
	'the standbys stream over TLS as the replication role');

# certuser cannot log in over TCP without a client certificate
my ($ret, $out, $err) = $primary->psql('postgres', 'SELECT 1',
	connstr => "host=localhost port=${\ $primary->port } dbname=postgres user=certuser $tls");
isnt($ret, 0, 'certuser without a client certificate is refused');
like($err, qr/certificate/, '... for want of a certificate');

my $witness = create_witness('witness', failover => 1);

# conninfo over TCP with verify-full; $host defaults to localhost
sub tls_conninfo
{
	my ($node, %o) = @_;
	return sprintf('host=%s port=%d dbname=postgres sslmode=verify-full sslrootcert=%s%s',
		$o{host} // 'localhost', $node->port, $o{rootcert} // $ca, $o{extra} // '');
}

sub register_prio
{
	my ($name, $conninfo, $prio) = @_;
	$witness->safe_psql(
		'postgres',
		sprintf('SELECT hamonitor.register_node(%s, %s, %s, priority => %d)',
			quote_literal($name), quote_literal($conninfo),
			quote_literal($cluster), $prio));
}

# the primary with a client certificate (pg_hba: cert)
register_prio('primary',
	tls_conninfo($primary,
		extra => " user=certuser sslcert=$client_crt sslkey=$client_key"), 100);
# the standbys wrongly: by IP address, and trusting another CA
register_prio('sb1', tls_conninfo($sb1, host => '127.0.0.1'), 100);
register_prio('sb2', tls_conninfo($sb2, host => '127.0.0.1'), 50);
register_prio('sb3', tls_conninfo($sb3, rootcert => $wrong_ca), 50);

ok( wait_for_status(
		$witness, 'primary', "health = 'up' AND role = 'primary'", $cluster),
	'the witness sees the primary over TLS with a client certificate');
is( $primary->safe_psql(
		'postgres',
		"SELECT string_agg(DISTINCT a.usename || ':' || s.ssl || ':' || s.client_dn, ',')
		   FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
		  WHERE a.application_name LIKE 'pg\\_hamonitor/%'"),
	'certuser:true:/CN=certuser',
	'the witness\'s sessions on the primary use TLS and the client certificate');

foreach my $name ('sb1', 'sb2')
{
	ok( wait_for_status(
			$witness, $name,
			"health = 'down' AND last_error ~ 'does not match host name'",
			$cluster),
		"$name registered by IP address: down, last_error says the host name does not match");
}
ok( wait_for_status(
		$witness, 'sb3',
		"health = 'down' AND last_error ~ 'certificate verify failed'",
		$cluster),
	'sb3 registered with another CA: down, last_error says certificate verify failed');
note 'last_error of sb1: ' . status_value($witness, 'sb1', 'last_error', $cluster);
note 'last_error of sb3: ' . status_value($witness, 'sb3', 'last_error', $cluster);

# ---------------------------------------------------------------------
# A crash with only failed probes of the standbys: nothing is promoted
# ---------------------------------------------------------------------

my $mark = last_event_id($witness);
kill9_all($primary);
ok( wait_for_event(
		$witness, $cluster, 'failover_blocked', "detail ~ 'no standby is reachable'",
		$mark),
	'crash with every standby failing TLS: failover_blocked, no standby reachable');
wait_seconds($witness, 2);
is(count_events($witness, $cluster, 'promoted', undef, $mark),
	'0', 'no promotion based on failed TLS probes');
is(join('', map { in_recovery($_) } ($sb1, $sb2, $sb3)),
	'ttt', 'every standby is still in recovery');

$primary->start;
ok( wait_for_status(
		$witness, 'primary', "health = 'up' AND role = 'primary'", $cluster),
	'the primary is back');

# ---------------------------------------------------------------------
# sb1 and sb2 registered right; a crash promotes sb1 and repoints sb2
# ---------------------------------------------------------------------

foreach my $sb ($sb1, $sb2)
{
	$witness->safe_psql(
		'postgres',
		sprintf('SELECT hamonitor.update_node(%s, %s, conninfo => %s)',
			quote_literal($sb->name), quote_literal($cluster),
			quote_literal(tls_conninfo($sb))));
}
foreach my $sb ($sb1, $sb2)
{
	ok( wait_for_status(
			$witness, $sb->name,
			"health = 'up' AND role = 'standby'
			 AND wal_receiver_status = 'streaming'", $cluster),
		$sb->name . ' registered with host=localhost: up and streaming');
}
is(status_value($witness, 'sb3', 'health', $cluster),
	'down', 'sb3 is still down (wrong CA)');

$primary->safe_psql('postgres',
	"CREATE TABLE t (id integer PRIMARY KEY);
	 INSERT INTO t SELECT generate_series(1, 1000);");
$primary->wait_for_catchup($_->name, 'replay', $primary->lsn('insert'))
  foreach ($sb1, $sb2);

$mark = last_event_id($witness);
kill9_all($primary);

ok(wait_for_event($witness, $cluster, 'promoted', "node_name = 'sb1'", $mark),
	'failover: sb1 is promoted');
ok(wait_for_event($witness, $cluster, 'repointed', "node_name = 'sb2'", $mark),
	'failover: sb2 is repointed');
ok( $sb2->poll_query_until(
		'postgres',
		"SELECT current_setting('primary_conninfo') ~ 'port=${\ $sb1->port }\\M'"),
	'failover: sb2\'s primary_conninfo names sb1\'s port');
my $sb2_conninfo = $sb2->safe_psql('postgres', 'SHOW primary_conninfo');
note "sb2's primary_conninfo: $sb2_conninfo";
like($sb2_conninfo, qr/\bhost=localhost\b/,
	'failover: sb2 reaches sb1 by the name its certificate carries');
like($sb2_conninfo, qr/\bsslmode=verify-full\b/,
	'failover: sb2 keeps sslmode=verify-full');
like($sb2_conninfo, qr/\bsslrootcert=\Q$ca\E/,
	'failover: sb2 keeps its sslrootcert');
like($sb2_conninfo, qr/\buser=replicator\b/,
	'failover: sb2 keeps its replication user');
ok(wait_for_streaming($sb2, $sb1), 'failover: sb2 streams from sb1');
is( $sb1->safe_psql(
		'postgres',
		"SELECT r.usename || ':' || s.ssl FROM pg_stat_replication r
		   JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'sb2'"),
	'replicator:true',
	'failover: sb2 streams from sb1 over TLS');
ok(wait_for_event($witness, $cluster, 'following', "node_name = 'sb2'", $mark),
	'failover: a following event for sb2');

# sb3: unreachable for the witness, so not repointed, never promoted; the
# failover must say it left sb3 behind (written with sb2's repoint, so
# counted, not polled, once the failover is over)
wait_seconds($witness, 2);
is( count_events(
		$witness, $cluster, 'repoint_failed', "node_name = 'sb3'", $mark),
	'1',
	'failover: sb3 (wrong CA, never reached) is reported as not repointed');
is( $witness->safe_psql(
		'postgres',
		"SELECT string_agg(node_name, ',') FROM hamonitor.events
		  WHERE cluster_name = '$cluster' AND kind = 'promoted'"),
	'sb1',
	'one promotion in the whole test, of sb1');
is(in_recovery($sb2) . in_recovery($sb3), 'tt',
	'sb2 and sb3 are still standbys');

note "events of cluster $cluster:\n" . events_text($witness, $cluster);

done_testing();
