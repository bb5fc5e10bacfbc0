/*-------------------------------------------------------------------------
 *
 * http.c
 *		The witness's HTTP endpoint, a background worker of its own.
 *
 * Load balancers (HAProxy's httpchk and agent-check), poolers and
 * Prometheus ask the witness which node is the primary, which are usable
 * replicas, and how everything is.  The answers come from what the probe
 * workers wrote to the catalog (hamonitor.status, hamonitor.cluster), read
 * here with SPI in one short transaction per request, never from a peer:
 * this process neither waits for a probe nor makes a probe wait.  A node
 * whose last probe is older than a few probe intervals is not reported as
 * primary or replica, whatever its last known state was.
 *
 * Why a minimal server written here rather than libmicrohttpd: the whole
 * protocol needed is one request per connection, three bodiless methods,
 * and a handful of fixed paths.  A backend process is single-threaded and
 * its ereport/SPI/palloc may not be called from another thread, so
 * libmicrohttpd would have to run in its external-select mode anyway,
 * driven by our WaitEventSet, leaving it only the parsing; and its answers
 * to bad requests (413, 414, 431, its own timeouts) are not the ones this
 * endpoint documents.  What is here is about four hundred lines with every
 * limit explicit: at most HTTP_MAX_CLIENTS connections at once (the next
 * one gets 503 and is closed), HTTP_REQUEST_MAX bytes of request line and
 * headers (more is 400), no request body (400), HTTP_CLIENT_TIMEOUT_MS
 * from accept to the last byte of the answer (a slower client gets 408, or
 * is cut), every socket non-blocking and waited on in one WaitEventSet
 * with the latch and postmaster death, so SIGTERM ends it at once.  It adds
 * no dependency to the build.
 *
 * The same port answers HAProxy's agent-check: a first line that is a
 * bare path ("/replica/main/pg2\n", no method, no version) is routed as a
 * GET and answered "up" or "down" in one line (http_agent).
 *
 * It has no TLS and no authentication: it binds to
 * pg_hamonitor.http_listen_addresses (localhost by default), and the README
 * says how to expose it.  Nothing it returns holds a secret: the conninfo
 * strings are not part of any answer.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "catalog.h"
#include "http.h"
#include "metrics.h"
#include "pg_hamonitor.h"

/* connections served at once; one more is answered 503 and closed */
#define HTTP_MAX_CLIENTS		16
/* request line and headers, in bytes */
#define HTTP_REQUEST_MAX		8192
/* from accept to the end of the answer */
#define HTTP_CLIENT_TIMEOUT_MS	2000
/* listening sockets (addresses of http_listen_addresses) */
#define HTTP_MAX_LISTENERS		16
/* the catalog queries of one request; a lock held elsewhere waits less */
#define HTTP_STATEMENT_TIMEOUT	"500ms"
#define HTTP_LOCK_TIMEOUT		"200ms"

typedef enum HttpClientState
{
	HTTP_CLIENT_FREE = 0,
	HTTP_CLIENT_READING,
	HTTP_CLIENT_WRITING
} HttpClientState;

typedef struct HttpClient
{
	HttpClientState state;
	pgsocket	fd;
	TimestampTz deadline;
	int			in_len;
	char		in[HTTP_REQUEST_MAX + 1];
	char	   *out;			/* palloc'd in http_conn_cxt */
	int			out_len;
	int			out_sent;
} HttpClient;

/* what one request asks, once parsed */
typedef struct HttpRequest
{
	bool		head;			/* HEAD: the answer without its body */
	char	   *path;
	char	   *query;			/* after '?', or NULL */
} HttpRequest;

/* an answer */
typedef struct HttpResponse
{
	int			status;
	const char *content_type;
	StringInfoData body;
	bool		allow;			/* add an Allow header */
} HttpResponse;

static HttpClient clients[HTTP_MAX_CLIENTS];
static pgsocket listeners[HTTP_MAX_LISTENERS];
static int	nlisteners = 0;
static MemoryContext http_conn_cxt = NULL;	/* answers being sent */
static MemoryContext http_req_cxt = NULL;	/* reset after each request */

static void http_listen(void);
static void http_accept(pgsocket lfd, TimestampTz now);
static void http_read(HttpClient *c, TimestampTz now);
static void http_write(HttpClient *c);
static void http_close(HttpClient *c);
static void http_respond(HttpClient *c, HttpResponse *r, bool head);
static void http_send_now(pgsocket fd, int status, const char *text);
static void http_handle(HttpClient *c, int header_len);
static void http_agent(HttpClient *c, int line_len);
static void http_queue(HttpClient *c, const char *data, int len);
static void http_route(HttpRequest *req, HttpResponse *r);
static const char *http_reason(int status);
static void http_set(HttpResponse *r, int status, const char *fmt,...)
			pg_attribute_printf(3, 4);

/* ---------------------------------------------------------------------
 * registration and main loop
 * --------------------------------------------------------------------- */

/* called by _PG_init when pg_hamonitor.http_port is set */
void
HamonRegisterHttpWorker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* a hot-standby witness answers too: the catalog it replays */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_hamonitor");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "HamonHttpMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_hamonitor http");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_hamonitor http");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

