/*-------------------------------------------------------------------------
 *
 * probe.c
 *		One node's connection and probe, as a non-blocking state machine.
 *
 * Each node keeps one persistent libpq session.  Nothing here ever blocks:
 * the connection is opened with PQconnectStartParams/PQconnectPoll and the
 * probe is sent with PQsendQueryParams, and each step runs only when the
 * worker's WaitEventSet says the socket is ready (or a deadline passed).
 * The functions tell the worker what to wait for through node->sock and
 * node->wait_events; the worker owns the wait set.
 *
 * An idle connection stays registered for reading, so a peer that closes
 * it (a crash, a shutdown, a network reset) is noticed the moment it
 * happens, not at the next probe.  A server that shuts down in an orderly
 * way sends a FATAL 57P01 first; it arrives through the notice receiver
 * and is kept, so the decision logic can tell a stop from a crash.
 *
 * The probe is one unnamed-statement query (no prepared statement, so a
 * transaction pooler in front of the peer is fine) that reads everything the
 * decisions need: role, system identifier, timeline, LSNs, the WAL
 * receiver and the replication slots.
 *
 * Each new session first runs the privilege check: which of the grants the
 * witness needs to act on the node (promote, repoint, fence, slots) its
 * role lacks, found now rather than in the middle of a failover.  The same
 * query asks for lc_messages = C where the role may set it, so that the
 * peer's goodbye messages can be read (classify.c).  It is one more step of
 * the state machine, never a blocking call.
 *
 * Connection attempts are paced.  A witness that starts (or restarts) with
 * a thousand nodes registered must not open a thousand connections at
 * once: the peers cannot fork and authenticate them all within
 * connect_timeout, the witness gives up on them, and the retries start in
 * lockstep again, so the load never drains.  So an attempt holds a slot
 * from its start until its session has answered its first query (the
 * privilege check) or it failed; a worker has pg_hamonitor.max_connecting
 * slots, and pg_hamonitor.max_connecting_per_peer of them for any one peer
 * (one address: host, hostaddr and port as registered), so a black-holed
 * or overloaded peer delays only its own nodes.  A due node without a slot
 * waits for one; the worker runs another round as soon as one comes free.
 * An attempt that still makes progress (libpq's state moves: TCP
 * connected, authenticated...; or the peer sent a message, one round trip
 * of a password exchange) is not cut at connect_timeout from its start
 * but connect_timeout after its last step, up to
 * HAMON_CONNECT_PROGRESS_MAX times connect_timeout in all: a slow peer
 * that is answering gets its session.  Retries after failures are
 * jittered, so nodes that failed together do not retry together.
 *
 * Host names are never resolved in the worker (libpq would block in
 * getaddrinfo()): before each connection attempt the names of the conninfo
 * (those without a hostaddr, not a socket directory, not numeric) go to the
 * resolver helper (resolve.c), and libpq gets the addresses it found as
 * hostaddr, the names kept as host, one host entry per address, as libpq
 * itself tries every address of a name in turn.  An entry whose name does
 * not resolve is left out, as libpq skips it; if none is left, the probe
 * fails with 08001 and the resolver's message.  A name with no answer
 * within connect_timeout fails the probe (08001, "timeout") and stops no
 * other node.  Each attempt resolves again, so a changed DNS record is
 * followed at the next reconnect.
 *
 * Whatever a probe keeps between two reads of its socket (the slots' JSON)
 * lives in the node's memory context, not the worker's per-round one: a
 * row and the ReadyForQuery after it may arrive in different rounds.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/probe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/stat.h>

#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "classify.h"
#include "probe.h"
#include "remote.h"
#include "resolve.h"

/*
 * The probe.  pg_is_in_recovery() is read more than once, but a node only
 * ever leaves recovery, so the CASEs never call a primary-only function on
 * a standby.  Times come back as microseconds since the Unix epoch.
 */
#define PROBE_QUERY_HEAD \
"SELECT pg_catalog.pg_is_in_recovery()," \
" (SELECT system_identifier FROM pg_catalog.pg_control_system())," \
" pg_catalog.current_setting('server_version_num')::integer," \
" CASE WHEN pg_catalog.pg_is_in_recovery()" \
"  THEN coalesce(w.received_tli," \
"        (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()))" \
"  ELSE ('x' OPERATOR(pg_catalog.||) pg_catalog.substr(pg_catalog.pg_walfile_name(" \
"        pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::integer END," \
" CASE WHEN NOT pg_catalog.pg_is_in_recovery()" \
"  THEN pg_catalog.pg_current_wal_lsn() END," \
" CASE WHEN NOT pg_catalog.pg_is_in_recovery()" \
"  THEN pg_catalog.pg_current_wal_flush_lsn() END," \
" pg_catalog.pg_last_wal_receive_lsn()," \
" pg_catalog.pg_last_wal_replay_lsn()," \
" (extract(epoch FROM pg_catalog.pg_last_xact_replay_timestamp())" \
"  OPERATOR(pg_catalog.*) 1000000)::bigint," \
" w.status, w.sender_host, w.sender_port," \
" (extract(epoch FROM w.last_msg_receipt_time) OPERATOR(pg_catalog.*) 1000000)::bigint," \

#define PROBE_QUERY_SLOTS \
" (SELECT pg_catalog.json_agg(pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.||)" \
"   pg_catalog.jsonb_build_object('retained_bytes', pg_catalog.pg_wal_lsn_diff(" \
"     CASE WHEN pg_catalog.pg_is_in_recovery()" \
"      THEN pg_catalog.pg_last_wal_receive_lsn()" \
"      ELSE pg_catalog.pg_current_wal_lsn() END, s.restart_lsn)::bigint)" \
"   ORDER BY s.slot_name)" \
"  FROM pg_catalog.pg_replication_slots s),"

/*
 * The tail's last columns, primary only: the synchronous replication it
 * applies, and who acknowledges.
 * The walsenders and their application_name are read from the functions
 * under pg_stat_replication, not from the view: the view joins every
 * backend's status with pg_authid, and planning it (the probe is planned
 * every time: no prepared statement) was over half of what a probe cost
 * its peer (1.2 ms against 0.5 ms, 300 sessions open).  The same rows, the
 * same visibility (pg_read_all_stats).
 */
#define PROBE_QUERY_TAIL \
" pg_catalog.current_setting('default_transaction_read_only')::boolean," \
" pg_catalog.current_setting('primary_slot_name')," \
" w.pid," \
" CASE WHEN NOT pg_catalog.pg_is_in_recovery()" \
"  THEN pg_catalog.current_setting('synchronous_standby_names') END," \
" CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN" \
"  (SELECT pg_catalog.string_agg(a.application_name OPERATOR(pg_catalog.||)" \
"    E'\\t' OPERATOR(pg_catalog.||) coalesce(r.sync_state, '?'), E'\\n'" \
"    ORDER BY a.application_name)" \
"   FROM pg_catalog.pg_stat_get_wal_senders() r" \
"   CROSS JOIN LATERAL pg_catalog.pg_stat_get_activity(r.pid) a) END" \
" FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_stat_wal_receiver w ON true"

/*
 * The probe, with the node's replication slots or without them: reading
 * pg_replication_slots was half of what a probe cost an idle peer (0.36 ms
 * against 0.19 ms, pgbench -M simple), for a list that rarely changes.
 * The worker reads it every pg_hamonitor.slots_interval (hamon_slots_due);
 * the other probes return NULL in its place and keep the last list read.
 */
static const char *const probe_query =
PROBE_QUERY_HEAD PROBE_QUERY_SLOTS PROBE_QUERY_TAIL;
static const char *const probe_query_without_slots =
PROBE_QUERY_HEAD " NULL::pg_catalog.json," PROBE_QUERY_TAIL;

