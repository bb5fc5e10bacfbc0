/*-------------------------------------------------------------------------
 *
 * manual.c
 *		SQL functions a DBA calls to change a cluster's primary.
 *
 * hamonitor.promote(), hamonitor.failover() and hamonitor.switchover() read
 * the cluster's state as the worker last wrote it (no lock: see
 * hamon_open_cluster), check it, and refuse at once with an ERROR that says
 * why (55000, object not in prerequisite state).  What passes is handed to
 * the action engine (engine.c), whose worker writes it as an action and
 * runs it; the function waits and returns the action's summary, or raises
 * its failure with its SQLSTATE.  The action does not depend on the
 * caller: cancelled or rolled back, it goes on, on record.
 *
 * hamonitor.simulate_failover() is the test-only door to decide.c: it runs
 * the decision on a cluster described in its arguments, at a given time.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/manual.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "action.h"
#include "catalog.h"
#include "engine.h"
#include "failover.h"
#include "remote.h"
#include "state.h"

PG_FUNCTION_INFO_V1(hamonitor_promote);
PG_FUNCTION_INFO_V1(hamonitor_failover);
PG_FUNCTION_INFO_V1(hamonitor_switchover);
PG_FUNCTION_INFO_V1(hamonitor_simulate_failover);

static int
hamon_find_in_view(const HamonClusterView *cv, const char *node_name,
				   const char *cluster_name)
{
	int			i;

	for (i = 0; i < cv->nnodes; i++)
		if (strcmp(cv->nodes[i].node_name, node_name) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("node \"%s\" does not exist in cluster \"%s\"",
					node_name, cluster_name)));
	return -1;					/* keep compiler quiet */
}

/*
 * The start of every function here: read the cluster's nodes as the worker
 * last wrote them, and find the node named (if any).  No lock is taken: the
 * checks here are for a quick and clear refusal; the action engine's
 * worker checks again that the primary is still the one they saw, and one
 * action at a time per cluster is the action table's rule.  (A lock held
 * here would be waited for by that worker while this backend waits for
 * it.)  Leaves SPI connected.
 */
static int
hamon_open_cluster(const char *cluster_name, const char *node_name,
				   HamonClusterView *cv)
{
	int			primary_id;
	int			timeline;

	SPI_connect();
	HamonCatalogReadCluster(cluster_name, &primary_id, &timeline);
	HamonCatalogLoadView(cluster_name, primary_id, timeline, cv);
	return node_name ? hamon_find_in_view(cv, node_name, cluster_name) : -1;
}

static bool
hamon_primary_up(const HamonClusterView *cv)
{
	const HamonNodeView *p;

	if (cv->primary < 0)
		return false;
	p = &cv->nodes[cv->primary];
	return p->health == HAMON_HEALTH_UP && p->role == HAMON_ROLE_PRIMARY &&
		!p->fenced;
}

/* ERROR unless node may be promoted; the lag check only when check_lag */
static void
hamon_check_target(const HamonClusterView *cv, int target, bool check_lag)
{
	const HamonNodeView *t = &cv->nodes[target];
	char		why[512];
	XLogRecPtr	primary_lsn;

	if (target == cv->primary)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is already the primary", t->node_name)));
	if (HamonStandbyRefusal(t, cv->timeline, why, sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot promote node \"%s\"", t->node_name),
				 errdetail("Node %s.", why)));
	primary_lsn = cv->primary >= 0 ? cv->nodes[cv->primary].current_lsn :
		InvalidXLogRecPtr;
	if (check_lag &&
		HamonLagRefusal(t, primary_lsn, hamon_max_failover_lag, why,
						sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot promote node \"%s\"", t->node_name),
				 errdetail("Node %s.", why),
				 errhint("Use force => true to promote it anyway.")));
}

/*
 * Ends SPI and returns result as the function's value.  SPI_finish frees
 * everything palloc'd since SPI_connect, result included: the copy is made
 * first, in the caller's context (SPI_palloc's "upper" context).
 */
static Datum
hamon_spi_return(text *result)
{
	Size		len = VARSIZE_ANY(result);
	text	   *copy = SPI_palloc(len);

	memcpy(copy, result, len);
	SPI_finish();
	PG_RETURN_TEXT_P(copy);
}

