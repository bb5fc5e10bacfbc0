/*-------------------------------------------------------------------------
 *
 * resolve.h
 *		Host name resolution outside the probe loop: a resolver helper process.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/resolve.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_RESOLVE_H
#define HAMON_RESOLVE_H

#include "port.h"

/* at most this many names in one request (libpq's host lists are short) */
#define HAMON_RESOLVE_MAX_NAMES 16

/* what the helper found for one name */
typedef struct HamonResolved
{
	bool		ok;
	char		addresses[512]; /* numeric addresses, comma-separated */
	char		error[128];		/* getaddrinfo's message when not ok */
} HamonResolved;

/* called with each answer; names in the order asked */
typedef void (*HamonResolveCallback) (void *owner, uint64 seq, int nnames,
									  const HamonResolved *answers);

extern void HamonResolverInit(HamonResolveCallback callback);
extern pgsocket HamonResolverSocket(void);
extern uint64 HamonResolverGeneration(void);
extern uint64 HamonResolverAsk(void *owner, const char *const *names,
							   int nnames, int timeout_ms);
extern void HamonResolverForget(uint64 seq);
extern void HamonResolverReadable(void);
extern void HamonResolverShutdown(void);

#endif							/* HAMON_RESOLVE_H */
