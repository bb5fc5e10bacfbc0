/*-------------------------------------------------------------------------
 *
 * engine.c
 *		The action engine: actions on the peers, run beside the probes.
 *
 * Every action the witness takes on its peers (a failover, a manual
 * promotion, a switchover, a fence or unfence) is a row of hamonitor.action
 * before it is anything else, and runs in a dynamic background worker of
 * its own, one per action, never in the probe loop.
 *
 * Why dynamic workers rather than non-blocking steps in the probe worker's
 * wait set: an action is a short sequence of SQL statements on two or three
 * peers, each of which may wait for a connect timeout or a promotion, and
 * whose every step has to be recorded before the next one starts.  Written
 * as callbacks of the probe loop, each step would become a state of a
 * machine per action, with the catalog writes in between scheduled by the
 * same loop; in a process of its own the sequence reads as the sequence it
 * is, waits on its own latch, and whatever it does, the probe loop cannot
 * wait for it: a slow promotion in one cluster delays no probe of another,
 * and two clusters fail over at the same time.  (pg_cron runs its jobs the
 * same way; autoprewarm launches its worker with the same calls.)  The cost
 * is one process per action in flight, bounded by HAMON_MAX_ACTIONS and
 * max_worker_processes; a launch that finds no slot is retried.
 *
 * The catalog row is the intent and the journal:
 *	 - the probe worker writes it in the transaction that records its
 *	   decision, and launches the worker once that has committed (write
 *	   ahead, then act); a manual function hands its request to the worker
 *	   through shared memory, and the worker writes the row in a
 *	   transaction of its own, so the intent survives the caller's rollback
 *	   or cancel;
 *	 - one open action per cluster (a partial unique index): a second
 *	   decision waits until the first is closed, with one exception: a
 *	   'sync' action (housekeeping of synchronous_standby_names, below)
 *	   never holds up a failover or a manual promotion or switchover.  It
 *	   is closed as superseded in the transaction that writes the new
 *	   action, and its worker is stopped once that commits; every action
 *	   worker holds the cluster's advisory lock from the start of its
 *	   action (its 'planned' phase) to its exit (HamonEngineLockCluster),
 *	   so the new action touches no peer before the superseded worker is
 *	   gone: it never writes to a node after the failover started;
 *	 - each phase is committed before the next one touches a peer (within
 *	   a phase, the catalog writes come after its peer steps).  'promote_sent'
 *	   is committed before pg_promote() is sent, so a witness that restarts
 *	   mid-action knows that the candidate may be promoting: it then only
 *	   waits for that candidate (a requested promotion cannot be withdrawn)
 *	   and never chooses another.  A candidate still in recovery after
 *	   promote_timeout leaves the action open and 'stalled': automatic
 *	   promotion in that cluster stays blocked until a human has looked
 *	   (hamonitor.abandon_action), or the candidate shows up as primary.
 *
 * The phases of one action are in sequence.c, the action worker's file;
 * this file is the queue: the rows, the launches, the slots in shared
 * memory, and the manual functions' hand-over.
 *
 * Durability (a cluster under 'quorum', see the README): a 'sync' action
 * sets the primary's synchronous_standby_names to what the catalog wants
 * (hamonitor.synchronous_standby_names) and the standbys' application_name
 * to the name it lists them under; the probe worker plans one when
 * hamonitor.sync_reviews() names the cluster (read with the open actions).
 * A promotion gives the candidate its list for the remaining standbys
 * before promote_sent, and a switchover pins the old primary's list to
 * FIRST 1 (target) before it fences it: no commit is then acknowledged by
 * the new primary alone, nor, during the switchover, by a standby other
 * than the target.
 *
 * The probe worker keeps each of its clusters' open action in memory
 * (HamonEngineRefresh reads them), and relaunches one whose worker is gone
 * (a witness restart, a crash): every phase below can be run again from
 * its start.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/engine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "action.h"
#include "catalog.h"
#include "engine.h"
#include "witness.h"
#include "remote.h"
#include "slots.h"
#include "state.h"

/* a relaunch of an orphaned action waits this long, doubling, up to the max */
#define HAMON_RELAUNCH_FIRST_MS 1000
#define HAMON_RELAUNCH_MAX_MS 30000
/* durability reviews of a worker none of whose clusters has a quorum */
#define HAMON_DURABILITY_IDLE_MS 10000

