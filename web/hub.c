/*
 * hub.c - the events fan-out (the model is in hub.h).
 *
 * Costs, per event: one copy of its JSON into the pump's batch buffer
 * (reused, so no allocation once it has grown); per flush (every FLUSH_MS
 * at most, or each BLOCK_BYTES of events): one block allocation and one
 * reference per all-events stream; per stream and flush: at most one
 * wake-up of its connection, which then copies the queued bytes into the
 * HTTP server's buffer. No thread waits per stream.
 *
 * One mutex guards the client list, every client's queue and the blocks'
 * reference counts. The pump's batch is its own and needs no lock.
 */
#include "hub.h"

#include <jansson.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "log.h"

#define FLUSH_MS 100
#define BLOCK_BYTES (64 * 1024)
#define QUEUE_BLOCKS 128   /* block references one stream may hold */
#define KEEPALIVE_MS 15000
#define HOUSEKEEPING_MS 1000
#define READ_WAIT_MS 250

/* A run of framed events (or one private message); freed with its last
 * reference. */
typedef struct block {
  int refs;
  size_t len;
  char data[];
} block;

struct web_sse {
  web_hub *hub;
  web_sse *prev, *next;
  block *q[QUEUE_BLOCKS];
  unsigned qhead, qn;
  size_t off;          /* bytes of q[qhead] already read */
  size_t queued;       /* bytes left to read, at most the hub's cap */
  bool dropped;        /* slow: its queue is gone, its socket shut down */
  bool gone;           /* the peer hung up */
  bool parked;         /* suspended by web_sse_read; wake() resumes it */
  bool filtered;
  bool ticks;          /* one "tick" a second instead of the events */
  bool has_waker;
  web_sse_waker wk;
  uint64_t pending;    /* events since its last tick */
  uint64_t last_queued_ms;
  char task[RTQ_TASK_ID_SIZE];
  int fd;
};

/* Where one event of the batch is, and its task id when a ?task= stream
 * needs it. */
typedef struct frame_ref {
  size_t off, len;
  char id[RTQ_TASK_ID_SIZE];
} frame_ref;

struct web_hub {
  rtq_client *c;
  pthread_mutex_t mu;
  web_sse *clients;
  size_t nclients;
  atomic_size_t nfiltered;
  int max_clients;
  size_t cap;
  bool closing;
  bool pump_started;
  bool trim;           /* a stream went since the last malloc_trim */
  pthread_t pump;
  web_hub_stats st;
  /* The pump's own (no lock). */
  char *batch;
  size_t blen, bcap;
  frame_ref *refs;
  size_t nrefs, rcap;
  struct pollfd *pfd;
  web_sse **pcl;
  size_t pcap;
};

/* ----- one client's queue (hub->mu held) ---------------------------------- */

static block *block_new(const char *p, size_t n) {
  block *b = malloc(sizeof *b + n);
  if (b == NULL) return NULL;
  b->refs = 0;
  b->len = n;
  if (p != NULL) memcpy(b->data, p, n);
  return b;
}

static void block_unref(block *b) {
  if (--b->refs == 0) free(b);
}

static void wake(web_sse *s) {
  if (!s->parked) return;
  s->parked = false;
  s->wk.resume(s->wk.arg);
}

static void queue_clear(web_sse *s) {
  for (; s->qn > 0; s->qn--) {
    block_unref(s->q[s->qhead]);
    s->qhead = (s->qhead + 1) % QUEUE_BLOCKS;
  }
  s->qhead = 0;
  s->off = 0;
  s->queued = 0;
}

/* Drops a client that cannot keep up: its queue is released now, and its
 * socket shut down so that a write in progress ends now rather than at
 * the connection timeout (the server still closes the descriptor). */
static void drop(web_sse *s) {
  if (s->dropped) return;
  s->dropped = true;
  queue_clear(s);
  s->hub->st.dropped++;
  if (s->fd >= 0) shutdown(s->fd, SHUT_RDWR);
  wake(s);
}

