/*-------------------------------------------------------------------------
 *
 * witness.c
 *		Witness redundancy: a hot standby of the witness that takes over by
 *		itself when the active witness is gone, and a witness that comes
 *		back after such a takeover and knows it must not act.
 *
 * A witness pair is a witness and a hot standby of it (a base backup,
 * streaming), both with pg_hamonitor.witness_takeover = on.  Then this
 * file's background worker, the "witness guard", runs on both:
 *
 * On the standby witness (in recovery) it is passive: it reads the
 * registry replicated from the active witness (read-only; a query
 * cancelled by a recovery conflict is retried at the next round) and, in
 * memory only, asks every data node which pg_hamonitor probe sessions it
 * has, and asks the active witness itself (through the standby's own
 * primary_conninfo) whether it answers.  hamonitor.witness_status() and
 * hamonitor.witness_nodes() show what it sees; they read shared memory,
 * so they work in recovery.
 *
 * The takeover rule: the standby promotes its own server (pg_promote) only
 * when (1) the active witness has not answered for
 * witness_takeover_timeout, (2) it reached, in this round, a majority of
 * every cluster's nodes that the replicated catalog does not show down
 * (the ones the active witness last saw), and (3) none of the nodes it
 * reached shows a fresh probe session of the witness pair.  The data nodes
 * are the arbiter: a probe session carries the witness's identity in its
 * application_name ("@<system identifier in hex>.<timeline>",
 * HamonWitnessStamp), under the witness's own role (usename), and runs a
 * query every probe interval; a session whose last query started or ended
 * within HAMON_WITNESS_FRESH_INTERVALS probe intervals (at least
 * HAMON_WITNESS_FRESH_MIN_MS) is an active witness that is alive.  A
 * session of a host that vanished without a TCP reset stays open until the
 * data node's keepalives close it, but goes stale: an open session alone
 * proves nothing.  One fresh session anywhere means only the link between
 * the two witnesses is broken: nothing happens.
 *
 * On a witness that is not in recovery the guard looks for sessions stamped
 * with the pair's system identifier and a higher timeline than its own: a
 * standby witness promoted since (a promotion always starts a new
 * timeline).  Then this witness is superseded: it flags it (shared memory,
 * a witness_superseded event, a file in its data directory that keeps the
 * flag over a restart until the witness is rebuilt as a standby), and its
 * probe workers never act (HamonWitnessMayAct, asked by worker.c before
 * anything is probed or decided).  A probe worker acts only once the guard
 * completed one check on the current timeline that reached a majority of
 * every cluster's nodes (as in (2)): a returning witness looks before it
 * decides.
 *
 * With witness_synchronous the active witness's guard also keeps its own
 * synchronous_standby_names naming the standby witnesses that stream from
 * it, with a degrade rule (hamon_manage_sync).
 *
 * The guard's calls are blocking (with the latch, bounded by connect_timeout
 * and probe_timeout, one node after another): it is not the probe loop,
 * which never waits for it; a node that does not answer lengthens the
 * guard's round, and so delays a takeover or a superseded check, by at most
 * those timeouts.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/witness.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "engine.h"
#include "pg_hamonitor.h"
#include "remote.h"
#include "witness.h"

/* a probe session is fresh if it ran a query within this many intervals */
#define HAMON_WITNESS_FRESH_INTERVALS 5
#define HAMON_WITNESS_FRESH_MIN_MS 2000
/* nodes shown by hamonitor.witness_nodes() (all are checked) */
#define HAMON_WITNESS_MAX_SHOWN 64
/* the flag that survives a restart of a superseded witness */
#define HAMON_SUPERSEDED_FILE "pg_hamonitor.superseded"

bool		hamon_witness_takeover = false;
int			hamon_witness_takeover_timeout = 10000;
bool		hamon_witness_synchronous = false;

/* when a standby witness last streamed from us (witness_synchronous) */
static TimestampTz sync_seen_at = 0;

typedef enum HamonWitnessRole
{
	HAMON_WITNESS_STARTING = 0, /* not checked yet on this timeline */
	HAMON_WITNESS_ACTIVE,
	HAMON_WITNESS_STANDBY,
	HAMON_WITNESS_PROMOTING,
	HAMON_WITNESS_SUPERSEDED
} HamonWitnessRole;

typedef struct HamonWitnessNodeView
{
	char		cluster_name[HAMON_NAME_MAXLEN + 1];
	char		node_name[HAMON_NAME_MAXLEN + 1];
	bool		reached;
	bool		in_recovery;
	int			fresh_sessions; /* fresh probe sessions of the pair */
	int			newer_timeline; /* highest pair timeline above ours, or 0 */
	TimestampTz last_reached;
	char		error[256];
} HamonWitnessNodeView;

typedef struct HamonWitnessShared
{
	slock_t		mutex;
	bool		running;		/* the guard runs (pair mode) */
	HamonWitnessRole role;
	uint64		system_identifier;
	uint32		timeline;
	uint32		checked_timeline;	/* a full check passed on this timeline */
	bool		superseded;
	uint32		newer_timeline;
	bool		active_reachable;
	TimestampTz active_last_seen;
	TimestampTz active_lost_since;
	int			data_nodes;
	int			data_nodes_reached;
	int			fresh_sessions;
	TimestampTz checked_at;
	TimestampTz takeover_at;
	bool		takeover_event_pending;
	char		reason[HAMON_REASON_MAXLEN];
	int			nshown;
	HamonWitnessNodeView shown[HAMON_WITNESS_MAX_SHOWN];
} HamonWitnessShared;

