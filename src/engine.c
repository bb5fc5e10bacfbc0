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
 *	   decision waits until the first is closed;
 *	 - each step is committed before the next touches a peer.  'promote_sent'
 *	   is committed before pg_promote() is sent, so a witness that restarts
 *	   mid-action knows that the candidate may be promoting: it then only
 *	   waits for that candidate (a requested promotion cannot be withdrawn)
 *	   and never chooses another.  A candidate still in recovery after
 *	   promote_timeout leaves the action open and 'stalled': automatic
 *	   promotion in that cluster stays blocked until a human has looked
 *	   (hamonitor.abandon_action), or the candidate shows up as primary.
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
#include "remote.h"
#include "slots.h"
#include "state.h"

/* a relaunch of an orphaned action waits this long, doubling, up to the max */
#define HAMON_RELAUNCH_FIRST_MS 1000
#define HAMON_RELAUNCH_MAX_MS 30000
/* an action worker waits at most this long for a lock */
#define HAMON_ACTION_LOCK_TIMEOUT "10s"

static void hamon_requester_done(int slot);
static HamonNode *hamon_member(HamonCluster *cluster, int node_id);

static const char *const kind_names[] = {
	"fence", "unfence", "failover", "promote", "switchover", "sync"
};

const char *
HamonActionKindName(HamonActionKind kind)
{
	return kind_names[kind];
}

static HamonActionKind
hamon_kind_from_name(const char *name)
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
 * Claims a free slot for action_id (or, with req, for a manual request);
 * returns its index, or -1 if none is free or action_id already has one.
 */
