/*-------------------------------------------------------------------------
 *
 * state.h
 *		From probe results to what the witness believes about each node.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/state.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_STATE_H
#define HAMON_STATE_H

#include "node.h"

extern HamonNode *HamonFindNode(List *nodes, int node_id);
extern bool HamonApplyProbe(HamonNode *node, List **events);
extern void HamonAddEvent(List **events, HamonNode *node, const char *kind,
						  char *detail);

#endif							/* HAMON_STATE_H */
