/*-------------------------------------------------------------------------
 *
 * engine.h
 *		The action engine: actions on the peers, run beside the probes.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/engine.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_ENGINE_H
#define HAMON_ENGINE_H

#include "node.h"

/* what an action does (hamonitor.action.kind) */
typedef enum HamonActionKind
{
	HAMON_ACT_FENCE,
	HAMON_ACT_UNFENCE,
	HAMON_ACT_FAILOVER,			/* automatic, and manual failover() */
	HAMON_ACT_PROMOTE,			/* manual promote() */
	HAMON_ACT_SWITCHOVER,
	HAMON_ACT_SYNC				/* a primary's synchronous_standby_names */
} HamonActionKind;

/* an action the probe worker's review decided on */
typedef struct HamonPlannedAction
{
	HamonActionKind kind;
	HamonCluster *cluster;
	HamonNode  *node;			/* fenced/unfenced node, or the candidate */
	char	   *reason;
	/* a failover: the open 'sync' action of the cluster it supersedes */
	int64		supersedes;
} HamonPlannedAction;

/* a manual function's request, handed to an action worker */
typedef struct HamonActionRequest
{
	HamonActionKind kind;
	const char *cluster_name;
	int			node_id;		/* the target */
	const char *node_name;
	int			old_primary_id;
	bool		force;
	const char *reason;
} HamonActionRequest;

extern const char *HamonActionKindName(HamonActionKind kind);
extern HamonActionKind HamonActionKindFromName(const char *name);

/* the probe worker */
extern bool HamonEngineEnqueue(HamonPlannedAction *action);
extern void HamonEngineLaunchPlanned(List *actions);
extern bool HamonEngineRefresh(List *clusters);
extern bool HamonEngineTick(List *clusters, TimestampTz now);
extern bool HamonEngineRunning(int64 action_id);
extern bool HamonEngineSupersedeSync(const char *cluster_name,
									 const char *by, int64 *superseded);
extern void HamonEngineStopAction(int64 action_id);
extern void HamonEngineStopAll(void);
extern void HamonEngineLockCluster(const char *cluster_name);

/* the manual SQL functions */
extern text *HamonEngineRequest(const HamonActionRequest *req);

/* the action worker (sequence.c) */
extern PGDLLEXPORT void HamonActionWorkerMain(Datum main_arg);

#endif							/* HAMON_ENGINE_H */
