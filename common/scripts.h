/*
 * scripts.h - the Lua steps, kept in common/lua/<name>.lua and compiled in.
 *
 * Each atomic multi-key step of the protocol is one script. They are run
 * with EVALSHA; a NOSCRIPT reply (a restarted or flushed server) falls back
 * to EVAL with the body, which also caches it again. docs/PROTOCOL.md
 * describes each one: keys, arguments, replies.
 */
#ifndef RTQ_SCRIPTS_H
#define RTQ_SCRIPTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "argv.h"
#include "conn.h"

#define RTQ_SCRIPT_LIST(XX) \
  XX(CREATE, create)        \
  XX(CLAIM, claim)          \
  XX(TAKE, take)            \
  XX(FINISH, finish)        \
  XX(CANCEL, cancel)        \
  XX(PROGRESS, progress)    \
  XX(HEARTBEAT, heartbeat)  \
  XX(RECOVER, recover)      \
  XX(EXPIRE_RUNNING, expire_running) \
  XX(PROMOTE, promote)      \
  XX(DEADLETTER, deadletter) \
  XX(REQUEUE, requeue)      \
  XX(RETRY, retry)          \
  XX(LEASE, lease)          \
  XX(FORGET, forget)        \
  XX(TRIM, trim)            \
  XX(HANDBACK, handback)    \
  XX(DEAD_REQUEUE, dead_requeue) \
  XX(DEAD_PURGE, dead_purge)

typedef enum rtq_script_id {
#define RTQ__SCRIPT_ENUM(up, low) RTQ_SCRIPT_##up,
  RTQ_SCRIPT_LIST(RTQ__SCRIPT_ENUM)
#undef RTQ__SCRIPT_ENUM
  RTQ_SCRIPT_COUNT
} rtq_script_id;

/* Script name ("create") and Lua body; static strings ("unknown" and ""
 * for an id out of range). */
const char *rtq_script_name(rtq_script_id id);
const char *rtq_script_body(rtq_script_id id);
/*
 * SHA1 hex of the body, as SCRIPT LOAD reported it, or NULL before the first
 * rtq_scripts_load() in this process. The table is a write-once cache of
 * constants (the same body always has the same SHA), guarded by a mutex.
 */
const char *rtq_script_sha(rtq_script_id id);
/* SCRIPT LOAD of every script; fills the SHA table. Same returns as
 * rtq_conn_command (RTQ_EREDIS also for a reply that is not a SHA); stops
 * at the first failure. Call once per process after connecting;
 * thread-safe. */
int rtq_scripts_load(rtq_conn *c);

/*
 * Resets argv and starts it as "EVALSHA <sha> <numkeys>", or
 * "EVAL <body> <numkeys>" when use_eval or while the SHA is unknown; the
 * caller then appends the keys and the arguments. Returns 0, RTQ_EINVAL
 * (bad id or numkeys < 0) or RTQ_ENOMEM.
 */
int rtq_script_argv(rtq_argv *a, rtq_script_id id, int numkeys, bool use_eval);

/* True when r is a NOSCRIPT error reply. */
bool rtq_reply_is_noscript(const redisReply *r);

/*
 * The NOSCRIPT fallback of a caller that cannot resend on the spot (a
 * pipeline, an async connection): true when r is a NOSCRIPT reply, and
 * *use_eval is then set, so that the caller builds the command again (and
 * every later one, until it decides otherwise) with EVAL, which also puts
 * the script back in the server's cache. *was tells whether use_eval was
 * already set (to log the first fallback once); was may be NULL.
 */
bool rtq_script_fallback(bool *use_eval, const redisReply *r, bool *was);

/*
 * Runs a script built by rtq_script_argv on a blocking connection: sends
 * EVALSHA, and on NOSCRIPT rewrites argv[0..1] to EVAL/body (argv stays in
 * that form) and resends. Same returns and reply ownership as
 * rtq_conn_command; a NOSCRIPT reply never reaches the caller for our own
 * scripts.
 */
int rtq_script_run(rtq_conn *c, rtq_argv *a, redisReply **reply);

/* rtq_script_run for any set of scripts (protocol v2's is scripts2.h):
 * lookup maps the 40-hex SHA of an EVALSHA to its body, NULL when the
 * SHA is not one of the set's (the NOSCRIPT reply then reaches the
 * caller as RTQ_EREDIS). */
int rtq__script_run_with(rtq_conn *c, rtq_argv *a, redisReply **reply,
                         const char *(*lookup)(const char *sha));
/* SCRIPT LOAD of one body (a is scratch space); on success the SHA goes
 * into sha unless it holds one already, under mu (the write-once tables
 * of scripts.c and scripts2.c). Same returns as rtq_scripts_load. */
int rtq__script_load_into(rtq_conn *c, rtq_argv *a, const char *body, char sha[41],
                          pthread_mutex_t *mu);
/* True when r is a SHA1 as SCRIPT LOAD replies it (40 lower-case hex). */
bool rtq__reply_is_sha(const redisReply *r);

#endif
