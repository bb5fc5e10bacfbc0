/*-------------------------------------------------------------------------
 *
 * uri.h
 *		Addresses of registered nodes for clients: connection URIs, hooks.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/uri.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_URI_H
#define HAMON_URI_H

extern void HamonConninfoAddress(const char *conninfo, char **host,
								 char **port);

#endif							/* HAMON_URI_H */
