/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		Event hooks: pg_hamonitor.event_command, run in a worker of its own.
 *
 * Poolers, load balancers and paging systems want to hear of a failover
 * at once: for each event whose kind is in pg_hamonitor.event_command_kinds
 * the hook worker runs event_command (like archive_command) through
 * /bin/sh, with at most event_command_timeout; the command's exit status
 * and the first lines of its output are recorded as an event (hook_done,
 * hook_failed, hook_timeout).  A hook never runs in the probe loop: this
 * process only reads the event table, which the probe workers write.
 *
 * One at a time per cluster, in event order: a cluster's next event waits
 * until the command of its previous one finished, while the commands of
 * other clusters run beside it, so a command that hangs until its timeout
 * delays only its own cluster's hooks.  The commands are children of this
 * one process, each waited on through its output pipe in one WaitEventSet
 * and its exit polled every HOOK_CHILD_POLL_MS; at most HOOK_MAX_RUNNING
 * clusters have a command running at once (the others wait for one of
 * them to finish).
 *
 * Delivery is at least once.  The ids of the events whose command finished
 * are kept in hamonitor.hook_delivery, in the same transaction as the
 * result event; an event is picked again until its row is there, so an
 * event whose command had not finished when the witness crashed runs again
 * after the restart.  Events are looked for among those recorded since
 * the command was set (hamonitor.hook_state) and within the last hour:
 * event ids do not become visible in id order (hamonitor.switchover()
 * commits its events at its end, after the probe worker committed later
 * ones), so a single "last id" cursor could skip one.
 *
 * Placeholders: %e event id, %c cluster, %n node, %k kind, %d detail, %t
 * event time, %h and %p host and port of the cluster's primary as the
 * witness holds it now (after a promotion: the new one), %% a '%'.  Each is
 * replaced by its value in single quotes, quoted for the shell, so no value
 * can add a word or a command; write the placeholders unquoted.  Values
 * are names, addresses, ports and event details, which never hold a
 * password (details show conninfo strings masked).
 *
 * The command runs in a process group of its own, so that a timeout kills
 * it with everything it started; its stdin is /dev/null and it inherits no
 * descriptor of the server but stdout and stderr, both a pipe read here.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/hooks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "catalog.h"
#include "compat.h"
#include "hooks.h"
#include "pg_hamonitor.h"
#include "uri.h"

/* time between two looks at the event table */
#define HOOK_POLL_MS			200
/* output recorded in the result event */
#define HOOK_OUTPUT_LINES		5
#define HOOK_OUTPUT_BYTES		1000
/* output read at most (the rest is drained and dropped) */
#define HOOK_READ_MAX			65536
/* commands running at once, each for another cluster */
#define HOOK_MAX_RUNNING		32
/* while commands run: how often their exit is looked for */
#define HOOK_CHILD_POLL_MS		50

/* the event a command runs for, copied out of its transaction */
typedef struct HookEvent
{
	MemoryContext cxt;			/* its strings; deleted when it is done */
	int64		event_id;
	char	   *cluster;
	char	   *node;
	char	   *kind;
	char	   *detail;
	char	   *time;
	char	   *host;
	char	   *port;
} HookEvent;

/* a command running for one cluster's event */
typedef struct HookRun
{
	bool		active;
	HookEvent	ev;
	pid_t		pid;			/* its process group */
	int			fd;				/* read end of its stdout/stderr, or -1 */
	bool		exited;
	int			status;
	StringInfoData out;			/* in ev.cxt */
	TimestampTz start;
	TimestampTz deadline;
} HookRun;

/* what one look at the event table asks and finds */
typedef struct HookLook
{
	bool		state_written;	/* hook_state inserted or reset */
	int			max;			/* free runs: events wanted at most */
	List	   *busy;			/* clusters with a command running */
	int			nfound;
	HookEvent	found[HOOK_MAX_RUNNING];
} HookLook;

/* what the command did */
typedef struct HookResult
{
	HookEvent  *ev;
	const char *kind;			/* hook_done, hook_failed, hook_timeout */
	char	   *detail;
} HookResult;

static HookRun runs[HOOK_MAX_RUNNING];
static bool hook_enabled = false;	/* event_command set at the last look */
static bool hook_started = false;	/* hook_state looked at once */
static bool hook_seen_disabled = false;	/* event_command was empty here */
static bool hook_reset_pending = false; /* set again: deliver from now */

static void hook_exit(int code, Datum arg);
static void hook_start(HookRun *run);
static bool hook_poll(HookRun *run);
static void hook_finish(HookRun *run);