#define PROBE_NCOLUMNS 19

/*
 * The privilege check, run once per session before its first probe: every
 * grant the witness's SQL on peers needs (probe.c, action.c, slots.c), one
 * line "grant: what for" each that the role lacks.  A superuser has them
 * all.  Its second column sets lc_messages = C where the role may
 * (lc_messages is a superuser setting: in the startup packet it would make
 * the connection of any other role fail).
 */
static const char *const check_query =
"SELECT pg_catalog.string_agg(v.g, E'\\n' ORDER BY v.o) FILTER (WHERE NOT v.ok),"
" CASE WHEN pg_catalog.has_parameter_privilege('lc_messages', 'SET')"
"  THEN pg_catalog.set_config('lc_messages', 'C', false) END"
" FROM (VALUES"
" (1, pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE'),"
"  'pg_read_all_stats (or pg_monitor): to see whether the WAL receiver streams'),"
" (2, pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE'),"
"  'pg_read_all_settings (or pg_monitor): to read primary_conninfo when repointing'),"
" (3, pg_catalog.has_function_privilege('pg_catalog.pg_promote(boolean, integer)', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_promote(boolean, integer): to promote'),"
" (4, pg_catalog.has_function_privilege('pg_catalog.pg_reload_conf()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_reload_conf(): to repoint, fence and set slots'),"
" (5, pg_catalog.has_parameter_privilege('primary_conninfo', 'ALTER SYSTEM'),"
"  'ALTER SYSTEM ON PARAMETER primary_conninfo: to repoint'),"
" (6, pg_catalog.has_parameter_privilege('primary_slot_name', 'ALTER SYSTEM'),"
"  'ALTER SYSTEM ON PARAMETER primary_slot_name: to set managed slots'),"
" (7, pg_catalog.has_parameter_privilege('default_transaction_read_only', 'ALTER SYSTEM'),"
"  'ALTER SYSTEM ON PARAMETER default_transaction_read_only: to fence'),"
" (8, pg_catalog.pg_has_role('pg_signal_backend', 'USAGE'),"
"  'pg_signal_backend: to end client sessions when fencing'),"
" (9, COALESCE((SELECT r.rolreplication OR r.rolsuper"
"      FROM pg_catalog.pg_roles r"
"      WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER), false),"
"  'REPLICATION: to create, drop and advance replication slots'),"
" (10, pg_catalog.has_function_privilege('pg_catalog.pg_terminate_backend(integer, bigint)', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_terminate_backend(integer, bigint): to fence'),"
" (11, pg_catalog.has_function_privilege('pg_catalog.pg_create_physical_replication_slot(name, boolean, boolean)', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_create_physical_replication_slot(name, boolean, boolean): to create slots'),"
" (12, pg_catalog.has_function_privilege('pg_catalog.pg_create_logical_replication_slot(name, name, boolean, boolean)', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_create_logical_replication_slot(name, name, boolean, boolean): to create slots'),"
" (13, pg_catalog.has_function_privilege('pg_catalog.pg_drop_replication_slot(name)', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_drop_replication_slot(name): to drop slots'),"
" (14, pg_catalog.has_function_privilege('pg_catalog.pg_replication_slot_advance(name, pg_lsn)', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_replication_slot_advance(name, pg_lsn): to advance slots'),"
" (15, pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_control_system(): to probe'),"
" (16, pg_catalog.has_function_privilege('pg_catalog.pg_control_checkpoint()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_control_checkpoint(): to probe'),"
" (17, pg_catalog.has_function_privilege('pg_catalog.pg_walfile_name(pg_lsn)', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_walfile_name(pg_lsn): to probe'),"
" (18, pg_catalog.has_function_privilege('pg_catalog.pg_current_wal_lsn()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_current_wal_lsn(): to probe'),"
" (19, pg_catalog.has_function_privilege('pg_catalog.pg_current_wal_flush_lsn()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_current_wal_flush_lsn(): to probe'),"
" (20, pg_catalog.has_function_privilege('pg_catalog.pg_current_wal_insert_lsn()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_current_wal_insert_lsn(): to advance slots'),"
" (21, pg_catalog.has_function_privilege('pg_catalog.pg_last_wal_receive_lsn()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_last_wal_receive_lsn(): to probe'),"
" (22, pg_catalog.has_function_privilege('pg_catalog.pg_last_wal_replay_lsn()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_last_wal_replay_lsn(): to probe'),"
" (23, pg_catalog.has_function_privilege('pg_catalog.pg_last_xact_replay_timestamp()', 'EXECUTE'),"
"  'EXECUTE ON FUNCTION pg_last_xact_replay_timestamp(): to probe'),"
" (24, pg_catalog.has_parameter_privilege('synchronous_standby_names', 'ALTER SYSTEM'),"
"  'ALTER SYSTEM ON PARAMETER synchronous_standby_names: to keep a synchronous quorum')"
" ) AS v(o, ok, g)";

/*
 * An attempt that keeps making progress may take this many times
 * connect_timeout in all (libpq's own connect_timeout is per step too).
 */
#define HAMON_CONNECT_PROGRESS_MAX 3

/* the attempts in flight to one peer (pacing) */
typedef struct HamonPeerPace
{
	uint32		key;			/* HamonNode.peer_key */
	int			in_flight;
} HamonPeerPace;

/*
 * The pacing state of this worker: one probe worker per process, so plain
 * statics.
 */
static HTAB *pace_peers = NULL;
static int	pace_in_flight = 0;
static int	pace_waiting = 0;	/* due nodes left without a slot this round */
static bool pace_freed = false; /* a slot came free since the round began */
static List *ready_nodes = NIL;	/* nodes whose result_ready was set */

/*
 * The worker ticks every node (a full round) only when one may be due:
 * probe_wakeup is never later than the earliest HamonProbeNextWakeup of
 * any node.  A full round computes it afresh (HamonProbeRoundStart, then
 * HamonProbeTick and HamonProbeNoteWakeup for each node); between full
 * rounds, every entry point that moves a node's state machine lowers it to
 * that node's next wakeup, and lists the node in touched_nodes, whose
 * entries in the wait set the worker brings up to date.  A round that only
 * reads answers then costs what the answers cost, not what the nodes do.
 */
static TimestampTz probe_wakeup = 0;
static List *touched_nodes = NIL;

/* HamonNode.listed: which of the two lists holds the node */
#define HAMON_LISTED_READY		0x01
#define HAMON_LISTED_TOUCHED	0x02
static pg_prng_state pace_prng;
static bool pace_prng_seeded = false;

static int	hamon_start_resolve(HamonNode *node, TimestampTz now);
static void hamon_forget_resolved(HamonNode *node);
static bool hamon_pace_acquire(HamonNode *node);
static void hamon_pace_release(HamonNode *node);
static uint32 hamon_peer_key(HamonNode *node);
static void hamon_start_connect(HamonNode *node, TimestampTz now);
static void hamon_continue_connect(HamonNode *node, TimestampTz now);
static bool hamon_send_query(HamonNode *node, TimestampTz now,
							 const char *query);
static void hamon_send_check(HamonNode *node, TimestampTz now);
static void hamon_send_probe(HamonNode *node, TimestampTz now);
static TimestampTz hamon_next_regular_probe(TimestampTz now);
static void hamon_mark_ready(HamonNode *node);
static void hamon_touched(HamonNode *node);
static void hamon_list_once(List **list, HamonNode *node, uint8 which);
static List *hamon_take_list(List **list, uint8 which);
static void hamon_socket_ready(HamonNode *node, uint32 events,
							   TimestampTz now);