static HamonWitnessShared *WitnessShmem = NULL;

/* one data node as the guard checks it */
typedef struct HamonWitnessTarget
{
	HamonWitnessNodeView view;
	char	   *conninfo;
	bool		known_down;		/* down in the catalog (the active's view) */
	PGconn	   *conn;
} HamonWitnessTarget;

/* the guard's own state (one process) */
static MemoryContext guard_cxt = NULL;	/* the targets */
static MemoryContext round_cxt = NULL;	/* reset after every round */
static List *targets = NIL;		/* HamonWitnessTarget */
static List *loaded = NIL;		/* what the last registry read found */
static bool extension_present = false;
static PGconn *active_conn = NULL;

PG_FUNCTION_INFO_V1(hamonitor_witness_status);
PG_FUNCTION_INFO_V1(hamonitor_witness_nodes);

/* the timeline this server writes (or replays, in recovery) */
static uint32
hamon_own_timeline(void)
{
	TimeLineID	tli;

	if (RecoveryInProgress())
	{
		(void) GetXLogReplayRecPtr(&tli);
		return tli;
	}
	return GetWALInsertionTimeLine();
}

Size
HamonWitnessShmemSize(void)
{
	return MAXALIGN(sizeof(HamonWitnessShared));
}

void
HamonWitnessShmemInit(void)
{
	bool		found;

	WitnessShmem = ShmemInitStruct("pg_hamonitor witness",
								   sizeof(HamonWitnessShared), &found);
	if (!found)
	{
		memset(WitnessShmem, 0, sizeof(HamonWitnessShared));
		SpinLockInit(&WitnessShmem->mutex);
	}
}

void
HamonRegisterWitnessWorker(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* above all on a hot standby: that is where it watches */
	w.bgw_start_time = BgWorkerStart_ConsistentState;
	w.bgw_restart_time = 1;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_hamonitor");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "HamonWitnessMain");
	snprintf(w.bgw_name, BGW_MAXLEN, "pg_hamonitor witness guard");
	snprintf(w.bgw_type, BGW_MAXLEN, "pg_hamonitor witness guard");
	RegisterBackgroundWorker(&w);
}

/*
 * HamonWitnessStamp
 *		The identity a paired witness stamps on its sessions' application_name:
 *		"@<system identifier, hex>.<timeline>", palloc'd; NULL unless
 *		witness_takeover is on (a lone witness keeps the plain name).
 */
char *
HamonWitnessStamp(void)
{
	if (!hamon_witness_takeover)
		return NULL;
	return psprintf("@" "%" INT64_MODIFIER "X" ".%u", GetSystemIdentifier(),
					hamon_own_timeline());
}

/* parses a stamp at the end of an application_name; false if none */
static bool
hamon_parse_stamp(const char *appname, uint64 *sysid, uint32 *tli)
{
	const char *at = strrchr(appname, '@');
	char	   *end;

	if (at == NULL)
		return false;
	errno = 0;
	*sysid = strtou64(at + 1, &end, 16);
	if (errno != 0 || end == at + 1 || *end != '.')
		return false;
	*tli = (uint32) strtoul(end + 1, &end, 10);
	return *end == '\0' && *tli > 0;
}

/*
 * HamonWitnessMayAct
 *		Whether this witness's probe workers may probe and decide: always
 *		for a lone witness; for a pair, once the guard found no newer witness
 *		on the current timeline, and never once superseded.
 */
bool
HamonWitnessMayAct(void)
{
	bool		ok;
	uint32		tli;

	if (!hamon_witness_takeover || WitnessShmem == NULL)
		return true;
	tli = hamon_own_timeline();
	SpinLockAcquire(&WitnessShmem->mutex);
	ok = !WitnessShmem->superseded && WitnessShmem->checked_timeline == tli;
	SpinLockRelease(&WitnessShmem->mutex);
	return ok;
}

/* wakes the probe workers, who ask HamonWitnessMayAct again */
static void
hamon_wake_workers(void)
{
	Latch	   *latches[HAMON_MAX_WORKERS];
	int			n = 0;
	int			i;

	SpinLockAcquire(&HamonShmem->mutex);
	for (i = 0; i < HAMON_MAX_WORKERS; i++)
		if (HamonShmem->workers[i].latch)
			latches[n++] = HamonShmem->workers[i].latch;
	SpinLockRelease(&HamonShmem->mutex);
	/* a latch outlives its worker's exit: setting a stale one is harmless */
	for (i = 0; i < n; i++)
		SetLatch(latches[i]);
}

/* sets the reason shown by witness_status(), logged when it changes */
static void
hamon_set_reason(int elevel, const char *fmt,...) pg_attribute_printf(2, 3);

