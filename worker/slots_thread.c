/*
 * slots_thread.c - thread isolation: a fixed pool of handler threads.
 *
 * Hand-off, built to cost as few system calls per task as possible (a
 * no-op task spends more time being handed over than running):
 *
 *   loop thread                                pool thread
 *   submit: pop an idle thread (lock-free      sem_wait(own semaphore)
 *   stack), give it the task, sem_post  --->   run the handler
 *                                              push itself back on the idle stack
 *   on_wake: take the whole done list   <---   push the task on the done list;
 *   (one atomic exchange), write them          wake the loop only if the list
 *   in one pipeline                            was empty (one wake per burst)
 *
 * The idle stack and the done list are Treiber stacks: many pushers (the
 * pool threads), one consumer (the loop thread), which pops one entry
 * (idle) or takes the whole list (done), so there is no ABA problem. A
 * thread puts itself on the idle stack before it hands its task back, so
 * when the loop sees a task done, its thread is already free: slots never
 * exceed idle threads. A task submitted while no thread is idle (only
 * right after an abandoned thread is replaced) waits on a backlog that the
 * loop drains on its next wake-up; a new thread wakes the loop when it is
 * ready.
 *
 * Abandoning. A handler that ignores a cancel or its timeout for the kill
 * grace cannot be stopped: threads cannot be killed safely. The loop
 * thread abandons it: one compare-and-swap on the context's state decides
 * the race with the handler returning. If the loop wins, the thread leaves
 * the pool (detached), a new thread takes its place, and when the handler
 * finally returns, the thread frees the context and exits without touching
 * the loop's data. It holds a reference on the pool struct, so the pool
 * memory outlives rtq__pool_free() until the last abandoned thread is gone.
 * Each abandoned thread is one more thread for the life of its handler;
 * the worker counts them (rtq__pool_abandoned) and stops itself for a
 * restart past max_abandoned_threads (cancel.c), so they cannot pile up.
 *
 * Memory: each thread gets a small stack (thread_stack_kb, 256 KiB by
 * default, of which only touched pages count towards RSS), and pool
 * threads block every asynchronous signal so SIGTERM/SIGINT/SIGCHLD reach
 * the loop thread.
 */
#include <errno.h>
#include <limits.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

typedef struct thr {
  struct thr *next;       /* live list, under pool->mu */
  struct thr *idle_next;  /* idle stack link */
  pthread_t tid;
  struct rtq__pool *pool;
  sem_t sem;              /* posted when task is set (NULL task: exit) */
  rtq_task_ctx *task;     /* written by the loop before sem_post */
} thr;

struct rtq__pool {
  rtq_worker *w;
  rtq__ev *ev;
  _Atomic(thr *) idle;            /* idle threads */
  _Atomic(rtq_task_ctx *) done;   /* finished tasks, newest first */
  rtq_task_ctx *backlog, *backlog_tail; /* loop thread only */
  pthread_mutex_t mu;             /* live list, nthreads, refs, freed */
  thr *threads;
  int nthreads;
  int refs;                       /* abandoned threads still running */
  bool stopping;
  bool freed;
  size_t stack;
};

static void pool_destroy(struct rtq__pool *p) {
  pthread_mutex_destroy(&p->mu);
  free(p);
}

static void push_idle(struct rtq__pool *p, thr *me) {
  thr *head = atomic_load_explicit(&p->idle, memory_order_relaxed);
  do {
    me->idle_next = head;
  } while (!atomic_compare_exchange_weak_explicit(&p->idle, &head, me, memory_order_release,
                                                  memory_order_relaxed));
}

/* Loop thread only (the single consumer). */
static thr *pop_idle(struct rtq__pool *p) {
  thr *head = atomic_load_explicit(&p->idle, memory_order_acquire);
  while (head != NULL && !atomic_compare_exchange_weak_explicit(&p->idle, &head, head->idle_next,
                                                                memory_order_acquire, memory_order_acquire)) {
  }
  return head;
}

static void push_done(struct rtq__pool *p, rtq_task_ctx *t) {
  rtq_task_ctx *head = atomic_load_explicit(&p->done, memory_order_relaxed);
  do {
    t->next = head;
  } while (!atomic_compare_exchange_weak_explicit(&p->done, &head, t, memory_order_release,
                                                  memory_order_relaxed));
  if (head == NULL) rtq__ev_wake(p->ev);
}

static void sem_wait_intr(sem_t *s) {
  while (sem_wait(s) != 0 && errno == EINTR) {
  }
}