static int
hamon_claim_slot(int64 action_id, const HamonActionRequest *req)
{
	int			found = -1;
	int			i;

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
			strlcpy(s->requested_by, GetUserNameFromId(GetUserId(), false),
					sizeof(s->requested_by));
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
	if (!RegisterDynamicBackgroundWorker(&w, handle))
	{
		hamon_free_slot(slot);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * The probe worker's side
 * --------------------------------------------------------------------- */

/*
 * HamonEngineEnqueue
 *		Writes a planned action as an open row of hamonitor.action, unless
 *		its cluster has one already (then the decision waits: nothing is
 *		written).  Runs inside the transaction that records the decision.
 *		On success the cluster remembers the action, to launch it once that
 *		transaction has committed (HamonEngineLaunchPlanned).
 */
void
HamonEngineEnqueue(HamonPlannedAction *a)
{
	Oid			types[7] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID,
	INT4OID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	int			keep_pid = 0;
	bool		isnull;

	if (a->cluster->action_id != 0)
		return;
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
		return;
	a->cluster->action_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc,
														1, &isnull));
	strlcpy(a->cluster->action_state, "planned",
			sizeof(a->cluster->action_state));
	a->cluster->action_stalled = false;
	a->cluster->action_node_id = a->node->node_id;
	a->cluster->action_launches = 0;
	a->cluster->action_retry_at = 0;
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
	if (slot < 0 || !hamon_launch(slot, &handle))
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
		HamonCluster *cluster = ((HamonPlannedAction *) lfirst(lc))->cluster;

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
static void
hamon_load_quorum(List *clusters)
{
	ListCell   *lc;
	uint64		i;

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
}

/* transaction body of HamonEngineRefresh */
static void
hamon_refresh_txn(void *arg)
{
	List	   *clusters = (List *) arg;
	ListCell   *lc;
	uint64		i;

	if (SPI_execute("SELECT action_id, cluster_name, state, stalled, node_id"
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
		}
		cluster->action_id = found;
		if (found == 0)
			cluster->action_state[0] = '\0';
	}
	/* degrade = preferred: committed here, before any 'sync' lowers k */
	if (SPI_execute("SELECT hamonitor.review_durability()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not review the durability of the clusters");
	hamon_plan_sync(clusters);
	hamon_load_quorum(clusters);
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
	int			slot = hamon_claim_slot(0, req);
	pid_t		pid;
	int64		action_id = 0;
	bool		done = false;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	char	   *state;
	char	   *outcome;
	char	   *sqlstate;
	text	   *result;

	if (slot < 0 || !hamon_launch(slot, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a worker for the %s of node \"%s\"",
						HamonActionKindName(req->kind), req->node_name),
				 errhint("Raise max_worker_processes: each action in flight takes a background worker, at most %d at once.",
						 HAMON_MAX_ACTIONS)));
	PG_TRY();
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
	PG_FINALLY();
	{
		hamon_requester_done(slot);
	}
	PG_END_TRY();

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

/* ---------------------------------------------------------------------
 * The action worker
 * --------------------------------------------------------------------- */

/* one row of hamonitor.action, as the action worker reads it */
typedef struct HamonActionRow
{
	int64		action_id;
	char	   *cluster_name;
	HamonActionKind kind;
	int			node_id;
	char	   *node_name;
	int			old_primary_id;
	int			keep_pid;
	bool		force;
	char	   *requested_by;
	char	   *reason;
	char		state[16];
	bool		stalled;
	TimestampTz promote_sent_at;
	/* this run's own: it sent the promotion request itself */
	bool		sent_here;
	/* what the worker passes from one phase to the next */
	bool		ok;
	XLogRecPtr	final_lsn;
	int			timeline;
	XLogRecPtr	lsn;
	char	   *summary;
} HamonActionRow;

static int	action_slot = -1;
static MemoryContext action_cxt;

static bool hamon_quorum_mode(const char *cluster_name, bool *required);
static char *hamon_listed_name(int node_id);
static bool hamon_set_names_on(HamonActionRow *r, const HamonNodeView *n,
							   const char *names, const char *when,
							   char **err);

/*
 * At exit the action is no longer running; the slot is freed, unless a
 * manual requester still waits to read its mailbox (it frees it then).
 */
static void
hamon_action_exit(int code, Datum arg)
{
	HamonActionSlot *s;

	if (action_slot < 0)
		return;
	s = &HamonShmem->actions[action_slot];
	SpinLockAcquire(&HamonShmem->mutex);
	if (s->requester_waiting)
	{
		s->pid = 0;
		s->action_id = 0;
		s->worker_exited = true;
	}
	else
		memset(s, 0, sizeof(HamonActionSlot));
	SpinLockRelease(&HamonShmem->mutex);
}

/*
 * The requester's end of the mailbox: it stops waiting; the slot is freed
 * now if the worker has exited, else by the worker when it does.
 */
static void
hamon_requester_done(int slot)
{
	HamonActionSlot *s = &HamonShmem->actions[slot];

	SpinLockAcquire(&HamonShmem->mutex);
	s->requester_waiting = false;
	if (s->worker_exited)
		memset(s, 0, sizeof(HamonActionSlot));
	SpinLockRelease(&HamonShmem->mutex);
}

/* reads the row into r (strings in action_cxt) */
static void
hamon_load_row_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	MemoryContext old;

	values[0] = Int64GetDatum(r->action_id);
	if (SPI_execute_with_args("SELECT cluster_name, kind, node_id, node_name,"
							  " old_primary_id, keep_pid, force, requested_by,"
							  " reason, state, stalled, promote_sent_at"
							  " FROM hamonitor.action WHERE action_id = $1",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read action " INT64_FORMAT, r->action_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	old = MemoryContextSwitchTo(action_cxt);
	r->cluster_name = pstrdup(SPI_getvalue(tup, desc, 1));
	r->kind = hamon_kind_from_name(SPI_getvalue(tup, desc, 2));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	r->node_id = isnull ? 0 : DatumGetInt32(d);
	r->node_name = SPI_getvalue(tup, desc, 4) ?
		pstrdup(SPI_getvalue(tup, desc, 4)) : pstrdup("?");
	d = SPI_getbinval(tup, desc, 5, &isnull);
	r->old_primary_id = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 6, &isnull);
	r->keep_pid = isnull ? 0 : DatumGetInt32(d);
	r->force = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	r->requested_by = pstrdup(SPI_getvalue(tup, desc, 8));
	r->reason = SPI_getvalue(tup, desc, 9) ?
		pstrdup(SPI_getvalue(tup, desc, 9)) : NULL;
	strlcpy(r->state, SPI_getvalue(tup, desc, 10), sizeof(r->state));
	r->stalled = DatumGetBool(SPI_getbinval(tup, desc, 11, &isnull));
	d = SPI_getbinval(tup, desc, 12, &isnull);
	r->promote_sent_at = isnull ? 0 : DatumGetTimestampTz(d);
	MemoryContextSwitchTo(old);
}

/*
 * Moves the row to state (and outcome, SQLSTATE, stalled when given), in
 * the current transaction; r follows.
 */
static void
hamon_set_state(HamonActionRow *r, const char *state, const char *outcome,
				const char *sqlstate, int stalled)
{
	Oid			types[5] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[5];
	char		nulls[5] = "     ";

	values[0] = Int64GetDatum(r->action_id);
	values[1] = CStringGetTextDatum(state);
	if (outcome)
		values[2] = CStringGetTextDatum(outcome);
	else
		nulls[2] = 'n';
	if (sqlstate)
		values[3] = CStringGetTextDatum(sqlstate);
	else
		nulls[3] = 'n';
	values[4] = Int32GetDatum(stalled);
	if (SPI_execute_with_args("UPDATE hamonitor.action SET state = $2,"
							  " outcome = coalesce($3, outcome),"
							  " error_sqlstate = coalesce($4, error_sqlstate),"
							  " stalled = CASE $5 WHEN 1 THEN true WHEN 0 THEN false"
							  "   ELSE stalled END,"
							  " attempts = attempts + (state = 'planned')::integer,"
							  " promote_sent_at = CASE WHEN $2 = 'promote_sent'"
							  "   THEN coalesce(promote_sent_at, clock_timestamp())"
							  "   ELSE promote_sent_at END,"
							  " finished_at = CASE WHEN $2 IN ('done', 'failed')"
							  "   THEN clock_timestamp() END"
							  " WHERE action_id = $1",
							  5, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update action " INT64_FORMAT, r->action_id);
	strlcpy(r->state, state, sizeof(r->state));
}

/* fails the action: event, state failed, outcome and SQLSTATE */
static void
hamon_fail(HamonActionRow *r, const char *event_kind, const char *sqlstate,
		   const char *message)
{
	HamonCatalogWriteEvent(r->cluster_name, r->node_name, event_kind, message);
	hamon_set_state(r, "failed", message, sqlstate, -1);
}

/* the cluster's current view; cv->primary is the primary when planned */
static void
hamon_action_view(HamonActionRow *r, HamonClusterView *cv, int *target)
{
	int			primary_id;
	int			timeline;
	int			i;

	HamonCatalogReadCluster(r->cluster_name, &primary_id, &timeline);
	HamonCatalogLoadView(r->cluster_name, r->old_primary_id, timeline, cv);
	*target = -1;
	for (i = 0; i < cv->nnodes; i++)
		if (cv->nodes[i].node_id == r->node_id)
			*target = i;
	if (*target < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node \"%s\" is no longer registered in cluster \"%s\"",
						r->node_name, r->cluster_name)));
}

static void
hamon_target_of(const HamonActionRow *r, const HamonNodeView *n,
				HamonTarget *t)
{
	t->cluster_name = r->cluster_name;
	t->node_name = n->node_name;
	t->conninfo = n->conninfo;
}

/*
 * Phase "planned" of every kind, in one transaction: the decision is
 * still current (the cluster's primary is the one it was planned against;
 * the cluster row is locked for that check, as every writer of it does),
 * the action is announced by its event, and it is marked running.
 */
static void
hamon_claim_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	int			primary_id;
	int			timeline;

	r->ok = false;
	if (!HamonCatalogLockCluster(r->cluster_name, false, &primary_id, &timeline))
		return;
	if ((r->kind == HAMON_ACT_FAILOVER || r->kind == HAMON_ACT_PROMOTE ||
		 r->kind == HAMON_ACT_SWITCHOVER || r->kind == HAMON_ACT_SYNC) &&
		primary_id != r->old_primary_id)
	{
		hamon_fail(r, "action_stale", "55000",
				   psprintf("the primary of cluster \"%s\" changed since the %s was decided: nothing done",
							r->cluster_name, HamonActionKindName(r->kind)));
		return;
	}
	if (r->kind != HAMON_ACT_FENCE && r->kind != HAMON_ACT_UNFENCE)
		HamonCatalogWriteEvent(r->cluster_name, r->node_name,
							   HamonActionKindName(r->kind),
							   r->reason ? r->reason : "");
	hamon_set_state(r, "running", NULL, NULL, -1);
	r->ok = true;
}

/* phase "running" of a fence or unfence: the step, its event, done */
static void
hamon_fence_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	HamonClusterView cv;
	HamonTarget t;
	int			target;
	char	   *err = NULL;
	bool		ok;

	hamon_action_view(r, &cv, &target);
	hamon_target_of(r, &cv.nodes[target], &t);
	if (r->kind == HAMON_ACT_FENCE)
	{
		HamonFenceArgs f = {&t, r->keep_pid, InvalidXLogRecPtr};

		ok = HamonTry(HamonStepFence, &f, &err);
		if (ok)
			HamonCatalogWriteEvent(r->cluster_name, r->node_name, "fenced",
								   psprintf("%s: made read-only (default_transaction_read_only) and its client sessions ended",
											r->reason ? r->reason : "stale primary"));
	}
	else
	{
		ok = HamonTry(HamonStepUnfence, &t, &err);
		if (ok)
			HamonCatalogWriteEvent(r->cluster_name, r->node_name, "unfence_done",
								   pstrdup("default_transaction_read_only reset"));
	}
	if (ok)
		hamon_set_state(r, "done", r->kind == HAMON_ACT_FENCE ? "fenced" : "unfenced",
						NULL, -1);
	else
		hamon_fail(r, r->kind == HAMON_ACT_FENCE ? "fence_failed" : "unfence_failed",
				   "08006", psprintf("%s%s%s", r->reason ? r->reason : "",
									 r->reason ? ": " : "", err));
}