static void
hamon_set_reason(int elevel, const char *fmt,...)
{
	char		buf[HAMON_REASON_MAXLEN];
	va_list		ap;
	bool		changed;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	SpinLockAcquire(&WitnessShmem->mutex);
	changed = strcmp(WitnessShmem->reason, buf) != 0;
	strlcpy(WitnessShmem->reason, buf, sizeof(WitnessShmem->reason));
	SpinLockRelease(&WitnessShmem->mutex);
	if (changed)
		ereport(elevel, (errmsg("pg_hamonitor witness: %s", buf)));
}

/* keeps one node of the registry read (HamonCatalogForEachNode) */
static void
hamon_add_loaded(const char *cluster_name, const char *node_name,
				 const char *conninfo, bool known_down, void *arg)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(guard_cxt);
	HamonWitnessTarget *t = palloc0(sizeof(HamonWitnessTarget));

	strlcpy(t->view.cluster_name, cluster_name, sizeof(t->view.cluster_name));
	strlcpy(t->view.node_name, node_name, sizeof(t->view.node_name));
	t->conninfo = pstrdup(conninfo);
	t->known_down = known_down;
	loaded = lappend(loaded, t);
	MemoryContextSwitchTo(oldcxt);
}

/* reads the registry (and whether the extension is there) */
static void
hamon_load_registry(void *arg)
{
	ListCell   *lc;

	/* a registry read that failed halfway leaves nothing behind */
	foreach(lc, loaded)
	{
		HamonWitnessTarget *t = lfirst(lc);

		pfree(t->conninfo);
		pfree(t);
	}
	list_free(loaded);
	loaded = NIL;
	extension_present = HamonExtensionExists();
	if (extension_present)
		HamonCatalogForEachNode(hamon_add_loaded, NULL);
}

/* merges the registry just read into the targets, keeping open sessions */
static void
hamon_merge_targets(void)
{
	ListCell   *lc;
	List	   *merged = NIL;
	MemoryContext oldcxt = MemoryContextSwitchTo(guard_cxt);

	foreach(lc, loaded)
	{
		HamonWitnessTarget *t = lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, targets)
		{
			HamonWitnessTarget *old = lfirst(lc2);

			if (old->conn != NULL &&
				strcmp(old->view.cluster_name, t->view.cluster_name) == 0 &&
				strcmp(old->view.node_name, t->view.node_name) == 0 &&
				strcmp(old->conninfo, t->conninfo) == 0)
			{
				t->conn = old->conn;
				old->conn = NULL;
				break;
			}
		}
		merged = lappend(merged, t);
	}
	foreach(lc, targets)
	{
		HamonWitnessTarget *old = lfirst(lc);

		HamonDisconnect(old->conn);
		pfree(old->conninfo);
		pfree(old);
	}
	list_free(targets);
	list_free(loaded);
	loaded = NIL;
	targets = merged;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The conninfo the guard uses: the given one with keepalives and
 * tcp_user_timeout (a peer host that vanished fails our call within
 * seconds, not after the kernel's default of minutes) unless it sets them.
 */
static char *
hamon_guard_conninfo(const char *conninfo, const char *dbname)
{
	StringInfoData buf;
	int			user_timeout = Max(hamon_probe_timeout, 1000);

	initStringInfo(&buf);
	/* a URI takes no keyword list after it: used as it is */
	if (strncmp(conninfo, "postgres://", 11) == 0 ||
		strncmp(conninfo, "postgresql://", 13) == 0)
	{
		appendStringInfoString(&buf, conninfo);
		return buf.data;
	}
	appendStringInfo(&buf, "keepalives=1 keepalives_idle=1 "
					 "keepalives_interval=1 keepalives_count=3 "
					 "tcp_user_timeout=%d %s", user_timeout, conninfo);
	if (dbname != NULL)
	{
		const char *p;

		appendStringInfoString(&buf, " dbname='");
		for (p = dbname; *p; p++)
		{
			if (*p == '\'' || *p == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *p);
		}
		appendStringInfoChar(&buf, '\'');
	}
	return buf.data;
}

/* the application_name of the guard's own sessions: never a probe's */
static char *
hamon_guard_appname(void)
{
	return psprintf("pg_hamonitor-witness@" "%" INT64_MODIFIER "X" ".%u",
					GetSystemIdentifier(), hamon_own_timeline());
}

/*
 * Runs sql on a connection the guard keeps (opened if need be), each
 * call bounded by connect_timeout and probe_timeout.  Returns the result,
 * or NULL with errbuf set and the connection closed on any error.
 */
static PGresult *
hamon_guard_query(PGconn **connp, const char *conninfo, const char *name,
				  const char *sql, char *errbuf, size_t errlen)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	PGresult   *volatile res = NULL;

	errbuf[0] = '\0';
	PG_TRY();
	{
		if (*connp == NULL)
		{
			char	   *appname = hamon_guard_appname();

			*connp = HamonConnectBlocking(conninfo, appname, name,
										  hamon_connect_timeout);
			pfree(appname);
		}
		res = HamonExec(*connp, name, sql, 0, NULL, hamon_probe_timeout);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		strlcpy(errbuf, edata->message, errlen);
		if (edata->detail)
		{
			strlcat(errbuf, ": ", errlen);
			strlcat(errbuf, edata->detail, errlen);
		}
		FreeErrorData(edata);
		/* one line: the message goes into witness_status() and events */
		for (char *p = errbuf; *p; p++)
			if (*p == '\n' || *p == '\t')
				*p = ' ';
		HamonDisconnect(*connp);
		*connp = NULL;
		res = NULL;
	}
	PG_END_TRY();
	return res;
}

