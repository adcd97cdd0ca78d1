/*
 * scripts2.h - the Lua steps of the protocol (docs/PROTOCOL.md), kept in
 * common/lua2/<name>.lua, each with the parts of common/lua2/_prelude.lua
 * its "-- Prelude:" header lines name before it (cmake/embed_lua.cmake),
 * and compiled in. Run with EVALSHA, and on NOSCRIPT, EVAL with the body
 * (scripts.h). calls2.h builds their calls.
 */
#ifndef RTQ_SCRIPTS2_H
#define RTQ_SCRIPTS2_H

#include <stdbool.h>

#include "argv.h"
#include "conn.h"

#define RTQ_SCRIPT2_LIST(XX)  \
  XX(CREATE, create)          \
  XX(TAKE, take)              \
  XX(CLAIM, claim)            \
  XX(FINISH, finish)          \
  XX(PROGRESS, progress)      \
  XX(WAIT, wait)              \
  XX(CANCEL, cancel)          \
  XX(RETRY, retry)            \
  XX(REQUEUE, requeue)        \
  XX(HANDBACK, handback)      \
  XX(DEADLETTER, deadletter)  \
  XX(RECOVER, recover)        \
  XX(PROMOTE, promote)        \
  XX(PRUNE, prune)            \
  XX(PURGE, purge)            \
  XX(DELETE, delete)          \
  XX(HEARTBEAT, heartbeat)    \
  XX(LEASE, lease)            \
  XX(DEAD_REQUEUE, dead_requeue) \
  XX(BACKSTOP, backstop)

typedef enum rtq_script2_id {
#define RTQ__SCRIPT2_ENUM(up, low) RTQ_SCRIPT2_##up,
  RTQ_SCRIPT2_LIST(RTQ__SCRIPT2_ENUM)
#undef RTQ__SCRIPT2_ENUM
  RTQ_SCRIPT2_COUNT
} rtq_script2_id;

/* Name ("create") and body (its prelude parts included); static strings, "unknown"
 * and "" for an id out of range. */
const char *rtq_script2_name(rtq_script2_id id);
const char *rtq_script2_body(rtq_script2_id id);
/* SHA1 hex of the body as SCRIPT LOAD reported it, or NULL before the
 * first rtq_scripts2_load(). Write-once, mutex-guarded. */
const char *rtq_script2_sha(rtq_script2_id id);
/* SCRIPT LOAD of every v2 script. Same returns as rtq_scripts_load. */
int rtq_scripts2_load(rtq_conn *c);
/* Resets a to "EVALSHA <sha> <numkeys>" ("EVAL <body> <numkeys>" when
 * use_eval or while the SHA is unknown). 0, RTQ_EINVAL or RTQ_ENOMEM. */
int rtq_script2_argv(rtq_argv *a, rtq_script2_id id, int numkeys, bool use_eval);
/* rtq_script_run for a v2 call: EVALSHA, then EVAL on NOSCRIPT. Same
 * returns and reply ownership. */
int rtq_script2_run(rtq_conn *c, rtq_argv *a, redisReply **reply);

#endif