/* what a DBA runs to make the old primary a standby of the new one */
static char *
hamon_rejoin_steps(const HamonNodeView *old, const HamonNodeView *target)
{
	return psprintf("to rejoin \"%s\" as a standby of \"%s\": pg_ctl stop -m fast; "
					"CHECKPOINT on the new primary; pg_rewind --target-pgdata=$PGDATA --source-server='%s'; "
					"touch $PGDATA/standby.signal; set primary_conninfo to \"%s\" "
					"and default_transaction_read_only = off in postgresql.auto.conf; "
					"pg_ctl start. The witness lifts the fence once it sees the node as a standby.",
					old->node_name, target->node_name,
					HamonMaskConninfo(target->conninfo), target->node_name);
}

/* records on node_id whether the witness holds it fenced */
static void
hamon_set_fenced(int node_id, bool fenced)
{
	Oid			types[2] = {INT4OID, BOOLOID};
	Datum		values[2];

	values[0] = Int32GetDatum(node_id);
	values[1] = BoolGetDatum(fenced);
	if (SPI_execute_with_args("UPDATE hamonitor.node_state SET fenced = $2"
							  " WHERE node_id = $1", 2, types, values, NULL,
							  false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the fence of node %d", node_id);
}

/*
 * Phase "running" of a switchover: fence the old primary, let the target
 * replay all it wrote, then promote_sent (committed before the request).
 * Until the request is sent every step is compensated: a fence that failed
 * or half-applied is lifted again, and if even that fails the catalog says
 * the old primary is fenced, which is what it then is.
 */
static void
hamon_switchover_prepare_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	HamonClusterView cv;
	HamonTarget old_t;
	HamonTarget t;
	int			target;
	char	   *err = NULL;
	HamonFenceArgs f;
	HamonReplayArgs w;

	r->ok = false;
	hamon_action_view(r, &cv, &target);
	if (cv.primary < 0)
	{
		hamon_fail(r, "switchover_failed", "55000",
				   pstrdup("the old primary is no longer registered: nothing done"));
		return;
	}
	hamon_target_of(r, &cv.nodes[cv.primary], &old_t);
	hamon_target_of(r, &cv.nodes[target], &t);

	/*
	 * Under quorum, from here to the end only the target acknowledges the
	 * old primary's commits: none after the final LSN can then rest on
	 * another standby alone.
	 */
	{
		bool		required;

		if (hamon_quorum_mode(r->cluster_name, &required))
		{
			char	   *pin = psprintf("FIRST 1 (\"%s\")",
									   hamon_listed_name(r->node_id));

			if (!hamon_set_names_on(r, &cv.nodes[cv.primary], pin,
									", pinned to the switchover's target",
									&err))
			{
				hamon_fail(r, "switchover_failed",
						   strstr(err, "permission denied") ? "42501" : "55000",
						   psprintf("switchover to node \"%s\" not started: %s",
									r->node_name, err));
				return;
			}
		}
	}

	f.target = &old_t;
	f.keep_pid = 0;
	f.lsn = InvalidXLogRecPtr;
	if (HamonTry(HamonStepFence, &f, &err))
	{
		w.target = &t;
		w.lsn = f.lsn;
		w.timeout_ms = hamon_switchover_timeout;
		if (HamonTry(HamonStepWaitReplay, &w, &err))
		{
			r->final_lsn = f.lsn;
			r->ok = true;
			return;
		}
	}

	/* nothing was promoted: give the cluster its writable primary back */
	{
		char	   *unfence_err = NULL;
		bool		unfenced = HamonTry(HamonStepUnfence, &old_t, &unfence_err);

		if (!unfenced)
			hamon_set_fenced(cv.nodes[cv.primary].node_id, true);
		hamon_fail(r, "switchover_failed", "55000",
				   psprintf("switchover to node \"%s\" failed: %s; %s",
							r->node_name, err,
							unfenced ?
							psprintf("the old primary \"%s\" was made writable again",
									 old_t.node_name) :
							psprintf("the old primary \"%s\" could not be made writable again (%s): it is read-only and recorded as fenced; lift it with ALTER SYSTEM RESET default_transaction_read_only and a reload",
									 old_t.node_name, unfence_err)));
	}
}

/* commits promote_sent: from here on the candidate may be promoting */
static void
hamon_promote_sent_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;

	hamon_set_state(r, "promote_sent", NULL, NULL, -1);
	r->sent_here = true;
}

