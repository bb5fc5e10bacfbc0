/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Differences between the PostgreSQL majors pg_hamonitor builds on.
 *
 * Only PostgreSQL 15 is tested here; the guards below keep the code
 * compiling on 16 and 17, whose APIs moved a few things around.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_COMPAT_H
#define HAMON_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "pg_hamonitor requires PostgreSQL 15 or newer"
#endif

#include "storage/latch.h"
#include "utils/memutils.h"

/* PG17 creates wait event sets under a resource owner, not a context */
#if PG_VERSION_NUM >= 170000
#define HamonCreateWaitEventSet(nevents) \
	CreateWaitEventSet(NULL, (nevents))
#else
#define HamonCreateWaitEventSet(nevents) \
	CreateWaitEventSet(TopMemoryContext, (nevents))
#endif

/* custom wait events arrived in PG17; before that, one generic event */
#define HAMON_WAIT_EVENT PG_WAIT_EXTENSION

#endif							/* HAMON_COMPAT_H */