/*
 * The evidence rule of the automatic path (decide.c), for promote(): the
 * primary's postmaster not known alive, and the standbys confirming it
 * gone.  Timeouts do not apply: a DBA may act at once.  Without force, an
 * ERROR (55000) with the reason; with force, a WARNING.  Also refuses
 * (unless forced) a target behind another standby by more than
 * max_failover_lag.  Returns what a forced promotion may lose, as text
 * for its event, or NULL.
 */
static char *
hamon_check_promote_evidence(const HamonClusterView *cv, int target,
							 bool force)
{
	HamonFailoverRules rules;
	HamonDecision d;
	char		why[512];
	char	   *loss = NULL;
	XLogRecPtr	primary_lsn;
	XLogRecPtr	pos;

	rules.auto_failover = true;
	rules.failover_timeout_ms = 0;
	rules.restart_grace_ms = 0;
	rules.max_lag_bytes = hamon_max_failover_lag;
	if (!HamonCheckEvidence(cv, &rules, GetCurrentTimestamp(), &d))
	{
		if (!force)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot promote node \"%s\": the failure of the primary is not established",
							cv->nodes[target].node_name),
					 errdetail_internal("%s", d.reason),
					 errhint("Use force => true if you know the old primary is down for good and will stay so.")));
		ereport(WARNING,
				(errmsg("promoting node \"%s\" although the failure of the primary is not established",
						cv->nodes[target].node_name),
				 errdetail_internal("%s", d.reason)));
		loss = psprintf("; not established: %s", d.reason);
	}

	if (HamonBetterStandby(cv, target, hamon_max_failover_lag, why,
						   sizeof(why)) >= 0)
	{
		if (!force)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot promote node \"%s\"",
							cv->nodes[target].node_name),
					 errdetail_internal("Node %s: commits the old primary acknowledged may exist only there.", why),
					 errhint("Use force => true to promote it anyway, losing that WAL.")));
		ereport(WARNING,
				(errmsg("promoting node \"%s\" may lose acknowledged commits",
						cv->nodes[target].node_name),
				 errdetail_internal("Node %s.", why)));
		loss = psprintf("%s; may be lost: %s", loss ? loss : "", why);
	}

	/* with force, the lag check was skipped: say what it would have said */
	primary_lsn = cv->primary >= 0 ? cv->nodes[cv->primary].current_lsn :
		InvalidXLogRecPtr;
	pos = Max(cv->nodes[target].receive_lsn, cv->nodes[target].replay_lsn);
	if (force && !XLogRecPtrIsInvalid(primary_lsn) && primary_lsn > pos)
		loss = psprintf("%s; may be lost: " UINT64_FORMAT " bytes of WAL between its %X/%X and the old primary's last known %X/%X",
						loss ? loss : "", (uint64) (primary_lsn - pos),
						LSN_FORMAT_ARGS(pos), LSN_FORMAT_ARGS(primary_lsn));
	return loss;
}

