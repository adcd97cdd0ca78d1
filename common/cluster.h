/*
 * cluster.h - Redis Cluster routing under rtq_conn (redis+cluster:// URLs).
 *
 * The model (the Redis Cluster specification's client side):
 *   - The key space is 16384 slots (crc16.h); each slot is served by one
 *     primary. The slot map comes from CLUSTER SLOTS, asked of any node
 *     that answers: the current node first, then every known node, then
 *     the URL's seeds.
 *   - Each node gets an rtq_conn of its own, opened on first use, with the
 *     options (timeouts, keepalive, backoff) and the AUTH of the URL.
 *   - A command goes to the node of its key's slot: argv[1] for ordinary
 *     commands (SPUBLISH/SSUBSCRIBE's channel included), the first key of
 *     EVAL/EVALSHA/FCALL (and their _RO forms) when numkeys > 0. Keyless
 *     commands (PING, TIME, PUBLISH, SUBSCRIBE, MULTI, EXEC, UNWATCH...)
 *     go to the node the last keyed command went to, so a transaction
 *     stays on the node of its WATCHed keys. SCRIPT goes to every primary,
 *     so a script loaded once can run wherever its keys are.
 *   - MOVED slot host:port: the slot map is updated, a full refresh is due,
 *     and the command is sent again to that node (an empty host: the host
 *     of the node that replied, at that port). ASK slot host:port: ASKING
 *     then the command, once, to that node; the map is not changed.
 *     TRYAGAIN and CLUSTERDOWN: sent again after 25, 50, 100 ... 400 ms
 *     (TRYAGAIN: to the same node, after ASKING again if an ASK led
 *     there), at most RTQ__CLUSTER_MAX_WAITS times (about 1.2 s in all);
 *     CLUSTERDOWN also refreshes the map. At most RTQ__CLUSTER_MAX_HOPS
 *     redirections per command.
 *   - A node that cannot be reached, or a connection lost in the middle of
 *     a command, marks the map stale: the next command refreshes it first,
 *     so after a failover the promoted replica is found. A command whose
 *     connection broke after it was sent is never resent (it may have run):
 *     the caller gets RTQ_ECONN as from a single node.
 *   - Pipelines: each appended command is routed and buffered on its
 *     node's connection; replies are read back in append order, which is
 *     each node's own order. A redirected reply in a pipeline is resolved
 *     by running that command again on its own (MOVED and ASK mean it did
 *     not run), so the caller still gets one reply per command, in order.
 *     Except inside a MULTI: a command between MULTI and its EXEC (and the
 *     EXEC) gets the redirection as its reply (a MOVED updates the map),
 *     since run on its own it would be written outside the transaction,
 *     and EXEC then answers EXECABORT: nothing ran, and the caller may try
 *     the whole transaction again.
 *
 * Not thread-safe, like rtq_conn.
 */
#ifndef RTQ_CLUSTER_H
#define RTQ_CLUSTER_H

#include <stddef.h>

#include "conn.h"

#define RTQ__CLUSTER_MAX_NODES 64
#define RTQ__CLUSTER_MAX_HOPS 16
#define RTQ__CLUSTER_MAX_WAITS 6

typedef struct rtq__cluster rtq__cluster;

/* A router for the seeds of u (copied); connects nothing yet. NULL when
 * out of memory. */
rtq__cluster *rtq__cluster_new(const rtq_conn_options *o, const rtq_redis_url *u);
void rtq__cluster_free(rtq__cluster *cl);

/* Loads the slot map. 0, or RTQ_ECONN/RTQ_EREDIS/RTQ_ENOMEM with the
 * reason in rtq__cluster_errstr (e.g. no seed answered, or a seed is not
 * in cluster mode). */
int rtq__cluster_connect(rtq__cluster *cl);

/* rtq_conn_command, rtq_conn_append, rtq_conn_get_reply, rtq_conn_reconnect
 * and rtq_conn_drop of a cluster connection (same returns). */
int rtq__cluster_command(rtq__cluster *cl, const rtq_argv *a, redisReply **reply);
int rtq__cluster_append(rtq__cluster *cl, const rtq_argv *a);
int rtq__cluster_get_reply(rtq__cluster *cl, redisReply **reply);
int rtq__cluster_reconnect(rtq__cluster *cl);
void rtq__cluster_drop(rtq__cluster *cl);

/* Makes the node serving key[0..n) the current one (keyless commands and
 * rtq__cluster_ctx then use it) and connects it. Same returns as
 * rtq__cluster_reconnect. */
int rtq__cluster_route(rtq__cluster *cl, const void *key, size_t n);
/* The current node's live context, or NULL. Borrowed. */
redisContext *rtq__cluster_ctx(rtq__cluster *cl);
/* The node serving key[0..n) (any reachable node for key NULL), from the
 * slot map, refreshed first when stale. 0 or a connection error. */
int rtq__cluster_node_for_key(rtq__cluster *cl, const void *key, size_t n, rtq_redis_endpoint *out);
const char *rtq__cluster_errstr(const rtq__cluster *cl);

/* rtq_conn_primaries and rtq_conn_command_at of a cluster connection: the
 * nodes serving slots in the slot map (refreshed first when stale), sorted
 * by host then port; a command sent to one of them as it is, with no
 * redirection followed (SCAN: each primary's own keys). */
int rtq__cluster_primaries(rtq__cluster *cl, rtq_redis_endpoint *out, int max, int *n);
int rtq__cluster_command_at(rtq__cluster *cl, const rtq_redis_endpoint *ep, const rtq_argv *a,
                            redisReply **reply);

/*
 * The key a command is routed by (see the model above): *key and *n set
 * and 1, or 0 for a keyless command. Pure: exposed for the unit tests.
 */
int rtq__cluster_command_key(const rtq_argv *a, const char **key, size_t *n);

/* A redirection or retry reply: kind 'M' (MOVED), 'A' (ASK), 'T'
 * (TRYAGAIN), 'D' (CLUSTERDOWN), or 0 for any other reply. For M and A,
 * *slot and *to (host and port) are set; to->host is "" for "MOVED 1234
 * :7001" (a node that does not know its address, e.g. with
 * cluster-preferred-endpoint-type unknown-endpoint): the caller goes to
 * the host of the node that replied, at that port. Pure: for the unit
 * tests. */
int rtq__cluster_redirect(const redisReply *r, int *slot, rtq_redis_endpoint *to);

/* The primary serving slot in a CLUSTER SLOTS reply r, asked of a node at
 * asked_host (an entry's empty host means that one): 0 with *out set, or
 * -1 when no usable entry covers the slot. Pure. */
int rtq__cluster_slots_owner(const redisReply *r, int slot, const char *asked_host, rtq_redis_endpoint *out);

/* conn.c: a single-node connection to host:port with u's credentials and
 * db, not yet connected (the first command connects). */
int rtq__conn_new_node(const rtq_conn_options *o, const rtq_redis_url *u, const char *host, int port,
                       rtq_conn **out);

#endif
