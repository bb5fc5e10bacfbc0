/*-------------------------------------------------------------------------
 *
 * state.c
 *		From probe results to what the witness believes about each node.
 *
 * A probe result is a fact about one moment; a node's health, role and
 * failure count are what the witness concludes from the sequence of them.
 * This file holds that step and nothing else: no I/O, no catalog, so the
 * rules can be read (and tested) on their own.  Each change of belief
 * produces an event; the worker writes the events with the results.
 *
 * The rules:
 *	 - a successful probe makes a node "up" and sets its role from
 *	   pg_is_in_recovery(); a failed one makes it "down".  The decision
 *	   logic looks at how long and why (crash or orderly stop), not at a
 *	   single transition, so no extra hysteresis is added here;
 *	 - a node's last known timeline and LSNs survive its failures: the
 *	   decisions need the primary's last position after it is gone;
 *	 - each failure is classified (classify.c) and the class of the latest
 *	   one kept: the decision asks whether the latest contact showed the
 *	   postmaster alive.  An outage "had a sign of life" when one of its
 *	   failures showed the postmaster alive or stopping in order (57P01
 *	   administrator command, 57P02 crash-restart, "starting up", "shutting
 *	   down", too many connections, an authentication or other server
 *	   error), but not "unexpected postmaster exit", which is how a backend
 *	   reports its postmaster killed; alive_at is when it last did;
 *	 - a standby's WAL receiver is "hidden" when the probe sees its pid but
 *	   not its status (the role lacks pg_read_all_stats): that is not "not
 *	   streaming", and the decision treats it as unknown.  The last time a
 *	   standby was seen streaming is kept (and written to the catalog): only
 *	   a standby that streamed may vote that it lost the primary;
 *	 - a standby whose WAL receiver's sender host and port are those of
 *	   another registered node of its cluster (its conninfo, parsed) streams
 *	   from that node; the decision needs that to tell a cascading standby;
 *	 - the privilege check of each new session is compared with what the
 *	   witness knew: each grant newly missing is an event of its own, once.
 *	 - a cluster learns its system identifier from its first successful
 *	   probe; a node that reports another one is flagged, once, and the
 *	   flag holds until it reports the cluster's identifier again.
 *
 * Copyright (c) 2026, pg_hamonitor developers
 *
 * IDENTIFICATION
 *	  src/state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"

#include "state.h"

static const char *const health_names[] = {"unknown", "up", "down"};
static const char *const role_names[] = {"unknown", "primary", "standby"};
static const char *const receiver_names[] = {"unknown", "hidden", "none",
"not_streaming", "streaming"};

const char *
HamonHealthName(HamonHealth health)
{
	return health_names[health];
}

const char *
HamonRoleName(HamonRole role)
{
	return role_names[role];
}

HamonHealth
HamonHealthFromName(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(health_names); i++)
		if (name && strcmp(name, health_names[i]) == 0)
			return (HamonHealth) i;
	return HAMON_HEALTH_UNKNOWN;
}

HamonRole
HamonRoleFromName(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(role_names); i++)
		if (name && strcmp(name, role_names[i]) == 0)
			return (HamonRole) i;
	return HAMON_ROLE_UNKNOWN;
}

const char *
HamonReceiverName(HamonReceiver receiver)
{
	return receiver_names[receiver];
}

HamonReceiver
HamonReceiverFromName(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(receiver_names); i++)
		if (name && strcmp(name, receiver_names[i]) == 0)
			return (HamonReceiver) i;
	return HAMON_RECEIVER_UNKNOWN;
}

/* the node with that id in a list of HamonNode, or NULL */
HamonNode *
HamonFindNode(List *nodes, int node_id)
{
	ListCell   *lc;

	foreach(lc, nodes)
		if (((HamonNode *) lfirst(lc))->node_id == node_id)
			return (HamonNode *) lfirst(lc);
	return NULL;
}

