/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The probe worker's main loop: one WaitEventSet over every node.
 *
 * A worker owns the clusters whose names hash to its index.  It keeps one
 * libpq connection per node and waits on all of them at once, with its
 * latch and postmaster death, in a single WaitEventSet.  Each node has its
 * own schedule (probe.c), so a slow or black-holed node costs its own
 * deadline and nothing else, and a connection that closes wakes the
 * worker at once.  A round of the loop:
 *
 *	 tick every node: start due probes, fail late ones (probe.c)
 *	 -> fold finished probes into node state (state.c)
 *	 -> review the clusters that heard something: decide (decide.c) and
 *		plan actions (failover.c)
 *	 -> write state, history, events and the planned actions in one
 *		transaction (catalog.c, engine.c)
 *	 -> launch the committed actions, each in a worker of its own (engine.c)
 *	 -> review the slots of the clusters that heard something (slots.c)
 *	 -> wait for the next socket, deadline or latch.
 *
 * hamon_flush_results runs that path, one function a step.
 *
 * The wait set is built with slack: a new socket is added to it, a closed
 * one just forgotten (epoll drops a closed descriptor by itself, and PG15
 * cannot remove an entry), and it is rebuilt only when the slack runs out
 * or nodes come and go.  A change of what we wait for on a socket is a
 * ModifyWaitEvent.
 *
 * Host names are resolved by a helper process the worker forks at start
 * (resolve.c); its socket is in the wait set too, and its answers move the
 * nodes that wait for them on (probe.c).
 *
 * The worker does nothing while the witness is in recovery or the
 * extension is not installed in pg_hamonitor.database, and checks both
 * again every second; a witness standby's worker therefore takes over when
 * that standby is promoted.  Registry changes reach it through a counter
 * in shared memory bumped at commit (pg_hamonitor.c), with its latch set.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "engine.h"
#include "failover.h"
#include "probe.h"
#include "resolve.h"
#include "slots.h"
#include "state.h"
#include "witness.h"

/* how often an idle worker looks for the extension or the end of recovery */
#define HAMON_IDLE_CHECK_MS 1000
/*
 * How long a plain probe result may wait to share a write transaction: a
 * quarter of probe_interval, at most 250 ms.  Each write costs its
 * transaction and four statements whatever it holds; at 1 s a node's row is
 * then never more than 1.25 s old.
 */
#define HAMON_WRITE_DELAY_MS Min(250, Max(10, hamon_probe_interval / 4))
/* how long answers are gathered before a full round of the loop */
#define HAMON_GATHER_MS 10
/* how often the history purge runs while it has nothing left to purge */
#define HAMON_PURGE_INTERVAL_MS 10000
/* how often the open actions are read from the catalog anyway */
#define HAMON_ACTION_REFRESH_MS 2000
/* how long a worker transaction waits for a lock before it gives up */
#define HAMON_LOCK_TIMEOUT "200ms"
/* a batch whose write failed is tried again after this long */
#define HAMON_WRITE_RETRY_MS 1000
/* memory the batch context keeps across its resets */
#define HAMON_BATCH_KEEP_BYTES (1024 * 1024)
/* results kept while writes fail; the oldest are dropped beyond this */
#define HAMON_MAX_PENDING_RECORDS 20000

typedef struct HamonWorker
{
	int			index;
	MemoryContext node_cxt;		/* nodes and clusters */
	MemoryContext cycle_cxt;	/* probe results, reset every round */
	MemoryContext batch_cxt;	/* records and events, reset per write */
	List	   *records;		/* HamonProbeRecords not yet written */
	List	   *events;			/* HamonEvents not yet written */
	TimestampTz records_since;	/* when the oldest of them came in */
	TimestampTz write_retry_at; /* a failed write is tried again then */
	bool		write_failing;	/* the last write failed */
	List	   *nodes;
	List	   *clusters;
	bool		active;			/* nodes loaded and being probed */
	bool		reload;			/* read the registry again */
	uint64		registry_generation;
	TimestampTz next_purge_at;
	TimestampTz next_action_refresh;	/* read the open actions then */
	uint64		resolver_generation;	/* of the helper whose socket is in the
										 * wait set */
	WaitEventSet *wes;
	int			wes_size;		/* entries it has room for */
	int			wes_used;		/* entries added, stale ones included */
	bool		wes_dirty;
	WaitEvent  *occurred;
} HamonWorker;

static HamonWorker worker;

/* user_data of the resolver's socket in the wait set (nodes have theirs) */
static char resolver_marker;

/* what one batch write takes, and what it reports back */
typedef struct HamonBatchWrite
{
	List	   *records;
	List	   *clusters;
	List	   *flagged;
	List	   *events;
	List	   *actions;		/* HamonPlannedActions to write ahead */
	List	   *flags_written;	/* node ids whose flags were written */
} HamonBatchWrite;

static void hamon_worker_shmem_exit(int code, Datum arg);
static bool hamon_activate(void);
static void hamon_deactivate(void);
static void hamon_load_nodes(void *arg);
static void hamon_merge_nodes(List *loaded, List *loaded_clusters);
static void hamon_check_capacity(void);
static void hamon_flush_results(bool force);
static void hamon_fold_results(TimestampTz now);
static void hamon_probe_cluster_now(HamonNode *node, TimestampTz now);
static void hamon_keep_record(HamonNode *node, TimestampTz now);
static bool hamon_history_due(HamonNode *node, TimestampTz now);
static void hamon_keep_previous(HamonNode *node, TimestampTz now);
static void hamon_review_clusters(TimestampTz now, List **actions);
static void hamon_collect_dirty(HamonBatchWrite *write);
static bool hamon_batch_due(HamonBatchWrite *write, bool force,
							TimestampTz now);
