/*-------------------------------------------------------------------------
 *
 * slots.c
 *		Replication slots on the peers: create, drop, advance, manage.
 *
 * The SQL functions hamonitor.create_slot(), drop_slot() and advance_slot()
 * act on one node over its own short connection; the worker uses the same
 * code to keep one physical slot per standby on each cluster's primary
 * (the "managed" slots, recorded in hamonitor.managed_slot so that a slot
 * the witness did not create is never dropped) and to point each standby's
 * primary_slot_name at its slot.
 *
 * Every value reaches the peer as a query parameter, except in ALTER SYSTEM,
 * which takes none: there the slot name has been validated as PostgreSQL
 * validates slot names ([a-z0-9_], at most NAMEDATALEN - 1 bytes) and is
 * quoted with PQescapeLiteral besides.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/slots.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "action.h"
#include "catalog.h"
#include "probe.h"
#include "remote.h"
#include "slots.h"
#include "state.h"

PG_FUNCTION_INFO_V1(hamonitor_create_slot);
PG_FUNCTION_INFO_V1(hamonitor_drop_slot);
PG_FUNCTION_INFO_V1(hamonitor_advance_slot);

#define HAMON_SLOT_TIMEOUT_MS 10000
#define HAMON_SLOT_RETRY_FIRST_MS 100

/*
 * HamonValidateSlotName
 *		ERROR (42602/42622) unless name is a valid replication slot name, by
 *		the rules of the server's ReplicationSlotValidateName.
 */
void
HamonValidateSlotName(const char *name)
{
	const char *p;

	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("replication slot name \"%s\" is too short", name)));
	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("replication slot name \"%s\" is too long", name)));
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("replication slot name \"%s\" contains invalid character",
							name),
					 errhint("Replication slot names may only contain lower case letters, numbers, and the underscore character.")));
}

/* the slot's type and plugin, or false if the node has no such slot */
static bool
hamon_slot_lookup(PGconn *conn, const HamonTarget *t, const char *slot_name,
				  char **type, char **plugin, int *active_pid)
{
	const char *params[1] = {slot_name};
	PGresult   *res;
	bool		found;

	res = HamonExec(conn, t->node_name,
					"SELECT slot_type, plugin, active_pid"
					" FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
					1, params, HAMON_SLOT_TIMEOUT_MS);
	found = PQntuples(res) > 0;
	if (found)
	{
		if (type)
			*type = pstrdup(PQgetvalue(res, 0, 0));
		if (plugin)
			*plugin = PQgetisnull(res, 0, 1) ? NULL : pstrdup(PQgetvalue(res, 0, 1));
		if (active_pid)
			*active_pid = PQgetisnull(res, 0, 2) ? 0 : atoi(PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	return found;
}

/* what HamonSlotCreate needs and returns */
typedef struct HamonCreateStep
{
	const char *slot_name;
	bool		logical;
	const char *plugin;
	bool		created;
} HamonCreateStep;

static void
hamon_slot_create_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	HamonCreateStep *s = (HamonCreateStep *) arg;
	char	   *type;
	char	   *have_plugin;

	if (hamon_slot_lookup(conn, t, s->slot_name, &type, &have_plugin, NULL))
	{
		if (strcmp(type, s->logical ? "logical" : "physical") != 0 ||
			(s->logical && strcmp(have_plugin ? have_plugin : "", s->plugin) != 0))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("replication slot \"%s\" already exists on node \"%s\" with another type or plugin",
							s->slot_name, t->node_name),
					 errdetail("It is a %s slot%s%s.", type,
							   have_plugin ? " with plugin " : "",
							   have_plugin ? have_plugin : "")));
	}
	else
	{
		const char *params[2] = {s->slot_name, s->plugin};

		PQclear(HamonExec(conn, t->node_name, s->logical ?
						  "SELECT pg_catalog.pg_create_logical_replication_slot($1, $2)" :
						  "SELECT pg_catalog.pg_create_physical_replication_slot($1, true)",
						  s->logical ? 2 : 1, params, HAMON_SLOT_TIMEOUT_MS));
		s->created = true;
	}
}

/*
 * HamonSlotCreate
 *		Creates a slot unless one of the same type and plugin exists (then
 *		returns false: nothing to do).  A slot of another kind under that
 *		name is an ERROR (42710).  Physical slots reserve WAL at once.
 */