/*
 * Asks one data node for the pg_hamonitor probe sessions of our role, with
 * how long ago each last ran a query; sets the target's view.
 */
static void
hamon_check_target(HamonWitnessTarget *t, uint64 sysid, uint32 tli,
				   int fresh_ms, TimestampTz now)
{
	static const char *const sql =
	"SELECT pg_catalog.pg_is_in_recovery(), a.application_name,"
	" (extract(epoch FROM pg_catalog.clock_timestamp()"
	"   - greatest(a.query_start, a.state_change)) * 1000)::bigint"
	"  FROM (SELECT 1) one"
	"  LEFT JOIN pg_catalog.pg_stat_activity a"
	"    ON a.usename = current_user"
	"   AND pg_catalog.starts_with(a.application_name, 'pg_hamonitor/')"
	"   AND a.pid <> pg_catalog.pg_backend_pid()";
	PGresult   *res;
	char	   *conninfo = hamon_guard_conninfo(t->conninfo, NULL);
	int			i;

	t->view.fresh_sessions = 0;
	t->view.newer_timeline = 0;
	res = hamon_guard_query(&t->conn, conninfo, t->view.node_name, sql,
							t->view.error, sizeof(t->view.error));
	pfree(conninfo);
	t->view.reached = (res != NULL);
	if (res == NULL)
		return;
	t->view.last_reached = now;
	for (i = 0; i < PQntuples(res); i++)
	{
		uint64		s_sysid;
		uint32		s_tli;

		t->view.in_recovery = strcmp(PQgetvalue(res, i, 0), "t") == 0;
		if (PQgetisnull(res, i, 1) ||
			!hamon_parse_stamp(PQgetvalue(res, i, 1), &s_sysid, &s_tli) ||
			s_sysid != sysid)
			continue;
		if (s_tli > tli && (int) s_tli > t->view.newer_timeline)
			t->view.newer_timeline = s_tli;
		/*
		 * No timing (track_activities off on the node) is no proof of a
		 * stale session: fail closed, count it as fresh.
		 */
		if (PQgetisnull(res, i, 2) || atol(PQgetvalue(res, i, 2)) <= fresh_ms)
			t->view.fresh_sessions++;
	}
	PQclear(res);
}

/* checks every data node; whether each cluster had a majority reached */
static bool
hamon_check_targets(uint64 sysid, uint32 tli, TimestampTz now,
					int *nreached, int *fresh, uint32 *newer,
					char **newer_node)
{
	int			fresh_ms = Max(HAMON_WITNESS_FRESH_INTERVALS * hamon_probe_interval,
							   HAMON_WITNESS_FRESH_MIN_MS);
	ListCell   *lc;
	bool		majority = true;

	*nreached = *fresh = 0;
	*newer = 0;
	*newer_node = NULL;
	foreach(lc, targets)
	{
		HamonWitnessTarget *t = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		hamon_check_target(t, sysid, tli, fresh_ms, now);
		if (t->view.reached)
			(*nreached)++;
		*fresh += t->view.fresh_sessions;
		if ((uint32) t->view.newer_timeline > *newer)
		{
			*newer = t->view.newer_timeline;
			*newer_node = t->view.node_name;
		}
	}

	/*
	 * A majority of every cluster's nodes that the catalog (the active
	 * witness's last word, replicated) does not show down; of all its nodes
	 * if it shows every one down.  A node already down before is no
	 * witness of anything; one the active witness saw up but we cannot
	 * reach may be on its side of a partition, so we need most of them.
	 */
	foreach(lc, targets)
	{
		HamonWitnessTarget *t = lfirst(lc);
		ListCell   *lc2;
		int			total = 0,
					reached = 0,
					total_all = 0,
					reached_all = 0;

		foreach(lc2, targets)
		{
			HamonWitnessTarget *u = lfirst(lc2);

			if (strcmp(u->view.cluster_name, t->view.cluster_name) != 0)
				continue;
			total_all++;
			if (u->view.reached)
				reached_all++;
			if (u->known_down)
				continue;
			total++;
			if (u->view.reached)
				reached++;
		}
		if (total == 0)
		{
			total = total_all;
			reached = reached_all;
		}
		if (2 * reached <= total)
			majority = false;
	}
	return majority;
}

/*
 * Does the active witness answer?  Through our own primary_conninfo.  A
 * connection the server itself refused (libpq reports the server's
 * "FATAL:" message: no pg_hba.conf entry, a bad password, too many
 * connections, starting up or shutting down) is an answer too: that
 * server is alive, and a misconfigured login must not turn into proof of
 * its death.  *refused says so, with the message in errbuf.
 */
