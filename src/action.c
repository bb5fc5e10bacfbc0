/*-------------------------------------------------------------------------
 *
 * action.c
 *		What the witness does to peers, over SQL: promote, repoint, fence.
 *
 * Each step runs on its own short connection (HamonWithPeer: the probe
 * session stays dedicated to probing), waits only on the latch with a
 * deadline, and re-raises a peer's error with the peer's SQLSTATE.  Steps
 * check what they can on the peer itself (an unfence refuses a node out of
 * recovery; a promotion takes a node already out of recovery as promoted),
 * but a peer cannot tell two requesters apart: that one action at a time
 * runs per cluster is the action engine's rule (engine.c), not the peer's.
 *
 * None of this needs anything installed on the peers: pg_promote(),
 * ALTER SYSTEM, pg_reload_conf() and pg_terminate_backend() are core
 * PostgreSQL; the role needs the grants the README lists.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/action.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "action.h"
#include "remote.h"

/* any single statement of an action */
#define HAMON_ACTION_TIMEOUT_MS 10000
/* how often a promotion in progress is looked at (and nudged) */
#define HAMON_PROMOTE_POLL_MS 50

/*
 * HamonTry
 *		Runs fn(arg) in a subtransaction; on ERROR rolls it back, sets
 *		*errmsg (palloc'd: message, detail and hint) and returns false.  For
 *		actions on peers whose failure is an outcome to record, not a reason
 *		to abort the caller's transaction.
 */
bool
HamonTry(void (*fn) (void *), void *arg, char **errmsg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		*errmsg = psprintf("%s%s%s%s%s", edata->message,
						   edata->detail ? " (" : "",
						   edata->detail ? edata->detail : "",
						   edata->detail ? ")" : "",
						   edata->hint ? psprintf(" Hint: %s", edata->hint) : "");
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * HamonWithPeer
 *		The one way to run a step on a peer: opens a short connection to
 *		t's node (connect_timeout bounds it, the latch is honoured), runs
 *		fn(conn, t, arg) and closes the connection whatever happens; an
 *		ERROR from fn or from the connection propagates after the close.
 */
void
HamonWithPeer(const HamonTarget *t, HamonPeerStep fn, void *arg)
{
	char	   *appname = HamonApplicationName(t->cluster_name, t->node_name);
	PGconn	   *volatile conn;

	conn = HamonConnectBlocking(t->conninfo, appname, t->node_name,
								hamon_connect_timeout);
	pfree(appname);
	PG_TRY();
	{
		fn(conn, t, arg);
	}
	PG_FINALLY();
	{
		HamonDisconnect(conn);
	}
	PG_END_TRY();
}


static const char *const timeline_sql =
"SELECT pg_catalog.pg_is_in_recovery(),"
" CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN"
"  ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name("
"   pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::integer END,"
" CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN"
"  pg_catalog.pg_current_wal_flush_lsn()::text"
"  ELSE pg_catalog.pg_last_wal_replay_lsn()::text END";

/* runs a statement and throws the result away */
static void
hamon_action_exec(PGconn *conn, const HamonTarget *t, const char *sql,
				  int nparams, const char *const *params)
{
	PQclear(HamonExec(conn, t->node_name, sql, nparams, params,
					  HAMON_ACTION_TIMEOUT_MS));
}

/* in recovery?  timeline (primary) and flush (primary) or replay LSN */
static bool
hamon_read_position(PGconn *conn, const HamonTarget *t, int *timeline,
					XLogRecPtr *lsn)
{
	PGresult   *res = HamonExec(conn, t->node_name, timeline_sql, 0, NULL,
								HAMON_ACTION_TIMEOUT_MS);
	bool		in_recovery = (PQgetvalue(res, 0, 0)[0] == 't');

	if (timeline)
		*timeline = PQgetisnull(res, 0, 1) ? 0 : atoi(PQgetvalue(res, 0, 1));
	if (lsn)
		*lsn = HamonParseLsn(PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2));
	PQclear(res);
	return in_recovery;
}

/* waits ms on the latch, honouring interrupts and postmaster death */
static void
hamon_action_sleep(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, HAMON_WAIT_EVENT);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* what HamonActionPromote needs and reports back */
typedef struct HamonPromoteStep
{
	bool		send;			/* request the promotion (else only wait) */
	int			timeout_ms;
	bool	   *requested;
	int		   *timeline;
	XLogRecPtr *lsn;
} HamonPromoteStep;

