/*-------------------------------------------------------------------------
 *
 * sequence.c
 *		The action worker: one action's phases, each committed before the
 *		next one touches a peer.
 *
 * An action worker (launched by engine.c) runs one row of hamonitor.action
 * from wherever its state says it stands, and exits:
 *
 *	 planned		the decision is still current (the cluster's primary is
 *					the one it was planned against): announced, running
 *	 running		fence/unfence: the step, done.  Switchover: fence the old
 *					primary and wait for the target to replay its WAL, each
 *					undone if what follows fails.  Then promote_sent is
 *					committed, before any promotion request is sent
 *	 promote_sent	pg_promote(wait => false), then waiting (with the
 *					startup-process nudge of action.c) until the candidate
 *					leaves recovery, at most promote_timeout after the
 *					request.  A run resumed after a restart never sends the
 *					request again: it only waits.  Promoted: recorded,
 *					promoted.  Never requested: failed.  Requested and not
 *					finished: stays open, stalled
 *	 promoted		logical slots lost, managed slots on the new primary, the
 *					other standbys repointed, a switchover's old primary
 *					recorded fenced: done, with a summary for the caller
 *
 * Every phase can run again from its start after a crash (each step is
 * idempotent, or guarded by the state), which is what lets the probe
 * worker relaunch an action whose worker is gone.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/sequence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "action.h"
#include "catalog.h"
#include "engine.h"
#include "remote.h"
#include "slots.h"
#include "witness.h"

/* an action worker waits at most this long for a lock */
#define HAMON_ACTION_LOCK_TIMEOUT "10s"
/* a planned action not started within this long is stale: decide again */
#define HAMON_ACTION_MAX_AGE_MS 30000

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
	bool		manual;			/* requested by a SQL function's caller */
	TimestampTz planned_at;
	TimestampTz promote_sent_at;
	/* this run's own: it sent the promotion request itself */
	bool		sent_here;
	/* what the worker passes from one phase to the next */
	bool		ok;
	XLogRecPtr	final_lsn;
	int			timeline;
	XLogRecPtr	lsn;
	char	   *summary;
	/* a manual request: the 'sync' action it superseded, 0 if none */
	int64		superseded;
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
							  " reason, state, stalled, promote_sent_at, planned_at"
							  " FROM hamonitor.action WHERE action_id = $1",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read action " INT64_FORMAT, r->action_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	old = MemoryContextSwitchTo(action_cxt);
	r->cluster_name = pstrdup(SPI_getvalue(tup, desc, 1));
	r->kind = HamonActionKindFromName(SPI_getvalue(tup, desc, 2));
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
	r->planned_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 13, &isnull));
	r->manual = (strcmp(r->requested_by, "pg_hamonitor") != 0);
	MemoryContextSwitchTo(old);
}

/*
 * Moves the row from the state r holds to state (and outcome, SQLSTATE,
 * stalled when given), in the current transaction; r follows.  ERROR if
 * the row is no longer in r's state (a human abandoned it meanwhile): the
 * transaction rolls back and the worker stops.
 */
static void
hamon_set_state(HamonActionRow *r, const char *state, const char *outcome,
				const char *sqlstate, int stalled)
{
	Oid			types[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";

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
	values[5] = CStringGetTextDatum(r->state);
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
							  " WHERE action_id = $1 AND state = $6",
							  6, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update action " INT64_FORMAT, r->action_id);
	/* someone else moved it on (a human abandoned it): stop here */
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("action " INT64_FORMAT " is no longer %s", r->action_id,
						r->state)));
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
 * Why a planned action may no longer start, or NULL: the decision must
 * still be current when it is acted on, however long the worker took to
 * start (no background worker free, a relaunch after a restart).
 */