static bool
hamon_check_active(char *errbuf, size_t errlen, bool *refused)
{
	const char *pc = GetConfigOption("primary_conninfo", true, false);
	char	   *conninfo;
	PGresult   *res;

	if (pc == NULL || pc[0] == '\0')
	{
		strlcpy(errbuf, "primary_conninfo is empty", errlen);
		HamonDisconnect(active_conn);
		active_conn = NULL;
		return false;
	}
	conninfo = hamon_guard_conninfo(pc, hamon_database);
	*refused = false;
	res = hamon_guard_query(&active_conn, conninfo, "active witness",
							"SELECT 1", errbuf, errlen);
	pfree(conninfo);
	if (res == NULL)
	{
		*refused = strstr(errbuf, "FATAL:") != NULL;
		return *refused;
	}
	PQclear(res);
	return true;
}

/* writes one event of kind per registered cluster (SPI connected) */
typedef struct HamonWitnessEvent
{
	const char *kind;
	const char *detail;
} HamonWitnessEvent;

static void
hamon_write_witness_events(void *arg)
{
	HamonWitnessEvent *ev = (HamonWitnessEvent *) arg;
	ListCell   *lc;
	List	   *done = NIL;

	if (!HamonExtensionExists())
		return;
	foreach(lc, targets)
	{
		HamonWitnessTarget *t = lfirst(lc);
		ListCell   *lc2;
		bool		seen = false;

		foreach(lc2, done)
			if (strcmp((char *) lfirst(lc2), t->view.cluster_name) == 0)
				seen = true;
		if (seen)
			continue;
		done = lappend(done, t->view.cluster_name);
		(void) HamonCatalogWriteEvent(t->view.cluster_name, NULL, ev->kind,
									  ev->detail);
	}
}

/* publishes the targets' views for witness_nodes() */
static void
hamon_publish(int nreached, int fresh)
{
	ListCell   *lc;
	int			n = 0;

	SpinLockAcquire(&WitnessShmem->mutex);
	foreach(lc, targets)
	{
		if (n >= HAMON_WITNESS_MAX_SHOWN)
			break;
		WitnessShmem->shown[n++] = ((HamonWitnessTarget *) lfirst(lc))->view;
	}
	WitnessShmem->nshown = n;
	WitnessShmem->data_nodes = list_length(targets);
	WitnessShmem->data_nodes_reached = nreached;
	WitnessShmem->fresh_sessions = fresh;
	WitnessShmem->checked_at = GetCurrentTimestamp();
	SpinLockRelease(&WitnessShmem->mutex);
}

/* marks this witness superseded, for good (until it is rebuilt) */
static void
hamon_superseded(const char *detail, bool write_event)
{
	char		path[MAXPGPATH];
	FILE	   *f;
	HamonWitnessEvent ev = {"witness_superseded", detail};

	SpinLockAcquire(&WitnessShmem->mutex);
	WitnessShmem->superseded = true;
	WitnessShmem->role = HAMON_WITNESS_SUPERSEDED;
	SpinLockRelease(&WitnessShmem->mutex);
	hamon_set_reason(WARNING, "%s", detail);
	hamon_wake_workers();
	/* and what it had started stops too (sequence.c checks before each step) */
	HamonEngineStopAll();

	snprintf(path, sizeof(path), "%s/%s", DataDir, HAMON_SUPERSEDED_FILE);
	/* durable: the flag must survive a crash right after */
	f = AllocateFile(path, "w");
	if (f == NULL || fprintf(f, "%s\n", detail) < 0 || fflush(f) != 0 ||
		pg_fsync(fileno(f)) != 0)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not write \"%s\": %m", path),
				 errdetail("The witness is superseded until it restarts; after a restart it finds that again on the data nodes while the newer witness probes them.")));
	if (f != NULL)
		FreeFile(f);
	if (write_event)
		(void) HamonRunInTransaction(hamon_write_witness_events, &ev,
									 "record witness_superseded");
}

