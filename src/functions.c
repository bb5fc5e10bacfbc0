/*-------------------------------------------------------------------------
 *
 * functions.c
 *		SQL-callable helpers of the registry: validation, masking, triggers.
 *
 * The registry functions themselves are PL/pgSQL (sql/pg_hamonitor--*.sql)
 * so that each is one atomic statement over the catalog; what they need
 * from C lives here: libpq's own conninfo parser, the password mask used by
 * every view, the name rules, and the trigger that wakes the workers when
 * the registry changes.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/functions.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "pg_hamonitor.h"
#include "remote.h"

PG_FUNCTION_INFO_V1(hamonitor_mask_conninfo);
PG_FUNCTION_INFO_V1(hamonitor_validate_conninfo);
PG_FUNCTION_INFO_V1(hamonitor_validate_name);
PG_FUNCTION_INFO_V1(hamonitor_node_changed);

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
