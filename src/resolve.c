/*-------------------------------------------------------------------------
 *
 * resolve.c
 *		Host name resolution outside the probe loop: a resolver helper process.
 *
 * libpq's PQconnectStartParams resolves a host name synchronously, with
 * getaddrinfo(): one slow or silent DNS server would stall every cluster
 * of the probe worker, outside every deadline.  (Only hostaddr avoids it.)
 * So the worker never gives libpq a name to resolve: probe.c asks this
 * file, and connects with the numeric addresses it gets back as hostaddr,
 * the names kept as host (for TLS host name checks and the password file).
 *
 * Why a helper process: getaddrinfo() has no non-blocking form but glibc's
 * getaddrinfo_a(), which starts threads inside the backend, and PostgreSQL
 * code must not run threads.  The worker forks one small helper when it
 * starts, before it opens any peer connection, and talks to it over a
 * SOCK_SEQPACKET socket pair (every message arrives whole) that sits in
 * the worker's WaitEventSet like any peer socket.  The helper forks one
 * short-lived child per request, at most HAMON_RESOLVE_PARALLEL at a time,
 * so a name that never resolves holds up no other name; the child writes
 * its answer to the shared socket itself and exits, and the helper kills
 * one still running after the request's timeout.  The worker keeps its own
 * deadline (connect_timeout) whatever the helper does.
 *
 * The helper is not a PostgreSQL process: it closes every descriptor it
 * inherited but its end of the pair, touches no shared memory, never
 * ereports, and leaves with _exit().  It exits when the worker's end of the
 * pair closes, and (Linux) is killed when the worker dies.  A helper that
 * dies is started again at the next request.
 *
 * pg_hamonitor.resolver_nameserver, when set, is the DNS server (an IPv4
 * address, and optionally :port) the children ask instead of those of
 * /etc/resolv.conf: for tests, and for a witness that must use another
 * resolver than its host's.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/resolve.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "miscadmin.h"
#include "storage/pg_shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "pg_hamonitor.h"
#include "resolve.h"

/* last: its _res macro would clash with a variable of s_lock.h */
#include <resolv.h>

/* children resolving at once in the helper */
#define HAMON_RESOLVE_PARALLEL 16
/* requests the helper keeps waiting for a free child */
#define HAMON_RESOLVE_QUEUE 4096
/* largest message either way */
#define HAMON_RESOLVE_MSG_MAX \
	(sizeof(HamonResolveAnswerHead) + HAMON_RESOLVE_MAX_NAMES * sizeof(HamonResolved))

typedef struct HamonResolveRequestHead
{
	uint64		seq;
	int32		timeout_ms;
	int32		nnames;
	char		nameserver[64];
	/* then nnames NUL-terminated names */
} HamonResolveRequestHead;

typedef struct HamonResolveAnswerHead
{
	uint64		seq;
	int32		nnames;
	/* then nnames HamonResolved */
} HamonResolveAnswerHead;

typedef struct HamonPendingResolve
{
	uint64		seq;
	void	   *owner;
} HamonPendingResolve;

static pgsocket resolver_sock = PGINVALID_SOCKET;
static pid_t resolver_pid = 0;
static uint64 resolver_seq = 0;
static HTAB *resolver_pending = NULL;
static HamonResolveCallback resolver_callback = NULL;
static uint64 resolver_generation = 0;	/* helpers started so far */

static bool hamon_resolver_spawn(void);
static void hamon_resolver_lost(void);
static void hamon_resolver_main(int fd, pid_t parent) pg_attribute_noreturn();

/*
 * HamonResolverInit
 *		Starts the helper: the worker calls it before it opens any peer
 *		connection, so the helper inherits none.
 */
