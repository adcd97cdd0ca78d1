/*
 * scripts.h - running Lua scripts: EVALSHA, and a NOSCRIPT reply (a
 * restarted or flushed server) falling back to EVAL with the body, which
 * also caches it again. The scripts are common/lua2/<name>.lua, compiled
 * in (scripts2.h); docs/PROTOCOL.md describes each one.
 */
#ifndef RTQ_SCRIPTS_H
#define RTQ_SCRIPTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "argv.h"
#include "conn.h"

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
 * Runs an EVALSHA/EVAL argv on a blocking connection: on NOSCRIPT,
 * rewrites argv[0..1] to EVAL/body (argv stays in that form) and resends.
 * lookup maps the 40-hex SHA of an EVALSHA to its body, NULL when the SHA
 * is not one of the set's (the NOSCRIPT reply then reaches the caller as
 * RTQ_EREDIS). Same returns and reply ownership as rtq_conn_command.
 */
int rtq__script_run_with(rtq_conn *c, rtq_argv *a, redisReply **reply,
                         const char *(*lookup)(const char *sha));
/* SCRIPT LOAD of one body (a is scratch space); on success the SHA goes
 * into sha unless it holds one already, under mu (the write-once table of
 * scripts2.c). Same returns as rtq_conn_command, and RTQ_EREDIS for a
 * reply that is not a SHA. */
int rtq__script_load_into(rtq_conn *c, rtq_argv *a, const char *body, char sha[41],
                          pthread_mutex_t *mu);
/* True when r is a SHA1 as SCRIPT LOAD replies it (40 lower-case hex). */
bool rtq__reply_is_sha(const redisReply *r);

#endif
