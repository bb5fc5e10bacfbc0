/*-------------------------------------------------------------------------
 *
 * http.h
 *		The witness's HTTP endpoint: health checks for load balancers,
 *		cluster state as JSON, Prometheus metrics.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_HTTP_H
#define HAMON_HTTP_H

#include "fmgr.h"
#include "lib/stringinfo.h"

/* http.c */
extern PGDLLEXPORT void HamonHttpMain(Datum main_arg);
extern void HamonRegisterHttpWorker(void);

/*
 * A probe older than this many milliseconds is stale: the state it shows
 * is not reported as primary or replica.  A node that is up is probed every
 * probe_interval, and its result written within a quarter of it (at most
 * 250 ms, worker.c), which the three intervals of margin cover.
 */
#define HAMON_FRESH_MS() (3 * hamon_probe_interval + hamon_probe_timeout + 100)

#endif							/* HAMON_HTTP_H */
