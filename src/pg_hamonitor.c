/*-------------------------------------------------------------------------
 *
 * pg_hamonitor.c
 *		Module entry point: settings, shared memory and worker registration.
 *
 * pg_hamonitor must be loaded with shared_preload_libraries: its probe
 * workers are static background workers registered here, one per slice of
 * the monitored clusters (a cluster always belongs to exactly one worker, so
 * each worker sees the whole of every cluster it decides about).  The
 * shared-memory area is tiny: where each worker's latch is, and a counter
 * that tells the workers the node registry changed.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/pg_hamonitor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "replication/logicallauncher.h"
#include <limits.h>

#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "hooks.h"
#include "http.h"
#include "pg_hamonitor.h"
#include "witness.h"

PG_MODULE_MAGIC;

/* settings */
char	   *hamon_database = NULL;
int			hamon_workers = 1;
int			hamon_probe_interval = 1000;
int			hamon_probe_timeout = 2000;
int			hamon_connect_timeout = 2000;
int			hamon_reconnect_backoff_max = 10000;
int			hamon_max_connecting = 32;
int			hamon_max_connecting_per_peer = 8;
char	   *hamon_resolver_nameserver = NULL;
int			hamon_history_retention = 7 * 24 * 60;
int			hamon_history_purge_batch = 5000;
int			hamon_history_interval = 10000;
int			hamon_slots_interval = 10000;
bool		hamon_auto_failover = true;
int			hamon_failover_timeout = 500;
int			hamon_restart_grace = 30000;
int			hamon_max_failover_lag = 16 * 1024 * 1024;
bool		hamon_fence_old_primary = true;
int			hamon_repoint_timeout = 10000;
int			hamon_promote_timeout = 60;
int			hamon_switchover_timeout = 30000;
bool		hamon_manage_standby_slots = true;
int			hamon_slot_retry_count = 5;
int			hamon_slot_inactive_alert = 3600;
int			hamon_slot_retained_alert = 1024;
int			hamon_http_port = 0;
char	   *hamon_http_listen_addresses = NULL;
int			hamon_synchronous = HAMON_SYNC_OFF;

/* pg_hamonitor.synchronous: the durability of a cluster with no override */
static const struct config_enum_entry hamon_synchronous_options[] = {
	{"off", HAMON_SYNC_OFF, false},
	{"quorum", HAMON_SYNC_QUORUM, false},
	{NULL, 0, false}
};
char	   *hamon_event_command = NULL;
char	   *hamon_event_command_kinds = NULL;
int			hamon_event_command_timeout = 30000;

HamonShared *HamonShmem = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* set by HamonRegistryChanged, acted on when the transaction commits */
static bool registry_change_pending = false;
static bool xact_callback_registered = false;

void		_PG_init(void);
static void hamon_define_settings(void);
static void hamon_shmem_request(void);
static void hamon_shmem_startup(void);
static void hamon_register_workers(void);
static void hamon_check_limits(void);
static void hamon_xact_callback(XactEvent event, void *arg);

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_hamonitor can only be loaded via shared_preload_libraries"),
				 errhint("Add pg_hamonitor to the shared_preload_libraries "
						 "configuration variable in postgresql.conf and restart the server.")));

	hamon_define_settings();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hamon_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hamon_shmem_startup;

	hamon_check_limits();
	hamon_register_workers();
	if (hamon_http_port > 0)
		HamonRegisterHttpWorker();
	/* event_command may be set at any reload: the hook worker always runs */
	HamonRegisterHookWorker();
	/* a witness pair: the guard watches (standby) or checks (active) */
	if (hamon_witness_takeover)
		HamonRegisterWitnessWorker();
}