static char *
hamon_stale_reason(HamonActionRow *r, int primary_id)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];
	bool		target_exists;
	bool		old_primary_up;
	bool		isnull;

	if (GetCurrentTimestamp() - r->planned_at >
		HAMON_ACTION_MAX_AGE_MS * INT64CONST(1000))
		return psprintf("it was planned more than %d s ago",
						HAMON_ACTION_MAX_AGE_MS / 1000);
	values[0] = Int32GetDatum(r->node_id);
	values[1] = Int32GetDatum(r->old_primary_id);
	if (SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM hamonitor.node WHERE node_id = $1),"
							  " EXISTS (SELECT 1 FROM hamonitor.node_state"
							  "  WHERE node_id = $2 AND health = 'up' AND role = 'primary'"
							  "  AND NOT fenced)",
							  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not check action " INT64_FORMAT, r->action_id);
	target_exists = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1,
											   &isnull));
	old_primary_up = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 2,
												&isnull));
	if (!target_exists)
		return pstrdup("the node is no longer registered");
	switch (r->kind)
	{
		case HAMON_ACT_FAILOVER:
		case HAMON_ACT_PROMOTE:
			if (primary_id != r->old_primary_id)
				return pstrdup("the cluster's primary changed since");
			/* a manual promote(force) was told the primary is not up */
			if (r->kind == HAMON_ACT_FAILOVER && old_primary_up && !r->manual)
				return pstrdup("the primary is up again");
			break;
		case HAMON_ACT_SWITCHOVER:
		case HAMON_ACT_SYNC:
			if (primary_id != r->old_primary_id)
				return pstrdup("the cluster's primary changed since");
			break;
		case HAMON_ACT_FENCE:
			if (r->node_id == primary_id)
				return pstrdup("the node is the cluster's primary now");
			break;
		case HAMON_ACT_UNFENCE:
			break;
	}
	return NULL;
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

	char	   *stale;

	r->ok = false;
	/* a superseded action's worker is gone before this one acts */
	HamonEngineLockCluster(r->cluster_name);
	if (!HamonCatalogLockCluster(r->cluster_name, false, &primary_id, &timeline))
		return;
	stale = hamon_stale_reason(r, primary_id);
	if (stale)
	{
		hamon_fail(r, "action_stale", "55000",
				   psprintf("%s %s of node \"%s\" not started: %s",
							r->manual ? "requested" : "decided",
							HamonActionKindName(r->kind), r->node_name, stale));
		return;
	}
	if (r->kind != HAMON_ACT_FENCE && r->kind != HAMON_ACT_UNFENCE)
		HamonCatalogWriteEvent(r->cluster_name, r->node_name,
							   HamonActionKindName(r->kind),
							   r->reason ? r->reason : "");
	hamon_set_state(r, "running", NULL, NULL, -1);
	r->ok = true;
}

