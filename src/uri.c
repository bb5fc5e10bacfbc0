/*-------------------------------------------------------------------------
 *
 * uri.c
 *		hamonitor.connection_uri(): a libpq multi-host URI for applications.
 *
 * An application that lists every node of a cluster in one URI, with
 * target_session_attrs, follows a failover by itself: libpq tries the hosts
 * in order and keeps the first one that is (for example) writable.  The
 * witness knows the nodes, so it writes that URI.
 *
 * Only the addresses of the registered conninfo strings go into it: host
 * (or hostaddr when no host is given) and port, and the TLS mode.  The
 * rest of a registered conninfo is the witness's own connection (its user,
 * database, password, passfile, client key and certificate paths) and is
 * none of the application's business; the caller adds its own user and
 * database.  The URI is built by hand with every value percent-encoded, so
 * no registered value can inject another option.  The event hooks
 * (hooks.c) take a node's address from here too.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/uri.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "pg_hamonitor.h"
#include "remote.h"
#include "uri.h"

PG_FUNCTION_INFO_V1(hamonitor_connection_uri);

/* the target_session_attrs values of libpq 15, the accepted targets */
static const char *const uri_targets[] = {
	"primary", "read-write", "standby", "prefer-standby", "read-only", "any",
	NULL
};

/* sslmode values, weakest first: the URI carries the strongest registered */
static const char *const uri_sslmodes[] = {
	"disable", "allow", "prefer", "require", "verify-ca", "verify-full",
	NULL
};

static void uri_append_encoded(StringInfo buf, const char *value);
static void uri_append_host(StringInfo buf, const char *host);
static int	uri_sslmode_rank(const char *mode);

/*
 * Percent-encodes everything but RFC 3986's unreserved characters: a
 * value can then hold no ',', ':', '/', '?', '&' or '=' that libpq would
 * read as structure.
 */
static void
uri_append_encoded(StringInfo buf, const char *value)
{
	const unsigned char *p;

	for (p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(buf, (char) *p);
		else
			appendStringInfo(buf, "%%%02X", *p);
	}
}

/*
 * An IPv6 address goes in brackets (libpq's URI syntax); any other host,
 * including a Unix socket directory, percent-encoded.
 */
static void
uri_append_host(StringInfo buf, const char *host)
{
	const char *p;
	bool		ipv6 = strchr(host, ':') != NULL;

	for (p = host; *p && ipv6; p++)
		if (!(isxdigit((unsigned char) *p) || *p == ':' || *p == '.'))
			ipv6 = false;
	if (ipv6)
		appendStringInfo(buf, "[%s]", host);
	else
		uri_append_encoded(buf, host);
}

static int
uri_sslmode_rank(const char *mode)
{
	int			i;

	for (i = 0; uri_sslmodes[i] != NULL; i++)
		if (strcmp(mode, uri_sslmodes[i]) == 0)
			return i;
	return -1;
}

/*
 * Appends "host[:port]" for each host of one node's conninfo (a conninfo
 * may itself list several, with one port each or one port for all), and
 * raises *best_ssl to the node's sslmode.
 */
static void
uri_append_node(StringInfo hosts, const char *node_name, const char *conninfo,
				int *best_ssl)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	char	   *err = NULL;
	const char *host = NULL;
	const char *hostaddr = NULL;
	const char *port = NULL;
	List	   *host_list = NIL;
	List	   *port_list = NIL;
	ListCell   *hc;
	int			i;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		/* registered conninfo strings were parsed once: not expected */
		if (err)
			PQfreemem(err);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the conninfo of node \"%s\" cannot be parsed",
						node_name)));
	}
	for (o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = pstrdup(o->val);
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = pstrdup(o->val);
		else if (strcmp(o->keyword, "port") == 0)
			port = pstrdup(o->val);
		else if (strcmp(o->keyword, "sslmode") == 0)
		{
			int			rank = uri_sslmode_rank(o->val);

			if (rank > *best_ssl)
				*best_ssl = rank;
		}
	}
	PQconninfoFree(opts);

	/* host names the server for TLS; hostaddr alone is an address too */
	if (host == NULL)
		host = hostaddr;
	if (host != NULL)
		host_list = list_make1(pstrdup(host));
	if (host != NULL && strchr(host, ',') != NULL)
	{
		char	   *copy = pstrdup(host);
		char	   *tok;
		char	   *save;

		host_list = NIL;
		/* strtok_r would merge empty entries, which mean "the default" */
		for (tok = copy; tok != NULL; tok = save)
		{
			save = strchr(tok, ',');
			if (save)
				*save++ = '\0';
			host_list = lappend(host_list, tok);
		}
	}
	if (host_list == NIL)
		host_list = list_make1(pstrdup(""));
	if (port != NULL)
	{
		char	   *copy = pstrdup(port);
		char	   *tok;
		char	   *save;

		for (tok = copy; tok != NULL; tok = save)
		{
			save = strchr(tok, ',');
			if (save)
				*save++ = '\0';
			port_list = lappend(port_list, tok);
		}
	}

	i = 0;
	foreach(hc, host_list)
	{
		const char *h = lfirst(hc);
		const char *p = NULL;

		if (list_length(port_list) == 1)
			p = linitial(port_list);
		else if (i < list_length(port_list))
			p = list_nth(port_list, i);

		if (hosts->len > 0)
			appendStringInfoChar(hosts, ',');
		uri_append_host(hosts, h);
		if (p != NULL && p[0] != '\0')
		{
			appendStringInfoChar(hosts, ':');
			uri_append_encoded(hosts, p);
		}
		i++;
	}
}