void
HamonHttpMain(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(hamon_database, NULL, 0);
	pgstat_report_appname("pg_hamonitor http");

	/* as the probe workers: names resolve in pg_catalog only */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	/* an answer late by more than this is no use to a health check */
	SetConfigOption("statement_timeout", HTTP_STATEMENT_TIMEOUT, PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", HTTP_LOCK_TIMEOUT, PGC_SUSET,
					PGC_S_OVERRIDE);

	http_conn_cxt = AllocSetContextCreate(TopMemoryContext,
										  "pg_hamonitor http connections",
										  ALLOCSET_DEFAULT_SIZES);
	http_req_cxt = AllocSetContextCreate(TopMemoryContext,
										 "pg_hamonitor http request",
										 ALLOCSET_DEFAULT_SIZES);

	http_listen();

	for (;;)
	{
		WaitEventSet *wes;
		WaitEvent	occurred[HTTP_MAX_LISTENERS + HTTP_MAX_CLIENTS + 2];
		TimestampTz now = GetCurrentTimestamp();
		long		timeout = -1;
		int			nevents;
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* cut the clients whose time is up */
		for (i = 0; i < HTTP_MAX_CLIENTS; i++)
		{
			HttpClient *c = &clients[i];
			long		left;

			if (c->state == HTTP_CLIENT_FREE)
				continue;
			left = TimestampDifferenceMilliseconds(now, c->deadline);
			if (left <= 0)
			{
				if (c->state == HTTP_CLIENT_READING)
					http_send_now(c->fd, 408, "request not received in time");
				http_close(c);
				continue;
			}
			if (timeout < 0 || left < timeout)
				timeout = left;
		}

		/*
		 * The set is built anew each time: PostgreSQL 15 cannot remove a
		 * socket from a set, and there are at most a few dozen.
		 */
		wes = CreateWaitEventSet(CurrentMemoryContext,
								 HTTP_MAX_LISTENERS + HTTP_MAX_CLIENTS + 2);
		AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL,
						  NULL);
		for (i = 0; i < nlisteners; i++)
			AddWaitEventToSet(wes, WL_SOCKET_READABLE, listeners[i], NULL,
							  (void *) &listeners[i]);
		for (i = 0; i < HTTP_MAX_CLIENTS; i++)
		{
			HttpClient *c = &clients[i];

			if (c->state == HTTP_CLIENT_READING)
				AddWaitEventToSet(wes, WL_SOCKET_READABLE, c->fd, NULL, c);
			else if (c->state == HTTP_CLIENT_WRITING)
				AddWaitEventToSet(wes, WL_SOCKET_WRITEABLE, c->fd, NULL, c);
		}

		nevents = WaitEventSetWait(wes, timeout, occurred, lengthof(occurred),
								   PG_WAIT_EXTENSION);
		FreeWaitEventSet(wes);

		now = GetCurrentTimestamp();
		for (i = 0; i < nevents; i++)
		{
			WaitEvent  *ev = &occurred[i];

			if (ev->events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
				continue;
			}
			if (!(ev->events & WL_SOCKET_MASK))
				continue;
			if (ev->user_data >= (void *) &listeners[0] &&
				ev->user_data < (void *) &listeners[HTTP_MAX_LISTENERS])
				http_accept(*(pgsocket *) ev->user_data, now);
			else
			{
				HttpClient *c = (HttpClient *) ev->user_data;

				if (c->state == HTTP_CLIENT_READING)
					http_read(c, now);
				else if (c->state == HTTP_CLIENT_WRITING)
					http_write(c);
			}
		}
	}
}

/* ---------------------------------------------------------------------
 * sockets
 * --------------------------------------------------------------------- */

/* binds every address of http_listen_addresses; none bound is FATAL */
static void
http_listen(void)
{
	char	   *rawstring = pstrdup(hamon_http_listen_addresses);
	List	   *elemlist;
	ListCell   *lc;
	char		portstr[16];

	if (!SplitGUCList(rawstring, ',', &elemlist))
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in pg_hamonitor.http_listen_addresses")));
	snprintf(portstr, sizeof(portstr), "%d", hamon_http_port);

	foreach(lc, elemlist)
	{
		char	   *host = (char *) lfirst(lc);
		struct addrinfo hints;
		struct addrinfo *res = NULL;
		struct addrinfo *ai;
		int			rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		if (strcmp(host, "*") == 0)
			host = NULL;
		rc = getaddrinfo(host, portstr, &hints, &res);
		if (rc != 0)
		{
			ereport(WARNING,
					(errmsg("pg_hamonitor HTTP endpoint: could not resolve \"%s\": %s",
							host ? host : "*", gai_strerror(rc))));
			continue;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next)
		{
			pgsocket	fd;
			int			one = 1;
			char		addr[NI_MAXHOST];

			if (nlisteners >= HTTP_MAX_LISTENERS)
				break;
			if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr),
							NULL, 0, NI_NUMERICHOST) != 0)
				strlcpy(addr, "?", sizeof(addr));
			fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
			if (fd == PGINVALID_SOCKET)
				continue;
			(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
#ifdef IPV6_V6ONLY
			if (ai->ai_family == AF_INET6)
				(void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
								  sizeof(one));
#endif
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
				listen(fd, 64) < 0 || !pg_set_noblock(fd))
			{
				ereport(WARNING,
						(errcode_for_socket_access(),
						 errmsg("pg_hamonitor HTTP endpoint: could not listen on %s port %d: %m",
								addr, hamon_http_port)));
				closesocket(fd);
				continue;
			}
			listeners[nlisteners++] = fd;
			ereport(LOG,
					(errmsg("pg_hamonitor HTTP endpoint listening on %s port %d",
							addr, hamon_http_port)));
		}
		freeaddrinfo(res);
	}
	if (nlisteners == 0)
		ereport(FATAL,
				(errmsg("pg_hamonitor HTTP endpoint: no address of \"%s\" could be bound",
						hamon_http_listen_addresses)));
}