/* Queues a reference to b, or drops the client when its queue would pass
 * the cap: a partial event would corrupt the stream, and waiting would
 * let one client slow every other. */
static void enqueue(web_sse *s, block *b, uint64_t now) {
  if (s->dropped || s->gone) return;
  if (s->queued + b->len > s->hub->cap || s->qn == QUEUE_BLOCKS) {
    drop(s);
    return;
  }
  s->q[(s->qhead + s->qn++) % QUEUE_BLOCKS] = b;
  b->refs++;
  s->queued += b->len;
  s->last_queued_ms = now;
  wake(s);
}

/* A message for one client only (hello, tick, ping, reset, its task's
 * events). Out of memory counts as too slow: the client re-connects. */
static void enqueue_copy(web_sse *s, const char *p, size_t n, uint64_t now) {
  block *b = block_new(p, n);
  if (b == NULL) {
    drop(s);
    return;
  }
  enqueue(s, b, now);
  if (b->refs == 0) free(b);
}

/* ----- the pump: framing and flushing -------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 16;
  while (n < need) n *= 2;
  void *np = realloc(*p, n * elem);
  if (np == NULL) return -1;
  *p = np;
  *cap = n;
  return 0;
}

/* Appends one message to the batch as "data: <json>\n\n". Our scripts
 * publish single-line JSON objects; a message that is not a {...} object
 * is not ours to pass on, and one that spans lines is re-encoded (SSE data
 * must not). The task id is parsed out only while a ?task= stream needs it. */
static void add_frame(web_hub *h, const char *json) {
  size_t n = strlen(json);
  if (n < 2 || json[0] != '{' || json[n - 1] != '}') return;
  bool need_id = atomic_load(&h->nfiltered) > 0;
  bool multiline = strpbrk(json, "\r\n") != NULL;
  char *flat = NULL;
  char id[RTQ_TASK_ID_SIZE] = "";
  if (need_id || multiline) {
    json_t *v = json_loads(json, 0, NULL);
    if (v == NULL || !json_is_object(v)) {
      json_decref(v);
      return;
    }
    const char *s = json_string_value(json_object_get(v, "id"));
    if (s != NULL) snprintf(id, sizeof id, "%s", s);
    if (multiline) flat = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (multiline && flat == NULL) return;
  }
  const char *body = flat != NULL ? flat : json;
  size_t bn = flat != NULL ? strlen(flat) : n;
  if (grow((void **)&h->batch, &h->bcap, h->blen + bn + 8, 1) == 0 &&
      grow((void **)&h->refs, &h->rcap, h->nrefs + 1, sizeof *h->refs) == 0) {
    frame_ref *r = &h->refs[h->nrefs++];
    r->off = h->blen;
    memcpy(h->batch + h->blen, "data: ", 6);
    memcpy(h->batch + h->blen + 6, body, bn);
    memcpy(h->batch + h->blen + 6 + bn, "\n\n", 2);
    h->blen += bn + 8;
    r->len = bn + 8;
    memcpy(r->id, id, sizeof id);
  }
  free(flat);
}

/* A ?task= stream's events of this batch, as a block of its own; NULL
 * when none is its task's (or out of memory). */
static block *task_block(web_hub *h, const char *task) {
  size_t n = 0;
  for (size_t i = 0; i < h->nrefs; i++)
    if (strcmp(h->refs[i].id, task) == 0) n += h->refs[i].len;
  if (n == 0) return NULL;
  block *b = block_new(NULL, n);
  if (b == NULL) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < h->nrefs; i++)
    if (strcmp(h->refs[i].id, task) == 0) {
      memcpy(b->data + k, h->batch + h->refs[i].off, h->refs[i].len);
      k += h->refs[i].len;
    }
  return b;
}

/* Hands the batch to every stream: one shared block for the all-events
 * streams, a count for the ticking ones. */
