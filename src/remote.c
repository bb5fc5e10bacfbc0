/*-------------------------------------------------------------------------
 *
 * remote.c
 *		libpq inside the server: conninfo handling and non-blocking connects.
 *
 * What PostgreSQL 16 put in libpq-be-fe-helpers.h, reproduced for 15:
 * every libpq connection first reserves a file descriptor with
 * AcquireExternalFD (and gives it back after PQfinish), and connections are
 * opened from keyword/value arrays, never from a conninfo string we
 * formatted ourselves, so no user value can smuggle in another option.
 * Conninfo strings are checked with PQconninfoParse when registered and
 * shown only with their secret options masked.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/remote.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "pg_hamonitor.h"
#include "remote.h"
#include "witness.h"

#define HAMON_MASK "********"

static PQconninfoOption *hamon_parse_conninfo(const char *conninfo,
											  int elevel);
static void hamon_append_conninfo_value(StringInfo buf, const char *value);
static PGresult *hamon_exec(PGconn *conn, const char *node_name,
							const char *sql, const char *shown, int nparams,
							const char *const *params, int timeout_ms,
							const char *tolerated, bool *hit);

/*
 * Parses a conninfo with libpq.  On error, ereports at elevel (ERROR) or
 * returns NULL (lower levels).  The result is malloc'd by libpq: the
 * caller frees it with PQconninfoFree.
 */
static PQconninfoOption *
hamon_parse_conninfo(const char *conninfo, int elevel)
{
	PQconninfoOption *opts;
	char	   *err = NULL;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		/* copy the message, which libpq malloc'd, before freeing it */
		char	   *msg = err ? pchomp(err) : pstrdup(_("out of memory"));

		if (err)
			PQfreemem(err);

		/*
		 * libpq may echo a word of the string ("missing = after ..."), which
		 * could be a password: then its message is not shown.  The
		 * statement, which holds the string, is never logged with it.
		 */
		if (strcasestr(conninfo, "password") != NULL ||
			(strstr(conninfo, "://") != NULL && strchr(conninfo, '@') != NULL))
			msg = pstrdup(_("the message is not shown because the string may hold a password"));
		ereport(elevel,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("invalid connection string syntax: %s", msg),
				 errhidestmt(true)));
		return NULL;
	}
	return opts;
}

/*
 * HamonCheckConninfo
 *		ereports ERROR unless libpq accepts the conninfo.
 *
 * The message is libpq's, which names a bad option but never echoes a
 * value, so a password cannot leak through it.
 */
void
HamonCheckConninfo(const char *conninfo)
{
	PQconninfoOption *opts = hamon_parse_conninfo(conninfo, ERROR);

	PQconninfoFree(opts);
}

/* appends a conninfo value, quoted when libpq would need it */
static void
hamon_append_conninfo_value(StringInfo buf, const char *value)
{
	const char *p;
	bool		quote = (*value == '\0');

	for (p = value; *p && !quote; p++)
		if (isspace((unsigned char) *p) || *p == '\'' || *p == '\\')
			quote = true;

	if (!quote)
	{
		appendStringInfoString(buf, value);
		return;
	}
	appendStringInfoChar(buf, '\'');
	for (p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * Writes parsed options back as key=value pairs, skipping options that are
 * unset or listed in skip; secret options (dispchar '*') are shown as
 * ******** when mask is set.  The result is palloc'd.
 */
static char *
hamon_deparse_conninfo(PQconninfoOption *opts, bool mask,
					   const char *const *skip)
{
	PQconninfoOption *opt;
	StringInfoData buf;

	initStringInfo(&buf);
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		const char *const *sk;
		bool		skipped = false;

		if (opt->val == NULL)
			continue;
		for (sk = skip; sk && *sk; sk++)
			if (strcmp(*sk, opt->keyword) == 0)
				skipped = true;
		if (skipped)
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, ' ');
		appendStringInfo(&buf, "%s=", opt->keyword);
		if (mask && opt->dispchar[0] == '*')
			appendStringInfoString(&buf, HAMON_MASK);
		else
			hamon_append_conninfo_value(&buf, opt->val);
	}
	return buf.data;
}

