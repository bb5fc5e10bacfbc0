/*-------------------------------------------------------------------------
 *
 * remote.h
 *		libpq inside the server: conninfo handling and non-blocking connects.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/remote.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_REMOTE_H
#define HAMON_REMOTE_H

#include "access/xlogdefs.h"
#include "libpq-fe.h"

extern void HamonCheckConninfo(const char *conninfo);
extern char *HamonMaskConninfo(const char *conninfo);
extern char *HamonApplicationName(const char *cluster_name,
								  const char *node_name);
extern PGconn *HamonConnectStart(const char *conninfo,
								 const char *application_name,
								 char **errmsg);
extern PGconn *HamonConnectStartAt(const char *conninfo,
								   const char *application_name,
								   const char *host, const char *hostaddr,
								   const char *port, bool startup_search_path,
								   char **errmsg);
extern void HamonDisconnect(PGconn *conn);
extern XLogRecPtr HamonParseLsn(const char *text);
extern PGconn *HamonConnectBlocking(const char *conninfo,
									const char *application_name,
									const char *node_name, int timeout_ms);
extern PGresult *HamonExec(PGconn *conn, const char *node_name,
						   const char *sql, int nparams,
						   const char *const *params, int timeout_ms);
extern PGresult *HamonExecTry(PGconn *conn, const char *node_name,
							  const char *sql, int nparams,
							  const char *const *params, int timeout_ms,
							  const char *tolerated, bool *hit);
extern PGresult *HamonExecShown(PGconn *conn, const char *node_name,
								const char *sql, const char *shown,
								int timeout_ms);
extern char *HamonReplaceHost(const char *node_name, const char *conninfo,
							  const char *from_conninfo);

#endif							/* HAMON_REMOTE_H */
