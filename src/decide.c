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
 * A primary is declared failed only when all of these hold (the README's
 * decision table says the same, row by row):
 *	 1. its postmaster is not known to be alive.  If the latest failed
 *		contact showed it alive (a crash-restart, "starting up", "shutting
 *		down", too many connections, an authentication or other error the
 *		server sent: classify.c), nothing is promoted automatically: the
 *		verdict is "wait" for restart_grace, then "blocked", with an event
 *		for a human.  A live postmaster comes back writable by itself.
 *	 2. the witness has had no successful probe of it, and no sign of life
 *		from it, for failover_timeout; restart_grace instead when the outage
 *		had a sign of life (an orderly shutdown, or 1. earlier in the
 *		outage), counted from the last such sign: a shutdown followed by
 *		refused connections for longer than restart_grace is a stop.
 *	 3. the standbys confirm it.  Each reachable standby, probed since the
 *		outage began, is asked:
 *		- one that streams from another registered standby (cascading)
 *		  neither confirms nor denies: it is left out;
 *		- one that still streams denies (for HAMON_STREAMING_SETTLE_MS
 *		  after the outage, "streaming" only means "look again": a receiver
 *		  takes a moment to notice its sender died).  That is a partition
 *		  between the witness and the primary, or a primary that stalls;
 *		- one whose receiver status the witness cannot read (the role lacks
 *		  pg_read_all_stats) may be streaming: it blocks too;
 *		- one with no WAL receiver, or one not streaming, confirms only if
 *		  the witness saw it streaming before (kept in the catalog): one
 *		  that never streamed (archive-only, broken primary_conninfo) was
 *		  not following the primary, and says nothing of its death.
 *		At least one standby must confirm, and none deny.
 * Then a candidate is chosen (HamonChooseCandidate); and it is not
 * promoted if a standby that may not be promoted (priority 0, maintenance,
 * fenced) holds more than max_failover_lag of WAL beyond it: commits the
 * old primary acknowledged may exist only there.
 *
 * Under a synchronous quorum (the primary applied ANY k of N listed
 * standbys: cv->sync_k > 0) every commit it acknowledged is on at least k
 * listed standbys, so any N - k + 1 of them include one that has it (R + W
 * > N, CloudNativePG's failoverQuorum).  Then the byte-lag gate is
 * replaced: at least N - k + 1 listed standbys must be reachable and
 * probed since the outage, and the candidate is the one of them with the
 * most WAL received (which holds every acknowledged commit); if that one
 * may not be promoted, nothing is.  A cluster whose quorum was lowered
 * (degraded) is blocked: commits may rest on the old primary alone.
 *
 * HamonCheckEvidence is 1. to 3. alone, for the manual promote(), which
 * applies the same evidence rule unless forced.
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
 * Whether the primary's failure is established: 1. and 2. of the file
 * header.  Returns true to go on, or false with the verdict in d.
 */
static bool
hamon_primary_silent(const HamonNodeView *p, const HamonFailoverRules *rules,
					 TimestampTz now, HamonDecision *d)
{
	int64		silent_ms;
	int64		quiet_ms;
	int			threshold_ms;
	TimestampTz last_life;

	silent_ms = p->last_seen > 0 ? (now - p->last_seen) / 1000 : PG_INT64_MAX;

	/* 1. the latest contact says its postmaster lives */
	if (HamonFailureSaysAlive(p->failure_class))
	{
		if (p->down_since == 0 || silent_ms < rules->restart_grace_ms)
		{
			d->verdict = HAMON_VERDICT_WAIT;
			snprintf(d->reason, sizeof(d->reason),
					 "primary \"%s\" unreachable for " INT64_FORMAT " ms, but its postmaster answers (%s): waiting up to restart_grace (%d ms)",
					 p->node_name, silent_ms == PG_INT64_MAX ? 0 : silent_ms,
					 HamonFailureClassName(p->failure_class),
					 rules->restart_grace_ms);
			return false;
		}
		d->verdict = HAMON_VERDICT_BLOCKED;
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" has refused the witness for longer than restart_grace, but its postmaster answers (%s): not failing over a live postmaster; repair it, or promote a standby by hand",
				 p->node_name, HamonFailureClassName(p->failure_class));
		return false;
	}

	/* 2. long enough without a successful probe or a sign of life? */
	last_life = p->last_seen;
	if (p->alive_signal)
	{
		last_life = Max(last_life, p->alive_at);
		threshold_ms = Max(rules->restart_grace_ms, rules->failover_timeout_ms);
	}
	else
		threshold_ms = rules->failover_timeout_ms;
	quiet_ms = last_life > 0 ? (now - last_life) / 1000 : PG_INT64_MAX;
	if (p->down_since == 0 || quiet_ms < threshold_ms)
	{
		d->verdict = HAMON_VERDICT_WAIT;
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" unreachable for " INT64_FORMAT " ms, waiting %d ms%s",
				 p->node_name, silent_ms == PG_INT64_MAX ? 0 : silent_ms,
				 threshold_ms,
				 p->alive_signal ? " (restart grace: its postmaster was alive or stopped in order)" : "");
		return false;
	}
	return true;
}

