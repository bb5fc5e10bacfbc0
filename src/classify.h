/*-------------------------------------------------------------------------
 *
 * classify.h
 *		What a failed contact with a peer says about its postmaster.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/classify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_CLASSIFY_H
#define HAMON_CLASSIFY_H

/*
 * The classes.  Their names (HamonFailureClassName) are stored in the
 * catalog and shown: keep them stable.
 */
typedef enum HamonFailureClass
{
	HAMON_FAIL_NONE = 0,		/* no failure */
	HAMON_FAIL_UNREACHABLE,		/* refused, no route, closed without a word */
	HAMON_FAIL_TIMEOUT,			/* the witness's connect or probe deadline */
	HAMON_FAIL_POSTMASTER_GONE, /* a backend said its postmaster died */
	HAMON_FAIL_SHUTDOWN,		/* 57P01 administrator command: a stop */
	HAMON_FAIL_CRASH_RESTART,	/* 57P02: another process crashed, restarting */
	HAMON_FAIL_STARTING,		/* starting up, in recovery mode, not yet
								 * accepting connections */
	HAMON_FAIL_STOPPING,		/* the database system is shutting down */
	HAMON_FAIL_TOO_MANY,		/* 53300: too many connections */
	HAMON_FAIL_AUTH,			/* 28xxx, 42501: it answered and refused us */
	HAMON_FAIL_SERVER_ERROR,	/* any other error the server sent */
	HAMON_FAIL_OTHER			/* trouble on the witness's side */
} HamonFailureClass;

extern HamonFailureClass HamonClassifyFailure(const char *sqlstate,
											  const char *message);
extern const char *HamonFailureClassName(HamonFailureClass cls);
extern HamonFailureClass HamonFailureClassFromName(const char *name);
extern bool HamonFailureSaysAlive(HamonFailureClass cls);
extern bool HamonFailureSignOfLife(HamonFailureClass cls);

#endif							/* HAMON_CLASSIFY_H */
