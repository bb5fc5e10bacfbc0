/*-------------------------------------------------------------------------
 *
 * classify.c
 *		What a failed contact with a peer says about its postmaster.
 *
 * The failover decision must tell a dead primary from one whose postmaster
 * is alive (restarting after a crash, starting up, shutting down, refusing
 * the witness): promoting over a live postmaster makes two primaries.  This
 * file turns what a failure left behind, a SQLSTATE and a message, into a
 * class; it is a pure function, tested through
 * hamonitor.classify_failure().
 *
 * The SQLSTATE decides wherever the server sent one: on a query, and on
 * the FATAL or WARNING a server sends before it closes a session (57P01
 * shutdown, 57P02 crash-restart).  Two cases leave only text:
 *	 - a failed connection attempt: libpq gives no SQLSTATE for the FATAL
 *	   the server sent during startup ("the database system is starting
 *	   up"), only its message in PQerrorMessage.  The server writes that
 *	   message in its own lc_messages, before any option of ours applies;
 *	 - 57P01 serves both an orderly shutdown ("administrator command") and
 *	   a backend whose postmaster died ("unexpected postmaster exit"); the
 *	   witness asks for lc_messages = C in its session where the peer role
 *	   may set it (probe.c).
 * A message in another language is not recognised: a failed connection
 * then counts as "unreachable" (no evidence either way), and a 57P01 as a
 * shutdown (restart_grace applies).  The README says what that changes.
 *
 * The caller passes sqlstate NULL when the server sent none (libpq's own
 * failures, the witness's deadlines): then only the text is looked at.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/classify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "classify.h"

PG_FUNCTION_INFO_V1(hamonitor_classify_failure);

static const char *const class_names[] = {
	"none",
	"unreachable",
	"timeout",
	"postmaster_gone",
	"shutdown",
	"crash_restart",
	"starting",
	"stopping",
	"too_many_connections",
	"auth",
	"server_error",
	"other"
};

StaticAssertDecl(lengthof(class_names) == HAMON_FAIL_OTHER + 1,
				 "class_names must match HamonFailureClass");

/* texts of a failed connection, in the order they are tried */
typedef struct HamonTextRule
{
	const char *text;
	HamonFailureClass cls;
} HamonTextRule;

static const HamonTextRule text_rules[] = {
	/* the witness's own deadlines, and libpq's connect_timeout */
	{"probe timed out", HAMON_FAIL_TIMEOUT},
	{"timeout expired", HAMON_FAIL_TIMEOUT},
	/* the witness could not even try */
	{"invalid connection string", HAMON_FAIL_OTHER},
	{"no file descriptor left", HAMON_FAIL_OTHER},
	{"out of memory", HAMON_FAIL_OTHER},
	/* a backend's goodbye, when it came as text only */
	{"unexpected postmaster exit", HAMON_FAIL_POSTMASTER_GONE},
	{"crash of another server process", HAMON_FAIL_CRASH_RESTART},
	{"due to administrator command", HAMON_FAIL_SHUTDOWN},
	{"due to immediate shutdown command", HAMON_FAIL_SHUTDOWN},
	/* the postmaster answered the connection and refused it (57P03) */
	{"the database system is starting up", HAMON_FAIL_STARTING},
	{"the database system is not yet accepting connections", HAMON_FAIL_STARTING},
	{"the database system is not accepting connections", HAMON_FAIL_STARTING},
	{"the database system is in recovery mode", HAMON_FAIL_STARTING},
	{"the database system is shutting down", HAMON_FAIL_STOPPING},
	/* 53300 */
	{"sorry, too many clients already", HAMON_FAIL_TOO_MANY},
	{"remaining connection slots are reserved", HAMON_FAIL_TOO_MANY},
	{"too many connections for", HAMON_FAIL_TOO_MANY},
	/* 28000, 28P01, 42501: it answered, and refused the witness */
	{"password authentication failed", HAMON_FAIL_AUTH},
	{"authentication failed for user", HAMON_FAIL_AUTH},
	{"no pg_hba.conf entry", HAMON_FAIL_AUTH},
	{"pg_hba.conf rejects connection", HAMON_FAIL_AUTH},
	{"is not permitted to log in", HAMON_FAIL_AUTH},
	{"permission denied for database", HAMON_FAIL_AUTH},
	{"no password supplied", HAMON_FAIL_AUTH},
	{"does not exist", HAMON_FAIL_SERVER_ERROR}
};