static void
http_accept(pgsocket lfd, TimestampTz now)
{
	for (;;)
	{
		pgsocket	fd = accept(lfd, NULL, NULL);
		HttpClient *c = NULL;
		int			i;

		if (fd == PGINVALID_SOCKET)
			return;				/* EAGAIN, or an error for that client only */
		if (!pg_set_noblock(fd))
		{
			closesocket(fd);
			continue;
		}
		for (i = 0; i < HTTP_MAX_CLIENTS && c == NULL; i++)
			if (clients[i].state == HTTP_CLIENT_FREE)
				c = &clients[i];
		if (c == NULL)
		{
			http_send_now(fd, 503, "too many connections");
			closesocket(fd);
			continue;
		}
		c->state = HTTP_CLIENT_READING;
		c->fd = fd;
		c->deadline = TimestampTzPlusMilliseconds(now, HTTP_CLIENT_TIMEOUT_MS);
		c->in_len = 0;
		c->out = NULL;
		c->out_len = c->out_sent = 0;
	}
}

static void
http_close(HttpClient *c)
{
	if (c->state == HTTP_CLIENT_FREE)
		return;
	/* our side is done; the peer reads the whole answer before the close */
	(void) shutdown(c->fd, SHUT_WR);
	closesocket(c->fd);
	if (c->out)
		pfree(c->out);
	c->out = NULL;
	c->state = HTTP_CLIENT_FREE;
}

/* finds the end of the headers: the offset after the blank line, or -1 */
static int
http_header_end(const char *buf, int len)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return -1;
}

static void
http_read(HttpClient *c, TimestampTz now)
{
	ssize_t		n;
	int			end;

	n = recv(c->fd, c->in + c->in_len, HTTP_REQUEST_MAX - c->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0)
	{
		/* closed before a whole request: nobody to answer */
		http_close(c);
		return;
	}
	c->in_len += n;
	c->in[c->in_len] = '\0';

	end = http_header_end(c->in, c->in_len);
	if (end < 0)
	{
		/* c->in is NUL-terminated; a NUL before the line end is a 400 */
		char	   *nl = strchr(c->in, '\n');

		/*
		 * HAProxy's agent-check: one line, a path without the method and
		 * version of an HTTP request line (which has two spaces).
		 */
		if (nl != NULL && c->in[0] == '/' &&
			memchr(c->in, ' ', nl - c->in) == NULL)
		{
			http_agent(c, nl - c->in);
			MemoryContextReset(http_req_cxt);
			return;
		}
		if (c->in_len >= HTTP_REQUEST_MAX)
		{
			HttpResponse r;

			initStringInfo(&r.body);
			r.allow = false;
			http_set(&r, 400, "request line and headers exceed %d bytes",
					 HTTP_REQUEST_MAX);
			http_respond(c, &r, false);
		}
		return;
	}
	http_handle(c, end);
	MemoryContextReset(http_req_cxt);
}

static void
http_write(HttpClient *c)
{
	ssize_t		n;

	n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
			 MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0)
	{
		http_close(c);
		return;
	}
	c->out_sent += n;
	if (c->out_sent >= c->out_len)
		http_close(c);
}

/*
 * An answer to a client we will not serve (too many connections, too
 * slow): one non-blocking send, whatever part of it gets through.
 */
static void
http_send_now(pgsocket fd, int status, const char *text)
{
	char		buf[256];
	int			len;

	len = snprintf(buf, sizeof(buf),
				   "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
				   "Content-Length: %d\r\nConnection: close\r\n\r\n%s\n",
				   status, http_reason(status), (int) strlen(text) + 1, text);
	(void) send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* ---------------------------------------------------------------------
 * requests and answers
 * --------------------------------------------------------------------- */

static const char *
http_reason(int status)
{
	switch (status)
	{
		case 200:
			return "OK";
		case 400:
			return "Bad Request";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 408:
			return "Request Timeout";
		case 500:
			return "Internal Server Error";
		case 503:
			return "Service Unavailable";
	}
	return "Unknown";
}

/* sets status and a one-line text body */
static void
http_set(HttpResponse *r, int status, const char *fmt,...)
{
	va_list		args;

	r->status = status;
	r->content_type = "text/plain; charset=utf-8";
	resetStringInfo(&r->body);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&r->body, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&r->body, needed);
	}
	appendStringInfoChar(&r->body, '\n');
}

/* queues the answer; the connection closes once it is sent */
static void
http_respond(HttpClient *c, HttpResponse *r, bool head)
{
	StringInfoData out;
	MemoryContext oldcxt = MemoryContextSwitchTo(http_conn_cxt);

	initStringInfo(&out);
	appendStringInfo(&out,
					 "HTTP/1.1 %d %s\r\n"
					 "Content-Type: %s\r\n"
					 "Content-Length: %d\r\n"
					 "Cache-Control: no-store\r\n"
					 "Connection: close\r\n",
					 r->status, http_reason(r->status), r->content_type,
					 r->body.len);
	if (r->allow)
		appendStringInfoString(&out, "Allow: GET, HEAD, OPTIONS\r\n");
	appendStringInfoString(&out, "\r\n");
	if (!head)
		appendBinaryStringInfo(&out, r->body.data, r->body.len);
	MemoryContextSwitchTo(oldcxt);
	http_queue(c, out.data, out.len);
}

