/*-------------------------------------------------------------------------
 *
 * hooks.h
 *		Event hooks: pg_hamonitor.event_command run in a worker of its own.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/hooks.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_HOOKS_H
#define HAMON_HOOKS_H

#include "fmgr.h"

extern PGDLLEXPORT void HamonHookMain(Datum main_arg);
extern void HamonRegisterHookWorker(void);

#endif							/* HAMON_HOOKS_H */
