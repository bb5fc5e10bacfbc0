/*-------------------------------------------------------------------------
 *
 * failover.c
 *		From decisions to actions: failover, repointing, fencing.
 *
 * After each batch of probes the worker reviews every cluster it owns
 * (HamonReviewCluster): which node is the primary (the writable one on the
 * newest timeline), whether a stale primary came back and must be fenced,
 * whether a repointed standby now follows, and what decide.c says about a
 * primary that is down.  The review only changes memory and plans actions;
 * the actions run afterwards (HamonRunAction), each in its own transaction
 * holding the cluster row's lock, the lock every promotion takes, so the
 * worker and the manual SQL functions never promote twice.
 *
 * HamonExecuteFailover is the one path that promotes, shared by the worker
 * and the SQL functions: it records each step as an event, promotes,
 * records the new primary, then repoints every other reachable standby.  A
 * standby that cannot be repointed is reported, never a reason to undo the
 * promotion.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/failover.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "action.h"
#include "catalog.h"
#include "failover.h"
#include "remote.h"
#include "slots.h"
#include "state.h"

/* while a primary is down and undecided, its standbys are probed this often */
#define HAMON_DECIDING_PROBE_MS 100
/* a fence that did not take is tried again after this long */
#define HAMON_FENCE_RETRY_MS 5000

void
HamonRulesFromSettings(HamonFailoverRules *rules)
{
	rules->auto_failover = hamon_auto_failover;
	rules->failover_timeout_ms = hamon_failover_timeout;
	rules->restart_grace_ms = hamon_restart_grace;
	rules->max_lag_bytes = hamon_max_failover_lag;
}

/* the arguments of the actions run through HamonTry */
typedef struct HamonStep
{
	HamonTarget target;
	const char *other_conninfo;
	int			timeline;
	XLogRecPtr	lsn;
	int			keep_pid;		/* fence: the witness's probe session */
	char	   *masked;
} HamonStep;

static void
hamon_step_promote(void *arg)
{
	HamonStep  *s = (HamonStep *) arg;

	HamonActionPromote(&s->target, &s->timeline, &s->lsn);
}

static void
hamon_step_repoint(void *arg)
{
	HamonStep  *s = (HamonStep *) arg;

	s->masked = HamonActionRepoint(&s->target, s->other_conninfo);
}

static void
hamon_step_fence(void *arg)
{
	HamonStep  *s = (HamonStep *) arg;

	s->lsn = HamonActionFence(&s->target, s->keep_pid);
}