/*
 * The promotion, on the candidate's connection.  pg_promote(wait => false)
 * only asks; then the candidate is polled every HAMON_PROMOTE_POLL_MS, and
 * each poll that finds it still in recovery also reloads its configuration.
 * The reload matters: PostgreSQL 15's startup process can take a promote
 * request that lands between the death of its WAL receiver and the start
 * of its wal_retrieve_retry_interval sleep as a failed WAL source, and then
 * sleeps that whole interval (5 s by default) before it looks at the
 * request again.  A reload signals the startup process, which sets its
 * latch and ends the sleep, so it sees the request at once.  The request
 * itself is never repeated or withdrawn.
 */
static void
hamon_promote_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	HamonPromoteStep *s = (HamonPromoteStep *) arg;
	TimestampTz deadline;
	PGresult   *res;

	if (s->send)
	{
		bool		in_recovery = hamon_read_position(conn, t, NULL, NULL);

		/*
		 * From here on the request may have reached the node.  One already
		 * out of recovery was promoted by someone else, or by this request
		 * sent before a restart: promoted all the same, never "nothing
		 * requested", which would let the caller undo what it makes final.
		 */
		*s->requested = true;
		if (!in_recovery)
			goto wait;
		res = HamonExec(conn, t->node_name,
						"SELECT pg_catalog.pg_promote(false)",
						0, NULL, HAMON_ACTION_TIMEOUT_MS);
		if (PQgetvalue(res, 0, 0)[0] != 't')
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" refused the promotion request",
							t->node_name)));
		}
		PQclear(res);
	}

wait:
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   s->timeout_ms);
	for (;;)
	{
		bool		still_in_recovery;

		res = HamonExec(conn, t->node_name,
						"SELECT CASE WHEN pg_catalog.pg_is_in_recovery()"
						" THEN pg_catalog.pg_reload_conf() END IS NOT NULL",
						0, NULL, HAMON_ACTION_TIMEOUT_MS);
		still_in_recovery = (PQgetvalue(res, 0, 0)[0] == 't');
		PQclear(res);
		if (!still_in_recovery)
			break;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" did not finish its promotion within %d ms",
							t->node_name, s->timeout_ms),
					 errdetail("The promotion was requested and may still complete.")));
		hamon_action_sleep(HAMON_PROMOTE_POLL_MS);
	}
	if (hamon_read_position(conn, t, s->timeline, s->lsn))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is in recovery again after its promotion",
						t->node_name)));
}

/*
 * HamonActionPromote
 *		Promotes a standby (send) or only waits for a promotion requested
 *		earlier (!send), until it has left recovery, at most timeout_ms (see
 *		hamon_promote_on); returns its new timeline and position.  A node
 *		already out of recovery (promoted by someone else, or by this
 *		request sent before a restart) is taken as promoted, never as "not
 *		requested".  ERROR (55000) if the promotion does not finish in time.
 *		*requested is set once the node was reached, before any ERROR after
 *		that point: a request that may have been sent cannot be withdrawn,
 *		and the caller must not choose another candidate, nor undo what the
 *		promotion makes final, while it may still complete.
 */
void
HamonActionPromote(const HamonTarget *t, bool send, int timeout_ms,
				   bool *requested, int *timeline, XLogRecPtr *lsn)
{
	HamonPromoteStep s = {send, timeout_ms, requested, timeline, lsn};

	HamonWithPeer(t, hamon_promote_on, &s);
}

/* what HamonActionRepoint needs and returns */
typedef struct HamonRepointStep
{
	const char *new_primary_conninfo;	/* NULL: keep the address */
	const char *application_name;	/* NULL: keep the standby's own */
	char	   *masked;
	bool		changed;
} HamonRepointStep;

/*
 * conninfo with application_name set to name (every other option kept):
 * the name a synchronous quorum lists the standby under.  name is a managed
 * slot name ([a-z0-9_]), which needs no quoting.
 */
