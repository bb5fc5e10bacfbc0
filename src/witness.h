/*-------------------------------------------------------------------------
 *
 * witness.h
 *		Witness redundancy: a standby witness that takes over by itself, and
 *		a returning witness that knows it was superseded.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/witness.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_WITNESS_H
#define HAMON_WITNESS_H

#include "postgres.h"

/* settings (pg_hamonitor.c) */
extern bool hamon_witness_takeover;
extern int	hamon_witness_takeover_timeout;
extern bool hamon_witness_synchronous;

extern Size HamonWitnessShmemSize(void);
extern void HamonWitnessShmemInit(void);
extern void HamonRegisterWitnessWorker(void);
extern PGDLLEXPORT void HamonWitnessMain(Datum main_arg);

extern bool HamonWitnessMayAct(void);
extern char *HamonWitnessStamp(void);

#endif							/* HAMON_WITNESS_H */
