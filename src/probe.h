/*-------------------------------------------------------------------------
 *
 * probe.h
 *		One node's connection and probe, as a non-blocking state machine.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/probe.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_PROBE_H
#define HAMON_PROBE_H

#include "node.h"
#include "resolve.h"

extern void HamonProbeTick(HamonNode *node, TimestampTz now);
extern void HamonProbeSocketReady(HamonNode *node, uint32 events,
								  TimestampTz now);
extern TimestampTz HamonProbeNextWakeup(HamonNode *node);
extern void HamonProbeStop(HamonNode *node);
extern void HamonProbeNow(HamonNode *node, TimestampTz now);
extern void HamonProbeResolved(void *owner, uint64 seq, int nnames,
							   const HamonResolved *answers);
extern void HamonProbeAt(HamonNode *node, TimestampTz at);
extern void HamonProbeRereadSlots(HamonNode *node);
extern void HamonProbeRoundStart(void);
extern bool HamonProbeRoundDue(TimestampTz now);
extern void HamonProbeNoteWakeup(HamonNode *node);
extern TimestampTz HamonProbeWakeup(void);
extern void HamonProbeWakeAll(void);
extern List *HamonProbeTakeTouched(void);
extern bool HamonProbeSlotFreed(void);
extern List *HamonProbeTakeReady(void);
extern int	HamonProbeInFlight(void);

#endif							/* HAMON_PROBE_H */
