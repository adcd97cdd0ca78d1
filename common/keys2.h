/*
 * keys2.h - the protocol v2 key schema (docs/design/protocol-v2.md §2), the
 * cluster slot of a queue's hash tag, and v2 task ids.
 *
 * No other file formats a v2 key or channel name. Every key starts with a
 * hash tag, so that Redis Cluster places it by the tag (a single Redis
 * ignores it):
 *
 *   namespace keys, tag {ns}            queue keys, tag {ns:Q}
 *   {ns}:version          string        {ns:Q}:q             list  pending ids
 *   {ns}:queues           set           {ns:Q}:p:<wid>       list  taken ids
 *   {ns}:workers          zset          {ns:Q}:delayed       zset  id -> due
 *   {ns}:worker:<wid>     hash          {ns:Q}:done:<status> list  ended ids
 *   {ns}:lease            string        {ns:Q}:t:<id>        hash  the task
 *   {ns}:throughput:<min> hash          {ns:Q}:x:<id>        hash  big values
 *   {ns}:paused           set           {ns:Q}:stats         hash  counters
 *   {ns}:schedules        hash
 *   {ns}:schedules:due    zset
 *   {ns}:schedules:last   hash
 *   {ns}:broker           hash  broker counters
 *   channel {ns}:cancel                 {ns:Q}:rt            hash  run times
 *                                       {ns:Q}:dead          list  dead letters
 *                                       {ns:Q}:limit         hash  rate, burst, conc
 *                                       {ns:Q}:bucket        hash  rate's tokens
 *                                       {ns:Q}:slots         zset  id -> lease end
 *                                       channel {ns:Q}:ev    shard, events
 *                                       channel {ns:Q}:w:<id> shard, waiter
 *
 * ns matches ^[A-Za-z0-9._-]{1,64}$ (no ':', so {ns} is never a queue's
 * tag); Q, <id> and <wid> are valid names (rtq_validate_name). A key built
 * from a bad name has len 0 and must not be sent.
 *
 * v2 task ids (docs/PROTOCOL.md §1): 26 Crockford base32
 * characters, most significant first, of the 130-bit number
 *
 *    ms << 82 | r << 14 | slot
 *   |--------||---------||----|
 *    48-bit    68 random  14-bit slot of the queue's tag: the last 3
 *    ms time   bits       characters (the top bit of the three is r's)
 *
 * r comes from getrandom(2) and goes up by one for each further id of the
 * same millisecond in one process, so ids of a process sort in creation
 * order; ids of different milliseconds sort by time.
 *
 * The slot lets a reader that has only the id find its queue: it maps the
 * slot to the queues it knows. Every 26-character string of the alphabet
 * reads as an id; a caller-supplied id of that shape gives a slot that is
 * only a hint, and a reader that finds no task there probes the queues.
 */
#ifndef RTQ_KEYS2_H
#define RTQ_KEYS2_H

#include <stddef.h>
#include <stdint.h>

#include "argv.h"
#include "rtq/common.h"

/* A namespace is 1-64 of A-Z a-z 0-9 . _ -; a name (queue, task id or
 * name, worker id) 1-128 bytes (rtq_validate_name). */
#define RTQ_NS_MAX 64
#define RTQ_NAME_MAX 128
/* "{" ns(64) ":" Q(128) "}" ":t:" id(128) is 326 bytes. */
#define RTQ_KEY2_CAP 384
#define RTQ_ID2_LEN 26
#define RTQ_SLOTS 16384

/* Value type: the namespace, validated once by rtq_keys2_init(). */
typedef struct rtq_keys2 {
  char ns[65];
  size_t ns_len;
} rtq_keys2;

/* Value type: one v2 key or channel name, NUL-terminated; len 0 means a
 * name part was invalid and the key must not be used. */
typedef struct rtq_key2 {
  size_t len;
  char s[RTQ_KEY2_CAP];
} rtq_key2;

/* ns must match ^[A-Za-z0-9._-]{1,64}$ (as rtq_keys_init). 0 or RTQ_EINVAL. */
int rtq_keys2_init(rtq_keys2 *k, const char *ns);

/* ---- namespace keys: tag {ns} ---- */
rtq_key2 rtq_keys2_version(const rtq_keys2 *k);
rtq_key2 rtq_keys2_queues(const rtq_keys2 *k);
rtq_key2 rtq_keys2_workers(const rtq_keys2 *k);
rtq_key2 rtq_keys2_worker(const rtq_keys2 *k, const char *worker_id);
rtq_key2 rtq_keys2_lease(const rtq_keys2 *k);
/* minute is Redis ms / 60000. */
rtq_key2 rtq_keys2_throughput(const rtq_keys2 *k, uint64_t minute);
/* Paused queues: workers move nothing from them. */
rtq_key2 rtq_keys2_paused(const rtq_keys2 *k);
/* The broker's own counters and marks (hash): `<counter>` fields, and
 * last_sweep_at, lease_unswept_s (docs/BROKER.md). */
rtq_key2 rtq_keys2_broker(const rtq_keys2 *k);
/* The cancel channel (PUBLISH, not a shard channel: every worker hears it). */
rtq_key2 rtq_keys2_chan_cancel(const rtq_keys2 *k);
/* Periodic tasks (client/schedule.c): schedule id -> definition (hash),
 * id -> next run ms (zset), id -> the run last enqueued ms (hash). */