/* queues data (in http_conn_cxt, freed with the connection) and sends */
static void
http_queue(HttpClient *c, const char *data, int len)
{
	c->out = (char *) data;
	c->out_len = len;
	c->out_sent = 0;
	c->state = HTTP_CLIENT_WRITING;
	http_write(c);
}

/*
 * HAProxy's agent protocol (agent-check with a per-server agent-send of
 * "/replica/<cluster>/<node>\n"): the line is routed as a GET of that
 * path, and the answer is one line, "up" for a 200 and "down" otherwise,
 * with the reason after '#' as HAProxy logs it.  HAProxy ignores an agent
 * it cannot reach and keeps the verdict of its plain check, so a pool
 * checked this way keeps serving through an outage of the witness (the
 * README says for which pools that is right).
 */
static void
http_agent(HttpClient *c, int line_len)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(http_req_cxt);
	char	   *line = pnstrdup(c->in, line_len);
	HttpRequest req;
	HttpResponse r;
	StringInfoData out;
	char	   *p;
	int			i;

	initStringInfo(&r.body);
	r.allow = false;
	memset(&req, 0, sizeof(req));
	if (line_len > 0 && line[line_len - 1] == '\r')
		line[--line_len] = '\0';
	for (p = line; *p; p++)
		if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
			break;
	if (*p != '\0')
		http_set(&r, 400, "malformed agent request");
	else
	{
		req.path = line;
		req.query = strchr(req.path, '?');
		if (req.query)
			*req.query++ = '\0';
		http_route(&req, &r);
	}
	MemoryContextSwitchTo(oldcxt);

	/* "up #primary" or "down #node \"pg1\" is not a primary (role standby)" */
	oldcxt = MemoryContextSwitchTo(http_conn_cxt);
	initStringInfo(&out);
	appendStringInfoString(&out, r.status == 200 ? "up #" : "down #");
	for (i = 0; i < r.body.len && i < 200 && r.body.data[i] != '\n'; i++)
		appendStringInfoChar(&out, r.body.data[i]);
	appendStringInfoChar(&out, '\n');
	MemoryContextSwitchTo(oldcxt);
	http_queue(c, out.data, out.len);
}

/* a token of RFC 9110 (method, header name) */
static bool
http_is_token(const char *s, int len)
{
	int			i;

	if (len <= 0)
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned char ch = (unsigned char) s[i];

		if (!(isalnum(ch) && ch < 0x80) && strchr("!#$%&'*+-.^_`|~", ch) == NULL)
			return false;
	}
	return true;
}

/*
 * Parses the request line and headers (c->in up to header_len), answers
 * 400 for anything malformed, 405 for a method other than GET, HEAD and
 * OPTIONS, and otherwise routes it.  OPTIONS gets what GET gets, as
 * HAProxy's httpchk expects.
 */
static void
http_handle(HttpClient *c, int header_len)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(http_req_cxt);
	HttpResponse r;
	HttpRequest req;
	char	   *buf = pnstrdup(c->in, header_len);
	char	   *line;
	char	   *next;
	char	   *sp1;
	char	   *sp2;
	char	   *q;
	int			method_len;
	bool		first = true;

	initStringInfo(&r.body);
	r.allow = false;
	memset(&req, 0, sizeof(req));

	if (memchr(c->in, '\0', header_len) != NULL)
	{
		http_set(&r, 400, "malformed request");
		goto answer;
	}

	for (line = buf; line != NULL && *line != '\0'; line = next)
	{
		int			len;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0)
			break;				/* the blank line */

		if (first)
		{
			first = false;
			/* METHOD SP request-target SP HTTP-version */
			sp1 = strchr(line, ' ');
			sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
			if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL ||
				!http_is_token(line, sp1 - line) ||
				sp1[1] != '/' ||
				(strcmp(sp2 + 1, "HTTP/1.1") != 0 &&
				 strcmp(sp2 + 1, "HTTP/1.0") != 0))
			{
				http_set(&r, 400, "malformed request line");
				goto answer;
			}
			*sp2 = '\0';
			for (q = sp1 + 1; *q; q++)
				if ((unsigned char) *q <= 0x20 || (unsigned char) *q >= 0x7f)
					break;
			if (*q != '\0')
			{
				http_set(&r, 400, "malformed request target");
				goto answer;
			}
			method_len = sp1 - line;
			req.path = sp1 + 1;
			if (method_len == 4 && strncmp(line, "HEAD", 4) == 0)
				req.head = true;
			else if (!((method_len == 3 && strncmp(line, "GET", 3) == 0) ||
					   (method_len == 7 && strncmp(line, "OPTIONS", 7) == 0)))
			{
				r.allow = true;
				http_set(&r, 405, "method not allowed: use GET, HEAD or OPTIONS");
				goto answer;
			}
			continue;
		}

		/* field-name ":" field-value; a body is not accepted */
		{
			char	   *colon = strchr(line, ':');
			char	   *value;

			if (colon == NULL || !http_is_token(line, colon - line))
			{
				http_set(&r, 400, "malformed header line");
				goto answer;
			}
			*colon = '\0';
			value = colon + 1;
			while (*value == ' ' || *value == '\t')
				value++;
			if (pg_strcasecmp(line, "transfer-encoding") == 0 ||
				(pg_strcasecmp(line, "content-length") == 0 &&
				 strspn(value, "0") != strlen(value)))
			{
				http_set(&r, 400, "a request body is not accepted");
				goto answer;
			}
		}
	}
	if (req.path == NULL)
	{
		http_set(&r, 400, "malformed request");
		goto answer;
	}

	req.query = strchr(req.path, '?');
	if (req.query)
		*req.query++ = '\0';
	http_route(&req, &r);