static bool hamon_take_resolved(HamonNode *node, uint64 seq, int nnames,
								const HamonResolved *answers);
static void hamon_read_probe(HamonNode *node, TimestampTz now);
static void hamon_read_idle(HamonNode *node, TimestampTz now);
static void hamon_probe_failed(HamonNode *node, TimestampTz now,
							   const char *sqlstate, const char *message,
							   HamonFailureClass cls);
static void hamon_probe_failed_conn(HamonNode *node, TimestampTz now,
									const char *what);
static void hamon_parse_row(HamonNode *node, PGresult *res);
static void hamon_parse_check(HamonNode *node, PGresult *res);
static void hamon_reset_result(HamonNode *node);
static void hamon_read_ready(HamonNode *node, TimestampTz now);
static void hamon_notice_receiver(void *arg, const PGresult *res);
static void hamon_close(HamonNode *node);
static void hamon_note_socket(HamonNode *node);

/*
 * HamonProbeTick
 *		Does what is due for the node at time now: start a connection or a
 *		probe whose time has come, or fail one past its deadline.
 */
void
HamonProbeTick(HamonNode *node, TimestampTz now)
{
	switch (node->conn_state)
	{
		case HAMON_CONN_NONE:
			if (now < node->next_probe_at)
				break;
			if (!node->resolved)
			{
				int			r = hamon_start_resolve(node, now);

				if (r > 0)
					break;		/* asked; the answer comes as a socket event */
				if (r < 0)
				{
					/* the resolver's queue is full: a little later */
					node->next_probe_at = TimestampTzPlusMilliseconds(now, 100);
					break;
				}
			}
			if (!hamon_pace_acquire(node))
			{
				/* a slot coming free runs another round (worker.c) */
				node->pace_waiting = true;
				pace_waiting++;
				break;
			}
			node->pace_waiting = false;
			hamon_start_connect(node, now);
			break;
		case HAMON_CONN_IDLE:
			if (now >= node->next_probe_at)
				hamon_send_probe(node, now);
			break;
		case HAMON_CONN_RESOLVING:
			if (now >= node->deadline)
			{
				PQconninfoOption *opts = PQconninfoParse(node->conninfo, NULL);
				PQconninfoOption *opt;
				const char *host = "";
				char	   *msg;

				for (opt = opts; opts && opt->keyword != NULL; opt++)
					if (strcmp(opt->keyword, "host") == 0 && opt->val)
						host = opt->val;
				msg = psprintf("could not resolve host name \"%s\": no answer within connect_timeout (%d ms)",
							   host, hamon_connect_timeout);
				if (opts)
					PQconninfoFree(opts);
				hamon_probe_failed(node, now, "08001", msg, HAMON_FAIL_TIMEOUT);
				pfree(msg);
			}
			break;
		case HAMON_CONN_CONNECTING:
			if (now >= node->deadline)
				hamon_read_ready(node, now);
			if (node->conn_state == HAMON_CONN_CONNECTING &&
				now >= node->deadline)
				hamon_probe_failed(node, now, "08001",
								   "timeout expired while connecting",
								   HAMON_FAIL_TIMEOUT);
			break;
		case HAMON_CONN_BUSY:
			if (now >= node->deadline)
				hamon_read_ready(node, now);
			if (node->conn_state == HAMON_CONN_BUSY && now >= node->deadline)
				hamon_probe_failed(node, now, "57014",
								   "probe timed out", HAMON_FAIL_TIMEOUT);
			break;
	}
}

/*
 * A node past its deadline may have its answer in the socket buffer
 * already, if this round of the loop came late (a slow write, a busy
 * machine): look, without waiting, and take it before failing the node.
 */
static void
hamon_read_ready(HamonNode *node, TimestampTz now)
{
	struct pollfd pfd;
	uint32		events = 0;

	if (node->sock == PGINVALID_SOCKET || node->wait_events == 0)
		return;
	pfd.fd = node->sock;
	pfd.events = ((node->wait_events & WL_SOCKET_READABLE) ? POLLIN : 0) |
		((node->wait_events & WL_SOCKET_WRITEABLE) ? POLLOUT : 0);
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) <= 0)
		return;
	if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
		events |= WL_SOCKET_READABLE;
	if (pfd.revents & (POLLOUT | POLLERR | POLLHUP))
		events |= WL_SOCKET_WRITEABLE;
	events &= node->wait_events;
	if (events != 0)
		HamonProbeSocketReady(node, events, now);
}

/*
 * HamonProbeNextWakeup
 *		When HamonProbeTick next has something to do for the node.
 */
TimestampTz
HamonProbeNextWakeup(HamonNode *node)
{
	switch (node->conn_state)
	{
		case HAMON_CONN_RESOLVING:
		case HAMON_CONN_CONNECTING:
		case HAMON_CONN_BUSY:
			return node->deadline;
		case HAMON_CONN_NONE:
			/* waiting for a slot: the slot's release is the wakeup */
			if (node->pace_waiting)
				return DT_NOEND;
			return node->next_probe_at;
		default:
			return node->next_probe_at;
	}
}

/*
 * HamonProbeNow
 *		Probes the node as soon as possible, e.g. because another node of
 *		its cluster just went away.  A probe already under way is kept.
 */
void
HamonProbeNow(HamonNode *node, TimestampTz now)
{
	if (node->conn_state == HAMON_CONN_IDLE ||
		node->conn_state == HAMON_CONN_NONE)
		HamonProbeAt(node, now);
}

/*
 * HamonProbeRereadSlots
 *		The node's next probe reads its replication slots: the witness just
 *		created, dropped or pointed one there, or an action on its cluster
 *		ended (hamon_slots_due).
 */
void
HamonProbeRereadSlots(HamonNode *node)
{
	node->slots_read_at = 0;
}

/*
 * HamonProbeAt
 *		Moves the node's next probe to at (the caller checked that no probe
 *		is under way, or that a later one is what it wants).
 */
void
HamonProbeAt(HamonNode *node, TimestampTz at)
{
	node->next_probe_at = at;
	hamon_touched(node);
}

/*
 * HamonProbeSocketReady
 *		The wait set reported the node's socket: move the state machine on.
 */
void
HamonProbeSocketReady(HamonNode *node, uint32 events, TimestampTz now)
{
	hamon_socket_ready(node, events, now);
	hamon_touched(node);
}

static void
hamon_socket_ready(HamonNode *node, uint32 events, TimestampTz now)
{
	switch (node->conn_state)
	{
		case HAMON_CONN_CONNECTING:
			hamon_continue_connect(node, now);
			break;
		case HAMON_CONN_BUSY:
			if (node->flush_pending && (events & WL_SOCKET_WRITEABLE))
			{
				int			rc = PQflush(node->conn);

				if (rc < 0)
				{
					hamon_probe_failed_conn(node, now, "could not send probe");
					return;
				}
				node->flush_pending = (rc == 1);
				node->wait_events = WL_SOCKET_READABLE |
					(node->flush_pending ? WL_SOCKET_WRITEABLE : 0);
			}
			if (events & WL_SOCKET_READABLE)
				hamon_read_probe(node, now);
			break;
		case HAMON_CONN_IDLE:
			hamon_read_idle(node, now);
			break;
		case HAMON_CONN_NONE:
		case HAMON_CONN_RESOLVING:
			/* a stale event for a socket closed earlier in this round */
			break;
	}
}

