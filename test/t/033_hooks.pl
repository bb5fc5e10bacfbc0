
# Copyright (c) 2026, pg_hamonitor developers

# Event hooks (pg_hamonitor.event_command): placeholders reach the command
# quoted, with no password; a failing command's exit status and first
# lines of output are recorded; a command that hangs is killed at
# event_command_timeout while probing goes on; an event whose command had
# not finished when the witness crashed runs again after the restart (at
# least once); and the shipped contrib/pgbouncer-repoint.sh repoints a real
# pgbouncer (Debian's "pgbouncer", installed by test/run-tests.sh) after a
# SIGKILL of the primary, so a client writes to the new primary without
# changing its connection string.

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

my $cluster = 'main';
my $srcdir  = "$FindBin::RealBin/../..";
my $dir     = PostgreSQL::Test::Utils::tempdir_short();
my $bport   = PostgreSQL::Test::Cluster::get_free_port();
my $ini     = "$dir/pgbouncer.ini";
my $admin   = "host=127.0.0.1 port=$bport dbname=pgbouncer user=postgres";

my ($primary, $sb1, $sb2) =
  create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);

# one hook script for every case: it records its arguments, then does what
# the event kind (and, for maintenance_on, the file "mode") asks
my $psql = $primary->installed_command('psql');
PostgreSQL::Test::Utils::append_to_file("$dir/hook.sh", <<"EOS");
#!/bin/sh
dir='$dir'
printf '%s\\n' "\$@" > "\$dir/argv.\$1"
case "\$4" in
    maintenance_on)
        case "\$(cat "\$dir/mode")" in
            hang) echo \$\$ > "\$dir/hang.pid"; exec sleep 1000 ;;
            slow) echo "start \$1" >> "\$dir/slow.log"; sleep 2
                  echo "end \$1" >> "\$dir/slow.log" ;;
            fail) echo "first line"; echo "second line" >&2; echo third
                  echo 4; echo 5; echo 6; exit 3 ;;
        esac ;;
    promoted|switchover)
        PSQL='$psql' exec sh '$srcdir/contrib/pgbouncer-repoint.sh' \\
            '$ini' '$admin' appdb "\$4" "\$6" "\$7" ;;
esac
exit 0
EOS
chmod 0755, "$dir/hook.sh";

my $witness = create_witness(
	'witness',
	failover   => 1,
	extra_conf => qq(pg_hamonitor.event_command = '$dir/hook.sh %e %c %n %k %d %h %p'
pg_hamonitor.event_command_kinds = 'registered, maintenance_on, promoted, switchover'
pg_hamonitor.event_command_timeout = '5s'
));
ok(register_ha_cluster($witness, $cluster, $primary, $sb1, $sb2),
	'witness sees the primary and two streaming standbys');

