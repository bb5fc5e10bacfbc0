/*-------------------------------------------------------------------------
 *
 * action.h
 *		What the witness does to peers, over SQL: promote, repoint, fence.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/action.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_ACTION_H
#define HAMON_ACTION_H

#include "access/xlogdefs.h"
#include "libpq-fe.h"

#include "pg_hamonitor.h"

/* the node an action is for */
typedef struct HamonTarget
{
	const char *cluster_name;
	const char *node_name;
	const char *conninfo;
} HamonTarget;

/* a step run on a peer's connection by HamonWithPeer */
typedef void (*HamonPeerStep) (PGconn *conn, const HamonTarget *t, void *arg);

extern bool HamonTry(void (*fn) (void *), void *arg, char **errmsg);
extern void HamonWithPeer(const HamonTarget *t, HamonPeerStep fn, void *arg);
extern void HamonActionPromote(const HamonTarget *t, bool send,
							   int timeout_ms, bool *requested,
							   int *timeline, XLogRecPtr *lsn);
extern char *HamonActionRepoint(const HamonTarget *t,
								const char *new_primary_conninfo,
								const char *application_name, bool *changed);
extern void HamonActionSetSyncNames(const HamonTarget *t, const char *names);
extern XLogRecPtr HamonActionFence(const HamonTarget *t, int keep_pid);
extern void HamonActionUnfence(const HamonTarget *t, bool rejoined);
extern void HamonActionWaitReplay(const HamonTarget *t, XLogRecPtr lsn,
								  int timeout_ms, bool *left_recovery);

/*
 * The same actions as steps for HamonTry (fn(void *arg)): a failure is an
 * outcome to record, not a reason to abort the caller's transaction.
 */
typedef struct HamonPromoteArgs
{
	const HamonTarget *target;
	bool		send;
	int			timeout_ms;
	bool	   *requested;		/* set once the request may have been sent */
	int		   *timeline;
	XLogRecPtr *lsn;
} HamonPromoteArgs;

typedef struct HamonRepointArgs
{
	const HamonTarget *target;
	const char *new_primary_conninfo;	/* NULL: keep the address */
	const char *application_name;	/* NULL: keep the standby's own */
	char	   *masked;			/* out: the new primary_conninfo, masked */
	bool		changed;		/* out: primary_conninfo was rewritten */
} HamonRepointArgs;

typedef struct HamonSyncNamesArgs
{
	const HamonTarget *target;
	const char *names;			/* synchronous_standby_names to set */
} HamonSyncNamesArgs;

typedef struct HamonFenceArgs
{
	const HamonTarget *target;
	int			keep_pid;
	XLogRecPtr	lsn;			/* out: its flush LSN once fenced */
} HamonFenceArgs;

typedef struct HamonReplayArgs
{
	const HamonTarget *target;
	XLogRecPtr	lsn;
	int			timeout_ms;
	bool		left_recovery;	/* out: the target was seen promoted */
} HamonReplayArgs;

extern void HamonStepPromote(void *arg);
extern void HamonStepRepoint(void *arg);
extern void HamonStepFence(void *arg);
extern void HamonStepUnfence(void *arg);	/* arg: the HamonTarget */
extern void HamonStepGiveBack(void *arg);	/* the same, on a primary */
extern void HamonStepWaitReplay(void *arg);
extern void HamonStepSetSyncNames(void *arg);	/* arg: HamonSyncNamesArgs */

#endif							/* HAMON_ACTION_H */
