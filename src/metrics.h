/*-------------------------------------------------------------------------
 *
 * metrics.h
 *		Prometheus text exposition of the witness's state.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/metrics.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HAMON_METRICS_H
#define HAMON_METRICS_H

#include "lib/stringinfo.h"

/* needs a transaction with SPI connected; appends to out */
extern void HamonMetricsText(StringInfo out);
/* needs a transaction with SPI connected, on a writable witness */

#endif							/* HAMON_METRICS_H */
