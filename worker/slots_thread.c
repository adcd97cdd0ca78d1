/*
 * slots_thread.c - thread isolation: a fixed pool of handler threads.
 *
 * The loop thread submits task contexts; a pool thread runs the handler and
 * puts the context on the done list, waking the loop (rtq__ev_wake) only
 * when the list goes from empty to non-empty, so a burst of completions
 * costs one wake-up and is written to Redis in one pipeline.
 *
 * Wake-ups cost more than short handlers, so they are rationed: a sleeping
 * thread is signalled only while the queue holds more tasks than signals
 * already on their way, and a thread that finishes a task takes the next
 * one without sleeping. The submit queue and the done list have separate
 * locks, so handing back never waits behind submitting.
 *
 * Abandoning. A handler that ignores a cancel or its timeout for the kill
 * grace cannot be stopped: threads cannot be killed safely. The loop
 * thread abandons it: one compare-and-swap on the context's state decides
 * the race with the handler returning. If the loop wins, the thread leaves
 * the pool (detached), a new thread takes its place, and when the handler
 * finally returns, the thread frees the context and exits without touching
 * the loop's data. It still holds a reference on the pool struct, so the
 * pool memory outlives rtq__pool_free() until the last abandoned thread
 * is gone.
 *
 * Memory: each thread gets a small stack (thread_stack_kb, 256 KiB by
 * default, of which only touched pages count towards RSS), and pool
 * threads block every asynchronous signal so SIGTERM/SIGINT/SIGCHLD reach
 * the loop thread.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

typedef struct thr {
  struct thr *next;
  pthread_t tid;
  struct rtq__pool *pool;
} thr;

struct rtq__pool {
  rtq_worker *w;
  rtq__ev *ev;
  pthread_mutex_t mu;       /* the queue, the thread list, refs */
  pthread_cond_t cv;
  rtq_task_ctx *q_head, *q_tail;
  int queued;               /* tasks on the queue */
  int idle;                 /* threads waiting on cv */
  int signals;              /* signals sent, not yet taken by a waiter */
  pthread_mutex_t dmu;      /* the done list */
  rtq_task_ctx *d_head, *d_tail;
  thr *threads;    /* live threads (abandoned ones are not here) */
  int nthreads;
  int refs;        /* abandoned threads still running */
  bool stopping;
  bool freed;      /* rtq__pool_free ran; the last reference frees */
  size_t stack;
};

static void pool_destroy(struct rtq__pool *p) {
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->dmu);
  free(p);
}

static void *thread_main(void *arg) {
  thr *me = arg;
  struct rtq__pool *p = me->pool;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->q_head == NULL && !p->stopping) {
      p->idle++;
      pthread_cond_wait(&p->cv, &p->mu);
      p->idle--;
      if (p->signals > 0) p->signals--;
    }
    if (p->q_head == NULL) break;
    rtq_task_ctx *t = p->q_head;
    p->q_head = t->next;
    if (p->q_head == NULL) p->q_tail = NULL;
    p->queued--;
    t->next = NULL;
    t->thread = me;
    pthread_mutex_unlock(&p->mu);

    rtq__task_run(t);

    int expected = RTQ__TASK_RUNNING;
    if (!atomic_compare_exchange_strong(&t->state, &expected, RTQ__TASK_DONE)) {
      /* Abandoned. Taking the lock waits until the loop thread has finished
       * unlinking us; after that only the pool's refcount is touched. */
      pthread_mutex_lock(&p->mu);
      bool last = --p->refs == 0 && p->freed;
      pthread_mutex_unlock(&p->mu);
      rtq_log(RTQ_LOG_WARNING, "abandoned handler returned; its thread exits", "task", t->id, NULL);
      rtq__task_free(t);
      free(me);
      if (last) pool_destroy(p);
      return NULL;
    }
    pthread_mutex_lock(&p->dmu);
    bool was_empty = p->d_head == NULL;
    if (p->d_tail != NULL)
      p->d_tail->next = t;
    else
      p->d_head = t;
    p->d_tail = t;
    pthread_mutex_unlock(&p->dmu);
    if (was_empty) rtq__ev_wake(p->ev);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Starts one thread with every asynchronous signal blocked. Called with
 * p->mu held. */