static void
hamon_step_unfence(void *arg)
{
	HamonStep  *s = (HamonStep *) arg;

	HamonActionUnfence(&s->target);
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
 * HamonExecuteFailover
 *		Promotes cv->nodes[candidate] and repoints every other reachable
 *		standby of the cluster to it, recording each step as an event.  The
 *		caller holds the cluster's row lock, with SPI connected.  If the
 *		promotion fails: ERROR when throw_errors (the SQL functions), else a
 *		'promote_failed' event and false (the worker).  A standby that
 *		cannot be repointed gets needs_rejoin and a 'repoint_failed' event.
 */
bool
HamonExecuteFailover(const char *cluster_name, const HamonClusterView *cv,
					 int candidate, const char *kind, const char *reason,
					 bool throw_errors, HamonFailoverOutcome *outcome)
{
	const HamonNodeView *c = &cv->nodes[candidate];
	HamonStep	step;
	StringInfoData summary;
	char	   *err;
	int			i;

	memset(outcome, 0, sizeof(*outcome));
	HamonCatalogWriteEvent(cluster_name, c->node_name, kind, reason);

	memset(&step, 0, sizeof(step));
	step.target.cluster_name = cluster_name;
	step.target.node_name = c->node_name;
	step.target.conninfo = c->conninfo;
	if (throw_errors)
		hamon_step_promote(&step);
	else if (!HamonTry(hamon_step_promote, &step, &err))
	{
		HamonCatalogWriteEvent(cluster_name, c->node_name, "promote_failed", err);
		return false;
	}
	outcome->timeline = step.timeline;
	outcome->lsn = step.lsn;
	HamonCatalogPromoted(cluster_name, cv->nodes[candidate].node_id,
						 step.timeline);
	HamonCatalogWriteEvent(cluster_name, c->node_name, "promoted",
						   psprintf("now primary on timeline %d at %X/%X",
									step.timeline, LSN_FORMAT_ARGS(step.lsn)));

	hamon_report_lost_logical_slots(cluster_name, cv);
	/* the standbys' slots exist before they are pointed at the new primary */
	HamonCreateManagedSlots(cluster_name, &step.target, c->node_id);

	initStringInfo(&summary);
	appendStringInfo(&summary, "promoted \"%s\" (timeline %d)", c->node_name,
					 step.timeline);
	for (i = 0; i < cv->nnodes; i++)
	{
		const HamonNodeView *n = &cv->nodes[i];
		HamonStep	rstep;

		/*
		 * A node never reached (role unknown: a wrong CA, host name or
		 * password from the start) may well be a standby of the old primary:
		 * it is reported as not repointed rather than skipped silently.
		 */
		if (i == candidate || i == cv->primary || n->sysid_mismatch ||
			(n->role != HAMON_ROLE_STANDBY && n->role != HAMON_ROLE_UNKNOWN))
			continue;
		if (n->health != HAMON_HEALTH_UP)
		{
			HamonCatalogWriteEvent(cluster_name, n->node_name, "repoint_failed",
								   psprintf("not reachable: repoint it to \"%s\" by hand",
											c->node_name));
			hamon_set_repointed(n->node_id, false);
			outcome->nfailed++;
			continue;
		}
		memset(&rstep, 0, sizeof(rstep));
		rstep.target.cluster_name = cluster_name;
		rstep.target.node_name = n->node_name;
		rstep.target.conninfo = n->conninfo;
		rstep.other_conninfo = c->conninfo;
		if (HamonTry(hamon_step_repoint, &rstep, &err))
		{
			HamonCatalogWriteEvent(cluster_name, n->node_name, "repointed",
								   psprintf("primary_conninfo now %s", rstep.masked));
			hamon_set_repointed(n->node_id, true);
			appendStringInfo(&summary, "; repointed \"%s\"", n->node_name);
			outcome->nrepointed++;
		}
		else
		{
			HamonCatalogWriteEvent(cluster_name, n->node_name, "repoint_failed", err);
			hamon_set_repointed(n->node_id, false);
			appendStringInfo(&summary, "; could not repoint \"%s\"", n->node_name);
			outcome->nfailed++;
		}
	}
	outcome->summary = summary.data;
	return true;
}

/*
 * Builds the decision view of a worker's cluster from its nodes (palloc'd in
 * the current context); map receives the HamonNode of each view entry.
 */
static void
hamon_worker_view(HamonCluster *cluster, List *nodes, HamonClusterView *cv,
				  HamonNode ***map)
{
	ListCell   *lc;
	int			n = 0;

	cv->nodes = palloc0(sizeof(HamonNodeView) * Max(list_length(nodes), 1));
	*map = palloc0(sizeof(HamonNode *) * Max(list_length(nodes), 1));
	cv->primary = -1;
	cv->timeline = cluster->timeline;
	foreach(lc, nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);
		HamonNodeView *v = &cv->nodes[n];

		if (node->cluster != cluster)
			continue;
		v->node_id = node->node_id;
		v->node_name = node->node_name;
		v->conninfo = node->conninfo;
		v->health = node->health;
		v->role = node->role;
		v->maintenance = node->maintenance;
		v->sysid_mismatch = node->sysid_mismatch;
		v->fenced = node->fenced;
		v->priority = node->priority;
		v->timeline = node->timeline;
		v->current_lsn = node->current_lsn;
		v->receive_lsn = node->receive_lsn;
		v->replay_lsn = node->replay_lsn;
		v->streaming = node->streaming;
		v->receiver = node->receiver;
		v->seen_streaming_at = node->seen_streaming_at;
		v->upstream_id = node->upstream_node_id;
		v->last_seen = node->last_seen;
		v->down_since = node->down_since;
		v->alive_signal = node->alive_signal;
		v->alive_at = node->alive_at;
		v->failure_class = node->failure_class;
		if (node->node_id == cluster->primary_id)
			cv->primary = n;
		(*map)[n] = node;
		n++;
	}
	cv->nnodes = n;
}