bool
HamonSlotCreate(const HamonTarget *t, const char *slot_name, bool logical,
				const char *plugin)
{
	HamonCreateStep s = {slot_name, logical, plugin, false};

	HamonWithPeer(t, hamon_slot_create_on, &s);
	return s.created;
}

/* what HamonSlotDrop needs and returns */
typedef struct HamonDropStep
{
	const char *slot_name;
	int			tries;
	bool		dropped;
} HamonDropStep;

static void
hamon_slot_drop_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	HamonDropStep *s = (HamonDropStep *) arg;
	int			attempt;
	long		wait_ms = HAMON_SLOT_RETRY_FIRST_MS;

	for (attempt = 1;; attempt++)
	{
		const char *params[1] = {s->slot_name};
		PGresult   *res;
		int			active_pid;
		bool		in_use;

		if (!hamon_slot_lookup(conn, t, s->slot_name, NULL, NULL, &active_pid))
			break;
		/* the parameter form cannot fail on a quoting mistake */
		res = HamonExecTry(conn, t->node_name,
						   "SELECT pg_catalog.pg_drop_replication_slot($1)",
						   1, params, HAMON_SLOT_TIMEOUT_MS, "55006",
						   &in_use);
		if (!in_use)
		{
			PQclear(res);
			s->dropped = true;
			break;
		}
		if (attempt >= s->tries)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("replication slot \"%s\" on node \"%s\" is still active after %d tries",
							s->slot_name, t->node_name, attempt),
					 errhint("The slot is active for PID %d; stop its consumer, or raise pg_hamonitor.slot_retry_count.",
							 active_pid)));
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, HAMON_WAIT_EVENT);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		wait_ms *= 2;
	}
}

/*
 * HamonSlotDrop
 *		Drops a slot; returns false if there was none.  A slot still in use
 *		(the peer answers 55006) is tried again after 100 ms, then doubling,
 *		tries times in all; then ERROR 55006 naming the PID that holds it.
 */
bool
HamonSlotDrop(const HamonTarget *t, const char *slot_name, int tries)
{
	HamonDropStep s = {slot_name, tries, false};

	HamonWithPeer(t, hamon_slot_drop_on, &s);
	return s.dropped;
}

/* what HamonSlotAdvance needs and returns */
typedef struct HamonAdvanceStep
{
	const char *slot_name;
	XLogRecPtr	lsn;
	XLogRecPtr	result;
} HamonAdvanceStep;

static void
hamon_slot_advance_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	HamonAdvanceStep *s = (HamonAdvanceStep *) arg;
	char		target[32];
	const char *params[2] = {s->slot_name, target};
	PGresult   *res;
	XLogRecPtr	current;
	XLogRecPtr	node_end;

	snprintf(target, sizeof(target), "%X/%X", LSN_FORMAT_ARGS(s->lsn));
	res = HamonExec(conn, t->node_name,
					"SELECT coalesce(CASE WHEN slot_type = 'logical'"
					"  THEN confirmed_flush_lsn END, restart_lsn)::text,"
					" CASE WHEN pg_catalog.pg_is_in_recovery()"
					"  THEN pg_catalog.pg_last_wal_replay_lsn()"
					"  ELSE pg_catalog.pg_current_wal_insert_lsn() END::text"
					" FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
					1, params, HAMON_SLOT_TIMEOUT_MS);
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("replication slot \"%s\" does not exist on node \"%s\"",
						s->slot_name, t->node_name)));
	}
	current = HamonParseLsn(PQgetisnull(res, 0, 0) ? NULL :
							PQgetvalue(res, 0, 0));
	node_end = HamonParseLsn(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (s->lsn > node_end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot advance replication slot \"%s\" to %X/%X",
						s->slot_name, LSN_FORMAT_ARGS(s->lsn)),
				 errdetail("Node \"%s\" has WAL only up to %X/%X.",
						   t->node_name, LSN_FORMAT_ARGS(node_end))));
	if (!XLogRecPtrIsInvalid(current) && s->lsn < current)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot move replication slot \"%s\" backwards", s->slot_name),
				 errdetail("The slot is at %X/%X; the target is %X/%X.",
						   LSN_FORMAT_ARGS(current), LSN_FORMAT_ARGS(s->lsn))));

	res = HamonExec(conn, t->node_name,
					"SELECT end_lsn::text FROM pg_catalog.pg_replication_slot_advance($1, $2::pg_lsn)",
					2, params, HAMON_SLOT_TIMEOUT_MS);
	s->result = HamonParseLsn(PQgetvalue(res, 0, 0));
	PQclear(res);
}

