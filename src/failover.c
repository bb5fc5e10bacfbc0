/*-------------------------------------------------------------------------
 *
 * failover.c
 *		From decisions to planned actions: failover, fencing.
 *
 * After each batch of probes the worker reviews every cluster it owns
 * (HamonReviewCluster): which node is the primary (the writable one on the
 * newest timeline), whether a stale primary came back and must be fenced,
 * whether a repointed standby now follows, and what decide.c says about a
 * primary that is down.  The review only changes memory and plans actions;
 * the worker writes each planned action into hamonitor.action together
 * with the events of its decision, and the action engine (engine.c) runs
 * it in a process of its own once that has committed.  A cluster with an
 * action in progress gets no second one: its decision waits.
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
#include "probe.h"
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
	cv->sync_k = cluster->sync_k;
	cv->sync_degraded = cluster->sync_degraded;
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
		v->sync_listed = node->sync_listed;
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

		/*
		 * A fenced node back as a standby has been rejoined: its fence is
		 * lifted by an action, which records it (and clears the flag) once
		 * done; until then it is planned again every HAMON_FENCE_RETRY_MS.
		 */
		if (node->fenced && node->health == HAMON_HEALTH_UP &&
			node->role == HAMON_ROLE_STANDBY && cluster->action_id == 0 &&
			(node->fence_tried_at == 0 ||
			 now - node->fence_tried_at >= HAMON_FENCE_RETRY_MS * INT64CONST(1000)))
		{
			node->fence_tried_at = now;
			hamon_plan(actions, HAMON_ACT_UNFENCE, cluster, node,
					   pstrdup("back as a standby: fence lifted"));
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
						HamonProbeAt(map[i], soon);
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
			/*
			 * An open 'sync' action does not hold the failover up: it may be
			 * waiting for the dead primary.  The failover supersedes it
			 * (engine.c), and starts once its worker is gone.
			 */
			if (cluster->action_id != 0 && cluster->action_is_sync)
			{
				cluster->last_reason[0] = '\0';
				hamon_plan(actions, HAMON_ACT_FAILOVER, cluster,
						   map[decision.candidate], pstrdup(decision.reason));
				((HamonPlannedAction *) llast(*actions))->supersedes =
					cluster->action_id;
				/* if its row is locked now, the next round tries again */
				cluster->deciding = true;
				break;
			}
			if (cluster->action_id != 0)
			{
				/*
				 * One action at a time per cluster: this decision waits for
				 * the open one (a promotion in flight above all: its
				 * candidate may still become primary).
				 */
				char	   *why = psprintf("primary \"%s\" failed, but action " INT64_FORMAT " (%s%s) is in progress on the cluster: waiting for it",
										   map[cv.primary]->node_name,
										   cluster->action_id,
										   cluster->action_state,
										   cluster->action_stalled ? ", stalled" : "");

				/*
				 * An action under way is no news; one that stalled is, and
				 * says why nothing else happens.
				 */
				if (cluster->action_stalled &&
					strcmp(why, cluster->last_reason) != 0)
				{
					strlcpy(cluster->last_reason, why,
							sizeof(cluster->last_reason));
					HamonAddEvent(events, map[cv.primary], "failover_blocked",
								  why);
				}
				cluster->deciding = true;
				break;
			}
			cluster->last_reason[0] = '\0';
			hamon_plan(actions, HAMON_ACT_FAILOVER, cluster,
					   map[decision.candidate], pstrdup(decision.reason));
			break;
	}
}