static void
hamon_plan(List **actions, HamonActionKind kind, HamonCluster *cluster,
		   HamonNode *node, char *reason)
{
	HamonPlannedAction *a = palloc0(sizeof(HamonPlannedAction));

	a->kind = kind;
	a->cluster = cluster;
	a->node = node;
	a->reason = reason;
	*actions = lappend(*actions, a);
}

/*
 * The primary is the writable node on the newest timeline.  A primary on a
 * newer timeline than the one the witness knows (promoted by us, or by hand
 * outside the witness) takes over; the old one becomes stale.
 */
static HamonNode *
hamon_adopt_primary(HamonCluster *cluster, List *nodes, List **events)
{
	HamonNode  *primary = HamonFindNode(nodes, cluster->primary_id);
	HamonNode  *best = NULL;
	ListCell   *lc;

	if (primary != NULL && primary->cluster != cluster)
		primary = NULL;
	foreach(lc, nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);

		if (node->cluster != cluster || node->health != HAMON_HEALTH_UP ||
			node->role != HAMON_ROLE_PRIMARY || node->sysid_mismatch ||
			node->fenced)
			continue;
		if (best == NULL || node->timeline > best->timeline ||
			(node->timeline == best->timeline && node == primary))
			best = node;
	}
	if (best == NULL)
		return primary;

	if (primary == NULL || best->timeline > cluster->timeline)
	{
		if (primary != NULL && primary != best)
			HamonAddEvent(events, best, "primary_changed",
						  psprintf("\"%s\" is primary on timeline %d, newer than \"%s\" on timeline %d",
								   best->node_name, best->timeline,
								   primary->node_name, cluster->timeline));
		cluster->primary_id = best->node_id;
		cluster->timeline = best->timeline;
		cluster->dirty = true;
		return best;
	}
	if (primary == best && best->timeline != cluster->timeline)
	{
		cluster->timeline = best->timeline;
		cluster->dirty = true;
	}
	return primary;
}

/* a writable node that is not the primary: stale, or split brain */
static void
hamon_review_other_primary(HamonCluster *cluster, HamonNode *primary,
						   HamonNode *node, TimestampTz now, List **events,
						   List **actions)
{
	if (node->timeline < cluster->timeline)
	{
		if (!node->fenced)
		{
			node->fenced = true;
			node->flags_dirty = true;
			if (!hamon_fence_old_primary)
				HamonAddEvent(events, node, "fenced",
							  psprintf("writable on timeline %d while \"%s\" is primary on timeline %d; pg_hamonitor.fence_old_primary is off, so it was only flagged",
									   node->timeline,
									   primary ? primary->node_name : "?",
									   cluster->timeline));
		}
		if (hamon_fence_old_primary && !node->read_only &&
			(node->fence_tried_at == 0 ||
			 now - node->fence_tried_at >= HAMON_FENCE_RETRY_MS * INT64CONST(1000)))
		{
			node->fence_tried_at = now;
			hamon_plan(actions, HAMON_ACT_FENCE, cluster, node,
					   psprintf("writable on timeline %d while \"%s\" is primary on timeline %d",
								node->timeline,
								primary ? primary->node_name : "?",
								cluster->timeline));
		}
	}
	else if (!node->split_brain)
	{
		node->split_brain = true;
		HamonAddEvent(events, node, "split_brain",
					  psprintf("\"%s\" and \"%s\" both accept writes on timeline %d",
							   node->node_name,
							   primary ? primary->node_name : "?",
							   node->timeline));
	}
}

