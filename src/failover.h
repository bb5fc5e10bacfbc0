/*-------------------------------------------------------------------------
 *
 * failover.h
 *		From decisions to planned actions: failover, fencing.
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
#include "engine.h"
#include "node.h"

extern void HamonRulesFromSettings(HamonFailoverRules *rules);
extern void HamonReviewCluster(HamonCluster *cluster, List *nodes,
							   TimestampTz now, List **events,
							   List **actions);

#endif							/* HAMON_FAILOVER_H */
