/*-------------------------------------------------------------------------
 *
 * node.h
 *		A probe worker's in-memory picture of its nodes and clusters.
 *
 * A worker keeps one HamonNode per registered node of the clusters it owns.
 * The struct has three parts, each written by one file:
 *	 - the registry row (catalog.c loads it),
 *	 - the connection and its schedule (probe.c drives them),
 *	 - the health the worker believes in (state.c derives it from probes).
 * A finished probe leaves a HamonProbeResult in the node until the worker
 * writes it to the catalog.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/node.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_NODE_H
#define HAMON_NODE_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "libpq-fe.h"
#include "nodes/pg_list.h"

#include "classify.h"
#include "pg_hamonitor.h"

typedef enum HamonHealth
{
	HAMON_HEALTH_UNKNOWN = 0,
	HAMON_HEALTH_UP,
	HAMON_HEALTH_DOWN
} HamonHealth;

typedef enum HamonRole
{
	HAMON_ROLE_UNKNOWN = 0,
	HAMON_ROLE_PRIMARY,
	HAMON_ROLE_STANDBY
} HamonRole;

/*
 * What a standby's probe could tell of its WAL receiver.  The view
 * pg_stat_wal_receiver shows every role its pid, and the rest only to
 * roles with pg_read_all_stats: a pid without a status is "hidden".
 */
typedef enum HamonReceiver
{
	HAMON_RECEIVER_UNKNOWN = 0, /* not probed (or not a standby) */
	HAMON_RECEIVER_HIDDEN,		/* a receiver runs; its status is not shown */
	HAMON_RECEIVER_NONE,		/* no WAL receiver runs */
	HAMON_RECEIVER_STOPPED,		/* one runs but does not stream */
	HAMON_RECEIVER_STREAMING	/* it streams */
} HamonReceiver;

typedef enum HamonConnState
{
	HAMON_CONN_NONE = 0,		/* no connection; next attempt at next_probe_at */
	HAMON_CONN_RESOLVING,		/* host names asked of the resolver (resolve.c) */
	HAMON_CONN_CONNECTING,		/* PQconnectPoll in progress */
	HAMON_CONN_IDLE,			/* connected, waiting for the next probe */
	HAMON_CONN_BUSY				/* probe query sent, result pending */
} HamonConnState;

/* what one probe learnt; LSNs are InvalidXLogRecPtr and times 0 when NULL */
typedef struct HamonProbeResult
{
	bool		success;
	TimestampTz probed_at;
	double		latency_ms;
	bool		in_recovery;
	bool		has_sysid;
	uint64		system_identifier;
	int			timeline;
	int			server_version;
	XLogRecPtr	current_lsn;
	XLogRecPtr	flush_lsn;
	XLogRecPtr	receive_lsn;
	XLogRecPtr	replay_lsn;
	TimestampTz last_replay_at;
	TimestampTz last_wal_receipt_at;
	int			wal_receiver_pid;	/* 0: no WAL receiver runs */
	char		wal_receiver_status[32];	/* "" if none or hidden */
	char		upstream_host[256];
	int			upstream_port;
	/* allocated in the node's context, freed when the next probe starts */
	char	   *slots_json;
	TimestampTz slots_read_at;	/* when the probe that read them was sent */
	/* failure: SQLSTATE (57P01 = the server said goodbye) and message */
	char		error_sqlstate[6];
	char		error[256];
	HamonFailureClass failure_class;	/* what the failure says (classify.c) */
	/* the privilege check run after each (re)connect, if it ran */
	bool		privileges_checked;
	char		missing_privileges[1024];	/* one grant a line, "" if none */
	char		privilege_error[256];	/* the check itself failed */
	bool		read_only;		/* default_transaction_read_only is on */
	char		primary_slot_name[NAMEDATALEN];
	/* primary: synchronous_standby_names, and its walsenders' sync_state */
	char		synchronous_standby_names[1024];
	char		sync_states[4096];	/* "application_name\tsync_state" lines */
} HamonProbeResult;

/* what a history row holds of a probe (worker.c keeps the previous one) */
typedef struct HamonHistoryFacts
{
	TimestampTz probed_at;
	bool		success;
	double		latency_ms;
	HamonRole	role;
	int			timeline;
	XLogRecPtr	current_lsn;
	XLogRecPtr	flush_lsn;
	XLogRecPtr	receive_lsn;
	XLogRecPtr	replay_lsn;
	TimestampTz last_replay_at;
	char		error_sqlstate[6];
	char		error[256];
} HamonHistoryFacts;

