/*
 * keys.h - the key schema: every Redis key and pub/sub channel rtq uses.
 *
 * No other file formats a key or a channel name. Everything lives under one
 * namespace prefix P, which is either the namespace itself ("rtq") or, in
 * cluster mode, the namespace in a hash tag ("{rtq}") so that every key of a
 * namespace maps to one Redis Cluster slot and every Lua step stays legal.
 *
 *   P:task:<id>          hash    one task (fields in docs/PROTOCOL.md)
 *   P:queue:<queue>      list    envelopes waiting; LPUSH in, RPOP/BLMOVE out
 *   P:queues             set     queue names ever used (for stats)
 *   P:processing:<wid>   list    envelopes a worker has claimed
 *   P:worker:<wid>       hash    worker record, expires with its heartbeat
 *   P:workers            zset    worker id -> last heartbeat, ms (Redis TIME)
 *   P:cancel:<id>        string  cancel flag of a running task
 *   P:delayed            zset    envelope -> due time, ms (delays, retries)
 *   P:deadlines          zset    task id -> deadline, ms (running tasks)
 *   P:status:<status>    zset    task id -> created_at, ms (index per status)
 *   P:history            zset    task id -> completed_at, ms (terminal tasks)
 *   P:dead               list    dead-lettered payloads with their reason
 *   P:stats              hash    "<queue>|<counter>" -> count
 *   P:lease              string  broker leader lease (owner id, PX)
 *   P:paused             set     names of paused queues (workers claim nothing from them)
 *   P:schedules          hash    schedule id -> its definition (JSON)
 *   P:schedules:due      zset    schedule id -> its next run, ms (unpaused ones)
 *   P:schedules:last     hash    schedule id -> the run last enqueued, ms
 *   P:throughput:<min>   hash    P:stats's completed/failed totals as first
 *                                seen in minute <min> (ms / 60000), 2 h TTL
 *   P:runtime:<queue>    hash    run-time histogram: bucket ("0.005".."+Inf")
 *                                -> runs, "sum_us" -> their total (runtime.h)
 *
 *   channel P:chan:events        every state change and progress update
 *   channel P:chan:task:<id>     terminal event of one task (for waiters)
 *   channel P:chan:cancel        ids of running tasks asked to cancel
 *
 * <id>, <queue> and <wid> are validated names (^[A-Za-z0-9._:-]{1,128}$),
 * so a key never contains a glob character, a brace, a space or a newline.
 */
#ifndef RTQ_KEYS_H
#define RTQ_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "argv.h"
#include "rtq/common.h"

#define RTQ_NS_MAX 64
#define RTQ_NAME_MAX 128
#define RTQ_KEY_CAP 256

/* Value type: the namespace prefix, built once by rtq_keys_init(). */
typedef struct rtq_keys {
  char prefix[RTQ_NS_MAX + 3];
  size_t prefix_len;
} rtq_keys;

/* Value type: one key or channel name, NUL-terminated; len 0 means the
 * name part was invalid or too long and the key must not be used. */
typedef struct rtq_key {
  size_t len;
  char s[RTQ_KEY_CAP];
} rtq_key;

/* ns must match ^[A-Za-z0-9._-]{1,64}$; cluster puts it in a hash tag.
 * Returns 0 or RTQ_EINVAL. */
int rtq_keys_init(rtq_keys *k, const char *ns, bool cluster);

rtq_key rtq_keys_task(const rtq_keys *k, const char *id);
/* "<prefix>:task:": what rtq_keys_task puts before the id, for the scripts
 * that build a task's keys themselves (take.lua reads the ids out of the
 * envelopes it moves; finish.lua saves three arguments per task). */
rtq_key rtq_keys_task_prefix(const rtq_keys *k);
/* The same for the cancel flag and the task channel (finish.lua). */
rtq_key rtq_keys_cancel_prefix(const rtq_keys *k);
rtq_key rtq_keys_chan_task_prefix(const rtq_keys *k);
/* A queue's run-time histogram, and its prefix "<prefix>:runtime:" for
 * finish.lua, which joins it with the queue names of its call. */
rtq_key rtq_keys_runtime(const rtq_keys *k, const char *queue);
rtq_key rtq_keys_runtime_prefix(const rtq_keys *k);
rtq_key rtq_keys_queue(const rtq_keys *k, const char *queue);
rtq_key rtq_keys_queues(const rtq_keys *k);
rtq_key rtq_keys_processing(const rtq_keys *k, const char *worker_id);
rtq_key rtq_keys_worker(const rtq_keys *k, const char *worker_id);
rtq_key rtq_keys_workers(const rtq_keys *k);
rtq_key rtq_keys_cancel(const rtq_keys *k, const char *id);
rtq_key rtq_keys_delayed(const rtq_keys *k);
rtq_key rtq_keys_deadlines(const rtq_keys *k);
rtq_key rtq_keys_status(const rtq_keys *k, rtq_status s);
rtq_key rtq_keys_history(const rtq_keys *k);
rtq_key rtq_keys_dead(const rtq_keys *k);
rtq_key rtq_keys_stats(const rtq_keys *k);
rtq_key rtq_keys_lease(const rtq_keys *k);
rtq_key rtq_keys_paused(const rtq_keys *k);
rtq_key rtq_keys_schedules(const rtq_keys *k);
rtq_key rtq_keys_schedules_due(const rtq_keys *k);
rtq_key rtq_keys_schedules_last(const rtq_keys *k);
/* minute is Redis ms / 60000. */
rtq_key rtq_keys_throughput(const rtq_keys *k, uint64_t minute);

rtq_key rtq_keys_chan_events(const rtq_keys *k);
rtq_key rtq_keys_chan_task(const rtq_keys *k, const char *id);
rtq_key rtq_keys_chan_cancel(const rtq_keys *k);

/* Appends a key; RTQ_EINVAL (nothing appended) when the key was built from
 * an invalid name (len 0), so no command is ever sent with a half-built
 * key. Otherwise rtq_argv_add's returns. */
int rtq__argv_add_key(rtq_argv *a, rtq_key k);

/* ACL patterns covering the namespace: "P:*" for keys and channels. */
rtq_key rtq_keys_acl_pattern(const rtq_keys *k);

/* Field name in P:stats for a queue and a counter ("enqueued", a status). */
rtq_key rtq_keys_stats_field(const char *queue, const char *counter);

#endif