/* whether the last durability review saw a quorum cluster; the next one */
static bool quorum_seen = true;
static TimestampTz next_durability_review = 0;

static HamonNode *hamon_member(HamonCluster *cluster, int node_id);

static const char *const kind_names[] = {
	"fence", "unfence", "failover", "promote", "switchover", "sync"
};

const char *
HamonActionKindName(HamonActionKind kind)
{
	return kind_names[kind];
}

HamonActionKind
HamonActionKindFromName(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(kind_names); i++)
		if (strcmp(name, kind_names[i]) == 0)
			return (HamonActionKind) i;
	elog(ERROR, "unknown action kind \"%s\"", name);
	return HAMON_ACT_FENCE;		/* keep compiler quiet */
}

/* ---------------------------------------------------------------------
 * Action slots in shared memory
 * --------------------------------------------------------------------- */

/*
 * HamonEngineRunning
 *		Whether a worker runs (or is about to run) action_id.
 */
bool
HamonEngineRunning(int64 action_id)
{
	bool		running = false;
	int			i;

	SpinLockAcquire(&HamonShmem->mutex);
	for (i = 0; i < HAMON_MAX_ACTIONS; i++)
		if (HamonShmem->actions[i].in_use &&
			HamonShmem->actions[i].action_id == action_id)
			running = true;
	SpinLockRelease(&HamonShmem->mutex);
	return running;
}

/*
 * Sends SIGTERM to the workers of this witness's actions: the one that runs
 * action_id, or all of them.  The pids are collected under the spinlock and
 * signalled after it.
 */
static void
hamon_stop_actions(bool all, int64 action_id)
{
	pid_t		pids[HAMON_MAX_ACTIONS];
	int			n = 0;
	int			i;

	SpinLockAcquire(&HamonShmem->mutex);
	for (i = 0; i < HAMON_MAX_ACTIONS; i++)
		if (HamonShmem->actions[i].in_use && HamonShmem->actions[i].pid != 0 &&
			(all || HamonShmem->actions[i].action_id == action_id))
			pids[n++] = HamonShmem->actions[i].pid;
	SpinLockRelease(&HamonShmem->mutex);
	for (i = 0; i < n; i++)
		(void) kill(pids[i], SIGTERM);
}

/*
 * HamonEngineStopAction
 *		Ends the worker that runs action_id, if any (SIGTERM: its waits on
 *		peers honour it, and it exits without a further step).
 */
void
HamonEngineStopAction(int64 action_id)
{
	hamon_stop_actions(false, action_id);
}

/*
 * HamonEngineStopAll
 *		Ends every action worker of this witness (SIGTERM): a witness found
 *		superseded must not finish what it had started; the newer witness
 *		finishes or records it from the replicated catalog.
 */
void
HamonEngineStopAll(void)
{
	hamon_stop_actions(true, 0);
}

/*
 * HamonEngineSupersedeSync
 *		In the caller's transaction, which is about to write an action of
 *		cluster_name that must not wait (a failover, a manual promotion or
 *		switchover; "by" says which, for the record): closes the cluster's
 *		open 'sync' action as superseded.  A 'sync' action on a primary that
 *		died may wait for a connect_timeout and a statement timeout before
 *		it fails; the failover must not.  Returns false if that row is
 *		locked (its worker is recording its end): the caller waits, as for
 *		any open action.  *superseded: the closed action, for
 *		HamonEngineStopAction once the caller has committed; 0 if none.
 */
