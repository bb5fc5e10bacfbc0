/*-------------------------------------------------------------------------
 *
 * functions.c
 *		SQL-callable helpers of the registry: validation, masking, triggers.
 *
 * The registry functions themselves are PL/pgSQL (sql/pg_hamonitor--*.sql)
 * so that each is one atomic statement over the catalog; what they need
 * from C lives here: libpq's own conninfo parser, the password mask used by
 * every view, the name rules, the trigger that wakes the workers when
 * the registry changes, and the check that the worker of a cluster can hold
 * a connection to one more node.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/functions.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>

#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "pg_hamonitor.h"
#include "remote.h"

PG_FUNCTION_INFO_V1(hamonitor_mask_conninfo);
PG_FUNCTION_INFO_V1(hamonitor_validate_conninfo);
PG_FUNCTION_INFO_V1(hamonitor_validate_name);
PG_FUNCTION_INFO_V1(hamonitor_node_changed);
PG_FUNCTION_INFO_V1(hamonitor_check_worker_capacity);

/*
 * HamonTextArg
 *		Argument n of a SQL function as a C string; ERROR (22004) naming
 *		what it is if it is NULL.
 */
char *
HamonTextArg(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* hamonitor.mask_conninfo(conninfo text) returns text */
Datum
hamonitor_mask_conninfo(PG_FUNCTION_ARGS)
{
	char	   *conninfo = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_TEXT_P(cstring_to_text(HamonMaskConninfo(conninfo)));
}

/* hamonitor.validate_conninfo(conninfo text): ERROR unless libpq parses it */
Datum
hamonitor_validate_conninfo(PG_FUNCTION_ARGS)
{
	char	   *conninfo = text_to_cstring(PG_GETARG_TEXT_PP(0));

	HamonCheckConninfo(conninfo);
	PG_RETURN_VOID();
}

/*
 * hamonitor.validate_name(name text, what text)
 *		ERROR unless name is a valid node or cluster name: 1 to 63 bytes of
 *		letters, digits, '_', '.' and '-'.  Such names fit application_name
 *		and slot names, and need no quoting anywhere.
 */
Datum
hamonitor_validate_name(PG_FUNCTION_ARGS)
{
	const char *what = PG_ARGISNULL(1) ? "name" :
		text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *name;
	const char *p;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s name must not be null", what)));

	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("%s name must not be empty", what)));
	if (strlen(name) > HAMON_NAME_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s name \"%s\" is too long", what, name),
				 errdetail("A %s name may be at most %d bytes long.",
						   what, HAMON_NAME_MAXLEN)));
	for (p = name; *p; p++)
	{
		if (!(isalnum((unsigned char) *p) && IS_HIGHBIT_SET(*p) == 0) &&
			*p != '_' && *p != '.' && *p != '-')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("%s name \"%s\" contains invalid character", what,
							name),
					 errhint("Names may contain only letters, digits, "
							 "underscores, dots and dashes.")));
	}
	PG_RETURN_VOID();
}

/*
 * hamonitor.node_changed(): statement trigger on hamonitor.node.  Once the
 * transaction commits, the probe workers reload the registry.
 */
Datum
hamonitor_node_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hamonitor.node_changed() must be called as a trigger")));

	HamonRegistryChanged();
	return PointerGetDatum(NULL);
}

/*
 * hamonitor.check_worker_capacity(cluster_name text)
 *		ERROR unless the probe worker of the cluster can hold a connection
 *		to one more node.  Called by register_node before it inserts.
 *
 * Without it a node beyond the worker's capacity is registered, and fails
 * every probe with "no file descriptor left", seen only in the worker's
 * log.  The worker is found by the workers' own rule
 * (HamonClusterWorker), and its capacity is what the worker can hold: see
 * HamonWorkerPeerCapacity for why a backend knows it.  With
 * pg_hamonitor.workers = 0 nothing probes, so nothing is checked.
 *
 * Registrations of clusters of one worker are serialized by an advisory
 * lock on the worker's index, held to the end of the transaction, so two
 * at once cannot both take the last place.
 *
 * The SQLSTATE is configuration_limit_exceeded (53400, of class 53,
 * insufficient_resources): the limit is a resource the installation
 * configures (max_files_per_process, the open-files limit,
 * pg_hamonitor.workers) and is lifted by raising them, as PostgreSQL's own
 * "too many background workers" is; program_limit_exceeded (54000) is for
 * limits built into the program, lifted only by a smaller request.  The
 * worker's WARNING for a registry already over the limit says 53400 too.
 */
Datum
hamonitor_check_worker_capacity(PG_FUNCTION_ARGS)
{
	char	   *cluster_name = HamonTextArg(fcinfo, 0, "cluster name");
	int			worker_index;
	int			capacity;
	int64		nnodes = 0;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	uint64		i;
	struct rlimit rlim;
	char		limit[32];

	if (hamon_workers <= 0)
		PG_RETURN_VOID();
	worker_index = HamonClusterWorker(cluster_name, hamon_workers);
	capacity = HamonWorkerPeerCapacity();

	SPI_connect();
	/*
	 * 1751215473: the registrations' own advisory class (the clusters' is
	 * ...471, the event-count fold's ...472)
	 */
	values[0] = Int32GetDatum(worker_index);
	if (SPI_execute_with_args("SELECT pg_catalog.pg_advisory_xact_lock(1751215473, $1)",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the registrations of pg_hamonitor worker %d",
			 worker_index);
	/* read after the lock: a registration that held it has committed */
	if (SPI_execute("SELECT cluster_name, count(*) FROM hamonitor.node"
					" GROUP BY cluster_name", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count the nodes of the registry");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		count;

		if (HamonClusterWorker(SPI_getvalue(tup, desc, 1), hamon_workers) !=
			worker_index)
			continue;
		count = SPI_getbinval(tup, desc, 2, &isnull);
		nnodes += isnull ? 0 : DatumGetInt64(count);
	}
	SPI_finish();

	if (nnodes + 1 <= capacity)
		PG_RETURN_VOID();

	if (getrlimit(RLIMIT_NOFILE, &rlim) == 0 && rlim.rlim_cur != RLIM_INFINITY)
		snprintf(limit, sizeof(limit), "%lu", (unsigned long) rlim.rlim_cur);
	else
		strlcpy(limit, "unlimited", sizeof(limit));
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("pg_hamonitor worker %d, which probes cluster \"%s\", has %lld nodes and can hold at most %d peer connections",
					worker_index, cluster_name, (long long) nnodes, capacity),
			 errdetail("Each peer connection takes a file descriptor. max_files_per_process (%d), cut to the open-files limit (%s), less the descriptors already open and a reserve, leaves %d (max_safe_fds); a process may hold a third of them, %d, as connections, and a probe worker's latch and wait sets take %d of those.",
					   max_files_per_process, limit, max_safe_fds,
					   max_safe_fds / 3, HAMON_WORKER_OWN_EXTERNAL_FDS),
			 errhint("Raise max_files_per_process and the open-files limit of the witness's OS user together (ulimit -n; LimitNOFILE= in systemd), or pg_hamonitor.workers, and restart the witness; see \"Sizing\" in the README.")));
	PG_RETURN_VOID();
}