/*
 * HamonMaskConninfo
 *		Returns the conninfo as key=value pairs with every secret option
 *		(libpq marks them with dispchar '*', e.g. password) replaced by
 *		********.  URIs come back in key=value form.  A conninfo libpq cannot
 *		parse is shown as a mask only: we cannot tell what in it is secret.
 *		The result is palloc'd.
 */
char *
HamonMaskConninfo(const char *conninfo)
{
	PQconninfoOption *opts;
	char	   *result;

	opts = hamon_parse_conninfo(conninfo, DEBUG1);
	if (opts == NULL)
		return pstrdup(HAMON_MASK);
	result = hamon_deparse_conninfo(opts, true, NULL);
	PQconninfoFree(opts);
	return result;
}

/*
 * HamonReplaceHost
 *		A standby's primary_conninfo repointed at another node: conninfo
 *		with its address (host, hostaddr, port) taken from from_conninfo,
 *		every other option (user, passfile, sslmode, application_name...)
 *		kept.  The result is palloc'd and holds any password as is: it must
 *		only ever be sent to the standby.
 *
 *		A standby without a primary_conninfo is refused (ERROR 55000): the
 *		only other source of options would be from_conninfo, the witness's
 *		own registered conninfo, and its user, password, passfile and
 *		certificates are the witness's credentials, not the standby's
 *		replication ones.
 */
char *
HamonReplaceHost(const char *node_name, const char *conninfo,
				 const char *from_conninfo)
{
	static const char *const address[] = {"host", "hostaddr", "port", NULL};
	PQconninfoOption *opts;
	PQconninfoOption *from;
	PQconninfoOption *opt;
	StringInfoData buf;
	char	   *rest;

	if (conninfo == NULL || conninfo[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("standby \"%s\" has an empty primary_conninfo", node_name),
				 errdetail("The witness changes only the address in a standby's primary_conninfo; its registered conninfo holds the witness's credentials, not the standby's replication credentials."),
				 errhint("Set primary_conninfo on the standby (user, passfile or password, TLS options), then repoint it again.")));
	from = hamon_parse_conninfo(from_conninfo, ERROR);

	PG_TRY();
	{
		opts = hamon_parse_conninfo(conninfo, ERROR);
	}
	PG_CATCH();
	{
		PQconninfoFree(from);
		PG_RE_THROW();
	}
	PG_END_TRY();

	rest = hamon_deparse_conninfo(opts, false, address);
	initStringInfo(&buf);
	appendStringInfoString(&buf, rest);
	for (opt = from; opt->keyword != NULL; opt++)
	{
		const char *const *a;

		if (opt->val == NULL)
			continue;
		for (a = address; *a; a++)
			if (strcmp(*a, opt->keyword) == 0)
			{
				appendStringInfo(&buf, " %s=", opt->keyword);
				hamon_append_conninfo_value(&buf, opt->val);
			}
	}
	PQconninfoFree(opts);
	PQconninfoFree(from);
	pfree(rest);
	return buf.data;
}

/*
 * HamonApplicationName
 *		"pg_hamonitor/<cluster>/<node>", cut to NAMEDATALEN - 1 bytes on a
 *		character boundary, as the peer would otherwise truncate it.  A
 *		paired witness (witness_takeover) adds its identity at the end,
 *		never cut: "@<system identifier, hex>.<timeline>" (witness.c), which
 *		the other witness of the pair reads on the data nodes.
 *		The result is palloc'd.
 */
char *
HamonApplicationName(const char *cluster_name, const char *node_name)
{
	char	   *stamp = HamonWitnessStamp();
	char	   *name = psprintf("pg_hamonitor/%s/%s", cluster_name, node_name);
	int			room = NAMEDATALEN - 1 - (stamp ? strlen(stamp) : 0);
	int			len = strlen(name);

	if (len > room)
		name[pg_mbcliplen(name, len, room)] = '\0';
	if (stamp)
	{
		char	   *stamped = psprintf("%s%s", name, stamp);

		pfree(name);
		pfree(stamp);
		name = stamped;
	}
	return name;
}

