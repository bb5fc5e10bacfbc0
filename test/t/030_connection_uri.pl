
# Copyright (c) 2026, pg_hamonitor developers

# hamonitor.connection_uri(): psql connects through the URI the witness
# hands out, to the primary before a failover, and through the very same
# URI (taken before the crash) to the new primary after it, without any
# change on the client side; the URI asked for after the failover names
# the new primary first.  A standby URI reaches a standby.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster = 'main';

my ($primary, $sb1, $sb2) =
  create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);
my $witness = create_witness('witness', failover => 1);
ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
	'witness sees the primary and two streaming standbys');

my %name_of_port = map { $_->port => $_->name } ($primary, $sb1, $sb2);

# the ports of the URI's hosts, in order, as node names
sub uri_nodes
{
	my ($uri) = @_;
	my ($hosts) = $uri =~ m{^postgresql://([^/]*)/};
	return join ',',
	  map { /:(\d+)$/ ? $name_of_port{$1} // "port $1" : '?' } split /,/,
	  $hosts // '';
}

# connects through $uri and runs $sql; returns (exit code, stdout, stderr)
sub via_uri
{
	my ($uri, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $witness->psql(
		'postgres', $sql,
		connstr => $uri,
		stdout  => \$out,
		stderr  => \$err);
	return ($rc, $out, $err);
}

my $uri = $witness->safe_psql('postgres',
	"SELECT hamonitor.connection_uri('main', dbname => 'postgres')");
note "primary URI: $uri";
like($uri, qr{^postgresql://[^/?]+,[^/?]+,[^/?]+/postgres\?}, 'three hosts');
is(uri_nodes($uri), 'primary,sb1,sb2', 'the primary comes first');
like($uri, qr/[?&]target_session_attrs=primary$/,
	'target_session_attrs=primary by default');
unlike($uri, qr/user=|password|passfile/, 'no user, password or passfile');

my $sb_uri = $witness->safe_psql('postgres',
	"SELECT hamonitor.connection_uri('main', 'standby', 'postgres')");

my ($rc, $out, $err) = via_uri($uri,
	"CREATE TABLE t (id int); INSERT INTO t VALUES (1);
	 SELECT current_setting('port') || ':' || pg_is_in_recovery()");
is($rc, 0, 'psql connects through the URI') or diag $err;
is($out, $primary->port . ':false', 'and writes to the primary');

($rc, $out, $err) = via_uri($sb_uri,
	"SELECT current_setting('port') || ':' || pg_is_in_recovery()");
is($rc, 0, 'psql connects through the standby URI') or diag $err;
like($out, qr/^\d+:true$/, 'the standby URI reaches a server in recovery');
isnt((split /:/, $out)[0], $primary->port, 'not the primary');

# ---------------------------------------------------------------------
# failover: the same URI reaches the new primary
# ---------------------------------------------------------------------

my $before = last_event_id($witness);
kill9_all($primary);
ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
	'a standby is promoted after the crash of the primary');
my ($new) = split /:/, cluster_primary($witness, $cluster);
my $new_node = $new eq 'sb1' ? $sb1 : $sb2;
ok(wait_until_promoted($new_node), "$new is out of recovery");

($rc, $out, $err) = via_uri($uri,
	"INSERT INTO t VALUES (2);
	 SELECT current_setting('port') || ':' || pg_is_in_recovery()");
is($rc, 0, 'psql connects through the URI taken before the failover')
  or diag $err;
is($out, $new_node->port . ':false', "and writes to the new primary $new");
is($new_node->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'2', 'both writes are on the new primary');

my $after = $witness->safe_psql('postgres',
	"SELECT hamonitor.connection_uri('main', 'read-write', 'postgres')");
like(uri_nodes($after), qr/^\Q$new\E,/,
	'the URI asked for after the failover names the new primary first');
like($after, qr/[?&]target_session_attrs=read-write$/, 'read-write target');

# the old primary is still registered (it may come back to be rejoined),
# and a client skips it while it is down
($rc, $out, $err) =
  via_uri($after, "SELECT current_setting('port') || ':' || pg_is_in_recovery()");
is($out, $new_node->port . ':false', 'the new URI reaches the new primary too');

done_testing();
