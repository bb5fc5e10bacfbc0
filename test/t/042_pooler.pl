
# Copyright (c) 2026, pg_hamonitor developers

# The probe is pooler-safe: through a real pgbouncer in transaction pooling
# mode, started without ignore_startup_parameters (so it refuses the
# "options" startup parameter), the witness probes a primary and a standby,
# sees their roles, and a search_path the pooled server sessions carry does
# not reach the probe's names.  Needs the Debian package pgbouncer; skipped
# without it.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my ($pgbouncer) = grep { -x $_ } ('/usr/sbin/pgbouncer', '/usr/bin/pgbouncer');
plan skip_all => 'pgbouncer is not installed (Debian package pgbouncer)'
  unless $pgbouncer;

my $witness = create_witness('witness');
my ($primary, $standby) =
  create_ha_cluster(primary => 'primary', standbys => ['standby']);

# the pooled server sessions search a schema holding a trap first: an
# operator of the probe, better matching than pg_catalog's, that fails
$primary->safe_psql(
	'postgres', q{
CREATE SCHEMA trap;
CREATE FUNCTION trap.boom(text, text) RETURNS text LANGUAGE sql
  AS $$SELECT (1/0)::text$$;
CREATE OPERATOR trap.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.boom);
ALTER DATABASE postgres SET search_path = trap, pg_catalog, public;
});
$standby->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_namespace WHERE nspname = 'trap'")
  or die 'the standby did not replay the trap';

my $dir = PostgreSQL::Test::Utils::tempdir('pgbouncer');
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $user = getpwuid($>);
open my $fh, '>', "$dir/users.txt" or die $!;
print $fh qq{"$user" ""\n};
close $fh;
open $fh, '>', "$dir/pgbouncer.ini" or die $!;
printf $fh <<'EOC', $primary->host, $primary->port, $standby->host, $standby->port, $port, $dir, $dir, $dir;
[databases]
p = host=%s port=%d dbname=postgres
s = host=%s port=%d dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
logfile = %s/pgbouncer.log
pidfile = %s/pgbouncer.pid
EOC
close $fh;
my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ],
	'>', "$dir/stdout", '2>', "$dir/stderr");
my $ready = 0;
for (1 .. 100)
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-h', '127.0.0.1', '-p', $port,
			'-d', 'p', '-c', 'SELECT 1' ], '>', \$out, '2>', \$err);
	if ($out =~ /^1$/m) { $ready = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($ready, "pgbouncer answers on 127.0.0.1:$port (transaction pooling)");

# what the old probe sent, the pooler refuses
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-d',
			"host=127.0.0.1 port=$port dbname=p options='-c search_path='",
			'-c', 'SELECT 1' ], '>', \$out, '2>', \$err);
	like($err, qr/unsupported startup parameter/,
		'this pgbouncer refuses the options startup parameter');
}

register_node($witness, 'primary', "host=127.0.0.1 port=$port dbname=p",
	'pooled');
register_node($witness, 'standby', "host=127.0.0.1 port=$port dbname=s",
	'pooled');
ok( wait_for_status(
		$witness, 'primary', "health = 'up' AND role = 'primary'", 'pooled'),
	'the primary is probed through the pooler');
ok( wait_for_status(
		$witness, 'standby', "health = 'up' AND role = 'standby'", 'pooled'),
	'the standby is probed through the pooler');
like(cluster_primary($witness, 'pooled'), qr/^primary:/,
	'the cluster knows its primary');

# a few more probes: still fine, and the trap's schema never ran
ok( wait_for_more_probes(
		$witness, "cluster_name = 'pooled' AND node_name = 'primary' AND success",
		3),
	'probes through the pooler keep succeeding');
is(status_value($witness, 'primary', 'last_error_sqlstate', 'pooled'),
	'', 'no probe error (the trap operator was never called)');

IPC::Run::kill_kill($bouncer);
done_testing();