/*
 * HamonConnectStart
 *		Starts a non-blocking connection; the caller drives it with
 *		PQconnectPoll and waits on PQsocket with the latch.
 *
 * The registered conninfo is parsed and passed as keyword arrays, with our
 * application_name and an empty search_path (in front of any options the
 * DBA gave).  Returns NULL and sets *errmsg (palloc'd) if no descriptor is
 * left or libpq could not even start; otherwise the connection, which may
 * already be CONNECTION_BAD (PQerrorMessage says why).  The caller owns it
 * and must close it with HamonDisconnect, which releases the descriptor.
 */
PGconn *
HamonConnectStart(const char *conninfo, const char *application_name,
				  char **errmsg)
{
	return HamonConnectStartAt(conninfo, application_name, NULL, NULL, NULL,
							   true, errmsg);
}

/*
 * HamonConnectStartAt
 *		HamonConnectStart with the conninfo's host, hostaddr and port
 *		replaced by those given (NULL: the conninfo's own).  The probe
 *		connects this way with the addresses its resolver found (resolve.c),
 *		so that libpq never resolves a name in the worker.
 *
 *		startup_search_path false sends no "options" startup parameter of
 *		ours (the DBA's own options are sent as given): a transaction
 *		pooler such as pgbouncer refuses the parameter unless told to
 *		ignore it.  The probe sets its search_path in its own query instead
 *		(probe.c); the actions' connections keep the startup setting.
 */