static bool hamon_write_batch(HamonBatchWrite *write, TimestampTz now);
static void hamon_review_touched_slots(void);
static void hamon_write_results(void *arg);
static void hamon_keep_failed_batch(TimestampTz now);
static void hamon_purge(TimestampTz now);
static void hamon_actions(TimestampTz now);
static void hamon_purge_txn(void *arg);
static void hamon_fold_counts_txn(void *arg);
static void hamon_sync_wait_set(void);
static bool hamon_sync_node(HamonNode *node);
static bool hamon_handle_events(int nevents);
static bool hamon_result_waits(int nevents);
static void hamon_gather(TimestampTz wait_until);
static long hamon_next_timeout(TimestampTz now);
static void hamon_tick_all(TimestampTz now);
static bool hamon_sync_touched(void);

/*
 * HamonWorkerMain
 *		Entry point of a probe worker; main_arg is its index.
 */
void
HamonWorkerMain(Datum main_arg)
{
	worker.index = DatumGetInt32(main_arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* publish our latch, so registry changes can wake us */
	SpinLockAcquire(&HamonShmem->mutex);
	HamonShmem->workers[worker.index].pid = MyProcPid;
	HamonShmem->workers[worker.index].latch = MyLatch;
	SpinLockRelease(&HamonShmem->mutex);
	before_shmem_exit(hamon_worker_shmem_exit, (Datum) 0);

	BackgroundWorkerInitializeConnection(hamon_database, NULL, 0);
	pgstat_report_appname("pg_hamonitor worker");

	worker.node_cxt = AllocSetContextCreate(TopMemoryContext,
											"pg_hamonitor nodes",
											ALLOCSET_DEFAULT_SIZES);
	worker.cycle_cxt = AllocSetContextCreate(TopMemoryContext,
											 "pg_hamonitor cycle",
											 ALLOCSET_DEFAULT_SIZES);
	/*
	 * A batch holds a copy of each result it writes (several kB each: a
	 * few hundred kB at 1000 nodes), and the context is reset after every
	 * write: with a block this size kept across resets, the allocator
	 * neither maps nor faults in fresh memory ten times a second.
	 */
	worker.batch_cxt = AllocSetContextCreate(TopMemoryContext,
											 "pg_hamonitor batch",
											 HAMON_BATCH_KEEP_BYTES,
											 HAMON_BATCH_KEEP_BYTES,
											 ALLOCSET_DEFAULT_MAXSIZE);

	/*
	 * A probe result lost in a witness crash is no loss: commits of the
	 * probe batches need not wait for the WAL flush.  A batch that writes
	 * an action sets it back on (HamonEngineEnqueue), and the action
	 * workers commit synchronously.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Every name the worker's SQL resolves, operators included, comes from
	 * pg_catalog or the extension's schema: an object a user created in a
	 * schema on the database's default search_path is never called by this
	 * superuser process.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	/*
	 * A session that holds a lock on a registry row (an open transaction
	 * around hamonitor.set_maintenance, say) must not freeze the probing of
	 * every cluster: a batch that waits longer than this is rolled back,
	 * kept, and written again (hamon_flush_results).
	 */
	SetConfigOption("lock_timeout", HAMON_LOCK_TIMEOUT, PGC_SUSET,
					PGC_S_OVERRIDE);
	worker.wes_dirty = true;

	/*
	 * The resolver helper (resolve.c), forked now, before any peer
	 * connection is open, so that it inherits none.
	 */
	HamonResolverInit(HamonProbeResolved);

	ereport(LOG,
			(errmsg("pg_hamonitor worker %d started in database \"%s\"",
					worker.index, hamon_database)));

	for (;;)
	{
		TimestampTz now;
		long		timeout;
		int			nevents;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a raised max_connecting frees slots for the nodes waiting */
			HamonProbeWakeAll();
		}

		if (!hamon_activate())
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 HAMON_IDLE_CHECK_MS, HAMON_WAIT_EVENT);
			ResetLatch(MyLatch);
			continue;
		}

		now = GetCurrentTimestamp();
		if (HamonProbeRoundDue(now))
			hamon_tick_all(now);
		hamon_flush_results(false);
		hamon_actions(now);
		hamon_purge(now);

		hamon_sync_wait_set();
		timeout = hamon_next_timeout(now);
		nevents = WaitEventSetWait(worker.wes, timeout, worker.occurred,
								   worker.wes_size, HAMON_WAIT_EVENT);
		if (hamon_handle_events(nevents))
			hamon_gather(TimestampTzPlusMilliseconds(now, timeout));
		hamon_flush_results(false);
	}
}

static void
hamon_worker_shmem_exit(int code, Datum arg)
{
	HamonResolverShutdown();
	SpinLockAcquire(&HamonShmem->mutex);
	HamonShmem->workers[worker.index].pid = 0;
	HamonShmem->workers[worker.index].latch = NULL;
	SpinLockRelease(&HamonShmem->mutex);
}

/*
 * Makes sure the worker probes what it should: nothing in recovery or
 * without the extension, the current registry otherwise.  Returns whether
 * there is probing to do.
 */