/*
 * Phase "promote_sent": sends the request (if this run committed
 * promote_sent itself) or only waits for it (a run resumed after a
 * restart must not send it again: the candidate may have restarted since,
 * and the cluster moved on), until promote_timeout after the request.
 * Promoted: recorded, state promoted.  Not requested at all: failed, and
 * another decision may follow.  Requested and not finished: the action
 * stays open, stalled, and an event asks for a human.
 */
static void
hamon_promote_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	HamonClusterView cv;
	HamonTarget t;
	int			target;
	char	   *err = NULL;
	bool		requested = !r->sent_here;
	int			timeout_ms = hamon_promote_timeout * 1000;
	HamonPromoteArgs p;

	hamon_action_view(r, &cv, &target);
	hamon_target_of(r, &cv.nodes[target], &t);
	if (!r->sent_here && r->promote_sent_at != 0)
	{
		int64		left = hamon_promote_timeout * INT64CONST(1000000) -
		(GetCurrentTimestamp() - r->promote_sent_at);

		timeout_ms = (int) Max(left / 1000, 0);
	}
	p.target = &t;
	p.send = r->sent_here;
	p.timeout_ms = timeout_ms;
	p.requested = &requested;
	p.timeline = &r->timeline;
	p.lsn = &r->lsn;
	if (HamonTry(HamonStepPromote, &p, &err))
	{
		HamonCatalogPromoted(r->cluster_name, r->node_id, r->timeline);
		HamonCatalogWriteEvent(r->cluster_name, r->node_name, "promoted",
							   psprintf("now primary on timeline %d at %X/%X",
										r->timeline, LSN_FORMAT_ARGS(r->lsn)));
		hamon_set_state(r, "promoted", NULL, NULL, 0);
		return;
	}
	if (!requested)
	{
		char	   *undo = "";

		/* nothing was promoted: a switchover gives the old primary back */
		if (r->kind == HAMON_ACT_SWITCHOVER && cv.primary >= 0)
		{
			HamonTarget old_t;
			char	   *unfence_err = NULL;

			hamon_target_of(r, &cv.nodes[cv.primary], &old_t);
			if (HamonTry(HamonStepUnfence, &old_t, &unfence_err))
				undo = psprintf("; the old primary \"%s\" was made writable again",
								old_t.node_name);
			else
			{
				hamon_set_fenced(cv.nodes[cv.primary].node_id, true);
				undo = psprintf("; the old primary \"%s\" could not be made writable again (%s): it is read-only and recorded as fenced",
								old_t.node_name, unfence_err);
			}
		}
		hamon_fail(r, "promote_failed", "55000",
				   psprintf("promotion of node \"%s\" not requested: %s%s",
							r->node_name, err, undo));
		return;
	}

	/*
	 * Requested: the candidate may still become primary, so a switchover's
	 * old primary is never made writable again from here on.
	 */
	if (r->kind == HAMON_ACT_SWITCHOVER && cv.primary >= 0)
		hamon_set_fenced(cv.nodes[cv.primary].node_id, true);
	if (!r->stalled)
		HamonCatalogWriteEvent(r->cluster_name, r->node_name, "promote_stalled",
							   psprintf("promotion requested %s but not finished within %d s: %s; "
										"automatic promotion in cluster \"%s\" is blocked until the node is seen as primary "
										"or a DBA who knows it is not promoting runs hamonitor.abandon_action('%s')",
										r->promote_sent_at ? timestamptz_to_str(r->promote_sent_at) : "now",
										hamon_promote_timeout, err,
										r->cluster_name, r->cluster_name));
	hamon_set_state(r, "promote_sent",
					psprintf("promotion of node \"%s\" requested, not finished within %d s: %s",
							 r->node_name, hamon_promote_timeout, err),
					NULL, 1);
	r->stalled = true;
}

