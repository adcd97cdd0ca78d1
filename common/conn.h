/*
 * conn.h - Redis URLs and blocking connections with timeouts.
 *
 * URLs:  redis://[user:password@]host[:port][/db]
 *        redis://[:password@]host...           (password only: AUTH pass)
 *        unix:///path/to/redis.sock[?db=N]
 *        redis+cluster://[user:password@]host:port[,host:port...][/0]
 *                       any node of a Redis Cluster as a seed (cluster.h)
 *        redis-sentinel://[user:password@]host[:port][,host[:port]...]/MASTER[/db]
 *                       [?sentinel_password=P[&sentinel_user=U]]
 *                       the primary named MASTER, found through the
 *                       sentinels (default port 26379; sentinel.h)
 * Percent-escapes (%XX) are decoded in user and password. In the cluster
 * and sentinel forms the user and password are those of the data nodes;
 * sentinels are asked without AUTH unless the query gives their own
 * password (sentinel `requirepass`) and, for an ACL user, its name.
 *
 * A redis+cluster:// connection routes every command by its key to the
 * node serving it and follows redirections (cluster.h); callers use it as
 * any other. A redis-sentinel:// connection asks the sentinels for the
 * primary on every (re)connect and checks its ROLE (sentinel.h).
 *
 * A connection applies a connect timeout, a command timeout (socket read and
 * write timeouts) and TCP keepalive, then AUTH (with the ACL user when one
 * is given) and SELECT. A lost connection is reopened by rtq_conn_reconnect()
 * with capped exponential backoff.
 *
 * SIGPIPE: hiredis 0.14 writes with write(2), so writing to a connection
 * the server has just closed raises SIGPIPE. A process that uses rtq_conn
 * must ignore SIGPIPE (the rtq binaries and the test harness do); the
 * write then fails and the command returns RTQ_ECONN.
 */
#ifndef RTQ_CONN_H
#define RTQ_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "argv.h"

typedef enum rtq_redis_url_kind {
  RTQ_URL_TCP,       /* redis:// */
  RTQ_URL_UNIX,      /* unix:// */
  RTQ_URL_CLUSTER,   /* redis+cluster:// */
  RTQ_URL_SENTINEL   /* redis-sentinel:// */
} rtq_redis_url_kind;

#define RTQ_URL_MAX_SEEDS 8

/* Value type: one host and port. */
typedef struct rtq_redis_endpoint {
  char host[256];
  int port;
} rtq_redis_endpoint;

/* Value type. For the cluster and sentinel forms, host and port are the
 * first seed's. */
typedef struct rtq_redis_url {
  rtq_redis_url_kind kind;
  bool is_unix;        /* kind == RTQ_URL_UNIX */
  char host[256];
  int port;            /* default 6379 */
  char path[256];      /* unix socket path */
  char user[128];      /* empty: no ACL user */
  char password[256];  /* empty: no AUTH */
  int db;              /* default 0 */
  int nseeds;          /* cluster nodes or sentinels listed (cluster, sentinel) */
  rtq_redis_endpoint seeds[RTQ_URL_MAX_SEEDS];
  char master[128];    /* sentinel: the monitored primary's name */
  char sentinel_user[128];     /* sentinel: ACL user to AUTH as ("": default) */
  char sentinel_password[256]; /* sentinel: AUTH the sentinels ("": no AUTH) */
} rtq_redis_url;

/* Returns 0, or RTQ_EINVAL with a reason in errbuf naming the bad part. */
int rtq_redis_url_parse(const char *url, rtq_redis_url *out, char *errbuf, size_t errcap);

/* True for a redis+cluster:// URL: its namespace keys must take the hash
 * tag (rtq_keys_init's cluster), or the scripts' keys would span slots. */
bool rtq_redis_url_is_cluster(const char *url);

/* For command_timeout_ms and keepalive_s: switch the feature off. */
#define RTQ_CONN_DISABLED (-1)

/* Value type; zero fields take the defaults shown, so {.url = u} is a
 * complete, safe configuration. The URL string is copied. */
typedef struct rtq_conn_options {
  const char *url;            /* required */
  int connect_timeout_ms;     /* 2000; also bounds the AUTH/SELECT handshake */
  int command_timeout_ms;     /* 5000; RTQ_CONN_DISABLED = wait forever
                               * (blocking subscribers only) */
  int keepalive_s;            /* 15 (TCP keepalive idle time); RTQ_CONN_DISABLED = off */
  int backoff_min_ms;         /* 100 */
  int backoff_max_ms;         /* 5000; raised to backoff_min_ms if below it */
  int spin_us;                /* 0 (or less) never; else poll for a reply this many
                               * microseconds (at most 1000) before sleeping in the
                               * read (see conn.c) */
} rtq_conn_options;

typedef struct rtq_conn rtq_conn;

/*
 * Connects, authenticates and selects the db. On failure returns RTQ_EINVAL
 * (bad URL), RTQ_ENOMEM, RTQ_ECONN or RTQ_EREDIS (e.g. WRONGPASS), with the
 * reason in errbuf (a Redis error reply word for word); *out is NULL. On
 * success the caller frees *out with rtq_conn_free. A connection is not
 * thread-safe: one thread at a time.
 */
int rtq_conn_new(const rtq_conn_options *opts, rtq_conn **out, char *errbuf, size_t errcap);
/* Closes and frees; NULL does nothing. */
void rtq_conn_free(rtq_conn *c);

/* The live hiredis context, or NULL while disconnected. Borrowed. */
redisContext *rtq_conn_ctx(rtq_conn *c);
/* The parsed URL (borrowed, valid for the connection's life). */
const rtq_redis_url *rtq_conn_url(const rtq_conn *c);

