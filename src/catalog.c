/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		The probe worker's reads and writes of the extension's tables.
 *
 * All catalog access of the worker goes through here, over SPI, with
 * plans prepared once and kept (the same few statements run for every
 * probe).  Each batch of work is one short transaction run by
 * HamonRunInTransaction, which turns an ERROR (a table locked by a DBA,
 * the extension dropped under our feet) into a WARNING and a rolled-back
 * batch: the worker survives and the probes go on.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"

#ifndef JSONBOID
#define JSONBOID 3802
#endif

static SPIPlanPtr plan_probe_ok = NULL;
static SPIPlanPtr plan_probe_light = NULL;
static SPIPlanPtr plan_probe_failed = NULL;
static SPIPlanPtr plan_history = NULL;
static SPIPlanPtr plan_cluster = NULL;
static SPIPlanPtr plan_event = NULL;
static SPIPlanPtr plan_node_flags = NULL;
static SPIPlanPtr plan_lock_nodes = NULL;

/*
 * HamonRunInTransaction
 *		Runs fn(arg) in its own transaction with SPI connected and a
 *		snapshot pushed.  An ERROR is logged as a WARNING and the transaction
 *		rolled back; returns whether fn completed.  FATAL (SIGTERM) still
 *		ends the worker, as it should.
 */
bool
HamonRunInTransaction(void (*fn) (void *), void *arg, const char *activity)
{
	return HamonRunInTransactionEx(fn, arg, activity, WARNING, NULL);
}

/*
 * HamonRunInTransactionEx
 *		As HamonRunInTransaction, but an ERROR is reported at elevel (the
 *		HTTP worker logs a failed request at LOG, a bad argument at DEBUG1)
 *		and its SQLSTATE stored in *sqlstate if that is not NULL.
 */