static int spawn(struct rtq__pool *p) {
  thr *t = calloc(1, sizeof *t);
  if (t == NULL) return RTQ_ENOMEM;
  t->pool = p;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  size_t stack = p->stack < (size_t)PTHREAD_STACK_MIN ? (size_t)PTHREAD_STACK_MIN : p->stack;
  pthread_attr_setstacksize(&attr, stack);
  sigset_t all, old;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&t->tid, &attr, thread_main, t);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    free(t);
    return rc == EAGAIN ? RTQ_ENOMEM : RTQ_EIO;
  }
  t->next = p->threads;
  p->threads = t;
  p->nthreads++;
  return 0;
}

rtq__pool *rtq__pool_new(rtq_worker *w, int nthreads, size_t stack_kb) {
  struct rtq__pool *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->w = w;
  p->ev = w->ev;
  p->stack = stack_kb * 1024;
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p);
    return NULL;
  }
  if (pthread_mutex_init(&p->dmu, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
  }
  pthread_cond_init(&p->cv, NULL);
  pthread_mutex_lock(&p->mu);
  int rc = 0;
  for (int i = 0; i < nthreads && rc == 0; i++) rc = spawn(p);
  pthread_mutex_unlock(&p->mu);
  if (rc != 0) {
    rtq__pool_free(p);
    return NULL;
  }
  return p;
}

void rtq__pool_free(rtq__pool *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  pthread_cond_broadcast(&p->cv);
  thr *list = p->threads;
  p->threads = NULL;
  pthread_mutex_unlock(&p->mu);
  /* Live threads are idle by now (every task came back or was abandoned),
   * so these joins return promptly. */
  while (list != NULL) {
    thr *next = list->next;
    pthread_join(list->tid, NULL);
    free(list);
    list = next;
  }
  pthread_mutex_lock(&p->mu);
  pthread_mutex_lock(&p->dmu);
  rtq_task_ctx *t = p->q_head;
  while (t != NULL) {
    rtq_task_ctx *n = t->next;
    rtq__task_free(t);
    t = n;
  }
  t = p->d_head;
  while (t != NULL) {
    rtq_task_ctx *n = t->next;
    rtq__task_free(t);
    t = n;
  }
  p->q_head = p->d_head = NULL;
  pthread_mutex_unlock(&p->dmu);
  p->freed = true;
  bool last = p->refs == 0;
  pthread_mutex_unlock(&p->mu);
  if (last) pool_destroy(p);
}

int rtq__pool_submit(rtq__pool *p, rtq_task_ctx *t) {
  pthread_mutex_lock(&p->mu);
  t->next = NULL;
  if (p->q_tail != NULL)
    p->q_tail->next = t;
  else
    p->q_head = t;
  p->q_tail = t;
  p->queued++;
  if (p->idle > p->signals && p->queued > p->signals) {
    p->signals++;
    pthread_cond_signal(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return 0;
}

void rtq__pool_drain(rtq__pool *p, void (*fn)(rtq_worker *w, rtq_task_ctx *t)) {
  pthread_mutex_lock(&p->dmu);
  rtq_task_ctx *t = p->d_head;
  p->d_head = p->d_tail = NULL;
  pthread_mutex_unlock(&p->dmu);
  while (t != NULL) {
    rtq_task_ctx *next = t->next;
    t->next = NULL;
    fn(p->w, t);
    t = next;
  }
}

int rtq__pool_abandon(rtq__pool *p, rtq_task_ctx *t) {
  pthread_mutex_lock(&p->mu);
  int expected = RTQ__TASK_RUNNING;
  if (!atomic_compare_exchange_strong(&t->state, &expected, RTQ__TASK_ABANDONED)) {
    if (expected == RTQ__TASK_QUEUED) {
      /* Never started: take it off the queue; nothing runs it. */
      rtq_task_ctx **pp = &p->q_head, *prev = NULL;
      while (*pp != NULL && *pp != t) {
        prev = *pp;
        pp = &(*pp)->next;
      }
      if (*pp == t) {
        *pp = t->next;
        if (p->q_tail == t) p->q_tail = prev;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        rtq__task_free(t);
        return 0;
      }
    }
    pthread_mutex_unlock(&p->mu);
    return RTQ_ESTATE;
  }
  thr *me = t->thread, **pp = &p->threads;
  while (*pp != NULL && *pp != me) pp = &(*pp)->next;
  if (*pp == me) {
    *pp = me->next;
    p->nthreads--;
  }
  pthread_detach(me->tid);
  p->refs++;
  int rc = p->stopping ? 0 : spawn(p);
  pthread_mutex_unlock(&p->mu);
  if (rc != 0) rtq_log(RTQ_LOG_ERROR, "could not replace an abandoned handler thread", NULL);
  return 0;
}

int rtq__pool_threads(const rtq__pool *p) { return p->nthreads; }