typedef struct HamonCluster
{
	char		name[HAMON_NAME_MAXLEN + 1];
	bool		has_sysid;
	uint64		system_identifier;
	int			primary_id;		/* node_id of the primary, 0 if unknown */
	int			timeline;		/* the primary's timeline, 0 if unknown */
	bool		dirty;			/* the above changed, to be written */
	char		last_reason[512];	/* last failover_blocked reason logged */
	bool		deciding;		/* primary down: re-decide soon */
	bool		touched;		/* a probe of a member finished this batch */
	bool		flags_pending;	/* a member's flags_dirty may be set */
	bool		slots_changed;	/* a member's slots, role or slot setting changed */
	TimestampTz next_slot_review; /* slots.c */
	List	   *members;		/* its HamonNodes (worker.c keeps it) */

	/* its open action, as the catalog last said (engine.c) */
	int64		action_id;		/* 0: none */
	char		action_state[16];
	bool		action_is_sync; /* a 'sync' action: a failover supersedes it */
	bool		action_stalled;
	int			action_node_id;
	int			action_launches;	/* by this worker, for the backoff */
	bool		action_running; /* its worker was running at the last look */
	struct BackgroundWorkerHandle *action_handle;	/* of its last launch */
	TimestampTz action_retry_at;

	/* the quorum its primary applied, as the catalog last said (engine.c) */
	int			sync_k;			/* 0: none (max_failover_lag rules) */
	bool		sync_degraded;
} HamonCluster;