static bool
hamon_activate(void)
{
	uint64		generation;

	if (RecoveryInProgress())
	{
		if (worker.active)
		{
			ereport(LOG,
					(errmsg("pg_hamonitor worker %d pauses: the witness is in recovery",
							worker.index)));
			hamon_deactivate();
		}
		return false;
	}

	/* a paired witness acts only once it knows it was not superseded */
	if (!HamonWitnessMayAct())
	{
		if (worker.active)
		{
			ereport(LOG,
					(errmsg("pg_hamonitor worker %d stops: this witness may not act (hamonitor.witness_status())",
							worker.index)));
			hamon_deactivate();
		}
		return false;
	}

	generation = HamonRegistryGeneration();
	if (!worker.active || worker.reload ||
		generation != worker.registry_generation)
	{
		bool		loaded = false;

		/* what was probed is written before nodes may go away */
		if (worker.active)
			hamon_flush_results(true);
		worker.registry_generation = generation;
		worker.reload = false;
		if (!HamonRunInTransaction(hamon_load_nodes, &loaded,
								   "load the node registry") || !loaded)
		{
			if (worker.active)
				hamon_deactivate();
			return false;
		}
		worker.active = true;
		/* new nodes are due at once, and no node's wakeup is known */
		HamonProbeWakeAll();
		/* what the catalog says of the clusters' open actions, at once */
		worker.next_action_refresh = 0;
	}
	return true;
}

/* closes every connection and forgets the nodes */
static void
hamon_deactivate(void)
{
	ListCell   *lc;

	foreach(lc, worker.nodes)
		HamonProbeStop((HamonNode *) lfirst(lc));
	worker.records = NIL;
	worker.events = NIL;
	worker.records_since = 0;
	worker.write_failing = false;
	MemoryContextReset(worker.batch_cxt);
	MemoryContextReset(worker.node_cxt);
	MemoryContextReset(worker.cycle_cxt);
	worker.nodes = NIL;
	worker.clusters = NIL;
	worker.active = false;
	worker.wes_dirty = true;
}

/* transaction body: reads the registry if the extension is installed */
static void
hamon_load_nodes(void *arg)
{
	bool	   *loaded = (bool *) arg;
	List	   *nodes;
	List	   *clusters;

	if (!HamonExtensionExists())
		return;
	nodes = HamonCatalogLoadNodes(worker.index, hamon_workers, worker.cycle_cxt,
								  &clusters);
	hamon_merge_nodes(nodes, clusters);
	hamon_check_capacity();
	MemoryContextReset(worker.cycle_cxt);
	*loaded = true;
}

/*
 * Says, once per change of the node count, when this worker has more nodes
 * than it can hold connections: each is an external descriptor, and a
 * process may hold about a third of its safe descriptors as such
 * (AcquireExternalFD).  The nodes beyond it would fail their probes, every
 * time, with "out of file descriptors".
 */
static void
hamon_check_capacity(void)
{
	static int	warned_for = 0;
	int			nnodes = list_length(worker.nodes);
	int			capacity = HamonWorkerPeerCapacity();

	if (nnodes <= capacity || nnodes == warned_for)
		return;
	warned_for = nnodes;
	ereport(WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("pg_hamonitor worker %d has %d nodes to probe but can hold at most %d peer connections",
					worker.index, nnodes, capacity),
			 errdetail("Each connection takes a file descriptor; a process may use about a third of its %d (max_files_per_process, cut to the open-files limit) for them, and a probe worker's latch and wait sets take %d of those.",
					   max_safe_fds, HAMON_WORKER_OWN_EXTERNAL_FDS),
			 errhint("Raise max_files_per_process and the open-files limit of the witness's OS user, or pg_hamonitor.workers; see \"Sizing\" in the README.")));
}

static HamonCluster *
hamon_find_cluster(List *clusters, const char *name)
{
	ListCell   *lc;

	foreach(lc, clusters)
		if (strcmp(((HamonCluster *) lfirst(lc))->name, name) == 0)
			return (HamonCluster *) lfirst(lc);
	return NULL;
}

/*
 * Brings the in-memory clusters and nodes in line with the registry just
 * read: new nodes are probed at once, removed ones disconnected, a node
 * whose conninfo changed reconnects.  A known node keeps its health and
 * schedule, which are more recent in memory than in the table; what the
 * table says of primaries and flags wins (a manual promotion changed it),
 * except what the worker changed and has not written yet.
 */
