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
#include "storage/fd.h"

#include "pg_hamonitor.h"
#include "remote.h"

#define HAMON_MASK "********"

static PQconninfoOption *hamon_parse_conninfo(const char *conninfo,
											  int elevel);
static void hamon_append_conninfo_value(StringInfo buf, const char *value);

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
	PQconninfoOption *opt;
	StringInfoData buf;

	opts = hamon_parse_conninfo(conninfo, DEBUG1);
	if (opts == NULL)
		return pstrdup(HAMON_MASK);

	initStringInfo(&buf);
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, ' ');
		appendStringInfo(&buf, "%s=", opt->keyword);
		if (opt->dispchar[0] == '*')
			appendStringInfoString(&buf, HAMON_MASK);
		else
			hamon_append_conninfo_value(&buf, opt->val);
	}
	PQconninfoFree(opts);
	return buf.data;
}

/*
 * HamonApplicationName
 *		"pg_hamonitor/<cluster>/<node>", cut to NAMEDATALEN - 1 bytes on a
 *		character boundary, as the peer would otherwise truncate it.
 *		The result is palloc'd.
 */
char *
HamonApplicationName(const char *cluster_name, const char *node_name)
{
	char	   *name = psprintf("pg_hamonitor/%s/%s", cluster_name, node_name);
	int			len = strlen(name);

	if (len >= NAMEDATALEN)
		name[pg_mbcliplen(name, len, NAMEDATALEN - 1)] = '\0';
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
	keys = palloc0(sizeof(char *) * (nopts + 3));
	vals = palloc0(sizeof(char *) * (nopts + 3));

	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		if (strcmp(opt->keyword, "application_name") == 0 ||
			strcmp(opt->keyword, "fallback_application_name") == 0)
			continue;
		if (strcmp(opt->keyword, "options") == 0)
		{
			options = psprintf("-c search_path= %s", opt->val);
			continue;
		}
		keys[n] = opt->keyword;
		vals[n] = opt->val;
		n++;
	}
	keys[n] = "application_name";
	vals[n++] = application_name;
	keys[n] = "options";
	vals[n++] = options ? options : "-c search_path=";
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

/* closes a connection opened by HamonConnectStart */
void
HamonDisconnect(PGconn *conn)
{
	if (conn == NULL)
		return;
	PQfinish(conn);
	ReleaseExternalFD();
}