/*
 * Runs one command, reconnecting first when the connection was dropped.
 * reply may be NULL to discard; otherwise *reply is set (NULL when no reply
 * arrived) and is the caller's to freeReplyObject, error replies included.
 * Returns:
 *   0            ok (the reply is not an error)
 *   RTQ_EREDIS   error reply; its text is in rtq_conn_errstr()
 *   RTQ_EOOM     error reply starting with OOM
 *   RTQ_ECONN    I/O error or timeout; the context is dropped and the next
 *                call reconnects (subject to backoff). The command may or may
 *                not have run: it is never resent here.
 *   RTQ_ENOMEM   argv->oom is set, or hiredis ran out of memory
 *   RTQ_EINVAL   argv is empty
 */
int rtq_conn_command(rtq_conn *c, const rtq_argv *argv, redisReply **reply);

/*
 * Pipelining: append commands (reconnecting first if dropped; nothing is
 * sent until rtq_conn_send or the first get_reply), then read their replies in order with the
 * same returns as rtq_conn_command. A failed read drops the connection, and
 * get_reply never reconnects, so the remaining replies of a broken pipeline
 * all fail with RTQ_ECONN instead of being read from a new connection.
 */
int rtq_conn_append(rtq_conn *c, const rtq_argv *argv);
int rtq_conn_get_reply(rtq_conn *c, redisReply **reply);
/*
 * Writes the appended commands now, as far as the socket takes them
 * without blocking, so that Redis runs them while the caller builds the
 * next ones; their replies are read with get_reply as before. Best effort:
 * it never fails; the rest, and any write error, are left to get_reply,
 * which first reads every reply that arrived (a write that fails midway
 * loses none of them). Returns 0. A cluster connection sends at its first
 * get_reply.
 */
int rtq_conn_send(rtq_conn *c);

/*
 * 0 when connected. Otherwise reconnects now if the backoff allows, else
 * fails at once with RTQ_ECONN without touching the network. The first
 * attempt after a drop is immediate; each failure then doubles the wait
 * from backoff_min_ms up to backoff_max_ms; a success resets it. Returns 0,
 * RTQ_ECONN, RTQ_EREDIS (AUTH/SELECT refused) or RTQ_ENOMEM.
 */
int rtq_conn_reconnect(rtq_conn *c);
/* Closes the socket; the next command reconnects (without waiting for a
 * backoff: a deliberate drop is not a failure). */
void rtq_conn_drop(rtq_conn *c);

/*
 * Makes the node serving key[0..n) the one keyless commands go to and the
 * one rtq_conn_ctx returns, connecting it (a cluster connection; for a
 * subscriber that will SSUBSCRIBE to a channel on its shard). On other
 * connections it is rtq_conn_reconnect. Same returns.
 */
int rtq_conn_route_key(rtq_conn *c, const void *key, size_t n);

/*
 * The primaries a walk over the whole keyspace (SCAN) must visit, at most
 * max into out, *n set: for redis+cluster:// the nodes serving slots in
 * the slot map (loaded again first when stale), sorted by host then port;
 * otherwise the one node (its host and port; the sentinels' primary as
 * last found; the socket's path and port 0 for unix://). Returns 0 or a
 * connection error.
 */
int rtq_conn_primaries(rtq_conn *c, rtq_redis_endpoint *out, int max, int *n);
/*
 * Runs a keyless command on the primary ep (one rtq_conn_primaries gave),
 * with no redirection followed: for SCAN, whose cursor belongs to one
 * node. On a connection that is no cluster's, ep is ignored (there is one
 * node). Same returns as rtq_conn_command; RTQ_ECONN also when ep serves
 * no slot any more (the map is reloaded at the next call).
 */
int rtq_conn_command_at(rtq_conn *c, const rtq_redis_endpoint *ep, const rtq_argv *a, redisReply **reply);

/*
 * Where a connection for key[0..n) should go: for redis:// the URL's host
 * and port (unix://: the path and port 0); for redis-sentinel:// the primary
 * the sentinels name; for redis+cluster:// the node serving the key's slot
 * (any node for key NULL), from a slot map loaded now. Blocks up to about
 * timeout_ms per node or sentinel asked. For connections that cannot use
 * rtq_conn (the worker's asynchronous ones). Returns 0, or RTQ_ECONN /
 * RTQ_EREDIS / RTQ_ENOMEM with the reason in errbuf.
 */
int rtq_redis_resolve(const rtq_redis_url *u, const void *key, size_t n, int timeout_ms, rtq_redis_endpoint *out,
                      char *errbuf, size_t errcap);

/* Last error text (a Redis error reply verbatim, or an I/O reason); "" when
 * there was none. Borrowed until the next call on c. */
const char *rtq_conn_errstr(const rtq_conn *c);

/*
 * Reads CONFIG GET maxmemory-policy; logs one WARNING when it is not
 * noeviction ("... tasks can be silently evicted ..."). Returns 1 when it
 * warned, 0 when the policy is noeviction, and 0 when CONFIG is not allowed
 * (ACL users) after logging at INFO that it could not check; RTQ_ECONN or
 * RTQ_ENOMEM when the command could not be run at all.
 */
int rtq_conn_check_eviction_policy(rtq_conn *c);

/* Classifies an error reply: RTQ_EOOM for "OOM ...", else RTQ_EREDIS.
 * Returns 0 when r is not an error reply. */
int rtq_reply_error_code(const redisReply *r);

/* Redis TIME in ms since the epoch: the clock every deadline and heartbeat
 * is measured with. Same returns as rtq_conn_command, plus RTQ_EREDIS for
 * a malformed TIME reply. */
int rtq_conn_time_ms(rtq_conn *c, uint64_t *ms);

#endif