/*
 * hamonitor.connection_uri(cluster_name text, target text DEFAULT 'primary',
 *							dbname text DEFAULT NULL, "user" text DEFAULT NULL)
 *		returns text
 *
 * The cluster's nodes, the primary the witness holds first, then by
 * priority (highest first) and name; nodes that proved not to belong to
 * the cluster (another system identifier) are left out.
 */
Datum
hamonitor_connection_uri(PG_FUNCTION_ARGS)
{
	char	   *cluster_name = HamonTextArg(fcinfo, 0, "cluster_name");
	char	   *target = HamonTextArg(fcinfo, 1, "target");
	char	   *dbname = PG_ARGISNULL(2) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *user = PG_ARGISNULL(3) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(3));
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	StringInfoData hosts;
	StringInfoData uri;
	int			best_ssl = -1;
	bool		known = false;
	uint64		i;
	int			t;
	int			ret;
	char		sep = '?';

	for (t = 0; uri_targets[t] != NULL; t++)
		if (strcmp(target, uri_targets[t]) == 0)
			break;
	if (uri_targets[t] == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown target \"%s\"", target),
				 errhint("The target is a target_session_attrs value: "
						 "primary, read-write, standby, prefer-standby, "
						 "read-only or any.")));
	if (dbname != NULL && dbname[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dbname must not be empty")));
	if (user != NULL && user[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user must not be empty")));

	args[0] = CStringGetTextDatum(cluster_name);
	initStringInfo(&hosts);

	SPI_connect();
	ret = SPI_execute_with_args("SELECT 1 FROM hamonitor.cluster "
								" WHERE cluster_name = $1",
								1, argtypes, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	known = SPI_processed > 0;
	if (!known)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cluster \"%s\" does not exist", cluster_name)));

	ret = SPI_execute_with_args(
								"SELECT n.node_name, n.conninfo"
								"  FROM hamonitor.node n"
								"  JOIN hamonitor.cluster c USING (cluster_name)"
								"  LEFT JOIN hamonitor.node_state s USING (node_id)"
								" WHERE n.cluster_name = $1"
								"   AND NOT coalesce(s.sysid_mismatch, false)"
								" ORDER BY n.node_id IS NOT DISTINCT FROM c.primary_node_id DESC,"
								"          n.priority DESC, n.node_name",
								1, argtypes, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", ret);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		uri_append_node(&hosts, SPI_getvalue(tup, desc, 1),
						SPI_getvalue(tup, desc, 2), &best_ssl);
	}
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cluster \"%s\" has no node that belongs to it",
						cluster_name)));

	/* the URI is built in the caller's context, which outlives SPI's */
	SPI_finish();

	initStringInfo(&uri);
	appendStringInfo(&uri, "postgresql://%s/", hosts.data);
	if (dbname != NULL)
		uri_append_encoded(&uri, dbname);
	if (user != NULL)
	{
		appendStringInfo(&uri, "%cuser=", sep);
		uri_append_encoded(&uri, user);
		sep = '&';
	}
	if (best_ssl >= 0)
	{
		appendStringInfo(&uri, "%csslmode=%s", sep, uri_sslmodes[best_ssl]);
		sep = '&';
	}
	appendStringInfo(&uri, "%ctarget_session_attrs=%s", sep, target);

	PG_RETURN_TEXT_P(cstring_to_text(uri.data));
}

/*
 * HamonConninfoAddress
 *		The first host (or hostaddr) and port of a conninfo, palloc'd, ""
 *		when absent or unparsable: what an event hook is told of a node.
 */
void
HamonConninfoAddress(const char *conninfo, char **host, char **port)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	char	   *err = NULL;
	const char *h = NULL;
	const char *ha = NULL;
	const char *p = NULL;

	*host = pstrdup("");
	*port = pstrdup("");
	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		return;
	}
	for (o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			h = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			ha = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			p = o->val;
	}
	if (h == NULL)
		h = ha;
	if (h != NULL)
		*host = pnstrdup(h, strcspn(h, ","));
	if (p != NULL)
		*port = pnstrdup(p, strcspn(p, ","));
	PQconninfoFree(opts);
}