static void
hamon_merge_nodes(List *loaded, List *loaded_clusters)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(worker.node_cxt);
	TimestampTz now = GetCurrentTimestamp();
	List	   *nodes = NIL;
	List	   *clusters = NIL;
	ListCell   *lc;

	foreach(lc, loaded_clusters)
	{
		HamonCluster *row = (HamonCluster *) lfirst(lc);
		HamonCluster *old = hamon_find_cluster(worker.clusters, row->name);
		HamonCluster *cluster = palloc(sizeof(HamonCluster));

		memcpy(cluster, row, sizeof(HamonCluster));
		cluster->members = NIL;
		if (old != NULL)
		{
			if (old->dirty)
			{
				cluster->has_sysid = old->has_sysid;
				cluster->system_identifier = old->system_identifier;
				cluster->primary_id = old->primary_id;
				cluster->timeline = old->timeline;
				cluster->dirty = true;
			}
			strlcpy(cluster->last_reason, old->last_reason,
					sizeof(cluster->last_reason));
			cluster->deciding = old->deciding;
			cluster->action_id = old->action_id;
			memcpy(cluster->action_state, old->action_state,
				   sizeof(cluster->action_state));
			cluster->action_stalled = old->action_stalled;
			cluster->action_node_id = old->action_node_id;
			cluster->action_launches = old->action_launches;
			cluster->action_running = old->action_running;
			cluster->action_retry_at = old->action_retry_at;
			cluster->action_handle = old->action_handle;
			/*
			 * the applied quorum, until the next refresh reads it again: a
			 * review before that must not judge a quorum cluster by
			 * max_failover_lag
			 */
			cluster->sync_k = old->sync_k;
			cluster->sync_degraded = old->sync_degraded;
		}
		clusters = lappend(clusters, cluster);
	}

	foreach(lc, loaded)
	{
		HamonNode  *row = (HamonNode *) lfirst(lc);
		HamonNode  *node = HamonFindNode(worker.nodes, row->node_id);

		if (node == NULL)
		{
			node = palloc(sizeof(HamonNode));
			memcpy(node, row, sizeof(HamonNode));
			node->conninfo = pstrdup(row->conninfo);
			node->next_probe_at = now;
		}
		else
		{
			if (strcmp(node->conninfo, row->conninfo) != 0 ||
				strcmp(node->cluster_name, row->cluster_name) != 0 ||
				strcmp(node->node_name, row->node_name) != 0)
			{
				/* same id, new address or identity: start afresh */
				HamonProbeStop(node);
				worker.wes_dirty = true;
				pfree(node->conninfo);
				node->conninfo = pstrdup(row->conninfo);
				strlcpy(node->cluster_name, row->cluster_name,
						sizeof(node->cluster_name));
				strlcpy(node->node_name, row->node_name,
						sizeof(node->node_name));
				node->next_probe_at = now;
			}
			if (!node->flags_dirty)
			{
				node->fenced = row->fenced;
				node->needs_rejoin = row->needs_rejoin;
				node->repointed_at = row->repointed_at;
			}
		}
		node->priority = row->priority;
		node->maintenance = row->maintenance;
		node->cluster = hamon_find_cluster(clusters, row->cluster_name);
		nodes = lappend(nodes, node);
	}

	/* each cluster's members, for the per-cluster reviews */
	foreach(lc, nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);

		node->cluster->members = lappend(node->cluster->members, node);
		/* flags of a node carried over, still to be written */
		if (node->flags_dirty)
			node->cluster->flags_pending = true;
	}

	/* nodes no longer registered (or no longer ours) */
	foreach(lc, worker.nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);

		if (HamonFindNode(nodes, node->node_id) == NULL)
		{
			ListCell   *lc2;

			/* its results still pending after a failed write go too */
			foreach(lc2, worker.records)
				if (((HamonProbeRecord *) lfirst(lc2))->node == node)
					worker.records = foreach_delete_current(worker.records, lc2);
			HamonProbeStop(node);
			worker.wes_dirty = true;
			pfree(node->conninfo);
			pfree(node);
		}
	}
	list_free(worker.nodes);
	foreach(lc, worker.clusters)
		list_free(((HamonCluster *) lfirst(lc))->members);
	list_free_deep(worker.clusters);
	worker.nodes = nodes;
	worker.clusters = clusters;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * One pass of the data path over what the sockets brought in, each step a
 * function of its own:
 *
 *	 probe -> state		hamon_fold_results: finished probes into node state
 *	 decide -> plan		hamon_review_clusters: failover decisions, fencing
 *	 (write ahead)		hamon_write_batch: state, history, events and the
 *						planned actions, in one transaction
 *	 act				HamonEngineLaunchPlanned: the committed actions start
 *	 slots				hamon_review_touched_slots: alarms, managed slots
 *
 * Plain results wait up to HAMON_WRITE_DELAY_MS to share a transaction;
 * anything that matters (an event, a change of primary or flags, an
 * action) is written at once, as is everything when force is set.  Nothing
 * after the write runs unless it committed: an action may only follow a
 * committed decision, and a cluster's slots are reviewed (and its touched
 * flag cleared) once what the review saw is in the catalog.
 */
/*
 * Moves on the state machine of every node whose socket the wait set
 * reported.  Returns true if only peers' sockets woke the worker: a latch
 * set (a signal, a registry change) or the resolver helper's answer
 * (nodes whose connection now starts) want a full round of the loop.
 */
static bool
hamon_handle_events(int nevents)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(worker.cycle_cxt);
	TimestampTz now = GetCurrentTimestamp();
	bool		peers_only = nevents > 0;
	int			i;

	for (i = 0; i < nevents; i++)
	{
		WaitEvent  *ev = &worker.occurred[i];

		if (ev->events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			peers_only = false;
		}
		if (ev->events & WL_SOCKET_MASK)
		{
			if (ev->user_data == &resolver_marker)
			{
				HamonResolverReadable();
				peers_only = false;
			}
			else
				HamonProbeSocketReady((HamonNode *) ev->user_data,
									  ev->events, now);
		}
	}
	MemoryContextSwitchTo(oldcxt);
	return peers_only;
}

/*
 * Whether one of the events is for a node whose finished probe is not
 * folded yet: another event of its socket (the connection closed, say)
 * would overwrite that result, and a success lost to a failure that came
 * after it makes the node look silent for longer than it was.  The events
 * are then left for the next round, after the fold.
 */
static bool
hamon_result_waits(int nevents)
{
	int			i;

	for (i = 0; i < nevents; i++)
	{
		void	   *owner = worker.occurred[i].user_data;

		if (owner != NULL && owner != &resolver_marker &&
			((HamonNode *) owner)->result_ready)
			return true;
	}
	return false;
}

/*
 * The answers to the probes the worker sent in one round (one step of the
 * probe grid, probe.c) come in over a few milliseconds, one socket at a
 * time.  A full round of the loop for each would visit every node, fold,
 * write and sync the wait set once per answer: with hundreds of nodes that
 * was most of the worker's time.  Instead, for up to HAMON_GATHER_MS after
 * the first answer, the worker only reads what arrives, then makes one
 * round for all of them.  Never past wait_until (the next deadline or due
 * probe the round computed), and never when anything else needs the loop:
 * the latch, the resolver, a connection slot come free, or a wait set that
 * must be rebuilt.  A result is folded at most HAMON_GATHER_MS later.
 */
