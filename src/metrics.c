/*-------------------------------------------------------------------------
 *
 * metrics.c
 *		/metrics of the HTTP endpoint: Prometheus text exposition format.
 *
 * Every value comes from the catalog the probe workers write (the views
 * hamonitor.status and hamonitor.slots, the tables cluster and event), read
 * in the HTTP worker's transaction.  Names and units follow Prometheus's
 * conventions: seconds, bytes, counters ending in _total; labels cluster,
 * node, slot and kind.  Node, cluster and slot names can hold nothing a
 * label value must escape, but values are escaped all the same.
 *
 * A node whose last probe is stale (http.h, HAMON_FRESH_MS) is neither up
 * nor primary here either: the same rule as the health checks.
 *
 * Counters.  hamonitor_probes_total and hamonitor_probe_failures_total
 * are kept in shared memory by the probe workers, one increment per probe
 * result they fold (HamonCountProbe), and read here: exact, and reset only
 * when the postmaster restarts, as a counter of a restarted process is.
 * hamonitor_events_total and hamonitor_cluster_failovers_total come from
 * hamonitor.event_count, which a statement trigger on hamonitor.event keeps
 * as events are inserted (sql/pg_hamonitor--1.0--1.1.sql says why it is
 * keyed by backend): a scrape sums a few rows per cluster and kind instead
 * of counting the event table, and a DBA's DELETE of old events does not
 * make a counter go down.  HamonCatalogFoldEventCounts (catalog.c), run by the HTTP worker
 * before a scrape, keeps that table small.
 *
 * The families are table-driven: each query below gives its label columns
 * first, then one column per family.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "http.h"
#include "metrics.h"
#include "pg_hamonitor.h"

/* one metric family: its value is column "column" of its query */
typedef struct MetricsFamily
{
	const char *name;
	const char *type;
	const char *help;
	int			column;
} MetricsFamily;

/* a query, its label columns (1..nlabels) and the families it gives */
typedef struct MetricsQuery
{
	const char *sql;
	int			nlabels;
	const char *labels[3];
	int			nfamilies;
	MetricsFamily families[8];
} MetricsQuery;

/*
 * $1: HAMON_FRESH_MS().  A node whose last probe is older is neither up
 * nor primary, as in the health checks.
 */
static const MetricsQuery metrics_queries[] = {
	{
		"SELECT s.cluster_name, s.node_name,"
		"   (s.health = 'up' AND f.fresh)::int,"
		"   (s.role = 'primary' AND s.health = 'up' AND f.fresh"
		"    AND NOT s.fenced AND NOT s.sysid_mismatch"
		"    AND s.node_id = c.primary_node_id)::int,"
		"   round(s.lag_bytes),"
		"   extract(epoch FROM s.replay_lag),"
		"   extract(epoch FROM s.last_seen),"
		"   s.latency_ms / 1000.0,"
		"   s.fenced::int,"
		"   coalesce(s.split_brain, false)::int"
		"  FROM hamonitor.status s"
		"  JOIN hamonitor.cluster c USING (cluster_name),"
		"  LATERAL (SELECT coalesce(s.last_probe_at > clock_timestamp()"
		"             - make_interval(secs => $1 / 1000.0), false) AS fresh) f"
		" ORDER BY s.cluster_name, s.node_name",
		2, {"cluster", "node"},
		8, {
			{"hamonitor_node_up", "gauge",
			"1 if the witness's last probe of the node succeeded and is fresh, else 0.", 3},
			{"hamonitor_node_is_primary", "gauge",
			"1 if the node is up, fresh and the cluster's unfenced primary, else 0.", 4},
			{"hamonitor_node_lag_bytes", "gauge",
			"Standby: bytes of WAL it has yet to replay against its primary.", 5},
			{"hamonitor_node_replay_lag_seconds", "gauge",
			"Standby: 0 when it replayed everything it received, else the time since its last replayed transaction.", 6},
			{"hamonitor_node_last_seen_timestamp_seconds", "gauge",
			"Unix time of the node's last successful probe.", 7},
			{"hamonitor_node_probe_latency_seconds", "gauge",
			"Duration of the node's last probe.", 8},
			{"hamonitor_node_fenced", "gauge",
			"1 if the node is a stale primary the witness fenced, else 0.", 9},
			{"hamonitor_node_split_brain", "gauge",
			"1 if the node is one of two writable primaries of its cluster, else 0.", 10},
		}
	},
	{
		"SELECT cluster_name, node_name, slot_name, retained_bytes,"
		"       coalesce(active, false)::int"
		"  FROM hamonitor.slots"
		" ORDER BY cluster_name, node_name, slot_name",
		3, {"cluster", "node", "slot"},
		2, {
			{"hamonitor_slot_retained_bytes", "gauge",
			"Bytes of WAL the replication slot keeps on its node.", 4},
			{"hamonitor_slot_active", "gauge",
			"1 if a client uses the replication slot, else 0.", 5},
		}
	},
	{
		"SELECT c.cluster_name,"
		"       coalesce((SELECT sum(n.events) FROM hamonitor.event_count n"
		"                  WHERE n.cluster_name = c.cluster_name"
		"                    AND n.kind = 'promoted'), 0)"
		"  FROM hamonitor.cluster c ORDER BY 1",
		1, {"cluster"},
		1, {
			{"hamonitor_cluster_failovers_total", "counter",
			"Promotions of a standby in the cluster (automatic, manual or switchover).", 2},
		}
	},
	{
		"SELECT cluster_name, kind, sum(events) FROM hamonitor.event_count"
		" GROUP BY 1, 2 ORDER BY 1, 2",
		2, {"cluster", "kind"},
		1, {
			{"hamonitor_events_total", "counter",
			"Events recorded by the witness, by cluster and kind.", 3},
		}
	},
};