/*
 * Checks at start that the witness can run what it is configured for.
 *
 * Background workers: the probe workers, the hook worker and the HTTP
 * worker are registered now, and the postmaster starts only as many as
 * max_worker_processes allows, leaving the others out with a LOG line: the
 * clusters of a probe worker left out would go unwatched without anyone
 * noticing.  So too few slots for them is an error (the server does not
 * start, and says why); too few left for the action workers, which start
 * on demand and retry when none is free, is a warning.
 *
 * Descriptors: each peer connection of a probe worker is an external
 * descriptor, and PostgreSQL lets a process hold about a third of its safe
 * descriptors (max_files_per_process, cut to the open-files limit) as
 * such.  How many nodes a worker gets is known only once it has read the
 * registry (worker.c checks that); what is known now, an open-files limit
 * below max_files_per_process, is logged, with what a worker can hold.
 */
static void
hamon_check_limits(void)
{
	int			needed = hamon_workers + 1 + (hamon_http_port > 0 ? 1 : 0);
	/* PostgreSQL's own logical replication launcher, registered after us */
	int			launcher = max_logical_replication_workers > 0 ? 1 : 0;
	struct rlimit rlim;

	if (hamon_workers > 0 && max_worker_processes < needed)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("max_worker_processes (%d) is too low for pg_hamonitor: it needs %d background workers",
						max_worker_processes, needed),
				 errdetail("pg_hamonitor.workers = %d probe workers, the hook worker%s; each action in flight takes one more, at most %d at once.",
						   hamon_workers,
						   hamon_http_port > 0 ? ", the HTTP worker" : "",
						   HAMON_MAX_ACTIONS),
				 errhint("Set max_worker_processes to at least %d (parallel queries and logical replication take theirs from it too), or lower pg_hamonitor.workers.",
						 needed + launcher + HAMON_MIN_FREE_ACTION_SLOTS)));
	if (hamon_workers > 0 &&
		max_worker_processes < needed + launcher + HAMON_MIN_FREE_ACTION_SLOTS)
		ereport(WARNING,
				(errmsg("max_worker_processes (%d) leaves pg_hamonitor fewer than %d workers for its actions",
						max_worker_processes, HAMON_MIN_FREE_ACTION_SLOTS),
				 errdetail("Each failover, promotion, switchover or fence runs in a background worker of its own; one that finds no free slot waits for one.%s",
						   launcher ? " The logical replication launcher takes one more." : ""),
				 errhint("Set max_worker_processes to at least %d.",
						 needed + launcher + HAMON_MIN_FREE_ACTION_SLOTS)));

	if (hamon_workers > 0 && getrlimit(RLIMIT_NOFILE, &rlim) == 0 &&
		rlim.rlim_cur != RLIM_INFINITY &&
		rlim.rlim_cur < (rlim_t) max_files_per_process)
		ereport(LOG,
				(errmsg("pg_hamonitor: the open-files limit (%d) is below max_files_per_process (%d): each probe worker can hold about %d peer connections",
						(int) rlim.rlim_cur, max_files_per_process,
						(int) rlim.rlim_cur / 3 - HAMON_WORKER_OWN_EXTERNAL_FDS),
				 errhint("Raise the open-files limit of the witness's OS user (ulimit -n, LimitNOFILE in systemd) to probe more nodes per worker.")));
}

/*
 * Every setting is defined here.  Settings that size or place the workers
 * are PGC_POSTMASTER; the probe timings take effect on SIGHUP.
 */
