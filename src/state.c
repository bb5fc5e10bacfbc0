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
 *	 - an outage "says the postmaster lives" when the session ended with an
 *	   orderly shutdown (57P01, but not "unexpected postmaster exit", which
 *	   is how a backend reports its postmaster killed), a crash-restart
 *	   (57P02), or a reconnect refused because the server is starting or
 *	   stopping (57P03);
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

/* whether a failure shows the node's postmaster is alive (see above) */
static bool
hamon_alive_signal(const HamonProbeResult *r)
{
	if (strcmp(r->error_sqlstate, "57P02") == 0 ||
		strcmp(r->error_sqlstate, "57P03") == 0)
		return true;
	return strcmp(r->error_sqlstate, "57P01") == 0 &&
		strstr(r->error, "postmaster exit") == NULL;
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
		node->timeline = r->timeline;
		node->current_lsn = r->current_lsn;
		node->receive_lsn = r->receive_lsn;
		node->replay_lsn = r->replay_lsn;
		node->streaming = (strcmp(r->wal_receiver_status, "streaming") == 0);
		node->read_only = r->read_only;
		hamon_note_slot_inputs(node, r);
		hamon_check_sysid(node, r, events);

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
		if (hamon_alive_signal(r))
			node->alive_signal = true;
		node->streaming = false;
		if (old_health != HAMON_HEALTH_DOWN)
			HamonAddEvent(events, node, "health_down",
							psprintf("%s -> down: %s (SQLSTATE %s)",
									 HamonHealthName(old_health),
									 r->error, r->error_sqlstate));
	}
	return node->health != old_health;
}