/* appends an event about node to *events, in the current memory context */
void
HamonAddEvent(List **events, HamonNode *node, const char *kind, char *detail)
{
	HamonEvent *ev = palloc(sizeof(HamonEvent));

	ev->cluster_name = pstrdup(node->cluster_name);
	ev->node_name = pstrdup(node->node_name);
	ev->kind = pstrdup(kind);
	ev->detail = detail;
	*events = lappend(*events, ev);
}

/* the system identifier check of a successful probe */
static void
hamon_check_sysid(HamonNode *node, const HamonProbeResult *r, List **events)
{
	HamonCluster *cluster = node->cluster;
	bool		mismatch;

	if (!r->has_sysid)
		return;
	if (!cluster->has_sysid)
	{
		cluster->has_sysid = true;
		cluster->system_identifier = r->system_identifier;
		cluster->dirty = true;
	}
	mismatch = (r->system_identifier != cluster->system_identifier);
	if (mismatch && !node->sysid_mismatch)
		HamonAddEvent(events, node, "sysid_mismatch",
						psprintf("system identifier " UINT64_FORMAT
								 " differs from cluster's " UINT64_FORMAT
								 "; the node is not part of this cluster's decisions",
								 r->system_identifier,
								 cluster->system_identifier));
	else if (!mismatch && node->sysid_mismatch)
		HamonAddEvent(events, node, "sysid_match",
						psprintf("system identifier " UINT64_FORMAT
								 " now matches the cluster's",
								 r->system_identifier));
	node->sysid_mismatch = mismatch;
}

/*
 * Parses the node's registered address (host, hostaddr, port), once per
 * conninfo: a changed conninfo has another hash.
 */
static void
hamon_parse_address(HamonNode *node)
{
	uint32		h = hash_bytes((const unsigned char *) node->conninfo,
							   strlen(node->conninfo)) | 1;
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	char	   *err = NULL;

	if (h == node->addr_hash)
		return;
	node->addr_hash = h;
	node->addr_host[0] = '\0';
	node->addr_hostaddr[0] = '\0';
	node->addr_port[0] = '\0';
	opts = PQconninfoParse(node->conninfo, &err);
	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		return;
	}
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		if (strcmp(opt->keyword, "host") == 0)
			strlcpy(node->addr_host, opt->val, sizeof(node->addr_host));
		else if (strcmp(opt->keyword, "hostaddr") == 0)
			strlcpy(node->addr_hostaddr, opt->val, sizeof(node->addr_hostaddr));
		else if (strcmp(opt->keyword, "port") == 0)
			strlcpy(node->addr_port, opt->val, sizeof(node->addr_port));
	}
	PQconninfoFree(opts);
}

/* the n-th element (from 0) of a comma-separated list, or "" */
static void
hamon_list_item(const char *list, int n, char *out, size_t outlen)
{
	const char *p = list;
	const char *end;
	size_t		len;

	while (n-- > 0 && p != NULL)
	{
		p = strchr(p, ',');
		if (p != NULL)
			p++;
	}
	out[0] = '\0';
	if (p == NULL)
		return;
	end = strchr(p, ',');
	len = end ? (size_t) (end - p) : strlen(p);
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, p, len);
	out[len] = '\0';
}

/*
 * Whether host:port is one of the node's registered addresses.  libpq's
 * host lists ("h1,h2" with "p1,p2", or one port for all) are followed; a
 * name against an address is simply no match.
 */
static bool
hamon_address_matches(HamonNode *node, const char *host, int port)
{
	int			i;

	hamon_parse_address(node);
	for (i = 0; i < 16; i++)
	{
		char		h[256];
		char		a[64];
		char		p[64];

		hamon_list_item(node->addr_host, i, h, sizeof(h));
		hamon_list_item(node->addr_hostaddr, i, a, sizeof(a));
		if (h[0] == '\0' && a[0] == '\0')
			break;
		if (strchr(node->addr_port, ',') != NULL)
			hamon_list_item(node->addr_port, i, p, sizeof(p));
		else
			strlcpy(p, node->addr_port, sizeof(p));
		if (atoi(p[0] ? p : DEF_PGPORT_STR) != port)
			continue;
		if ((h[0] != '\0' && pg_strcasecmp(h, host) == 0) ||
			(a[0] != '\0' && strcmp(a, host) == 0))
			return true;
	}
	return false;
}