void
HamonResolverInit(HamonResolveCallback callback)
{
	HASHCTL		ctl;

	resolver_callback = callback;
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(HamonPendingResolve);
	ctl.hcxt = TopMemoryContext;
	resolver_pending = hash_create("pg_hamonitor resolves", 256, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	(void) hamon_resolver_spawn();
}

/* the worker's end of the pair, for its wait set; invalid if none */
pgsocket
HamonResolverSocket(void)
{
	return resolver_sock;
}

static bool
hamon_resolver_spawn(void)
{
	int			sv[2];
	pid_t		pid;
	pid_t		parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
	{
		ereport(LOG,
				(errcode_for_socket_access(),
				 errmsg("pg_hamonitor could not create the resolver's socket pair: %m")));
		return false;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		ereport(LOG,
				(errmsg("pg_hamonitor could not start its resolver helper: %m")));
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	if (pid == 0)
	{
		close(sv[0]);
		hamon_resolver_main(sv[1], parent);
	}
	close(sv[1]);
	if (!pg_set_noblock(sv[0]))
	{
		close(sv[0]);
		(void) kill(pid, SIGKILL);
		(void) waitpid(pid, NULL, 0);
		return false;
	}
	resolver_sock = sv[0];
	resolver_pid = pid;
	resolver_generation++;
	return true;
}

/*
 * HamonResolverGeneration
 *		Changes whenever a helper is started: a new socket for the wait set,
 *		perhaps under the number of the old one.
 */
uint64
HamonResolverGeneration(void)
{
	return resolver_generation;
}

/* the helper is gone: forget it, and what it was asked */
static void
hamon_resolver_lost(void)
{
	if (resolver_sock != PGINVALID_SOCKET)
		close(resolver_sock);
	resolver_sock = PGINVALID_SOCKET;
	if (resolver_pid > 0)
	{
		(void) kill(resolver_pid, SIGKILL);
		(void) waitpid(resolver_pid, NULL, 0);
	}
	resolver_pid = 0;
	/* the askers' deadlines fail them; their answers will not come */
	if (resolver_pending != NULL)
	{
		HASH_SEQ_STATUS status;
		HamonPendingResolve *p;

		hash_seq_init(&status, resolver_pending);
		while ((p = hash_seq_search(&status)) != NULL)
			(void) hash_search(resolver_pending, &p->seq, HASH_REMOVE, NULL);
	}
}

/*
 * HamonResolverAsk
 *		Sends the names to the helper; the callback gets the answer with
 *		the returned sequence number, or never (the caller's own deadline
 *		then fails it).  Returns 0 if the request could not be sent now
 *		(the helper's queue is full, or it could not be started): the
 *		caller tries again later.
 */
uint64
HamonResolverAsk(void *owner, const char *const *names, int nnames,
				 int timeout_ms)
{
	char		buf[sizeof(HamonResolveRequestHead) +
					HAMON_RESOLVE_MAX_NAMES * 256];
	HamonResolveRequestHead *head = (HamonResolveRequestHead *) buf;
	size_t		len = sizeof(HamonResolveRequestHead);
	HamonPendingResolve *p;
	int			i;

	Assert(nnames > 0 && nnames <= HAMON_RESOLVE_MAX_NAMES);
	if (resolver_sock == PGINVALID_SOCKET && !hamon_resolver_spawn())
		return 0;
	memset(head, 0, sizeof(*head));
	head->seq = ++resolver_seq;
	head->timeout_ms = timeout_ms;
	head->nnames = nnames;
	strlcpy(head->nameserver,
			hamon_resolver_nameserver ? hamon_resolver_nameserver : "",
			sizeof(head->nameserver));
	for (i = 0; i < nnames; i++)
	{
		size_t		n = strnlen(names[i], 255);

		memcpy(buf + len, names[i], n);
		buf[len + n] = '\0';
		len += n + 1;
	}
	if (send(resolver_sock, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t) len)
	{
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			hamon_resolver_lost();
		return 0;
	}
	p = hash_search(resolver_pending, &head->seq, HASH_ENTER, NULL);
	p->owner = owner;
	return head->seq;
}

/* the asker no longer wants the answer (it was closed, or timed out) */
void
HamonResolverForget(uint64 seq)
{
	if (resolver_pending != NULL && seq != 0)
		(void) hash_search(resolver_pending, &seq, HASH_REMOVE, NULL);
}

/*
 * HamonResolverReadable
 *		The wait set reported the helper's socket: hands every answer that
 *		arrived to the callback.
 */
void
HamonResolverReadable(void)
{
	union
	{
		HamonResolveAnswerHead head;
		char		bytes[HAMON_RESOLVE_MSG_MAX];
	}			buf;

	while (resolver_sock != PGINVALID_SOCKET)
	{
		ssize_t		n = recv(resolver_sock, buf.bytes, sizeof(buf.bytes),
							 MSG_DONTWAIT);
		HamonPendingResolve *p;
		void	   *owner;
		bool		found;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0)
		{
			ereport(LOG,
					(errmsg("pg_hamonitor's resolver helper exited; it is started again at the next request")));
			hamon_resolver_lost();
			return;
		}
		if ((size_t) n < sizeof(HamonResolveAnswerHead) ||
			buf.head.nnames < 0 || buf.head.nnames > HAMON_RESOLVE_MAX_NAMES ||
			(size_t) n != sizeof(HamonResolveAnswerHead) +
			buf.head.nnames * sizeof(HamonResolved))
			continue;
		p = hash_search(resolver_pending, &buf.head.seq, HASH_FIND, &found);
		if (!found)
			continue;			/* an answer nobody waits for any more */
		owner = p->owner;
		(void) hash_search(resolver_pending, &buf.head.seq, HASH_REMOVE, NULL);
		resolver_callback(owner, buf.head.seq, buf.head.nnames,
						  (HamonResolved *) (buf.bytes + sizeof(HamonResolveAnswerHead)));
	}
}

/* at worker exit: the helper goes too */
void
HamonResolverShutdown(void)
{
	hamon_resolver_lost();
}

/*
 * ---------------------------------------------------------------------------
 * The helper process.  Plain POSIX from here on: no palloc, no ereport.
 * ---------------------------------------------------------------------------
 */

typedef struct HamonResolveJob
{
	pid_t		pid;			/* its child, 0 while queued */
	struct timespec deadline;
	char		msg[sizeof(HamonResolveRequestHead) + HAMON_RESOLVE_MAX_NAMES * 256];
	size_t		len;
} HamonResolveJob;

static bool
hamon_past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec ||
		(now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* points the stub resolver at "a.b.c.d[:port]"; false if it is not one */
static bool
hamon_use_nameserver(const char *spec)
{
	char		addr[64];
	char	   *colon;
	int			port = 53;
	struct in_addr in;

	strlcpy(addr, spec, sizeof(addr));
	if ((colon = strchr(addr, ':')) != NULL)
	{
		*colon = '\0';
		port = atoi(colon + 1);
	}
	if (inet_pton(AF_INET, addr, &in) != 1 || port <= 0 || port > 65535)
		return false;
	if (res_init() != 0)
		return false;
	_res.nscount = 1;
	memset(&_res.nsaddr_list[0], 0, sizeof(_res.nsaddr_list[0]));
	_res.nsaddr_list[0].sin_family = AF_INET;
	_res.nsaddr_list[0].sin_addr = in;
	_res.nsaddr_list[0].sin_port = htons(port);
	return true;
}

/* a child: resolves the request's names, answers on fd, and exits */
static void pg_attribute_noreturn()
hamon_resolve_job(int fd, HamonResolveJob *job)
{
	HamonResolveRequestHead *req = (HamonResolveRequestHead *) job->msg;
	char		out[HAMON_RESOLVE_MSG_MAX];
	HamonResolveAnswerHead *head = (HamonResolveAnswerHead *) out;
	HamonResolved *answers = (HamonResolved *) (out + sizeof(HamonResolveAnswerHead));
	const char *name = job->msg + sizeof(HamonResolveRequestHead);
	const char *end = job->msg + job->len;
	bool		ns_ok = true;
	int			i;

#ifdef __linux__
	/* dies with the helper (a death signal is not inherited across fork) */
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
	memset(out, 0, sizeof(out));
	head->seq = req->seq;
	head->nnames = req->nnames;
	if (req->nameserver[0] != '\0')
		ns_ok = hamon_use_nameserver(req->nameserver);
	for (i = 0; i < req->nnames && name < end; i++)
	{
		HamonResolved *a = &answers[i];
		struct addrinfo hints;
		struct addrinfo *res = NULL;
		struct addrinfo *ai;
		int			rc;

		memset(&hints, 0, sizeof(hints));
		/* as libpq asks for a host name */
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		if (!ns_ok)
		{
			strlcpy(a->error, "pg_hamonitor.resolver_nameserver is not an IPv4 address[:port]",
					sizeof(a->error));
			name += strlen(name) + 1;
			continue;
		}
		rc = getaddrinfo(name, NULL, &hints, &res);
		if (rc != 0)
			strlcpy(a->error, gai_strerror(rc), sizeof(a->error));
		else
		{
			a->ok = true;
			for (ai = res; ai != NULL; ai = ai->ai_next)
			{
				char		text[INET6_ADDRSTRLEN];
				const void *src;
				size_t		used = strlen(a->addresses);

				if (ai->ai_family == AF_INET)
					src = &((struct sockaddr_in *) ai->ai_addr)->sin_addr;
				else if (ai->ai_family == AF_INET6)
					src = &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr;
				else
					continue;
				if (inet_ntop(ai->ai_family, src, text, sizeof(text)) == NULL)
					continue;
				/* once each, in getaddrinfo's order, as libpq would try them */
				{
					char		probe[INET6_ADDRSTRLEN + 2];

					snprintf(probe, sizeof(probe), ",%s,", text);
					if (used > 0)
					{
						char		list[sizeof(a->addresses) + 2];

						snprintf(list, sizeof(list), ",%s,", a->addresses);
						if (strstr(list, probe) != NULL)
							continue;
					}
				}
				if (used + strlen(text) + 2 > sizeof(a->addresses))
					break;
				if (used > 0)
					strcat(a->addresses, ",");
				strcat(a->addresses, text);
			}
			freeaddrinfo(res);
			if (a->addresses[0] == '\0')
			{
				a->ok = false;
				strlcpy(a->error, "no IPv4 or IPv6 address", sizeof(a->error));
			}
		}
		name += strlen(name) + 1;
	}
	(void) send(fd, out, sizeof(HamonResolveAnswerHead) +
				req->nnames * sizeof(HamonResolved), MSG_NOSIGNAL);
	_exit(0);
}

static void pg_attribute_noreturn()
hamon_resolver_main(int fd, pid_t parent)
{
	static HamonResolveJob *jobs[HAMON_RESOLVE_QUEUE];
	int			njobs = 0;
	int			running = 0;
	long		maxfd = sysconf(_SC_OPEN_MAX);
	sigset_t	none;
	int			i;

	/* not a PostgreSQL process: default signals, none blocked */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGALRM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
#ifdef __linux__
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
	if (getppid() != parent)
		_exit(0);

	/*
	 * Nothing of the backend's: not the main shared memory segment (a
	 * postmaster restarting after a crash must not find it still attached),
	 * no peer socket, no postmaster pipe.
	 */
	PGSharedMemoryDetach();
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	for (i = 3; i < maxfd; i++)
		if (i != fd)
			(void) close(i);

	for (;;)
	{
		struct pollfd pfd;
		pid_t		pid;
		int			status;

		/* children done */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			for (i = 0; i < njobs; i++)
				if (jobs[i]->pid == pid)
				{
					free(jobs[i]);
					jobs[i] = jobs[--njobs];
					running--;
					break;
				}

		/* children past their time, queued requests past theirs */
		for (i = 0; i < njobs; i++)
			if (hamon_past(&jobs[i]->deadline))
			{
				if (jobs[i]->pid > 0)
					(void) kill(jobs[i]->pid, SIGKILL);		/* reaped above */
				else
				{
					free(jobs[i]);
					jobs[i--] = jobs[--njobs];
				}
			}

		/* start what waits while children are free */
		for (i = 0; i < njobs && running < HAMON_RESOLVE_PARALLEL; i++)
		{
			if (jobs[i]->pid != 0)
				continue;
			pid = fork();
			if (pid == 0)
				hamon_resolve_job(fd, jobs[i]);
			if (pid < 0)
				break;
			jobs[i]->pid = pid;
			running++;
		}

		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			break;
		if (getppid() != parent)
			break;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
		{
			HamonResolveJob *job = malloc(sizeof(HamonResolveJob));
			ssize_t		n;
			HamonResolveRequestHead *req;

			if (job == NULL)
				break;
			n = recv(fd, job->msg, sizeof(job->msg), 0);
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			{
				free(job);
				break;			/* the worker is gone */
			}
			req = (HamonResolveRequestHead *) job->msg;
			if (n < (ssize_t) sizeof(HamonResolveRequestHead) ||
				req->nnames <= 0 || req->nnames > HAMON_RESOLVE_MAX_NAMES ||
				njobs >= HAMON_RESOLVE_QUEUE)
			{
				free(job);
				continue;
			}
			job->len = n;
			job->pid = 0;
			clock_gettime(CLOCK_MONOTONIC, &job->deadline);
			job->deadline.tv_sec += req->timeout_ms / 1000;
			job->deadline.tv_nsec += (long) (req->timeout_ms % 1000) * 1000000L;
			if (job->deadline.tv_nsec >= 1000000000L)
			{
				job->deadline.tv_sec++;
				job->deadline.tv_nsec -= 1000000000L;
			}
			jobs[njobs++] = job;
		}
	}
	for (i = 0; i < njobs; i++)
		if (jobs[i]->pid > 0)
			(void) kill(jobs[i]->pid, SIGKILL);
	_exit(0);
}