static void
hamon_set_repointed(int node_id, bool ok)
{
	Oid			types[] = {INT4OID, BOOLOID};
	Datum		values[2];

	values[0] = Int32GetDatum(node_id);
	values[1] = BoolGetDatum(ok);
	if (SPI_execute_with_args("UPDATE hamonitor.node_state SET"
							  " repointed_at = CASE WHEN $2 THEN now() END,"
							  " needs_rejoin = NOT $2 WHERE node_id = $1",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the repointing of node %d", node_id);
}

/*
 * PostgreSQL 15 keeps no logical slot on a standby: every logical slot the
 * old primary had is gone.  One event lists them with their last confirmed
 * position, as last probed, so their consumers know where to resync from.
 */
static void
hamon_report_lost_logical_slots(const char *cluster_name,
								const HamonClusterView *cv)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	char	   *lost;

	if (cv->primary < 0)
		return;
	values[0] = Int32GetDatum(cv->nodes[cv->primary].node_id);
	if (SPI_execute_with_args("SELECT string_agg(format('%s (confirmed_flush_lsn %s, plugin %s)',"
							  " e->>'slot_name', e->>'confirmed_flush_lsn', e->>'plugin'), ', '"
							  " ORDER BY e->>'slot_name')"
							  " FROM hamonitor.node_state s,"
							  " jsonb_array_elements(coalesce(s.slots, '[]')) e"
							  " WHERE s.node_id = $1 AND e->>'slot_type' = 'logical'",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the slots of the old primary");
	lost = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (lost != NULL)
		HamonCatalogWriteEvent(cluster_name, cv->nodes[cv->primary].node_name,
							   "logical_slots_lost",
							   psprintf("logical slots of the old primary, not on the new one: %s; "
										"their consumers must resync", lost));
}

/*
 * Phase "promoted": the rest of the sequence, run again from its start if
 * the worker stops in the middle (each step is idempotent): logical slots
 * lost, managed slots on the new primary, every other standby repointed
 * (a standby that cannot be is reported, never a reason to undo anything),
 * for a switchover the old primary recorded fenced; then done, with a
 * summary for the caller.
 */
static void
hamon_finish_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	HamonClusterView cv;
	HamonTarget new_t;
	StringInfoData summary;
	int			target;
	int			i;
	bool		quorum;
	bool		required;

	hamon_action_view(r, &cv, &target);
	hamon_target_of(r, &cv.nodes[target], &new_t);
	if (r->kind != HAMON_ACT_SWITCHOVER)
		hamon_report_lost_logical_slots(r->cluster_name, &cv);
	/* the standbys' slots exist before they are pointed at the new primary */
	HamonCreateManagedSlots(r->cluster_name, &new_t, r->node_id);

	quorum = hamon_quorum_mode(r->cluster_name, &required);
	initStringInfo(&summary);
	appendStringInfo(&summary, "promoted \"%s\"", r->node_name);
	if (r->timeline > 0)
		appendStringInfo(&summary, " (timeline %d)", r->timeline);
	for (i = 0; i < cv.nnodes; i++)
	{
		const HamonNodeView *n = &cv.nodes[i];
		HamonRepointArgs rp;
		HamonTarget t;
		char	   *err;

		/*
		 * A node never reached (role unknown: a wrong CA, host name or
		 * password from the start) may well be a standby of the old primary:
		 * it is reported as not repointed rather than skipped silently.
		 */
		if (i == target || i == cv.primary || n->sysid_mismatch ||
			(n->role != HAMON_ROLE_STANDBY && n->role != HAMON_ROLE_UNKNOWN))
			continue;
		if (n->health != HAMON_HEALTH_UP)
		{
			HamonCatalogWriteEvent(r->cluster_name, n->node_name, "repoint_failed",
								   psprintf("not reachable: repoint it to \"%s\" by hand",
											r->node_name));
			hamon_set_repointed(n->node_id, false);
			continue;
		}
		hamon_target_of(r, n, &t);
		rp.target = &t;
		rp.new_primary_conninfo = new_t.conninfo;
		/* under quorum it streams under the name the list has for it */
		rp.application_name = quorum ? hamon_listed_name(n->node_id) : NULL;
		rp.masked = NULL;
		if (HamonTry(HamonStepRepoint, &rp, &err))
		{
			HamonCatalogWriteEvent(r->cluster_name, n->node_name, "repointed",
								   psprintf("primary_conninfo now %s", rp.masked));
			hamon_set_repointed(n->node_id, true);
			appendStringInfo(&summary, "; repointed \"%s\"", n->node_name);
		}
		else
		{
			HamonCatalogWriteEvent(r->cluster_name, n->node_name, "repoint_failed", err);
			hamon_set_repointed(n->node_id, false);
			appendStringInfo(&summary, "; could not repoint \"%s\"", n->node_name);
		}
	}

	if (r->kind == HAMON_ACT_SWITCHOVER && cv.primary >= 0)
	{
		hamon_set_fenced(cv.nodes[cv.primary].node_id, true);
		HamonCatalogWriteEvent(r->cluster_name, cv.nodes[cv.primary].node_name,
							   "fenced",
							   psprintf("old primary left read-only after the switchover to \"%s\"; %s",
										r->node_name,
										hamon_rejoin_steps(&cv.nodes[cv.primary],
														   &cv.nodes[target])));
	}
	hamon_set_state(r, "done", summary.data, NULL, -1);
	/* the probe workers reload the new primary once this commits */
	HamonRegistryChanged();
}

/* ---------------------------------------------------------------------
 * Durability steps (a cluster under 'quorum')
 * --------------------------------------------------------------------- */

/* whether the cluster runs under 'quorum'; *required: degrade = required */
static bool
hamon_quorum_mode(const char *cluster_name, bool *required)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	bool		quorum;

	values[0] = CStringGetTextDatum(cluster_name);
	if (SPI_execute_with_args("SELECT hamonitor.cluster_synchronous(c.cluster_name) = 'quorum',"
							  " c.degrade_policy = 'required'"
							  " FROM hamonitor.cluster c WHERE c.cluster_name = $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the durability of cluster \"%s\"", cluster_name);
	if (SPI_processed != 1)
		return false;
	quorum = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	*required = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 2, &isnull));
	return quorum;
}