/*
 * HamonReviewCluster
 *		Reviews one cluster after a batch of probes; see the file header.
 *		Appends events to *events and planned actions to *actions, both
 *		palloc'd in the current (per-batch) context.
 */
void
HamonReviewCluster(HamonCluster *cluster, List *nodes, TimestampTz now,
				   List **events, List **actions)
{
	HamonNode  *primary = hamon_adopt_primary(cluster, nodes, events);
	HamonFailoverRules rules;
	HamonClusterView cv;
	HamonDecision decision;
	HamonNode **map;
	ListCell   *lc;

	foreach(lc, nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);
		bool		writable_other;

		if (node->cluster != cluster || node == primary || node->sysid_mismatch)
			continue;

		writable_other = node->health == HAMON_HEALTH_UP &&
			node->role == HAMON_ROLE_PRIMARY;
		if (writable_other)
			hamon_review_other_primary(cluster, primary, node, now, events,
									   actions);
		else
			node->split_brain = false;

		/* a fenced node back as a standby has been rejoined */
		if (node->fenced && node->health == HAMON_HEALTH_UP &&
			node->role == HAMON_ROLE_STANDBY)
		{
			node->fenced = false;
			node->flags_dirty = true;
			HamonAddEvent(events, node, "unfenced",
						  pstrdup("back as a standby: fence lifted"));
			hamon_plan(actions, HAMON_ACT_UNFENCE, cluster, node, NULL);
		}

		/* a repointed standby: following yet? */
		if ((node->repointed_at != 0 || node->needs_rejoin) &&
			node->health == HAMON_HEALTH_UP &&
			node->role == HAMON_ROLE_STANDBY && node->streaming &&
			node->timeline >= cluster->timeline)
		{
			HamonAddEvent(events, node, "following",
						  psprintf("streams from the primary on timeline %d",
								   node->timeline));
			node->repointed_at = 0;
			node->needs_rejoin = false;
			node->flags_dirty = true;
		}
		else if (node->repointed_at != 0 && !node->needs_rejoin &&
				 now - node->repointed_at >=
				 (int64) hamon_repoint_timeout * 1000)
		{
			node->needs_rejoin = true;
			node->flags_dirty = true;
			HamonAddEvent(events, node, "needs_rejoin",
						  psprintf("not streaming on timeline %d %d ms after it was repointed; "
								   "it may have replayed past the promotion point: rejoin it with pg_rewind",
								   cluster->timeline, hamon_repoint_timeout));
		}
	}

	HamonRulesFromSettings(&rules);
	hamon_worker_view(cluster, nodes, &cv, &map);
	HamonDecideFailover(&cv, &rules, now, &decision);
	cluster->deciding = (decision.verdict == HAMON_VERDICT_WAIT);

	switch (decision.verdict)
	{
		case HAMON_VERDICT_HEALTHY:
			cluster->last_reason[0] = '\0';
			break;
		case HAMON_VERDICT_WAIT:
			{
				int			i;
				TimestampTz soon = TimestampTzPlusMilliseconds(now,
															   HAMON_DECIDING_PROBE_MS);

				/* the decision needs the standbys' fresh view */
				for (i = 0; i < cv.nnodes; i++)
					if (i != cv.primary && map[i]->health == HAMON_HEALTH_UP &&
						map[i]->next_probe_at > soon &&
						(map[i]->conn_state == HAMON_CONN_IDLE))
						map[i]->next_probe_at = soon;
				break;
			}
		case HAMON_VERDICT_BLOCKED:
			if (strcmp(decision.reason, cluster->last_reason) != 0)
			{
				strlcpy(cluster->last_reason, decision.reason,
						sizeof(cluster->last_reason));
				HamonAddEvent(events, map[cv.primary], "failover_blocked",
							  pstrdup(decision.reason));
			}
			break;
		case HAMON_VERDICT_PROMOTE:
			cluster->last_reason[0] = '\0';
			hamon_plan(actions, HAMON_ACT_FAILOVER, cluster,
					   map[decision.candidate], pstrdup(decision.reason));
			break;
	}
}