/* appends "; " and a formatted note to buf, as far as it fits */
static void
hamon_append(char *buf, size_t len, const char *fmt, const char *a,
			 const char *b)
{
	size_t		used = strlen(buf);

	if (used + 3 >= len)
		return;
	if (used > 0)
	{
		strcpy(buf + used, "; ");
		used += 2;
	}
	snprintf(buf + used, len - used, fmt, a, b);
}

/*
 * 3. of the file header: do the standbys confirm that the primary is gone?
 * Returns true if they do, or false with the verdict in d.
 */
static bool
hamon_standbys_confirm(const HamonClusterView *cv, HamonDecision *d,
					   int *nvotes)
{
	const HamonNodeView *p = &cv->nodes[cv->primary];
	int			reachable = 0;
	int			votes = 0;
	char		silent[300];
	int			i;

	silent[0] = '\0';
	for (i = 0; i < cv->nnodes; i++)
	{
		const HamonNodeView *s = &cv->nodes[i];
		const char *upstream = NULL;
		int			j;

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
			return false;
		}

		/* cascading: it streams from another registered node */
		if (s->upstream_id != 0 && s->upstream_id != p->node_id)
		{
			for (j = 0; j < cv->nnodes; j++)
				if (cv->nodes[j].node_id == s->upstream_id)
					upstream = cv->nodes[j].node_name;
			hamon_append(silent, sizeof(silent),
						 "\"%s\" streams from \"%s\" (cascading)",
						 s->node_name, upstream ? upstream : "?");
			continue;
		}

		switch (s->receiver)
		{
			case HAMON_RECEIVER_STREAMING:
				if (s->last_seen - p->down_since <
					HAMON_STREAMING_SETTLE_MS * INT64CONST(1000))
				{
					/* its WAL receiver may not have noticed yet: look again */
					d->verdict = HAMON_VERDICT_WAIT;
					snprintf(d->reason, sizeof(d->reason),
							 "primary \"%s\" is down; standby \"%s\" still streamed %d ms after, probing again",
							 p->node_name, s->node_name,
							 (int) ((s->last_seen - p->down_since) / 1000));
					return false;
				}
				d->verdict = HAMON_VERDICT_BLOCKED;
				snprintf(d->reason, sizeof(d->reason),
						 "primary \"%s\" is unreachable from the witness, but standby \"%s\" still streams from it: not promoting",
						 p->node_name, s->node_name);
				return false;
			case HAMON_RECEIVER_HIDDEN:
			case HAMON_RECEIVER_UNKNOWN:
				d->verdict = HAMON_VERDICT_BLOCKED;
				snprintf(d->reason, sizeof(d->reason),
						 "primary \"%s\" is unreachable from the witness, and standby \"%s\" could not vote: %s; it may still stream from the primary: not promoting",
						 p->node_name, s->node_name,
						 s->receiver == HAMON_RECEIVER_HIDDEN ?
						 "its WAL receiver's status is hidden from the witness's role (grant it pg_read_all_stats, or pg_monitor)" :
						 "the witness could not read its WAL receiver");
				return false;
			case HAMON_RECEIVER_NONE:
			case HAMON_RECEIVER_STOPPED:
				if (s->seen_streaming_at == 0)
				{
					hamon_append(silent, sizeof(silent),
								 "\"%s\" %s", s->node_name,
								 "was never seen streaming (archive-only, a broken primary_conninfo, or just started)");
					continue;
				}
				votes++;
				break;
		}
	}
	*nvotes = votes;
	if (reachable == 0)
	{
		d->verdict = HAMON_VERDICT_BLOCKED;
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down and no standby is reachable to confirm it: not promoting",
				 p->node_name);
		return false;
	}
	if (votes == 0)
	{
		d->verdict = HAMON_VERDICT_BLOCKED;
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down but no standby could vote that it lost it: %s: not promoting",
				 p->node_name, silent);
		return false;
	}
	return true;
}

/*
 * HamonBetterStandby
 *		A reachable standby on the cluster's timeline that holds more than
 *		max_lag_bytes of WAL beyond cv->nodes[target]: its index, with why
 *		set, or -1.  Commits the old primary acknowledged may exist only
 *		there.
 */
