/*-------------------------------------------------------------------------
 *
 * action.c
 *		What the witness does to peers, over SQL: promote, repoint, fence.
 *
 * Every action opens its own short connection (the probe session stays
 * dedicated to probing), waits only on the latch with a deadline, and
 * re-raises a peer's error with the peer's SQLSTATE.  Each one checks its
 * precondition on the peer itself before acting (promote only a node that
 * is in recovery, for instance), so even two witnesses acting at once
 * cannot promote a node twice.
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

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "action.h"
#include "remote.h"

/* any single statement of an action (pg_promote has its own bound) */
#define HAMON_ACTION_TIMEOUT_MS 10000

static const char *const timeline_sql =
"SELECT pg_catalog.pg_is_in_recovery(),"
" CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN"
"  ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name("
"   pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::integer END,"
" CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN"
"  pg_catalog.pg_current_wal_flush_lsn()::text"
"  ELSE pg_catalog.pg_last_wal_replay_lsn()::text END";

static PGconn *
hamon_action_connect(const HamonTarget *t)
{
	char	   *appname = HamonApplicationName(t->cluster_name, t->node_name);
	PGconn	   *conn;

	conn = HamonConnectBlocking(t->conninfo, appname, t->node_name,
								hamon_connect_timeout);
	pfree(appname);
	return conn;
}

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

/*
 * HamonActionPromote
 *		Promotes a standby with pg_promote(wait => true) and checks that it
 *		left recovery; returns its new timeline and position.  ERROR (55000)
 *		if the node is not in recovery (already promoted by someone else),
 *		or if the promotion does not finish within promote_timeout.
 */
void
HamonActionPromote(const HamonTarget *t, int *timeline, XLogRecPtr *lsn)
{
	PGconn	   *volatile conn = hamon_action_connect(t);

	PG_TRY();
	{
		char		wait_seconds[16];
		const char *params[1];
		PGresult   *res;
		bool		promoted;

		if (!hamon_read_position(conn, t, NULL, NULL))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" is not in recovery", t->node_name)));

		snprintf(wait_seconds, sizeof(wait_seconds), "%d", hamon_promote_timeout);
		params[0] = wait_seconds;
		res = HamonExec(conn, t->node_name,
						"SELECT pg_catalog.pg_promote(true, $1::integer)",
						1, params, hamon_promote_timeout * 1000 + 5000);
		promoted = (PQgetvalue(res, 0, 0)[0] == 't');
		PQclear(res);
		if (!promoted || hamon_read_position(conn, t, timeline, lsn))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node \"%s\" did not finish its promotion within %d s",
							t->node_name, hamon_promote_timeout)));
	}
	PG_FINALLY();
	{
		HamonDisconnect(conn);
	}
	PG_END_TRY();
}

/*
 * HamonActionRepoint
 *		Points a standby's WAL receiver at a new primary: its primary_conninfo
 *		keeps every option but the address, which comes from the new
 *		primary's registered conninfo; then a reload restarts the receiver
 *		(primary_conninfo is reloadable since PostgreSQL 13) and, with
 *		recovery_target_timeline = 'latest', it follows the new timeline.
 *		Returns the new primary_conninfo masked, for the event.
 */
char *
HamonActionRepoint(const HamonTarget *t, const char *new_primary_conninfo)
{
	PGconn	   *volatile conn = hamon_action_connect(t);
	char	   *volatile masked = NULL;

	PG_TRY();
	{
		PGresult   *res;
		char	   *conninfo;
		char	   *literal;
		char	   *sql;

		res = HamonExec(conn, t->node_name,
						"SELECT pg_catalog.current_setting('primary_conninfo')",
						0, NULL, HAMON_ACTION_TIMEOUT_MS);
		conninfo = HamonReplaceHost(PQgetvalue(res, 0, 0), new_primary_conninfo);
		PQclear(res);

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
		masked = HamonMaskConninfo(conninfo);
	}
	PG_FINALLY();
	{
		HamonDisconnect(conn);
	}
	PG_END_TRY();
	return masked;
}

/*
 * HamonActionFence
 *		Makes a node that must not take writes read-only over SQL:
 *		default_transaction_read_only on (ALTER SYSTEM + reload) and every
 *		client session but the witness's own ended, so clients reconnect into
 *		read-only sessions.  A client can still SET it back per session: this
 *		is a fence against accidents, not against a determined writer.
 *		Returns the node's flush LSN after the sessions are gone.
 */
XLogRecPtr
HamonActionFence(const HamonTarget *t)
{
	PGconn	   *volatile conn = hamon_action_connect(t);
	XLogRecPtr	lsn = InvalidXLogRecPtr;

	PG_TRY();
	{
		hamon_action_exec(conn, t,
						  "ALTER SYSTEM SET default_transaction_read_only = on",
						  0, NULL);
		hamon_action_exec(conn, t, "SELECT pg_catalog.pg_reload_conf()", 0, NULL);
		hamon_action_exec(conn, t,
						  "SELECT pg_catalog.pg_terminate_backend(pid, 5000)"
						  " FROM pg_catalog.pg_stat_activity"
						  " WHERE backend_type = 'client backend'"
						  " AND pid <> pg_catalog.pg_backend_pid()"
						  " AND coalesce(application_name, '') NOT LIKE 'pg\\_hamonitor/%'",
						  0, NULL);
		(void) hamon_read_position(conn, t, NULL, &lsn);
	}
	PG_FINALLY();
	{
		HamonDisconnect(conn);
	}
	PG_END_TRY();
	return lsn;
}

/* lifts the fence: default_transaction_read_only back to its default */
void
HamonActionUnfence(const HamonTarget *t)
{
	PGconn	   *volatile conn = hamon_action_connect(t);

	PG_TRY();
	{
		hamon_action_exec(conn, t,
						  "ALTER SYSTEM RESET default_transaction_read_only",
						  0, NULL);
		hamon_action_exec(conn, t, "SELECT pg_catalog.pg_reload_conf()", 0, NULL);
	}
	PG_FINALLY();
	{
		HamonDisconnect(conn);
	}
	PG_END_TRY();
}

/*
 * HamonActionWaitReplay
 *		Waits until a standby has replayed lsn, polling every 50 ms, at most
 *		timeout_ms; ERROR (55000) if it does not get there in time.
 */
void
HamonActionWaitReplay(const HamonTarget *t, XLogRecPtr lsn, int timeout_ms)
{
	PGconn	   *volatile conn = hamon_action_connect(t);
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   timeout_ms);

	PG_TRY();
	{
		for (;;)
		{
			XLogRecPtr	replayed;

			if (!hamon_read_position(conn, t, NULL, &replayed))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("node \"%s\" left recovery while it was awaited",
								t->node_name)));
			if (replayed >= lsn)
				break;
			if (GetCurrentTimestamp() >= deadline)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("node \"%s\" did not replay up to %X/%X within %d ms",
								t->node_name, LSN_FORMAT_ARGS(lsn), timeout_ms),
						 errdetail("It has replayed up to %X/%X.",
								   LSN_FORMAT_ARGS(replayed))));
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 50, HAMON_WAIT_EVENT);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		HamonDisconnect(conn);
	}
	PG_END_TRY();
}