/* closes the node's connection; the next probe reconnects */
void
HamonProbeStop(HamonNode *node)
{
	hamon_close(node);
	node->pace_waiting = false;
	/* the node may be freed next: HamonProbeTakeReady must not return it */
	if (node->listed & HAMON_LISTED_READY)
		ready_nodes = list_delete_ptr(ready_nodes, node);
	if (node->listed & HAMON_LISTED_TOUCHED)
		touched_nodes = list_delete_ptr(touched_nodes, node);
	node->listed = 0;
	node->result_ready = false;
	/* what the node holds besides the struct (it may be freed next) */
	hamon_reset_result(node);
	if (node->slots_kept != NULL)
		pfree(node->slots_kept);
	node->slots_kept = NULL;
}

/*
 * HamonProbeRoundStart
 *		Called by the worker before it ticks every node, then passes each
 *		node to HamonProbeNoteWakeup after its tick.
 */
void
HamonProbeRoundStart(void)
{
	pace_waiting = 0;
	pace_freed = false;
	probe_wakeup = DT_NOEND;
}

/*
 * HamonProbeRoundDue
 *		Whether a node may have something due at now (or a node waits for a
 *		connection slot and one came free): then the worker ticks them all.
 */
bool
HamonProbeRoundDue(TimestampTz now)
{
	return now >= probe_wakeup || HamonProbeSlotFreed();
}

/*
 * HamonProbeNoteWakeup
 *		Counts the node's next wakeup in HamonProbeWakeup (after its tick in
 *		a full round, and whenever a node is touched between them).
 */
void
HamonProbeNoteWakeup(HamonNode *node)
{
	TimestampTz t = HamonProbeNextWakeup(node);

	if (t < probe_wakeup)
		probe_wakeup = t;
}

/*
 * HamonProbeWakeup
 *		The earliest time a node may have something due, or earlier.
 */
TimestampTz
HamonProbeWakeup(void)
{
	return probe_wakeup;
}

/*
 * HamonProbeWakeAll
 *		The next round ticks every node (the worker's nodes changed).
 */
void
HamonProbeWakeAll(void)
{
	probe_wakeup = 0;
}

/*
 * HamonProbeTakeTouched
 *		The nodes whose state machine moved outside a full round since the
 *		last call (a list the caller frees): their wait set entries may be
 *		out of date.
 */
List *
HamonProbeTakeTouched(void)
{
	return hamon_take_list(&touched_nodes, HAMON_LISTED_TOUCHED);
}

/* the node's state machine moved: its wakeup counts, its events may change */
static void
hamon_touched(HamonNode *node)
{
	HamonProbeNoteWakeup(node);
	hamon_list_once(&touched_nodes, node, HAMON_LISTED_TOUCHED);
}

/* appends node to *list (in TopMemoryContext) unless it is there already */
static void
hamon_list_once(List **list, HamonNode *node, uint8 which)
{
	MemoryContext oldcxt;

	if (node->listed & which)
		return;
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	*list = lappend(*list, node);
	MemoryContextSwitchTo(oldcxt);
	node->listed |= which;
}

/* empties *list, returning what it held (the caller frees the list) */
static List *
hamon_take_list(List **list, uint8 which)
{
	List	   *taken = *list;
	ListCell   *lc;

	foreach(lc, taken)
		((HamonNode *) lfirst(lc))->listed &= ~which;
	*list = NIL;
	return taken;
}

/*
 * HamonProbeTakeReady
 *		The nodes whose probe finished since the last call, in the order
 *		they finished (a list the caller frees): the worker folds their
 *		results instead of visiting every node in every round of its loop.
 *		A node's result_ready may have been cleared since (a new probe
 *		started): the caller looks.
 */
List *
HamonProbeTakeReady(void)
{
	return hamon_take_list(&ready_nodes, HAMON_LISTED_READY);
}

/* the node's result is ready: flag it, and list it, once */
static void
hamon_mark_ready(HamonNode *node)
{
	hamon_list_once(&ready_nodes, node, HAMON_LISTED_READY);
	node->result_ready = true;
}

/*
 * HamonProbeSlotFreed
 *		Whether a node waits for a connection slot and one came free since
 *		the round began: then the worker ticks again without waiting.
 */
bool
HamonProbeSlotFreed(void)
{
	return pace_waiting > 0 && pace_freed;
}

/*
 * HamonProbeInFlight
 *		Connection attempts of this worker now in flight.
 */
int
HamonProbeInFlight(void)
{
	return pace_in_flight;
}

/*
 * A hash of the peer's address as registered: host, hostaddr and port.
 * Nodes registered with the same address are one peer (the same server,
 * or the same pooler) even when the rest of their conninfo differs.
 * Computed once per conninfo.
 */
static uint32
hamon_peer_key(HamonNode *node)
{
	uint32		h = hash_bytes((const unsigned char *) node->conninfo,
							   strlen(node->conninfo)) | 1;
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	StringInfoData buf;
	char	   *err = NULL;

	if (h == node->peer_key_of)
		return node->peer_key;
	node->peer_key_of = h;
	node->peer_key = h;
	opts = PQconninfoParse(node->conninfo, &err);
	if (opts == NULL)
	{
		/* it will fail to connect anyway; a peer of its own */
		if (err)
			PQfreemem(err);
		return node->peer_key;
	}
	initStringInfo(&buf);
	for (opt = opts; opt->keyword != NULL; opt++)
		if (opt->val != NULL &&
			(strcmp(opt->keyword, "host") == 0 ||
			 strcmp(opt->keyword, "hostaddr") == 0 ||
			 strcmp(opt->keyword, "port") == 0))
			appendStringInfo(&buf, "%s=%s%c", opt->keyword, opt->val, '\0');
	PQconninfoFree(opts);
	node->peer_key = hash_bytes((const unsigned char *) buf.data, buf.len);
	pfree(buf.data);
	return node->peer_key;
}

/*
 * Takes a slot for a connection attempt to the node: false if the worker
 * or the node's peer has max_connecting(_per_peer) attempts in flight.
 */
