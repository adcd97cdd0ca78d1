/*
 * jobs.c - the loop thread's table of jobs: a list of all of them, an index
 * by task id (for cancel messages), the write queue of completions and
 * requeues, and the slot accounting that gates claiming.
 *
 * busy counts the jobs that hold a slot: CLAIMING, ADOPTING and RUNNING.
 * A job's states and the moves between them are the table below
 * (job_state.h draws it); rtq__job_set_state is the only way to move.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

#define TO(s) (1u << (s))
#define OR_FREED TO(RTQ__JOB_FREED)

static const struct {
  const char *name;
  bool holds_slot;
  unsigned next; /* bit s set: may move to state s */
} states[RTQ__JOB_STATE_COUNT] = {
    [RTQ__JOB_CLAIMING] = {"claiming", true, TO(RTQ__JOB_ADOPTING) | TO(RTQ__JOB_RUNNING) | OR_FREED},
    [RTQ__JOB_ADOPTING] = {"adopting", true, TO(RTQ__JOB_CLAIMING) | TO(RTQ__JOB_RUNNING) | OR_FREED},
    [RTQ__JOB_RUNNING] = {"running", true, TO(RTQ__JOB_FINISHING) | TO(RTQ__JOB_REQUEUING) | OR_FREED},
    [RTQ__JOB_FINISHING] = {"finishing", false, OR_FREED},
    [RTQ__JOB_REQUEUING] = {"requeuing", false, TO(RTQ__JOB_REQUEUED) | OR_FREED},
    [RTQ__JOB_REQUEUED] = {"requeued", false, OR_FREED},
    [RTQ__JOB_FREED] = {"freed", false, 0},
};

static bool valid(int s) { return s >= 0 && s < RTQ__JOB_STATE_COUNT; }

const char *rtq__job_state_name(int s) { return valid(s) ? states[s].name : "invalid"; }

bool rtq__job_state_holds_slot(int s) { return valid(s) && states[s].holds_slot; }

bool rtq__job_transition_ok(int from, int to) {
  if (!valid(from) || !valid(to)) return false;
  return from == to || (states[from].next & TO(to)) != 0;
}

