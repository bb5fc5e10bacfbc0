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

#include "decide.h"
#include "node.h"

extern bool HamonRunInTransaction(void (*fn) (void *), void *arg,
								  const char *activity);
extern bool HamonRunInTransactionEx(void (*fn) (void *), void *arg,
									const char *activity, int elevel,
									int *sqlstate);
extern bool HamonExtensionExists(void);
extern List *HamonCatalogLoadNodes(int worker_index, int nworkers,
								   MemoryContext callercxt, List **clusters);
extern void HamonCatalogWriteProbes(List *records, List *clusters,
									List *flagged, List *events,
									MemoryContext resultcxt,
									List **flags_written);
extern uint64 HamonCatalogPurgeHistory(void);
extern void HamonCatalogFoldEventCounts(void);

/* one registered node, as HamonCatalogForEachNode hands it over */
typedef void (*HamonNodeRowFn) (const char *cluster_name, const char *node_name,
								const char *conninfo, bool known_down,
								void *arg);
extern void HamonCatalogForEachNode(HamonNodeRowFn fn, void *arg);
extern int64 HamonCatalogWriteEvent(const char *cluster_name,
									const char *node_name, const char *kind,
									const char *detail);
extern void HamonCatalogWriteNodeFlags(int node_id, const bool *fenced,
									   const bool *needs_rejoin,
									   const TimestampTz *repointed_at);
extern bool HamonCatalogLockCluster(const char *cluster_name, bool skip_locked,
									int *primary_id, int *timeline);
extern void HamonCatalogPromoted(const char *cluster_name, int node_id,
								 int timeline);
extern void HamonCatalogReadCluster(const char *cluster_name, int *primary_id,
									int *timeline);
extern void HamonCatalogLoadView(const char *cluster_name, int primary_id,
								 int timeline, HamonClusterView *cv);

#endif							/* HAMON_CATALOG_H */