/* whether the cluster runs under a synchronous quorum */
static bool
hamon_cluster_quorum(const char *cluster_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(cluster_name);
	if (SPI_execute_with_args("SELECT hamonitor.cluster_synchronous($1) = 'quorum'",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		return false;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(d);
}

/*
 * Hands the promotion (or switchover) of cv->nodes[target] to the action
 * engine and waits for its outcome, shared by the three functions.
 */
static text *
hamon_hand_off(const char *cluster_name, HamonClusterView *cv, int target,
			   HamonActionKind kind, bool force, const char *reason)
{
	HamonActionRequest req;

	req.kind = kind;
	req.cluster_name = cluster_name;
	req.node_id = cv->nodes[target].node_id;
	req.node_name = cv->nodes[target].node_name;
	req.old_primary_id = cv->primary >= 0 ? cv->nodes[cv->primary].node_id : 0;
	req.force = force;
	req.reason = reason;
	return HamonEngineRequest(&req);
}

/*
 * hamonitor.promote(node_name, cluster_name, force): promotes a standby
 * while the cluster's primary is down.
 */
Datum
hamonitor_promote(PG_FUNCTION_ARGS)
{
	char	   *node_name = HamonTextArg(fcinfo, 0, "node name");
	char	   *cluster_name = HamonTextArg(fcinfo, 1, "cluster name");
	bool		force = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	HamonClusterView cv;
	int			target = hamon_open_cluster(cluster_name, node_name, &cv);
	text	   *result;
	char	   *loss;
	bool		forced_quorum;

	if (hamon_primary_up(&cv) && target != cv.primary)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the primary \"%s\" of cluster \"%s\" is up",
						cv.nodes[cv.primary].node_name, cluster_name),
				 errhint("Use hamonitor.switchover() to change the primary of a healthy cluster.")));
	hamon_check_target(&cv, target, !force);
	loss = hamon_check_promote_evidence(&cv, target, force);

	/*
	 * Under a synchronous quorum a forced promotion skips the rule that
	 * keeps every acknowledged commit (R + W > N): say so, in the event
	 * (the action's reason) and in the result.
	 */
	forced_quorum = force && hamon_cluster_quorum(cluster_name);
	if (forced_quorum)
	{
		ereport(WARNING,
				(errmsg("forced promotion of node \"%s\" under a synchronous quorum: acknowledged commits may be lost",
						node_name),
				 errdetail("The promotion does not check that the node holds every commit the old primary acknowledged.")));
		loss = psprintf("%s; under a synchronous quorum, forced: acknowledged commits may be lost",
						loss ? loss : "");
	}
	result = hamon_hand_off(cluster_name, &cv, target, HAMON_ACT_PROMOTE, force,
							psprintf("manual promotion by %s%s%s",
								   GetUserNameFromId(GetUserId(), false),
								   force ? " (force)" : "",
								   loss ? loss : ""));
	if (forced_quorum)
		result = cstring_to_text(psprintf("%s; forced under a synchronous quorum: acknowledged commits may be lost",
										  text_to_cstring(result)));
	return hamon_spi_return(result);
}

/*
 * Planned change of primary, handed to the action engine: fence the old
 * primary, let the target replay all it wrote, promote the target.  If the
 * target cannot catch up, or the promotion cannot even be requested, the
 * old primary is made writable again; once the promotion was requested it
 * never is (engine.c).
 */
static text *
hamon_switchover(const char *cluster_name, HamonClusterView *cv, int target)
{
	hamon_check_target(cv, target, false);
	return hamon_hand_off(cluster_name, cv, target, HAMON_ACT_SWITCHOVER,
						  false,
						  psprintf("planned switchover by %s from \"%s\" to \"%s\"",
								   GetUserNameFromId(GetUserId(), false),
								   cv->nodes[cv->primary].node_name,
								   cv->nodes[target].node_name));
}

/*
 * hamonitor.switchover(node_name, cluster_name): planned, no data lost.
 */
Datum
hamonitor_switchover(PG_FUNCTION_ARGS)
{
	char	   *node_name = HamonTextArg(fcinfo, 0, "node name");
	char	   *cluster_name = HamonTextArg(fcinfo, 1, "cluster name");
	HamonClusterView cv;
	int			target = hamon_open_cluster(cluster_name, node_name, &cv);
	text	   *result;

	if (!hamon_primary_up(&cv))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cluster \"%s\" has no primary up to switch over from",
						cluster_name),
				 errhint("Use hamonitor.promote() or hamonitor.failover() when the primary is down.")));
	result = hamon_switchover(cluster_name, &cv, target);
	return hamon_spi_return(result);
}

/*
 * hamonitor.failover(cluster_name, planned): the automatic choice, now.
 * With the primary up it is refused, unless planned: then a switchover to
 * the best candidate.
 */