static void
hamon_gather(TimestampTz wait_until)
{
	TimestampTz until = Min(wait_until,
							TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														HAMON_GATHER_MS));

	for (;;)
	{
		TimestampTz now;
		TimestampTz stop;
		int			nevents;

		/* the nodes just handled may wait for other events now */
		if (!hamon_sync_touched())
			return;
		if (HamonProbeSlotFreed())
			return;
		now = GetCurrentTimestamp();
		/* a node handled meanwhile may be due sooner (a closed session) */
		stop = Min(until, HamonProbeWakeup());
		if (now >= stop)
			return;
		nevents = WaitEventSetWait(worker.wes,
								   (long) ((stop - now + 999) / 1000),
								   worker.occurred, worker.wes_size,
								   HAMON_WAIT_EVENT);
		if (nevents == 0 || hamon_result_waits(nevents))
		{
			/* unhandled: the wait set reports them again (level-triggered) */
			return;
		}
		if (!hamon_handle_events(nevents))
			return;
	}
}

static void
hamon_flush_results(bool force)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(worker.batch_cxt);
	TimestampTz now = GetCurrentTimestamp();
	HamonBatchWrite write;
	bool		written = false;

	memset(&write, 0, sizeof(write));
	hamon_fold_results(now);
	hamon_review_clusters(now, &write.actions);
	hamon_collect_dirty(&write);

	if (hamon_batch_due(&write, force, now) && hamon_write_batch(&write, now))
	{
		/* the decisions are committed: their actions may start */
		HamonEngineLaunchPlanned(write.actions);
		hamon_review_touched_slots();
		written = true;
	}

	MemoryContextSwitchTo(oldcxt);
	/* results still pending live in batch_cxt: keep it until they are out */
	if (written && worker.records == NIL)
		MemoryContextReset(worker.batch_cxt);
	MemoryContextReset(worker.cycle_cxt);
}

/*
 * probe -> state: folds every finished probe into its node's state
 * (state.c, which queues the events) and keeps a copy of the result for the
 * write, so the node may probe again at once.  A primary that has just gone
 * down makes the other nodes of its cluster be probed at once: their view
 * is what tells a dead primary from a witness that merely lost sight of it.
 */
static void
hamon_fold_results(TimestampTz now)
{
	List	   *ready = HamonProbeTakeReady();
	ListCell   *lc;

	foreach(lc, ready)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);
		HamonRole	old_role = node->role;

		if (!node->result_ready)
			continue;
		node->cluster->touched = true;
		HamonCountProbe(node->result.success);
		if (HamonApplyProbe(node, &worker.events) &&
			node->health == HAMON_HEALTH_DOWN &&
			old_role == HAMON_ROLE_PRIMARY)
			hamon_probe_cluster_now(node, now);
		hamon_keep_record(node, now);
		node->result_ready = false;
	}
	list_free(ready);
}

/* the other nodes of node's cluster are probed at once */
static void
hamon_probe_cluster_now(HamonNode *node, TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, node->cluster->members)
		if (lfirst(lc) != node)
			HamonProbeNow((HamonNode *) lfirst(lc), now);
}

/* a copy of node's result, pending for the next write (in batch_cxt) */
static void
hamon_keep_record(HamonNode *node, TimestampTz now)
{
	HamonProbeRecord *rec = palloc(sizeof(HamonProbeRecord));

	rec->node = node;
	rec->role = node->role;
	rec->result = node->result;
	rec->history = hamon_history_due(node, now);
	rec->written = false;
	rec->stated = false;
	if (node->result.slots_json)
		rec->result.slots_json = pstrdup(node->result.slots_json);
	worker.records = lappend(worker.records, rec);
	if (worker.records_since == 0)
		worker.records_since = now;
}

/*
 * Whether node's probe just folded makes a history row.  With
 * pg_hamonitor.history_interval at 0, every probe does.  Otherwise a probe
 * that says something new (health, role, timeline, success, or the error's
 * SQLSTATE or message changed) does, and so do the probe just before it
 * (hamon_keep_previous) and every probe after it for one history_interval:
 * the LSNs around any change are there at the probes' own resolution.  The
 * other probes make one row per history_interval, at most: the first probe
 * of each interval of the clock (counted from 2000-01-01, so with an
 * interval that divides a day, 10s say, every node's rows fall in the same
 * seconds: :00, :10, ...).
 */
static bool
hamon_history_due(HamonNode *node, TimestampTz now)
{
	const HamonProbeResult *r = &node->result;
	HamonHistoryFacts *prev = &node->hist_prev;
	TimestampTz at = r->probed_at != 0 ? r->probed_at : now;
	int64		interval = (int64) hamon_history_interval * 1000;
	bool		changed;
	bool		keep;

	changed = !node->hist_seen ||
		r->success != prev->success ||
		node->health != node->hist_health ||
		node->role != prev->role ||
		(r->success && r->timeline != node->hist_timeline) ||
		strcmp(r->error_sqlstate, prev->error_sqlstate) != 0 ||
		strcmp(r->error, prev->error) != 0;

	if (interval <= 0)
		keep = true;
	else if (changed)
	{
		keep = true;
		if (node->hist_seen && !node->hist_prev_kept)
			hamon_keep_previous(node, now);
		node->hist_full_until = at + interval;
	}
	else if (at < node->hist_full_until)
		keep = true;
	else
		keep = at / interval != node->hist_kept_at / interval;
	if (keep)
		node->hist_kept_at = at;

	/* this probe is the previous one of the next */
	node->hist_seen = true;
	node->hist_prev_kept = keep;
	node->hist_health = node->health;
	if (r->success)
		node->hist_timeline = r->timeline;
	prev->probed_at = at;
	prev->success = r->success;
	prev->latency_ms = r->latency_ms;
	prev->role = node->role;
	prev->timeline = r->timeline;
	prev->current_lsn = r->current_lsn;
	prev->flush_lsn = r->flush_lsn;
	prev->receive_lsn = r->receive_lsn;
	prev->replay_lsn = r->replay_lsn;
	prev->last_replay_at = r->last_replay_at;
	strlcpy(prev->error_sqlstate, r->error_sqlstate,
			sizeof(prev->error_sqlstate));
	strlcpy(prev->error, r->error, sizeof(prev->error));
	return keep;
}

