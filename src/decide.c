/*-------------------------------------------------------------------------
 *
 * decide.c
 *		The failover decision, as a pure function of observed state and time.
 *
 * Nothing here does I/O, reads a setting or looks at the clock: the worker
 * (and the manual SQL functions, and the test-only hamonitor.simulate_failover)
 * hand in a view of one cluster, the rules and "now", and get a verdict
 * back.  That keeps the rules readable in one place and testable with
 * injected states and times, apart from the slow end-to-end tests.
 *
 * A primary is declared failed only when both hold:
 *	 1. the witness has had no successful probe of it for failover_timeout
 *		(restart_grace when the outage came with a sign that its postmaster
 *		is alive: an orderly shutdown, a crash-restart, "starting up"), and
 *	 2. every reachable standby, probed since the outage began, says its
 *		WAL receiver is no longer streaming.  (For HAMON_STREAMING_SETTLE_MS
 *		after the outage, "still streaming" only means "look again": a
 *		receiver takes a moment to notice its sender died.)  One standby still streaming
 *		means only the witness lost sight of the primary, or the primary
 *		merely stalls (a paused primary keeps its replication connections):
 *		nothing is promoted.  With no reachable standby there is no second
 *		opinion, so nothing is promoted either.
 * Only then is a candidate chosen (HamonChooseCandidate).
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/decide.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "decide.h"

const char *
HamonVerdictName(HamonVerdict verdict)
{
	switch (verdict)
	{
		case HAMON_VERDICT_HEALTHY:
			return "healthy";
		case HAMON_VERDICT_WAIT:
			return "wait";
		case HAMON_VERDICT_BLOCKED:
			return "blocked";
		case HAMON_VERDICT_PROMOTE:
			return "promote";
	}
	return "unknown";
}

/* how much WAL a standby holds: the furthest of received and replayed */
static XLogRecPtr
hamon_standby_position(const HamonNodeView *node)
{
	return Max(node->receive_lsn, node->replay_lsn);
}

/*
 * HamonStandbyRefusal
 *		Whether the node may not be promoted, lag aside; if so, why.
 */
bool
HamonStandbyRefusal(const HamonNodeView *node, int timeline,
					char *why, size_t whylen)
{
	if (node->health != HAMON_HEALTH_UP)
		snprintf(why, whylen, "\"%s\" is not reachable", node->node_name);
	else if (node->role != HAMON_ROLE_STANDBY)
		snprintf(why, whylen, "\"%s\" is not a standby", node->node_name);
	else if (node->sysid_mismatch)
		snprintf(why, whylen, "\"%s\" has another system identifier",
				 node->node_name);
	else if (node->fenced)
		snprintf(why, whylen, "\"%s\" is fenced", node->node_name);
	else if (node->maintenance)
		snprintf(why, whylen, "\"%s\" is in maintenance", node->node_name);
	else if (node->priority <= 0)
		snprintf(why, whylen, "\"%s\" has priority 0", node->node_name);
	else if (timeline > 0 && node->timeline != timeline)
		snprintf(why, whylen, "\"%s\" is on timeline %d, not %d",
				 node->node_name, node->timeline, timeline);
	else
		return false;
	return true;
}

/*
 * HamonLagRefusal
 *		Whether the node lacks more than max_lag_bytes of WAL behind
 *		primary_lsn (the failed primary's last known position); if so, why.
 */
bool
HamonLagRefusal(const HamonNodeView *node, XLogRecPtr primary_lsn,
				int64 max_lag_bytes, char *why, size_t whylen)
{
	XLogRecPtr	pos = hamon_standby_position(node);

	if (XLogRecPtrIsInvalid(primary_lsn) || primary_lsn <= pos ||
		(int64) (primary_lsn - pos) <= max_lag_bytes)
		return false;
	snprintf(why, whylen,
			 "\"%s\" lags " UINT64_FORMAT " bytes behind %X/%X, more than max_failover_lag",
			 node->node_name, (uint64) (primary_lsn - pos),
			 LSN_FORMAT_ARGS(primary_lsn));
	return true;
}

/*
 * HamonChooseCandidate
 *		The best standby to promote: eligible (HamonStandbyRefusal), within
 *		max_lag_bytes of primary_lsn unless !check_lag, then most WAL, then
 *		highest priority, then first name.  Returns its index, or -1 with
 *		the reasons every node was refused in why.
 */
int
HamonChooseCandidate(const HamonClusterView *cv, XLogRecPtr primary_lsn,
					 int timeline, int64 max_lag_bytes, bool check_lag,
					 char *why, size_t whylen)
{
	int			best = -1;
	int			i;
	size_t		used = 0;

	why[0] = '\0';
	for (i = 0; i < cv->nnodes; i++)
	{
		const HamonNodeView *node = &cv->nodes[i];
		char		refusal[256];
		XLogRecPtr	pos = hamon_standby_position(node);
		const HamonNodeView *b;

		if (i == cv->primary)
			continue;
		if (HamonStandbyRefusal(node, timeline, refusal, sizeof(refusal)) ||
			(check_lag && HamonLagRefusal(node, primary_lsn, max_lag_bytes,
										  refusal, sizeof(refusal))))
		{
			if (used < whylen)
				used += snprintf(why + used, whylen - used, "%s%s",
								 used > 0 ? "; " : "", refusal);
			continue;
		}
		b = best >= 0 ? &cv->nodes[best] : NULL;
		if (b == NULL ||
			pos > hamon_standby_position(b) ||
			(pos == hamon_standby_position(b) &&
			 (node->priority > b->priority ||
			  (node->priority == b->priority &&
			   strcmp(node->node_name, b->node_name) < 0))))
			best = i;
	}
	return best;
}