answer:
	MemoryContextSwitchTo(oldcxt);
	http_respond(c, &r, req.head);
}

/* ---------------------------------------------------------------------
 * the catalog
 * --------------------------------------------------------------------- */

/*
 * Runs fn(arg) in a transaction of its own with SPI connected (catalog.c);
 * returns false if it raised an ERROR, which is logged at LOG: a failed
 * request is the client's news (503), not a warning of the server's.
 */
static bool
http_in_transaction(void (*fn) (void *), void *arg)
{
	return HamonRunInTransactionEx(fn, arg, "answer an HTTP request", LOG,
								   NULL);
}

/* a value of the current SPI result, copied to the request context */
static char *
http_value(int row, int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
								 col);

	return v ? MemoryContextStrdup(http_req_cxt, v) : NULL;
}

static bool
http_bool(const char *v)
{
	return v != NULL && strcmp(v, "t") == 0;
}

/* a node's state as the role checks need it */
typedef struct HttpNodeState
{
	const char *cluster;
	const char *node;
	bool		installed;
	bool		found;
	char	   *role;
	char	   *health;
	bool		fenced;
	bool		split_brain;
	bool		sysid_mismatch;
	bool		read_only;
	bool		needs_rejoin;
	bool		is_cluster_primary;
	char	   *receiver;
	char	   *timeline;
	char	   *cluster_timeline;
	char	   *lag_bytes;		/* NULL if unknown */
	char	   *age_ms;			/* NULL if never probed */
	char	   *promoted_ms;	/* promoted since its last probe: how long ago */
} HttpNodeState;

static void
http_load_node(void *arg)
{
	HttpNodeState *st = (HttpNodeState *) arg;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	int			rc;

	st->installed = HamonExtensionExists();
	if (!st->installed)
		return;
	values[0] = CStringGetTextDatum(st->cluster);
	values[1] = CStringGetTextDatum(st->node);
	rc = SPI_execute_with_args(
							   "SELECT s.role, s.health, s.fenced, s.split_brain,"
							   "       s.sysid_mismatch, coalesce(s.read_only, false),"
							   "       s.needs_rejoin,"
							   "       c.primary_node_id IS NOT DISTINCT FROM s.node_id,"
							   "       s.wal_receiver_status, s.timeline, c.timeline,"
							   "       round(s.lag_bytes),"
							   "       round(extract(epoch FROM clock_timestamp() - s.last_probe_at) * 1000),"
							   "       (SELECT round(extract(epoch FROM clock_timestamp() - max(e.event_time)) * 1000)"
							   "          FROM hamonitor.event e"
							   "         WHERE e.event_time > clock_timestamp() - interval '1 minute'"
							   "           AND e.event_time > coalesce(s.last_probe_at, '-infinity')"
							   "           AND e.cluster_name = s.cluster_name"
							   "           AND e.node_name = s.node_name AND e.kind = 'promoted')"
							   "  FROM hamonitor.status s"
							   "  JOIN hamonitor.cluster c USING (cluster_name)"
							   " WHERE s.cluster_name = $1 AND s.node_name = $2",
							   2, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);
	st->found = SPI_processed > 0;
	if (!st->found)
		return;
	st->role = http_value(0, 1);
	st->health = http_value(0, 2);
	st->fenced = http_bool(http_value(0, 3));
	st->split_brain = http_bool(http_value(0, 4));
	st->sysid_mismatch = http_bool(http_value(0, 5));
	st->read_only = http_bool(http_value(0, 6));
	st->needs_rejoin = http_bool(http_value(0, 7));
	st->is_cluster_primary = http_bool(http_value(0, 8));
	st->receiver = http_value(0, 9);
	st->timeline = http_value(0, 10);
	st->cluster_timeline = http_value(0, 11);
	st->lag_bytes = http_value(0, 12);
	st->age_ms = http_value(0, 13);
	st->promoted_ms = http_value(0, 14);
}

/*
 * Common to both roles: a fresh probe saw the node up, in its cluster.
 * Returns NULL if so, else why not.
 */
static char *
http_not_usable(HttpNodeState *st)
{
	if (st->age_ms == NULL)
		return psprintf("node \"%s\" has not been probed yet", st->node);
	if (strtod(st->age_ms, NULL) > HAMON_FRESH_MS())
		return psprintf("state of node \"%s\" is stale: last probe %s ms ago, "
						"more than %d ms (is the probe worker running?)",
						st->node, st->age_ms, HAMON_FRESH_MS());
	if (st->health == NULL || strcmp(st->health, "up") != 0)
		return psprintf("node \"%s\" is %s", st->node,
						st->health ? st->health : "unknown");
	if (st->sysid_mismatch)
		return psprintf("node \"%s\" has another system identifier than its cluster",
						st->node);
	return NULL;
}