static bool
hamon_pace_acquire(HamonNode *node)
{
	HamonPeerPace *peer;
	uint32		key;
	bool		found;

	if (node->pace_held)
		return true;
	if (pace_in_flight >= hamon_max_connecting)
		return false;
	if (pace_peers == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(HamonPeerPace);
		ctl.hcxt = TopMemoryContext;
		pace_peers = hash_create("pg_hamonitor peers", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	key = hamon_peer_key(node);
	peer = hash_search(pace_peers, &key, HASH_ENTER, &found);
	if (!found)
		peer->in_flight = 0;
	if (peer->in_flight >= hamon_max_connecting_per_peer)
		return false;
	peer->in_flight++;
	pace_in_flight++;
	node->pace_held = true;
	return true;
}

/* gives the node's slot back, if it holds one */
static void
hamon_pace_release(HamonNode *node)
{
	HamonPeerPace *peer;

	if (!node->pace_held)
		return;
	node->pace_held = false;
	pace_in_flight--;
	pace_freed = true;
	peer = hash_search(pace_peers, &node->peer_key, HASH_FIND, NULL);
	if (peer != NULL && --peer->in_flight <= 0)
		(void) hash_search(pace_peers, &node->peer_key, HASH_REMOVE, NULL);
}

/* a random duration in [ms / 2, ms]: retries of nodes that failed together spread */
static int64
hamon_jitter(int64 ms)
{
	if (!pace_prng_seeded)
	{
		pg_prng_seed(&pace_prng, (uint64) MyProcPid ^
					 (uint64) GetCurrentTimestamp());
		pace_prng_seeded = true;
	}
	return ms / 2 + (int64) (pg_prng_double(&pace_prng) * (double) (ms - ms / 2));
}

/*
 * Records libpq's current socket; marks it for registration if it is not
 * the one the worker's wait set holds (another number, or the same number
 * reused by a new socket: another inode).
 */
static void
hamon_note_socket(HamonNode *node)
{
	pgsocket	sock = PQsocket(node->conn);
	struct stat st;
	ino_t		ino = 0;

	if (sock != PGINVALID_SOCKET && fstat(sock, &st) == 0)
		ino = st.st_ino;
	if (sock != node->sock || ino != node->sock_ino)
		node->sock_dirty = true;
	node->sock = sock;
	node->sock_ino = ino;
}

/* the n-th element (from 0) of a comma-separated list, palloc'd; "" past its end */
static char *
hamon_list_nth(const char *list, int n)
{
	const char *p = list;
	const char *end;

	while (n-- > 0 && p != NULL)
		if ((p = strchr(p, ',')) != NULL)
			p++;
	if (p == NULL)
		return pstrdup("");
	end = strchr(p, ',');
	return pnstrdup(p, end ? (Size) (end - p) : strlen(p));
}

static int
hamon_list_length(const char *list)
{
	int			n = 1;

	for (; *list; list++)
		if (*list == ',')
			n++;
	return n;
}

/*
 * Whether libpq would resolve this host entry as a name: not empty (the
 * default), not a socket directory, not a numeric address.
 */
static bool
hamon_is_host_name(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (host[0] == '\0' || host[0] == '/' || host[0] == '@')
		return false;
	if (inet_pton(AF_INET, host, addr) == 1 ||
		inet_pton(AF_INET6, host, addr) == 1)
		return false;
	return true;
}

/* the host, hostaddr and port options of the node's conninfo (libpq's) */
static PQconninfoOption *
hamon_address_options(HamonNode *node, const char **host,
					  const char **hostaddr, const char **port)
{
	PQconninfoOption *opts = PQconninfoParse(node->conninfo, NULL);
	PQconninfoOption *opt;

	*host = *hostaddr = *port = NULL;
	for (opt = opts; opts && opt->keyword != NULL; opt++)
	{
		if (strcmp(opt->keyword, "host") == 0)
			*host = opt->val;
		else if (strcmp(opt->keyword, "hostaddr") == 0)
			*hostaddr = opt->val;
		else if (strcmp(opt->keyword, "port") == 0)
			*port = opt->val;
	}
	return opts;
}

/*
 * Asks the resolver for the node's host names.  Returns 0 if there is
 * nothing to resolve (connect at once), 1 if asked (the node is
 * RESOLVING), -1 if the resolver cannot take the request now.
 */
static int
hamon_start_resolve(HamonNode *node, TimestampTz now)
{
	const char *host;
	const char *hostaddr;
	const char *port;
	PQconninfoOption *opts = hamon_address_options(node, &host, &hostaddr, &port);
	const char *names[HAMON_RESOLVE_MAX_NAMES];
	int			nnames = 0;
	int			nhosts;
	int			i;
	uint64		seq;

	if (opts == NULL || host == NULL || host[0] == '\0')
	{
		/* libpq's own error, or its default host: a socket directory */
		if (opts)
			PQconninfoFree(opts);
		return 0;
	}
	nhosts = Min(hamon_list_length(host), HAMON_RESOLVE_MAX_NAMES);
	for (i = 0; i < nhosts; i++)
	{
		char	   *h = hamon_list_nth(host, i);
		char	   *ha = hostaddr ? hamon_list_nth(hostaddr, i) : pstrdup("");

		if (ha[0] == '\0' && hamon_is_host_name(h))
			names[nnames++] = h;
		else
			pfree(h);
		pfree(ha);
	}
	PQconninfoFree(opts);
	if (nnames == 0)
		return 0;
	seq = HamonResolverAsk(node, names, nnames, hamon_connect_timeout);
	for (i = 0; i < nnames; i++)
		pfree((char *) names[i]);
	if (seq == 0)
		return -1;
	node->resolve_seq = seq;
	node->conn_state = HAMON_CONN_RESOLVING;
	node->deadline = TimestampTzPlusMilliseconds(now, hamon_connect_timeout);
	node->sock = PGINVALID_SOCKET;
	node->wait_events = 0;
	return 1;
}

/*
 * HamonProbeResolved
 *		The resolver's answer for a node (resolve.c calls it): the host,
 *		hostaddr and port lists for libpq, each name replaced by one entry
 *		per address found, in the order of the conninfo.
 */
void
HamonProbeResolved(void *owner, uint64 seq, int nnames,
				   const HamonResolved *answers)
{
	HamonNode  *node = (HamonNode *) owner;

	if (hamon_take_resolved(node, seq, nnames, answers))
		hamon_touched(node);
}

/* HamonProbeResolved's work; false if the answer was for nothing under way */
static bool
hamon_take_resolved(HamonNode *node, uint64 seq, int nnames,
					const HamonResolved *answers)
{
	TimestampTz now = GetCurrentTimestamp();
	const char *host;
	const char *hostaddr;
	const char *port;
	PQconninfoOption *opts;
	StringInfoData h_out,
				a_out,
				p_out;
	bool		port_list;
	int			nhosts;
	int			entries = 0;
	int			k = 0;
	int			i;
	char	   *failed_name = NULL;
	const char *failed_error = NULL;
	MemoryContext cxt = GetMemoryChunkContext(node);

	if (node->conn_state != HAMON_CONN_RESOLVING || node->resolve_seq != seq)
		return false;
	node->resolve_seq = 0;
	opts = hamon_address_options(node, &host, &hostaddr, &port);
	if (opts == NULL || host == NULL)
	{
		/* cannot happen: the same conninfo was parsed to ask */
		if (opts)
			PQconninfoFree(opts);
		node->conn_state = HAMON_CONN_NONE;
		return true;
	}
	port_list = (port != NULL && strchr(port, ',') != NULL);
	initStringInfo(&h_out);
	initStringInfo(&a_out);
	initStringInfo(&p_out);
	nhosts = Min(hamon_list_length(host), HAMON_RESOLVE_MAX_NAMES);
	for (i = 0; i < nhosts; i++)
	{
		char	   *h = hamon_list_nth(host, i);
		char	   *ha = hostaddr ? hamon_list_nth(hostaddr, i) : pstrdup("");
		char	   *p = port_list ? hamon_list_nth(port, i) : pstrdup("");
		int			naddr = 1;
		int			j;

		if (ha[0] == '\0' && hamon_is_host_name(h) && k < nnames)
		{
			const HamonResolved *a = &answers[k++];

			if (!a->ok)
			{
				/* libpq skips a name it cannot resolve, and so do we */
				if (failed_name == NULL)
				{
					failed_name = pstrdup(h);
					failed_error = a->error;
				}
				naddr = 0;
			}
			else
			{
				pfree(ha);
				ha = pstrdup(a->addresses);
				naddr = hamon_list_length(ha);
			}
		}
		for (j = 0; j < naddr; j++)
		{
			char	   *one = naddr > 1 ? hamon_list_nth(ha, j) : pstrdup(ha);

			if (entries++ > 0)
			{
				appendStringInfoChar(&h_out, ',');
				appendStringInfoChar(&a_out, ',');
				appendStringInfoChar(&p_out, ',');
			}
			appendStringInfoString(&h_out, h);
			appendStringInfoString(&a_out, one);
			appendStringInfoString(&p_out, p);
			pfree(one);
		}
		pfree(h);
		pfree(ha);
		pfree(p);
	}
	PQconninfoFree(opts);
	node->conn_state = HAMON_CONN_NONE;
	if (entries == 0)
	{
		/* libpq's words for it */
		char	   *msg = psprintf("could not translate host name \"%s\" to address: %s",
								   failed_name ? failed_name : "",
								   failed_error ? failed_error : "");

		hamon_probe_failed(node, now, "08001", msg,
						   HamonClassifyFailure(NULL, msg));
		pfree(msg);
	}
	else
	{
		hamon_forget_resolved(node);
		node->resolved = true;
		node->resolved_host = MemoryContextStrdup(cxt, h_out.data);
		node->resolved_hostaddr = MemoryContextStrdup(cxt, a_out.data);
		/* one port (or none) applies to every entry, as it did */
		node->resolved_port = port_list ?
			MemoryContextStrdup(cxt, p_out.data) : NULL;
	}
	if (failed_name)
		pfree(failed_name);
	pfree(h_out.data);
	pfree(a_out.data);
	pfree(p_out.data);
	return true;
}

/* drops the addresses a resolution found */
static void
hamon_forget_resolved(HamonNode *node)
{
	if (node->resolved_host)
		pfree(node->resolved_host);
	if (node->resolved_hostaddr)
		pfree(node->resolved_hostaddr);
	if (node->resolved_port)
		pfree(node->resolved_port);
	node->resolved_host = node->resolved_hostaddr = node->resolved_port = NULL;
	node->resolved = false;
}

static void
hamon_close(HamonNode *node)
{
	hamon_pace_release(node);
	if (node->resolve_seq != 0)
		HamonResolverForget(node->resolve_seq);
	node->resolve_seq = 0;
	hamon_forget_resolved(node);
	if (node->conn != NULL)
		HamonDisconnect(node->conn);
	node->conn = NULL;
	node->conn_state = HAMON_CONN_NONE;
	/* the next session reads the slots at its first probe */
	node->slots_read_at = 0;
	node->sock = PGINVALID_SOCKET;
	node->sock_dirty = true;
	node->wait_events = 0;
	node->flush_pending = false;
}

static void
hamon_start_connect(HamonNode *node, TimestampTz now)
{
	char	   *appname;
	char	   *errmsg;

	node->goodbye_sqlstate[0] = '\0';
	node->goodbye_message[0] = '\0';
	appname = HamonApplicationName(node->cluster_name, node->node_name);
	/* no startup options: a transaction pooler may sit in front (remote.c) */
	if (node->resolved)
		node->conn = HamonConnectStartAt(node->conninfo, appname,
										 node->resolved_host,
										 node->resolved_hostaddr,
										 node->resolved_port, false, &errmsg);
	else
		node->conn = HamonConnectStartAt(node->conninfo, appname,
										 NULL, NULL, NULL, false, &errmsg);
	/* the next attempt resolves again: DNS changes are followed */
	hamon_forget_resolved(node);
	pfree(appname);
	if (node->conn == NULL)
	{
		hamon_probe_failed(node, now, "53000", errmsg, HAMON_FAIL_OTHER);
		pfree(errmsg);
		return;
	}
	if (PQstatus(node->conn) == CONNECTION_BAD)
	{
		hamon_probe_failed_conn(node, now, "could not connect");
		return;
	}
	PQsetNoticeReceiver(node->conn, hamon_notice_receiver, node);
	node->conn_state = HAMON_CONN_CONNECTING;
	node->deadline = TimestampTzPlusMilliseconds(now, hamon_connect_timeout);
	node->connect_started = now;
	/* libpq's first step is always to wait until the socket is writable */
	node->sock = PGINVALID_SOCKET;
	hamon_note_socket(node);
	node->wait_events = WL_SOCKET_WRITEABLE;
}

static void
hamon_continue_connect(HamonNode *node, TimestampTz now)
{
	switch (PQconnectPoll(node->conn))
	{
		case PGRES_POLLING_READING:
			node->wait_events = WL_SOCKET_READABLE;
			break;
		case PGRES_POLLING_WRITING:
			node->wait_events = WL_SOCKET_WRITEABLE;
			break;
		case PGRES_POLLING_OK:
			node->conn_state = HAMON_CONN_IDLE;
			node->wait_events = WL_SOCKET_READABLE;
			node->new_session = true;
			/* a new session: the privilege check, then the probe that was due */
			hamon_send_check(node, now);
			return;
		default:
			hamon_probe_failed_conn(node, now, "could not connect");
			return;
	}
	/*
	 * A step made: libpq's state moved (TCP connected, authenticated...), or
	 * the socket was readable and the attempt did not fail, so the peer sent
	 * something (one round trip of a SCRAM exchange, in which libpq's state
	 * stays the same).  The peer is answering, however slowly: the attempt
	 * gets connect_timeout from now, within its overall bound.  A black
	 * hole or a dropped SYN never makes a step, and is cut as before.
	 */
	{
		TimestampTz limit = TimestampTzPlusMilliseconds(node->connect_started,
														(int64) hamon_connect_timeout *
														HAMON_CONNECT_PROGRESS_MAX);

		node->deadline = Max(node->deadline,
							 Min(TimestampTzPlusMilliseconds(now, hamon_connect_timeout),
								 limit));
	}

	/*
	 * libpq may have moved on to another address (or dropped SSL) with a
	 * new socket, perhaps under the old number: the inode tells
	 */
	hamon_note_socket(node);
}

/* forgets the last result, freeing what it allocated */
static void
hamon_reset_result(HamonNode *node)
{
	if (node->result.slots_json != NULL)
		pfree(node->result.slots_json);
	memset(&node->result, 0, sizeof(node->result));
}

/*
 * Sends query; false if the node failed (and was closed).
 *
 * The peer's search_path is whatever its session has (behind a transaction
 * pooler such as pgbouncer: whatever the pooled server connection was left
 * with, and startup options are refused there), and nothing is sent to set
 * it: the queries need none.  Every name in them is bound to pg_catalog
 * whatever the path says: relations and functions are written
 * pg_catalog.name, operators OPERATOR(pg_catalog.op), which looks in that
 * schema alone (a better-matching operator in a schema earlier on the
 * path is never a candidate), and the rest is grammar the parser turns
 * into pg_catalog names itself (the type names integer, bigint, boolean,
 * bit; extract; coalesce, CASE, NOT, OR).  What the path could still reach
 * is what no name spells: casts (pg_cast, by type) and the sort operators
 * of ORDER BY (the type's default operator class), neither looked up by
 * name.  One statement, one simple-protocol message: a pooler hands it to
 * one server connection.  A query added here must keep to that rule;
 * test/t/042_pooler.pl probes through pgbouncer with a trap operator first
 * on the pooled sessions' path.
 */
static bool
hamon_send_query(HamonNode *node, TimestampTz now, const char *query)
{
	int			rc;

	if (!PQsendQuery(node->conn, query))
	{
		hamon_probe_failed_conn(node, now, "could not send probe");
		return false;
	}
	rc = PQflush(node->conn);
	if (rc < 0)
	{
		hamon_probe_failed_conn(node, now, "could not send probe");
		return false;
	}
	node->conn_state = HAMON_CONN_BUSY;
	node->flush_pending = (rc == 1);
	node->got_row = false;
	node->deadline = TimestampTzPlusMilliseconds(now, hamon_probe_timeout);
	node->wait_events = WL_SOCKET_READABLE |
		(node->flush_pending ? WL_SOCKET_WRITEABLE : 0);
	return true;
}

/* the privilege check of a new session; the probe follows it */
static void
hamon_send_check(HamonNode *node, TimestampTz now)
{
	hamon_reset_result(node);
	node->result_ready = false;
	node->checking_privileges = true;
	(void) hamon_send_query(node, now, check_query);
}

/*
 * Whether the probe about to be sent reads the node's replication slots:
 * every pg_hamonitor.slots_interval, and at once when the last list may
 * not hold: a new session (hamon_close forgot when they were read), a node
 * promoted or demoted since (hamon_parse_row), or an action under way in
 * its cluster (a failover creates, moves and drops slots).
 */
static bool
hamon_slots_due(HamonNode *node, TimestampTz now)
{
	if (hamon_slots_interval == 0 || node->slots_read_at == 0)
		return true;
	/*
	 * a primary's logical slots are what a failover loses (PostgreSQL 15
	 * keeps none on a standby): the report of what was lost
	 * (sequence.c) must have their last confirmed positions
	 */
	if (node->slots_each_probe)
		return true;
	if (node->cluster != NULL && node->cluster->action_id != 0)
		return true;
	return now - node->slots_read_at >= (int64) hamon_slots_interval * 1000;
}

static void
hamon_send_probe(HamonNode *node, TimestampTz now)
{
	bool		with_slots = hamon_slots_due(node, now);

	node->checking_privileges = false;
	hamon_reset_result(node);
	node->result_ready = false;
	if (!hamon_send_query(node, now, with_slots ? probe_query :
						  probe_query_without_slots))
		return;
	node->slots_asked = with_slots;
	node->query_sent_at = now;
	node->next_probe_at = hamon_next_regular_probe(now);
}

/*
 * When a node probed now is probed next, in the regular course: one
 * probe_interval from now, moved back onto a grid of a twentieth of the
 * interval (at most 50 ms).  The nodes whose probes fall into one step of
 * the grid are sent theirs in one round of the worker's loop, and their
 * answers come back together: the worker wakes about twenty times per
 * interval for its probes, however many nodes it has, instead of once per
 * node for the query and once more for its answer.  A probe is never more
 * than one interval after the one before, nor more than a step earlier.
 */
static TimestampTz
hamon_next_regular_probe(TimestampTz now)
{
	int64		step = (int64) Min(50, Max(1, hamon_probe_interval / 20)) * 1000;
	/*
	 * each worker its own phase: the peers and poolers they share get the
	 * workers' bursts one after another, not all at once
	 */
	int64		phase = ((uint64) MyProcPid * 7919) % step;
	TimestampTz next = TimestampTzPlusMilliseconds(now, hamon_probe_interval);

	return next - (next - phase) % step;
}

/*
 * Reads what has arrived for the probe; completes it once libpq has handed
 * over every result (the final NULL), so the connection is idle again.
 */
static void
hamon_read_probe(HamonNode *node, TimestampTz now)
{
	if (!PQconsumeInput(node->conn))
	{
		hamon_probe_failed_conn(node, now, "connection lost during probe");
		return;
	}

	while (!PQisBusy(node->conn))
	{
		PGresult   *res = PQgetResult(node->conn);

		if (res == NULL)
		{
			/* query done */
			if (node->checking_privileges)
			{
				HamonProbeResult check = node->result;

				/* the session is up and answering: the attempt is over */
				hamon_pace_release(node);
				/* the check's outcome travels with the probe's result */
				node->result.slots_json = NULL;
				hamon_send_probe(node, now);
				if (node->conn_state != HAMON_CONN_BUSY)
					return;
				node->result.privileges_checked = true;
				memcpy(node->result.missing_privileges,
					   check.missing_privileges,
					   sizeof(check.missing_privileges));
				memcpy(node->result.privilege_error, check.privilege_error,
					   sizeof(check.privilege_error));
				return;
			}
			if (!node->got_row)
			{
				if (node->result.error_sqlstate[0] == '\0')
					hamon_probe_failed(node, now, "XX000",
									   "probe returned no row",
									   HAMON_FAIL_SERVER_ERROR);
				else
					hamon_probe_failed(node, now, node->result.error_sqlstate,
									   node->result.error,
									   node->result.failure_class);
				return;
			}
			node->conn_state = HAMON_CONN_IDLE;
			node->wait_events = WL_SOCKET_READABLE;
			node->result.success = true;
			node->result.probed_at = now;
			node->result.latency_ms =
				(double) (now - node->query_sent_at) / 1000.0;
			hamon_mark_ready(node);
			return;
		}

		if (node->checking_privileges)
			hamon_parse_check(node, res);
		else if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
				 PQnfields(res) == PROBE_NCOLUMNS)
		{
			hamon_parse_row(node, res);
			node->got_row = true;
		}
		else
		{
			const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

			if (msg == NULL)
				msg = PQresultErrorMessage(res);
			if (msg == NULL || msg[0] == '\0')
				msg = "probe returned an unexpected result";

			/*
			 * An error the server sent (a privilege revoked, a statement
			 * timeout) says the server lives; one libpq made up without a
			 * SQLSTATE (the connection broke) says nothing of the kind.
			 */
			node->result.failure_class = HamonClassifyFailure(sqlstate, msg);
			strlcpy(node->result.error_sqlstate,
					sqlstate ? sqlstate :
					(PQresultStatus(res) == PGRES_FATAL_ERROR ? "08006" : "XX000"),
					sizeof(node->result.error_sqlstate));
			strlcpy(node->result.error, msg, sizeof(node->result.error));
			/* libpq's messages end in a newline */
			if (sqlstate == NULL)
			{
				char	   *nl = strchr(node->result.error, '\n');

				if (nl)
					*nl = '\0';
			}
		}
		PQclear(res);
	}
}

/*
 * Input on an idle connection: a notification, a parameter change, or the
 * server going away.  Only the last one matters.
 */
static void
hamon_read_idle(HamonNode *node, TimestampTz now)
{
	PGnotify   *notify;

	if (!PQconsumeInput(node->conn) || PQstatus(node->conn) == CONNECTION_BAD)
	{
		hamon_probe_failed_conn(node, now, "connection closed");
		return;
	}
	while ((notify = PQnotifies(node->conn)) != NULL)
		PQfreemem(notify);
}

/*
 * Records a failed probe and closes the connection.  The next attempt
 * comes at once after the first failure (a dropped session is usually
 * just re-opened; pacing spreads a crowd of them), then backs off
 * exponentially up to pg_hamonitor.reconnect_backoff_max, each wait drawn
 * between half and all of its nominal length.
 */
static void
hamon_probe_failed(HamonNode *node, TimestampTz now, const char *sqlstate,
				   const char *message, HamonFailureClass cls)
{
	int64		backoff = 0;
	HamonProbeResult *r = &node->result;
	char		state_copy[sizeof(r->error_sqlstate)];
	char		message_copy[sizeof(r->error)];
	bool		checked = r->privileges_checked;
	char		missing[sizeof(r->missing_privileges)];
	char		check_error[sizeof(r->privilege_error)];

	/* the arguments may point into the result we are about to reset */
	strlcpy(state_copy, sqlstate, sizeof(state_copy));
	strlcpy(message_copy, message, sizeof(message_copy));
	/* a probe denied a function: the check before it says which grant */
	memcpy(missing, r->missing_privileges, sizeof(missing));
	memcpy(check_error, r->privilege_error, sizeof(check_error));
	hamon_close(node);
	node->checking_privileges = false;

	hamon_reset_result(node);
	r->privileges_checked = checked;
	memcpy(r->missing_privileges, missing, sizeof(missing));
	memcpy(r->privilege_error, check_error, sizeof(check_error));
	r->success = false;
	r->probed_at = now;
	memcpy(r->error_sqlstate, state_copy, sizeof(state_copy));
	memcpy(r->error, message_copy, sizeof(message_copy));
	r->failure_class = cls;
	hamon_mark_ready(node);

	if (node->consecutive_failures > 0)
	{
		int			shift = Min(node->consecutive_failures - 1, 20);

		backoff = Min((int64) hamon_probe_interval << shift,
					  (int64) Max(hamon_reconnect_backoff_max,
								  hamon_probe_interval));
		backoff = hamon_jitter(backoff);
	}
	node->next_probe_at = TimestampTzPlusMilliseconds(now, backoff);
}

/*
 * A failure that libpq explains: its message, or the FATAL the server sent
 * before it closed the connection (57P01 for a shutdown), which says more.
 */
static void
hamon_probe_failed_conn(HamonNode *node, TimestampTz now, const char *what)
{
	char		message[256];
	char		sqlstate[6];
	HamonFailureClass cls;

	if (node->goodbye_sqlstate[0] != '\0')
	{
		strlcpy(sqlstate, node->goodbye_sqlstate, sizeof(sqlstate));
		strlcpy(message, node->goodbye_message, sizeof(message));
		cls = HamonClassifyFailure(sqlstate, message);
	}
	else
	{
		char	   *libpq_msg = node->conn ? pchomp(PQerrorMessage(node->conn)) :
			pstrdup("");
		char	   *nl;

		/* keep the first line; libpq may append per-address details */
		if ((nl = strchr(libpq_msg, '\n')) != NULL)
			*nl = '\0';
		snprintf(message, sizeof(message), "%s: %s", what, libpq_msg);
		/* a failed connection has only the text (classify.c) */
		cls = HamonClassifyFailure(NULL, libpq_msg);
		pfree(libpq_msg);
		/* a connection that was up counts as lost, one never made as refused */
		strlcpy(sqlstate,
				node->conn_state == HAMON_CONN_CONNECTING ||
				node->conn_state == HAMON_CONN_NONE ? "08001" : "08006",
				sizeof(sqlstate));
	}
	hamon_probe_failed(node, now, sqlstate, message, cls);
}

/* microseconds since the Unix epoch to TimestampTz; 0 stays "none" */
static TimestampTz
hamon_parse_unix_usec(const char *text)
{
	int64		usec;

	if (text == NULL)
		return 0;
	usec = strtoi64(text, NULL, 10);
	return usec - ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
				   USECS_PER_DAY);
}

