/*
 * rconn.h - one asynchronous Redis connection of the worker, with what
 * hiredis 0.14's async API lacks: a connect timeout, a command timeout,
 * TCP keepalive, a handshake (AUTH, SELECT, then a per-role step), and
 * reconnection with capped exponential backoff.
 *
 * The worker keeps three:
 *   cmd  scripts, progress, heartbeats, flag checks; SCRIPT LOAD on connect
 *   pop  BLMOVE/LMOVE rounds, so a blocking pop never delays a completion;
 *        CLIENT ID on connect, so shutdown can CLIENT UNBLOCK it
 *   sub  SUBSCRIBE to the cancel channel
 *
 * Command timeout (the watchdog): every command sent records a deadline;
 * replies arrive in order, so the oldest outstanding one is at the head of
 * a ring. rtq__rconn_check() drops the connection when that head is past
 * its deadline: a half-open or frozen server cannot hold the worker. The
 * subscriber has no replies to time, so it re-sends SUBSCRIBE as a probe
 * and expects the confirmation within the command timeout.
 *
 * Cluster and Sentinel URLs: each connect first asks where to go
 * (rtq_redis_resolve, blocking up to the connect timeout per node or
 * sentinel asked): the node serving route_key's slot, or the primary the
 * sentinels name, whose ROLE is then checked in the handshake. A MOVED
 * reply drops the connection, so the next connect finds the slot's new
 * node; any lost connection asks again, which follows a failover. A
 * connection with a fixed node (fixed_node) goes to that node every time:
 * its owner (links.c) re-plans from the slot map when it is lost. An ASK
 * reply, on a connection with on_ask, is not the caller's: each command
 * sent outside MULTI is kept (one copy) until its reply, and on ASK it is
 * handed to on_ask, whose reply the callback gets instead.
 *
 * Callbacks: fn(w, reply, pd) runs exactly once per accepted command, with
 * the reply (borrowed for the call) or NULL when the connection was lost
 * before the reply came; the command may or may not have run then.
 */
#ifndef RTQ_WORKER_RCONN_H
#define RTQ_WORKER_RCONN_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>

#include "argv.h"
#include "clock.h"
#include "conn.h"
#include "loop.h"
#include "rtq/worker.h"

typedef enum rtq__conn_kind { RTQ__CONN_CMD, RTQ__CONN_POP, RTQ__CONN_SUB } rtq__conn_kind;

typedef void (*rtq__reply_fn)(rtq_worker *w, redisReply *r, void *pd);
/* Subscriber message: the payload bytes of one message on the channel. */
typedef void (*rtq__message_fn)(rtq_worker *w, const char *msg, size_t len);

typedef struct rtq__rconn rtq__rconn;
/* A command kept for following an ASK: one allocation (free()). */
typedef struct rtq__cmdcopy {
  int argc;
  const char **argv;
  size_t *argvlen;
} rtq__cmdcopy;
/* Follows an ASK that command cmd (taken; extra_ms as sent) of `from` met:
 * must call fn(w, reply, pd) exactly once, later or now. */
typedef void (*rtq__ask_fn)(rtq_worker *w, rtq__rconn *from, const rtq_redis_endpoint *to, rtq__cmdcopy *cmd,
                            int extra_ms, rtq__reply_fn fn, void *pd);
/* The connection came up (handshake done) or went down. */
typedef void (*rtq__conn_state_fn)(rtq_worker *w, rtq__rconn *c);

/* Settings shared by the three connections (borrowed by rtq__rconn_new). */
typedef struct rtq__rconn_cfg {
  const rtq_redis_url *url;
  int connect_timeout_ms;
  int command_timeout_ms;
  int probe_interval_ms;       /* subscriber probe period */
  const char *route_key;       /* a key whose node to connect to on a
                               * redis+cluster:// URL (the namespace's
                               * hash tag); NULL: any node */
  const char *sub_channel;     /* RTQ__CONN_SUB */
  rtq__message_fn on_message;  /* RTQ__CONN_SUB */
  rtq__conn_state_fn on_up;    /* may be NULL */
  rtq__conn_state_fn on_down;  /* may be NULL; only after an on_up */
  bool fixed_node;             /* connect to node, not where route_key leads
                               * (the per-node links: links.c) */
  rtq_redis_endpoint node;
  rtq__ask_fn on_ask;          /* redis+cluster://: follows ASK replies
                               * (links.c); NULL: the caller gets them */
} rtq__rconn_cfg;

/* A connection that starts down; rtq__rconn_service() connects it. cfg is
 * copied (url stays borrowed). NULL when out of memory. */
rtq__rconn *rtq__rconn_new(rtq_worker *w, rtq__ev *ev, rtq__conn_kind kind, const rtq__rconn_cfg *cfg);
/* Drops the connection (callbacks see NULL) and frees; NULL does nothing. */
void rtq__rconn_free(rtq__rconn *c);

/* True when connected and the handshake is done: commands may be sent. */
bool rtq__rconn_up(const rtq__rconn *c);
/* True when down after a connect or a connection failed (not merely not
 * tried yet, nor connecting). */
bool rtq__rconn_failed(const rtq__rconn *c);
/* CLIENT ID of the pop connection (0 while unknown). */
long long rtq__rconn_client_id(const rtq__rconn *c);

/*
 * Sends a command (argv is copied by hiredis). extra_ms extends the command
 * timeout (a BLMOVE's block time). Returns 0, or RTQ_ECONN when not up or
 * hiredis refused it; fn is then never called.
 */
int rtq__rconn_send(rtq__rconn *c, const rtq_argv *a, rtq__reply_fn fn, void *pd, int extra_ms);

/* Connects when down and the backoff allows; drops on a passed deadline;
 * probes the subscriber. Call often (every tick and before every poll). */
void rtq__rconn_service(rtq__rconn *c, uint64_t now_ms);
/* Asks for the connection to be dropped at the next service (safe inside a
 * reply callback). why is logged. */
void rtq__rconn_drop(rtq__rconn *c, const char *why);

/* Releases the read buffer when it is fully consumed but holds more than
 * hiredis's maxbuf (what hiredis itself does, but only on its next read,
 * and only if that read finds it exactly empty). */
void rtq__rconn_shrink(rtq__rconn *c);

/* The node of the current or last connection (host "" for unix://). */
const rtq_redis_endpoint *rtq__rconn_node(const rtq__rconn *c);

/* The socket, or -1 while down (a forked child closes its copies). */
int rtq__rconn_fd(const rtq__rconn *c);

#endif