static char *
http_not_primary(HttpNodeState *st)
{
	char	   *why = http_not_usable(st);

	if (why)
		return why;
	/*
	 * The witness promoted it after its last probe: the promotion waited
	 * until the node had left recovery, so that is fresher evidence than
	 * the probe, which saw a standby.  Without this, load balancers would
	 * wait up to a probe interval more for the next probe.
	 */
	if (strcmp(st->role, "standby") == 0 && st->is_cluster_primary &&
		st->promoted_ms != NULL &&
		strtod(st->promoted_ms, NULL) <= HAMON_FRESH_MS() &&
		!st->fenced)
		return NULL;
	if (strcmp(st->role, "primary") != 0)
		return psprintf("node \"%s\" is not a primary (role %s)", st->node,
						st->role);
	if (st->split_brain)
		return psprintf("node \"%s\" is one of two writable primaries (split brain)",
						st->node);
	if (st->fenced)
		return psprintf("node \"%s\" is fenced", st->node);
	if (st->read_only)
		return psprintf("node \"%s\" is read-only", st->node);
	if (!st->is_cluster_primary)
		return psprintf("node \"%s\" is not the primary of cluster \"%s\"",
						st->node, st->cluster);
	return NULL;
}

/* max_lag < 0: no limit */
static char *
http_not_replica(HttpNodeState *st, int64 max_lag)
{
	char	   *why = http_not_usable(st);

	if (why)
		return why;
	if (strcmp(st->role, "standby") != 0)
		return psprintf("node \"%s\" is not a standby (role %s)", st->node,
						st->role);
	if (st->promoted_ms != NULL)
		return psprintf("node \"%s\" was promoted %s ms ago", st->node,
						st->promoted_ms);
	if (st->needs_rejoin)
		return psprintf("node \"%s\" needs to be rejoined", st->node);
	if (st->receiver == NULL || strcmp(st->receiver, "streaming") != 0)
		return psprintf("node \"%s\" is not streaming (WAL receiver %s)",
						st->node, st->receiver ? st->receiver : "absent");
	if (st->timeline == NULL || st->cluster_timeline == NULL ||
		strcmp(st->timeline, st->cluster_timeline) != 0)
		return psprintf("node \"%s\" is on timeline %s, its cluster on %s",
						st->node, st->timeline ? st->timeline : "unknown",
						st->cluster_timeline ? st->cluster_timeline : "unknown");
	if (max_lag >= 0)
	{
		if (st->lag_bytes == NULL)
			return psprintf("lag of node \"%s\" is unknown", st->node);
		if (strtod(st->lag_bytes, NULL) > (double) max_lag)
			return psprintf("node \"%s\" lags %s bytes, more than %lld",
							st->node, st->lag_bytes, (long long) max_lag);
	}
	return NULL;
}

/* lag=<size>: pg_size_bytes() does the parsing, as SQL users know it */
typedef struct HttpLagArg
{
	const char *text;
	int64		bytes;
} HttpLagArg;

static void
http_parse_lag(void *arg)
{
	HttpLagArg *lag = (HttpLagArg *) arg;

	lag->bytes = DatumGetInt64(DirectFunctionCall1(pg_size_bytes,
												   CStringGetTextDatum(lag->text)));
}

/* decodes %XX and '+' of a query string value; false if malformed */
static bool
http_unescape(char *s)
{
	char	   *out = s;

	for (; *s; s++)
	{
		if (*s == '+')
			*out++ = ' ';
		else if (*s == '%')
		{
			int			v;

			if (!isxdigit((unsigned char) s[1]) || !isxdigit((unsigned char) s[2]))
				return false;
			sscanf(s + 1, "%2x", &v);
			if (v == 0)
				return false;
			*out++ = (char) v;
			s += 2;
		}
		else
			*out++ = *s;
	}
	*out = '\0';
	return true;
}

/* a node or cluster name as validate_name() accepts it */
static bool
http_valid_name(const char *s)
{
	const char *p;

	if (*s == '\0' || strlen(s) > HAMON_NAME_MAXLEN)
		return false;
	for (p = s; *p; p++)
		if (!(isalnum((unsigned char) *p) && !IS_HIGHBIT_SET(*p)) &&
			*p != '_' && *p != '.' && *p != '-')
			return false;
	return true;
}