/*
 * HamonSlotAdvance
 *		Moves a slot forward to lsn with pg_replication_slot_advance and
 *		returns where it is now.  ERROR 42704 if there is no such slot,
 *		22023 if lsn is beyond the node's WAL or behind the slot.
 */
XLogRecPtr
HamonSlotAdvance(const HamonTarget *t, const char *slot_name, XLogRecPtr lsn)
{
	HamonAdvanceStep s = {slot_name, lsn, InvalidXLogRecPtr};

	HamonWithPeer(t, hamon_slot_advance_on, &s);
	return s.result;
}

/*
 * HamonSetPrimarySlotName
 *		Points a standby's WAL receiver at its slot: ALTER SYSTEM SET
 *		primary_slot_name (a validated name, quoted) and a reload.
 */
static void
hamon_set_slot_name_on(PGconn *conn, const HamonTarget *t, void *arg)
{
	const char *slot_name = (const char *) arg;
	char	   *literal = PQescapeLiteral(conn, slot_name, strlen(slot_name));
	char	   *sql;

	if (literal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not quote a slot name for node \"%s\"",
						t->node_name)));
	sql = psprintf("ALTER SYSTEM SET primary_slot_name = %s", literal);
	PQfreemem(literal);
	PQclear(HamonExec(conn, t->node_name, sql, 0, NULL,
					  HAMON_SLOT_TIMEOUT_MS));
	PQclear(HamonExec(conn, t->node_name,
					  "SELECT pg_catalog.pg_reload_conf()", 0, NULL,
					  HAMON_SLOT_TIMEOUT_MS));
}

void
HamonSetPrimarySlotName(const HamonTarget *t, const char *slot_name)
{
	HamonValidateSlotName(slot_name);
	HamonWithPeer(t, hamon_set_slot_name_on, (void *) slot_name);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * --------------------------------------------------------------------- */

/*
 * Finds a registered node; fills t (strings palloc'd in the caller's
 * context).  ERROR 42704 if there is none.
 */
static void
hamon_slot_target(const char *node_name, const char *cluster_name,
				  HamonTarget *t)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	MemoryContext cxt = CurrentMemoryContext;
	char	   *conninfo = NULL;

	values[0] = CStringGetTextDatum(node_name);
	values[1] = CStringGetTextDatum(cluster_name);
	SPI_connect();
	if (SPI_execute_with_args("SELECT conninfo FROM hamonitor.node"
							  " WHERE node_name = $1 AND cluster_name = $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up node \"%s\"", node_name);
	if (SPI_processed > 0)
		conninfo = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1));
	SPI_finish();
	if (conninfo == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node \"%s\" does not exist in cluster \"%s\"",
						node_name, cluster_name)));
	t->node_name = node_name;
	t->cluster_name = cluster_name;
	t->conninfo = conninfo;
}

