/*-------------------------------------------------------------------------
 *
 * slots.h
 *		Replication slots on the peers: create, drop, advance, manage.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/slots.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_SLOTS_H
#define HAMON_SLOTS_H

#include "access/xlogdefs.h"

#include "action.h"
#include "node.h"

extern void HamonValidateSlotName(const char *name);
extern bool HamonSlotCreate(const HamonTarget *t, const char *slot_name,
							bool logical, const char *plugin);
extern bool HamonSlotDrop(const HamonTarget *t, const char *slot_name,
						  int tries);
extern XLogRecPtr HamonSlotAdvance(const HamonTarget *t, const char *slot_name,
								   XLogRecPtr lsn);
extern void HamonSetPrimarySlotName(const HamonTarget *t,
									const char *slot_name);
extern void HamonReviewSlots(HamonCluster *cluster, List *nodes);
extern void HamonCreateManagedSlots(const char *cluster_name,
									const HamonTarget *primary,
									int primary_node_id);

#endif							/* HAMON_SLOTS_H */
