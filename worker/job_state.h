/*
 * job_state.h - the life of a job in the worker, as one table (jobs.c).
 *
 *   CLAIMING --> ADOPTING       an envelope found in the processing list
 *   ADOPTING --> CLAIMING       ... whose task was still pending
 *   CLAIMING --> RUNNING        claim.lua / take.lua said ok: handler starts
 *   ADOPTING --> RUNNING        ... or it was already running under us
 *   RUNNING  --> FINISHING      the handler returned (or could not start)
 *   RUNNING  --> REQUEUING      shutdown hands it back unfinished
 *   REQUEUING --> REQUEUED      requeue.lua answered; the handler may still
 *                               be winding down, its outcome is void
 *   any      --> FREED          the job is dropped (rtq__job_free): done,
 *                               not run (claim said skip), or lost track of
 *
 * CLAIMING, ADOPTING and RUNNING hold a concurrency slot. A FINISHING job
 * is freed once finish.lua answers, a REQUEUED one once its handler has
 * also ended. What else a job records is not where it is in its life but
 * facts about its I/O (on the write queue, a call awaiting its reply), its
 * handler (still live, killed) and its child process (reaped, final frame
 * read, protocol error).
 * Moving to the state a job is in already changes nothing and is allowed.
 * The table is pure data; rtq__job_set_state (internal.h) is the one
 * function that moves a job, and it refuses any other move.
 */
#ifndef RTQ_WORKER_JOB_STATE_H
#define RTQ_WORKER_JOB_STATE_H

#include <stdbool.h>

typedef enum rtq__job_state {
  RTQ__JOB_CLAIMING,
  RTQ__JOB_ADOPTING,
  RTQ__JOB_RUNNING,
  RTQ__JOB_FINISHING,
  RTQ__JOB_REQUEUING,
  RTQ__JOB_REQUEUED,
  RTQ__JOB_FREED,
  RTQ__JOB_STATE_COUNT
} rtq__job_state;

/* "claiming", ...; "invalid" for a value out of range. */
const char *rtq__job_state_name(int s);
/* True for the states that hold a slot. */
bool rtq__job_state_holds_slot(int s);
/* True when a job in state from may move to state to. */
bool rtq__job_transition_ok(int from, int to);

#endif