PGconn *
HamonConnectStartAt(const char *conninfo, const char *application_name,
					const char *host, const char *hostaddr, const char *port,
					bool startup_search_path, char **errmsg)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	const char **keys;
	const char **vals;
	char	   *options = NULL;
	int			n = 0;
	int			nopts = 0;
	PGconn	   *conn;

	*errmsg = NULL;
	opts = hamon_parse_conninfo(conninfo, LOG);
	if (opts == NULL)
	{
		*errmsg = pstrdup("invalid connection string");
		return NULL;
	}

	for (opt = opts; opt->keyword != NULL; opt++)
		nopts++;
	keys = palloc0(sizeof(char *) * (nopts + 10));
	vals = palloc0(sizeof(char *) * (nopts + 10));

	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		if ((host && strcmp(opt->keyword, "host") == 0) ||
			(hostaddr && strcmp(opt->keyword, "hostaddr") == 0) ||
			(port && strcmp(opt->keyword, "port") == 0))
			continue;
		if (strcmp(opt->keyword, "application_name") == 0 ||
			strcmp(opt->keyword, "fallback_application_name") == 0)
			continue;
		if (strcmp(opt->keyword, "options") == 0 && startup_search_path)
		{
			options = psprintf("-c search_path= %s", opt->val);
			continue;
		}
		keys[n] = opt->keyword;
		vals[n] = opt->val;
		n++;
	}
	if (host)
	{
		keys[n] = "host";
		vals[n++] = host;
	}
	if (hostaddr)
	{
		keys[n] = "hostaddr";
		vals[n++] = hostaddr;
	}
	if (port)
	{
		keys[n] = "port";
		vals[n++] = port;
	}
	keys[n] = "application_name";
	vals[n++] = application_name;

	/*
	 * A paired witness's sessions must die with a vanished peer host within
	 * seconds, not the kernel's minutes (witness.c reads sessions'
	 * freshness on the data nodes): keepalives and tcp_user_timeout, unless
	 * the conninfo sets them.
	 */
	if (hamon_witness_takeover)
	{
		static const char *const ka_keys[] = {
			"keepalives_idle", "keepalives_interval", "keepalives_count",
			"tcp_user_timeout"
		};
		static char user_timeout[16];
		const char *ka_vals[] = {"2", "1", "3", user_timeout};
		int			k;

		snprintf(user_timeout, sizeof(user_timeout), "%d",
				 Max(hamon_probe_timeout + hamon_connect_timeout, 2000));
		for (k = 0; k < lengthof(ka_keys); k++)
		{
			for (opt = opts; opt->keyword != NULL; opt++)
				if (strcmp(opt->keyword, ka_keys[k]) == 0)
					break;
			if (opt->keyword != NULL && opt->val != NULL)
				continue;
			keys[n] = ka_keys[k];
			vals[n++] = ka_vals[k];
		}
	}
	if (startup_search_path)
	{
		keys[n] = "options";
		vals[n++] = options ? options : "-c search_path=";
	}
	keys[n] = NULL;
	vals[n] = NULL;

	if (!AcquireExternalFD())
	{
		PQconninfoFree(opts);
		*errmsg = pstrdup("no file descriptor left for another peer connection; "
						  "raise max_files_per_process or pg_hamonitor.workers");
		return NULL;
	}

	conn = PQconnectStartParams(keys, vals, 0);
	PQconninfoFree(opts);
	pfree(keys);
	pfree(vals);
	if (options)
		pfree(options);

	if (conn == NULL)
	{
		ReleaseExternalFD();
		*errmsg = pstrdup("out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_BAD && PQsetnonblocking(conn, 1) != 0)
	{
		HamonDisconnect(conn);
		*errmsg = pstrdup("could not make the connection non-blocking");
		return NULL;
	}
	return conn;
}

/* an LSN as a peer prints it ("16/B374D848"); invalid if NULL or garbled */
XLogRecPtr
HamonParseLsn(const char *text)
{
	uint32		hi,
				lo;

	if (text == NULL || sscanf(text, "%X/%X", &hi, &lo) != 2)
		return InvalidXLogRecPtr;
	return ((uint64) hi << 32) | lo;
}

/* closes a connection opened by HamonConnectStart */
void
HamonDisconnect(PGconn *conn)
{
	if (conn == NULL)
		return;
	PQfinish(conn);
	ReleaseExternalFD();
}

/*
 * hamon_wait_socket
 *		Waits until the socket is ready for what libpq wants, the latch is
 *		set, or the deadline passes; handles interrupts, so a SIGTERM or a
 *		query cancel ends the wait at once.  Returns false on timeout.
 */
static bool
hamon_wait_socket(PGconn *conn, bool for_write, TimestampTz deadline)
{
	for (;;)
	{
		long		timeout_ms;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		timeout_ms = (long) ((deadline - GetCurrentTimestamp() + 999) / 1000);
		if (timeout_ms <= 0)
			return false;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_EXIT_ON_PM_DEATH | WL_LATCH_SET | WL_TIMEOUT |
							   (for_write ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE),
							   PQsocket(conn), timeout_ms, HAMON_WAIT_EVENT);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			continue;
		}
		if (rc & WL_SOCKET_MASK)
			return true;
	}
}

/*
 * HamonConnectBlocking
 *		Opens a connection for an action (promote, repoint, fence), waiting
 *		with the latch, at most timeout_ms.  ereports ERROR (08001) naming
 *		the node if it fails; the caller owns the connection and closes it
 *		with HamonDisconnect, also on error (PG_TRY/PG_FINALLY).
 */
PGconn *
HamonConnectBlocking(const char *conninfo, const char *application_name,
					 const char *node_name, int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   timeout_ms);
	PostgresPollingStatusType status = PGRES_POLLING_WRITING;
	char	   *why;
	PGconn	   *conn;

	conn = HamonConnectStart(conninfo, application_name, &why);
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to node \"%s\"", node_name),
				 errdetail_internal("%s", why)));

	while (PQstatus(conn) != CONNECTION_BAD && status != PGRES_POLLING_OK &&
		   status != PGRES_POLLING_FAILED)
	{
		if (!hamon_wait_socket(conn, status == PGRES_POLLING_WRITING, deadline))
		{
			HamonDisconnect(conn);
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to node \"%s\"", node_name),
					 errdetail("Timeout expired after %d ms.", timeout_ms)));
		}
		status = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = pchomp(PQerrorMessage(conn));

		HamonDisconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to node \"%s\"", node_name),
				 errdetail_internal("%s", msg)));
	}
	return conn;
}