/*
 * The previous probe of node, not kept when it came, made a history row
 * now that the next one changed something: queued before that one's
 * record, it carries the history columns only (catalog.c writes a node's
 * state from its last record).
 */
static void
hamon_keep_previous(HamonNode *node, TimestampTz now)
{
	const HamonHistoryFacts *prev = &node->hist_prev;
	HamonProbeRecord *rec = palloc0(sizeof(HamonProbeRecord));

	rec->node = node;
	rec->role = prev->role;
	rec->history = true;
	rec->result.probed_at = prev->probed_at;
	rec->result.success = prev->success;
	rec->result.latency_ms = prev->latency_ms;
	rec->result.timeline = prev->timeline;
	rec->result.current_lsn = prev->current_lsn;
	rec->result.flush_lsn = prev->flush_lsn;
	rec->result.receive_lsn = prev->receive_lsn;
	rec->result.replay_lsn = prev->replay_lsn;
	rec->result.last_replay_at = prev->last_replay_at;
	strlcpy(rec->result.error_sqlstate, prev->error_sqlstate,
			sizeof(rec->result.error_sqlstate));
	strlcpy(rec->result.error, prev->error, sizeof(rec->result.error));
	worker.records = lappend(worker.records, rec);
	if (worker.records_since == 0)
		worker.records_since = now;
}

/*
 * decide -> plan: reviews the clusters that heard something, or are still
 * deciding (failover.c); the actions they plan are added to *actions, to be
 * written ahead with the batch.
 */
static void
hamon_review_clusters(TimestampTz now, List **actions)
{
	ListCell   *lc;

	foreach(lc, worker.clusters)
	{
		HamonCluster *cluster = (HamonCluster *) lfirst(lc);

		if (cluster->touched || cluster->deciding)
		{
			HamonReviewCluster(cluster, cluster->members, now,
							   &worker.events, actions);
			/* it may have set a member's flags (hamon_collect_dirty) */
			cluster->flags_pending = true;
		}
	}
}

/*
 * The clusters and nodes whose state in memory is newer than the catalog's.
 * A node's flags change only in its cluster's review (failover.c): the
 * members of the clusters reviewed since the last write are looked at
 * (hamon_review_clusters sets flags_pending), and those of a cluster with a
 * member's flags still unwritten (a failed or skipped write), not every
 * node of the worker in every round.
 */
static void
hamon_collect_dirty(HamonBatchWrite *write)
{
	ListCell   *lc;

	foreach(lc, worker.clusters)
	{
		HamonCluster *cluster = (HamonCluster *) lfirst(lc);
		ListCell   *lc2;

		if (cluster->dirty)
			write->clusters = lappend(write->clusters, cluster);
		if (!cluster->flags_pending)
			continue;
		cluster->flags_pending = false;
		foreach(lc2, cluster->members)
		{
			HamonNode  *node = (HamonNode *) lfirst(lc2);

			if (!node->flags_dirty)
				continue;
			write->flagged = lappend(write->flagged, node);
			cluster->flags_pending = true;
		}
	}
}

/*
 * Whether the batch is to be written now: anything that matters at once,
 * plain results once the oldest has waited HAMON_WRITE_DELAY_MS, nothing
 * before the retry time of a failed write.
 */
static bool
hamon_batch_due(HamonBatchWrite *write, bool force, TimestampTz now)
{
	if (worker.events != NIL || write->actions != NIL ||
		write->clusters != NIL || write->flagged != NIL)
		force = true;
	if (worker.records == NIL && !force)
		return false;
	if (!force && now - worker.records_since <
		(int64) HAMON_WRITE_DELAY_MS * 1000)
		return false;
	if (worker.write_failing && now < worker.write_retry_at)
		return false;
	return true;
}

/*
 * Writes the batch (hamon_write_results) and, once it has committed,
 * forgets what it wrote; returns whether it committed.
 */
static bool
hamon_write_batch(HamonBatchWrite *write, TimestampTz now)
{
	ListCell   *lc;

	write->records = worker.records;
	write->events = worker.events;
	write->flags_written = NIL;
	if (!HamonRunInTransaction(hamon_write_results, write,
							   "write probe results"))
	{
		/*
		 * Nothing of the batch is in the catalog: keep its results and
		 * events for the next write, and run none of its actions, which may
		 * only follow a committed decision (the reviews plan them again
		 * from the state in memory).  Perhaps the extension is gone: look.
		 */
		hamon_keep_failed_batch(now);
		/* an action row it wrote is not there: read what is */
		worker.next_action_refresh = 0;
		return false;
	}
	worker.write_failing = false;
	foreach(lc, write->clusters)
		((HamonCluster *) lfirst(lc))->dirty = false;
	foreach(lc, write->flagged)
		if (list_member_int(write->flags_written,
							((HamonNode *) lfirst(lc))->node_id))
			((HamonNode *) lfirst(lc))->flags_dirty = false;
	worker.events = NIL;
	/* results of nodes whose row was locked wait for the next batch */
	foreach(lc, worker.records)
	{
		HamonProbeRecord *rec = (HamonProbeRecord *) lfirst(lc);

		if (!rec->written)
			continue;
		if (rec->stated)
		{
			rec->node->state_sig = rec->state_sig;
			rec->node->state_full_at = rec->state_full_at;
		}
		worker.records = foreach_delete_current(worker.records, lc);
	}
	worker.records_since = worker.records != NIL ? now : 0;
	return true;
}

