/*-------------------------------------------------------------------------
 *
 * pg_hamonitor.h
 *		Names, settings and shared state common to every part of pg_hamonitor.
 *
 * The data flows probe -> state -> decision -> action: probe.c talks to
 * the peers, state.c turns probe results into node health and events,
 * catalog.c writes them into the extension's tables, and worker.c drives
 * the loop.  This header holds what all of them share: catalog names,
 * GUC variables and the small shared-memory area that lets a backend wake
 * the workers when the node registry changes.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/pg_hamonitor.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_HAMONITOR_H
#define PG_HAMONITOR_H

#include "fmgr.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"

#include "compat.h"

/* catalog names */
#define HAMON_EXTENSION_NAME	"pg_hamonitor"
#define HAMON_SCHEMA			"hamonitor"

/* node and cluster names: [A-Za-z0-9_.-], at most this many bytes */
#define HAMON_NAME_MAXLEN		63

/* upper bound of pg_hamonitor.workers, also sizes the shared memory */
#define HAMON_MAX_WORKERS		64

/* values of pg_hamonitor.synchronous (and of a cluster's own setting) */
typedef enum HamonSynchronous
{
	HAMON_SYNC_OFF = 0,			/* asynchronous: today's behaviour */
	HAMON_SYNC_QUORUM			/* ANY k (standbys) on the primary */
} HamonSynchronous;

/* settings (pg_hamonitor.c) */
extern char *hamon_database;
extern int	hamon_workers;
extern int	hamon_probe_interval;
extern int	hamon_probe_timeout;
extern int	hamon_connect_timeout;
extern int	hamon_reconnect_backoff_max;
extern int	hamon_max_connecting;
extern int	hamon_max_connecting_per_peer;
extern char *hamon_resolver_nameserver;
extern int	hamon_history_retention;
extern int	hamon_history_purge_batch;
extern int	hamon_history_interval;
extern int	hamon_slots_interval;
extern bool hamon_auto_failover;
extern int	hamon_failover_timeout;
extern int	hamon_restart_grace;
extern int	hamon_max_failover_lag;
extern bool hamon_fence_old_primary;
extern int	hamon_repoint_timeout;
extern int	hamon_promote_timeout;
extern int	hamon_switchover_timeout;
extern bool hamon_manage_standby_slots;
extern int	hamon_slot_retry_count;
extern int	hamon_slot_inactive_alert;
extern int	hamon_slot_retained_alert;
extern int	hamon_http_port;
extern char *hamon_http_listen_addresses;
extern int	hamon_synchronous;
extern char *hamon_event_command;
extern char *hamon_event_command_kinds;
extern int	hamon_event_command_timeout;

/*
 * Shared state: each worker publishes its latch, and every committed change
 * of the node registry bumps registry_generation and sets those latches, so
 * a worker reloads its nodes at once instead of polling the table.
 */
typedef struct HamonWorkerSlot
{
	pid_t		pid;
	Latch	   *latch;
} HamonWorkerSlot;

/*
 * Action workers (engine.c): a slot per action worker, claimed by whoever
 * launches it and freed by the worker when it exits, so a probe worker can
 * tell an action that is running from one whose worker is gone.  A manual
 * function hands its request over in the slot; the worker writes it into
 * hamonitor.action and reports the row's id back.
 */
#define HAMON_MAX_ACTIONS		32
/* action workers max_worker_processes should leave room for (a warning) */
#define HAMON_MIN_FREE_ACTION_SLOTS 2
#define HAMON_REASON_MAXLEN		1024

typedef struct HamonActionSlot
{
	bool		in_use;
	pid_t		pid;			/* the action worker, 0 until it runs */
	int64		action_id;		/* 0 while a request waits for its row */
	/* a manual request: the requester frees the slot once it has read it */
	bool		requester_waiting;
	bool		worker_exited;
	bool		request_done;	/* its row written (result_action_id) */
	int64		result_action_id;
	int			kind;
	int			node_id;
	int			old_primary_id;
	bool		force;
	char		cluster_name[HAMON_NAME_MAXLEN + 1];
	char		node_name[HAMON_NAME_MAXLEN + 1];
	char		requested_by[NAMEDATALEN];
	char		reason[HAMON_REASON_MAXLEN];
} HamonActionSlot;

typedef struct HamonShared
{
	slock_t		mutex;
	uint64		registry_generation;
	HamonWorkerSlot workers[HAMON_MAX_WORKERS];
	HamonActionSlot actions[HAMON_MAX_ACTIONS];
	/*
	 * /metrics' hamonitor_probes_total and hamonitor_probe_failures_total:
	 * every probe result a probe worker folds into its node's state
	 * (HamonCountProbe), read by the HTTP worker.  Counters of this
	 * postmaster's lifetime, as Prometheus expects of a counter.
	 */
	pg_atomic_uint64 probes_total;
	pg_atomic_uint64 probe_failures_total;
} HamonShared;

extern HamonShared *HamonShmem;

/* counts one probe result, in the probe worker that folds it */
static inline void
HamonCountProbe(bool success)
{
	pg_atomic_fetch_add_u64(&HamonShmem->probes_total, 1);
	if (!success)
		pg_atomic_fetch_add_u64(&HamonShmem->probe_failures_total, 1);
}

extern void HamonRegistryChanged(void);
extern uint64 HamonRegistryGeneration(void);

/*
 * External descriptors (fd.c's count of them, which AcquireExternalFD
 * checks) a probe worker holds besides its peer connections: PostgreSQL's
 * latch support (its signalfd and LatchWaitSet, with what the process
 * inherited from the postmaster's count) and the worker's own wait event
 * set.  Measured on PostgreSQL 15 on Linux: 4 (a worker with
 * max_safe_fds = 50 holds 12 peer connections, not 16);
 * test/t/043_startup_checks.pl checks that a worker given
 * HamonWorkerPeerCapacity() nodes holds a connection to each.
 */
#define HAMON_WORKER_OWN_EXTERNAL_FDS	4

extern int	HamonClusterWorker(const char *cluster_name, int nworkers);
extern int	HamonWorkerPeerCapacity(void);

/* functions.c */
extern char *HamonTextArg(FunctionCallInfo fcinfo, int n, const char *what);

/* worker.c */
extern PGDLLEXPORT void HamonWorkerMain(Datum main_arg);

#endif							/* PG_HAMONITOR_H */
