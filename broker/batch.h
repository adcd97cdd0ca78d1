/*
 * batch.h - a pipeline of commands sent in one round trip.
 *
 * The broker works on batches (a dead worker's processing list, the due
 * part of P:delayed, a page of an index). Sending each step as its own
 * round trip would make a sweep's length grow with the backlog times the
 * network latency; a batch costs one round trip plus Redis's own work.
 *
 * Every step is still its own Lua script, so a batch is not a transaction:
 * each command succeeds or fails alone and the caller reads each reply.
 */
#ifndef RTQ_BROKER_BATCH_H
#define RTQ_BROKER_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "argv.h"
#include "conn.h"

/* Storage the caller owns: rtq__batch_init / rtq__batch_destroy. */
typedef struct rtq__batch {
  rtq_argv *cmds;          /* cmds[0..n-1] are queued; the rest keep capacity */
  redisReply **replies;    /* after run: one per command (NULL when none came) */
  int *rcs;                /* after run: rtq_conn_command's return per command */
  int n;
  int cap;
  int oom;                 /* sticky: a command could not be added */
} rtq__batch;

void rtq__batch_init(rtq__batch *bt);
void rtq__batch_destroy(rtq__batch *bt);
/* Frees the replies and empties the batch, keeping its capacity. */
void rtq__batch_clear(rtq__batch *bt);

/* Queues a new, empty command and returns it for the caller to fill; NULL
 * when out of memory (also remembered in bt->oom). Borrowed until clear. */
rtq_argv *rtq__batch_add(rtq__batch *bt);

/*
 * Sends every queued command, then reads every reply into replies[] and
 * rcs[]. A NOSCRIPT reply (the server restarted or was flushed) makes it
 * load the scripts again and rerun those commands alone; NOSCRIPT means
 * the script did not run, so nothing runs twice.
 * Returns 0 when every command got a reply (error replies included: read
 * rcs[]), RTQ_ECONN when the connection failed (some commands may have
 * run; their replies are lost), RTQ_ENOMEM.
 */
int rtq__batch_run(rtq_conn *c, rtq__batch *bt);

/* Reply helpers; each tolerates NULL and wrong types. */
/* Element i of an array reply as a string ("" when not a string). */
const char *rtq__reply_elem_str(const redisReply *r, size_t i);
/* Element i of an array reply as an integer (string digits accepted);
 * def when absent. */
long long rtq__reply_elem_int(const redisReply *r, size_t i, long long def);
/* True when r is an array whose first element is the string s. */
bool rtq__reply_tag_is(const redisReply *r, const char *s);
/* An integer reply's value (or a string of digits), else def. */
long long rtq__reply_int(const redisReply *r, long long def);

#endif