static void flush(web_hub *h) {
  if (h->nrefs == 0) return;
  block *all = block_new(h->batch, h->blen);
  uint64_t now = rtq__mono_ms();
  pthread_mutex_lock(&h->mu);
  h->st.events += h->nrefs;
  for (web_sse *s = h->clients; s != NULL; s = s->next) {
    if (s->ticks) {
      s->pending += h->nrefs;
    } else if (s->filtered) {
      block *b = task_block(h, s->task);
      if (b != NULL) {
        enqueue(s, b, now);
        if (b->refs == 0) free(b);
      }
    } else if (all != NULL) {
      enqueue(s, all, now);
    } else {
      drop(s);
    }
  }
  /* Decided under the lock: once it is released a reader may take the
   * last reference and free the block itself. */
  bool unused = all != NULL && all->refs == 0;
  pthread_mutex_unlock(&h->mu);
  if (unused) free(all);
  h->blen = 0;
  h->nrefs = 0;
  /* A giant message grew the buffer: do not keep that size for good. */
  if (h->bcap > 4 * BLOCK_BYTES) {
    free(h->batch);
    h->batch = NULL;
    h->bcap = 0;
  }
}

static void to_all(web_hub *h, const char *msg) {
  uint64_t now = rtq__mono_ms();
  pthread_mutex_lock(&h->mu);
  for (web_sse *s = h->clients; s != NULL; s = s->next) enqueue_copy(s, msg, strlen(msg), now);
  pthread_mutex_unlock(&h->mu);
}

/* Once a second: ticks for the ticking streams that saw events, a ping
 * for any stream that got nothing for KEEPALIVE_MS, and a look at parked
 * streams' sockets for hang-ups (the HTTP server does not watch a
 * suspended connection). */