/* one round of the standby witness: watch, and take over if the rule says */
static void
hamon_round_standby(uint64 sysid, uint32 tli, TimestampTz now)
{
	char		err[256];
	bool		refused;
	bool		reachable = hamon_check_active(err, sizeof(err), &refused);
	bool		majority;
	int			nreached,
				fresh;
	uint32		newer;
	char	   *newer_node;
	TimestampTz lost_since;
	int64		lost_ms;
	int			ntargets = list_length(targets);

	majority = hamon_check_targets(sysid, tli, now, &nreached, &fresh,
								   &newer, &newer_node);
	hamon_publish(nreached, fresh);

	SpinLockAcquire(&WitnessShmem->mutex);
	WitnessShmem->role = HAMON_WITNESS_STANDBY;
	WitnessShmem->active_reachable = reachable;
	if (reachable)
	{
		WitnessShmem->active_last_seen = now;
		WitnessShmem->active_lost_since = 0;
	}
	else if (WitnessShmem->active_lost_since == 0)
		WitnessShmem->active_lost_since = now;
	lost_since = WitnessShmem->active_lost_since;
	SpinLockRelease(&WitnessShmem->mutex);

	if (reachable)
	{
		if (refused)
			hamon_set_reason(WARNING, "the active witness answers, but refuses this witness's login (%s): fix primary_conninfo or the active witness's pg_hba.conf; a refusal counts as alive, never as gone", err);
		else
			hamon_set_reason(DEBUG1, "the active witness answers");
		return;
	}
	lost_ms = (now - lost_since) / 1000;
	if (ntargets == 0)
	{
		hamon_set_reason(LOG, "the active witness does not answer (%s); no data node is registered to confirm it is gone", err);
		return;
	}
	if (fresh > 0)
	{
		hamon_set_reason(LOG, "the active witness does not answer (%s), but %d fresh probe sessions of it are on the data nodes: only the link between the witnesses is broken", err, fresh);
		return;
	}
	if (!majority)
	{
		hamon_set_reason(LOG, "the active witness does not answer (%s), and only %d of %d data nodes were reached, not a majority of every cluster's nodes that were up: not enough to confirm it is gone", err, nreached, ntargets);
		return;
	}
	if (!hamon_witness_takeover)
		return;
	if (lost_ms < hamon_witness_takeover_timeout)
	{
		hamon_set_reason(LOG, "the active witness does not answer (%s) and no data node shows a fresh session of it: taking over if that lasts %d ms", err, hamon_witness_takeover_timeout);
		return;
	}

	/* the rule holds: promote our own server */
	hamon_set_reason(LOG, "taking over: the active witness has not answered for " INT64_FORMAT " ms (%s), and none of the %d data nodes reached (of %d) shows a fresh session of it", lost_ms, err, nreached, ntargets);
	SpinLockAcquire(&WitnessShmem->mutex);
	WitnessShmem->role = HAMON_WITNESS_PROMOTING;
	WitnessShmem->takeover_event_pending = true;
	WitnessShmem->takeover_at = now;
	SpinLockRelease(&WitnessShmem->mutex);
	PG_TRY();
	{
		(void) DirectFunctionCall2(pg_promote, BoolGetDatum(false),
								   Int32GetDatum(60));
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		SpinLockAcquire(&WitnessShmem->mutex);
		WitnessShmem->takeover_event_pending = false;
		WitnessShmem->role = HAMON_WITNESS_STANDBY;
		SpinLockRelease(&WitnessShmem->mutex);
	}
	PG_END_TRY();
}

/*
 * witness_synchronous: the active witness names the standby witnesses that
 * stream from it in its own synchronous_standby_names (ANY 1), so that a
 * commit that waits for them (an action row: HamonEngineEnqueue commits
 * synchronously) is on a standby witness before the action starts.  The
 * degrade rule: with no standby witness streaming for
 * witness_takeover_timeout (at once on a witness that never had one, e.g.
 * just promoted), the list is emptied, so a lone witness never waits.
 * Written with ALTER SYSTEM (postgresql.auto.conf) and a reload.
 */
typedef struct HamonSyncRead
{
	char	   *names;			/* quoted application_names, or NULL */
	char	   *set;			/* the value to write, or NULL */
} HamonSyncRead;

