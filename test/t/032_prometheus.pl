
# Copyright (c) 2026, pg_hamonitor developers

# /metrics in Prometheus text format, checked by the real thing: every
# metric the README promises is exposed with its labels; promtool check
# metrics passes on it and promtool check rules/config on the shipped
# files; every metric the Grafana dashboard and the alert rules query is
# exposed; and a real Prometheus on loopback, scraping the witness every
# second with the shipped rules, sees hamonitor_node_up and
# hamonitor_cluster_failovers_total change across a failover and fires
# HamonitorFailover.  Prometheus comes from Debian's "prometheus" package
# (test/run-tests.sh installs it); without its binaries the parts that need
# them are skipped, loudly.

use strict;
use warnings;

use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use HamonTest;

my $cluster   = 'main';
my $port      = PostgreSQL::Test::Cluster::get_free_port();
my $srcdir    = "$FindBin::RealBin/../..";
my $monitor   = "$srcdir/monitoring";

my ($primary, $sb1, $sb2) =
  create_ha_cluster(primary => 'primary', standbys => [ 'sb1', 'sb2' ]);
my $witness = create_witness(
	'witness',
	failover   => 1,
	extra_conf => "pg_hamonitor.http_port = $port\n");
my $secret = 'metricsecret42';
ok( register_ha_cluster(
		$witness, $cluster, $primary, $sb1, $sb2,
		{
			conninfo => {
				primary => $primary->connstr('postgres') . " password=$secret"
			}
		}),
	'witness sees the primary and two streaming standbys');

# the managed slots of sb1 and sb2 on the primary, as probed
ok( $witness->poll_query_until(
		'postgres',
		"SELECT count(*) = 2 FROM hamonitor.slots WHERE node_name = 'primary' AND active"),
	'the witness sees the two managed slots active on the primary');

# ---------------------------------------------------------------------
# the exposition
# ---------------------------------------------------------------------

my $r;
foreach my $i (1 .. 100)
{
	$r = http_get($port, '/metrics');
	last
	  if ($r->{status} // 0) == 200
	  && $r->{body} =~ /^hamonitor_slot_active\{/m
	  && $r->{body} =~ /^hamonitor_node_lag_bytes\{/m;
	usleep(100_000);
}
is($r->{status}, 200, '/metrics: 200');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4},
	'Prometheus text format 0.0.4');
my $metrics = $r->{body};
unlike($r->{raw}, qr/\Q$secret\E/, 'no password in /metrics');

# name => type, from the HELP/TYPE lines
my %exposed = $metrics =~ /^# TYPE (\w+) (\w+)$/mg;

my %promised = (
	hamonitor_node_up                          => [ 'gauge',   'cluster,node' ],
	hamonitor_node_is_primary                  => [ 'gauge',   'cluster,node' ],
	hamonitor_node_lag_bytes                   => [ 'gauge',   'cluster,node' ],
	hamonitor_node_replay_lag_seconds          => [ 'gauge',   'cluster,node' ],
	hamonitor_node_last_seen_timestamp_seconds => [ 'gauge',   'cluster,node' ],
	hamonitor_node_probe_latency_seconds       => [ 'gauge',   'cluster,node' ],
	hamonitor_node_fenced                      => [ 'gauge',   'cluster,node' ],
	hamonitor_node_split_brain                 => [ 'gauge',   'cluster,node' ],
	hamonitor_slot_retained_bytes              => [ 'gauge',   'cluster,node,slot' ],
	hamonitor_slot_active                      => [ 'gauge',   'cluster,node,slot' ],
	hamonitor_cluster_failovers_total          => [ 'counter', 'cluster' ],
	hamonitor_events_total                     => [ 'counter', 'cluster,kind' ],
	hamonitor_probes_total                     => [ 'counter', '' ],
	hamonitor_probe_failures_total             => [ 'counter', '' ]);
foreach my $name (sort keys %promised)
{
	my ($type, $labels) = @{ $promised{$name} };
	is($exposed{$name}, $type, "$name is a $type");
	my ($sample) = $metrics =~ /^(\Q$name\E(?:\{[^}]*\})? \S+)$/m;
	ok(defined $sample, "$name has a sample") or next;
	my @names = $sample =~ /(\w+)="/g;
	is(join(',', @names), $labels, "$name has the labels ($labels)");
}
is(scalar(keys %exposed), scalar(keys %promised),
	'nothing is exposed that the README does not list');

