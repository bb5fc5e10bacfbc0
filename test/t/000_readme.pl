# test/t/000_readme.pl
#
# The README documents what the code has: its settings table must match
# pg_settings (name, default as SHOW prints it, context) in both
# directions, and every SQL function and view a user may call must be
# documented.  Docs that contradict the code are a bug like any other.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $readme_path = "$ENV{TESTDIR}/README.md";
$readme_path = 'README.md' unless -f $readme_path;
my $readme = slurp_file($readme_path);

# | `pg_hamonitor.name` | default | context | meaning |
my %documented;
while ($readme =~ /^\|\s*`pg_hamonitor\.(\w+)`\s*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|/mg)
{
	$documented{$1} = { default => $2, context => $3 };
}
ok(scalar(keys %documented) > 0, 'README has a settings table');

my $node = PostgreSQL::Test::Cluster->new('readme');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_hamonitor'\npg_hamonitor.workers = 0\n");
$node->start;

# defaults as SHOW prints them: reset_val is the configured value, so ask
# a fresh server with nothing set
my %actual;
for my $row (split /\n/,
	$node->safe_psql('postgres',
		"SELECT name, context FROM pg_settings WHERE name LIKE 'pg_hamonitor.%' ORDER BY name"))
{
	my ($name, $context) = split /\|/, $row;
	$name =~ s/^pg_hamonitor\.//;
	my $shown = $node->safe_psql('postgres', "SHOW pg_hamonitor.$name");
	# workers is 0 here for the test only; its default is the boot value
	if ($name eq 'workers')
	{
		$shown = $node->safe_psql('postgres',
			"SELECT boot_val FROM pg_settings WHERE name = 'pg_hamonitor.workers'");
	}
	$actual{$name} = { default => $shown, context => $context };
}

for my $name (sort keys %actual)
{
	ok(exists $documented{$name}, "setting pg_hamonitor.$name is documented");
	next unless exists $documented{$name};
	is($documented{$name}{default}, "`$actual{$name}{default}`",
		"README default of pg_hamonitor.$name matches SHOW");
	is($documented{$name}{context}, $actual{$name}{context},
		"README context of pg_hamonitor.$name matches pg_settings");
}
for my $name (sort keys %documented)
{
	ok(exists $actual{$name}, "documented setting pg_hamonitor.$name exists");
}

# every function and view meant for users is documented
$node->safe_psql('postgres', 'CREATE EXTENSION pg_hamonitor');
my @internal = qw(validate_conninfo validate_name node_changed event_notify event_count_add
  check_worker_capacity
  review_slots slot_actions node_id);
my %internal = map { $_ => 1 } @internal;
for my $fn (split /\n/,
	$node->safe_psql('postgres',
		"SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'hamonitor'::regnamespace ORDER BY 1"))
{
	next if $internal{$fn};
	ok($readme =~ /hamonitor\.\Q$fn\E\(/, "function hamonitor.$fn is documented");
}
for my $view (split /\n/,
	$node->safe_psql('postgres',
		"SELECT relname FROM pg_class WHERE relnamespace = 'hamonitor'::regnamespace AND relkind = 'v' ORDER BY 1"))
{
	ok($readme =~ /hamonitor\.\Q$view\E\b/, "view hamonitor.$view is documented");
}

$node->stop;
done_testing();