static size_t hash_id(const char *s, size_t len) {
  size_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

int rtq__jobs_init(rtq_worker *w) {
  size_t cap = 64;
  while (cap < (size_t)w->o.concurrency * 4) cap *= 2;
  w->htab = calloc(cap, sizeof *w->htab);
  if (w->htab == NULL) return RTQ_ENOMEM;
  w->hcap = cap;
  return 0;
}

void rtq__jobs_destroy(rtq_worker *w) {
  while (w->jobs != NULL) rtq__job_free(w, w->jobs);
  free(w->htab);
  w->htab = NULL;
  w->hcap = 0;
}

rtq__job *rtq__job_new(rtq_worker *w, const char *env, size_t len, rtq_envelope *e) {
  rtq__job *j = calloc(1, sizeof *j);
  if (j == NULL) return NULL;
  j->env = malloc(len ? len : 1);
  if (j->env == NULL) {
    free(j);
    return NULL;
  }
  memcpy(j->env, env, len);
  j->env_len = len;
  j->e = *e; /* takes e's args */
  rtq_envelope_init(e);
  memcpy(j->id, j->e.id, sizeof j->id);
  memcpy(j->name, j->e.name, sizeof j->name);
  memcpy(j->queue, j->e.queue, sizeof j->queue);
  j->w = w;
  j->proc.fd = -1;
  j->proc.slot = -1;
  j->state = RTQ__JOB_CLAIMING;
  rtq__prog_init(&j->prog);
  j->next = w->jobs;
  if (w->jobs != NULL) w->jobs->prev = j;
  w->jobs = j;
  size_t b = hash_id(j->id, strlen(j->id)) & (w->hcap - 1);
  j->hnext = w->htab[b];
  w->htab[b] = j;
  w->njobs++;
  w->busy++;
  return j;
}

int rtq__job_set_state(rtq_worker *w, rtq__job *j, int state) {
  if (!rtq__job_transition_ok(j->state, state)) {
    rtq_log(RTQ_LOG_ERROR, "refused an illegal job state change", "task", j->id, "from",
            rtq__job_state_name(j->state), "to", rtq__job_state_name(state), NULL);
    assert(!"illegal job state change");
    return RTQ_ESTATE;
  }
  bool had = rtq__job_state_holds_slot(j->state), has = rtq__job_state_holds_slot(state);
  if (had && !has) w->busy--;
  if (!had && has) w->busy++;
  if (j->state == RTQ__JOB_RUNNING && state != RTQ__JOB_RUNNING) w->running_jobs--;
  if (j->state != RTQ__JOB_RUNNING && state == RTQ__JOB_RUNNING) w->running_jobs++;
  j->state = state;
  return 0;
}

void rtq__job_free(rtq_worker *w, rtq__job *j) {
  if (j == NULL) return;
  rtq__job_set_state(w, j, RTQ__JOB_FREED); /* releases slot counts */
  if (j->queued) {
    rtq__job **pp = &w->wq_head;
    rtq__job *prev = NULL;
    while (*pp != NULL && *pp != j) {
      prev = *pp;
      pp = &(*pp)->qnext;
    }
    if (*pp == j) {
      *pp = j->qnext;
      if (w->wq_tail == j) w->wq_tail = prev;
    }
  }
  if (j->prev != NULL)
    j->prev->next = j->next;
  else
    w->jobs = j->next;
  if (j->next != NULL) j->next->prev = j->prev;
  size_t b = hash_id(j->id, strlen(j->id)) & (w->hcap - 1);
  rtq__job **pp = &w->htab[b];
  while (*pp != NULL && *pp != j) pp = &(*pp)->hnext;
  if (*pp == j) *pp = j->hnext;
  w->njobs--;
  if (j->task != NULL) rtq__task_free(j->task);
  rtq__proc_release(w, j);
  rtq__frame_reader_destroy(&j->proc.rd);
  rtq__outcome_destroy(&j->out);
  rtq__prog_destroy(&j->prog);
  rtq_envelope_destroy(&j->e);
  free(j->env);
  free(j);
}

rtq__job *rtq__job_find(const rtq_worker *w, const char *id, size_t len) {
  size_t b = hash_id(id, len) & (w->hcap - 1);
  for (rtq__job *j = w->htab[b]; j != NULL; j = j->hnext)
    if (strlen(j->id) == len && memcmp(j->id, id, len) == 0) return j;
  return NULL;
}

rtq__job *rtq__job_find_next(const rtq__job *j, const char *id, size_t len) {
  for (j = j->hnext; j != NULL; j = j->hnext)
    if (strlen(j->id) == len && memcmp(j->id, id, len) == 0) return (rtq__job *)j;
  return NULL;
}

rtq__job *rtq__job_by_env(const rtq_worker *w, const char *env, size_t len) {
  for (rtq__job *j = w->jobs; j != NULL; j = j->next)
    if (j->env_len == len && memcmp(j->env, env, len) == 0) return j;
  return NULL;
}

void rtq__wq_push(rtq_worker *w, rtq__job *j) {
  if (j->queued) return;
  j->queued = true;
  j->qnext = NULL;
  if (w->wq_tail != NULL)
    w->wq_tail->qnext = j;
  else
    w->wq_head = j;
  w->wq_tail = j;
}

rtq__job *rtq__wq_pop(rtq_worker *w) {
  rtq__job *j = w->wq_head;
  if (j == NULL) return NULL;
  w->wq_head = j->qnext;
  if (w->wq_head == NULL) w->wq_tail = NULL;
  j->qnext = NULL;
  j->queued = false;
  return j;
}

int rtq__free_slots(const rtq_worker *w) {
  int n = w->o.concurrency - w->busy - w->reserved;
  return n > 0 ? n : 0;
}