like($metrics, qr/^hamonitor_node_up\{cluster="main",node="primary"\} 1$/m, 'primary up');
like($metrics, qr/^hamonitor_node_is_primary\{cluster="main",node="primary"\} 1$/m, 'primary is primary');
like($metrics, qr/^hamonitor_node_is_primary\{cluster="main",node="sb1"\} 0$/m, 'sb1 is not');
like($metrics, qr/^hamonitor_node_lag_bytes\{cluster="main",node="sb1"\} \d+$/m, 'sb1 has a lag');
unlike($metrics, qr/^hamonitor_node_lag_bytes\{cluster="main",node="primary"\}/m,
	'the primary has none');
like($metrics, qr/^hamonitor_slot_active\{cluster="main",node="primary",slot="hamonitor_sb1"\} 1$/m,
	'sb1\'s managed slot is active');
like($metrics, qr/^hamonitor_cluster_failovers_total\{cluster="main"\} 0$/m, 'no failover yet');
like($metrics, qr/^hamonitor_events_total\{cluster="main",kind="registered"\} 3$/m,
	'three registered events');
like($metrics, qr/^hamonitor_node_last_seen_timestamp_seconds\{cluster="main",node="sb1"\} \d{10}(\.\d+)?$/m,
	'last seen in Unix seconds');

# the probe counters count, exactly: each probe is counted by the worker
# before its history row is written, so never fewer than the rows
my ($p1) = http_get($port, '/metrics')->{body} =~ /^hamonitor_probes_total (\d+)$/m;
ok(wait_for_more_probes($witness, 'success', 20), 'more probes written');
my $rows = $witness->safe_psql('postgres', 'SELECT count(*) FROM hamonitor.probe_history');
my ($p2) = http_get($port, '/metrics')->{body} =~ /^hamonitor_probes_total (\d+)$/m;
cmp_ok($p2, '>', $p1, "hamonitor_probes_total grows ($p1 -> $p2)");
cmp_ok($p2, '>=', $rows, "hamonitor_probes_total counts every probe written ($rows history rows)");

# the event counters are kept on insert: deleting old events does not make
# them go down, and the rows of backends that are gone are folded
$witness->safe_psql('postgres',
	"SELECT hamonitor.set_maintenance('sb2', true, 'main'), hamonitor.set_maintenance('sb2', false, 'main')");
my $gone_rows = "SELECT count(*) FROM hamonitor.event_count
	WHERE backend_pid <> 0 AND backend_pid NOT IN (SELECT pid FROM pg_stat_activity)";
cmp_ok($witness->safe_psql('postgres', $gone_rows), '>', 0,
	'the psql session that inserted events left its own counter rows');
$witness->safe_psql('postgres', "DELETE FROM hamonitor.event WHERE kind IN ('registered', 'maintenance_on')");
$metrics = http_get($port, '/metrics')->{body};
like($metrics, qr/^hamonitor_events_total\{cluster="main",kind="registered"\} 3$/m,
	'still three registered events counted after they were deleted');
like($metrics, qr/^hamonitor_events_total\{cluster="main",kind="maintenance_on"\} 1$/m,
	'and the maintenance_on event');
is($witness->safe_psql('postgres', $gone_rows), '0',
	'the scrape folded the rows of the backends that are gone');

# ---------------------------------------------------------------------
# the shipped dashboard and rules query only what is exposed
# ---------------------------------------------------------------------