/*
 * HamonExec
 *		Runs one statement with text parameters on a peer, without blocking:
 *		sent with PQsendQueryParams, awaited with the latch, at most
 *		timeout_ms.  Returns the last result (the caller PQclears it).  A
 *		remote error is re-raised with the peer's SQLSTATE and the statement
 *		as context, as postgres_fdw does; a lost connection or a timeout is
 *		an ERROR too.  The caller still owns (and closes) the connection.
 */
PGresult *
HamonExec(PGconn *conn, const char *node_name, const char *sql,
		  int nparams, const char *const *params, int timeout_ms)
{
	return hamon_exec(conn, node_name, sql, sql, nparams, params, timeout_ms,
					  NULL, NULL);
}

/*
 * HamonExecTry
 *		HamonExec, except that a remote error with SQLSTATE tolerated is no
 *		ERROR: it sets *hit and returns NULL.  Otherwise *hit is false.
 */
PGresult *
HamonExecTry(PGconn *conn, const char *node_name, const char *sql,
			 int nparams, const char *const *params, int timeout_ms,
			 const char *tolerated, bool *hit)
{
	return hamon_exec(conn, node_name, sql, sql, nparams, params, timeout_ms,
					  tolerated, hit);
}

/*
 * HamonExecShown
 *		HamonExec for a statement that holds a secret: errors show the
 *		abridged text shown instead of the statement.
 */
PGresult *
HamonExecShown(PGconn *conn, const char *node_name, const char *sql,
			   const char *shown, int timeout_ms)
{
	return hamon_exec(conn, node_name, sql, shown, 0, NULL, timeout_ms,
					  NULL, NULL);
}

static PGresult *
hamon_exec(PGconn *conn, const char *node_name, const char *sql,
		   const char *shown, int nparams, const char *const *params,
		   int timeout_ms, const char *tolerated, bool *hit)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   timeout_ms);
	PGresult   *last = NULL;
	PGresult   *res;

	if (hit)
		*hit = false;
	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		goto conn_error;

	for (;;)
	{
		int			rc = PQflush(conn);

		if (rc < 0)
			goto conn_error;
		while (rc == 1 || PQisBusy(conn))
		{
			if (!hamon_wait_socket(conn, rc == 1, deadline))
			{
				if (last)
					PQclear(last);
				ereport(ERROR,
						(errcode(ERRCODE_QUERY_CANCELED),
						 errmsg("statement on node \"%s\" timed out after %d ms",
								node_name, timeout_ms),
						 errcontext("remote SQL command: %s", shown)));
			}
			if (rc == 1)
			{
				if ((rc = PQflush(conn)) < 0)
					goto conn_error;
			}
			else if (!PQconsumeInput(conn))
				goto conn_error;
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		if (last)
			PQclear(last);
		last = res;
	}

	if (last == NULL)
		goto conn_error;
	if (PQresultStatus(last) != PGRES_TUPLES_OK &&
		PQresultStatus(last) != PGRES_COMMAND_OK)
	{
		const char *sqlstate = PQresultErrorField(last, PG_DIAG_SQLSTATE);
		char	   *msg = pstrdup(PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY) ?
								  PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY) :
								  "unknown error");
		int			code = ERRCODE_CONNECTION_FAILURE;

		if (tolerated && sqlstate && strcmp(sqlstate, tolerated) == 0)
		{
			PQclear(last);
			pfree(msg);
			*hit = true;
			return NULL;
		}
		if (sqlstate && strlen(sqlstate) == 5)
			code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
								 sqlstate[3], sqlstate[4]);
		PQclear(last);
		ereport(ERROR,
				(errcode(code),
				 errmsg_internal("node \"%s\": %s", node_name, msg),
				 errcontext("remote SQL command: %s", shown)));
	}
	return last;

conn_error:
	{
		char	   *msg = pchomp(PQerrorMessage(conn));

		if (last)
			PQclear(last);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost connection to node \"%s\"", node_name),
				 errdetail_internal("%s", msg),
				 errcontext("remote SQL command: %s", shown)));
	}
	return NULL;				/* keep compiler quiet */
}