typedef struct HamonNode
{
	/* registry (catalog.c) */
	int			node_id;
	char		cluster_name[HAMON_NAME_MAXLEN + 1];
	char		node_name[HAMON_NAME_MAXLEN + 1];
	char	   *conninfo;		/* palloc'd in the node context */
	int			priority;
	bool		maintenance;
	HamonCluster *cluster;

	/*
	 * Read by every round of the worker's loop for every node: kept
	 * together, in the first cache lines of a struct of several kB, so that
	 * a round over hundreds of nodes touches one line of each rather than
	 * three lines kilobytes apart (the cache misses were most of a round).
	 */
	bool		result_ready;	/* a finished probe waits to be folded */
	uint8		listed;			/* in which of probe.c's node lists */
	bool		flags_dirty;	/* the flags below changed, to be written */

	/* connection and schedule (probe.c) */
	PGconn	   *conn;
	HamonConnState conn_state;
	pgsocket	sock;			/* libpq's socket, PGINVALID_SOCKET if none */
	unsigned long sock_ino;		/* its inode: a reused number is another socket */
	uint32		wait_events;	/* WL_SOCKET_* wanted now, 0 for none */
	/* how the worker's wait set holds the node (worker.c) */
	uint32		reg_events;
	/*
	 * libpq closed or may have replaced the socket: epoll forgets a closed
	 * descriptor, and a new one may reuse its number, so the worker must
	 * register it again
	 */
	bool		sock_dirty;
	int			wait_pos;		/* position in the wait set, -1 if absent */
	TimestampTz next_probe_at;
	TimestampTz deadline;		/* of the connect or query under way */
	TimestampTz query_sent_at;
	bool		flush_pending;	/* query not wholly sent yet */
	bool		got_row;
	bool		checking_privileges;	/* the query under way is the check */
	/*
	 * Pacing of connection attempts (probe.c): the attempt holds a slot of
	 * the worker's and of its peer's from its start until its session has
	 * answered its first query, or it failed.
	 */
	uint32		peer_key;		/* the peer's address (host, hostaddr, port) */
	uint32		peer_key_of;	/* hash of the conninfo peer_key is from */
	bool		pace_held;		/* holds a slot */
	bool		pace_waiting;	/* due, waiting for a slot */
	TimestampTz connect_started;
	/* host name resolution (resolve.c) before each connection attempt */
	uint64		resolve_seq;	/* the request under way, 0 if none */
	bool		resolved;		/* the next attempt uses the addresses below */
	char	   *resolved_host;	/* host, hostaddr, port lists for libpq */
	char	   *resolved_hostaddr;
	char	   *resolved_port;	/* NULL: the conninfo's (or libpq's default) */
	/* FATAL notice the server sent before closing an idle connection */
	char		goodbye_sqlstate[6];
	char		goodbye_message[256];

	/* the probe session was opened since the last successful probe */
	bool		new_session;

	/*
	 * The replication slots, read by one probe in several (probe.c,
	 * hamon_slots_due): the last list read, when, and whether the node was
	 * in recovery then; whether the probe under way reads them.
	 */
	char	   *slots_kept;		/* NULL: none, or never read */
	TimestampTz slots_read_at;	/* 0: read them at the next probe */
	bool		slots_read_in_recovery;
	bool		slots_asked;
	bool		slots_each_probe;	/* a primary with a logical slot */

	/* health (state.c) */
	HamonHealth health;
	HamonRole	role;
	int			consecutive_failures;
	bool		sysid_mismatch;
	/* last known facts, kept while the node is down (state.c) */
	TimestampTz last_seen;		/* last successful probe */
	TimestampTz down_since;		/* first failure of this outage, 0 if up */
	bool		alive_signal;	/* this outage said the postmaster lives */
	TimestampTz alive_at;		/* the latest failure that said so, 0 if none */
	HamonFailureClass failure_class;	/* of the latest failure; NONE if up */
	int			timeline;
	XLogRecPtr	current_lsn;
	XLogRecPtr	receive_lsn;
	XLogRecPtr	replay_lsn;
	bool		streaming;
	HamonReceiver receiver;
	TimestampTz seen_streaming_at;	/* last probe that saw it streaming */
	int			upstream_node_id;	/* registered node it streams from, or 0 */
	bool		read_only;
	/* grants the witness lacks on the node, one a line; "" if none */
	char		missing_privileges[1024];
	/* the registered address, parsed once per conninfo (state.c) */
	uint32		addr_hash;
	char		addr_host[256];
	char		addr_hostaddr[64];
	char		addr_port[64];

	/* what the witness did or found about the node (failover.c) */
	bool		fenced;
	bool		needs_rejoin;
	bool		split_brain;
	TimestampTz repointed_at;	/* repointed, not yet seen following */
	TimestampTz fence_tried_at;
	TimestampTz slot_set_at;	/* primary_slot_name last set (slots.c) */
	uint32		slots_hash;		/* of what the slot review looks at */
	bool		has_slots;		/* its last probe listed replication slots */
	bool		sync_listed;	/* the primary's applied quorum names it (engine.c) */
	/* (flags_dirty, at the top: the flags above changed, to be written) */

	/*
	 * The state row as last written whole (catalog.c): a hash of what the
	 * light writes leave alone (0: unknown), and when.
	 */
	uint64		state_sig;
	TimestampTz state_full_at;

	/*
	 * History (worker.c, pg_hamonitor.history_interval): the previous
	 * probe's history columns, to see a change and to write that probe too
	 * when the next one changes something; when a row was last kept.
	 */
	bool		hist_seen;		/* a probe was seen since the node was loaded */
	bool		hist_prev_kept; /* the previous probe made a row */
	HamonHealth hist_health;	/* the node's health after it */
	int			hist_timeline;	/* of the last successful probe */
	HamonHistoryFacts hist_prev;
	TimestampTz hist_kept_at;	/* the last row kept */
	TimestampTz hist_full_until;	/* every probe kept until then */

	/* a finished probe (result_ready, at the top), waiting to be folded */
	HamonProbeResult result;
} HamonNode;

/*
 * A probe result awaiting its write: the worker folds results into node
 * state at once but writes them in batches (catalog.c).  The node is the
 * one probed; its state columns are written as they are at write time.
 */
typedef struct HamonProbeRecord
{
	HamonNode  *node;
	HamonRole	role;			/* the role this probe saw */
	bool		written;		/* in the catalog (catalog.c marks it) */
	bool		history;		/* makes a history row (worker.c decides) */
	/* writes the node's state row; what its state_sig/_full_at become */
	bool		stated;
	uint64		state_sig;
	TimestampTz state_full_at;
	HamonProbeResult result;
} HamonProbeRecord;

/* an event to be written with the next batch of results */
typedef struct HamonEvent
{
	char	   *cluster_name;
	char	   *node_name;
	char	   *kind;
	char	   *detail;
} HamonEvent;

extern const char *HamonHealthName(HamonHealth health);
extern const char *HamonRoleName(HamonRole role);
extern HamonHealth HamonHealthFromName(const char *name);
extern HamonRole HamonRoleFromName(const char *name);
extern const char *HamonReceiverName(HamonReceiver receiver);
extern HamonReceiver HamonReceiverFromName(const char *name);

#endif							/* HAMON_NODE_H */