static void
metrics_label(StringInfo out, const char *name, const char *value, bool first)
{
	const char *p;

	appendStringInfo(out, "%s%s=\"", first ? "" : ",", name);
	for (p = value; *p; p++)
	{
		if (*p == '\\' || *p == '"')
			appendStringInfoChar(out, '\\');
		if (*p == '\n')
			appendStringInfoString(out, "\\n");
		else
			appendStringInfoChar(out, *p);
	}
	appendStringInfoChar(out, '"');
}

static void
metrics_family(StringInfo out, const char *name, const char *type,
			   const char *help)
{
	appendStringInfo(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
					 type);
}

/*
 * The family f of query q: one sample per row of the current SPI result
 * whose value column is not NULL.
 */
static void
metrics_samples(StringInfo out, const MetricsQuery *q, const MetricsFamily *f)
{
	uint64		row;
	int			i;

	metrics_family(out, f->name, f->type, f->help);
	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *value = SPI_getvalue(tup, desc, f->column);

		if (value == NULL)
			continue;
		appendStringInfoString(out, f->name);
		appendStringInfoChar(out, '{');
		for (i = 0; i < q->nlabels; i++)
			metrics_label(out, q->labels[i], SPI_getvalue(tup, desc, i + 1),
						  i == 0);
		appendStringInfo(out, "} %s\n", value);
	}
}

void
HamonMetricsText(StringInfo out)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	int			i;
	int			j;

	values[0] = Int32GetDatum(HAMON_FRESH_MS());
	for (i = 0; i < lengthof(metrics_queries); i++)
	{
		const MetricsQuery *q = &metrics_queries[i];
		int			rc = SPI_execute_with_args(q->sql, 1, types, values, NULL,
											   true, 0);

		if (rc != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_with_args failed: %d", rc);
		for (j = 0; j < q->nfamilies; j++)
			metrics_samples(out, q, &q->families[j]);
	}

	/* the probe workers' counters (pg_hamonitor.h) */
	metrics_family(out, "hamonitor_probes_total", "counter",
				   "Probe results of every node the witness's probe workers folded since the server started.");
	appendStringInfo(out, "hamonitor_probes_total " UINT64_FORMAT "\n",
					 pg_atomic_read_u64(&HamonShmem->probes_total));
	metrics_family(out, "hamonitor_probe_failures_total", "counter",
				   "Failed probes among hamonitor_probes_total.");
	appendStringInfo(out, "hamonitor_probe_failures_total " UINT64_FORMAT "\n",
					 pg_atomic_read_u64(&HamonShmem->probe_failures_total));
}
