/*
 * queues.h - which queue the next pops go to. Pure logic, no I/O.
 *
 * A worker serves one or more queues. Each pop round is one pipeline of up
 * to k moves (k = free slots) from queues into the processing list; this
 * module decides the queue of each move.
 *
 * One queue: [BLMOVE q T, LMOVE q x (k-1)]. The BLMOVE returns at once when
 * q has work and waits up to T (block_timeout) when it has none; the LMOVEs
 * behind it then grab more in the same round trip.
 *
 * Weighted (the default with several queues, "--queue a:3 --queue b:1"):
 * the k moves of a round are dealt by smooth weighted round-robin (nginx's
 * algorithm: every pick adds each weight to its queue's counter, takes the
 * largest counter and subtracts the total) over the *eligible* queues. A
 * queue whose move came back empty is ineligible for poll_ms, so its share
 * goes to queues that have work instead of to empty probes. No queue
 * starves: an ineligible queue becomes eligible again within poll_ms, and
 * an eligible queue with weight w gets at least one pick in every
 * sum-of-weights picks, so under a backlog on every queue each gets
 * w / sum(w) of the tasks (3:1 above).
 *
 * Strict priority: the first eligible queue in the order given takes the
 * whole round; a higher queue that was empty is probed again after
 * poll_ms, so a lower queue's work waits at most poll_ms behind new work
 * of a higher one, and lower queues run only while higher ones are empty.
 *
 * When no queue is eligible the round blocks: BLMOVE on one queue (the
 * first under strict priority, the weighted pick otherwise), because
 * BLMOVE cannot wait on several lists. The worker cuts that wait short
 * after poll_ms with CLIENT UNBLOCK (Redis's own timeouts fire on its hz
 * timer, in 100 ms steps); when it ends, every other queue is eligible
 * again and probed at once. Idle pick-up latency is therefore immediate on
 * the blocked queue and about poll_ms on the others.
 *
 * Idle rounds are small: after a round that found nothing, a probe round
 * makes one move per eligible queue and a blocking round one BLMOVE (with
 * several queues), so an idle worker costs a few commands per poll_ms.
 * The first round that finds work is followed by full-size rounds.
 */
#ifndef RTQ_WORKER_QUEUES_H
#define RTQ_WORKER_QUEUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys2.h"
#include "rtq/worker.h"

#define RTQ__MAX_WEIGHT 1000

typedef struct rtq__queue {
  char name[RTQ_NAME_MAX + 1];
  int weight;
  int cw;               /* smooth round-robin counter */
  uint64_t empty_until; /* monotonic ms; ineligible before this */
  bool paused;          /* in P:paused: never planned */
} rtq__queue;

/* Storage the caller owns: rtq__queues_init / rtq__queues_destroy. */
typedef struct rtq__queues {
  rtq__queue *q;
  int n;
  bool strict;
  bool idle;            /* the last round found nothing */
} rtq__queues;

/* Copies and validates the list (valid names, weights 1..RTQ__MAX_WEIGHT,
 * no duplicates); NULL/0 means the one queue "default". Returns 0,
 * RTQ_EINVAL with a reason in errbuf, or RTQ_ENOMEM. */
int rtq__queues_init(rtq__queues *qs, const rtq_worker_queue *list, size_t n, bool strict,
                     char *errbuf, size_t errcap);
void rtq__queues_destroy(rtq__queues *qs);

/*
 * Plans a round of at most k >= 1 moves at time now: qidx[] receives the
 * queue index of each move, *blocking says whether move 0 is a BLMOVE.
 * Returns the number of moves (1..k), or 0 when every queue is paused.
 * Paused queues are never planned; the rules below apply to the others:
 *   1. One queue: always blocking, k moves on it.
 *   2. No eligible queue: blocking on one queue; k moves, or 1 when idle.
 *   3. Strict: k moves on the first eligible queue (1 when idle).
 *   4. Weighted: smooth weighted round-robin over the eligible queues
 *      (when idle, one move per eligible queue, at most k).
 */
int rtq__queues_plan(rtq__queues *qs, int k, uint64_t now, int *qidx, bool *blocking);
/* Marks paused exactly the queues named in names (the members of P:paused);
 * returns how many queues changed. */
int rtq__queues_set_paused(rtq__queues *qs, const char *const *names, size_t n);
/* Records the outcome of one move on queue i: got an envelope, or nil
 * (the queue is then ineligible until now + poll_ms). */
void rtq__queues_result(rtq__queues *qs, int i, bool got, uint64_t now, int poll_ms);
/* A round ended. got_any: it found work. blocked >= 0: it was a blocking
 * round on that queue, so the others went unwatched meanwhile and are all
 * eligible again (this bounds idle pick-up to about poll_ms). */
void rtq__queues_round_end(rtq__queues *qs, bool got_any, int blocked);
/* "a:3,b:1" for the worker record; writes at most cap bytes. */
void rtq__queues_describe(const rtq__queues *qs, char *buf, size_t cap);

#endif
