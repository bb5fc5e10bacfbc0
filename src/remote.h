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

#include "libpq-fe.h"

extern void HamonCheckConninfo(const char *conninfo);
extern char *HamonMaskConninfo(const char *conninfo);
extern char *HamonApplicationName(const char *cluster_name,
								  const char *node_name);
extern PGconn *HamonConnectStart(const char *conninfo,
								 const char *application_name,
								 char **errmsg);
extern void HamonDisconnect(PGconn *conn);

#endif							/* HAMON_REMOTE_H */