/* transaction bodies of the actions */
typedef struct HamonActionRun
{
	HamonPlannedAction *action;
	List	   *nodes;
	bool		done;
} HamonActionRun;

static void
hamon_run_fence(HamonPlannedAction *a)
{
	HamonStep	step;
	char	   *err;

	memset(&step, 0, sizeof(step));
	step.target.cluster_name = a->cluster->name;
	step.target.node_name = a->node->node_name;
	step.target.conninfo = a->node->conninfo;
	/* the fence ends every client session but the probe's own */
	if (a->node->conn != NULL &&
		(a->node->conn_state == HAMON_CONN_IDLE ||
		 a->node->conn_state == HAMON_CONN_BUSY))
		step.keep_pid = PQbackendPID(a->node->conn);
	if (a->kind == HAMON_ACT_FENCE)
	{
		if (HamonTry(hamon_step_fence, &step, &err))
			HamonCatalogWriteEvent(a->cluster->name, a->node->node_name, "fenced",
								   psprintf("%s: made read-only (default_transaction_read_only) and its client sessions ended",
											a->reason));
		else
			HamonCatalogWriteEvent(a->cluster->name, a->node->node_name,
								   "fence_failed",
								   psprintf("%s: %s", a->reason, err));
	}
	else if (!HamonTry(hamon_step_unfence, &step, &err))
		HamonCatalogWriteEvent(a->cluster->name, a->node->node_name,
							   "unfence_failed", err);
}

static void
hamon_run_failover(HamonActionRun *run)
{
	HamonPlannedAction *a = run->action;
	HamonClusterView cv;
	HamonNode **map;
	HamonFailoverOutcome outcome;
	int			primary_id;
	int			timeline;
	int			candidate = -1;
	int			i;

	/* someone else (a manual promote) is acting on this cluster: leave it */
	if (!HamonCatalogLockCluster(a->cluster->name, true, &primary_id, &timeline))
		return;
	/* and if someone already changed the primary, the decision is stale */
	if (primary_id != a->cluster->primary_id)
		return;

	hamon_worker_view(a->cluster, run->nodes, &cv, &map);
	for (i = 0; i < cv.nnodes; i++)
		if (map[i] == a->node)
			candidate = i;
	if (candidate < 0)
		return;
	run->done = HamonExecuteFailover(a->cluster->name, &cv, candidate,
									 "failover", a->reason, false, &outcome);
}

static void
hamon_action_txn(void *arg)
{
	HamonActionRun *run = (HamonActionRun *) arg;

	/* what the witness did must survive its crash (probe batches need not) */
	if (SPI_execute("SET LOCAL synchronous_commit = on", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not set synchronous_commit");

	/*
	 * Once a peer has been acted on, the record of it must not be lost to a
	 * lock timeout: an action waits for its locks as long as it takes (the
	 * cluster row itself it takes with SKIP LOCKED, before acting).
	 */
	if (SPI_execute("SET LOCAL lock_timeout = 0", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not set lock_timeout");

	if (run->action->kind == HAMON_ACT_FAILOVER)
		hamon_run_failover(run);
	else
		hamon_run_fence(run->action);
}

/*
 * HamonRunAction
 *		Runs a planned action in its own transaction.  Returns true if it
 *		changed the cluster's primary, so the worker reloads what the
 *		catalog now says.
 */
bool
HamonRunAction(HamonPlannedAction *action, List *nodes)
{
	HamonActionRun run;

	run.action = action;
	run.nodes = nodes;
	run.done = false;
	(void) HamonRunInTransaction(hamon_action_txn, &run,
								 action->kind == HAMON_ACT_FAILOVER ?
								 "fail over" : "fence or unfence a node");
	return run.done;
}
