/*-------------------------------------------------------------------------
 *
 * catalog.h
 *		The probe worker's reads and writes of the extension's tables.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_CATALOG_H
#define HAMON_CATALOG_H

#include "node.h"

extern bool HamonRunInTransaction(void (*fn) (void *), void *arg,
								  const char *activity);
extern bool HamonExtensionExists(void);
extern List *HamonCatalogLoadNodes(int worker_index, int nworkers,
								   MemoryContext callercxt);
extern void HamonCatalogWriteProbes(List *nodes, List *clusters, List *events);
extern uint64 HamonCatalogPurgeHistory(void);

#endif							/* HAMON_CATALOG_H */