/* /primary, /replica and /read-only: kind is 'p', 'r' or 'o' */
static void
http_role(char kind, const char *cluster, const char *node, char *query,
		  HttpResponse *r)
{
	HttpNodeState st;
	int64		max_lag = -1;
	char	   *not_primary = NULL;
	char	   *not_replica = NULL;

	/* the only parameter is lag, for replicas */
	if (query != NULL && *query != '\0')
	{
		char	   *param;
		char	   *save = NULL;
		bool		seen = false;

		for (param = strtok_r(query, "&", &save); param != NULL;
			 param = strtok_r(NULL, "&", &save))
		{
			HttpLagArg lag;

			if (kind == 'p' || strncmp(param, "lag=", 4) != 0 || seen)
			{
				http_set(r, 400, "unknown or repeated query parameter \"%s\"%s",
						 param, kind == 'p' ? "" : " (only lag= is known)");
				return;
			}
			seen = true;
			lag.text = param + 4;
			if (!http_unescape(param + 4) || lag.text[0] == '\0' ||
				!HamonRunInTransactionEx(http_parse_lag, &lag, "parse a lag",
										 DEBUG1, NULL) ||
				lag.bytes < 0)
			{
				http_set(r, 400, "invalid lag \"%s\": a number of bytes, or a size with a unit (kB, MB, GB, TB)",
						 param + 4);
				return;
			}
			max_lag = lag.bytes;
		}
	}

	memset(&st, 0, sizeof(st));
	st.cluster = cluster;
	st.node = node;
	if (!http_in_transaction(http_load_node, &st))
	{
		http_set(r, 503, "the witness could not read its catalog");
		return;
	}
	if (!st.installed)
	{
		http_set(r, 503, "pg_hamonitor is not installed in database \"%s\"",
				 hamon_database);
		return;
	}
	if (!st.found)
	{
		http_set(r, 404, "no node \"%s\" in cluster \"%s\"", node, cluster);
		return;
	}

	if (kind != 'r')
		not_primary = http_not_primary(&st);
	if (kind != 'p')
		not_replica = http_not_replica(&st, max_lag);

	if (kind != 'r' && not_primary == NULL)
	{
		if (strcmp(st.role, "primary") == 0)
			http_set(r, 200, "primary");
		else
			http_set(r, 200, "primary (promoted by the witness %s ms ago, not probed since)",
					 st.promoted_ms);
	}
	else if (kind != 'p' && not_replica == NULL)
	{
		if (st.lag_bytes)
			http_set(r, 200, "replica, lag %s bytes", st.lag_bytes);
		else
			http_set(r, 200, "replica");
	}
	else if (kind == 'p')
		http_set(r, 503, "%s", not_primary);
	else if (kind == 'r')
		http_set(r, 503, "%s", not_replica);
	else
		http_set(r, 503, "neither primary (%s) nor replica (%s)",
				 not_primary, not_replica);
}

/* /health: the probe workers run and write */
typedef struct HttpHealth
{
	bool		installed;
	int64		nodes;
	char	   *newest_ms;
} HttpHealth;