/* the registered node of the cluster that host:port is, or 0 */
static int
hamon_upstream_node(HamonNode *node, const char *host, int port)
{
	ListCell   *lc;

	if (host[0] == '\0' || port <= 0 || node->cluster == NULL)
		return 0;
	foreach(lc, node->cluster->members)
	{
		HamonNode  *other = (HamonNode *) lfirst(lc);

		if (other != node && hamon_address_matches(other, host, port))
			return other->node_id;
	}
	return 0;
}

/* what the probe of a standby says of its WAL receiver */
static HamonReceiver
hamon_receiver(const HamonProbeResult *r)
{
	if (!r->in_recovery)
		return HAMON_RECEIVER_UNKNOWN;
	if (r->wal_receiver_pid == 0)
		return HAMON_RECEIVER_NONE;
	if (r->wal_receiver_status[0] == '\0')
		return HAMON_RECEIVER_HIDDEN;
	if (strcmp(r->wal_receiver_status, "streaming") == 0)
		return HAMON_RECEIVER_STREAMING;
	return HAMON_RECEIVER_STOPPED;
}

/* the end of the line starting at p: its newline or the final NUL */
static const char *
hamon_line_end(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? nl : p + strlen(p);
}

/* whether line is one of the lines of text */
static bool
hamon_has_line(const char *text, const char *line, size_t len)
{
	const char *p = text;

	while (*p)
	{
		const char *nl = hamon_line_end(p);

		if ((size_t) (nl - p) == len && strncmp(p, line, len) == 0)
			return true;
		p = *nl ? nl + 1 : nl;
	}
	return false;
}

/*
 * The outcome of a session's privilege check: an event for each grant
 * newly missing (or granted since), and for a check that failed.
 */
static void
hamon_note_privileges(HamonNode *node, const HamonProbeResult *r,
					  List **events)
{
	const char *p;

	if (!r->privileges_checked)
		return;
	if (r->privilege_error[0] != '\0')
	{
		HamonAddEvent(events, node, "privilege_check_failed",
					  psprintf("could not check the grants of the witness's role: %s",
							   r->privilege_error));
		return;
	}
	for (p = r->missing_privileges; *p;)
	{
		const char *nl = hamon_line_end(p);
		size_t		len = nl - p;

		if (!hamon_has_line(node->missing_privileges, p, len))
			HamonAddEvent(events, node, "missing_privilege",
						  psprintf("the witness's role lacks %.*s",
								   (int) len, p));
		p = *nl ? nl + 1 : nl;
	}
	for (p = node->missing_privileges; *p;)
	{
		const char *nl = hamon_line_end(p);
		size_t		len = nl - p;

		if (!hamon_has_line(r->missing_privileges, p, len))
			HamonAddEvent(events, node, "privilege_granted",
						  psprintf("the witness's role now has %.*s",
								   (int) len, p));
		p = *nl ? nl + 1 : nl;
	}
	/* written with the probe (catalog.c) */
	strlcpy(node->missing_privileges, r->missing_privileges,
			sizeof(node->missing_privileges));
}

/*
 * The slot review (slots.c) runs when what it looks at changed: a node's
 * slots, its role, or the slot its WAL receiver asks for.  A hash of them
 * tells; a change marks the cluster.
 */