int
HamonBetterStandby(const HamonClusterView *cv, int target,
				   int64 max_lag_bytes, char *why, size_t whylen)
{
	XLogRecPtr	tpos = hamon_standby_position(&cv->nodes[target]);
	int			best = -1;
	int			i;

	for (i = 0; i < cv->nnodes; i++)
	{
		const HamonNodeView *x = &cv->nodes[i];

		if (i == target || i == cv->primary || x->health != HAMON_HEALTH_UP ||
			x->role != HAMON_ROLE_STANDBY || x->sysid_mismatch ||
			(cv->timeline > 0 && x->timeline != cv->timeline))
			continue;
		if (hamon_standby_position(x) <= tpos ||
			(int64) (hamon_standby_position(x) - tpos) <= max_lag_bytes)
			continue;
		if (best < 0 ||
			hamon_standby_position(x) > hamon_standby_position(&cv->nodes[best]))
			best = i;
	}
	if (best >= 0)
	{
		const HamonNodeView *x = &cv->nodes[best];
		char		refusal[256];

		if (HamonStandbyRefusal(x, cv->timeline, refusal, sizeof(refusal)))
			strlcat(refusal, " but", sizeof(refusal));
		else
			snprintf(refusal, sizeof(refusal), "standby \"%s\"", x->node_name);
		snprintf(why, whylen,
				 "%s holds " UINT64_FORMAT " bytes of WAL beyond \"%s\" (%X/%X against %X/%X), more than max_failover_lag",
				 refusal,
				 (uint64) (hamon_standby_position(x) - tpos),
				 cv->nodes[target].node_name,
				 LSN_FORMAT_ARGS(hamon_standby_position(x)),
				 LSN_FORMAT_ARGS(tpos));
	}
	return best;
}

/*
 * The quorum rule of the file header: the candidate, or -1 with the
 * verdict's reason in d.
 */
static int
hamon_quorum_candidate(const HamonClusterView *cv, HamonDecision *d)
{
	const HamonNodeView *p = &cv->nodes[cv->primary];
	int			listed = 0;
	int			seen = 0;
	int			need;
	int			best = -1;
	int			chosen = -1;
	char		unseen[300];
	char		refusal[256];
	int			i;

	unseen[0] = '\0';
	if (cv->sync_degraded)
	{
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down, but its synchronous quorum was degraded: it may have acknowledged commits no standby has; not promoting automatically (restore the quorum's standbys, or promote by hand with force => true)",
				 p->node_name);
		return -1;
	}
	for (i = 0; i < cv->nnodes; i++)
	{
		const HamonNodeView *s = &cv->nodes[i];

		if (i == cv->primary || !s->sync_listed)
			continue;
		listed++;
		if (s->health != HAMON_HEALTH_UP || s->role != HAMON_ROLE_STANDBY ||
			s->sysid_mismatch || s->last_seen < p->down_since)
		{
			hamon_append(unseen, sizeof(unseen), "\"%s\"%s", s->node_name, "");
			continue;
		}
		seen++;

		/*
		 * One on another timeline (it did not follow the last promotion: it
		 * had WAL beyond the fork, and awaits a rewind) has acknowledged no
		 * commit of this timeline: it is known to hold none, which counts
		 * as seen, but it is no candidate.
		 */
		if (cv->timeline > 0 && s->timeline != cv->timeline)
			continue;
		if (best < 0 ||
			hamon_standby_position(s) > hamon_standby_position(&cv->nodes[best]))
			best = i;
	}
	need = listed - cv->sync_k + 1;
	if (listed == 0 || seen < need || best < 0)
	{
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down; its commits waited for ANY %d of %d listed standbys, so %d of them must be reachable and probed since the outage to be sure one holds every acknowledged commit: %d seen, %d more needed%s%s; not promoting",
				 p->node_name, cv->sync_k, listed, Max(need, 1), seen,
				 Max(need, 1) - seen, unseen[0] ? "; not seen: " : "", unseen);
		return -1;
	}

	/* the most WAL among them holds every acknowledged commit */
	for (i = 0; i < cv->nnodes; i++)
	{
		const HamonNodeView *s = &cv->nodes[i];
		const HamonNodeView *c;

		if (i == cv->primary || !s->sync_listed ||
			s->health != HAMON_HEALTH_UP || s->role != HAMON_ROLE_STANDBY ||
			s->last_seen < p->down_since ||
			(cv->timeline > 0 && s->timeline != cv->timeline) ||
			hamon_standby_position(s) < hamon_standby_position(&cv->nodes[best]) ||
			HamonStandbyRefusal(s, cv->timeline, refusal, sizeof(refusal)))
			continue;
		c = chosen >= 0 ? &cv->nodes[chosen] : NULL;
		if (c == NULL || s->priority > c->priority ||
			(s->priority == c->priority &&
			 strcmp(s->node_name, c->node_name) < 0))
			chosen = i;
	}
	if (chosen < 0)
	{
		(void) HamonStandbyRefusal(&cv->nodes[best], cv->timeline, refusal,
								   sizeof(refusal));
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down; standby \"%s\" holds the most WAL of the quorum (%X/%X), and only it is sure to hold every acknowledged commit, but %s; not promoting",
				 p->node_name, cv->nodes[best].node_name,
				 LSN_FORMAT_ARGS(hamon_standby_position(&cv->nodes[best])),
				 refusal);
		return -1;
	}
	return chosen;
}