rtq_key2 rtq_keys2_schedules(const rtq_keys2 *k);
rtq_key2 rtq_keys2_schedules_due(const rtq_keys2 *k);
rtq_key2 rtq_keys2_schedules_last(const rtq_keys2 *k);

/* ---- queue keys: tag {ns:Q}; a bad queue gives len 0 ---- */
rtq_key2 rtq_keys2_queue(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_processing(const rtq_keys2 *k, const char *queue, const char *worker_id);
rtq_key2 rtq_keys2_delayed(const rtq_keys2 *k, const char *queue);
/* Terminal statuses only; pending or running gives len 0. */
rtq_key2 rtq_keys2_done(const rtq_keys2 *k, const char *queue, rtq_status s);
rtq_key2 rtq_keys2_task(const rtq_keys2 *k, const char *queue, const char *id);
rtq_key2 rtq_keys2_side(const rtq_keys2 *k, const char *queue, const char *id);
rtq_key2 rtq_keys2_stats(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_runtime(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_dead(const rtq_keys2 *k, const char *queue);
/* The queue's fleet-wide limits (take and claim check them): the limit
 * settings, the rate limit's token bucket, the concurrency leases. */
rtq_key2 rtq_keys2_limit(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_bucket(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_slots(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_chan_events(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_chan_waiter(const rtq_keys2 *k, const char *queue, const char *id);
/* What rtq_keys2_task, _side and _chan_waiter put before the id: the
 * scripts take these and append the ids they read ("{ns:Q}:t:"). */
rtq_key2 rtq_keys2_task_prefix(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_side_prefix(const rtq_keys2 *k, const char *queue);
rtq_key2 rtq_keys2_chan_waiter_prefix(const rtq_keys2 *k, const char *queue);

/* The SCAN MATCH pattern of every processing list of the namespace:
 * "{ns:*}:p:*" (ns holds no glob character). It also matches keys that
 * are none (a queue name cannot hold '}', a writer's junk key can):
 * rtq_keys2_parse_processing tells them apart. */
rtq_key2 rtq_keys2_processing_pattern(const rtq_keys2 *k);
/* Reads a key name key[0..n) of the form rtq_keys2_processing builds for
 * this namespace: 0 with the queue and worker id copied to queue and wid
 * (NUL-terminated, RTQ_NAME_MAX + 1 bytes each), else RTQ_EINVAL and both
 * "" (another namespace, another kind of key, a bad name, a NUL byte).
 * Names cannot hold '}', so the first '}' closes the tag and the split is
 * unique: rtq_keys2_processing(k, queue, wid) gives key back. */
int rtq_keys2_parse_processing(const rtq_keys2 *k, const char *key, size_t n, char *queue, char *wid);

/* Appends a key; RTQ_EINVAL (nothing appended) for a len-0 key, else
 * rtq_argv_add's returns. */
int rtq__argv_add_key2(rtq_argv *a, rtq_key2 k);

/* ---- cluster slots ---- */

/* The slot of every key of queue Q: CRC16("ns:Q") mod 16384 (Redis
 * Cluster's CRC16, XMODEM). -1 for a bad queue name. */
int rtq_keys2_slot(const rtq_keys2 *k, const char *queue);

/* ---- v2 task ids ---- */

/* A generator's state; storage the caller owns. rtq_id2_new uses one per
 * process under a mutex; tests drive their own through rtq__id2_next. */
typedef struct rtq__id2_state {
  uint64_t ms;     /* time part of the last id */
  uint64_t lo;     /* low 64 of its 68 random bits */
  unsigned hi;     /* its top 4 random bits */
  int started;     /* 0 until the first id */
} rtq__id2_state;

/* Writes a new id for a task of the queue whose tag has slot (0..16383)
 * into out (27 bytes with the NUL). Ids of one process increase strictly,
 * also within a millisecond and when the wall clock steps back.
 * Returns 0, RTQ_EINVAL (slot out of range) or RTQ_EIO (getrandom failed);
 * out is "" on error. Thread-safe. */
int rtq_id2_new(char out[RTQ_ID2_LEN + 1], int slot);
/* One step of a generator with the time given. A time not after st's last
 * one reuses that time with the random part plus one (its overflow carries
 * into the time); a later time draws fresh random bits. Same returns as
 * rtq_id2_new, plus RTQ_ERANGE when the time does not fit 48 bits. */
int rtq__id2_next(rtq__id2_state *st, uint64_t ms, int slot, char out[RTQ_ID2_LEN + 1]);
/* The layout drawn above, with r given: for tests and their vectors. */
void rtq__id2_encode(char out[RTQ_ID2_LEN + 1], uint64_t ms, unsigned r_hi, uint64_t r_lo,
                     int slot);
/* Reads an id of the generated shape: 26 characters of the upper-case
 * Crockford alphabet. Returns 0 and sets *ms and *slot (either may be
 * NULL), or RTQ_EINVAL when id does not have that shape (a caller-supplied
 * id; *ms and *slot are left alone). */
int rtq_id2_parse(const char *id, uint64_t *ms, int *slot);
/* The slot an id carries, or -1 when it is not of the generated shape. */
int rtq_id2_slot(const char *id);

#endif