Datum
hamonitor_failover(PG_FUNCTION_ARGS)
{
	char	   *cluster_name = HamonTextArg(fcinfo, 0, "cluster name");
	bool		planned = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	HamonClusterView cv;
	XLogRecPtr	primary_lsn;
	int			target;
	char		why[1024];
	text	   *result;

	(void) hamon_open_cluster(cluster_name, NULL, &cv);
	primary_lsn = cv.primary >= 0 ? cv.nodes[cv.primary].current_lsn :
		InvalidXLogRecPtr;
	target = HamonChooseCandidate(&cv, primary_lsn, cv.timeline,
								  hamon_max_failover_lag, true, why, sizeof(why));
	if (hamon_primary_up(&cv) && !planned)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the primary \"%s\" of cluster \"%s\" is up",
						cv.nodes[cv.primary].node_name, cluster_name),
				 errhint("Use planned => true for a switchover to the best standby.")));
	if (target < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cluster \"%s\" has no standby that may be promoted",
						cluster_name),
				 errdetail_internal("%s", why[0] ? why : "It has no standby.")));
	if (hamon_primary_up(&cv))
		result = hamon_switchover(cluster_name, &cv, target);
	else
	{
		/* the automatic choice, so the automatic path's evidence rule */
		(void) hamon_check_promote_evidence(&cv, target, false);
		result = hamon_hand_off(cluster_name, &cv, target, HAMON_ACT_FAILOVER,
								false,
								psprintf("manual failover by %s",
										 GetUserNameFromId(GetUserId(), false)));
	}
	return hamon_spi_return(result);
}

/* reads one field of a composite hamonitor.simulated_node */
static Datum
hamon_field(HeapTupleHeader tup, const char *name, bool *isnull)
{
	return GetAttributeByName(tup, name, isnull);
}

/*
 * hamonitor.simulate_failover(nodes, now, auto_failover, failover_timeout,
 * restart_grace, max_failover_lag): the decision of decide.c on an
 * injected cluster, for tests.  Touches nothing.
 */
