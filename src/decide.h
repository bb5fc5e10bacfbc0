/*-------------------------------------------------------------------------
 *
 * decide.h
 *		The failover decision, as a pure function of observed state and time.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/decide.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_DECIDE_H
#define HAMON_DECIDE_H

#include "node.h"

/*
 * A standby probed this soon after the primary went down and still
 * streaming may just not have noticed yet: the decision waits and looks
 * again rather than calling it a partition.
 */
#define HAMON_STREAMING_SETTLE_MS 1000

/* what the decision needs to know of one node */
typedef struct HamonNodeView
{
	int			node_id;
	const char *node_name;
	const char *conninfo;		/* for the actions; not used to decide */
	HamonHealth health;
	HamonRole	role;
	bool		maintenance;
	bool		sysid_mismatch;
	bool		fenced;
	int			priority;
	int			timeline;
	XLogRecPtr	current_lsn;	/* primary: last known position */
	XLogRecPtr	receive_lsn;	/* standby */
	XLogRecPtr	replay_lsn;		/* standby */
	bool		streaming;		/* standby: its WAL receiver streams */
	HamonReceiver receiver;		/* standby: what its probe saw of it */
	TimestampTz seen_streaming_at;	/* standby: last seen streaming, 0 never */
	int			upstream_id;	/* standby: registered node it streams from */
	TimestampTz last_seen;		/* last successful probe, 0 if never */
	TimestampTz down_since;		/* first failure of this outage, 0 if up */
	bool		alive_signal;	/* the outage had a sign of life */
	TimestampTz alive_at;		/* the latest one, 0 if unknown */
	HamonFailureClass failure_class;	/* of the latest failure */
	bool		sync_listed;	/* named in the primary's applied quorum */
} HamonNodeView;

typedef struct HamonClusterView
{
	int			nnodes;
	HamonNodeView *nodes;
	int			primary;		/* index of the cluster's primary, -1 if none */
	int			timeline;		/* the cluster's current timeline, 0 unknown */
	/*
	 * durability: k of the quorum the primary applied (ANY k, or FIRST k),
	 * 0 if none (then max_failover_lag rules); degraded: the primary may
	 * have acknowledged commits alone (degrade = preferred lowered k)
	 */
	int			sync_k;
	bool		sync_degraded;
} HamonClusterView;

typedef struct HamonFailoverRules
{
	bool		auto_failover;
	int			failover_timeout_ms;
	int			restart_grace_ms;
	int64		max_lag_bytes;
} HamonFailoverRules;

typedef enum HamonVerdict
{
	HAMON_VERDICT_HEALTHY,		/* the primary is up, or none is known */
	HAMON_VERDICT_WAIT,			/* the primary is unreachable, not yet failed */
	HAMON_VERDICT_BLOCKED,		/* failed or unconfirmed, and nothing may be promoted */
	HAMON_VERDICT_PROMOTE		/* promote decision.candidate */
} HamonVerdict;

typedef struct HamonDecision
{
	HamonVerdict verdict;
	int			candidate;		/* index into the view's nodes, or -1 */
	char		reason[512];
} HamonDecision;

extern void HamonDecideFailover(const HamonClusterView *cv,
								const HamonFailoverRules *rules,
								TimestampTz now, HamonDecision *decision);
extern bool HamonCheckEvidence(const HamonClusterView *cv,
							   const HamonFailoverRules *rules,
							   TimestampTz now, HamonDecision *decision);
extern int	HamonBetterStandby(const HamonClusterView *cv, int target,
							   int64 max_lag_bytes, char *why, size_t whylen);
extern int	HamonChooseCandidate(const HamonClusterView *cv,
								 XLogRecPtr primary_lsn, int timeline,
								 int64 max_lag_bytes, bool check_lag,
								 char *why, size_t whylen);
extern const char *HamonVerdictName(HamonVerdict verdict);
extern bool HamonLagRefusal(const HamonNodeView *node, XLogRecPtr primary_lsn,
							int64 max_lag_bytes, char *why, size_t whylen);
extern bool HamonStandbyRefusal(const HamonNodeView *node, int timeline,
								char *why, size_t whylen);

#endif							/* HAMON_DECIDE_H */