/*
 * HamonCheckEvidence
 *		1. to 3. of the file header: whether the cluster's primary is known
 *		to have failed.  True if so (or if no primary is known); otherwise
 *		false with the verdict (healthy, wait or blocked) and why in d.
 */
bool
HamonCheckEvidence(const HamonClusterView *cv, const HamonFailoverRules *rules,
				   TimestampTz now, HamonDecision *d)
{
	const HamonNodeView *p;
	int			votes;

	d->verdict = HAMON_VERDICT_HEALTHY;
	d->candidate = -1;
	d->reason[0] = '\0';
	if (cv->primary < 0)
		return true;
	p = &cv->nodes[cv->primary];
	if (p->health == HAMON_HEALTH_UP)
	{
		snprintf(d->reason, sizeof(d->reason), "primary \"%s\" is up",
				 p->node_name);
		return false;
	}
	return hamon_primary_silent(p, rules, now, d) &&
		hamon_standbys_confirm(cv, d, &votes);
}

/*
 * HamonDecideFailover
 *		Decides for one cluster at time now; see the file header.  The
 *		reason says what was seen, for the event log.  A "blocked" reason
 *		holds no figure that changes from one round to the next: it is
 *		logged each time it changes.
 */
void
HamonDecideFailover(const HamonClusterView *cv, const HamonFailoverRules *rules,
					TimestampTz now, HamonDecision *d)
{
	const HamonNodeView *p;
	int			votes = 0;
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

	/* 1. and 2.: alive, or not silent long enough? */
	if (!hamon_primary_silent(p, rules, now, d))
		return;

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

	/* 3. do the standbys confirm? */
	if (!hamon_standbys_confirm(cv, d, &votes))
		return;

	/* whom to promote: under a quorum, by R + W > N */
	d->verdict = HAMON_VERDICT_BLOCKED;
	if (cv->sync_k > 0 || cv->sync_degraded)
	{
		d->candidate = hamon_quorum_candidate(cv, d);
		if (d->candidate < 0)
			return;
		d->verdict = HAMON_VERDICT_PROMOTE;
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" (last LSN %X/%X) unreachable for " INT64_FORMAT " ms and lost by %d reachable standby(s) that streamed from it; promoting \"%s\" (received %X/%X, replayed %X/%X), the most WAL of its synchronous quorum (ANY %d): it holds every acknowledged commit",
				 p->node_name, LSN_FORMAT_ARGS(p->current_lsn),
				 p->last_seen > 0 ? (now - p->last_seen) / 1000 : 0,
				 votes, cv->nodes[d->candidate].node_name,
				 LSN_FORMAT_ARGS(cv->nodes[d->candidate].receive_lsn),
				 LSN_FORMAT_ARGS(cv->nodes[d->candidate].replay_lsn),
				 cv->sync_k);
		return;
	}
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

	/* never behind a standby that holds more */
	if (HamonBetterStandby(cv, d->candidate, rules->max_lag_bytes, why,
						   sizeof(why)) >= 0)
	{
		snprintf(d->reason, sizeof(d->reason),
				 "primary \"%s\" is down; %s: commits it acknowledged may exist only there; not promoting (make that standby eligible, or promote \"%s\" by hand with force => true)",
				 p->node_name, why, cv->nodes[d->candidate].node_name);
		d->candidate = -1;
		return;
	}

	d->verdict = HAMON_VERDICT_PROMOTE;
	snprintf(d->reason, sizeof(d->reason),
			 "primary \"%s\" (last LSN %X/%X) unreachable for " INT64_FORMAT " ms and lost by %d reachable standby(s) that streamed from it; promoting \"%s\" (received %X/%X, replayed %X/%X)",
			 p->node_name, LSN_FORMAT_ARGS(p->current_lsn),
			 p->last_seen > 0 ? (now - p->last_seen) / 1000 : 0,
			 votes, cv->nodes[d->candidate].node_name,
			 LSN_FORMAT_ARGS(cv->nodes[d->candidate].receive_lsn),
			 LSN_FORMAT_ARGS(cv->nodes[d->candidate].replay_lsn));
}