static void
hamon_define_settings(void)
{
	DefineCustomStringVariable("pg_hamonitor.database",
							   gettext_noop("Database in which the probe workers run."),
							   gettext_noop("CREATE EXTENSION pg_hamonitor must be run in this database."),
							   &hamon_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.workers",
							gettext_noop("Number of probe workers; each cluster is probed by one of them."),
							gettext_noop("0 starts no worker."),
							&hamon_workers,
							1, 0, HAMON_MAX_WORKERS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.probe_interval",
							gettext_noop("Time between two probes of one node."),
							NULL,
							&hamon_probe_interval,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.probe_timeout",
							gettext_noop("Time a probe query may take before it counts as failed."),
							NULL,
							&hamon_probe_timeout,
							2000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.connect_timeout",
							gettext_noop("Time a connection attempt to a node may take before it counts as failed."),
							NULL,
							&hamon_connect_timeout,
							2000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.reconnect_backoff_max",
							gettext_noop("Longest wait between two connection attempts to an unreachable node."),
							gettext_noop("The wait doubles from probe_interval after each failure, up to this value."),
							&hamon_reconnect_backoff_max,
							10000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.max_connecting",
							gettext_noop("Most connection attempts a probe worker has in flight at once."),
							gettext_noop("An attempt lasts until the new session has answered its first query; due nodes beyond this wait their turn."),
							&hamon_max_connecting,
							32, 1, 10000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.max_connecting_per_peer",
							gettext_noop("Most connection attempts a probe worker has in flight at once to one peer address."),
							gettext_noop("A peer is one host, hostaddr and port as registered: one server, or one pooler."),
							&hamon_max_connecting_per_peer,
							8, 1, 10000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_hamonitor.resolver_nameserver",
							   gettext_noop("DNS server the probe workers' resolver asks instead of those of /etc/resolv.conf."),
							   gettext_noop("An IPv4 address, optionally with :port. Empty: the system's resolver configuration."),
							   &hamon_resolver_nameserver,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.history_retention",
							gettext_noop("How long probe history is kept."),
							NULL,
							&hamon_history_retention,
							7 * 24 * 60, 1, INT_MAX / 60,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.history_purge_batch",
							gettext_noop("Most history rows purged in one transaction."),
							gettext_noop("Small batches keep the purge from delaying the probes."),
							&hamon_history_purge_batch,
							5000, 1, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.history_interval",
							gettext_noop("Time between two history rows of a node whose probes say nothing new."),
							gettext_noop("0 keeps every probe. A probe that changes health, role, timeline, success or error is always kept, with the probe before it and every probe after it for one interval."),
							&hamon_history_interval,
							10000, 0, 24 * 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.slots_interval",
							gettext_noop("Time between two reads of a node's replication slots by its probes."),
							gettext_noop("0 reads them at every probe. They are also read at the first probe of a session, after a promotion or demotion, after the witness changed a slot there or an action of the cluster ended, at every probe while one is under way, and at every probe of a primary with a logical slot."),
							&hamon_slots_interval,
							10000, 0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_hamonitor.auto_failover",
							 gettext_noop("Promotes a standby when a primary has really failed."),
							 gettext_noop("Off: failures are detected and logged, nothing is promoted."),
							 &hamon_auto_failover,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.failover_timeout",
							gettext_noop("Time without a successful probe of a crashed primary before it may be declared failed."),
							gettext_noop("The standbys must also have lost it; see the README."),
							&hamon_failover_timeout,
							500, 0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.restart_grace",
							gettext_noop("Time given to a primary that was shut down or restarted in an orderly way before it may be declared failed."),
							NULL,
							&hamon_restart_grace,
							30000, 0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.max_failover_lag",
							gettext_noop("Most WAL a standby may lack behind the failed primary's last known position and still be promoted."),
							NULL,
							&hamon_max_failover_lag,
							16 * 1024 * 1024, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_hamonitor.fence_old_primary",
							 gettext_noop("Makes a stale primary that comes back read-only and ends its client sessions."),
							 NULL,
							 &hamon_fence_old_primary,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.repoint_timeout",
							gettext_noop("Time a repointed standby has to stream from the new primary before it is flagged needs_rejoin."),
							NULL,
							&hamon_repoint_timeout,
							10000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.promote_timeout",
							gettext_noop("Time pg_promote() may take on the promoted standby."),
							NULL,
							&hamon_promote_timeout,
							60, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.switchover_timeout",
							gettext_noop("Time a switchover waits for its target to replay the old primary's last WAL."),
							NULL,
							&hamon_switchover_timeout,
							30000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("pg_hamonitor.synchronous",
							 gettext_noop("Durability of a cluster with no setting of its own: off, or quorum (the witness keeps the primary's synchronous_standby_names)."),
							 gettext_noop("A cluster's own setting: hamonitor.set_cluster_option(cluster, 'synchronous', ...)."),
							 &hamon_synchronous,
							 HAMON_SYNC_OFF,
							 hamon_synchronous_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_hamonitor.manage_standby_slots",
							 gettext_noop("Keeps a physical slot per standby on each primary and points the standbys at them."),
							 NULL,
							 &hamon_manage_standby_slots,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.slot_retry_count",
							gettext_noop("Tries of hamonitor.drop_slot() on a slot that is still active."),
							gettext_noop("The wait between tries starts at 100 ms and doubles."),
							&hamon_slot_retry_count,
							5, 1, 20,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.slot_inactive_alert",
							gettext_noop("A slot inactive for longer than this raises an alert."),
							NULL,
							&hamon_slot_inactive_alert,
							3600, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.slot_retained_alert",
							gettext_noop("A slot retaining more WAL than this raises an alert."),
							NULL,
							&hamon_slot_retained_alert,
							1024, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.http_port",
							gettext_noop("TCP port of the witness's HTTP endpoint (health checks, JSON state, Prometheus metrics)."),
							gettext_noop("0 starts no HTTP endpoint."),
							&hamon_http_port,
							0, 0, 65535,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_hamonitor.http_listen_addresses",
							   gettext_noop("Addresses the HTTP endpoint listens on, comma-separated; * for all."),
							   gettext_noop("It has no TLS or authentication: keep it on localhost or a trusted network."),
							   &hamon_http_listen_addresses,
							   "localhost",
							   PGC_POSTMASTER,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_hamonitor.event_command",
							   gettext_noop("Shell command run for each event whose kind is in event_command_kinds."),
							   gettext_noop("Placeholders %e %c %n %k %d %t %h %p are replaced by quoted values; empty runs nothing."),
							   &hamon_event_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_hamonitor.event_command_kinds",
							   gettext_noop("Event kinds event_command runs for, comma-separated."),
							   NULL,
							   &hamon_event_command_kinds,
							   "promoted, switchover, fenced, split_brain, needs_rejoin",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.event_command_timeout",
							gettext_noop("Time event_command may run before it is killed."),
							NULL,
							&hamon_event_command_timeout,
							30000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_hamonitor.witness_takeover",
							 gettext_noop("Pairs this witness with a hot standby of it: the standby takes over by itself, a superseded witness stops acting."),
							 NULL,
							 &hamon_witness_takeover,
							 false,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_hamonitor.witness_takeover_timeout",
							gettext_noop("Time the active witness must be unreachable before its standby takes over."),
							NULL,
							&hamon_witness_takeover_timeout,
							10000, 1000, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_hamonitor.witness_synchronous",
							 gettext_noop("The active witness names its standby witnesses in its own synchronous_standby_names, emptied when none streams for witness_takeover_timeout."),
							 NULL,
							 &hamon_witness_synchronous,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("pg_hamonitor");
}

static void
hamon_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(MAXALIGN(sizeof(HamonShared)));
	RequestAddinShmemSpace(HamonWitnessShmemSize());
}

static void
hamon_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	HamonShmem = ShmemInitStruct("pg_hamonitor", sizeof(HamonShared), &found);
	if (!found)
	{
		memset(HamonShmem, 0, sizeof(HamonShared));
		SpinLockInit(&HamonShmem->mutex);
		pg_atomic_init_u64(&HamonShmem->probes_total, 0);
		pg_atomic_init_u64(&HamonShmem->probe_failures_total, 0);
	}
	HamonWitnessShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

static void
hamon_register_workers(void)
{
	BackgroundWorker worker;
	int			i;

	for (i = 0; i < hamon_workers; i++)
	{
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
			BGWORKER_BACKEND_DATABASE_CONNECTION;
		/* runs on a hot-standby witness too, idle until it is promoted */
		worker.bgw_start_time = BgWorkerStart_ConsistentState;
		worker.bgw_restart_time = 5;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_hamonitor");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "HamonWorkerMain");
		snprintf(worker.bgw_name, BGW_MAXLEN, "pg_hamonitor worker %d", i);
		snprintf(worker.bgw_type, BGW_MAXLEN, "pg_hamonitor worker");
		worker.bgw_main_arg = Int32GetDatum(i);
		worker.bgw_notify_pid = 0;
		RegisterBackgroundWorker(&worker);
	}
}

/*
 * HamonRegistryChanged
 *		Called when this transaction changes the node registry: once it
 *		commits, the workers are told to reload their nodes.
 */
void
HamonRegistryChanged(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(hamon_xact_callback, NULL);
		xact_callback_registered = true;
	}
	registry_change_pending = true;
}