/* records on node_id whether the witness holds it fenced */
static void
hamon_set_fenced(int node_id, bool fenced)
{
	HamonCatalogWriteNodeFlags(node_id, &fenced, NULL, NULL);
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
		{
			hamon_set_fenced(r->node_id, false);
			HamonCatalogWriteEvent(r->cluster_name, r->node_name, "unfenced",
								   r->reason ? r->reason : "fence lifted");
			/* the probe workers take the flag from the catalog again */
			HamonRegistryChanged();
		}
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
		w.left_recovery = false;
		if (HamonTry(HamonStepWaitReplay, &w, &err) || w.left_recovery)
		{
			/*
			 * A target seen out of recovery was promoted (by a DBA, or by
			 * another witness): the old primary must stay fenced, and the
			 * promotion phase records it.
			 */
			r->final_lsn = f.lsn;
			r->ok = true;
			return;
		}
	}

	/* nothing was promoted: give the cluster its writable primary back */
	{
		char	   *unfence_err = NULL;
		bool		unfenced = HamonTry(HamonStepGiveBack, &old_t, &unfence_err);

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

/* locks the action's row; false if it is no longer in state */
static bool
hamon_lock_row(HamonActionRow *r, const char *state)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(r->action_id);
	if (SPI_execute_with_args("SELECT state FROM hamonitor.action"
							  " WHERE action_id = $1 FOR UPDATE",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not lock action " INT64_FORMAT, r->action_id);
	return strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
				  state) == 0;
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

	/*
	 * The row stays locked while the candidate is asked and awaited: nobody
	 * abandons an action whose promotion is being sent.
	 */
	if (!hamon_lock_row(r, "promote_sent"))
		return;
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
			if (HamonTry(HamonStepGiveBack, &old_t, &unfence_err))
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

/*
 * records a standby repointed (now; following is checked by the probe
 * worker) or not (it needs a rejoin)
 */
static void
hamon_set_repointed(int node_id, bool ok)
{
	bool		needs_rejoin = !ok;
	TimestampTz at = ok ? GetCurrentTransactionStartTimestamp() : 0;

	HamonCatalogWriteNodeFlags(node_id, NULL, &needs_rejoin, &at);
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
	char	  **outcome;
	bool	   *repointed;
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

	/*
	 * The standbys first, then the catalog: a node_state row updated here
	 * would stay locked while the next standby is talked to, and hold up
	 * every batch of the probe worker (its lock_timeout).
	 */
	outcome = palloc0(sizeof(char *) * Max(cv.nnodes, 1));
	repointed = palloc0(sizeof(bool) * Max(cv.nnodes, 1));
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
			outcome[i] = psprintf("not reachable: repoint it to \"%s\" by hand",
								  r->node_name);
			continue;
		}
		hamon_target_of(r, n, &t);
		rp.target = &t;
		rp.new_primary_conninfo = new_t.conninfo;
		/* under quorum it streams under the name the list has for it */
		rp.application_name = quorum ? hamon_listed_name(n->node_id) : NULL;
		rp.changed = false;
		rp.masked = NULL;
		repointed[i] = HamonTry(HamonStepRepoint, &rp, &err);
		outcome[i] = repointed[i] ?
			psprintf("primary_conninfo now %s", rp.masked) : err;
	}

	initStringInfo(&summary);
	appendStringInfo(&summary, "promoted \"%s\"", r->node_name);
	if (r->timeline > 0)
		appendStringInfo(&summary, " (timeline %d)", r->timeline);
	for (i = 0; i < cv.nnodes; i++)
	{
		if (outcome[i] == NULL)
			continue;
		HamonCatalogWriteEvent(r->cluster_name, cv.nodes[i].node_name,
							   repointed[i] ? "repointed" : "repoint_failed",
							   outcome[i]);
		hamon_set_repointed(cv.nodes[i].node_id, repointed[i]);
		appendStringInfo(&summary, repointed[i] ? "; repointed \"%s\"" :
						 "; could not repoint \"%s\"", cv.nodes[i].node_name);
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

/*
 * Puts the id of the row just written in this worker's slot, before that
 * row commits: from its commit on, a probe worker that reads the open
 * action must find it running, or it would launch a second worker for it.
 * (If the transaction aborts, the worker exits and its exit hook frees the
 * slot.)
 */
static void
hamon_slot_runs(int64 action_id)
{
	HamonActionSlot *s = &HamonShmem->actions[action_slot];

	SpinLockAcquire(&HamonShmem->mutex);
	s->action_id = action_id;
	SpinLockRelease(&HamonShmem->mutex);
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

	/*
	 * A promotion or switchover a DBA asks for does not wait for the
	 * witness's own housekeeping of synchronous_standby_names: an open
	 * 'sync' action is superseded (and its worker stopped once this
	 * commits; the claim waits for it to be gone).
	 */
	r->superseded = 0;
	if (s->kind == HAMON_ACT_PROMOTE || s->kind == HAMON_ACT_FAILOVER ||
		s->kind == HAMON_ACT_SWITCHOVER)
		(void) HamonEngineSupersedeSync(s->cluster_name,
										psprintf("the %s of node \"%s\" requested by %s",
												 HamonActionKindName((HamonActionKind) s->kind),
												 s->node_name, s->requested_by),
										&r->superseded);
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
		hamon_slot_runs(r->action_id);
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
	hamon_slot_runs(r->action_id);
}

/* a manual action that could not start: failed, not left to a relaunch */
static void
hamon_fail_unstarted_txn(void *arg)
{
	HamonActionRow *r = (HamonActionRow *) arg;

	hamon_fail(r, "action_failed", "55000",
			   psprintf("the %s of node \"%s\" could not start (see the server log): nothing done",
						HamonActionKindName(r->kind), r->node_name));
}

/*
 * Whether this witness may take the action's next step: not once it is
 * superseded by a newer witness (which finishes or records the action from
 * the replicated catalog), nor before its guard checked the current
 * timeline.  The row stays as it is, for the witness that may act.
 */
static bool
hamon_may_step(HamonActionRow *r)
{
	if (HamonWitnessMayAct())
		return true;
	ereport(LOG,
			(errmsg("pg_hamonitor action " INT64_FORMAT " on cluster \"%s\" stops: this witness may not act (hamonitor.witness_status())",
					r->action_id, r->cluster_name ? r->cluster_name : "?")));
	return false;
}

/* runs the action r->action_id from wherever its row says it stands */
static void
hamon_run_action(HamonActionRow *r)
{
	for (;;)
	{
		if (!hamon_may_step(r))
			return;
		if (!HamonRunInTransaction(hamon_load_row_txn, r, "read an action"))
			return;

		if (strcmp(r->state, "planned") == 0)
		{
			if (!HamonRunInTransaction(hamon_claim_txn, r, "start an action"))
			{
				/*
				 * A caller is told now that its request did not start: it
				 * must not start later behind its back.
				 */
				if (r->manual)
					(void) HamonRunInTransaction(hamon_fail_unstarted_txn, r,
												 "record an action not started");
				return;
			}
			if (!r->ok)
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
			if (!hamon_may_step(r) ||
				!HamonRunInTransaction(hamon_promote_sent_txn, r,
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
	/* every phase it commits must survive a crash of the witness */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);

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
		if (row.superseded != 0)
			HamonEngineStopAction(row.superseded);
	}
	hamon_run_action(&row);
	proc_exit(0);
}