static const char *
hamon_value(PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col);
}

/* fills node->result from the probe's row */
static void
hamon_parse_row(HamonNode *node, PGresult *res)
{
	HamonProbeResult *r = &node->result;
	const char *v;

	v = hamon_value(res, 0);
	r->in_recovery = (v != NULL && v[0] == 't');
	if ((v = hamon_value(res, 1)) != NULL)
	{
		r->has_sysid = true;
		/* bigint on the wire; the identifier itself is unsigned */
		r->system_identifier = (uint64) strtoi64(v, NULL, 10);
	}
	r->server_version = (v = hamon_value(res, 2)) ? atoi(v) : 0;
	r->timeline = (v = hamon_value(res, 3)) ? atoi(v) : 0;
	r->current_lsn = HamonParseLsn(hamon_value(res, 4));
	r->flush_lsn = HamonParseLsn(hamon_value(res, 5));
	r->receive_lsn = HamonParseLsn(hamon_value(res, 6));
	r->replay_lsn = HamonParseLsn(hamon_value(res, 7));
	r->last_replay_at = hamon_parse_unix_usec(hamon_value(res, 8));
	strlcpy(r->wal_receiver_status,
			(v = hamon_value(res, 9)) ? v : "", sizeof(r->wal_receiver_status));
	strlcpy(r->upstream_host,
			(v = hamon_value(res, 10)) ? v : "", sizeof(r->upstream_host));
	r->upstream_port = (v = hamon_value(res, 11)) ? atoi(v) : 0;
	r->last_wal_receipt_at = hamon_parse_unix_usec(hamon_value(res, 12));
	/* kept until the query completes, perhaps rounds later: the node's */
	if (r->slots_json != NULL)
		pfree(r->slots_json);
	if (node->slots_asked)
	{
		v = hamon_value(res, 13);
		if (node->slots_kept != NULL)
			pfree(node->slots_kept);
		node->slots_kept = v ?
			MemoryContextStrdup(GetMemoryChunkContext(node), v) : NULL;
		node->slots_read_at = node->query_sent_at;
		node->slots_read_in_recovery = r->in_recovery;
		node->slots_each_probe = !r->in_recovery && v != NULL &&
			strstr(v, "\"slot_type\": \"logical\"") != NULL;
	}
	/* the list read now, or the last one read when not asked this time */
	r->slots_json = node->slots_kept ?
		MemoryContextStrdup(GetMemoryChunkContext(node), node->slots_kept) :
		NULL;
	r->slots_read_at = node->slots_read_at;
	/* promoted or demoted since the list was read: read it at the next probe */
	if (r->in_recovery != node->slots_read_in_recovery)
		node->slots_read_at = 0;
	r->read_only = ((v = hamon_value(res, 14)) != NULL && v[0] == 't');
	strlcpy(r->primary_slot_name,
			(v = hamon_value(res, 15)) ? v : "", sizeof(r->primary_slot_name));
	r->wal_receiver_pid = (v = hamon_value(res, 16)) ? atoi(v) : 0;

	strlcpy(r->synchronous_standby_names,
			(v = hamon_value(res, 17)) ? v : "",
			sizeof(r->synchronous_standby_names));
	/* whole lines only: a cut one would name a standby wrongly */
	strlcpy(r->sync_states, (v = hamon_value(res, 18)) ? v : "",
			sizeof(r->sync_states));
	if (v != NULL && strlen(v) >= sizeof(r->sync_states))
	{
		char	   *nl = strrchr(r->sync_states, '\n');

		*(nl ? nl : r->sync_states) = '\0';
	}
}

