/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		Event hooks: pg_hamonitor.event_command, run in a worker of its own.
 *
 * Poolers, load balancers and paging systems want to hear of a failover
 * at once: for each event whose kind is in pg_hamonitor.event_command_kinds
 * the hook worker runs event_command (like archive_command) through
 * /bin/sh, one at a time and in event order, with at most
 * event_command_timeout; the command's exit status and the first lines of
 * its output are recorded as an event (hook_done, hook_failed,
 * hook_timeout).  A hook never runs in the probe loop: this process only
 * reads the event table, which the probe workers write.
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
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "catalog.h"
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

/* the event a command runs for, copied out of its transaction */
typedef struct HookEvent
{
	bool		found;
	bool		state_written;	/* hook_state inserted or reset */
	int64		event_id;
	char	   *cluster;
	char	   *node;
	char	   *kind;
	char	   *detail;
	char	   *time;
	char	   *host;
	char	   *port;
} HookEvent;

/* what the command did */
typedef struct HookResult
{
	HookEvent  *ev;
	const char *kind;			/* hook_done, hook_failed, hook_timeout */
	char	   *detail;
} HookResult;

static pid_t hook_child = 0;	/* process group of the running command */
static bool hook_enabled = false;	/* event_command set at the last look */
static bool hook_started = false;	/* hook_state looked at once */
static bool hook_seen_disabled = false;	/* event_command was empty here */
static bool hook_reset_pending = false; /* set again: deliver from now */
static MemoryContext hook_cxt = NULL;

static void hook_exit(int code, Datum arg);
static void hook_run(HookEvent *ev);

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

/* a command still running when this process exits is killed with it */
static void
hook_exit(int code, Datum arg)
{
	if (hook_child > 0)
		(void) kill(-hook_child, SIGKILL);
}

/* ---------------------------------------------------------------------
 * the catalog
 * --------------------------------------------------------------------- */

static char *
hook_value(int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								 col);

	return MemoryContextStrdup(hook_cxt, v ? v : "");
}

/*
 * The next event to deliver, if any.  The first look after this process
 * started with a command set keeps the hook_state of before (a restart
 * after a crash delivers what was pending); a command set after being
 * empty here starts from now.
 */