static void
hamon_note_slot_inputs(HamonNode *node, const HamonProbeResult *r)
{
	uint32		h = hash_bytes((const unsigned char *) r->primary_slot_name,
							   strlen(r->primary_slot_name));

	if (r->slots_json)
		h = hash_combine(h, hash_bytes((const unsigned char *) r->slots_json,
									   strlen(r->slots_json)));
	h = hash_combine(h, (uint32) node->role);
	node->has_slots = (r->slots_json != NULL);
	if (h != node->slots_hash)
	{
		node->slots_hash = h;
		node->cluster->slots_changed = true;
	}
}

/*
 * HamonApplyProbe
 *		Folds the node's finished probe into its health, role and failure
 *		count, appending an event (palloc'd in the current context) to
 *		*events for each change.  Returns true if the health changed.
 */
bool
HamonApplyProbe(HamonNode *node, List **events)
{
	const HamonProbeResult *r = &node->result;
	HamonHealth old_health = node->health;
	HamonRole	old_role = node->role;

	if (r->success)
	{
		HamonRole	role = r->in_recovery ? HAMON_ROLE_STANDBY : HAMON_ROLE_PRIMARY;

		node->consecutive_failures = 0;
		node->health = HAMON_HEALTH_UP;
		node->role = role;
		node->last_seen = r->probed_at;
		node->down_since = 0;
		node->alive_signal = false;
		node->alive_at = 0;
		node->failure_class = HAMON_FAIL_NONE;

		/*
		 * A standby's timeline is its WAL receiver's while it has one, else
		 * its last restartpoint's, which can be older than the timeline it
		 * was seen following (PostgreSQL 15 shows no replay timeline in
		 * SQL).  Right after a failover that made a second failover wait
		 * for the standbys' next restartpoint.  Within one session (the
		 * server neither restarted nor rebuilt since) a standby's timeline
		 * never goes back: the older one is taken for what it is, stale.
		 */
		if (r->in_recovery && old_role == HAMON_ROLE_STANDBY &&
			!node->new_session && r->timeline < node->timeline)
			node->result.timeline = node->timeline;
		node->new_session = false;
		node->timeline = r->timeline;
		node->current_lsn = r->current_lsn;
		node->receive_lsn = r->receive_lsn;
		node->replay_lsn = r->replay_lsn;
		node->receiver = hamon_receiver(r);
		node->streaming = (node->receiver == HAMON_RECEIVER_STREAMING);
		if (node->streaming)
			node->seen_streaming_at = r->probed_at;
		node->upstream_node_id = hamon_upstream_node(node, r->upstream_host,
													 r->upstream_port);
		node->read_only = r->read_only;
		hamon_note_slot_inputs(node, r);
		hamon_check_sysid(node, r, events);
		hamon_note_privileges(node, r, events);

		if (old_health != HAMON_HEALTH_UP)
			HamonAddEvent(events, node, "health_up",
							psprintf("%s -> up, role %s, timeline %d",
									 HamonHealthName(old_health),
									 HamonRoleName(role), r->timeline));
		if (old_role != HAMON_ROLE_UNKNOWN && old_role != role)
			HamonAddEvent(events, node, "role_change",
							psprintf("%s -> %s, timeline %d",
									 HamonRoleName(old_role),
									 HamonRoleName(role), r->timeline));
	}
	else
	{
		/* the role is kept: it is what the node was when last seen */
		node->consecutive_failures++;
		node->health = HAMON_HEALTH_DOWN;
		if (node->down_since == 0)
			node->down_since = r->probed_at;
		node->failure_class = r->failure_class;
		if (HamonFailureSignOfLife(r->failure_class))
		{
			node->alive_signal = true;
			node->alive_at = r->probed_at;
		}
		node->streaming = false;
		hamon_note_privileges(node, r, events);
		if (old_health != HAMON_HEALTH_DOWN)
			HamonAddEvent(events, node, "health_down",
							psprintf("%s -> down: %s (SQLSTATE %s, %s)",
									 HamonHealthName(old_health),
									 r->error, r->error_sqlstate,
									 HamonFailureClassName(r->failure_class)));
	}
	return node->health != old_health;
}