/*
 * Reads the privilege check's answer.  A check that fails (a server older
 * than 15 has no has_parameter_privilege) is reported, and the probe goes on.
 */
static void
hamon_parse_check(HamonNode *node, PGresult *res)
{
	HamonProbeResult *r = &node->result;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		PQnfields(res) == 2)
	{
		const char *v = hamon_value(res, 0);

		strlcpy(r->missing_privileges, v ? v : "",
				sizeof(r->missing_privileges));
		r->privilege_error[0] = '\0';
	}
	else
	{
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		strlcpy(r->privilege_error,
				msg ? msg : "the privilege check returned an unexpected result",
				sizeof(r->privilege_error));
	}
}

/*
 * Keeps the last error-level notice.  On an idle connection libpq passes a
 * FATAL from the server (the reason it is about to close) to the notice
 * receiver; on a busy one the error comes back as a result instead.
 * Runs inside libpq: it must not ereport.
 */
static void
hamon_notice_receiver(void *arg, const PGresult *res)
{
	HamonNode  *node = (HamonNode *) arg;
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	/*
	 * Since PostgreSQL 14 a backend ended by a crash of another announces
	 * the crash-restart (57P02) as a WARNING; it is the one warning that
	 * says how the session ends, and must not be lost.
	 */
	if (severity == NULL || sqlstate == NULL)
		return;
	if (strcmp(severity, "FATAL") != 0 && strcmp(severity, "PANIC") != 0 &&
		strcmp(severity, "ERROR") != 0 &&
		!(strcmp(severity, "WARNING") == 0 && strncmp(sqlstate, "57P", 3) == 0))
		return;
	strlcpy(node->goodbye_sqlstate, sqlstate, sizeof(node->goodbye_sqlstate));
	strlcpy(node->goodbye_message, msg ? msg : "", sizeof(node->goodbye_message));
}