static void
hamon_sync_read(void *arg)
{
	HamonSyncRead *r = (HamonSyncRead *) arg;
	int			rc;

	rc = SPI_execute("SELECT pg_catalog.string_agg("
					 "  pg_catalog.quote_ident(application_name), ', '"
					 "  ORDER BY application_name)"
					 "  FROM pg_catalog.pg_stat_replication"
					 " WHERE state = 'streaming'", true, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read pg_stat_replication");
	r->names = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (r->names)
		r->names = MemoryContextStrdup(round_cxt, r->names);
}

static void
hamon_sync_write(void *arg)
{
	HamonSyncRead *r = (HamonSyncRead *) arg;
	char	   *sql = psprintf("ALTER SYSTEM SET synchronous_standby_names = %s",
							   quote_literal_cstr(r->set));
	List	   *parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	RawStmt    *raw = linitial_node(RawStmt, parsed);

	/* not through ProcessUtility: that refuses a transaction block */
	AlterSystemSetConfigFile(castNode(AlterSystemStmt, raw->stmt));
}

static void
hamon_manage_sync(TimestampTz now)
{
	const char *current = GetConfigOption("synchronous_standby_names",
										  false, false);
	HamonSyncRead r = {NULL, NULL};

	if (!hamon_witness_synchronous)
		return;
	if (!HamonRunInTransaction(hamon_sync_read, &r,
							   "read the standby witnesses"))
		return;
	if (r.names != NULL)
	{
		sync_seen_at = now;
		r.set = psprintf("ANY 1 (%s)", r.names);
	}
	else if (sync_seen_at == 0 ||
			 now - sync_seen_at >=
			 (int64) hamon_witness_takeover_timeout * 1000)
		r.set = "";
	else
		return;
	if (current != NULL && strcmp(current, r.set) == 0)
		return;
	if (!HamonRunInTransaction(hamon_sync_write, &r,
							   "set synchronous_standby_names"))
		return;
	ereport(LOG,
			(errmsg("pg_hamonitor witness: synchronous_standby_names = '%s' (%s)",
					r.set, r.names ? "standby witnesses streaming" :
					"degraded: no standby witness streaming")));
	if (kill(PostmasterPid, SIGHUP) != 0)
		ereport(WARNING,
				(errmsg("pg_hamonitor witness: could not signal the postmaster to reload: %m")));
}

/* one round of a witness that is not in recovery: superseded or not? */
static void
hamon_round_active(uint64 sysid, uint32 tli, TimestampTz now,
				   bool registry_read)
{
	bool		majority;
	int			nreached,
				fresh;
	uint32		newer;
	char	   *newer_node;
	bool		pending;
	bool		superseded;

	SpinLockAcquire(&WitnessShmem->mutex);
	pending = WitnessShmem->takeover_event_pending;
	superseded = WitnessShmem->superseded;
	SpinLockRelease(&WitnessShmem->mutex);

	/* first: a list naming a standby witness that is gone is emptied */
	if (!superseded)
		hamon_manage_sync(now);

	/* a takeover of ours: recorded once the server is writable */
	if (pending)
	{
		char		detail[HAMON_REASON_MAXLEN + 64];
		HamonWitnessEvent ev = {"witness_takeover", detail};

		SpinLockAcquire(&WitnessShmem->mutex);
		snprintf(detail, sizeof(detail), "timeline %u: %s", tli,
				 WitnessShmem->reason);
		SpinLockRelease(&WitnessShmem->mutex);
		if (HamonRunInTransaction(hamon_write_witness_events, &ev,
								  "record witness_takeover"))
		{
			SpinLockAcquire(&WitnessShmem->mutex);
			WitnessShmem->takeover_event_pending = false;
			SpinLockRelease(&WitnessShmem->mutex);
		}
	}
	if (superseded)
		return;

	majority = hamon_check_targets(sysid, tli, now, &nreached, &fresh,
								   &newer, &newer_node);
	hamon_publish(nreached, fresh);
	if (newer > 0)
	{
		char	   *detail = psprintf("superseded: node \"%s\" shows probe sessions of this witness pair on timeline %u, this witness is on timeline %u; it will not act.  Rejoin it as the standby of the active witness: pg_rewind --source-server=<active witness> (or a new base backup), then start it in recovery",
									  newer_node, newer, tli);

		SpinLockAcquire(&WitnessShmem->mutex);
		WitnessShmem->newer_timeline = newer;
		SpinLockRelease(&WitnessShmem->mutex);
		hamon_superseded(detail, true);
		pfree(detail);
		return;
	}
	if (!majority)
	{
		hamon_set_reason(LOG, "not acting yet: only %d of %d data nodes reached, not a majority of every cluster, so a newer witness cannot be ruled out", nreached, list_length(targets));
		return;
	}
	/* a check against a registry this round could not read proves nothing */
	if (!registry_read)
		return;
	SpinLockAcquire(&WitnessShmem->mutex);
	if (WitnessShmem->checked_timeline != tli)
	{
		WitnessShmem->checked_timeline = tli;
		WitnessShmem->role = HAMON_WITNESS_ACTIVE;
		SpinLockRelease(&WitnessShmem->mutex);
		hamon_set_reason(LOG, "acting on timeline %u: no newer witness on the %d data nodes reached", tli, nreached);
		hamon_wake_workers();
	}
	else
		SpinLockRelease(&WitnessShmem->mutex);
}

static void
hamon_guard_exit(int code, Datum arg)
{
	ListCell   *lc;

	foreach(lc, targets)
		HamonDisconnect(((HamonWitnessTarget *) lfirst(lc))->conn);
	HamonDisconnect(active_conn);
	SpinLockAcquire(&WitnessShmem->mutex);
	WitnessShmem->running = false;
	SpinLockRelease(&WitnessShmem->mutex);
}

/*
 * HamonWitnessMain
 *		The witness guard: one round every probe interval.
 */
void
HamonWitnessMain(Datum main_arg)
{
	char		path[MAXPGPATH];
	bool		was_in_recovery;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(hamon_database, NULL, 0);
	pgstat_report_appname("pg_hamonitor witness guard");
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	/* the guard's own writes never wait for a standby witness */
	SetConfigOption("synchronous_commit", "local", PGC_SUSET, PGC_S_OVERRIDE);
	guard_cxt = AllocSetContextCreate(TopMemoryContext, "pg_hamonitor witness",
									  ALLOCSET_DEFAULT_SIZES);
	round_cxt = AllocSetContextCreate(TopMemoryContext,
									  "pg_hamonitor witness round",
									  ALLOCSET_DEFAULT_SIZES);
	before_shmem_exit(hamon_guard_exit, (Datum) 0);

	SpinLockAcquire(&WitnessShmem->mutex);
	WitnessShmem->running = true;
	WitnessShmem->system_identifier = GetSystemIdentifier();
	SpinLockRelease(&WitnessShmem->mutex);

	/* superseded before a restart: still superseded, until rebuilt */
	snprintf(path, sizeof(path), "%s/%s", DataDir, HAMON_SUPERSEDED_FILE);
	was_in_recovery = RecoveryInProgress();
	if (was_in_recovery)
		(void) unlink(path);	/* rebuilt as a standby: the rejoin is done */
	else if (access(path, F_OK) == 0)
		hamon_superseded("superseded before this restart (file " HAMON_SUPERSEDED_FILE " in the data directory): rebuild this witness as the standby of the active one (pg_rewind or a new base backup)", false);

	ereport(LOG,
			(errmsg("pg_hamonitor witness guard started (takeover timeout %d ms)",
					hamon_witness_takeover_timeout)));

	for (;;)
	{
		TimestampTz now;
		uint32		tli;
		uint64		sysid = GetSystemIdentifier();
		bool		in_recovery;
		bool		registry_read;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(round_cxt);

		in_recovery = RecoveryInProgress();
		tli = hamon_own_timeline();
		SpinLockAcquire(&WitnessShmem->mutex);
		WitnessShmem->timeline = tli;
		SpinLockRelease(&WitnessShmem->mutex);

		/* a read-only transaction; a recovery conflict only costs a round */
		registry_read = HamonRunInTransaction(hamon_load_registry, NULL,
											  "read the node registry");
		if (registry_read)
			hamon_merge_targets();

		now = GetCurrentTimestamp();
		if (!extension_present)
			hamon_set_reason(DEBUG1, "the extension is not installed in \"%s\"",
							 hamon_database);
		else if (in_recovery)
			hamon_round_standby(sysid, tli, now);
		else
			hamon_round_active(sysid, tli, now, registry_read);

		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(round_cxt);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(hamon_probe_interval, 100), HAMON_WAIT_EVENT);
		ResetLatch(MyLatch);
	}
}