static void
hook_next(void *arg)
{
	HookEvent  *ev = (HookEvent *) arg;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	ev->found = false;
	if (!HamonExtensionExists())
		return;

	/*
	 * Where delivery starts: kept from before at the first look of this
	 * process (what a crash left pending is delivered), from now when the
	 * command was set after being empty here.
	 */
	if (!hook_started || hook_reset_pending)
	{
		types[0] = BOOLOID;
		values[0] = BoolGetDatum(hook_reset_pending);
		rc = SPI_execute_with_args(
								   "INSERT INTO hamonitor.hook_state AS h (id, enabled_since)"
								   "     VALUES (true, clock_timestamp())"
								   " ON CONFLICT (id) DO UPDATE"
								   "   SET enabled_since = clock_timestamp()"
								   "  WHERE $1",
								   1, types, values, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed: %d", rc);
		ev->state_written = true;
		types[0] = TEXTOID;
	}

	values[0] = CStringGetTextDatum(hamon_event_command_kinds);
	rc = SPI_execute_with_args(
							   "SELECT e.event_id, e.cluster_name, e.node_name, e.kind,"
							   "       e.detail, e.event_time, n.conninfo"
							   "  FROM hamonitor.event e"
							   "  CROSS JOIN hamonitor.hook_state h"
							   "  LEFT JOIN hamonitor.cluster c USING (cluster_name)"
							   "  LEFT JOIN hamonitor.node n ON n.node_id = c.primary_node_id"
							   " WHERE e.event_time >= greatest(h.enabled_since,"
							   "                                clock_timestamp() - interval '1 hour')"
							   "   AND (btrim($1) = '*'"
							   "        OR e.kind = ANY (SELECT btrim(k) FROM unnest(string_to_array($1, ',')) k))"
							   "   AND e.kind NOT LIKE 'hook\\_%'"
							   "   AND NOT EXISTS (SELECT 1 FROM hamonitor.hook_delivery d"
							   "                    WHERE d.event_id = e.event_id)"
							   " ORDER BY e.event_id LIMIT 1",
							   1, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);
	if (SPI_processed == 0)
		return;

	ev->found = true;
	ev->event_id = strtoi64(hook_value(1), NULL, 10);
	ev->cluster = hook_value(2);
	ev->node = hook_value(3);
	ev->kind = hook_value(4);
	ev->detail = hook_value(5);
	ev->time = hook_value(6);
	{
		char	   *conninfo = SPI_getvalue(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 7);
		char	   *host = "";
		char	   *port = "";

		if (conninfo != NULL)
			HamonConninfoAddress(conninfo, &host, &port);
		ev->host = MemoryContextStrdup(hook_cxt, host);
		ev->port = MemoryContextStrdup(hook_cxt, port);
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

/* runs the command of one event, waits at most event_command_timeout */
static void
hook_run(HookEvent *ev)
{
	char	   *command = hook_command(ev);
	int			pipefd[2];
	pid_t		pid;
	int			status = 0;
	bool		exited = false;
	bool		timed_out = false;
	StringInfoData out;
	StringInfoData detail;
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz deadline = TimestampTzPlusMilliseconds(start,
													   hamon_event_command_timeout);
	HookResult res;
	long		ms;

	initStringInfo(&out);
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

	hook_child = pid;
	close(pipefd[1]);
	(void) fcntl(pipefd[0], F_SETFL, O_NONBLOCK);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
														   deadline);
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (pipefd[0] >= 0)
			rc = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_SOCKET_READABLE |
								   WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								   pipefd[0], Min(Max(left, 1), 100),
								   PG_WAIT_EXTENSION);
		else
			rc = WaitLatch(MyLatch,
						   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   Min(Max(left, 1), 50), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}

		/* read what is there; EOF closes our end */
		while (pipefd[0] >= 0)
		{
			char		buf[4096];
			ssize_t		n = read(pipefd[0], buf, sizeof(buf));

			if (n > 0)
			{
				if (out.len < HOOK_READ_MAX)
					appendBinaryStringInfo(&out, buf,
										   Min(n, HOOK_READ_MAX - out.len));
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
						  errno == EINTR))
				break;
			close(pipefd[0]);
			pipefd[0] = -1;
		}

		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = true;
		/* done once it exited and what it wrote is read (or it is late) */
		if (exited && (pipefd[0] < 0 || GetCurrentTimestamp() >= deadline))
			break;
		if (GetCurrentTimestamp() >= deadline)
		{
			if (!exited)
			{
				(void) kill(-pid, SIGKILL);
				(void) waitpid(pid, &status, 0);
				timed_out = true;
			}
			break;
		}
	}
	/* a daemon it left behind holds the pipe: it is not ours to wait for */
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	hook_child = 0;

	ms = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
	initStringInfo(&detail);
	appendStringInfo(&detail, "event " INT64_FORMAT " (%s): ", ev->event_id,
					 ev->kind);
	if (timed_out)
	{
		res.kind = "hook_timeout";
		appendStringInfo(&detail, "killed after %d ms (event_command_timeout)",
						 hamon_event_command_timeout);
	}
	else if (WIFEXITED(status))
	{
		res.kind = WEXITSTATUS(status) == 0 ? "hook_done" : "hook_failed";
		appendStringInfo(&detail, "exit status %d in %ld ms",
						 WEXITSTATUS(status), ms);
	}
	else if (WIFSIGNALED(status))
	{
		res.kind = "hook_failed";
		appendStringInfo(&detail, "terminated by signal %d in %ld ms",
						 WTERMSIG(status), ms);
	}
	else
	{
		res.kind = "hook_failed";
		appendStringInfo(&detail, "ended with status %d in %ld ms", status, ms);
	}
	if (out.len > 0)
	{
		appendStringInfoString(&detail, "; output: ");
		hook_output_summary(&detail, out.data, out.len);
	}

	res.ev = ev;
	res.detail = detail.data;
	/* a failed write is tried again: the command then runs again too */
	(void) HamonRunInTransaction(hook_record, &res, "record an event hook");
}

/* ---------------------------------------------------------------------
 * main loop
 * --------------------------------------------------------------------- */

void
HamonHookMain(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	before_shmem_exit(hook_exit, (Datum) 0);

	BackgroundWorkerInitializeConnection(hamon_database, NULL, 0);
	pgstat_report_appname("pg_hamonitor hooks");
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "1s", PGC_SUSET, PGC_S_OVERRIDE);

	hook_cxt = AllocSetContextCreate(TopMemoryContext,
									 "pg_hamonitor hooks",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		bool		enabled;

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

		if (enabled && !RecoveryInProgress())
		{
			HookEvent	ev;
			bool		ok;

			MemoryContextReset(hook_cxt);
			memset(&ev, 0, sizeof(ev));
			ok = HamonRunInTransaction(hook_next, &ev, "look for events to hook");
			if (ok && ev.state_written)
			{
				hook_started = true;
				hook_reset_pending = false;
			}
			if (ok && ev.found)
			{
				hook_run(&ev);
				continue;		/* the next event, at once */
			}
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 HOOK_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