/* the synchronous_standby_names wanted on primary_id (a candidate, maybe) */
static char *
hamon_wanted_names(const char *cluster_name, int primary_id)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	char	   *names;

	values[0] = CStringGetTextDatum(cluster_name);
	values[1] = Int32GetDatum(primary_id);
	if (SPI_execute_with_args("SELECT hamonitor.synchronous_standby_names($1, $2)",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not compute the synchronous_standby_names of cluster \"%s\"",
			 cluster_name);
	names = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return names ? names : pstrdup("");
}

/* the name the node is listed under (its managed slot name) */
static char *
hamon_listed_name(int node_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(node_id);
	if (SPI_execute_with_args("SELECT slot_name FROM hamonitor.node WHERE node_id = $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "node %d is no longer registered", node_id);
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* records the list the witness set, so that 'off' empties only that */
static void
hamon_record_witness_names(const char *cluster_name, const char *names)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(cluster_name);
	values[1] = CStringGetTextDatum(names);
	if (SPI_execute_with_args("UPDATE hamonitor.cluster SET witness_standby_names = $2"
							  " WHERE cluster_name = $1",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the synchronous_standby_names of cluster \"%s\"",
			 cluster_name);
}

/* a failed synchronous_standby_names step, with the grant it may lack */
static char *
hamon_sync_error(const char *node_name, const char *names, const char *err)
{
	return psprintf("could not set synchronous_standby_names = '%s' on \"%s\": %s%s",
					names, node_name, err,
					strstr(err, "permission denied") ?
					"; the witness's role needs GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names (and EXECUTE on pg_reload_conf()) on the peers" : "");
}

/* sets names on n, and records the event; false with *err if it failed */
static bool
hamon_set_names_on(HamonActionRow *r, const HamonNodeView *n,
				   const char *names, const char *when, char **err)
{
	HamonTarget t;
	HamonSyncNamesArgs a;

	hamon_target_of(r, n, &t);
	a.target = &t;
	a.names = names;
	if (!HamonTry(HamonStepSetSyncNames, &a, err))
	{
		*err = hamon_sync_error(n->node_name, names, *err);
		return false;
	}
	hamon_record_witness_names(r->cluster_name, names);
	HamonCatalogWriteEvent(r->cluster_name, n->node_name,
						   "synchronous_standby_names_set",
						   psprintf("'%s'%s", names, when));
	return true;
}

/*
 * Phase "running" of a 'sync' action: every standby the quorum counts that
 * is up streams under the name it is listed under (its primary_conninfo's
 * application_name, set first, so that a new list never waits for a name
 * nobody streams under yet), then the primary gets the wanted list.
 */
static void
hamon_sync_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	HamonClusterView cv;
	int			target;
	bool		required;
	char	   *names;
	char	   *err = NULL;
	StringInfoData summary;

	hamon_action_view(r, &cv, &target);
	initStringInfo(&summary);
	if (hamon_quorum_mode(r->cluster_name, &required))
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		int			nlisted;
		int		   *ids;
		char	  **apps;
		int			i;

		values[0] = CStringGetTextDatum(r->cluster_name);
		if (SPI_execute_with_args("SELECT node_id, application_name"
								  " FROM hamonitor.quorum_standbys($1)",
								  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not list the quorum of cluster \"%s\"", r->cluster_name);
		nlisted = (int) SPI_processed;
		ids = palloc(sizeof(int) * Max(nlisted, 1));
		apps = palloc(sizeof(char *) * Max(nlisted, 1));
		for (i = 0; i < nlisted; i++)
		{
			bool		isnull;

			ids[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 1, &isnull));
			apps[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		}
		for (i = 0; i < nlisted; i++)
		{
			const HamonNodeView *n = NULL;
			HamonRepointArgs rp;
			HamonTarget t;
			int			j;

			for (j = 0; j < cv.nnodes; j++)
				if (cv.nodes[j].node_id == ids[i])
					n = &cv.nodes[j];
			if (n == NULL || n->health != HAMON_HEALTH_UP ||
				n->role != HAMON_ROLE_STANDBY)
				continue;
			hamon_target_of(r, n, &t);
			rp.target = &t;
			rp.new_primary_conninfo = NULL;
			rp.application_name = apps[i];
			rp.masked = NULL;
			rp.changed = false;
			if (!HamonTry(HamonStepRepoint, &rp, &err))
				HamonCatalogWriteEvent(r->cluster_name, n->node_name,
									   "application_name_failed",
									   psprintf("could not set application_name '%s' in its primary_conninfo: %s",
												apps[i], err));
			else if (rp.changed)
			{
				HamonCatalogWriteEvent(r->cluster_name, n->node_name,
									   "application_name_set",
									   psprintf("primary_conninfo now %s", rp.masked));
				appendStringInfo(&summary, "application_name of \"%s\" set; ",
								 n->node_name);
			}
		}
	}

	names = hamon_wanted_names(r->cluster_name, r->node_id);
	if (!hamon_set_names_on(r, &cv.nodes[target], names, "", &err))
	{
		hamon_fail(r, "synchronous_standby_names_failed",
				   strstr(err, "permission denied") ? "42501" : "55000", err);
		return;
	}
	appendStringInfo(&summary, "synchronous_standby_names = '%s'", names);
	hamon_set_state(r, "done", summary.data, NULL, -1);
}

/*
 * Before a promotion is requested, under 'quorum': the candidate gets the
 * list for the standbys that remain (the old primary among them, for when
 * it is rejoined), so that it never acknowledges a commit alone.  Under
 * degrade = required a candidate that cannot be given it is not promoted
 * (the action fails, nothing was done, and the decision comes again);
 * under preferred it is promoted anyway, on record.
 */
static void
hamon_candidate_sync_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	HamonClusterView cv;
	int			target;
	bool		required;
	char	   *names;
	char	   *err = NULL;

	r->ok = true;
	if (!hamon_quorum_mode(r->cluster_name, &required))
		return;
	hamon_action_view(r, &cv, &target);
	names = hamon_wanted_names(r->cluster_name, r->node_id);
	if (hamon_set_names_on(r, &cv.nodes[target], names, ", before its promotion",
						   &err))
		return;
	if (!required)
	{
		HamonCatalogWriteEvent(r->cluster_name, r->node_name,
							   "synchronous_standby_names_failed",
							   psprintf("%s; promoting it anyway (degrade = preferred): it may acknowledge commits alone until the witness sets the list",
										err));
		return;
	}
	r->ok = false;
	hamon_fail(r, "promote_failed", strstr(err, "permission denied") ? "42501" : "55000",
			   psprintf("%s; \"%s\" not promoted (degrade = required): it would acknowledge commits alone",
						err, r->node_name));
}

/* a manual request, from the slot, written as an action row */
static void
hamon_insert_request_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;
	HamonActionSlot *s = &HamonShmem->actions[action_slot];
	Oid			types8[8] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID,
	BOOLOID, TEXTOID, TEXTOID};
	Datum		values[8];
	bool		isnull;

	values[0] = CStringGetTextDatum(s->cluster_name);
	values[1] = CStringGetTextDatum(HamonActionKindName((HamonActionKind) s->kind));
	values[2] = Int32GetDatum(s->node_id);
	values[3] = CStringGetTextDatum(s->node_name);
	values[4] = Int32GetDatum(s->old_primary_id);
	values[5] = BoolGetDatum(s->force);
	values[6] = CStringGetTextDatum(s->requested_by);
	values[7] = CStringGetTextDatum(s->reason);
	if (SPI_execute_with_args("INSERT INTO hamonitor.action (cluster_name, kind,"
							  " node_id, node_name, old_primary_id, force,"
							  " requested_by, reason)"
							  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
							  " ON CONFLICT (cluster_name) WHERE state IN"
							  " ('planned', 'running', 'promote_sent', 'promoted')"
							  " DO NOTHING RETURNING action_id",
							  8, types8, values, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record the request");
	if (SPI_processed == 1)
	{
		r->action_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1,
												   &isnull));
		return;
	}

	/* another action is open on the cluster: the request is refused, on record */
	if (SPI_execute_with_args("INSERT INTO hamonitor.action (cluster_name, kind,"
							  " node_id, node_name, old_primary_id, force,"
							  " requested_by, reason, state, finished_at,"
							  " error_sqlstate, outcome)"
							  " SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'failed',"
							  "  clock_timestamp(), '55006',"
							  "  format('cluster %s has action %s (%s, %s) in progress: nothing done',"
							  "   $1, o.action_id, o.kind, o.state)"
							  " FROM hamonitor.action o WHERE o.cluster_name = $1"
							  " AND o.state IN ('planned', 'running', 'promote_sent', 'promoted')"
							  " RETURNING action_id",
							  8, types8, values, NULL, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not record the refused request");
	r->action_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1,
											   &isnull));
}