bool
HamonRunInTransactionEx(void (*fn) (void *), void *arg, const char *activity,
						int elevel, int *sqlstate)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, activity);

	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		fn(arg);
		PopActiveSnapshot();
		SPI_finish();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		if (sqlstate)
			*sqlstate = edata->sqlerrcode;
		ereport(elevel,
				(errcode(edata->sqlerrcode),
				 errmsg("pg_hamonitor could not %s: %s", activity,
						edata->message)));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();

	MemoryContextSwitchTo(oldcxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

/* whether the extension is installed in this database; needs a transaction */
bool
HamonExtensionExists(void)
{
	return OidIsValid(get_extension_oid(HAMON_EXTENSION_NAME, true));
}

/* prepares a statement once for the life of the worker */
static SPIPlanPtr
hamon_prepare(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}

static void
hamon_execute(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

static HamonCluster *
hamon_cluster_of(List **clusters, const char *name)
{
	ListCell   *lc;
	HamonCluster *c;

	foreach(lc, *clusters)
		if (strcmp(((HamonCluster *) lfirst(lc))->name, name) == 0)
			return (HamonCluster *) lfirst(lc);
	c = palloc0(sizeof(HamonCluster));
	strlcpy(c->name, name, sizeof(c->name));
	*clusters = lappend(*clusters, c);
	return c;
}

static XLogRecPtr
hamon_getlsn(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
}

static TimestampTz
hamon_getts(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

static int
hamon_getint(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

static bool
hamon_getbool(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? false : DatumGetBool(d);
}

/*
 * HamonCatalogLoadNodes
 *		Reads the registry, with what the table remembers of each node (so a
 *		restarted worker neither announces every node anew nor forgets a
 *		primary that went down before it), for the clusters this worker
 *		owns: those whose name hashes to its index.  Returns a List of
 *		HamonNode and sets *clusters to a List of HamonCluster they point
 *		to, all palloc'd in callercxt.  Runs inside HamonRunInTransaction.
 */
List *
HamonCatalogLoadNodes(int worker_index, int nworkers, MemoryContext callercxt,
					  List **clusters)
{
	List	   *nodes = NIL;
	uint64		i;
	int			rc;

	*clusters = NIL;
	rc = SPI_execute("SELECT n.node_id, n.cluster_name, n.node_name, n.conninfo,"
					 " n.priority, n.maintenance, s.health, s.role,"
					 " s.consecutive_failures, s.sysid_mismatch,"
					 " c.system_identifier, c.primary_node_id, c.timeline,"
					 " s.last_seen, s.health_changed_at, s.timeline,"
					 " s.current_lsn, s.receive_lsn, s.replay_lsn,"
					 " s.fenced, s.needs_rejoin, s.repointed_at,"
					 " s.wal_receiver, s.seen_streaming_at, s.upstream_node_id,"
					 " s.failure_class, s.alive_at, s.missing_privileges"
					 " FROM hamonitor.node n"
					 " JOIN hamonitor.cluster c USING (cluster_name)"
					 " LEFT JOIN hamonitor.node_state s USING (node_id)"
					 " ORDER BY n.node_id", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the node registry: %s",
			 SPI_result_code_string(rc));

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *cluster = SPI_getvalue(tup, desc, 2);
		HamonNode  *node;
		HamonCluster *c;
		MemoryContext spicxt;
		bool		isnull;
		Datum		d;

		if (HamonClusterWorker(cluster, nworkers) != worker_index)
			continue;

		spicxt = MemoryContextSwitchTo(callercxt);
		c = hamon_cluster_of(clusters, cluster);
		d = SPI_getbinval(tup, desc, 11, &isnull);
		c->has_sysid = !isnull;
		c->system_identifier = isnull ? 0 : (uint64) DatumGetInt64(d);
		c->primary_id = hamon_getint(tup, desc, 12);
		c->timeline = hamon_getint(tup, desc, 13);

		node = palloc0(sizeof(HamonNode));
		node->cluster = c;
		node->node_id = hamon_getint(tup, desc, 1);
		strlcpy(node->cluster_name, cluster, sizeof(node->cluster_name));
		strlcpy(node->node_name, SPI_getvalue(tup, desc, 3),
				sizeof(node->node_name));
		node->conninfo = SPI_getvalue(tup, desc, 4);
		node->priority = hamon_getint(tup, desc, 5);
		node->maintenance = hamon_getbool(tup, desc, 6);
		node->health = HamonHealthFromName(SPI_getvalue(tup, desc, 7));
		node->role = HamonRoleFromName(SPI_getvalue(tup, desc, 8));
		node->consecutive_failures = hamon_getint(tup, desc, 9);
		node->sysid_mismatch = hamon_getbool(tup, desc, 10);
		node->last_seen = hamon_getts(tup, desc, 14);
		if (node->health == HAMON_HEALTH_DOWN)
			node->down_since = hamon_getts(tup, desc, 15);
		node->timeline = hamon_getint(tup, desc, 16);
		node->current_lsn = hamon_getlsn(tup, desc, 17);
		node->receive_lsn = hamon_getlsn(tup, desc, 18);
		node->replay_lsn = hamon_getlsn(tup, desc, 19);
		node->fenced = hamon_getbool(tup, desc, 20);
		node->needs_rejoin = hamon_getbool(tup, desc, 21);
		node->repointed_at = hamon_getts(tup, desc, 22);

		/*
		 * The evidence a restarted witness must not forget: which standbys
		 * streamed (only they may confirm a primary's death), how the
		 * primary's outage looked, and the grants already reported.
		 */
		node->receiver = HamonReceiverFromName(SPI_getvalue(tup, desc, 23));
		node->streaming = (node->receiver == HAMON_RECEIVER_STREAMING);
		node->seen_streaming_at = hamon_getts(tup, desc, 24);
		node->upstream_node_id = hamon_getint(tup, desc, 25);
		if (node->health == HAMON_HEALTH_DOWN)
		{
			node->failure_class =
				HamonFailureClassFromName(SPI_getvalue(tup, desc, 26));
			node->alive_at = hamon_getts(tup, desc, 27);
			node->alive_signal = (node->alive_at != 0);
		}
		{
			char	   *missing = SPI_getvalue(tup, desc, 28);

			strlcpy(node->missing_privileges, missing ? missing : "",
					sizeof(node->missing_privileges));
		}
		node->sock = PGINVALID_SOCKET;
		node->wait_pos = -1;
		nodes = lappend(nodes, node);
		MemoryContextSwitchTo(spicxt);
	}
	return nodes;
}

#define LSN_DATUM(lsn, i) \
	(nulls[i] = XLogRecPtrIsInvalid(lsn) ? 'n' : ' ', LSNGetDatum(lsn))
#define TS_DATUM(ts, i) \
	(nulls[i] = (ts) == 0 ? 'n' : ' ', TimestampTzGetDatum(ts))
#define TEXT_DATUM(s, i) \
	(nulls[i] = (s)[0] == '\0' ? 'n' : ' ', CStringGetTextDatum(s))

/*
 * Where a probe found the node's WAL, five columns from values[i] on, as the
 * state, light and history rows all write them: current, flush, receive and
 * replay LSN, last replay time.
 */
static void
hamon_put_wal_position(Datum *values, char *nulls, int i,
					   const HamonProbeResult *r)
{
	values[i] = LSN_DATUM(r->current_lsn, i);
	values[i + 1] = LSN_DATUM(r->flush_lsn, i + 1);
	values[i + 2] = LSN_DATUM(r->receive_lsn, i + 2);
	values[i + 3] = LSN_DATUM(r->replay_lsn, i + 3);
	values[i + 4] = TS_DATUM(r->last_replay_at, i + 4);
}

/*
 * Probe results are written a batch at a time: each statement takes one
 * array per column and unnests them, so a batch of a hundred results costs
 * three statements, not two hundred.  A HamonBatch gathers the columns.
 */
typedef struct HamonBatch
{
	int			ncols;
	int			nrows;
	int			cap;
	const Oid  *types;			/* element types */
	Datum	  **values;			/* [col][row] */
	bool	  **nulls;
} HamonBatch;

static void
hamon_batch_init(HamonBatch *b, const Oid *types, int ncols, int cap)
{
	int			i;

	b->ncols = ncols;
	b->nrows = 0;
	b->cap = Max(cap, 1);
	b->types = types;
	b->values = palloc(sizeof(Datum *) * ncols);
	b->nulls = palloc(sizeof(bool *) * ncols);
	for (i = 0; i < ncols; i++)
	{
		b->values[i] = palloc(sizeof(Datum) * b->cap);
		b->nulls[i] = palloc(sizeof(bool) * b->cap);
	}
}

/* adds a row; nulls as SPI has them ('n' for NULL) */
static void
hamon_batch_add(HamonBatch *b, const Datum *values, const char *nulls)
{
	int			i;

	Assert(b->nrows < b->cap);
	for (i = 0; i < b->ncols; i++)
	{
		b->values[i][b->nrows] = values[i];
		b->nulls[i][b->nrows] = (nulls[i] == 'n');
	}
	b->nrows++;
}

/*
 * runs sql, whose $1..$n are the columns as arrays, prepared once.  The
 * UPDATEs of node_state say "s.node_id = ANY ($1)" besides the join on
 * unnest(): the generic plan cannot know how many rows unnest() gives, and
 * without an index condition it scanned the whole table, mostly dead rows
 * of a table updated at every probe, for the few dozen a batch writes.
 */
static void
hamon_batch_execute(HamonBatch *b, SPIPlanPtr *plan, const char *sql,
					int expected)
{
	Oid		   *argtypes = palloc(sizeof(Oid) * b->ncols);
	Datum	   *args = palloc(sizeof(Datum) * b->ncols);
	int			dims[1] = {b->nrows};
	int			lbs[1] = {1};
	int			i;

	if (b->nrows == 0)
		return;
	for (i = 0; i < b->ncols; i++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;

		argtypes[i] = get_array_type(b->types[i]);
		get_typlenbyvalalign(b->types[i], &typlen, &typbyval, &typalign);
		args[i] = PointerGetDatum(construct_md_array(b->values[i], b->nulls[i],
													 1, dims, lbs, b->types[i],
													 typlen, typbyval, typalign));
	}
	hamon_execute(hamon_prepare(plan, sql, b->ncols, argtypes), args, NULL,
				  expected);
}

/* state columns of a successful probe */
static const Oid probe_ok_types[] = {INT4OID, TEXTOID, TEXTOID, BOOLOID,
	INT8OID, INT4OID, INT4OID, TIMESTAMPTZOID, FLOAT8OID, PG_LSNOID, PG_LSNOID,
	PG_LSNOID, PG_LSNOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT4OID,
	TIMESTAMPTZOID, JSONBOID, BOOLOID, TEXTOID, TEXTOID, INT4OID,
TIMESTAMPTZOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};

static void
hamon_add_probe_ok(HamonBatch *b, HamonNode *node, HamonProbeResult *r)
{
	Datum		values[lengthof(probe_ok_types)];
	char		nulls[lengthof(probe_ok_types)];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int32GetDatum(node->node_id);
	values[1] = CStringGetTextDatum(HamonHealthName(node->health));
	values[2] = CStringGetTextDatum(HamonRoleName(node->role));
	values[3] = BoolGetDatum(node->sysid_mismatch);
	values[4] = Int64GetDatum((int64) r->system_identifier);
	nulls[4] = r->has_sysid ? ' ' : 'n';
	values[5] = Int32GetDatum(r->timeline);
	values[6] = Int32GetDatum(r->server_version);
	values[7] = TimestampTzGetDatum(r->probed_at);
	values[8] = Float8GetDatum(r->latency_ms);
	hamon_put_wal_position(values, nulls, 9, r);
	values[14] = TEXT_DATUM(r->wal_receiver_status, 14);
	values[15] = TEXT_DATUM(r->upstream_host, 15);
	values[16] = Int32GetDatum(r->upstream_port);
	nulls[16] = r->upstream_port == 0 ? 'n' : ' ';
	values[17] = TS_DATUM(r->last_wal_receipt_at, 17);
	values[18] = r->slots_json ?
		DirectFunctionCall1(jsonb_in, CStringGetDatum(r->slots_json)) : 0;
	nulls[18] = r->slots_json ? ' ' : 'n';
	values[19] = BoolGetDatum(r->read_only);
	values[20] = TEXT_DATUM(r->primary_slot_name, 20);
	/* the evidence: what the node's state says, now */
	values[21] = CStringGetTextDatum(HamonReceiverName(node->receiver));
	values[22] = Int32GetDatum(r->wal_receiver_pid);
	nulls[22] = r->wal_receiver_pid == 0 ? 'n' : ' ';
	values[23] = TS_DATUM(node->seen_streaming_at, 23);
	values[24] = Int32GetDatum(node->upstream_node_id);
	nulls[24] = node->upstream_node_id == 0 ? 'n' : ' ';
	values[25] = TEXT_DATUM(node->missing_privileges, 25);
	/* durability: a primary's applied list ('' included), its walsenders */
	values[26] = CStringGetTextDatum(r->synchronous_standby_names);
	nulls[26] = r->in_recovery ? 'n' : ' ';
	values[27] = TEXT_DATUM(r->sync_states, 27);
	values[28] = TS_DATUM(r->slots_read_at, 28);
	hamon_batch_add(b, values, nulls);
}

/*
 * A node's state row is written whole only when something besides the
 * figures every probe changes (its time, latency, LSNs and the times that
 * go with them) differs from what was last written whole, and at least
 * every HAMON_STATE_REFRESH_MS, so that a row another session changed is
 * set right again.  The other probes write the light columns only: no text
 * to convert, no jsonb to parse, a third of the arrays.  With a thousand
 * steady nodes that is most of what writing their state cost.
 */
#define HAMON_STATE_REFRESH_MS 10000

static inline uint64
hamon_sig_bytes(uint64 sig, const void *p, size_t len)
{
	return hash_combine64(sig, hash_bytes_extended((const unsigned char *) p,
												   (int) len, 0));
}

static inline uint64
hamon_sig_str(uint64 sig, const char *s)
{
	return s ? hamon_sig_bytes(sig, s, strlen(s) + 1) : hash_combine64(sig, 1);
}

/* what a successful probe writes whole, hashed; never 0 (0: none written) */
static uint64
hamon_state_sig(HamonNode *node, HamonProbeResult *r)
{
	uint64		sig = 0;
	int32		ints[8];

	ints[0] = node->health;
	ints[1] = node->role;
	ints[2] = node->sysid_mismatch;
	ints[3] = r->timeline;
	ints[4] = r->server_version;
	ints[5] = r->upstream_port;
	ints[6] = r->wal_receiver_pid;
	ints[7] = node->upstream_node_id;
	sig = hamon_sig_bytes(sig, ints, sizeof(ints));
	sig = hamon_sig_bytes(sig, &r->system_identifier,
						  sizeof(r->system_identifier));
	ints[0] = r->has_sysid;
	ints[1] = r->read_only;
	ints[2] = node->receiver;
	ints[3] = r->in_recovery;
	sig = hamon_sig_bytes(sig, ints, 4 * sizeof(int32));
	sig = hamon_sig_str(sig, r->wal_receiver_status);
	sig = hamon_sig_str(sig, r->upstream_host);
	sig = hamon_sig_str(sig, r->slots_json);
	sig = hamon_sig_str(sig, r->primary_slot_name);
	sig = hamon_sig_str(sig, node->missing_privileges);
	sig = hamon_sig_str(sig, r->synchronous_standby_names);
	sig = hamon_sig_str(sig, r->sync_states);
	return sig == 0 ? 1 : sig;
}

/* light columns of a successful probe that changed nothing else */
static const Oid probe_light_types[] = {INT4OID, TIMESTAMPTZOID, FLOAT8OID,
	PG_LSNOID, PG_LSNOID, PG_LSNOID, PG_LSNOID, TIMESTAMPTZOID,
TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID};

static void
hamon_add_probe_light(HamonBatch *b, HamonNode *node, HamonProbeResult *r)
{
	Datum		values[lengthof(probe_light_types)];
	char		nulls[lengthof(probe_light_types)];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int32GetDatum(node->node_id);
	values[1] = TimestampTzGetDatum(r->probed_at);
	values[2] = Float8GetDatum(r->latency_ms);
	hamon_put_wal_position(values, nulls, 3, r);
	values[8] = TS_DATUM(r->last_wal_receipt_at, 8);
	values[9] = TS_DATUM(node->seen_streaming_at, 9);
	/* the same slots, read again: when, which hamonitor.slots shows */
	values[10] = TS_DATUM(r->slots_read_at, 10);
	hamon_batch_add(b, values, nulls);
}

static void
hamon_write_probes_light(HamonBatch *b)
{
	hamon_batch_execute(b, &plan_probe_light,
						"UPDATE hamonitor.node_state s SET"
						" last_probe_at = u.probed_at, last_seen = u.probed_at,"
						" latency_ms = u.latency_ms,"
						" current_lsn = u.current_lsn, flush_lsn = u.flush_lsn,"
						" receive_lsn = u.receive_lsn, replay_lsn = u.replay_lsn,"
						" last_replay_at = u.last_replay_at,"
						" last_wal_receipt_at = u.last_wal_receipt_at,"
						" seen_streaming_at = u.seen_streaming_at,"
						" slots_read_at = u.slots_read_at"
						" FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
						"  $11)"
						" AS u(node_id, probed_at, latency_ms, current_lsn,"
						"  flush_lsn, receive_lsn, replay_lsn, last_replay_at,"
						"  last_wal_receipt_at, seen_streaming_at, slots_read_at)"
						" WHERE s.node_id = u.node_id AND s.node_id = ANY ($1)",
						SPI_OK_UPDATE);
}

static void
hamon_write_probes_ok(HamonBatch *b)
{
	hamon_batch_execute(b, &plan_probe_ok,
						"UPDATE hamonitor.node_state s SET"
						" health_changed_at = CASE WHEN s.health = u.health"
						"   THEN s.health_changed_at ELSE u.probed_at END,"
						" health = u.health, role = u.role,"
						" sysid_mismatch = u.sysid_mismatch,"
						" system_identifier = u.system_identifier,"
						" timeline = u.timeline, server_version = u.server_version,"
						" last_probe_at = u.probed_at, last_seen = u.probed_at,"
						" latency_ms = u.latency_ms, consecutive_failures = 0,"
						" current_lsn = u.current_lsn, flush_lsn = u.flush_lsn,"
						" receive_lsn = u.receive_lsn, replay_lsn = u.replay_lsn,"
						" last_replay_at = u.last_replay_at,"
						" wal_receiver_status = u.wal_receiver_status,"
						" upstream_host = u.upstream_host,"
						" upstream_port = u.upstream_port,"
						" last_wal_receipt_at = u.last_wal_receipt_at,"
						" slots = u.slots, read_only = u.read_only,"
						" primary_slot_name = u.primary_slot_name,"
						" wal_receiver = u.wal_receiver,"
						" wal_receiver_pid = u.wal_receiver_pid,"
						" seen_streaming_at = u.seen_streaming_at,"
						" upstream_node_id = u.upstream_node_id,"
						" missing_privileges = u.missing_privileges,"
						" synchronous_standby_names = u.synchronous_standby_names,"
						" sync_states = u.sync_states,"
						" slots_read_at = u.slots_read_at,"
						" failure_class = NULL, alive_at = NULL"
						" FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
						"  $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,"
						"  $22, $23, $24, $25, $26, $27, $28, $29)"
						" AS u(node_id, health, role, sysid_mismatch,"
						"  system_identifier, timeline, server_version, probed_at,"
						"  latency_ms, current_lsn, flush_lsn, receive_lsn,"
						"  replay_lsn, last_replay_at, wal_receiver_status,"
						"  upstream_host, upstream_port, last_wal_receipt_at,"
						"  slots, read_only, primary_slot_name, wal_receiver,"
						"  wal_receiver_pid, seen_streaming_at, upstream_node_id,"
						"  missing_privileges, synchronous_standby_names,"
						"  sync_states, slots_read_at)"
						" WHERE s.node_id = u.node_id AND s.node_id = ANY ($1)",
						SPI_OK_UPDATE);
}

/* state columns of a failed probe: the last known LSNs are kept */
static const Oid probe_failed_types[] = {INT4OID, TEXTOID, TIMESTAMPTZOID,
INT4OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID};

static void
hamon_add_probe_failed(HamonBatch *b, HamonNode *node, HamonProbeResult *r)
{
	Datum		values[lengthof(probe_failed_types)];
	char		nulls[lengthof(probe_failed_types)];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int32GetDatum(node->node_id);
	values[1] = CStringGetTextDatum(HamonHealthName(node->health));
	values[2] = TimestampTzGetDatum(r->probed_at);
	values[3] = Int32GetDatum(node->consecutive_failures);
	values[4] = CStringGetTextDatum(r->error_sqlstate);
	values[5] = CStringGetTextDatum(r->error);
	values[6] = CStringGetTextDatum(HamonFailureClassName(node->failure_class));
	values[7] = TS_DATUM(node->alive_at, 7);
	values[8] = TEXT_DATUM(node->missing_privileges, 8);
	hamon_batch_add(b, values, nulls);
}

static void
hamon_write_probes_failed(HamonBatch *b)
{
	hamon_batch_execute(b, &plan_probe_failed,
						"UPDATE hamonitor.node_state s SET"
						" health_changed_at = CASE WHEN s.health = u.health"
						"   THEN s.health_changed_at ELSE u.probed_at END,"
						" health = u.health, last_probe_at = u.probed_at,"
						" consecutive_failures = u.failures,"
						" last_error_sqlstate = u.sqlstate, last_error = u.error,"
						" failure_class = u.failure_class, alive_at = u.alive_at,"
						" missing_privileges = u.missing_privileges"
						" FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9)"
						" AS u(node_id, health, probed_at, failures, sqlstate,"
						"  error, failure_class, alive_at, missing_privileges)"
						" WHERE s.node_id = u.node_id AND s.node_id = ANY ($1)",
						SPI_OK_UPDATE);
}

/* history columns, for success and failure alike */
static const Oid history_types[] = {INT4OID, TIMESTAMPTZOID, BOOLOID,
	FLOAT8OID, TEXTOID, INT4OID, PG_LSNOID, PG_LSNOID, PG_LSNOID, PG_LSNOID,
TIMESTAMPTZOID, TEXTOID, TEXTOID};

static void
hamon_add_history(HamonBatch *b, HamonNode *node, HamonRole role,
				  HamonProbeResult *r)
{
	Datum		values[lengthof(history_types)];
	char		nulls[lengthof(history_types)];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int32GetDatum(node->node_id);
	values[1] = TimestampTzGetDatum(r->probed_at);
	values[2] = BoolGetDatum(r->success);
	values[3] = Float8GetDatum(r->latency_ms);
	nulls[3] = r->success ? ' ' : 'n';
	values[4] = CStringGetTextDatum(r->success ? HamonRoleName(role) : "");
	nulls[4] = r->success ? ' ' : 'n';
	values[5] = Int32GetDatum(r->timeline);
	nulls[5] = r->success ? ' ' : 'n';
	hamon_put_wal_position(values, nulls, 6, r);
	values[11] = TEXT_DATUM(r->error_sqlstate, 11);
	values[12] = TEXT_DATUM(r->error, 12);
	hamon_batch_add(b, values, nulls);
}

static void
hamon_write_history(HamonBatch *b)
{
	hamon_batch_execute(b, &plan_history,
						"INSERT INTO hamonitor.probe_history"
						" (node_id, probed_at, success, latency_ms, role,"
						"  timeline, current_lsn, flush_lsn, receive_lsn,"
						"  replay_lsn, last_replay_at, error_sqlstate, error)"
						" SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8,"
						"  $9, $10, $11, $12, $13)",
						SPI_OK_INSERT);
}

/* records what the worker learnt of a cluster: identifier, primary */
static void
hamon_write_cluster(HamonCluster *cluster)
{
	static Oid	types[] = {TEXTOID, INT8OID, INT4OID, INT4OID};
	Datum		values[4];
	char		nulls[5] = "    ";
	SPIPlanPtr	plan;

	plan = hamon_prepare(&plan_cluster,
						 "UPDATE hamonitor.cluster SET"
						 " system_identifier = coalesce(system_identifier, $2),"
						 " primary_node_id = $3, timeline = $4"
						 " WHERE cluster_name = $1",
						 4, types);
	values[0] = CStringGetTextDatum(cluster->name);
	values[1] = Int64GetDatum((int64) cluster->system_identifier);
	nulls[1] = cluster->has_sysid ? ' ' : 'n';
	values[2] = Int32GetDatum(cluster->primary_id);
	nulls[2] = cluster->primary_id ? ' ' : 'n';
	values[3] = Int32GetDatum(cluster->timeline);
	nulls[3] = cluster->timeline ? ' ' : 'n';
	hamon_execute(plan, values, nulls, SPI_OK_UPDATE);
}

/*
 * HamonCatalogWriteNodeFlags
 *		Writes what the witness did or found about a node: fenced,
 *		needs_rejoin, repointed_at (0: none).  A NULL pointer leaves that
 *		flag as it is.  The one writer of these flags, for the probe worker
 *		and the action workers alike.  Needs SPI connected.
 */
void
HamonCatalogWriteNodeFlags(int node_id, const bool *fenced,
						   const bool *needs_rejoin,
						   const TimestampTz *repointed_at)
{
	static Oid	types[] = {INT4OID, BOOLOID, BOOLOID, TIMESTAMPTZOID, BOOLOID};
	Datum		values[5];
	char		nulls[6] = "     ";
	SPIPlanPtr	plan;

	plan = hamon_prepare(&plan_node_flags,
						 "UPDATE hamonitor.node_state SET"
						 " fenced = coalesce($2, fenced),"
						 " needs_rejoin = coalesce($3, needs_rejoin),"
						 " repointed_at = CASE WHEN $5 THEN $4 ELSE repointed_at END"
						 " WHERE node_id = $1",
						 5, types);
	values[0] = Int32GetDatum(node_id);
	values[1] = BoolGetDatum(fenced ? *fenced : false);
	nulls[1] = fenced ? ' ' : 'n';
	values[2] = BoolGetDatum(needs_rejoin ? *needs_rejoin : false);
	nulls[2] = needs_rejoin ? ' ' : 'n';
	if (repointed_at)
		values[3] = TS_DATUM(*repointed_at, 3);
	else
	{
		values[3] = (Datum) 0;
		nulls[3] = 'n';
	}
	values[4] = BoolGetDatum(repointed_at != NULL);
	hamon_execute(plan, values, nulls, SPI_OK_UPDATE);
}

/*
 * HamonCatalogWriteEvent
 *		Inserts an event (whose trigger queues a NOTIFY hamonitor_event with
 *		its id, delivered at commit) and logs it.
 *		Needs SPI connected.  Returns the event id.
 */
int64
HamonCatalogWriteEvent(const char *cluster_name, const char *node_name,
					   const char *kind, const char *detail)
{
	static Oid	types[] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[5] = "    ";
	SPIPlanPtr	plan;
	bool		isnull;
	int64		event_id;

	plan = hamon_prepare(&plan_event,
						 "INSERT INTO hamonitor.event"
						 " (cluster_name, node_name, kind, detail)"
						 " VALUES ($1, $2, $3, $4) RETURNING event_id",
						 4, types);
	values[0] = CStringGetTextDatum(cluster_name);
	values[1] = CStringGetTextDatum(node_name ? node_name : "");
	nulls[1] = node_name ? ' ' : 'n';
	values[2] = CStringGetTextDatum(kind);
	values[3] = CStringGetTextDatum(detail ? detail : "");
	nulls[3] = detail ? ' ' : 'n';
	hamon_execute(plan, values, nulls, SPI_OK_INSERT_RETURNING);

	/* the table's trigger sends NOTIFY hamonitor_event with the id */
	event_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));

	ereport(LOG,
			(errmsg("pg_hamonitor: %s of node \"%s\" in cluster \"%s\"%s%s",
					kind, node_name ? node_name : "",
					cluster_name, detail ? ": " : "",
					detail ? detail : "")));
	return event_id;
}

/*
 * Locks the registry rows of the nodes about to be written, in node_id
 * order, FOR KEY SHARE SKIP LOCKED, and returns the ids it could lock: a
 * node being unregistered meanwhile is skipped, and so is a node whose row
 * a session holds locked (an open transaction around set_maintenance, for
 * instance), whose results then wait for the next batch instead of making
 * every cluster's batch wait.
 * Taking these locks first, in order, is what keeps the batch from
 * deadlocking with unregister_node(), which locks the node row and then
 * deletes its state and history (the history insert's foreign key would
 * otherwise take the node row's lock after the state row's).
 */
static List *
hamon_lock_nodes(List *records, List *flagged)
{
	List	   *ids = NIL;
	List	   *locked = NIL;
	ListCell   *lc;
	Datum	   *elems;
	ArrayType  *arr;
	Oid			types[1] = {INT4ARRAYOID};
	Datum		values[1];
	uint64		i;
	int			n = 0;

	foreach(lc, records)
		ids = list_append_unique_int(ids,
									 ((HamonProbeRecord *) lfirst(lc))->node->node_id);
	foreach(lc, flagged)
		ids = list_append_unique_int(ids, ((HamonNode *) lfirst(lc))->node_id);
	if (ids == NIL)
		return NIL;

	elems = palloc(sizeof(Datum) * list_length(ids));
	foreach(lc, ids)
		elems[n++] = Int32GetDatum(lfirst_int(lc));
	arr = construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	values[0] = PointerGetDatum(arr);
	/* prepared once: every batch runs it, and planning it cost as much */
	hamon_execute(hamon_prepare(&plan_lock_nodes,
								"SELECT node_id FROM hamonitor.node"
								" WHERE node_id = ANY ($1)"
								" ORDER BY node_id FOR KEY SHARE SKIP LOCKED",
								1, types),
				  values, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
		locked = lappend_int(locked,
							 hamon_getint(SPI_tuptable->vals[i],
										  SPI_tuptable->tupdesc, 1));
	return locked;
}

/*
 * HamonCatalogWriteProbes
 *		Writes a batch of probe records (state and history), what
 *		clusters have learnt (identifier, primary), the flags of the
 *		flagged nodes, and events.  Nodes unregistered meanwhile, or whose
 *		registry row another session holds locked, are skipped: each record
 *		written is marked written, and the ids of the flagged nodes written
 *		are appended to *flags_written, in resultcxt.  Runs inside
 *		HamonRunInTransaction; what it marks counts only once that commits.
 */
void
HamonCatalogWriteProbes(List *records, List *clusters, List *flagged,
						List *events, MemoryContext resultcxt,
						List **flags_written)
{
	List	   *locked;
	List	   *stated = NIL;
	HamonBatch	history;
	HamonBatch	ok;
	HamonBatch	light;
	HamonBatch	failed;
	ListCell   *lc;
	int			n;
	int			i;

	/*
	 * The batch's statements look up a few dozen rows of node and
	 * node_state by primary key, and are kept prepared (a generic plan
	 * after the first few): not knowing how many ids the arrays hold, the
	 * planner chose to scan both tables whole (node_state, updated at every
	 * probe, is mostly dead rows between vacuums), which was a third of what
	 * a batch cost.  Set for this transaction only, so every plan the batch
	 * makes, custom, generic or made again after an invalidation, is made
	 * under it.
	 */
	(void) set_config_option("enable_seqscan", "off", PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	locked = hamon_lock_nodes(records, flagged);
	foreach(lc, clusters)
		hamon_write_cluster((HamonCluster *) lfirst(lc));

	/*
	 * a record makes history if the worker kept it (history_interval); a
	 * node's state comes from its last one
	 */
	n = list_length(records);
	hamon_batch_init(&history, history_types, lengthof(history_types), n);
	hamon_batch_init(&ok, probe_ok_types, lengthof(probe_ok_types), n);
	hamon_batch_init(&light, probe_light_types, lengthof(probe_light_types), n);
	hamon_batch_init(&failed, probe_failed_types, lengthof(probe_failed_types), n);
	for (i = n - 1; i >= 0; i--)
	{
		HamonProbeRecord *rec = (HamonProbeRecord *) list_nth(records, i);
		int			node_id = rec->node->node_id;

		rec->stated = false;
		if (!list_member_int(locked, node_id) ||
			list_member_int(stated, node_id))
			continue;
		stated = lappend_int(stated, node_id);
		rec->stated = true;
		rec->state_sig = rec->node->state_sig;
		rec->state_full_at = rec->node->state_full_at;
		if (!rec->result.success)
		{
			hamon_add_probe_failed(&failed, rec->node, &rec->result);
			rec->state_sig = 0;
			continue;
		}
		rec->state_sig = hamon_state_sig(rec->node, &rec->result);
		if (rec->state_sig == rec->node->state_sig &&
			rec->result.probed_at - rec->node->state_full_at <
			HAMON_STATE_REFRESH_MS * INT64CONST(1000))
			hamon_add_probe_light(&light, rec->node, &rec->result);
		else
		{
			hamon_add_probe_ok(&ok, rec->node, &rec->result);
			rec->state_full_at = rec->result.probed_at;
		}
	}
	foreach(lc, records)
	{
		HamonProbeRecord *rec = (HamonProbeRecord *) lfirst(lc);

		rec->written = list_member_int(locked, rec->node->node_id);
		if (rec->written && rec->history)
			hamon_add_history(&history, rec->node, rec->role, &rec->result);
	}
	hamon_write_probes_ok(&ok);
	hamon_write_probes_light(&light);
	hamon_write_probes_failed(&failed);
	hamon_write_history(&history);

	foreach(lc, flagged)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);

		if (list_member_int(locked, node->node_id))
		{
			MemoryContext oldcxt;

			HamonCatalogWriteNodeFlags(node->node_id, &node->fenced,
									   &node->needs_rejoin,
									   &node->repointed_at);
			oldcxt = MemoryContextSwitchTo(resultcxt);
			*flags_written = lappend_int(*flags_written, node->node_id);
			MemoryContextSwitchTo(oldcxt);
		}
	}

	foreach(lc, events)
	{
		HamonEvent *ev = (HamonEvent *) lfirst(lc);

		HamonCatalogWriteEvent(ev->cluster_name, ev->node_name, ev->kind,
							   ev->detail);
	}
}

/*
 * HamonCatalogLockCluster
 *		Locks the cluster's row, the lock that serializes every decision and
 *		action on one cluster, and reads its primary and timeline.  With
 *		skip_locked, returns false at once if someone else holds it (the
 *		worker then leaves the cluster alone this round); otherwise waits.
 *		ERROR (42704) if the cluster does not exist.  Needs SPI connected.
 */
bool
HamonCatalogLockCluster(const char *cluster_name, bool skip_locked,
						int *primary_id, int *timeline)
{
	Oid			types[] = {TEXTOID};
	Datum		values[1];
	int			rc;

	values[0] = CStringGetTextDatum(cluster_name);
	rc = SPI_execute_with_args(skip_locked ?
							   "SELECT primary_node_id, timeline FROM hamonitor.cluster"
							   " WHERE cluster_name = $1 FOR UPDATE SKIP LOCKED" :
							   "SELECT primary_node_id, timeline FROM hamonitor.cluster"
							   " WHERE cluster_name = $1 FOR UPDATE",
							   1, types, values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not lock cluster \"%s\": %s", cluster_name,
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		if (skip_locked)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cluster \"%s\" does not exist", cluster_name)));
	}
	*primary_id = hamon_getint(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*timeline = hamon_getint(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	return true;
}

/*
 * HamonCatalogPromoted
 *		Records a promotion: the cluster's new primary and timeline, and the
 *		promoted node's role.  Needs SPI connected, the cluster locked.
 */
void
HamonCatalogPromoted(const char *cluster_name, int node_id, int timeline)
{
	Oid			types[] = {TEXTOID, INT4OID, INT4OID};
	Datum		values[3];
	int			rc;

	values[0] = CStringGetTextDatum(cluster_name);
	values[1] = Int32GetDatum(node_id);
	values[2] = Int32GetDatum(timeline);
	rc = SPI_execute_with_args("UPDATE hamonitor.cluster SET primary_node_id = $2,"
							   " timeline = $3, last_failover_at = now()"
							   " WHERE cluster_name = $1",
							   3, types, values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not record the promotion: %s",
			 SPI_result_code_string(rc));
	rc = SPI_execute_with_args("UPDATE hamonitor.node_state SET role = 'primary',"
							   " timeline = $3, fenced = false, needs_rejoin = false,"
							   " repointed_at = NULL WHERE node_id = $2",
							   3, types, values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not record the promotion: %s",
			 SPI_result_code_string(rc));
}

/*
 * HamonCatalogPurgeHistory
 *		Deletes at most pg_hamonitor.history_purge_batch history rows older
 *		than pg_hamonitor.history_retention; returns how many went.
 *		Runs inside HamonRunInTransaction.
 */
uint64
HamonCatalogPurgeHistory(void)
{
	Oid			types[] = {INT4OID, INT4OID};
	Datum		values[2];

	/*
	 * Planned afresh each time, with the values: a generic plan does not
	 * know the cutoff leaves nothing to purge, and may scan the whole table
	 * (seconds at ten million rows) instead of descending the index once.
	 */
	values[0] = Int32GetDatum(hamon_history_retention);
	values[1] = Int32GetDatum(hamon_history_purge_batch);
	if (SPI_execute_with_args("DELETE FROM hamonitor.probe_history WHERE ctid = ANY"
							  " (ARRAY(SELECT ctid FROM hamonitor.probe_history"
							  "   WHERE probed_at < now() - $1 * interval '1 minute'"
							  "   ORDER BY probed_at LIMIT $2))",
							  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not purge the probe history");
	return SPI_processed;
}

/*
 * HamonCatalogForEachNode
 *		Calls fn for every registered node, in node_id order: its cluster,
 *		name, conninfo and whether its last recorded health is down.  A
 *		read-only query, so it runs on a standby witness too.  Needs SPI
 *		connected; the strings live in SPI's memory until SPI_finish.
 */
void
HamonCatalogForEachNode(HamonNodeRowFn fn, void *arg)
{
	uint64		i;
	int			rc;

	rc = SPI_execute("SELECT n.cluster_name, n.node_name, n.conninfo,"
					 "       coalesce(s.health = 'down', false)"
					 "  FROM hamonitor.node n"
					 "  LEFT JOIN hamonitor.node_state s USING (node_id)"
					 " ORDER BY n.node_id", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the node registry: %s",
			 SPI_result_code_string(rc));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		fn(SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 2),
		   SPI_getvalue(tup, desc, 3),
		   strcmp(SPI_getvalue(tup, desc, 4), "t") == 0, arg);
	}
}

/*
 * HamonCatalogFoldEventCounts
 *		Folds the event_count rows of backends that are gone into the row of
 *		backend_pid 0, so that the table keeps about one row per cluster and
 *		kind, plus one per live backend that inserted events.  Needs a
 *		transaction with SPI connected, on a writable witness.  The rows a
 *		live backend may be writing are left alone (its pid is live; a row
 *		locked by a backend that took a gone one's pid is skipped), and of
 *		two folds at once (the HTTP worker's before a scrape, probe worker
 *		0's after its history purge) the second skips its turn rather than
 *		wait for the first's backend_pid 0 rows: the probe loop never waits.
 */
void
HamonCatalogFoldEventCounts(void)
{
	int			rc;

	/* 1751215472: the fold's own advisory class (the clusters' is ...471) */
	rc = SPI_execute("SELECT pg_catalog.pg_try_advisory_xact_lock(1751215472, 0)",
					 false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %d", rc);
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
			   "t") != 0)
		return;

	rc = SPI_execute("WITH gone AS ("
					 "    SELECT ctid FROM hamonitor.event_count"
					 "     WHERE backend_pid <> 0"
					 "       AND backend_pid NOT IN (SELECT pid FROM pg_stat_get_activity(NULL)"
					 "                                WHERE pid IS NOT NULL)"
					 "       FOR UPDATE SKIP LOCKED),"
					 "  folded AS ("
					 "    DELETE FROM hamonitor.event_count n USING gone"
					 "     WHERE n.ctid = gone.ctid"
					 " RETURNING n.cluster_name, n.kind, n.events)"
					 "INSERT INTO hamonitor.event_count AS c"
					 "       (cluster_name, kind, backend_pid, events)"
					 "SELECT cluster_name, kind, 0, sum(events) FROM folded"
					 " GROUP BY cluster_name, kind"
					 "    ON CONFLICT (cluster_name, kind, backend_pid)"
					 "    DO UPDATE SET events = c.events + excluded.events",
					 false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute failed: %d", rc);
}

/*
 * HamonCatalogLoadView
 *		Reads a cluster's nodes as the worker last wrote them, for the
 *		decision's checks; the strings live in SPI's memory until
 *		SPI_finish.  The primary is primary_id's node.  Needs SPI connected.
 */
void
HamonCatalogLoadView(const char *cluster_name, int primary_id, int timeline,
				HamonClusterView *cv)
{
	Oid			types[] = {TEXTOID};
	Datum		values[1];
	uint64		i;

	values[0] = CStringGetTextDatum(cluster_name);
	if (SPI_execute_with_args("SELECT n.node_id, n.node_name, n.conninfo,"
							  " n.priority, n.maintenance, s.health, s.role,"
							  " s.sysid_mismatch, s.fenced, s.timeline,"
							  " s.current_lsn, s.receive_lsn, s.replay_lsn,"
							  " s.wal_receiver = 'streaming',"
							  " s.last_seen,"
							  " CASE WHEN s.health = 'down' THEN s.health_changed_at END,"
							  " s.wal_receiver, s.seen_streaming_at,"
							  " s.upstream_node_id, s.failure_class, s.alive_at"
							  " FROM hamonitor.node n JOIN hamonitor.node_state s"
							  " USING (node_id) WHERE n.cluster_name = $1"
							  " ORDER BY n.node_name",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read cluster \"%s\"", cluster_name);

	cv->nnodes = SPI_processed;
	cv->nodes = palloc0(sizeof(HamonNodeView) * Max(cv->nnodes, 1));
	cv->primary = -1;
	cv->timeline = timeline;
	/* the quorum rule is the probe worker's; the manual paths check lag */
	cv->sync_k = 0;
	cv->sync_degraded = false;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		HamonNodeView *v = &cv->nodes[i];
		bool		isnull;
		Datum		d;

#define GETD(col) (d = SPI_getbinval(tup, desc, (col), &isnull))
		v->node_id = DatumGetInt32(GETD(1));
		v->node_name = SPI_getvalue(tup, desc, 2);
		v->conninfo = SPI_getvalue(tup, desc, 3);
		v->priority = DatumGetInt32(GETD(4));
		v->maintenance = DatumGetBool(GETD(5));
		v->health = HamonHealthFromName(SPI_getvalue(tup, desc, 6));
		v->role = HamonRoleFromName(SPI_getvalue(tup, desc, 7));
		v->sysid_mismatch = DatumGetBool(GETD(8));
		v->fenced = DatumGetBool(GETD(9));
		GETD(10);
		v->timeline = isnull ? 0 : DatumGetInt32(d);
		GETD(11);
		v->current_lsn = isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
		GETD(12);
		v->receive_lsn = isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
		GETD(13);
		v->replay_lsn = isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
		v->streaming = DatumGetBool(GETD(14));
		GETD(15);
		v->last_seen = isnull ? 0 : DatumGetTimestampTz(d);
		GETD(16);
		v->down_since = isnull ? 0 : DatumGetTimestampTz(d);
		v->receiver = HamonReceiverFromName(SPI_getvalue(tup, desc, 17));
		GETD(18);
		v->seen_streaming_at = isnull ? 0 : DatumGetTimestampTz(d);
		GETD(19);
		v->upstream_id = isnull ? 0 : DatumGetInt32(d);
		v->failure_class = v->health == HAMON_HEALTH_DOWN ?
			HamonFailureClassFromName(SPI_getvalue(tup, desc, 20)) :
			HAMON_FAIL_NONE;
		GETD(21);
		v->alive_at = isnull ? 0 : DatumGetTimestampTz(d);
		v->alive_signal = (v->alive_at != 0);
#undef GETD
		if (v->node_id == primary_id)
			cv->primary = i;
	}
}

/*
 * HamonCatalogReadCluster
 *		The cluster's primary and timeline as the catalog says, without a
 *		lock.  ERROR (42704) if there is no such cluster.  Needs SPI.
 */
void
HamonCatalogReadCluster(const char *cluster_name, int *primary_id,
						int *timeline)
{
	Oid			types[] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(cluster_name);
	if (SPI_execute_with_args("SELECT primary_node_id, timeline FROM hamonitor.cluster"
							  " WHERE cluster_name = $1",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read cluster \"%s\"", cluster_name);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cluster \"%s\" does not exist", cluster_name)));
	*primary_id = hamon_getint(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*timeline = hamon_getint(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
}