static char *
hamon_set_application_name(const char *node_name, const char *conninfo,
						   const char *name, bool *changed)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	StringInfoData buf;
	char	   *err = NULL;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not parse the primary_conninfo of node \"%s\"",
						node_name)));
	}
	*changed = true;
	initStringInfo(&buf);
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		const char *v;

		if (opt->val == NULL)
			continue;
		if (strcmp(opt->keyword, "application_name") == 0)
		{
			if (strcmp(opt->val, name) == 0)
				*changed = false;
			continue;
		}
		if (buf.len > 0)
			appendStringInfoChar(&buf, ' ');
		appendStringInfo(&buf, "%s='", opt->keyword);
		for (v = opt->val; *v; v++)
		{
			if (*v == '\'' || *v == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *v);
		}
		appendStringInfoChar(&buf, '\'');
	}
	PQconninfoFree(opts);
	appendStringInfo(&buf, "%sapplication_name=%s", buf.len > 0 ? " " : "",
					 name);
	return buf.data;
}

static void
hamon_repoint_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	HamonRepointStep *s = (HamonRepointStep *) arg;
	PGresult   *res;
	char	   *conninfo;
	char	   *literal;
	char	   *sql;

	res = HamonExec(conn, t->node_name,
					"SELECT pg_catalog.current_setting('primary_conninfo')",
					0, NULL, HAMON_ACTION_TIMEOUT_MS);
	PG_TRY();
	{
		if (s->new_primary_conninfo != NULL)
			conninfo = HamonReplaceHost(t->node_name, PQgetvalue(res, 0, 0),
										s->new_primary_conninfo);
		else if (PQgetvalue(res, 0, 0)[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("standby \"%s\" has an empty primary_conninfo",
							t->node_name)));
		else
			conninfo = pstrdup(PQgetvalue(res, 0, 0));
	}
	PG_FINALLY();
	{
		PQclear(res);
	}
	PG_END_TRY();
	s->changed = (s->new_primary_conninfo != NULL);
	if (s->application_name != NULL)
	{
		bool		renamed;

		conninfo = hamon_set_application_name(t->node_name, conninfo,
											   s->application_name, &renamed);
		s->changed |= renamed;
	}
	if (!s->changed)
	{
		s->masked = HamonMaskConninfo(conninfo);
		return;
	}

	/* ALTER SYSTEM takes no parameters: a quoted literal, then */
	literal = PQescapeLiteral(conn, conninfo, strlen(conninfo));
	if (literal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not quote primary_conninfo for node \"%s\"",
						t->node_name)));
	sql = psprintf("ALTER SYSTEM SET primary_conninfo = %s", literal);
	PQfreemem(literal);
	/* the statement holds the password: errors show it abridged */
	PQclear(HamonExecShown(conn, t->node_name, sql,
						   "ALTER SYSTEM SET primary_conninfo = ...",
						   HAMON_ACTION_TIMEOUT_MS));
	hamon_action_exec(conn, t, "SELECT pg_catalog.pg_reload_conf()", 0, NULL);
	s->masked = HamonMaskConninfo(conninfo);
}

/*
 * HamonActionRepoint
 *		Points a standby's WAL receiver at a new primary: its primary_conninfo
 *		keeps every option but the address, which comes from the new
 *		primary's registered conninfo; then a reload restarts the receiver
 *		(primary_conninfo is reloadable since PostgreSQL 13) and, with
 *		recovery_target_timeline = 'latest', it follows the new timeline.
 *		A standby without a primary_conninfo is refused (55000): the
 *		registered conninfo holds the witness's credentials, not the
 *		standby's replication ones.  Returns the new primary_conninfo
 *		masked, for the event.
 */
char *
HamonActionRepoint(const HamonTarget *t, const char *new_primary_conninfo,
				   const char *application_name, bool *changed)
{
	HamonRepointStep s = {new_primary_conninfo, application_name, NULL, false};

	HamonWithPeer(t, hamon_repoint_on, &s);
	if (changed)
		*changed = s.changed;
	return s.masked;
}

/*
 * The synchronous_standby_names step: ALTER SYSTEM, a reload, and then
 * this session's own view of the setting polled until the postmaster has
 * reloaded it (a session takes a reload at its next statement), so that
 * when the step returns, sessions started from then on, and the sessions
 * that have run a statement since, wait for what names lists.
 */
