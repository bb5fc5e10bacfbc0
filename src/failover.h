/*-------------------------------------------------------------------------
 *
 * failover.h
 *		From decisions to actions: failover, repointing, fencing.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/failover.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_FAILOVER_H
#define HAMON_FAILOVER_H

#include "decide.h"
#include "node.h"

/* an action the worker's review decided on, run after the batch is written */
typedef enum HamonActionKind
{
	HAMON_ACT_FENCE,
	HAMON_ACT_UNFENCE,
	HAMON_ACT_FAILOVER
} HamonActionKind;

typedef struct HamonPlannedAction
{
	HamonActionKind kind;
	HamonCluster *cluster;
	HamonNode  *node;			/* fenced/unfenced node, or the candidate */
	char	   *reason;
} HamonPlannedAction;

/* what a promotion did */
typedef struct HamonFailoverOutcome
{
	int			timeline;
	XLogRecPtr	lsn;
	int			nrepointed;
	int			nfailed;
	char	   *summary;		/* palloc'd, for the SQL functions */
} HamonFailoverOutcome;

extern void HamonRulesFromSettings(HamonFailoverRules *rules);
extern bool HamonExecuteFailover(const char *cluster_name,
								 const HamonClusterView *cv, int candidate,
								 const char *kind, const char *reason,
								 bool throw_errors,
								 HamonFailoverOutcome *outcome);
extern void HamonReviewCluster(HamonCluster *cluster, List *nodes,
							   TimestampTz now, List **events,
							   List **actions);
extern bool HamonRunAction(HamonPlannedAction *action, List *nodes);

#endif							/* HAMON_FAILOVER_H */