static void housekeeping(web_hub *h) {
  uint64_t now = rtq__mono_ms();
  pthread_mutex_lock(&h->mu);
  size_t np = 0;
  if (h->nclients > h->pcap) {
    size_t cap = h->nclients * 2;
    struct pollfd *pfd = realloc(h->pfd, cap * sizeof *pfd);
    if (pfd != NULL) h->pfd = pfd;
    web_sse **pcl = pfd != NULL ? realloc(h->pcl, cap * sizeof *pcl) : NULL;
    if (pcl != NULL) h->pcl = pcl;
    if (pcl != NULL) h->pcap = cap;
  }
  for (web_sse *s = h->clients; s != NULL && np < h->pcap; s = s->next) {
    if (!s->parked || s->fd < 0) continue;
    h->pfd[np] = (struct pollfd){.fd = s->fd, .events = POLLRDHUP, .revents = 0};
    h->pcl[np++] = s;
  }
  if (np > 0 && poll(h->pfd, np, 0) > 0)
    for (size_t i = 0; i < np; i++)
      if ((h->pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
        h->pcl[i]->gone = true;
        queue_clear(h->pcl[i]);
        wake(h->pcl[i]);
      }
  for (web_sse *s = h->clients; s != NULL; s = s->next) {
    if (s->ticks && s->pending > 0) {
      char msg[80];
      int n = snprintf(msg, sizeof msg, "event: tick\ndata: {\"events\":%llu}\n\n",
                       (unsigned long long)s->pending);
      s->pending = 0;
      enqueue_copy(s, msg, (size_t)n, now);
    }
    if (now - s->last_queued_ms >= KEEPALIVE_MS) enqueue_copy(s, ": ping\n\n", 8, now);
  }
  bool trim = h->trim && h->nclients == 0;
  if (trim) h->trim = false;
  pthread_mutex_unlock(&h->mu);
  /* The last stream went: give the pages its connection and blocks held
   * (in several threads' malloc arenas) back to the system. */
  if (trim) malloc_trim(0);
}

static bool closing(web_hub *h) {
  pthread_mutex_lock(&h->mu);
  bool c = h->closing;
  pthread_mutex_unlock(&h->mu);
  return c;
}

static void pause_ms(web_hub *h, int ms) {
  for (int i = 0; i < ms / 50 && !closing(h); i++) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void *pump(void *arg) {
  web_hub *h = arg;
  rtq_subscription *sub = NULL;
  bool lost = false;
  uint64_t last_house = rtq__mono_ms(), first_at = 0;
  /* A block is queued whole before any client may read it: keep it well
   * under a client's cap, or a burst would drop healthy clients. */
  size_t block_bytes = h->cap / 4 < BLOCK_BYTES ? h->cap / 4 : BLOCK_BYTES;
  while (!closing(h)) {
    if (sub == NULL) {
      if (rtq_events_subscribe(h->c, &sub) != 0) {
        /* Once per outage, not once a second. */
        if (!lost)
          rtq_log(RTQ_LOG_WARNING, "events subscription failed; retrying every second", "error",
                  rtq_client_errstr(h->c), NULL);
        lost = true;
        pause_ms(h, 1000);
        housekeeping(h);
        continue;
      }
      if (lost) {
        rtq_log(RTQ_LOG_INFO, "events subscription open again", NULL);
        /* Events were missed while it was down: the pages re-read. */
        pthread_mutex_lock(&h->mu);
        h->st.resets++;
        pthread_mutex_unlock(&h->mu);
        to_all(h, "event: reset\ndata: {}\n\n");
      }
      lost = false;
    }
    uint64_t now = rtq__mono_ms();
    int64_t wait = READ_WAIT_MS;
    if (h->nrefs > 0) wait = first_at + FLUSH_MS > now ? (int64_t)(first_at + FLUSH_MS - now) : 0;
    char *json = NULL;
    int rc = rtq_subscription_next(sub, wait, &json);
    if (rc == 0) {
      if (h->nrefs == 0) first_at = rtq__mono_ms();
      add_frame(h, json);
      free(json);
    }
    now = rtq__mono_ms();
    if (h->nrefs > 0 && (now - first_at >= FLUSH_MS || h->blen >= block_bytes || rc != 0))
      flush(h);
    if (now - last_house >= HOUSEKEEPING_MS) {
      housekeeping(h);
      last_house = now;
    }
    if (rc != 0 && rc != RTQ_ETIMEDOUT) {
      rtq_log(RTQ_LOG_WARNING, "events subscription lost", "error", rtq_client_errstr(h->c), NULL);
      rtq_subscription_free(sub);
      sub = NULL;
      lost = true;
      pause_ms(h, 200);
    }
  }
  rtq_subscription_free(sub);
  return NULL;
}

/* ----- the hub --------------------------------------------------------------- */

int web_hub_new(rtq_client *c, int max_clients, size_t buffer, web_hub **out) {
  *out = NULL;
  web_hub *h = calloc(1, sizeof *h);
  if (h == NULL) return RTQ_ENOMEM;
  h->c = c;
  h->max_clients = max_clients;
  h->cap = buffer;
  atomic_init(&h->nfiltered, 0);
  pthread_mutex_init(&h->mu, NULL);
  if (pthread_create(&h->pump, NULL, pump, h) != 0) {
    pthread_mutex_destroy(&h->mu);
    free(h);
    return RTQ_EIO;
  }
  h->pump_started = true;
  *out = h;
  return 0;
}

void web_hub_close(web_hub *h) {
  if (h == NULL) return;
  pthread_mutex_lock(&h->mu);
  h->closing = true;
  for (web_sse *s = h->clients; s != NULL; s = s->next) wake(s);
  pthread_mutex_unlock(&h->mu);
}

void web_hub_free(web_hub *h) {
  if (h == NULL) return;
  web_hub_close(h);
  if (h->pump_started) pthread_join(h->pump, NULL);
  /* Streams still attached belong to connections the server has closed
   * by now; it released them. */
  pthread_mutex_destroy(&h->mu);
  free(h->batch);
  free(h->refs);
  free(h->pfd);
  free(h->pcl);
  free(h);
}

int web_hub_max_clients(const web_hub *h) { return h->max_clients; }

void web_hub_stats_get(web_hub *h, web_hub_stats *out) {
  pthread_mutex_lock(&h->mu);
  *out = h->st;
  out->clients = h->nclients;
  pthread_mutex_unlock(&h->mu);
}

int web_hub_attach(web_hub *h, const char *task, bool ticks, int fd, web_sse **out) {
  *out = NULL;
  web_sse *s = calloc(1, sizeof *s);
  if (s == NULL) return RTQ_ENOMEM;
  s->hub = h;
  s->fd = fd;
  s->ticks = ticks;
  if (task != NULL && !ticks) {
    s->filtered = true;
    snprintf(s->task, sizeof s->task, "%s", task);
  }
  /* The first bytes tell the browser how soon to reconnect and flush the
   * response headers, so the client knows it is connected. */
  static const char hello[] = "retry: 2000\n: connected\n\n";
  pthread_mutex_lock(&h->mu);
  if (h->closing || h->nclients >= (size_t)h->max_clients) {
    pthread_mutex_unlock(&h->mu);
    free(s);
    return RTQ_ERANGE;
  }
  enqueue_copy(s, hello, sizeof hello - 1, rtq__mono_ms());
  if (s->dropped) {
    h->st.dropped--; /* out of memory before it began: refused, not dropped */
    pthread_mutex_unlock(&h->mu);
    free(s);
    return RTQ_ENOMEM;
  }
  s->next = h->clients;
  if (h->clients != NULL) h->clients->prev = s;
  h->clients = s;
  h->nclients++;
  if (s->filtered) atomic_fetch_add(&h->nfiltered, 1);
  pthread_mutex_unlock(&h->mu);
  *out = s;
  return 0;
}

void web_sse_set_waker(web_sse *s, const web_sse_waker *wk) {
  pthread_mutex_lock(&s->hub->mu);
  s->wk = *wk;
  s->has_waker = true;
  pthread_mutex_unlock(&s->hub->mu);
}

ssize_t web_sse_read(web_sse *s, char *buf, size_t max) {
  web_hub *h = s->hub;
  pthread_mutex_lock(&h->mu);
  if (s->dropped || s->gone) {
    pthread_mutex_unlock(&h->mu);
    return -1;
  }
  if (s->queued > 0) {
    size_t n = 0;
    while (n < max && s->qn > 0) {
      block *b = s->q[s->qhead];
      size_t take = b->len - s->off < max - n ? b->len - s->off : max - n;
      memcpy(buf + n, b->data + s->off, take);
      n += take;
      s->off += take;
      if (s->off == b->len) {
        block_unref(b);
        s->qhead = (s->qhead + 1) % QUEUE_BLOCKS;
        s->qn--;
        s->off = 0;
      }
    }
    s->queued -= n;
    pthread_mutex_unlock(&h->mu);
    return (ssize_t)n;
  }
  if (h->closing) {
    pthread_mutex_unlock(&h->mu);
    return 0;
  }
  /* Parked under the lock: a flush that comes after sees it parked and
   * wakes it; one that came before left bytes, read above. */
  if (s->has_waker) {
    s->parked = true;
    s->wk.suspend(s->wk.arg);
  }
  pthread_mutex_unlock(&h->mu);
  return WEB_SSE_PARKED;
}

void web_sse_release(web_sse *s) {
  if (s == NULL) return;
  web_hub *h = s->hub;
  pthread_mutex_lock(&h->mu);
  if (s->prev != NULL) s->prev->next = s->next;
  else h->clients = s->next;
  if (s->next != NULL) s->next->prev = s->prev;
  h->nclients--;
  h->trim = true;
  if (s->filtered) atomic_fetch_sub(&h->nfiltered, 1);
  queue_clear(s);
  pthread_mutex_unlock(&h->mu);
  free(s);
}
