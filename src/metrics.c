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
 * The witness-wide probe counters are kept by this process: each scrape
 * adds the probe_history rows probed since the last one, up to two seconds
 * ago (the worker writes its results in batches, a rolled-back batch is
 * written again later).  They start at zero when this process starts, as
 * a counter of any restarted process does; the history table alone could
 * not give them, its purge would make them go down.
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
#include "utils/timestamp.h"

#include "http.h"
#include "metrics.h"
#include "pg_hamonitor.h"

/* history rows younger than this may not be written yet */
#define METRICS_SETTLE_MS	2000

static int64 probes_total = 0;
static int64 probe_failures_total = 0;
static TimestampTz counted_until = 0;

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
 * One sample per row of the current SPI result whose column valcol is not
 * NULL; labels are the columns 1..nlabels, named by labels[].
 */
static void
metrics_samples(StringInfo out, const char *name, const char *const *labels,
				int nlabels, int valcol)
{
	uint64		row;
	int			i;

	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *value = SPI_getvalue(tup, desc, valcol);

		if (value == NULL)
			continue;
		appendStringInfoString(out, name);
		if (nlabels > 0)
		{
			appendStringInfoChar(out, '{');
			for (i = 0; i < nlabels; i++)
				metrics_label(out, labels[i], SPI_getvalue(tup, desc, i + 1),
							  i == 0);
			appendStringInfoChar(out, '}');
		}
		appendStringInfo(out, " %s\n", value);
	}
}

static void
metrics_query(const char *sql, int nargs, Oid *types, Datum *values)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL,
										   true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %d", rc);
}

void
HamonMetricsText(StringInfo out)
{
	static const char *const node_labels[] = {"cluster", "node"};
	static const char *const slot_labels[] = {"cluster", "node", "slot"};
	static const char *const cluster_labels[] = {"cluster"};
	static const char *const event_labels[] = {"cluster", "kind"};
	Oid			types[2];
	Datum		values[2];
	TimestampTz until;

	/* ---- nodes ---- */
	types[0] = INT4OID;
	values[0] = Int32GetDatum(HAMON_FRESH_MS());
	metrics_query("SELECT s.cluster_name, s.node_name,"
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
				  1, types, values);
	metrics_family(out, "hamonitor_node_up", "gauge",
				   "1 if the witness's last probe of the node succeeded and is fresh, else 0.");
	metrics_samples(out, "hamonitor_node_up", node_labels, 2, 3);
	metrics_family(out, "hamonitor_node_is_primary", "gauge",
				   "1 if the node is up, fresh and the cluster's unfenced primary, else 0.");
	metrics_samples(out, "hamonitor_node_is_primary", node_labels, 2, 4);
	metrics_family(out, "hamonitor_node_lag_bytes", "gauge",
				   "Standby: bytes of WAL it has yet to replay against its primary.");
	metrics_samples(out, "hamonitor_node_lag_bytes", node_labels, 2, 5);
	metrics_family(out, "hamonitor_node_replay_lag_seconds", "gauge",
				   "Standby: 0 when it replayed everything it received, else the time since its last replayed transaction.");
	metrics_samples(out, "hamonitor_node_replay_lag_seconds", node_labels, 2, 6);
	metrics_family(out, "hamonitor_node_last_seen_timestamp_seconds", "gauge",
				   "Unix time of the node's last successful probe.");
	metrics_samples(out, "hamonitor_node_last_seen_timestamp_seconds",
					node_labels, 2, 7);
	metrics_family(out, "hamonitor_node_probe_latency_seconds", "gauge",
				   "Duration of the node's last probe.");
	metrics_samples(out, "hamonitor_node_probe_latency_seconds", node_labels,
					2, 8);
	metrics_family(out, "hamonitor_node_fenced", "gauge",
				   "1 if the node is a stale primary the witness fenced, else 0.");
	metrics_samples(out, "hamonitor_node_fenced", node_labels, 2, 9);
	metrics_family(out, "hamonitor_node_split_brain", "gauge",
				   "1 if the node is one of two writable primaries of its cluster, else 0.");
	metrics_samples(out, "hamonitor_node_split_brain", node_labels, 2, 10);

	/* ---- slots ---- */
	metrics_query("SELECT cluster_name, node_name, slot_name, retained_bytes,"
				  "       coalesce(active, false)::int"
				  "  FROM hamonitor.slots"
				  " ORDER BY cluster_name, node_name, slot_name",
				  0, NULL, NULL);
	metrics_family(out, "hamonitor_slot_retained_bytes", "gauge",
				   "Bytes of WAL the replication slot keeps on its node.");
	metrics_samples(out, "hamonitor_slot_retained_bytes", slot_labels, 3, 4);
	metrics_family(out, "hamonitor_slot_active", "gauge",
				   "1 if a client uses the replication slot, else 0.");
	metrics_samples(out, "hamonitor_slot_active", slot_labels, 3, 5);

	/* ---- clusters and events ---- */
	metrics_query("SELECT c.cluster_name,"
				  "       (SELECT count(*) FROM hamonitor.event e"
				  "         WHERE e.cluster_name = c.cluster_name"
				  "           AND e.kind = 'promoted')"
				  "  FROM hamonitor.cluster c ORDER BY 1",
				  0, NULL, NULL);
	metrics_family(out, "hamonitor_cluster_failovers_total", "counter",
				   "Promotions of a standby in the cluster (automatic, manual or switchover).");
	metrics_samples(out, "hamonitor_cluster_failovers_total", cluster_labels,
					1, 2);
	metrics_query("SELECT cluster_name, kind, count(*) FROM hamonitor.event"
				  " GROUP BY 1, 2 ORDER BY 1, 2",
				  0, NULL, NULL);
	metrics_family(out, "hamonitor_events_total", "counter",
				   "Events recorded by the witness, by cluster and kind.");
	metrics_samples(out, "hamonitor_events_total", event_labels, 2, 3);

	/* ---- the witness's probes ---- */
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										-METRICS_SETTLE_MS);
	if (counted_until == 0)
		counted_until = until;
	else if (until > counted_until)
	{
		types[0] = TIMESTAMPTZOID;
		values[0] = TimestampTzGetDatum(counted_until);
		types[1] = TIMESTAMPTZOID;
		values[1] = TimestampTzGetDatum(until);
		metrics_query("SELECT count(*), count(*) FILTER (WHERE NOT success)"
					  "  FROM hamonitor.probe_history"
					  " WHERE probed_at > $1 AND probed_at <= $2",
					  2, types, values);
		probes_total += strtoi64(SPI_getvalue(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1),
								 NULL, 10);
		probe_failures_total += strtoi64(SPI_getvalue(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2),
										 NULL, 10);
		counted_until = until;
	}
	metrics_family(out, "hamonitor_probes_total", "counter",
				   "Probes of every node written by the witness since this HTTP worker started.");
	appendStringInfo(out, "hamonitor_probes_total " INT64_FORMAT "\n",
					 probes_total);
	metrics_family(out, "hamonitor_probe_failures_total", "counter",
				   "Failed probes among hamonitor_probes_total.");
	appendStringInfo(out, "hamonitor_probe_failures_total " INT64_FORMAT "\n",
					 probe_failures_total);
}