my $dashboard = eval { decode_json(slurp_file("$monitor/grafana-dashboard.json")) };
ok($dashboard, 'the Grafana dashboard parses as JSON') or diag $@;
my @dash_exprs;
my $walk;
$walk = sub {
	my ($x) = @_;
	if (ref $x eq 'HASH')
	{
		push @dash_exprs, $x->{expr} if defined $x->{expr} && !ref $x->{expr};
		push @dash_exprs, $x->{query}{query}
		  if ref $x->{query} eq 'HASH' && defined $x->{query}{query};
		$walk->($_) foreach values %$x;
	}
	elsif (ref $x eq 'ARRAY')
	{
		$walk->($_) foreach @$x;
	}
};
$walk->($dashboard);
cmp_ok(scalar @dash_exprs, '>=', 15, scalar(@dash_exprs) . ' queries in the dashboard');
my %queried = map { $_ => 1 } map { /\b(hamonitor_\w+)/g } @dash_exprs;
ok(exists $queried{$_}, "the dashboard shows $_") foreach sort keys %promised;
ok(exists $exposed{$_}, "dashboard metric $_ is exposed") foreach sort keys %queried;

my $rules = slurp_file("$monitor/prometheus-alerts.yml");
my %in_rules = map { $_ => 1 } $rules =~ /\b(hamonitor_\w+)/g;
ok(exists $exposed{$_}, "alert rule metric $_ is exposed") foreach sort keys %in_rules;
foreach my $alert (qw(HamonitorPrimaryDown HamonitorFailover HamonitorSplitBrain
	HamonitorNodeFenced HamonitorStandbyLag HamonitorSlotRetention HamonitorWitnessDown))
{
	like($rules, qr/^\s*- alert: \Q$alert\E$/m, "alert $alert is defined");
}

# ---------------------------------------------------------------------
# promtool and a real Prometheus
# ---------------------------------------------------------------------

my ($promtool, $prometheus) = map {
	my $b = $_;
	(grep { -x } map { "$_/$b" } split(/:/, $ENV{PATH}), '/usr/bin')[0]
} qw(promtool prometheus);

SKIP:
{
	if (!$promtool || !$prometheus)
	{
		my $msg =
		  "PROMETHEUS NOT INSTALLED: promtool/prometheus binaries not found; "
		  . "the checks with the real Prometheus are SKIPPED. "
		  . "Install Debian's \"prometheus\" package (test/run-tests.sh does).";
		diag('*' x 72);
		diag($msg);
		diag('*' x 72);
		skip $msg, 1;
	}

	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $promtool, 'check', 'metrics' ],
		'<', \$metrics, '>', \$out, '2>', \$err);
	ok($ok, 'promtool check metrics passes on /metrics') or diag "$out$err";
	ok( IPC::Run::run(
			[ $promtool, 'check', 'rules', "$monitor/prometheus-alerts.yml" ],
			'>', \$out, '2>', \$err),
		'promtool check rules passes on the alert rules') or diag "$out$err";
	ok( IPC::Run::run(
			[ $promtool, 'check', 'config', "$monitor/prometheus.yml" ],
			'>', \$out, '2>', \$err),
		'promtool check config passes on the example configuration')
	  or diag "$out$err";

	# a Prometheus of our own, on loopback, with the shipped rules
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $pport = PostgreSQL::Test::Cluster::get_free_port();
	make_path("$dir/data");
	PostgreSQL::Test::Utils::append_to_file("$dir/prometheus.yml", <<"EOC");
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $monitor/prometheus-alerts.yml
scrape_configs:
  - job_name: pg_hamonitor
    static_configs:
      - targets: ['127.0.0.1:$port']