bool
HamonEngineSupersedeSync(const char *cluster_name, const char *by,
						 int64 *superseded)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		isnull;

	*superseded = 0;
	values[0] = CStringGetTextDatum(cluster_name);
	values[1] = CStringGetTextDatum(by);
	if (SPI_execute_with_args("SELECT action_id, state FROM hamonitor.action"
							  " WHERE cluster_name = $1 AND kind = 'sync'"
							  " AND state IN ('planned', 'running')"
							  " FOR UPDATE SKIP LOCKED",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the sync action of cluster \"%s\"",
			 cluster_name);
	if (SPI_processed == 0)
	{
		/* none open, or one whose row its worker holds: which? */
		if (SPI_execute_with_args("SELECT 1 FROM hamonitor.action"
								  " WHERE cluster_name = $1 AND kind = 'sync'"
								  " AND state IN ('planned', 'running')",
								  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the sync action of cluster \"%s\"",
				 cluster_name);
		return SPI_processed == 0;
	}
	*superseded = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1,
											  &isnull));
	if (SPI_execute_with_args("UPDATE hamonitor.action SET state = 'failed',"
							  " error_sqlstate = '57014',"
							  " outcome = format('superseded by %s: nothing more done', $2),"
							  " finished_at = clock_timestamp()"
							  " WHERE cluster_name = $1 AND kind = 'sync'"
							  " AND state IN ('planned', 'running')",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not close the sync action of cluster \"%s\"",
			 cluster_name);
	HamonCatalogWriteEvent(cluster_name, NULL, "action_superseded",
						   psprintf("sync action " INT64_FORMAT " closed, its worker stopped: %s goes first",
									*superseded, by));
	return true;
}

/*
 * HamonEngineLockCluster
 *		Takes the cluster's advisory lock for the rest of this action
 *		worker's life (a session lock, released at exit): an action does not
 *		start while the worker of a superseded one still runs.  Waits at
 *		most lock_timeout (ERROR).  In a transaction.
 */
void
HamonEngineLockCluster(const char *cluster_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(cluster_name);
	/* the class key keeps it apart from the advisory locks of others */
	if (SPI_execute_with_args("SELECT pg_catalog.pg_advisory_lock(1751215471,"
							  " pg_catalog.hashtext($1))",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock cluster \"%s\" for its action", cluster_name);
}

/*
 * Claims a free slot for action_id (or, with req, for a manual request);
 * returns its index, or -1 if none is free or action_id already has one.
 */
static int
hamon_claim_slot(int64 action_id, const HamonActionRequest *req)
{
	int			found = -1;
	int			i;
	char		user[NAMEDATALEN] = "";

	/* a catalog lookup, which may fail: never under the spinlock */
	if (req)
		strlcpy(user, GetUserNameFromId(GetUserId(), false), sizeof(user));
	SpinLockAcquire(&HamonShmem->mutex);
	for (i = 0; i < HAMON_MAX_ACTIONS; i++)
	{
		HamonActionSlot *s = &HamonShmem->actions[i];

		if (s->in_use && action_id != 0 && s->action_id == action_id)
		{
			found = -1;
			break;
		}
		if (!s->in_use && found < 0)
			found = i;
	}
	if (found >= 0)
	{
		HamonActionSlot *s = &HamonShmem->actions[found];

		memset(s, 0, sizeof(HamonActionSlot));
		s->in_use = true;
		s->action_id = action_id;
		if (req)
		{
			s->requester_waiting = true;
			s->kind = (int) req->kind;
			s->node_id = req->node_id;
			s->old_primary_id = req->old_primary_id;
			s->force = req->force;
			strlcpy(s->cluster_name, req->cluster_name, sizeof(s->cluster_name));
			strlcpy(s->node_name, req->node_name, sizeof(s->node_name));
			strlcpy(s->requested_by, user, sizeof(s->requested_by));
			strlcpy(s->reason, req->reason, sizeof(s->reason));
		}
	}
	SpinLockRelease(&HamonShmem->mutex);
	return found;
}

static void
hamon_free_slot(int slot)
{
	SpinLockAcquire(&HamonShmem->mutex);
	memset(&HamonShmem->actions[slot], 0, sizeof(HamonActionSlot));
	SpinLockRelease(&HamonShmem->mutex);
}

/*
 * Starts an action worker on a claimed slot; on failure frees the slot and
 * returns false.  The launcher's latch is set when the worker stops.
 */
static bool
hamon_launch(int slot, BackgroundWorkerHandle **handle)
{
	BackgroundWorker w;
	MemoryContext oldcxt;
	bool		ok;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_ConsistentState;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_hamonitor");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "HamonActionWorkerMain");
	snprintf(w.bgw_name, BGW_MAXLEN, "pg_hamonitor action %d", slot);
	snprintf(w.bgw_type, BGW_MAXLEN, "pg_hamonitor action");
	w.bgw_main_arg = Int32GetDatum(slot);
	w.bgw_notify_pid = MyProcPid;
	/* the handle outlives the caller's memory context */
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&w, handle);
	MemoryContextSwitchTo(oldcxt);
	if (!ok)
	{
		*handle = NULL;
		hamon_free_slot(slot);
	}
	return ok;
}