/* the current registry generation, for a worker to compare with its own */
uint64
HamonRegistryGeneration(void)
{
	uint64		gen;

	SpinLockAcquire(&HamonShmem->mutex);
	gen = HamonShmem->registry_generation;
	SpinLockRelease(&HamonShmem->mutex);
	return gen;
}

/*
 * HamonClusterWorker
 *		The probe worker (0 .. nworkers - 1) that probes a cluster: the one
 *		its name hashes to.  The workers (reading the registry) and the
 *		registration check (functions.c) must use this one rule.
 */
int
HamonClusterWorker(const char *cluster_name, int nworkers)
{
	Assert(nworkers > 0);
	return (int) (hash_bytes((const unsigned char *) cluster_name,
							 strlen(cluster_name)) % (uint32) nworkers);
}

/*
 * HamonWorkerPeerCapacity
 *		How many peer connections a probe worker can hold at once.
 *
 * Each connection is an external descriptor, and AcquireExternalFD grants
 * a process at most max_safe_fds / 3 of them; HAMON_WORKER_OWN_EXTERNAL_FDS
 * of those are taken by the worker's latch support and wait set.
 *
 * max_safe_fds is computed once, by the postmaster (set_max_safe_fds() in
 * PostmasterMain, after the shared memory is made and before any child is
 * forked: max_files_per_process, cut to what the open-files limit lets it
 * open, less the descriptors it already has open and NUM_RESERVED_FDS),
 * and every child inherits the value: a fork copies it, and with
 * EXEC_BACKEND it is passed in the BackendParameters.  No child computes it
 * again.  So the value a backend sees here is the one every probe worker
 * has, and a backend may answer for a worker.
 */
int
HamonWorkerPeerCapacity(void)
{
	return Max(max_safe_fds / 3 - HAMON_WORKER_OWN_EXTERNAL_FDS, 0);
}

/*
 * At commit the change is visible to everyone, so the workers may reload
 * now; on abort there is nothing to tell.
 */
static void
hamon_xact_callback(XactEvent event, void *arg)
{
	Latch	   *latches[HAMON_MAX_WORKERS];
	int			nlatches = 0;
	int			i;

	if (!registry_change_pending)
		return;

	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		registry_change_pending = false;
		return;
	}
	if (event != XACT_EVENT_COMMIT)
		return;
	registry_change_pending = false;

	/* the library may be loaded without shared memory (e.g. LOAD) */
	if (HamonShmem == NULL)
		return;

	SpinLockAcquire(&HamonShmem->mutex);
	HamonShmem->registry_generation++;
	for (i = 0; i < HAMON_MAX_WORKERS; i++)
		if (HamonShmem->workers[i].latch != NULL)
			latches[nlatches++] = HamonShmem->workers[i].latch;
	SpinLockRelease(&HamonShmem->mutex);

	/* SetLatch is not for spinlock sections */
	for (i = 0; i < nlatches; i++)
		SetLatch(latches[i]);
}