void
HamonRegisterHookWorker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* a standby witness runs no hook: the active one does */
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_hamonitor");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "HamonHookMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_hamonitor hooks");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_hamonitor hooks");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/* the commands still running when this process exits are killed with it */
static void
hook_exit(int code, Datum arg)
{
	int			i;

	for (i = 0; i < HOOK_MAX_RUNNING; i++)
		if (runs[i].active && runs[i].pid > 0)
			(void) kill(-runs[i].pid, SIGKILL);
}

/* ---------------------------------------------------------------------
 * the catalog
 * --------------------------------------------------------------------- */

static char *
hook_value(HookEvent *ev, int row, int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
								 col);

	return MemoryContextStrdup(ev->cxt, v ? v : "");
}

/*
 * The next event to deliver of each cluster that has no command running,
 * oldest first, at most look->max of them; each is copied into a memory
 * context of its own.  The first look after this process started with a
 * command set keeps the hook_state of before (a restart after a crash
 * delivers what was pending); a command set after being empty here starts
 * from now.
 */
static void
hook_next(void *arg)
{
	HookLook   *look = (HookLook *) arg;
	Oid			types[3] = {TEXTOID, TEXTARRAYOID, INT4OID};
	Datum		values[3];
	Datum	   *busy;
	ListCell   *lc;
	int			nbusy = 0;
	int			rc;
	uint64		row;

	look->nfound = 0;
	if (!HamonExtensionExists())
		return;

	/*
	 * Where delivery starts: kept from before at the first look of this
	 * process (what a crash left pending is delivered), from now when the
	 * command was set after being empty here.
	 */
	if (!hook_started || hook_reset_pending)
	{
		Oid			btypes[1] = {BOOLOID};
		Datum		bvalues[1];

		bvalues[0] = BoolGetDatum(hook_reset_pending);
		rc = SPI_execute_with_args(
								   "INSERT INTO hamonitor.hook_state AS h (id, enabled_since)"
								   "     VALUES (true, clock_timestamp())"
								   " ON CONFLICT (id) DO UPDATE"
								   "   SET enabled_since = clock_timestamp()"
								   "  WHERE $1",
								   1, btypes, bvalues, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed: %d", rc);
		look->state_written = true;
	}

	busy = palloc0(sizeof(Datum) * (list_length(look->busy) + 1));
	foreach(lc, look->busy)
		busy[nbusy++] = CStringGetTextDatum((char *) lfirst(lc));
	values[0] = CStringGetTextDatum(hamon_event_command_kinds);
	values[1] = PointerGetDatum(construct_array(busy, nbusy, TEXTOID, -1,
												false, TYPALIGN_INT));
	values[2] = Int32GetDatum(look->max);

	/*
	 * Per cluster, its oldest undelivered event: a cluster's events run one
	 * after the other, in event order, while another cluster's run beside
	 * them (a hanging command delays its own cluster only).
	 */
	rc = SPI_execute_with_args(
							   "SELECT e.event_id, e.cluster_name, e.node_name, e.kind,"
							   "       e.detail, e.event_time, n.conninfo"
							   "  FROM (SELECT DISTINCT ON (e.cluster_name) e.*"
							   "          FROM hamonitor.event e"
							   "         CROSS JOIN hamonitor.hook_state h"
							   "         WHERE e.event_time >= greatest(h.enabled_since,"
							   "                                clock_timestamp() - interval '1 hour')"
							   "           AND (btrim($1) = '*'"
							   "                OR e.kind = ANY (SELECT btrim(k) FROM unnest(string_to_array($1, ',')) k))"
							   "           AND e.kind NOT LIKE 'hook\\_%'"
							   "           AND e.cluster_name <> ALL ($2)"
							   "           AND NOT EXISTS (SELECT 1 FROM hamonitor.hook_delivery d"
							   "                            WHERE d.event_id = e.event_id)"
							   "         ORDER BY e.cluster_name, e.event_id) e"
							   "  LEFT JOIN hamonitor.cluster c USING (cluster_name)"
							   "  LEFT JOIN hamonitor.node n ON n.node_id = c.primary_node_id"
							   " ORDER BY e.event_id LIMIT $3",
							   3, types, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);

	for (row = 0; row < SPI_processed && look->nfound < look->max; row++)
	{
		HookEvent  *ev = &look->found[look->nfound++];
		char	   *conninfo;
		char	   *host = "";
		char	   *port = "";

		ev->cxt = AllocSetContextCreate(TopMemoryContext,
										"pg_hamonitor hook event",
										ALLOCSET_SMALL_SIZES);
		ev->event_id = strtoi64(hook_value(ev, row, 1), NULL, 10);
		ev->cluster = hook_value(ev, row, 2);
		ev->node = hook_value(ev, row, 3);
		ev->kind = hook_value(ev, row, 4);
		ev->detail = hook_value(ev, row, 5);
		ev->time = hook_value(ev, row, 6);
		conninfo = SPI_getvalue(SPI_tuptable->vals[row],
								SPI_tuptable->tupdesc, 7);
		if (conninfo != NULL)
			HamonConninfoAddress(conninfo, &host, &port);
		ev->host = MemoryContextStrdup(ev->cxt, host);
		ev->port = MemoryContextStrdup(ev->cxt, port);
	}
}

/* records the outcome and the delivery, in one transaction */
static void
hook_record(void *arg)
{
	HookResult *res = (HookResult *) arg;
	Oid			types[5] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			rc;

	values[0] = Int64GetDatum(res->ev->event_id);
	values[1] = CStringGetTextDatum(res->ev->cluster);
	values[2] = CStringGetTextDatum(res->ev->node);
	if (res->ev->node[0] == '\0')
		nulls[2] = 'n';
	values[3] = CStringGetTextDatum(res->kind);
	values[4] = CStringGetTextDatum(res->detail);
	rc = SPI_execute_with_args(
							   "WITH d AS (INSERT INTO hamonitor.hook_delivery (event_id, outcome)"
							   "           VALUES ($1, $4) ON CONFLICT DO NOTHING)"
							   "INSERT INTO hamonitor.event (cluster_name, node_name, kind, detail)"
							   "     VALUES ($2, $3, $4, $5)",
							   5, types, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);

	/* deliveries older than the window are of no use any more */
	rc = SPI_execute("DELETE FROM hamonitor.hook_delivery"
					 " WHERE finished_at < clock_timestamp() - interval '2 hours'",
					 false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute failed: %d", rc);
}

/* ---------------------------------------------------------------------
 * the command
 * --------------------------------------------------------------------- */

/* appends value in single quotes, each ' written as '\'' */
static void
hook_quote(StringInfo buf, const char *value)
{
	const char *p;

	appendStringInfoChar(buf, '\'');
	for (p = value; *p; p++)
	{
		if (*p == '\'')
			appendStringInfoString(buf, "'\\''");
		else
			appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/* the command with its placeholders replaced */
static char *
hook_command(HookEvent *ev)
{
	StringInfoData cmd;
	const char *p;
	char		id[32];

	snprintf(id, sizeof(id), INT64_FORMAT, ev->event_id);
	initStringInfo(&cmd);
	for (p = hamon_event_command; *p; p++)
	{
		const char *v = NULL;

		if (*p != '%' || p[1] == '\0')
		{
			appendStringInfoChar(&cmd, *p);
			continue;
		}
		switch (p[1])
		{
			case 'e':
				v = id;
				break;
			case 'c':
				v = ev->cluster;
				break;
			case 'n':
				v = ev->node;
				break;
			case 'k':
				v = ev->kind;
				break;
			case 'd':
				v = ev->detail;
				break;
			case 't':
				v = ev->time;
				break;
			case 'h':
				v = ev->host;
				break;
			case 'p':
				v = ev->port;
				break;
			case '%':
				appendStringInfoChar(&cmd, '%');
				p++;
				continue;
			default:
				/* not a placeholder: kept as written */
				appendStringInfoChar(&cmd, *p);
				continue;
		}
		hook_quote(&cmd, v);
		p++;
	}
	return cmd.data;
}

/* the first lines of the output, for the result event */
static void
hook_output_summary(StringInfo out, const char *data, int len)
{
	int			lines = 0;
	int			i;

	for (i = 0; i < len && out->len < HOOK_OUTPUT_BYTES; i++)
	{
		char		ch = data[i];

		if (ch == '\n')
		{
			if (++lines >= HOOK_OUTPUT_LINES)
				break;
			if (i + 1 < len)
				appendStringInfoString(out, " | ");
			continue;
		}
		appendStringInfoChar(out, (ch == '\0' || ch == '\r') ? ' ' : ch);
	}
	if (i < len && !(i == len - 1 && data[i] == '\n'))
		appendStringInfoString(out, " ...");
}

/*
 * Starts the command of run->ev: a process group of its own, its output
 * on a non-blocking pipe.  On an ERROR (no pipe, no fork) nothing runs and
 * the event is tried again at a later look.
 */
static void
hook_start(HookRun *run)
{
	HookEvent  *ev = &run->ev;
	MemoryContext oldcxt = MemoryContextSwitchTo(ev->cxt);
	char	   *command = hook_command(ev);
	int			pipefd[2];
	pid_t		pid;

	initStringInfo(&run->out);
	MemoryContextSwitchTo(oldcxt);
	if (pipe(pipefd) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create a pipe for event_command: %m")));

	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		close(pipefd[0]);
		close(pipefd[1]);
		ereport(ERROR,
				(errmsg("could not fork event_command: %m")));
	}
	if (pid == 0)
	{
		/* the child: a process group of its own, only stdio inherited */
		int			fd;
		long		maxfd = sysconf(_SC_OPEN_MAX);

		(void) setsid();
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0 && fd != STDIN_FILENO)
		{
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		if (maxfd < 0 || maxfd > 65536)
			maxfd = 65536;
		/* the other commands' pipes too: their EOF must not wait for us */
		for (fd = 3; fd < maxfd; fd++)
			close(fd);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		{
			sigset_t	none;

			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
		}
		execl("/bin/sh", "sh", "-c", command, (char *) NULL);
		_exit(127);
	}

	close(pipefd[1]);
	(void) fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	run->pid = pid;
	run->fd = pipefd[0];
	run->exited = false;
	run->status = 0;
	run->start = GetCurrentTimestamp();
	run->deadline = TimestampTzPlusMilliseconds(run->start,
												hamon_event_command_timeout);
	run->active = true;
}

/*
 * Reads what the command wrote, looks whether it exited, kills it at its
 * deadline.  Returns true when it is done: it exited and its output is
 * read (or the deadline passed), or it was killed.  Never waits.
 */
static bool
hook_poll(HookRun *run)
{
	bool		late;

	/* read what is there; EOF closes our end */
	while (run->fd >= 0)
	{
		char		buf[4096];
		ssize_t		n = read(run->fd, buf, sizeof(buf));

		if (n > 0)
		{
			if (run->out.len < HOOK_READ_MAX)
				appendBinaryStringInfo(&run->out, buf,
									   Min(n, HOOK_READ_MAX - run->out.len));
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
					  errno == EINTR))
			break;
		close(run->fd);
		run->fd = -1;
	}

	if (!run->exited && waitpid(run->pid, &run->status, WNOHANG) == run->pid)
		run->exited = true;
	late = GetCurrentTimestamp() >= run->deadline;
	/* done once it exited and what it wrote is read (or it is late) */
	if (run->exited)
		return run->fd < 0 || late;
	if (late)
	{
		(void) kill(-run->pid, SIGKILL);
		/* SIGKILL cannot be ignored: this wait is short */
		(void) waitpid(run->pid, &run->status, 0);
		run->exited = false;	/* killed: hook_timeout */
		return true;
	}
	return false;
}

/* records what the command did, and frees its run */
static void
hook_finish(HookRun *run)
{
	HookEvent  *ev = &run->ev;
	StringInfoData detail;
	HookResult	res;
	long		ms;
	MemoryContext oldcxt = MemoryContextSwitchTo(ev->cxt);

	/* a daemon it left behind holds the pipe: it is not ours to wait for */
	if (run->fd >= 0)
		close(run->fd);
	run->fd = -1;

	ms = TimestampDifferenceMilliseconds(run->start, GetCurrentTimestamp());
	initStringInfo(&detail);
	appendStringInfo(&detail, "event " INT64_FORMAT " (%s): ", ev->event_id,
					 ev->kind);
	if (!run->exited)
	{
		res.kind = "hook_timeout";
		appendStringInfo(&detail, "killed after %d ms (event_command_timeout)",
						 hamon_event_command_timeout);
	}
	else if (WIFEXITED(run->status))
	{
		res.kind = WEXITSTATUS(run->status) == 0 ? "hook_done" : "hook_failed";
		appendStringInfo(&detail, "exit status %d in %ld ms",
						 WEXITSTATUS(run->status), ms);
	}
	else if (WIFSIGNALED(run->status))
	{
		res.kind = "hook_failed";
		appendStringInfo(&detail, "terminated by signal %d in %ld ms",
						 WTERMSIG(run->status), ms);
	}
	else
	{
		res.kind = "hook_failed";
		appendStringInfo(&detail, "ended with status %d in %ld ms",
						 run->status, ms);
	}
	if (run->out.len > 0)
	{
		appendStringInfoString(&detail, "; output: ");
		hook_output_summary(&detail, run->out.data, run->out.len);
	}
	MemoryContextSwitchTo(oldcxt);

	res.ev = ev;
	res.detail = detail.data;
	/* a failed write is tried again: the command then runs again too */
	(void) HamonRunInTransaction(hook_record, &res, "record an event hook");

	MemoryContextDelete(ev->cxt);
	memset(run, 0, sizeof(HookRun));
	run->fd = -1;
}

/* ---------------------------------------------------------------------
 * main loop
 * --------------------------------------------------------------------- */

/* looks for events of the clusters with no command running, starts them */
static void
hook_look(void)
{
	HookLook	look;
	int			i;
	int			next = 0;
	bool		ok;

	memset(&look, 0, sizeof(look));
	for (i = 0; i < HOOK_MAX_RUNNING; i++)
	{
		if (runs[i].active)
			look.busy = lappend(look.busy, runs[i].ev.cluster);
		else
			look.max++;
	}
	if (look.max == 0)
		return;
	ok = HamonRunInTransaction(hook_next, &look, "look for events to hook");
	list_free(look.busy);
	if (ok && look.state_written)
	{
		hook_started = true;
		hook_reset_pending = false;
	}
	for (i = 0; i < look.nfound; i++)
	{
		HookRun    *run = NULL;

		if (!ok)
		{
			MemoryContextDelete(look.found[i].cxt);
			continue;
		}
		while (run == NULL && next < HOOK_MAX_RUNNING)
		{
			if (!runs[next].active)
				run = &runs[next];
			next++;
		}
		Assert(run != NULL);
		run->ev = look.found[i];
		PG_TRY();
		{
			hook_start(run);
		}
		PG_CATCH();
		{
			/* no pipe or no fork now: tried again at the next look */
			EmitErrorReport();
			FlushErrorState();
			MemoryContextDelete(run->ev.cxt);
			memset(run, 0, sizeof(HookRun));
		}
		PG_END_TRY();
	}
}

void
HamonHookMain(Datum main_arg)
{
	TimestampTz next_look = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	before_shmem_exit(hook_exit, (Datum) 0);

	BackgroundWorkerInitializeConnection(hamon_database, NULL, 0);
	pgstat_report_appname("pg_hamonitor hooks");
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "1s", PGC_SUSET, PGC_S_OVERRIDE);

	for (;;)
	{
		bool		enabled;
		bool		any_running = false;
		bool		finished = false;
		long		timeout;
		int			i;
		WaitEventSet *wes;
		WaitEvent	occurred[HOOK_MAX_RUNNING + 2];
		int			nevents;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		enabled = hamon_event_command != NULL && hamon_event_command[0] != '\0';
		if (enabled != hook_enabled)
		{
			ereport(LOG,
					(errmsg("pg_hamonitor event hooks %s",
							enabled ? "enabled" : "disabled")));
			hook_enabled = enabled;
		}
		if (!enabled)
			hook_seen_disabled = true;
		else if (hook_seen_disabled)
		{
			/* events of while it was empty are not delivered */
			hook_seen_disabled = false;
			hook_reset_pending = true;
		}

		/*
		 * The commands running go on whether or not it is still set; new
		 * ones start every HOOK_POLL_MS, and at once after one finished
		 * (its cluster's next event).
		 */
		if (GetCurrentTimestamp() >= next_look)
		{
			if (enabled && !RecoveryInProgress())
				hook_look();
			next_look = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													HOOK_POLL_MS);
		}

		/*
		 * Wait for output, the latch, or the poll of the children's exit
		 * (SIGCHLD is not ours to handle in a backend).
		 */
		wes = HamonCreateWaitEventSet(HOOK_MAX_RUNNING + 2);
		AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL,
						  NULL);
		for (i = 0; i < HOOK_MAX_RUNNING; i++)
		{
			if (!runs[i].active)
				continue;
			any_running = true;
			if (runs[i].fd >= 0)
				AddWaitEventToSet(wes, WL_SOCKET_READABLE, runs[i].fd, NULL,
								  &runs[i]);
		}
		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
												  next_look);
		if (any_running)
			timeout = Min(timeout, HOOK_CHILD_POLL_MS);
		nevents = WaitEventSetWait(wes, Max(timeout, 1), occurred,
								   lengthof(occurred), PG_WAIT_EXTENSION);
		FreeWaitEventSet(wes);
		for (i = 0; i < nevents; i++)
		{
			if (occurred[i].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
		}

		for (i = 0; i < HOOK_MAX_RUNNING; i++)
		{
			if (runs[i].active && hook_poll(&runs[i]))
			{
				hook_finish(&runs[i]);
				finished = true;
			}
		}
		if (finished)
			next_look = 0;
	}
}