/*
 * slots: alarms, and the managed standby slots, of the clusters that heard
 * something, from what was just written (slots.c).
 */
static void
hamon_review_touched_slots(void)
{
	ListCell   *lc;

	foreach(lc, worker.clusters)
	{
		HamonCluster *cluster = (HamonCluster *) lfirst(lc);

		if (cluster->touched)
			HamonReviewSlots(cluster, cluster->members);
		cluster->touched = false;
	}
}

/*
 * After a failed write: the batch's records and events stay pending (in
 * batch_cxt, which is then not reset) and are written with the next batch,
 * HAMON_WRITE_RETRY_MS from now.  Only probe records are ever dropped, the
 * oldest first, when too many pile up: node state is written from memory
 * anyway, and events are never dropped.
 */
static void
hamon_keep_failed_batch(TimestampTz now)
{
	int			excess = list_length(worker.records) - HAMON_MAX_PENDING_RECORDS;

	if (excess > 0)
	{
		int			i;

		for (i = 0; i < excess; i++)
			pfree(list_nth(worker.records, i));
		worker.records = list_delete_first_n(worker.records, excess);
		ereport(WARNING,
				(errmsg("pg_hamonitor worker %d dropped %d probe results it could not write",
						worker.index, excess)));
	}
	worker.write_failing = true;
	worker.write_retry_at = TimestampTzPlusMilliseconds(now,
														HAMON_WRITE_RETRY_MS);
	worker.reload = true;
}

static void
hamon_write_results(void *arg)
{
	HamonBatchWrite *w = (HamonBatchWrite *) arg;
	ListCell   *lc;

	HamonCatalogWriteProbes(w->records, w->clusters, w->flagged, w->events,
							worker.batch_cxt, &w->flags_written);
	/*
	 * Last: the action rows commit with the decision's events, or not at
	 * all.  Failovers first: of two actions planned for one cluster in one
	 * batch, only the first is written (one open action per cluster), and a
	 * fence can wait where a failover should not.
	 */
	foreach(lc, w->actions)
		if (((HamonPlannedAction *) lfirst(lc))->kind == HAMON_ACT_FAILOVER)
			(void) HamonEngineEnqueue((HamonPlannedAction *) lfirst(lc));
	foreach(lc, w->actions)
		if (((HamonPlannedAction *) lfirst(lc))->kind != HAMON_ACT_FAILOVER)
			(void) HamonEngineEnqueue((HamonPlannedAction *) lfirst(lc));
}

/*
 * The clusters' open actions (engine.c): read from the catalog every
 * HAMON_ACTION_REFRESH_MS, and at once when an action worker stopped; an
 * action closed meanwhile may have changed a primary, so the registry is
 * read again and the cluster probed at once.  Open actions whose worker is
 * gone are relaunched.
 */
static void
hamon_actions(TimestampTz now)
{
	if (HamonEngineTick(worker.clusters, now))
		worker.next_action_refresh = 0;
	if (now < worker.next_action_refresh)
		return;
	worker.next_action_refresh = TimestampTzPlusMilliseconds(now,
															 HAMON_ACTION_REFRESH_MS);
	if (HamonEngineRefresh(worker.clusters))
	{
		ListCell   *lc;

		worker.reload = true;
		foreach(lc, worker.nodes)
		{
			/* the action may have created or moved slots: read them too */
			HamonProbeRereadSlots((HamonNode *) lfirst(lc));
			HamonProbeNow((HamonNode *) lfirst(lc), now);
		}
	}
	(void) HamonEngineTick(worker.clusters, now);
}

/*
 * Purges old history a batch at a time, in its own short transaction.
 * While batches come back full the next one follows at the next round;
 * otherwise the purge sleeps HAMON_PURGE_INTERVAL_MS.
 */
static void
hamon_purge(TimestampTz now)
{
	uint64		purged = 0;

	if (now < worker.next_purge_at)
		return;
	if (!HamonRunInTransaction(hamon_purge_txn, &purged,
							   "purge probe history"))
		purged = 0;
	if (purged < (uint64) hamon_history_purge_batch)
	{
		worker.next_purge_at = TimestampTzPlusMilliseconds(now,
														   HAMON_PURGE_INTERVAL_MS);

		/*
		 * Nothing left to purge: fold the event counters of the backends
		 * that are gone (action workers, sessions), so event_count stays
		 * small without an HTTP scrape.  One worker is enough; a transaction
		 * of its own, so a failure costs no purged history.
		 */
		if (worker.index == 0)
			(void) HamonRunInTransaction(hamon_fold_counts_txn, NULL,
										 "fold the event counters");
	}
}

static void
hamon_purge_txn(void *arg)
{
	*(uint64 *) arg = HamonCatalogPurgeHistory();
}

static void
hamon_fold_counts_txn(void *arg)
{
	HamonCatalogFoldEventCounts();
}