/*
 * HamonClassifyFailure
 *		The class of a failure: sqlstate is the one the server sent, or
 *		NULL if it sent none; message is the error's text.
 */
HamonFailureClass
HamonClassifyFailure(const char *sqlstate, const char *message)
{
	int			i;

	if (message == NULL)
		message = "";

	if (sqlstate != NULL && sqlstate[0] != '\0')
	{
		if (strcmp(sqlstate, "57P01") == 0)
			return strstr(message, "postmaster exit") != NULL ?
				HAMON_FAIL_POSTMASTER_GONE : HAMON_FAIL_SHUTDOWN;
		if (strcmp(sqlstate, "57P02") == 0)
			return HAMON_FAIL_CRASH_RESTART;
		if (strcmp(sqlstate, "57P03") == 0)
			return strstr(message, "shutting down") != NULL ?
				HAMON_FAIL_STOPPING : HAMON_FAIL_STARTING;
		if (strcmp(sqlstate, "53300") == 0)
			return HAMON_FAIL_TOO_MANY;
		if (strncmp(sqlstate, "28", 2) == 0 || strcmp(sqlstate, "42501") == 0)
			return HAMON_FAIL_AUTH;
		/* whatever else it said, a server said it */
		return HAMON_FAIL_SERVER_ERROR;
	}

	for (i = 0; i < lengthof(text_rules); i++)
		if (strstr(message, text_rules[i].text) != NULL)
			return text_rules[i].cls;
	/* refused, reset, no route, no such host, or a text we cannot read */
	return HAMON_FAIL_UNREACHABLE;
}

const char *
HamonFailureClassName(HamonFailureClass cls)
{
	if ((int) cls < 0 || cls > HAMON_FAIL_OTHER)
		return "other";
	return class_names[cls];
}

HamonFailureClass
HamonFailureClassFromName(const char *name)
{
	int			i;

	if (name == NULL)
		return HAMON_FAIL_NONE;
	for (i = 0; i < lengthof(class_names); i++)
		if (strcmp(name, class_names[i]) == 0)
			return (HamonFailureClass) i;
	return HAMON_FAIL_OTHER;
}

/*
 * Whether a failure of this class shows the postmaster alive at that
 * moment: something on its side answered (a backend, or the postmaster
 * refusing a connection), or it announced a crash-restart.
 */
bool
HamonFailureSaysAlive(HamonFailureClass cls)
{
	switch (cls)
	{
		case HAMON_FAIL_CRASH_RESTART:
		case HAMON_FAIL_STARTING:
		case HAMON_FAIL_STOPPING:
		case HAMON_FAIL_TOO_MANY:
		case HAMON_FAIL_AUTH:
		case HAMON_FAIL_SERVER_ERROR:
			return true;
		default:
			return false;
	}
}

/*
 * Whether the failure is a sign that the postmaster lived at that moment,
 * or stopped in order (and may well be restarted): restart_grace, not
 * failover_timeout, counts from such a failure.
 */
bool
HamonFailureSignOfLife(HamonFailureClass cls)
{
	return cls == HAMON_FAIL_SHUTDOWN || HamonFailureSaysAlive(cls);
}

/*
 * hamonitor.classify_failure(sqlstate, message): the class of a failure,
 * and whether it says the postmaster is alive; for tests and for reading
 * last_error.
 */
Datum
hamonitor_classify_failure(PG_FUNCTION_ARGS)
{
	char	   *sqlstate = PG_ARGISNULL(0) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *message = PG_ARGISNULL(1) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (sqlstate != NULL && strlen(sqlstate) != 5)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid SQLSTATE \"%s\"", sqlstate),
				 errdetail("A SQLSTATE has five characters; pass NULL when the server sent none.")));
	PG_RETURN_TEXT_P(cstring_to_text(HamonFailureClassName(HamonClassifyFailure(sqlstate,
																				 message))));
}