# the hook event recorded for event $id: "kind|detail", polled for
sub hook_outcome
{
	my ($id) = @_;
	my $cond = "kind LIKE 'hook\\_%' AND detail LIKE 'event $id (%'";
	$witness->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM hamonitor.events WHERE $cond")
	  or diag_witness($witness, $cluster);
	return $witness->safe_psql('postgres',
		"SELECT string_agg(kind || '|' || detail, E'\\n' ORDER BY event_id)
		   FROM hamonitor.events WHERE $cond");
}

sub event_id_of
{
	my ($kind, $cond) = @_;
	return event_value($witness, $cluster, $kind, 'max(event_id)', $cond);
}

# ---------------------------------------------------------------------
# placeholders, quoted, no password
# ---------------------------------------------------------------------

my $refused = refused_port();
register_node($witness, 'extra',
	"host=127.0.0.1 port=$refused password=sekrit application_name='it\\'s; \$(touch x) me'",
	'other');
my $id = $witness->safe_psql('postgres',
	"SELECT max(event_id) FROM hamonitor.events WHERE kind = 'registered' AND node_name = 'extra'");
like(hook_outcome($id), qr/^hook_done\|event $id \(registered\): exit status 0 in \d+ ms$/,
	'the hook ran for the registered event: hook_done, exit status 0');
my $detail = $witness->safe_psql('postgres',
	"SELECT detail FROM hamonitor.events WHERE event_id = $id");
my @argv = split /\n/, slurp_file("$dir/argv.$id"), -1;
pop @argv;    # the last newline
is_deeply(\@argv, [ $id, 'other', 'extra', 'registered', $detail, '', '' ],
	'every placeholder arrives as one argument, quotes and $( ) untouched '
	  . '(no primary known: empty host and port)');
like($detail, qr/\*{8}/, 'the detail shows the conninfo masked');
ok(!-e $witness->data_dir . '/x' && !-e "$dir/x",
	'nothing in a value was run by the shell');
my $all_argv = join '', map { slurp_file($_) } glob("$dir/argv.*");
unlike($all_argv, qr/sekrit/, 'no hook saw the password');
unlike($witness->safe_psql('postgres', "SELECT string_agg(detail, ' ') FROM hamonitor.events"),
	qr/sekrit/, 'nor any event');
unregister_node($witness, 'extra', 'other');

# ---------------------------------------------------------------------
# a failing command: exit status and first lines recorded
# ---------------------------------------------------------------------

PostgreSQL::Test::Utils::append_to_file("$dir/mode", "fail\n");
$witness->safe_psql('postgres', "SELECT hamonitor.set_maintenance('sb2', true, 'main')");
$id = event_id_of('maintenance_on', "node_name = 'sb2'");
like(hook_outcome($id),
	qr/^hook_failed\|event $id \(maintenance_on\): exit status 3 in \d+ ms; output: first line \| second line \| third \| 4 \| 5 \.\.\.$/,
	'hook_failed with the exit status and the first five lines of output');
$witness->safe_psql('postgres', "SELECT hamonitor.set_maintenance('sb2', false, 'main')");

# ---------------------------------------------------------------------
# a command that hangs is killed at its timeout; probing goes on
# ---------------------------------------------------------------------

unlink "$dir/mode";
PostgreSQL::Test::Utils::append_to_file("$dir/mode", "hang\n");
my $t0 = time();
$witness->safe_psql('postgres', "SELECT hamonitor.set_maintenance('sb2', true, 'main')");
$id = event_id_of('maintenance_on', "node_name = 'sb2'");
usleep(50_000) until -s "$dir/hang.pid" || time() - $t0 > 60;
ok(-s "$dir/hang.pid", 'the hanging hook started');
ok(wait_for_more_probes($witness, "node_name = 'primary' AND success", 10),
	'probing goes on while the hook hangs');
cmp_ok(time() - $t0, '<', 5, 'those probes came before the timeout');

# one at a time per cluster: the next event of main waits for the hanging
# command, while an event of another cluster is delivered at once
unlink "$dir/mode";
$witness->safe_psql('postgres', "SELECT hamonitor.set_maintenance('sb1', true, 'main')");
my $next_id = event_id_of('maintenance_on', "node_name = 'sb1'");
register_node($witness, 'extra', "host=127.0.0.1 port=$refused", 'other');
my $other_id = $witness->safe_psql('postgres',
	"SELECT max(event_id) FROM hamonitor.events WHERE kind = 'registered' AND node_name = 'extra'");
like(hook_outcome($other_id), qr/^hook_done\|event $other_id \(registered\)/,
	'the event of cluster other is delivered while the hook of main hangs');
cmp_ok(time() - $t0, '<', 4.5, 'before the hanging hook\'s timeout');
is($witness->safe_psql('postgres',
		"SELECT count(*) FROM hamonitor.events WHERE kind LIKE 'hook\\_%'
		    AND (detail LIKE 'event $id (%' OR detail LIKE 'event $next_id (%')"),
	'0', 'meanwhile the hanging hook and the next event of main are not done');
unregister_node($witness, 'extra', 'other');

like(hook_outcome($id), qr/^hook_timeout\|event $id \(maintenance_on\): killed after 5000 ms/,
	'hook_timeout recorded');
cmp_ok(time() - $t0, '>=', 4.5, 'after the timeout (5 s)');
like(hook_outcome($next_id), qr/^hook_done\|event $next_id \(maintenance_on\)/,
	'then the next event of main is delivered');
cmp_ok($witness->safe_psql('postgres',
		"SELECT max(event_id) FILTER (WHERE detail LIKE 'event $id (%')
		      < min(event_id) FILTER (WHERE detail LIKE 'event $next_id (%')
		   FROM hamonitor.events WHERE kind LIKE 'hook\\_%'"),
	'eq', 't', 'in event order: its outcome after the timeout of the one before');
$witness->safe_psql('postgres', "SELECT hamonitor.set_maintenance('sb1', false, 'main')");
my $hang_pid = slurp_file("$dir/hang.pid");
chomp $hang_pid;
# killed with its process group; reparented, it may stay a zombie a moment
my $gone = sub {
	open my $fh, '<', "/proc/$hang_pid/stat" or return 1;
	my $stat = <$fh>;
	return $stat =~ /^\d+ \(.*\) Z/;
};
usleep(50_000) until $gone->() || time() - $t0 > 30;
ok($gone->(), "the hung command (pid $hang_pid) was killed");
$witness->safe_psql('postgres', "SELECT hamonitor.set_maintenance('sb2', false, 'main')");

# ---------------------------------------------------------------------
# at least once: the witness crashes while a command runs
# ---------------------------------------------------------------------

unlink "$dir/mode";
PostgreSQL::Test::Utils::append_to_file("$dir/mode", "slow\n");
$witness->safe_psql('postgres', "SELECT hamonitor.set_maintenance('sb2', true, 'main')");
$id = event_id_of('maintenance_on', "node_name = 'sb2'");
my $started = sub {
	my $log = -e "$dir/slow.log" ? slurp_file("$dir/slow.log") : '';
	my $n = () = $log =~ /^start $id$/mg;
	return $n;
};
usleep(100_000) until $started->() >= 1 || time() - $t0 > 60;
is($started->(), 1, 'the slow hook started');
kill9_all($witness);
$witness->start;
my $t1 = time();
usleep(100_000) until $started->() >= 2 || time() - $t1 > 60;
is($started->(), 2, 'after the crash and restart, the hook runs again for the same event');
like(hook_outcome($id), qr/\Ahook_done\|event $id \(maintenance_on\): exit status 0 in \d+ ms\z/,
	'and its outcome is recorded once, by the run after the restart');
is($witness->safe_psql('postgres',
		"SELECT outcome FROM hamonitor.hook_delivery WHERE event_id = $id"),
	'hook_done', 'the delivery is recorded');
$witness->safe_psql('postgres', "SELECT hamonitor.set_maintenance('sb2', false, 'main')");

# ---------------------------------------------------------------------
# pgbouncer repointed after a SIGKILL of the primary
# ---------------------------------------------------------------------

my $pgbouncer = (grep { -x } map { "$_/pgbouncer" } split(/:/, $ENV{PATH}),
	'/usr/sbin', '/usr/bin')[0];
SKIP:
{
	if (!$pgbouncer)
	{
		my $msg = 'PGBOUNCER NOT INSTALLED: the pgbouncer test is SKIPPED. '
		  . "Install Debian's \"pgbouncer\" package (test/run-tests.sh does).";
		diag('*' x 72);
		diag($msg);
		diag('*' x 72);
		skip $msg, 1;
	}
	ok( wait_for_status($witness, 'primary', "health = 'up' AND role = 'primary'")
		  && wait_for_status($witness, 'sb1', "health = 'up' AND wal_receiver_status = 'streaming'")
		  && wait_for_status($witness, 'sb2', "health = 'up' AND wal_receiver_status = 'streaming'"),
		'the restarted witness sees the cluster up again');

	PostgreSQL::Test::Utils::append_to_file("$dir/userlist.txt", qq("postgres" ""\n));
	PostgreSQL::Test::Utils::append_to_file($ini, sprintf(<<'EOC',
[databases]
appdb = host=%s port=%d dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s/userlist.txt
admin_users = postgres
pool_mode = transaction
server_login_retry = 1
server_connect_timeout = 2
logfile = %s/pgbouncer.log
pidfile = %s/pgbouncer.pid
EOC
			$primary->host, $primary->port, $bport, $dir, $dir, $dir));
	my $bh = IPC::Run::start([ $pgbouncer, $ini ], '<', \undef, '>', "$dir/pgbouncer.out",
		'2>&1');
	my $client = "host=127.0.0.1 port=$bport dbname=appdb user=postgres";
	my $through = sub {
		my ($sql) = @_;
		my ($out, $err) = ('', '');
		$witness->psql('postgres', $sql, connstr => $client, stdout => \$out,
			stderr => \$err);
		return $out;
	};
	my $ok = 0;
	foreach my $i (1 .. 100)
	{
		# psql fails before reading its input while pgbouncer is not yet
		# listening: IPC::Run then dies on the broken pipe
		last if eval { $ok = $through->('SELECT 1') eq '1' };
		usleep(100_000);
	}
	ok($ok, 'a client connects through pgbouncer');
	is( $through->(
			"CREATE TABLE bounced (id int); INSERT INTO bounced VALUES (1);
			 SELECT current_setting('port')"),
		$primary->port, 'and writes to the primary');

	my $before = last_event_id($witness);
	kill9_all($primary);
	ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
		'a standby is promoted after the crash of the primary');
	my ($new) = split /:/, cluster_primary($witness, $cluster);
	my $new_node = $new eq 'sb1' ? $sb1 : $sb2;
	$id = event_id_of('promoted', "event_id > $before");
	like(hook_outcome($id),
		qr/^hook_done\|event $id \(promoted\): exit status 0 in \d+ ms; output: pgbouncer database appdb now points at \S+:\d+ \(reloaded\)$/,
		'the pgbouncer hook ran for the promoted event');
	like(slurp_file($ini), qr/^appdb = host=\Q${\$new_node->host}\E port=${\$new_node->port} dbname=postgres$/m,
		"pgbouncer.ini names $new");
	is($through->("INSERT INTO bounced VALUES (2); SELECT current_setting('port')"),
		$new_node->port,
		"the client writes through pgbouncer to the new primary $new, same connection string");
	is($new_node->safe_psql('postgres', 'SELECT count(*) FROM bounced'),
		'2', 'both rows are on the new primary');
	$bh->kill_kill(grace => 2);
}

done_testing();