/*
 * A worker the postmaster reports stopped whose slot still names the
 * action never ran (a fork that failed: the postmaster forgets a worker
 * that cannot be restarted) or never got to its exit hook: the slot is
 * freed, so that the action can be launched again.
 */
static void
hamon_reap_slot(BackgroundWorkerHandle *handle, int64 action_id)
{
	pid_t		pid;
	int			i;

	if (handle == NULL || GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED)
		return;
	SpinLockAcquire(&HamonShmem->mutex);
	for (i = 0; i < HAMON_MAX_ACTIONS; i++)
	{
		HamonActionSlot *s = &HamonShmem->actions[i];

		if (s->in_use && s->action_id == action_id && s->pid == 0)
			memset(s, 0, sizeof(HamonActionSlot));
	}
	SpinLockRelease(&HamonShmem->mutex);
}

/* ---------------------------------------------------------------------
 * The probe worker's side
 * --------------------------------------------------------------------- */

/*
 * HamonEngineEnqueue
 *		Writes a planned action as an open row of hamonitor.action, unless
 *		its cluster has one already (then the decision waits: nothing is
 *		written, and false is returned).  Runs inside the transaction that records the decision.
 *		On success the cluster remembers the action, to launch it once that
 *		transaction has committed (HamonEngineLaunchPlanned).
 */
bool
HamonEngineEnqueue(HamonPlannedAction *a)
{
	Oid			types[7] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID,
	INT4OID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	int			keep_pid = 0;
	bool		isnull;

	/*
	 * A witness superseded (or not yet checked) since this round began
	 * decides nothing: the guard may have woken the worker in the middle of
	 * its round.
	 */
	if (!HamonWitnessMayAct())
		return false;

	if (a->cluster->action_id != 0)
	{
		int64		closed = 0;
		bool		superseded;

		/* a failover does not wait for a 'sync' action */
		superseded = a->supersedes != 0 &&
			a->supersedes == a->cluster->action_id &&
			HamonEngineSupersedeSync(a->cluster->name,
									 psprintf("the failover to \"%s\"",
											  a->node->node_name),
									 &closed);
		/* only a worker whose action was closed here is stopped */
		a->supersedes = closed;
		if (!superseded)
			return false;
		a->cluster->action_id = 0;
	}
	else
		a->supersedes = 0;
	/*
	 * The decision and its action must outlive a witness crash: flushed
	 * locally.  Not "on": with witness_synchronous that would make the probe
	 * loop wait for the standby witness (a cut link would stall every probe
	 * until the list is emptied, long enough for the standby to see this
	 * witness's sessions go stale).  The action worker's first commit
	 * (sequence.c, synchronous_commit on) waits for it instead, before the
	 * action touches a peer, and that commit's LSN is after this row's.
	 */
	if (SPI_execute("SET LOCAL synchronous_commit = local", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not set synchronous_commit");
	/* the fence spares the witness's own probe session (by pid) */
	if (a->node->conn != NULL &&
		(a->node->conn_state == HAMON_CONN_IDLE ||
		 a->node->conn_state == HAMON_CONN_BUSY))
		keep_pid = PQbackendPID(a->node->conn);

	values[0] = CStringGetTextDatum(a->cluster->name);
	values[1] = CStringGetTextDatum(HamonActionKindName(a->kind));
	values[2] = Int32GetDatum(a->node->node_id);
	values[3] = CStringGetTextDatum(a->node->node_name);
	values[4] = Int32GetDatum(a->cluster->primary_id);
	values[5] = Int32GetDatum(keep_pid);
	if (a->reason)
		values[6] = CStringGetTextDatum(a->reason);
	else
		nulls[6] = 'n';
	if (SPI_execute_with_args("INSERT INTO hamonitor.action (cluster_name, kind,"
							  " node_id, node_name, old_primary_id, keep_pid,"
							  " requested_by, reason)"
							  " VALUES ($1, $2, $3, $4, $5, $6, 'pg_hamonitor', $7)"
							  " ON CONFLICT (cluster_name) WHERE state IN"
							  " ('planned', 'running', 'promote_sent', 'promoted')"
							  " DO NOTHING RETURNING action_id",
							  7, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record the action on cluster \"%s\"",
			 a->cluster->name);
	if (SPI_processed == 0)
		return false;
	a->cluster->action_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc,
														1, &isnull));
	strlcpy(a->cluster->action_state, "planned",
			sizeof(a->cluster->action_state));
	a->cluster->action_stalled = false;
	a->cluster->action_is_sync = (a->kind == HAMON_ACT_SYNC);
	a->cluster->action_node_id = a->node->node_id;
	a->cluster->action_launches = 0;
	a->cluster->action_retry_at = 0;
	return true;
}

/* starts the action of the cluster, with the relaunch backoff */
static void
hamon_launch_cluster_action(HamonCluster *cluster, TimestampTz now)
{
	BackgroundWorkerHandle *handle;
	int			slot;
	int			backoff;

	slot = hamon_claim_slot(cluster->action_id, NULL);
	if (slot < 0 && HamonEngineRunning(cluster->action_id))
		return;
	backoff = Min(HAMON_RELAUNCH_FIRST_MS << Min(cluster->action_launches, 5),
				  HAMON_RELAUNCH_MAX_MS);
	cluster->action_launches++;
	cluster->action_retry_at = TimestampTzPlusMilliseconds(now, backoff);
	if (slot >= 0 && hamon_launch(slot, &handle))
	{
		if (cluster->action_handle)
			pfree(cluster->action_handle);
		cluster->action_handle = handle;
	}
	else
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("pg_hamonitor could not start a worker for action " INT64_FORMAT " on cluster \"%s\"; trying again in %d ms",
						cluster->action_id, cluster->name, backoff),
				 errhint("Raise max_worker_processes: each action in flight takes a background worker, at most %d at once.",
						 HAMON_MAX_ACTIONS)));
}