/* runs the action r->action_id from wherever its row says it stands */
static void
hamon_run_action(HamonActionRow *r)
{
	for (;;)
	{
		if (!HamonRunInTransaction(hamon_load_row_txn, r, "read an action"))
			return;

		if (strcmp(r->state, "planned") == 0)
		{
			if (!HamonRunInTransaction(hamon_claim_txn, r, "start an action") ||
				!r->ok)
				return;
			continue;
		}
		if (strcmp(r->state, "running") == 0)
		{
			if (r->kind == HAMON_ACT_FENCE || r->kind == HAMON_ACT_UNFENCE)
			{
				(void) HamonRunInTransaction(hamon_fence_txn, r, "fence a node");
				return;
			}
			if (r->kind == HAMON_ACT_SYNC)
			{
				(void) HamonRunInTransaction(hamon_sync_txn, r,
											 "set synchronous_standby_names");
				return;
			}
			/* under quorum: the candidate's own list, before the request */
			if (!HamonRunInTransaction(hamon_candidate_sync_txn, r,
									   "give the candidate its synchronous_standby_names") ||
				!r->ok)
				return;
			if (r->kind == HAMON_ACT_SWITCHOVER &&
				(!HamonRunInTransaction(hamon_switchover_prepare_txn, r,
										"prepare a switchover") || !r->ok))
				return;
			if (!HamonRunInTransaction(hamon_promote_sent_txn, r,
									   "record a promotion request"))
				return;
			continue;
		}
		if (strcmp(r->state, "promote_sent") == 0)
		{
			if (!HamonRunInTransaction(hamon_promote_txn, r, "promote a node") ||
				r->stalled || strcmp(r->state, "promoted") != 0)
				return;
			continue;
		}
		if (strcmp(r->state, "promoted") == 0)
		{
			(void) HamonRunInTransaction(hamon_finish_txn, r,
										 "repoint the standbys");
			return;
		}
		/* done, failed, abandoned: nothing left */
		return;
	}
}