/*
 * A full round: does what is due for every node (probe.c), brings its
 * entry in the wait set up to date and counts its next wakeup, in one pass
 * over the nodes.  Rounds in between, which only read answers, do not
 * visit the nodes (HamonProbeRoundDue).
 */
static void
hamon_tick_all(TimestampTz now)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(worker.cycle_cxt);
	ListCell   *lc;

	HamonProbeRoundStart();
	foreach(lc, worker.nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);

		HamonProbeTick(node, now);
		HamonProbeNoteWakeup(node);
		if (!worker.wes_dirty && !hamon_sync_node(node))
			worker.wes_dirty = true;
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Brings the entries of the nodes touched since (probe.c) up to date;
 * returns false, with wes_dirty set, if the wait set must be rebuilt.
 */
static bool
hamon_sync_touched(void)
{
	List	   *touched = HamonProbeTakeTouched();
	ListCell   *lc;

	foreach(lc, touched)
	{
		if (worker.wes_dirty)
			break;
		if (!hamon_sync_node((HamonNode *) lfirst(lc)))
			worker.wes_dirty = true;
	}
	list_free(touched);
	return !worker.wes_dirty;
}

/*
 * Makes the wait set match what the nodes want: rebuilt when a socket came
 * or went beyond the set's slack, adjusted in place otherwise.  A full
 * round (hamon_tick_all) synced every node; other nodes touched since are
 * listed by probe.c.
 */
static void
hamon_sync_wait_set(void)
{
	ListCell   *lc;
	int			nsockets = 0;

	/* the resolver helper was started again: another socket */
	if (HamonResolverGeneration() != worker.resolver_generation)
		worker.wes_dirty = true;
	if (hamon_sync_touched())
		return;

	if (worker.wes)
		FreeWaitEventSet(worker.wes);
	if (worker.occurred)
		pfree(worker.occurred);

	foreach(lc, worker.nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);

		if (node->sock != PGINVALID_SOCKET && node->wait_events != 0)
			nsockets++;
	}
	/* room for every node to reconnect once before the next rebuild */
	worker.wes_size = nsockets + list_length(worker.nodes) + 3;
	worker.wes = HamonCreateWaitEventSet(worker.wes_size);
	worker.occurred = MemoryContextAlloc(TopMemoryContext,
										 sizeof(WaitEvent) * worker.wes_size);
	AddWaitEventToSet(worker.wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(worker.wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET,
					  NULL, NULL);
	worker.wes_used = 2;
	worker.resolver_generation = HamonResolverGeneration();
	if (HamonResolverSocket() != PGINVALID_SOCKET)
	{
		AddWaitEventToSet(worker.wes, WL_SOCKET_READABLE, HamonResolverSocket(),
						  NULL, &resolver_marker);
		worker.wes_used++;
	}
	foreach(lc, worker.nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);

		node->wait_pos = -1;
		node->reg_events = 0;
		node->sock_dirty = false;
		if (node->sock == PGINVALID_SOCKET || node->wait_events == 0)
			continue;
		node->wait_pos = AddWaitEventToSet(worker.wes, node->wait_events,
										   node->sock, NULL, node);
		worker.wes_used++;
		node->reg_events = node->wait_events;
	}
	worker.wes_dirty = false;
}

/*
 * Brings node's entry in the wait set up to date with the events its
 * connection waits for.  A socket closed or replaced leaves its entry
 * behind, stale: the kernel dropped it from epoll when the descriptor
 * closed, and it is never touched again.  The new socket gets a new entry,
 * from the slack; returns false when that has run out (the caller rebuilds
 * the set).
 */
static bool
hamon_sync_node(HamonNode *node)
{
	bool		want = (node->sock != PGINVALID_SOCKET &&
						node->wait_events != 0);

	if (node->wait_pos >= 0 && (!want || node->sock_dirty))
		node->wait_pos = -1;
	node->sock_dirty = false;
	if (!want)
		return true;
	if (node->wait_pos < 0)
	{
		if (worker.wes_used >= worker.wes_size)
			return false;
		node->wait_pos = AddWaitEventToSet(worker.wes, node->wait_events,
										   node->sock, NULL, node);
		worker.wes_used++;
		node->reg_events = node->wait_events;
	}
	else if (node->wait_events != node->reg_events)
	{
		ModifyWaitEvent(worker.wes, node->wait_pos, node->wait_events, NULL);
		node->reg_events = node->wait_events;
	}
	return true;
}

/* milliseconds until the earliest node deadline or probe, or the purge */
static long
hamon_next_timeout(TimestampTz now)
{
	TimestampTz next = Min(worker.next_purge_at, worker.next_action_refresh);
	ListCell   *lc;
	long		ms;

	/* a node waits for a connection slot, and one came free meanwhile */
	if (HamonProbeSlotFreed())
		return 0;
	next = Min(next, HamonProbeWakeup());
	/* results waiting to be written, or to be written again */
	if (worker.write_failing)
		next = Min(next, worker.write_retry_at);
	else if (worker.records_since != 0)
		next = Min(next, TimestampTzPlusMilliseconds(worker.records_since,
													 HAMON_WRITE_DELAY_MS));
	/* a cluster whose primary is down is decided on again soon */
	foreach(lc, worker.clusters)
		if (((HamonCluster *) lfirst(lc))->deciding)
			next = Min(next, TimestampTzPlusMilliseconds(now, 100));
	if (next <= now)
		return 0;
	/* round up, or we would wake just before the deadline and spin */
	ms = (long) ((next - now + 999) / 1000);
	return Min(ms, 60 * 1000L);
}
