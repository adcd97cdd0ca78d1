/*
 * replicas.h - the durability knob: WAIT after a write.
 *
 * Redis replicates asynchronously: a write the primary acknowledged may
 * not have reached any replica when the primary dies, and a failover to
 * that replica loses it. `WAIT numreplicas timeout` blocks the connection
 * until numreplicas replicas have acknowledged every write made on that
 * connection so far, or until timeout ms passed, and replies with how
 * many did. WAIT does not undo anything: after a timeout the write stays
 * on the primary (and reaches the replicas later, unless the primary dies
 * first).
 *
 * On a redis+cluster:// connection WAIT is keyless and goes to the node
 * the last keyed command went to (cluster.h): the node of the write.
 */
#ifndef RTQ_REPLICAS_H
#define RTQ_REPLICAS_H

#include <hiredis/hiredis.h>

#include "argv.h"
#include "conn.h"

/* Bounds of the settings (config.h: wait_replicas, wait_timeout). */
#define RTQ_WAIT_REPLICAS_MAX 64
#define RTQ_WAIT_TIMEOUT_MAX_MS 60000

/* Resets a and fills it with WAIT replicas timeout_ms. 0 or RTQ_ENOMEM. */
int rtq_replicas_argv(rtq_argv *a, int replicas, int timeout_ms);

/* The replica count of a WAIT reply: 0 with *acked set, or RTQ_EREDIS
 * (an error reply, or not an integer). r may be NULL (RTQ_EREDIS). */
int rtq_replicas_parse(const redisReply *r, int *acked);

/*
 * Sends WAIT on c and reads the count into *acked. The reply must come
 * within c's command timeout, so timeout_ms must be below it. Returns 0
 * (also when fewer than replicas acknowledged: compare *acked), or the
 * returns of rtq_conn_command (RTQ_ECONN: *acked unknown, set to 0).
 */
int rtq_replicas_wait(rtq_conn *c, int replicas, int timeout_ms, int *acked);

#endif