/*
 * HamonActionWorkerMain
 *		Entry point of an action worker; main_arg is its slot.  Runs one
 *		action, from its row (or, for a manual request, writes the row
 *		first), and exits.
 */
void
HamonActionWorkerMain(Datum main_arg)
{
	HamonActionRow row;
	HamonActionSlot *s;

	action_slot = DatumGetInt32(main_arg);
	s = &HamonShmem->actions[action_slot];
	before_shmem_exit(hamon_action_exit, (Datum) 0);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&HamonShmem->mutex);
	s->pid = MyProcPid;
	SpinLockRelease(&HamonShmem->mutex);

	BackgroundWorkerInitializeConnection(hamon_database, NULL, 0);
	pgstat_report_appname("pg_hamonitor action");
	action_cxt = AllocSetContextCreate(TopMemoryContext, "pg_hamonitor action",
									   ALLOCSET_DEFAULT_SIZES);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", HAMON_ACTION_LOCK_TIMEOUT, PGC_SUSET,
					PGC_S_OVERRIDE);

	memset(&row, 0, sizeof(row));
	row.action_id = s->action_id;
	if (row.action_id == 0)
	{
		bool		ok = HamonRunInTransaction(hamon_insert_request_txn, &row,
											   "record a request");

		SpinLockAcquire(&HamonShmem->mutex);
		s->action_id = ok ? row.action_id : 0;
		s->result_action_id = s->action_id;
		s->request_done = ok;
		SpinLockRelease(&HamonShmem->mutex);
		if (!ok)
			proc_exit(1);
	}
	hamon_run_action(&row);
	proc_exit(0);
}