static void
http_load_health(void *arg)
{
	HttpHealth *h = (HttpHealth *) arg;
	int			rc;

	h->installed = HamonExtensionExists();
	if (!h->installed)
		return;
	rc = SPI_execute("SELECT count(*),"
					 "       round(extract(epoch FROM clock_timestamp() - max(last_probe_at)) * 1000)"
					 "  FROM hamonitor.node_state", true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %d", rc);
	h->nodes = strtoi64(http_value(0, 1), NULL, 10);
	h->newest_ms = http_value(0, 2);
}

static void
http_health(HttpResponse *r)
{
	HttpHealth h;
	int			i;
	int			running = 0;

	/* a node down for long is probed at most every reconnect_backoff_max */
	int			limit = Max(HAMON_FRESH_MS(),
							hamon_reconnect_backoff_max + hamon_connect_timeout +
							hamon_probe_timeout + 100);

	if (RecoveryInProgress())
	{
		http_set(r, 503, "the witness is in recovery: its probe workers wait for its promotion");
		return;
	}
	if (hamon_workers == 0)
	{
		http_set(r, 503, "pg_hamonitor.workers is 0: nothing probes");
		return;
	}
	SpinLockAcquire(&HamonShmem->mutex);
	for (i = 0; i < hamon_workers; i++)
		if (HamonShmem->workers[i].pid != 0)
			running++;
	SpinLockRelease(&HamonShmem->mutex);
	if (running < hamon_workers)
	{
		http_set(r, 503, "%d of %d probe workers running", running,
				 hamon_workers);
		return;
	}

	memset(&h, 0, sizeof(h));
	if (!http_in_transaction(http_load_health, &h))
	{
		http_set(r, 503, "the witness could not read its catalog");
		return;
	}
	if (!h.installed)
	{
		http_set(r, 503, "pg_hamonitor is not installed in database \"%s\"",
				 hamon_database);
		return;
	}
	if (h.nodes > 0 && (h.newest_ms == NULL || strtod(h.newest_ms, NULL) > limit))
	{
		http_set(r, 503, "no probe result written for %s ms (more than %d ms)",
				 h.newest_ms ? h.newest_ms : "ever", limit);
		return;
	}
	http_set(r, 200, "ok: %d probe workers, %lld nodes, newest probe %s ms ago",
			 running, (long long) h.nodes, h.newest_ms ? h.newest_ms : "-");
}

/* /clusters and /clusters/<name>: hamonitor.status as JSON */
typedef struct HttpClusters
{
	const char *cluster;		/* NULL: all */
	bool		installed;
	char	   *json;			/* NULL: no such cluster */
} HttpClusters;

static void
http_load_clusters(void *arg)
{
	HttpClusters *hc = (HttpClusters *) arg;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	int			rc;

	hc->installed = HamonExtensionExists();
	if (!hc->installed)
		return;
	values[0] = hc->cluster ? CStringGetTextDatum(hc->cluster) : (Datum) 0;
	nulls[0] = hc->cluster ? ' ' : 'n';
	values[1] = Int32GetDatum(HAMON_FRESH_MS());

	/*
	 * Every column of hamonitor.status but conninfo: the endpoint has no
	 * authentication, and a user name or host list is not its business.
	 */
	rc = SPI_execute_with_args(
							   "SELECT CASE WHEN $1 IS NULL"
							   "         THEN jsonb_build_object('clusters', coalesce(jsonb_agg(x ORDER BY x->>'cluster_name'), '[]'))"
							   "         ELSE (array_agg(x))[1] END::text"
							   "  FROM (SELECT jsonb_build_object("
							   "          'cluster_name', c.cluster_name,"
							   "          'primary', pn.node_name,"
							   "          'timeline', c.timeline,"
							   "          'last_failover_at', c.last_failover_at,"
							   "          'nodes', coalesce((SELECT jsonb_agg((to_jsonb(s) - 'conninfo')"
							   "                     || jsonb_build_object('fresh',"
							   "                          coalesce(s.last_probe_at > clock_timestamp() - make_interval(secs => $2 / 1000.0), false))"
							   "                     ORDER BY s.node_name)"
							   "                FROM hamonitor.status s"
							   "               WHERE s.cluster_name = c.cluster_name), '[]')) AS x"
							   "          FROM hamonitor.cluster c"
							   "          LEFT JOIN hamonitor.node pn ON pn.node_id = c.primary_node_id"
							   "         WHERE $1 IS NULL OR c.cluster_name = $1) q",
							   2, types, values, nulls, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);
	hc->json = SPI_processed > 0 ? http_value(0, 1) : NULL;
}

static void
http_clusters(const char *cluster, HttpResponse *r)
{
	HttpClusters hc;

	memset(&hc, 0, sizeof(hc));
	hc.cluster = cluster;
	if (!http_in_transaction(http_load_clusters, &hc))
	{
		http_set(r, 503, "the witness could not read its catalog");
		return;
	}
	if (!hc.installed)
	{
		http_set(r, 503, "pg_hamonitor is not installed in database \"%s\"",
				 hamon_database);
		return;
	}
	if (hc.json == NULL)
	{
		http_set(r, 404, "no cluster \"%s\"", cluster);
		return;
	}
	r->status = 200;
	r->content_type = "application/json";
	resetStringInfo(&r->body);
	appendStringInfoString(&r->body, hc.json);
	appendStringInfoChar(&r->body, '\n');
}

/* /metrics */
typedef struct HttpMetrics
{
	bool		installed;
	StringInfo	out;
} HttpMetrics;

static void
http_load_metrics(void *arg)
{
	HttpMetrics *hm = (HttpMetrics *) arg;
	MemoryContext oldcxt;

	hm->installed = HamonExtensionExists();
	if (!hm->installed)
		return;
	oldcxt = MemoryContextSwitchTo(http_req_cxt);
	hm->out = makeStringInfo();
	MemoryContextSwitchTo(oldcxt);
	HamonMetricsText(hm->out);
}

/* keeps hamonitor.event_count small (catalog.c); a writable witness only */
static void
http_fold_counts(void *arg)
{
	if (HamonExtensionExists())
		HamonCatalogFoldEventCounts();
}

static void
http_metrics(HttpResponse *r)
{
	HttpMetrics hm;

	/* in a transaction of its own: the scrape does not depend on it */
	if (!RecoveryInProgress())
		(void) http_in_transaction(http_fold_counts, NULL);

	memset(&hm, 0, sizeof(hm));
	if (!http_in_transaction(http_load_metrics, &hm))
	{
		http_set(r, 503, "the witness could not read its catalog");
		return;
	}
	if (!hm.installed)
	{
		http_set(r, 503, "pg_hamonitor is not installed in database \"%s\"",
				 hamon_database);
		return;
	}
	r->status = 200;
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resetStringInfo(&r->body);
	appendBinaryStringInfo(&r->body, hm.out->data, hm.out->len);
}

static void
http_route(HttpRequest *req, HttpResponse *r)
{
	char	   *parts[4];
	int			nparts = 0;
	char	   *p;
	char	   *path = req->path;

	if (strcmp(path, "/health") == 0)
	{
		http_health(r);
		return;
	}
	if (strcmp(path, "/metrics") == 0)
	{
		http_metrics(r);
		return;
	}
	if (strcmp(path, "/clusters") == 0)
	{
		http_clusters(NULL, r);
		return;
	}

	/* /a/b/c: at most three non-empty segments */
	for (p = path + 1; nparts < 4;)
	{
		char	   *slash = strchr(p, '/');

		parts[nparts++] = p;
		if (slash == NULL)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	if (nparts == 2 && strcmp(parts[0], "clusters") == 0 &&
		http_valid_name(parts[1]))
	{
		http_clusters(parts[1], r);
		return;
	}
	if (nparts == 3 && http_valid_name(parts[1]) && http_valid_name(parts[2]))
	{
		char		kind = 0;

		if (strcmp(parts[0], "primary") == 0)
			kind = 'p';
		else if (strcmp(parts[0], "replica") == 0)
			kind = 'r';
		else if (strcmp(parts[0], "read-only") == 0)
			kind = 'o';
		if (kind)
		{
			http_role(kind, parts[1], parts[2], req->query, r);
			return;
		}
	}
	http_set(r, 404, "unknown path; see the README: /primary/<cluster>/<node>, "
			 "/replica/<cluster>/<node>, /read-only/<cluster>/<node>, "
			 "/health, /clusters, /clusters/<cluster>, /metrics");
}