/* hamonitor.create_slot(node_name, slot_name, slot_type, plugin, cluster_name) */
Datum
hamonitor_create_slot(PG_FUNCTION_ARGS)
{
	char	   *node_name = HamonTextArg(fcinfo, 0, "node name");
	char	   *slot_name = HamonTextArg(fcinfo, 1, "slot name");
	char	   *slot_type = HamonTextArg(fcinfo, 2, "slot type");
	char	   *plugin = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *cluster_name = HamonTextArg(fcinfo, 4, "cluster name");
	bool		logical;
	HamonTarget t;

	HamonValidateSlotName(slot_name);
	if (strcmp(slot_type, "logical") == 0)
		logical = true;
	else if (strcmp(slot_type, "physical") == 0)
		logical = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid slot type \"%s\"", slot_type),
				 errhint("The slot type is \"physical\" or \"logical\".")));
	if (logical && plugin == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a logical slot needs an output plugin")));
	if (!logical && plugin != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a physical slot takes no output plugin")));

	hamon_slot_target(node_name, cluster_name, &t);
	PG_RETURN_TEXT_P(cstring_to_text(HamonSlotCreate(&t, slot_name, logical,
													 plugin) ?
									 "created" : "exists"));
}

/* hamonitor.drop_slot(node_name, slot_name, cluster_name) */
Datum
hamonitor_drop_slot(PG_FUNCTION_ARGS)
{
	char	   *node_name = HamonTextArg(fcinfo, 0, "node name");
	char	   *slot_name = HamonTextArg(fcinfo, 1, "slot name");
	char	   *cluster_name = HamonTextArg(fcinfo, 2, "cluster name");
	HamonTarget t;

	HamonValidateSlotName(slot_name);
	hamon_slot_target(node_name, cluster_name, &t);
	PG_RETURN_TEXT_P(cstring_to_text(HamonSlotDrop(&t, slot_name,
												   hamon_slot_retry_count) ?
									 "dropped" : "absent"));
}

/* hamonitor.advance_slot(node_name, slot_name, lsn, cluster_name) */
Datum
hamonitor_advance_slot(PG_FUNCTION_ARGS)
{
	char	   *node_name = HamonTextArg(fcinfo, 0, "node name");
	char	   *slot_name = HamonTextArg(fcinfo, 1, "slot name");
	XLogRecPtr	lsn;
	char	   *cluster_name = HamonTextArg(fcinfo, 3, "cluster name");
	HamonTarget t;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target LSN must not be null")));
	lsn = PG_GETARG_LSN(2);
	HamonValidateSlotName(slot_name);
	hamon_slot_target(node_name, cluster_name, &t);
	PG_RETURN_LSN(HamonSlotAdvance(&t, slot_name, lsn));
}

/* ---------------------------------------------------------------------
 * Managed standby slots and alarms (the worker)
 * --------------------------------------------------------------------- */

/*
 * A cluster's slots are reviewed when a member's slots, role or slot
 * setting changed, and anyway this often (for the time-based alarms)
 */
#define HAMON_SLOT_REVIEW_MS 10000
/* but not more often than this */
#define HAMON_SLOT_REVIEW_MIN_MS 500
/* primary_slot_name is set at most this often on one standby */
#define HAMON_SLOT_SET_RETRY_MS 10000

typedef struct HamonSlotReview
{
	HamonCluster *cluster;
	List	   *nodes;
} HamonSlotReview;

static void
hamon_target_of(HamonNode *node, HamonTarget *t)
{
	t->cluster_name = node->cluster_name;
	t->node_name = node->node_name;
	t->conninfo = node->conninfo;
}

/* the steps run through HamonTry */
typedef struct HamonSlotStep
{
	HamonTarget target;
	const char *slot_name;
	bool		changed;
} HamonSlotStep;

static void
hamon_slot_step_create(void *arg)
{
	HamonSlotStep *s = (HamonSlotStep *) arg;

	s->changed = HamonSlotCreate(&s->target, s->slot_name, false, NULL);
}

static void
hamon_slot_step_drop(void *arg)
{
	HamonSlotStep *s = (HamonSlotStep *) arg;

	/* one try: an active slot is tried again at the next review */
	s->changed = HamonSlotDrop(&s->target, s->slot_name, 1);
}

static void
hamon_slot_step_set(void *arg)
{
	HamonSlotStep *s = (HamonSlotStep *) arg;

	HamonSetPrimarySlotName(&s->target, s->slot_name);
}

/* records (insert) or forgets a slot the witness made on node on_node_id */
static void
hamon_managed_row(const char *cluster_name, int on_node_id,
				  const char *slot_name, const char *node_name, bool insert)
{
	Oid			types[4] = {TEXTOID, INT4OID, TEXTOID, TEXTOID};
	Datum		values[4];

	values[0] = CStringGetTextDatum(cluster_name);
	values[1] = Int32GetDatum(on_node_id);
	values[2] = CStringGetTextDatum(slot_name);
	values[3] = CStringGetTextDatum(node_name ? node_name : "");
	if (SPI_execute_with_args(insert ?
							  "INSERT INTO hamonitor.managed_slot"
							  " (cluster_name, on_node_id, slot_name, node_name)"
							  " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING" :
							  "DELETE FROM hamonitor.managed_slot"
							  " WHERE cluster_name = $1 AND on_node_id = $2"
							  " AND slot_name = $3",
							  insert ? 4 : 3, types, values, NULL, false, 0) < 0)
		elog(ERROR, "could not record managed slot \"%s\"", slot_name);
}

/*
 * Creates a managed slot on the primary for the node and records it.
 * Returns the error message, or NULL.
 */
static char *
hamon_create_managed(const char *cluster_name, const HamonTarget *primary,
					 int primary_node_id, const char *slot_name,
					 const char *for_node)
{
	HamonSlotStep step;
	char	   *err;

	step.target = *primary;
	step.slot_name = slot_name;
	step.changed = false;
	if (!HamonTry(hamon_slot_step_create, &step, &err))
		return err;
	if (step.changed)
	{
		hamon_managed_row(cluster_name, primary_node_id, slot_name, for_node,
						  true);
		HamonCatalogWriteEvent(cluster_name, primary->node_name, "slot_created",
							   psprintf("managed slot \"%s\" for standby \"%s\"",
										slot_name, for_node));
	}
	return NULL;
}

static void
hamon_review_slots_txn(void *arg)
{
	HamonSlotReview *review = (HamonSlotReview *) arg;
	const char *cluster_name = review->cluster->name;
	Oid			types[3] = {TEXTOID, INTERVALOID, INT8OID};
	Datum		values[3];
	SPITupleTable *actions;
	uint64		nactions;
	uint64		i;

	values[0] = CStringGetTextDatum(cluster_name);
	values[1] = DirectFunctionCall3(interval_in,
									CStringGetDatum(psprintf("%d seconds",
															 hamon_slot_inactive_alert)),
									ObjectIdGetDatum(InvalidOid),
									Int32GetDatum(-1));
	values[2] = Int64GetDatum((int64) hamon_slot_retained_alert * 1024 * 1024);
	if (SPI_execute_with_args("SELECT hamonitor.review_slots($1, $2, $3)",
							  3, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not review the slots of cluster \"%s\"", cluster_name);

	if (!hamon_manage_standby_slots)
		return;

	/*
	 * From here on slots are created and dropped on the peers: the rows that
	 * record them must not be lost to the worker's lock_timeout.
	 */
	if (SPI_execute("SET LOCAL lock_timeout = 0", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not set lock_timeout");
	if (SPI_execute_with_args("SELECT action, node_id, slot_name"
							  " FROM hamonitor.slot_actions($1)",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not plan the slots of cluster \"%s\"", cluster_name);
	actions = SPI_tuptable;
	nactions = SPI_processed;

	for (i = 0; i < nactions; i++)
	{
		HeapTuple	tup = actions->vals[i];
		char	   *action = SPI_getvalue(tup, actions->tupdesc, 1);
		bool		isnull;
		int			node_id = DatumGetInt32(SPI_getbinval(tup, actions->tupdesc,
														  2, &isnull));
		char	   *slot_name = SPI_getvalue(tup, actions->tupdesc, 3);
		HamonNode  *node = HamonFindNode(review->nodes, node_id);
		HamonSlotStep step;
		char	   *err;

		if (node == NULL)
			continue;
		/* what this step changes there is read at the node's next probe */
		HamonProbeRereadSlots(node);
		hamon_target_of(node, &step.target);
		step.slot_name = slot_name;
		step.changed = false;

		if (strcmp(action, "create") == 0)
		{
			/* the slot is named after the node it serves */
			Oid			t1[2] = {TEXTOID, TEXTOID};
			Datum		v1[2];
			char	   *for_node = NULL;

			v1[0] = CStringGetTextDatum(cluster_name);
			v1[1] = CStringGetTextDatum(slot_name);
			if (SPI_execute_with_args("SELECT node_name FROM hamonitor.node"
									  " WHERE cluster_name = $1"
									  " AND slot_name = $2",
									  2, t1, v1, NULL, true, 1) == SPI_OK_SELECT &&
				SPI_processed > 0)
				for_node = SPI_getvalue(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1);
			err = hamon_create_managed(cluster_name, &step.target, node_id,
									   slot_name, for_node ? for_node : "?");
			if (err)
				ereport(LOG,
						(errmsg("pg_hamonitor could not create slot \"%s\" on node \"%s\": %s",
								slot_name, node->node_name, err)));
		}
		else if (strcmp(action, "drop") == 0)
		{
			if (HamonTry(hamon_slot_step_drop, &step, &err))
			{
				hamon_managed_row(cluster_name, node_id, slot_name, NULL, false);
				if (step.changed)
					HamonCatalogWriteEvent(cluster_name, node->node_name,
										   "slot_dropped",
										   psprintf("managed slot \"%s\": no registered standby of this primary needs it",
													slot_name));
			}
		}
		else if (strcmp(action, "set_primary_slot_name") == 0)
		{
			TimestampTz now = GetCurrentTimestamp();

			if (node->slot_set_at != 0 &&
				now - node->slot_set_at < HAMON_SLOT_SET_RETRY_MS * INT64CONST(1000))
				continue;
			node->slot_set_at = now;
			if (HamonTry(hamon_slot_step_set, &step, &err))
				HamonCatalogWriteEvent(cluster_name, node->node_name,
									   "primary_slot_name_set",
									   psprintf("streams through slot \"%s\"",
												slot_name));
			else
				HamonCatalogWriteEvent(cluster_name, node->node_name,
									   "primary_slot_name_failed", err);
		}
	}
}

/*
 * HamonReviewSlots
 *		When a member's slots changed (at most every 0.5 s), and every 10 s
 *		anyway, per cluster: refreshes slot alarms, and, with
 *		pg_hamonitor.manage_standby_slots, creates, drops and assigns the
 *		managed standby slots.  Runs its own transaction.
 */
void
HamonReviewSlots(HamonCluster *cluster, List *nodes)
{
	TimestampTz now = GetCurrentTimestamp();
	HamonSlotReview review;

	/* nothing to alarm about nor to manage: skip the transaction */
	if (!cluster->slots_changed &&
		(list_length(nodes) < 2 || !hamon_manage_standby_slots))
	{
		ListCell   *lc;
		bool		any_slots = false;

		foreach(lc, nodes)
			any_slots |= ((HamonNode *) lfirst(lc))->has_slots;
		if (!any_slots)
			return;
	}
	if (now < cluster->next_slot_review &&
		(!cluster->slots_changed ||
		 now < cluster->next_slot_review -
		 (HAMON_SLOT_REVIEW_MS - HAMON_SLOT_REVIEW_MIN_MS) * INT64CONST(1000)))
		return;
	cluster->slots_changed = false;
	cluster->next_slot_review = TimestampTzPlusMilliseconds(now,
															HAMON_SLOT_REVIEW_MS);
	review.cluster = cluster;
	review.nodes = nodes;
	(void) HamonRunInTransaction(hamon_review_slots_txn, &review,
								 "review replication slots");
}

/*
 * HamonCreateManagedSlots
 *		Right after a promotion, before the other standbys are repointed:
 *		creates on the new primary the slot of every other node of the
 *		cluster but the old primary (which must be rejoined before it can
 *		stream), so none of them falls off the WAL it still needs.  Physical
 *		slots reserve from the new primary's last checkpoint, which holds the
 *		WAL of any standby that can follow it at all.  Needs SPI connected.
 */
void
HamonCreateManagedSlots(const char *cluster_name, const HamonTarget *primary,
						int primary_node_id)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	SPITupleTable *rows;
	uint64		nrows;
	uint64		i;

	if (!hamon_manage_standby_slots)
		return;
	values[0] = CStringGetTextDatum(cluster_name);
	values[1] = Int32GetDatum(primary_node_id);
	if (SPI_execute_with_args("SELECT n.node_name, n.slot_name"
							  " FROM hamonitor.node n JOIN hamonitor.node_state s USING (node_id)"
							  " WHERE n.cluster_name = $1 AND n.node_id <> $2"
							  " AND NOT s.sysid_mismatch AND s.role <> 'primary'"
							  " ORDER BY 1",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the standbys of cluster \"%s\"", cluster_name);
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (i = 0; i < nrows; i++)
	{
		char	   *node_name = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
		char	   *slot_name = SPI_getvalue(rows->vals[i], rows->tupdesc, 2);
		char	   *err = hamon_create_managed(cluster_name, primary,
											   primary_node_id, slot_name,
											   node_name);

		if (err)
			HamonCatalogWriteEvent(cluster_name, primary->node_name,
								   "slot_create_failed",
								   psprintf("managed slot \"%s\" for \"%s\": %s",
											slot_name, node_name, err));
	}
}
