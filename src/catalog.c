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
#include "commands/async.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"

#ifndef JSONBOID
#define JSONBOID 3802
#endif

static SPIPlanPtr plan_probe_ok = NULL;
static SPIPlanPtr plan_probe_failed = NULL;
static SPIPlanPtr plan_history = NULL;
static SPIPlanPtr plan_cluster_sysid = NULL;
static SPIPlanPtr plan_event = NULL;
static SPIPlanPtr plan_purge = NULL;

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
		ereport(WARNING,
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

static char *
hamon_getstring(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);
}

static Datum
hamon_getdatum(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	return SPI_getbinval(tup, desc, col, isnull);
}

/*
 * HamonCatalogLoadNodes
 *		Reads the registry (with each node's stored health, so a restarted
 *		worker does not announce every node anew) for the clusters this
 *		worker owns: those whose name hashes to its index.  Returns a List
 *		of HamonNode palloc'd in callercxt, with the cluster pointer unset
 *		and the cluster's known system identifier in result.  Runs inside HamonRunInTransaction.
 */
List *
HamonCatalogLoadNodes(int worker_index, int nworkers, MemoryContext callercxt)
{
	List	   *nodes = NIL;
	uint64		i;
	int			rc;

	rc = SPI_execute("SELECT n.node_id, n.cluster_name, n.node_name, n.conninfo,"
					 " n.priority, n.maintenance, s.health, s.role,"
					 " s.consecutive_failures, s.sysid_mismatch,"
					 " c.system_identifier"
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
		char	   *cluster = hamon_getstring(tup, desc, 2);
		HamonNode  *node;
		MemoryContext spicxt;
		bool		isnull;
		Datum		d;

		if (hash_bytes((const unsigned char *) cluster, strlen(cluster)) %
			nworkers != (uint32) worker_index)
			continue;

		spicxt = MemoryContextSwitchTo(callercxt);
		node = palloc0(sizeof(HamonNode));
		node->node_id = DatumGetInt32(hamon_getdatum(tup, desc, 1, &isnull));
		strlcpy(node->cluster_name, cluster, sizeof(node->cluster_name));
		strlcpy(node->node_name, hamon_getstring(tup, desc, 3),
				sizeof(node->node_name));
		node->conninfo = hamon_getstring(tup, desc, 4);
		node->priority = DatumGetInt32(hamon_getdatum(tup, desc, 5, &isnull));
		node->maintenance = DatumGetBool(hamon_getdatum(tup, desc, 6, &isnull));
		node->health = HamonHealthFromName(hamon_getstring(tup, desc, 7));
		node->role = HamonRoleFromName(hamon_getstring(tup, desc, 8));
		d = hamon_getdatum(tup, desc, 9, &isnull);
		node->consecutive_failures = isnull ? 0 : DatumGetInt32(d);
		d = hamon_getdatum(tup, desc, 10, &isnull);
		node->sysid_mismatch = isnull ? false : DatumGetBool(d);
		d = hamon_getdatum(tup, desc, 11, &isnull);
		/* stash the cluster's identifier in the result until linked */
		node->result.has_sysid = !isnull;
		node->result.system_identifier = isnull ? 0 : (uint64) DatumGetInt64(d);
		node->sock = PGINVALID_SOCKET;
		node->reg_sock = PGINVALID_SOCKET;
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

/* state and history of one node's successful probe */
static void
hamon_write_probe_ok(HamonNode *node)
{
	static Oid	types[] = {INT4OID, TEXTOID, TEXTOID, BOOLOID, INT8OID,
		INT4OID, INT4OID, TIMESTAMPTZOID, FLOAT8OID, PG_LSNOID, PG_LSNOID,
		PG_LSNOID, PG_LSNOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT4OID,
	TIMESTAMPTZOID, JSONBOID};
	HamonProbeResult *r = &node->result;
	Datum		values[lengthof(types)];
	char		nulls[lengthof(types) + 1];
	SPIPlanPtr	plan;

	memset(nulls, ' ', sizeof(nulls));
	plan = hamon_prepare(&plan_probe_ok,
						 "UPDATE hamonitor.node_state SET"
						 " health_changed_at = CASE WHEN health = $2"
						 "   THEN health_changed_at ELSE $8 END,"
						 " health = $2, role = $3, sysid_mismatch = $4,"
						 " system_identifier = $5, timeline = $6,"
						 " server_version = $7, last_probe_at = $8,"
						 " last_seen = $8, latency_ms = $9,"
						 " consecutive_failures = 0,"
						 " current_lsn = $10, flush_lsn = $11,"
						 " receive_lsn = $12, replay_lsn = $13,"
						 " last_replay_at = $14, wal_receiver_status = $15,"
						 " upstream_host = $16, upstream_port = $17,"
						 " last_wal_receipt_at = $18, slots = $19"
						 " WHERE node_id = $1",
						 lengthof(types), types);

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
	values[9] = LSN_DATUM(r->current_lsn, 9);
	values[10] = LSN_DATUM(r->flush_lsn, 10);
	values[11] = LSN_DATUM(r->receive_lsn, 11);
	values[12] = LSN_DATUM(r->replay_lsn, 12);
	values[13] = TS_DATUM(r->last_replay_at, 13);
	values[14] = TEXT_DATUM(r->wal_receiver_status, 14);
	values[15] = TEXT_DATUM(r->upstream_host, 15);
	values[16] = Int32GetDatum(r->upstream_port);
	nulls[16] = r->upstream_port == 0 ? 'n' : ' ';
	values[17] = TS_DATUM(r->last_wal_receipt_at, 17);
	values[18] = r->slots_json ?
		DirectFunctionCall1(jsonb_in, CStringGetDatum(r->slots_json)) : 0;
	nulls[18] = r->slots_json ? ' ' : 'n';
	hamon_execute(plan, values, nulls, SPI_OK_UPDATE);
}

/* state of one node's failed probe: the last known LSNs are kept */
static void
hamon_write_probe_failed(HamonNode *node)
{
	static Oid	types[] = {INT4OID, TEXTOID, TIMESTAMPTZOID, INT4OID,
	TEXTOID, TEXTOID};
	HamonProbeResult *r = &node->result;
	Datum		values[lengthof(types)];
	char		nulls[lengthof(types) + 1];
	SPIPlanPtr	plan;

	memset(nulls, ' ', sizeof(nulls));
	plan = hamon_prepare(&plan_probe_failed,
						 "UPDATE hamonitor.node_state SET"
						 " health_changed_at = CASE WHEN health = $2"
						 "   THEN health_changed_at ELSE $3 END,"
						 " health = $2, last_probe_at = $3,"
						 " consecutive_failures = $4,"
						 " last_error_sqlstate = $5, last_error = $6"
						 " WHERE node_id = $1",
						 lengthof(types), types);
	values[0] = Int32GetDatum(node->node_id);
	values[1] = CStringGetTextDatum(HamonHealthName(node->health));
	values[2] = TimestampTzGetDatum(r->probed_at);
	values[3] = Int32GetDatum(node->consecutive_failures);
	values[4] = CStringGetTextDatum(r->error_sqlstate);
	values[5] = CStringGetTextDatum(r->error);
	hamon_execute(plan, values, nulls, SPI_OK_UPDATE);
}

/* one row of probe history, for success and failure alike */
static void
hamon_write_history(HamonNode *node)
{
	static Oid	types[] = {INT4OID, TIMESTAMPTZOID, BOOLOID, FLOAT8OID,
		TEXTOID, INT4OID, PG_LSNOID, PG_LSNOID, PG_LSNOID, PG_LSNOID,
	TIMESTAMPTZOID, TEXTOID, TEXTOID};
	HamonProbeResult *r = &node->result;
	Datum		values[lengthof(types)];
	char		nulls[lengthof(types) + 1];
	SPIPlanPtr	plan;

	memset(nulls, ' ', sizeof(nulls));
	plan = hamon_prepare(&plan_history,
						 "INSERT INTO hamonitor.probe_history"
						 " (node_id, probed_at, success, latency_ms, role,"
						 "  timeline, current_lsn, flush_lsn, receive_lsn,"
						 "  replay_lsn, last_replay_at, error_sqlstate, error)"
						 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
						 "  $11, $12, $13)",
						 lengthof(types), types);
	values[0] = Int32GetDatum(node->node_id);
	values[1] = TimestampTzGetDatum(r->probed_at);
	values[2] = BoolGetDatum(r->success);
	values[3] = Float8GetDatum(r->latency_ms);
	nulls[3] = r->success ? ' ' : 'n';
	values[4] = CStringGetTextDatum(r->success ? HamonRoleName(node->role) : "");
	nulls[4] = r->success ? ' ' : 'n';
	values[5] = Int32GetDatum(r->timeline);
	nulls[5] = r->success ? ' ' : 'n';
	values[6] = LSN_DATUM(r->current_lsn, 6);
	values[7] = LSN_DATUM(r->flush_lsn, 7);
	values[8] = LSN_DATUM(r->receive_lsn, 8);
	values[9] = LSN_DATUM(r->replay_lsn, 9);
	values[10] = TS_DATUM(r->last_replay_at, 10);
	values[11] = TEXT_DATUM(r->error_sqlstate, 11);
	values[12] = TEXT_DATUM(r->error, 12);
	hamon_execute(plan, values, nulls, SPI_OK_INSERT);
}

/* records a cluster's system identifier, learnt from its first probe */
static void
hamon_write_cluster_sysid(HamonCluster *cluster)
{
	static Oid	types[] = {TEXTOID, INT8OID};
	Datum		values[2];
	SPIPlanPtr	plan;

	plan = hamon_prepare(&plan_cluster_sysid,
						 "UPDATE hamonitor.cluster SET system_identifier = $2"
						 " WHERE cluster_name = $1 AND system_identifier IS NULL",
						 2, types);
	values[0] = CStringGetTextDatum(cluster->name);
	values[1] = Int64GetDatum((int64) cluster->system_identifier);
	hamon_execute(plan, values, NULL, SPI_OK_UPDATE);
}

/*
 * HamonCatalogWriteEvent
 *		Inserts an event and queues a NOTIFY hamonitor_event carrying its id,
 *		delivered when the transaction commits.  The event is also logged.
 */
static void
hamon_write_event(HamonEvent *ev)
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
	values[0] = CStringGetTextDatum(ev->cluster_name);
	values[1] = CStringGetTextDatum(ev->node_name ? ev->node_name : "");
	nulls[1] = ev->node_name ? ' ' : 'n';
	values[2] = CStringGetTextDatum(ev->kind);
	values[3] = CStringGetTextDatum(ev->detail ? ev->detail : "");
	nulls[3] = ev->detail ? ' ' : 'n';
	hamon_execute(plan, values, nulls, SPI_OK_INSERT_RETURNING);

	event_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	Async_Notify(HAMON_EVENT_CHANNEL, psprintf(INT64_FORMAT, event_id));

	ereport(LOG,
			(errmsg("pg_hamonitor: %s of node \"%s\" in cluster \"%s\"%s%s",
					ev->kind, ev->node_name ? ev->node_name : "",
					ev->cluster_name, ev->detail ? ": " : "",
					ev->detail ? ev->detail : "")));
}

/*
 * HamonCatalogWriteProbes
 *		Writes the finished probes of nodes (state and history), the
 *		system identifiers clusters have learnt, and events.
 *		Runs inside HamonRunInTransaction.
 */
void
HamonCatalogWriteProbes(List *nodes, List *clusters, List *events)
{
	ListCell   *lc;

	foreach(lc, clusters)
		hamon_write_cluster_sysid((HamonCluster *) lfirst(lc));

	foreach(lc, nodes)
	{
		HamonNode  *node = (HamonNode *) lfirst(lc);

		if (node->result.success)
			hamon_write_probe_ok(node);
		else
			hamon_write_probe_failed(node);
		hamon_write_history(node);
	}

	foreach(lc, events)
		hamon_write_event((HamonEvent *) lfirst(lc));
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
	static Oid	types[] = {INT4OID, INT4OID};
	Datum		values[2];
	SPIPlanPtr	plan;

	plan = hamon_prepare(&plan_purge,
						 "DELETE FROM hamonitor.probe_history WHERE ctid = ANY"
						 " (ARRAY(SELECT ctid FROM hamonitor.probe_history"
						 "   WHERE probed_at < now() - $1 * interval '1 minute'"
						 "   LIMIT $2))",
						 2, types);
	values[0] = Int32GetDatum(hamon_history_retention);
	values[1] = Int32GetDatum(hamon_history_purge_batch);
	hamon_execute(plan, values, NULL, SPI_OK_DELETE);
	return SPI_processed;
}