static void
hamon_sync_names_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	const char *names = (const char *) arg;
	char	   *literal;
	TimestampTz deadline;

	literal = PQescapeLiteral(conn, names, strlen(names));
	if (literal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not quote synchronous_standby_names for node \"%s\"",
						t->node_name)));
	PG_TRY();
	{
		hamon_action_exec(conn, t,
						  psprintf("ALTER SYSTEM SET synchronous_standby_names = %s",
								   literal), 0, NULL);
	}
	PG_FINALLY();
	{
		PQfreemem(literal);
	}
	PG_END_TRY();
	hamon_action_exec(conn, t, "SELECT pg_catalog.pg_reload_conf()", 0, NULL);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   HAMON_ACTION_TIMEOUT_MS);
	for (;;)
	{
		PGresult   *res = HamonExec(conn, t->node_name,
									"SELECT pg_catalog.current_setting('synchronous_standby_names')",
									0, NULL, HAMON_ACTION_TIMEOUT_MS);
		bool		done = (strcmp(PQgetvalue(res, 0, 0), names) == 0);

		PQclear(res);
		if (done)
			return;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" did not take synchronous_standby_names = '%s' within %d ms of its reload",
							t->node_name, names, HAMON_ACTION_TIMEOUT_MS)));
		hamon_action_sleep(HAMON_PROMOTE_POLL_MS);
	}
}

/*
 * HamonActionSetSyncNames
 *		Sets synchronous_standby_names on t's node (a primary, or a
 *		candidate about to be promoted) and waits until it is in force.
 *		A role without ALTER SYSTEM ON PARAMETER synchronous_standby_names
 *		gets 42501 from the peer, with a hint naming the grant.
 */
void
HamonActionSetSyncNames(const HamonTarget *t, const char *names)
{
	HamonWithPeer(t, hamon_sync_names_on, (void *) names);
}

/* what HamonActionFence needs and returns */
typedef struct HamonFenceStep
{
	int			keep_pid;
	XLogRecPtr	lsn;
} HamonFenceStep;

static void
hamon_fence_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	HamonFenceStep *s = (HamonFenceStep *) arg;
	char		keep[16];
	const char *params[1] = {keep};

	snprintf(keep, sizeof(keep), "%d", s->keep_pid);
	hamon_action_exec(conn, t,
					  "ALTER SYSTEM SET default_transaction_read_only = on",
					  0, NULL);
	hamon_action_exec(conn, t, "SELECT pg_catalog.pg_reload_conf()", 0, NULL);
	/*
	 * A role that is not a superuser (pg_signal_backend) gets an ERROR for a
	 * superuser's session, which would abort the whole fence: those are
	 * skipped, and turn read-only with the reload all the same.
	 */
	hamon_action_exec(conn, t,
					  "SELECT pg_catalog.pg_terminate_backend(a.pid, 5000)"
					  " FROM pg_catalog.pg_stat_activity a"
					  " WHERE a.backend_type OPERATOR(pg_catalog.=) 'client backend'"
					  " AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
					  " AND a.pid OPERATOR(pg_catalog.<>) $1::integer"
					  " AND (NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r"
					  "                     WHERE r.oid OPERATOR(pg_catalog.=) a.usesysid), false)"
					  "      OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r"
					  "           WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER))",
					  1, params);
	(void) hamon_read_position(conn, t, NULL, &s->lsn);
}

/*
 * HamonActionFence
 *		Makes a node that must not take writes read-only over SQL:
 *		default_transaction_read_only on (ALTER SYSTEM + reload) and every
 *		client session ended but this action's own and keep_pid (the
 *		witness's probe session on the node, 0 if none), so clients
 *		reconnect into read-only sessions.  Sessions are told apart by
 *		process ID only: an application_name is the client's to choose.
 *		A witness role that is not a superuser cannot end superuser
 *		sessions: they stay, read-only for their next transaction.
 *		A client can still SET it back per session: this is a fence against
 *		accidents, not against a determined writer.  Returns the node's
 *		flush LSN after the sessions are gone.
 */
XLogRecPtr
HamonActionFence(const HamonTarget *t, int keep_pid)
{
	HamonFenceStep s = {keep_pid, InvalidXLogRecPtr};

	HamonWithPeer(t, hamon_fence_on, &s);
	return s.lsn;
}