Datum
hamonitor_simulate_failover(PG_FUNCTION_ARGS)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	TimestampTz now;
	HamonFailoverRules rules;
	HamonClusterView cv;
	HamonDecision d;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("nodes and now must not be null")));
	arr = PG_GETARG_ARRAYTYPE_P(0);
	now = PG_GETARG_TIMESTAMPTZ(1);
	rules.auto_failover = PG_ARGISNULL(2) ? hamon_auto_failover : PG_GETARG_BOOL(2);
	rules.failover_timeout_ms = PG_ARGISNULL(3) ? hamon_failover_timeout :
		PG_GETARG_INT32(3);
	rules.restart_grace_ms = PG_ARGISNULL(4) ? hamon_restart_grace :
		PG_GETARG_INT32(4);
	rules.max_lag_bytes = PG_ARGISNULL(5) ? hamon_max_failover_lag :
		PG_GETARG_INT64(5);
	/* 1.1: the quorum the primary applied (k, 0 for none), degraded */
	cv.sync_k = (PG_NARGS() > 6 && !PG_ARGISNULL(6)) ? PG_GETARG_INT32(6) : 0;
	cv.sync_degraded = (PG_NARGS() > 7 && !PG_ARGISNULL(7)) && PG_GETARG_BOOL(7);
	if (cv.sync_k < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("synchronous_k must be 0 (no quorum) or positive")));

	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
					  &elems, &elem_nulls, &nelems);
	cv.nnodes = nelems;
	cv.nodes = palloc0(sizeof(HamonNodeView) * Max(nelems, 1));
	cv.primary = -1;
	cv.timeline = 0;
	for (i = 0; i < nelems; i++)
	{
		HamonNodeView *v = &cv.nodes[i];
		HeapTupleHeader tup;
		bool		isnull;
		Datum		d;

		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("simulated nodes must not be null")));
		tup = DatumGetHeapTupleHeader(elems[i]);
		d = hamon_field(tup, "node_name", &isnull);
		v->node_name = isnull ? "?" : TextDatumGetCString(d);
		d = hamon_field(tup, "is_primary", &isnull);
		if (!isnull && DatumGetBool(d))
			cv.primary = i;
		d = hamon_field(tup, "role", &isnull);
		v->role = HamonRoleFromName(isnull ? NULL : TextDatumGetCString(d));
		d = hamon_field(tup, "health", &isnull);
		v->health = HamonHealthFromName(isnull ? NULL : TextDatumGetCString(d));
		d = hamon_field(tup, "maintenance", &isnull);
		v->maintenance = !isnull && DatumGetBool(d);
		d = hamon_field(tup, "priority", &isnull);
		v->priority = isnull ? 100 : DatumGetInt32(d);
		d = hamon_field(tup, "timeline", &isnull);
		v->timeline = isnull ? 1 : DatumGetInt32(d);
		d = hamon_field(tup, "current_lsn", &isnull);
		v->current_lsn = isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
		d = hamon_field(tup, "receive_lsn", &isnull);
		v->receive_lsn = isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
		d = hamon_field(tup, "replay_lsn", &isnull);
		v->replay_lsn = isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
		d = hamon_field(tup, "streaming", &isnull);
		v->streaming = !isnull && DatumGetBool(d);
		d = hamon_field(tup, "last_seen", &isnull);
		v->last_seen = isnull ? 0 : DatumGetTimestampTz(d);
		d = hamon_field(tup, "down_since", &isnull);
		v->down_since = isnull ? 0 : DatumGetTimestampTz(d);
		d = hamon_field(tup, "alive_signal", &isnull);
		v->alive_signal = !isnull && DatumGetBool(d);
		d = hamon_field(tup, "sysid_mismatch", &isnull);
		v->sysid_mismatch = !isnull && DatumGetBool(d);
		d = hamon_field(tup, "fenced", &isnull);
		v->fenced = !isnull && DatumGetBool(d);

		/* the evidence (1.1); NULLs mean what 1.0's simulations meant */
		v->node_id = i + 1;
		d = hamon_field(tup, "receiver", &isnull);
		if (isnull)
			v->receiver = v->streaming ? HAMON_RECEIVER_STREAMING :
				HAMON_RECEIVER_STOPPED;
		else
		{
			char	   *name = TextDatumGetCString(d);

			v->receiver = HamonReceiverFromName(name);
			if (strcmp(name, HamonReceiverName(v->receiver)) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid receiver \"%s\"", name),
						 errhint("One of unknown, hidden, none, not_streaming, streaming.")));
			v->streaming = (v->receiver == HAMON_RECEIVER_STREAMING);
		}
		d = hamon_field(tup, "seen_streaming_at", &isnull);
		v->seen_streaming_at = isnull ? 0 : DatumGetTimestampTz(d);
		d = hamon_field(tup, "failure_class", &isnull);
		if (!isnull)
		{
			char	   *name = TextDatumGetCString(d);

			v->failure_class = HamonFailureClassFromName(name);
			if (strcmp(name, HamonFailureClassName(v->failure_class)) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid failure class \"%s\"", name)));
		}
		d = hamon_field(tup, "alive_at", &isnull);
		v->alive_at = isnull ? 0 : DatumGetTimestampTz(d);
		if (v->alive_at != 0)
			v->alive_signal = true;
		d = hamon_field(tup, "sync_listed", &isnull);
		v->sync_listed = !isnull && DatumGetBool(d);
	}
	/* upstreams are given by name */
	for (i = 0; i < nelems; i++)
	{
		HeapTupleHeader tup = DatumGetHeapTupleHeader(elems[i]);
		bool		isnull;
		Datum		d = hamon_field(tup, "upstream", &isnull);
		char	   *name;
		int			j;

		if (isnull)
			continue;
		name = TextDatumGetCString(d);
		for (j = 0; j < nelems; j++)
			if (strcmp(cv.nodes[j].node_name, name) == 0)
				cv.nodes[i].upstream_id = cv.nodes[j].node_id;
		if (cv.nodes[i].upstream_id == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("upstream \"%s\" of \"%s\" is not a simulated node",
							name, cv.nodes[i].node_name)));
	}
	if (cv.primary >= 0)
		cv.timeline = cv.nodes[cv.primary].timeline;

	HamonDecideFailover(&cv, &rules, now, &d);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = CStringGetTextDatum(HamonVerdictName(d.verdict));
	if (d.candidate >= 0)
		values[1] = CStringGetTextDatum(cv.nodes[d.candidate].node_name);
	else
		nulls[1] = true;
	values[2] = CStringGetTextDatum(d.reason);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}