/*
 * HamonEngineLaunchPlanned
 *		After the decisions' transaction committed: launches the actions it
 *		wrote.
 */
void
HamonEngineLaunchPlanned(List *actions)
{
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;

	foreach(lc, actions)
	{
		HamonPlannedAction *a = (HamonPlannedAction *) lfirst(lc);
		HamonCluster *cluster = a->cluster;

		/* committed: the superseded 'sync' stops, the new action waits for it */
		if (a->supersedes != 0)
			HamonEngineStopAction(a->supersedes);
		if (cluster->action_id != 0 && cluster->action_launches == 0)
			hamon_launch_cluster_action(cluster, now);
	}
}

/*
 * Plans a 'sync' action for each of the clusters with no open action whose
 * primary hamonitor.sync_reviews() names; HamonEngineTick launches it like
 * any open action whose worker is not running.
 */
static void
hamon_plan_sync(List *clusters)
{
	SPITupleTable *rows;
	uint64		nrows;
	uint64		i;

	if (SPI_execute("SELECT cluster_name, primary_node_id, node_name, reason"
					" FROM hamonitor.sync_reviews()", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not review the synchronous standby names");
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (i = 0; i < nrows; i++)
	{
		char	   *name = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
		ListCell   *lc;

		foreach(lc, clusters)
		{
			HamonCluster *cluster = (HamonCluster *) lfirst(lc);
			Oid			types[4] = {TEXTOID, INT4OID, TEXTOID, TEXTOID};
			Datum		values[4];
			bool		isnull;

			if (cluster->action_id != 0 || strcmp(cluster->name, name) != 0)
				continue;
			values[0] = CStringGetTextDatum(name);
			values[1] = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);
			values[2] = CStringGetTextDatum(SPI_getvalue(rows->vals[i],
														 rows->tupdesc, 3));
			values[3] = CStringGetTextDatum(SPI_getvalue(rows->vals[i],
														 rows->tupdesc, 4));
			if (SPI_execute_with_args("INSERT INTO hamonitor.action (cluster_name,"
									  " kind, node_id, node_name, old_primary_id,"
									  " requested_by, reason)"
									  " VALUES ($1, 'sync', $2, $3, $2, 'pg_hamonitor', $4)"
									  " ON CONFLICT (cluster_name) WHERE state IN"
									  " ('planned', 'running', 'promote_sent', 'promoted')"
									  " DO NOTHING RETURNING action_id",
									  4, types, values, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
				elog(ERROR, "could not plan a sync action on cluster \"%s\"", name);
			if (SPI_processed == 0)
				continue;
			cluster->action_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc,
															 1, &isnull));
			strlcpy(cluster->action_state, "planned",
					sizeof(cluster->action_state));
			cluster->action_stalled = false;
			cluster->action_is_sync = true;
			cluster->action_node_id = DatumGetInt32(values[1]);
			cluster->action_launches = 0;
			cluster->action_retry_at = 0;
		}
	}
}

/*
 * The quorum each cluster's primary applied (hamonitor.quorum_applied()),
 * for the failover decision: k, degraded, and which members it lists.
 * Read with the open actions, every few seconds: what counts is the list
 * the primary last applied before it failed, which the catalog keeps.
 */
static bool
hamon_load_quorum(List *clusters)
{
	ListCell   *lc;
	uint64		i;
	bool		any = false;

	if (SPI_execute("SELECT cluster_name, sync_k, degraded, listed"
					" FROM hamonitor.quorum_applied()", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the applied quorums");
	foreach(lc, clusters)
	{
		HamonCluster *cluster = (HamonCluster *) lfirst(lc);
		ListCell   *lc2;

		cluster->sync_k = 0;
		cluster->sync_degraded = false;
		foreach(lc2, cluster->members)
			((HamonNode *) lfirst(lc2))->sync_listed = false;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		d;

			if (strcmp(SPI_getvalue(tup, desc, 1), cluster->name) != 0)
				continue;
			any = true;
			cluster->sync_k = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
			cluster->sync_degraded = DatumGetBool(SPI_getbinval(tup, desc, 3,
																&isnull));
			d = SPI_getbinval(tup, desc, 4, &isnull);
			if (!isnull)
			{
				ArrayType  *arr = DatumGetArrayTypeP(d);
				Datum	   *ids;
				int			nids;
				int			j;

				deconstruct_array(arr, INT4OID, sizeof(int32), true,
								  TYPALIGN_INT, &ids, NULL, &nids);
				for (j = 0; j < nids; j++)
				{
					HamonNode  *n = hamon_member(cluster, DatumGetInt32(ids[j]));

					if (n != NULL)
						n->sync_listed = true;
				}
			}
		}
	}
	return any;
}

/* transaction body of HamonEngineRefresh */
static void
hamon_refresh_txn(void *arg)
{
	List	   *clusters = (List *) arg;
	ListCell   *lc;
	uint64		i;
	TimestampTz now;

	if (SPI_execute("SELECT action_id, cluster_name, state, stalled, node_id,"
					" kind"
					" FROM hamonitor.action WHERE state IN"
					" ('planned', 'running', 'promote_sent', 'promoted')",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the open actions");
	foreach(lc, clusters)
	{
		HamonCluster *cluster = (HamonCluster *) lfirst(lc);
		int64		found = 0;

		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;

			if (strcmp(SPI_getvalue(tup, desc, 2), cluster->name) != 0)
				continue;
			found = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			if (found != cluster->action_id)
			{
				cluster->action_launches = 0;
				cluster->action_retry_at = 0;
			}
			strlcpy(cluster->action_state, SPI_getvalue(tup, desc, 3),
					sizeof(cluster->action_state));
			cluster->action_stalled = DatumGetBool(SPI_getbinval(tup, desc, 4,
																 &isnull));
			cluster->action_node_id = DatumGetInt32(SPI_getbinval(tup, desc, 5,
																  &isnull));
			if (isnull)
				cluster->action_node_id = 0;
			cluster->action_is_sync = (strcmp(SPI_getvalue(tup, desc, 6),
											  "sync") == 0);
		}
		cluster->action_id = found;
		if (found == 0)
			cluster->action_state[0] = '\0';
	}
	/*
	 * The durability reviews (three SQL functions over every cluster) run
	 * with every refresh while a cluster of this worker is under a quorum,
	 * or pg_hamonitor.synchronous says quorum; otherwise every
	 * HAMON_DURABILITY_IDLE_MS, which is then how long a cluster set to
	 * 'quorum' by set_cluster_option() may wait for its first list.  With
	 * hundreds of clusters none of which has a quorum they were a tenth of
	 * what a worker cost.
	 */
	now = GetCurrentTimestamp();
	if (!quorum_seen && hamon_synchronous != HAMON_SYNC_QUORUM &&
		now < next_durability_review)
		return;
	/* degrade = preferred: committed here, before any 'sync' lowers k */
	if (SPI_execute("SELECT hamonitor.review_durability()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not review the durability of the clusters");
	hamon_plan_sync(clusters);
	quorum_seen = hamon_load_quorum(clusters);
	next_durability_review = TimestampTzPlusMilliseconds(now,
														 HAMON_DURABILITY_IDLE_MS);
}

/*
 * HamonEngineRefresh
 *		Reads which of the clusters have an open action.  Returns true if an
 *		action the worker knew of was closed meanwhile: the catalog may
 *		have a new primary, to be reloaded.
 */
bool
HamonEngineRefresh(List *clusters)
{
	List	   *open = NIL;
	ListCell   *lc;
	bool		closed = false;

	foreach(lc, clusters)
	{
		HamonCluster *cluster = (HamonCluster *) lfirst(lc);

		if (cluster->action_id != 0)
			open = lappend(open, cluster);
	}
	if (!HamonRunInTransaction(hamon_refresh_txn, clusters,
							   "read the open actions"))
	{
		list_free(open);
		return false;
	}
	foreach(lc, open)
		if (((HamonCluster *) lfirst(lc))->action_id == 0)
			closed = true;
	list_free(open);
	return closed;
}

/* the node with that id among the cluster's members, or NULL */
static HamonNode *
hamon_member(HamonCluster *cluster, int node_id)
{
	return HamonFindNode(cluster->members, node_id);
}

/*
 * HamonEngineTick
 *		Relaunches every open action of the clusters whose worker is gone
 *		(a witness restart, a crash), with a backoff.  A stalled promotion
 *		is relaunched only once its candidate is seen as a primary: the
 *		worker then records it and goes on.  Returns true if an action
 *		worker seen running before has stopped since: the caller refreshes
 *		what the catalog says.
 */
bool
HamonEngineTick(List *clusters, TimestampTz now)
{
	ListCell   *lc;
	bool		stopped = false;

	foreach(lc, clusters)
	{
		HamonCluster *cluster = (HamonCluster *) lfirst(lc);
		bool		running;

		if (cluster->action_id == 0)
			continue;
		hamon_reap_slot(cluster->action_handle, cluster->action_id);
		running = HamonEngineRunning(cluster->action_id);
		if (cluster->action_running && !running)
			stopped = true;
		cluster->action_running = running;
		if (running || now < cluster->action_retry_at)
			continue;
		if (cluster->action_stalled)
		{
			HamonNode  *c = hamon_member(cluster, cluster->action_node_id);

			if (c == NULL || c->health != HAMON_HEALTH_UP ||
				c->role != HAMON_ROLE_PRIMARY)
				continue;
		}
		hamon_launch_cluster_action(cluster, now);
		cluster->action_running = HamonEngineRunning(cluster->action_id);
	}
	return stopped;
}

/* ---------------------------------------------------------------------
 * The manual functions' side
 * --------------------------------------------------------------------- */

/*
 * The requester's end of the mailbox: it stops waiting; the slot is freed
 * now if the worker has exited, else by the worker when it does.
 */
static void
hamon_requester_done(int slot, BackgroundWorkerHandle *handle)
{
	HamonActionSlot *s = &HamonShmem->actions[slot];
	pid_t		pid;
	bool		never_ran;

	/* a worker that never started frees nothing itself */
	never_ran = handle != NULL &&
		GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED;
	SpinLockAcquire(&HamonShmem->mutex);
	s->requester_waiting = false;
	if (s->worker_exited || (never_ran && s->pid == 0))
		memset(s, 0, sizeof(HamonActionSlot));
	SpinLockRelease(&HamonShmem->mutex);
}

/*
 * The same on an ERROR or FATAL of the requester (PG_ENSURE_ERROR_CLEANUP:
 * it also runs at process exit, where PG_FINALLY would not).
 */
static void
hamon_requester_cleanup(int code, Datum arg)
{
	hamon_requester_done(DatumGetInt32(arg), NULL);
}

/*
 * HamonEngineRequest
 *		Hands a manual request to an action worker and waits for its
 *		outcome: the worker writes the request as an action in a transaction
 *		of its own, so it holds even if this caller rolls back or is
 *		cancelled (a cancel ends only the wait: the action goes on, and its
 *		events and hamonitor.actions say how it ended).  Returns the
 *		outcome's summary; ERROR with the action's SQLSTATE if it failed,
 *		55000 if a promotion was requested and not finished, 53000 if no
 *		worker could be started.  Must not be called holding a lock the
 *		action needs (the cluster row).
 */
text *
HamonEngineRequest(const HamonActionRequest *req)
{
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	int			slot;
	pid_t		pid;
	int64		action_id = 0;
	bool		done = false;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	char	   *state;
	char	   *outcome;
	char	   *sqlstate;
	text	   *result;

	/*
	 * A paired witness that is superseded (or has not yet checked that it
	 * is not) starts no action, manual ones included (witness.c).  Checked
	 * before a slot is claimed: nothing to clean up.
	 */
	if (!HamonWitnessMayAct())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this witness does not act: no %s of node \"%s\" is started",
						HamonActionKindName(req->kind), req->node_name),
				 errhint("See hamonitor.witness_status(): a superseded witness is rebuilt as the standby of the active one.")));

	slot = hamon_claim_slot(0, req);
	if (slot < 0 || !hamon_launch(slot, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a worker for the %s of node \"%s\"",
						HamonActionKindName(req->kind), req->node_name),
				 errhint("Raise max_worker_processes: each action in flight takes a background worker, at most %d at once.",
						 HAMON_MAX_ACTIONS)));
	PG_ENSURE_ERROR_CLEANUP(hamon_requester_cleanup, Int32GetDatum(slot));
	{
		status = WaitForBackgroundWorkerStartup(handle, &pid);
		if (status != BGWH_STARTED && status != BGWH_STOPPED)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("could not start a worker for the %s of node \"%s\"",
							HamonActionKindName(req->kind), req->node_name)));

		/* the row's id, once the worker has written it */
		for (;;)
		{
			bool		exited;

			SpinLockAcquire(&HamonShmem->mutex);
			done = HamonShmem->actions[slot].request_done;
			action_id = HamonShmem->actions[slot].result_action_id;
			exited = HamonShmem->actions[slot].worker_exited;
			SpinLockRelease(&HamonShmem->mutex);
			if (done || exited ||
				GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
				break;
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 10, HAMON_WAIT_EVENT);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (!done)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("the worker for the %s of node \"%s\" stopped before it recorded the request",
							HamonActionKindName(req->kind), req->node_name),
					 errhint("See the server log.")));

		/* then its end; a cancel here leaves the action running */
		(void) WaitForBackgroundWorkerShutdown(handle);
	}
	PG_END_ENSURE_ERROR_CLEANUP(hamon_requester_cleanup, Int32GetDatum(slot));
	hamon_requester_done(slot, handle);

	/* not read-only: a new snapshot, which sees what the worker committed */
	values[0] = Int64GetDatum(action_id);
	if (SPI_execute_with_args("SELECT state, outcome, error_sqlstate"
							  " FROM hamonitor.action WHERE action_id = $1",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not read the outcome of action " INT64_FORMAT, action_id),
				 errdetail("The action ran; a REPEATABLE READ or SERIALIZABLE transaction does not see its row."),
				 errhint("See hamonitor.actions.")));
	state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	outcome = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	sqlstate = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (outcome == NULL)
		outcome = psprintf("action " INT64_FORMAT " is %s", action_id, state);

	if (strcmp(state, "done") == 0)
	{
		result = cstring_to_text(outcome);
		return result;
	}
	if (strcmp(state, "failed") == 0 && sqlstate != NULL && strlen(sqlstate) == 5)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
									   sqlstate[3], sqlstate[4])),
				 errmsg_internal("%s", outcome)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg_internal("%s", outcome),
			 errdetail("Action " INT64_FORMAT " on cluster \"%s\" is %s.",
					   action_id, req->cluster_name, state),
			 errhint("See hamonitor.actions and hamonitor.events.")));
	return NULL;				/* keep compiler quiet */
}