static void
hamon_unfence_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	bool		rejoined = *(bool *) arg;

	/* a node back as a primary (wrongly restarted) stays fenced */
	if (rejoined && !hamon_read_position(conn, t, NULL, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is not in recovery: its fence is not lifted",
						t->node_name)));
	hamon_action_exec(conn, t,
					  "ALTER SYSTEM RESET default_transaction_read_only",
					  0, NULL);
	hamon_action_exec(conn, t, "SELECT pg_catalog.pg_reload_conf()", 0, NULL);
}

/*
 * HamonActionUnfence
 *		Lifts the fence: default_transaction_read_only back to its default.
 *		For a node rejoined as a standby (rejoined), ERROR (55000) if it is
 *		not in recovery: a node restarted as a primary stays fenced.  A
 *		switchover that gives its old primary back lifts it unchecked.
 */
void
HamonActionUnfence(const HamonTarget *t, bool rejoined)
{
	HamonWithPeer(t, hamon_unfence_on, &rejoined);
}

/* what HamonActionWaitReplay needs */
typedef struct HamonReplayStep
{
	XLogRecPtr	lsn;
	int			timeout_ms;
	bool		left_recovery;	/* out: the node was seen out of recovery */
} HamonReplayStep;

static void
hamon_wait_replay_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	HamonReplayStep *s = (HamonReplayStep *) arg;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   s->timeout_ms);

	for (;;)
	{
		XLogRecPtr	replayed;

		if (!hamon_read_position(conn, t, NULL, &replayed))
		{
			s->left_recovery = true;
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" left recovery while it was awaited",
							t->node_name)));
		}
		if (replayed >= s->lsn)
			break;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" did not replay up to %X/%X within %d ms",
							t->node_name, LSN_FORMAT_ARGS(s->lsn),
							s->timeout_ms),
					 errdetail("It has replayed up to %X/%X.",
							   LSN_FORMAT_ARGS(replayed))));
		hamon_action_sleep(50);
	}
}

/*
 * HamonActionWaitReplay
 *		Waits until a standby has replayed lsn, polling every 50 ms, at most
 *		timeout_ms; ERROR (55000) if it does not get there in time.
 */
void
HamonActionWaitReplay(const HamonTarget *t, XLogRecPtr lsn, int timeout_ms,
					  bool *left_recovery)
{
	HamonReplayStep s = {lsn, timeout_ms, false};

	PG_TRY();
	{
		HamonWithPeer(t, hamon_wait_replay_on, &s);
	}
	PG_FINALLY();
	{
		if (left_recovery)
			*left_recovery = s.left_recovery;
	}
	PG_END_TRY();
}

/* ---------------------------------------------------------------------
 * The actions as steps for HamonTry
 * --------------------------------------------------------------------- */

void
HamonStepPromote(void *arg)
{
	HamonPromoteArgs *p = (HamonPromoteArgs *) arg;

	HamonActionPromote(p->target, p->send, p->timeout_ms, p->requested,
					   p->timeline, p->lsn);
}

void
HamonStepRepoint(void *arg)
{
	HamonRepointArgs *r = (HamonRepointArgs *) arg;

	r->masked = HamonActionRepoint(r->target, r->new_primary_conninfo,
								   r->application_name, &r->changed);
}

void
HamonStepSetSyncNames(void *arg)
{
	HamonSyncNamesArgs *a = (HamonSyncNamesArgs *) arg;

	HamonActionSetSyncNames(a->target, a->names);
}

void
HamonStepFence(void *arg)
{
	HamonFenceArgs *f = (HamonFenceArgs *) arg;

	f->lsn = HamonActionFence(f->target, f->keep_pid);
}

void
HamonStepUnfence(void *arg)
{
	HamonActionUnfence((const HamonTarget *) arg, true);
}

void
HamonStepGiveBack(void *arg)
{
	HamonActionUnfence((const HamonTarget *) arg, false);
}

void
HamonStepWaitReplay(void *arg)
{
	HamonReplayArgs *w = (HamonReplayArgs *) arg;

	HamonActionWaitReplay(w->target, w->lsn, w->timeout_ms, &w->left_recovery);
}