static void *thread_main(void *arg) {
  thr *me = arg;
  struct rtq__pool *p = me->pool;
  push_idle(p, me);
  rtq__ev_wake(p->ev); /* a backlog may be waiting for this thread */
  for (;;) {
    sem_wait_intr(&me->sem);
    rtq_task_ctx *t = me->task;
    if (t == NULL) return NULL; /* rtq__pool_free */
    t->thread = me;
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
      sem_destroy(&me->sem);
      free(me);
      if (last) pool_destroy(p);
      return NULL;
    }
    me->task = NULL;
    push_idle(p, me);
    push_done(p, t);
  }
}

/* Starts one thread with every asynchronous signal blocked. Called with
 * p->mu held. */
static int spawn(struct rtq__pool *p) {
  thr *t = calloc(1, sizeof *t);
  if (t == NULL) return RTQ_ENOMEM;
  t->pool = p;
  if (sem_init(&t->sem, 0, 0) != 0) {
    free(t);
    return RTQ_EIO;
  }
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
    sem_destroy(&t->sem);
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
  atomic_init(&p->idle, NULL);
  atomic_init(&p->done, NULL);
  if (pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p);
    return NULL;
  }
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

static void free_list(rtq_task_ctx *t) {
  while (t != NULL) {
    rtq_task_ctx *n = t->next;
    rtq__task_free(t);
    t = n;
  }
}

void rtq__pool_free(rtq__pool *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  thr *list = p->threads;
  p->threads = NULL;
  pthread_mutex_unlock(&p->mu);
  /* Live threads are idle by now (every task came back or was
   * abandoned): a NULL task tells each to exit. */
  for (thr *t = list; t != NULL; t = t->next) {
    t->task = NULL;
    sem_post(&t->sem);
  }
  while (list != NULL) {
    thr *next = list->next;
    pthread_join(list->tid, NULL);
    sem_destroy(&list->sem);
    free(list);
    list = next;
  }
  free_list(p->backlog);
  free_list(atomic_exchange(&p->done, NULL));
  p->backlog = p->backlog_tail = NULL;
  pthread_mutex_lock(&p->mu);
  p->freed = true;
  bool last = p->refs == 0;
  pthread_mutex_unlock(&p->mu);
  if (last) pool_destroy(p);
}

static void dispatch(struct rtq__pool *p) {
  while (p->backlog != NULL) {
    thr *th = pop_idle(p);
    if (th == NULL) return;
    rtq_task_ctx *t = p->backlog;
    p->backlog = t->next;
    if (p->backlog == NULL) p->backlog_tail = NULL;
    t->next = NULL;
    th->task = t;
    sem_post(&th->sem);
  }
}

int rtq__pool_submit(rtq__pool *p, rtq_task_ctx *t) {
  t->next = NULL;
  if (p->backlog_tail != NULL)
    p->backlog_tail->next = t;
  else
    p->backlog = t;
  p->backlog_tail = t;
  dispatch(p);
  return 0;
}

void rtq__pool_drain(rtq__pool *p, void (*fn)(rtq_worker *w, rtq_task_ctx *t)) {
  rtq_task_ctx *t = atomic_exchange_explicit(&p->done, NULL, memory_order_acquire);
  rtq_task_ctx *fifo = NULL; /* oldest first */
  while (t != NULL) {
    rtq_task_ctx *n = t->next;
    t->next = fifo;
    fifo = t;
    t = n;
  }
  while (fifo != NULL) {
    rtq_task_ctx *n = fifo->next;
    fifo->next = NULL;
    fn(p->w, fifo);
    fifo = n;
  }
  dispatch(p);
}

int rtq__pool_abandoned(rtq__pool *p) {
  pthread_mutex_lock(&p->mu);
  int n = p->refs;
  pthread_mutex_unlock(&p->mu);
  return n;
}

int rtq__pool_abandon(rtq__pool *p, rtq_task_ctx *t) {
  int expected = RTQ__TASK_QUEUED;
  /* Still on the backlog: take it off; nothing runs it. */
  if (atomic_load(&t->state) == RTQ__TASK_QUEUED) {
    rtq_task_ctx **pp = &p->backlog, *prev = NULL;
    while (*pp != NULL && *pp != t) {
      prev = *pp;
      pp = &(*pp)->next;
    }
    if (*pp == t) {
      *pp = t->next;
      if (p->backlog_tail == t) p->backlog_tail = prev;
      rtq__task_free(t);
      return 0;
    }
    return RTQ_ESTATE; /* handed to a thread, not started yet: try later */
  }
  pthread_mutex_lock(&p->mu);
  expected = RTQ__TASK_RUNNING;
  if (!atomic_compare_exchange_strong(&t->state, &expected, RTQ__TASK_ABANDONED)) {
    pthread_mutex_unlock(&p->mu);
    return RTQ_ESTATE; /* it returned meanwhile: it is on the done list */
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