/*
 * hamonitor.witness_status(): what this witness is and sees, from shared
 * memory, so it answers on a standby witness too.
 */
Datum
hamonitor_witness_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[14];
	bool		nulls[14];
	HamonWitnessShared s;
	bool		in_recovery = RecoveryInProgress();
	bool		acting;
	const char *role;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(nulls, 0, sizeof(nulls));

	SpinLockAcquire(&WitnessShmem->mutex);
	memcpy(&s, WitnessShmem, offsetof(HamonWitnessShared, nshown));
	SpinLockRelease(&WitnessShmem->mutex);

	if (!hamon_witness_takeover)
	{
		role = in_recovery ? "standby" : "active";
		acting = !in_recovery;
	}
	else
	{
		acting = !in_recovery && !s.superseded &&
			s.checked_timeline == hamon_own_timeline();
		if (s.superseded)
			role = "superseded";
		else if (acting)
			role = "active";
		else if (in_recovery)
			role = s.role == HAMON_WITNESS_PROMOTING ? "promoting" : "standby";
		else
			role = "starting";
	}

	values[0] = CStringGetTextDatum(role);
	values[1] = BoolGetDatum(acting);
	values[2] = BoolGetDatum(hamon_witness_takeover);
	values[3] = CStringGetTextDatum(psprintf(UINT64_FORMAT,
											 GetSystemIdentifier()));
	values[4] = Int64GetDatum((int64) hamon_own_timeline());
	if (in_recovery && s.running)
		values[5] = BoolGetDatum(s.active_reachable);
	else
		nulls[5] = true;
	values[6] = TimestampTzGetDatum(s.active_last_seen);
	nulls[6] = !in_recovery || s.active_last_seen == 0;
	values[7] = TimestampTzGetDatum(s.active_lost_since);
	nulls[7] = !in_recovery || s.active_lost_since == 0;
	values[8] = Int32GetDatum(s.data_nodes);
	values[9] = Int32GetDatum(s.data_nodes_reached);
	values[10] = Int32GetDatum(s.fresh_sessions);
	values[11] = Int64GetDatum((int64) s.newer_timeline);
	nulls[11] = s.newer_timeline == 0;
	values[12] = TimestampTzGetDatum(s.checked_at);
	nulls[12] = s.checked_at == 0;
	values[13] = CStringGetTextDatum(s.reason);
	nulls[13] = s.reason[0] == '\0';
	if (!s.running)
		nulls[8] = nulls[9] = nulls[10] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * hamonitor.witness_nodes(): the data nodes as the witness guard last saw
 * them (at most HAMON_WITNESS_MAX_SHOWN), also in recovery.
 */
Datum
hamonitor_witness_nodes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HamonWitnessNodeView *shown;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	shown = palloc(sizeof(HamonWitnessNodeView) * HAMON_WITNESS_MAX_SHOWN);
	SpinLockAcquire(&WitnessShmem->mutex);
	n = WitnessShmem->nshown;
	memcpy(shown, WitnessShmem->shown, sizeof(HamonWitnessNodeView) * n);
	SpinLockRelease(&WitnessShmem->mutex);

	for (i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7];

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(shown[i].cluster_name);
		values[1] = CStringGetTextDatum(shown[i].node_name);
		values[2] = BoolGetDatum(shown[i].reached);
		values[3] = BoolGetDatum(shown[i].in_recovery);
		nulls[3] = shown[i].last_reached == 0;
		values[4] = Int32GetDatum(shown[i].fresh_sessions);
		values[5] = TimestampTzGetDatum(shown[i].last_reached);
		nulls[5] = shown[i].last_reached == 0;
		values[6] = CStringGetTextDatum(shown[i].error);
		nulls[6] = shown[i].error[0] == '\0';
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