/*
 * HamonDecideFailover
 *		Decides for one cluster at time now; see the file header.  The
 *		reason says what was seen, for the event log.
 */
void
HamonDecideFailover(const HamonClusterView *cv, const HamonFailoverRules *rules,
					TimestampTz now, HamonDecision *d)
{
	const HamonNodeView *p;
	int64		silent_ms;
	int			threshold_ms;
	int			reachable = 0;
	int			i;
	char		why[400];

	d->verdict = HAMON_VERDICT_HEALTHY;
	d->candidate = -1;
	d->reason[0] = '\0';

	if (cv->primary < 0)
	{
		snprintf(d->reason, sizeof(d->reason), "no primary is known");
		return;
	}
	p = &cv->nodes[cv->primary];
	if (p->health == HAMON_HEALTH_UP)
	{
		snprintf(d->reason, sizeof(d->reason), "primary \"%s\" is up",
				 p->node_name);
		return;
	}

	/* 1. long enough without a successful probe? */
	silent_ms = p->last_seen > 0 ? (now - p->last_seen) / 1000 : PG_INT64_MAX;
	threshold_ms = p->alive_signal ?
		Max(rules->restart_grace_ms, rules->failover_timeout_ms) :
		rules->failover_timeout_ms;
	if (p->down_since == 0 || silent_ms < threshold_ms)
	{
		d->verdict = HAMON_VERDICT_WAIT;
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" unreachable for " INT64_FORMAT " ms, waiting %d ms%s",
				 p->node_name, silent_ms == PG_INT64_MAX ? 0 : silent_ms,
				 threshold_ms,
				 p->alive_signal ? " (restart grace: its postmaster was alive)" : "");
		return;
	}

	d->verdict = HAMON_VERDICT_BLOCKED;
	if (p->maintenance)
	{
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down but in maintenance: no automatic failover",
				 p->node_name);
		return;
	}
	if (!rules->auto_failover)
	{
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down but pg_hamonitor.auto_failover is off",
				 p->node_name);
		return;
	}

	/* 2. do the standbys agree? */
	for (i = 0; i < cv->nnodes; i++)
	{
		const HamonNodeView *s = &cv->nodes[i];

		if (i == cv->primary || s->role != HAMON_ROLE_STANDBY ||
			s->health != HAMON_HEALTH_UP || s->sysid_mismatch || s->fenced)
			continue;
		reachable++;
		if (s->last_seen < p->down_since)
		{
			d->verdict = HAMON_VERDICT_WAIT;
			snprintf(d->reason, sizeof(d->reason),
					 "primary \"%s\" is down; waiting for a probe of standby \"%s\" taken since",
					 p->node_name, s->node_name);
			return;
		}
		if (s->streaming &&
			s->last_seen - p->down_since < HAMON_STREAMING_SETTLE_MS * INT64CONST(1000))
		{
			/* its WAL receiver may not have noticed yet: look again soon */
			d->verdict = HAMON_VERDICT_WAIT;
			snprintf(d->reason, sizeof(d->reason),
					 "primary \"%s\" is down; standby \"%s\" still streamed %d ms after, probing again",
					 p->node_name, s->node_name,
					 (int) ((s->last_seen - p->down_since) / 1000));
			return;
		}
		if (s->streaming)
		{
			snprintf(d->reason, sizeof(d->reason),
					 "primary \"%s\" is unreachable from the witness, but standby \"%s\" still streams from it: not promoting",
					 p->node_name, s->node_name);
			return;
		}
	}
	if (reachable == 0)
	{
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down and no standby is reachable to confirm it: not promoting",
				 p->node_name);
		return;
	}

	/* 3. whom to promote */
	d->candidate = HamonChooseCandidate(cv, p->current_lsn, cv->timeline,
										rules->max_lag_bytes, true,
										why, sizeof(why));
	if (d->candidate < 0)
	{
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down, no eligible candidate: %s",
				 p->node_name, why);
		return;
	}
	d->verdict = HAMON_VERDICT_PROMOTE;
	snprintf(d->reason, sizeof(d->reason),
			 "primary \"%s\" (last LSN %X/%X) unreachable for " INT64_FORMAT " ms and lost by all %d reachable standbys; promoting \"%s\" (received %X/%X, replayed %X/%X)",
			 p->node_name, LSN_FORMAT_ARGS(p->current_lsn), silent_ms,
			 reachable, cv->nodes[d->candidate].node_name,
			 LSN_FORMAT_ARGS(cv->nodes[d->candidate].receive_lsn),
			 LSN_FORMAT_ARGS(cv->nodes[d->candidate].replay_lsn));
}