EOC
	my $plog = "$PostgreSQL::Test::Utils::log_path/032_prometheus.log";
	my $ph = IPC::Run::start(
		[
			$prometheus, "--config.file=$dir/prometheus.yml",
			"--storage.tsdb.path=$dir/data",
			"--web.listen-address=127.0.0.1:$pport",
			'--log.level=warn'
		],
		'<', \undef, '>', $plog, '2>&1');

	my $uri_escape = sub {
		my ($s) = @_;
		$s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
		return $s;
	};
	# an instant query: { "label=value,..." => value }, or undef on error
	my $query = sub {
		my ($expr) = @_;
		my $a = http_request($pport,
			    'GET /api/v1/query?query='
			  . $uri_escape->($expr)
			  . " HTTP/1.0\r\n\r\n");
		my $j = eval { decode_json($a->{body} // '') };
		return undef unless $j && $j->{status} eq 'success';
		my %res;
		foreach my $s (@{ $j->{data}{result} })
		{
			my $m = $s->{metric};
			my $key = join ',', map { "$_=$m->{$_}" }
			  grep { $_ ne 'instance' && $_ ne 'job' && $_ ne '__name__' } sort keys %$m;
			$res{$key} = $s->{value}[1];
		}
		return \%res;
	};
	# polls $expr until $check->(result) holds
	my $wait_query = sub {
		my ($expr, $check) = @_;
		my $res;
		foreach my $i (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
		{
			$res = $query->($expr);
			return 1 if $res && $check->($res);
			usleep(100_000);
		}
		diag("$expr: " . encode_json($res // {}));
		return 0;
	};

	ok( $wait_query->('up{job="pg_hamonitor"}', sub { ($_[0]{''} // '') eq '1' }),
		'Prometheus scrapes the witness');
	ok( $wait_query->(
			'hamonitor_node_up{cluster="main"}',
			sub {
				my $h = shift;
				(join ',', map { "$_=$h->{$_}" } sort keys %$h) eq
				  'cluster=main,node=primary=1,cluster=main,node=sb1=1,cluster=main,node=sb2=1';
			}),
		'Prometheus: hamonitor_node_up is 1 for the three nodes');
	ok( $wait_query->(
			'hamonitor_cluster_failovers_total',
			sub { ($_[0]{'cluster=main'} // '') eq '0' }),
		'Prometheus: hamonitor_cluster_failovers_total is 0');
	ok( $wait_query->(
			'hamonitor_node_is_primary == 1',
			sub { join(',', keys %{ $_[0] }) eq 'cluster=main,node=primary' }),
		'Prometheus: the primary is the one primary');
	is_deeply($query->('ALERTS{alertname="HamonitorFailover"}'), {},
		'no HamonitorFailover alert before the failover');
	# every query of the dashboard is valid PromQL with data behind it
	foreach my $expr (@dash_exprs)
	{
		# label_values() is Grafana's: the metric it lists labels of
		(my $q = $expr) =~ s/^label_values\((.+),\s*\w+\)$/$1/;
		$q =~ s/\$cluster/.*/g;
		$q =~ s/\$__rate_interval/1m/g;
		ok(defined $query->($q), "the dashboard query $expr runs");
	}

	my $before = last_event_id($witness);
	kill9_all($primary);
	ok(wait_for_event($witness, $cluster, 'promoted', undef, $before),
		'a standby is promoted after the crash of the primary');
	my ($new) = split /:/, cluster_primary($witness, $cluster);

	ok( $wait_query->(
			'hamonitor_cluster_failovers_total',
			sub { ($_[0]{'cluster=main'} // '') eq '1' }),
		'Prometheus: hamonitor_cluster_failovers_total is 1 after the failover');
	ok( $wait_query->(
			'hamonitor_node_up{node="primary"}',
			sub { ($_[0]{'cluster=main,node=primary'} // '') eq '0' }),
		'Prometheus: hamonitor_node_up of the old primary is 0');
	ok( $wait_query->(
			'hamonitor_node_is_primary == 1',
			sub { join(',', keys %{ $_[0] }) eq "cluster=main,node=$new" }),
		"Prometheus: $new is the one primary");
	ok( $wait_query->(
			'ALERTS{alertname="HamonitorFailover",alertstate="firing"}',
			sub { exists $_[0]{'alertname=HamonitorFailover,alertstate=firing,cluster=main,severity=warning'} }),
		'the HamonitorFailover alert fires');
	ok( $wait_query->(
			'ALERTS{alertname="HamonitorNodeDown",node="primary"}',
			sub { scalar keys %{ $_[0] } == 1 }),
		'HamonitorNodeDown is pending (or firing) for the old primary');

	# a counter, not a count of the event table: deleting the events does
	# not take the failover back
	$witness->safe_psql('postgres', "DELETE FROM hamonitor.event WHERE kind = 'promoted'");
	like(http_get($port, '/metrics')->{body},
		qr/^hamonitor_cluster_failovers_total\{cluster="main"\} 1$/m,
		'hamonitor_cluster_failovers_total stays 1 after the promoted event is deleted');

	$ph->kill_kill(grace => 2);
}

done_testing();
