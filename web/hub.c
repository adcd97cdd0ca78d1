/*
 * hub.c - the events fan-out (the model is in hub.h).
 *
 * One mutex guards the client list and every client's queue. The pump
 * reads a batch of events (whatever arrived, up to BATCH_BYTES) before it
 * takes the lock, so a busy channel costs one lock and one wake-up per
 * client per batch rather than per event.
 */
#include "hub.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "log.h"

#define BATCH_EVENTS 512
#define BATCH_BYTES (64 * 1024)
#define KEEPALIVE_MS 15000
#define HANGUP_POLL_MS 1000
#define READ_WAIT_MS 250
#define TICK_MS 1000
#define RING_START (16 * 1024)

struct web_sse {
  web_hub *hub;
  web_sse *prev, *next;
  pthread_cond_t cv;
  char *buf;          /* ring of size bytes; NULL once dropped */
  size_t size;        /* grows by doubling up to the hub's cap */
  size_t head, len;
  bool dropped;
  bool filtered;
  bool ticks;         /* one "tick" a second instead of the events */
  uint64_t pending;   /* events since its last tick */
  char task[RTQ_TASK_ID_SIZE];
  int fd;
};

struct web_hub {
  rtq_client *c;
  pthread_mutex_t mu;
  web_sse *clients;
  size_t nclients;
  int max_clients;
  size_t cap;
  bool closing;
  bool pump_started;
  pthread_t pump;
  web_hub_stats st;
};

/* ----- one client's queue (hub->mu held) ---------------------------------- */

static void ring_put(web_sse *s, const char *p, size_t n) {
  size_t tail = (s->head + s->len) % s->size;
  size_t first = n < s->size - tail ? n : s->size - tail;
  memcpy(s->buf + tail, p, first);
  memcpy(s->buf, p + first, n - first);
  s->len += n;
}

static size_t ring_take(web_sse *s, char *out, size_t max) {
  size_t n = s->len < max ? s->len : max;
  size_t first = n < s->size - s->head ? n : s->size - s->head;
  memcpy(out, s->buf + s->head, first);
  memcpy(out + first, s->buf, n - first);
  s->head = (s->head + n) % s->size;
  s->len -= n;
  return n;
}

/* Makes room for need bytes by doubling the ring, up to the hub's cap: a
 * stream that keeps up holds a small ring, only a lagging one a big one.
 * 0, or -1 when the cap (or memory) does not allow it. */
static int ring_grow(web_sse *s, size_t need) {
  size_t size = s->size;
  while (size < need && size < s->hub->cap) size = size * 2 < s->hub->cap ? size * 2 : s->hub->cap;
  if (size < need) return -1;
  char *nb = malloc(size);
  if (nb == NULL) return -1;
  size_t len = s->len;
  ring_take(s, nb, len);
  free(s->buf);
  s->buf = nb;
  s->size = size;
  s->head = 0;
  s->len = len;
  return 0;
}

/* Queues a whole message or drops the client: a partial event would
 * corrupt the stream, and waiting would let one client slow every other. */
static void deliver(web_sse *s, const char *msg, size_t n) {
  if (s->dropped) return;
  if (s->len + n > s->size && ring_grow(s, s->len + n) != 0) {
    s->dropped = true;
    free(s->buf);
    s->buf = NULL;
    s->len = 0;
    s->hub->st.dropped++;
    /* Its connection thread may be blocked writing to a full socket:
     * shutting the socket down ends that write now rather than at the
     * connection timeout (the server still closes the descriptor). */
    if (s->fd >= 0) shutdown(s->fd, SHUT_RDWR);
    return;
  }
  ring_put(s, msg, n);
}

/* ----- the pump ------------------------------------------------------------ */

typedef struct event {
  char *frame;      /* "data: ...\n\n" */
  size_t len;
  char id[RTQ_TASK_ID_SIZE];
} event;

/* Frames one message; NULL for one that is not a JSON object (it is not
 * ours to pass on). Re-encoded only when it spans lines, since SSE data
 * must not. */
static int frame(const char *json, event *ev) {
  json_t *v = json_loads(json, 0, NULL);
  if (v == NULL || !json_is_object(v)) {
    json_decref(v);
    return -1;
  }
  const char *id = json_string_value(json_object_get(v, "id"));
  snprintf(ev->id, sizeof ev->id, "%s", id != NULL ? id : "");
  char *flat = NULL;
  if (strpbrk(json, "\r\n") != NULL) flat = json_dumps(v, JSON_COMPACT);
  json_decref(v);
  const char *body = flat != NULL ? flat : json;
  size_t n = strlen(body);
  ev->frame = malloc(n + 9);
  if (ev->frame != NULL) ev->len = (size_t)sprintf(ev->frame, "data: %s\n\n", body);
  free(flat);
  return ev->frame != NULL ? 0 : -1;
}

static void publish(web_hub *h, event *evs, size_t n, const char *extra) {
  pthread_mutex_lock(&h->mu);
  h->st.events += n;
  for (web_sse *s = h->clients; s != NULL; s = s->next) {
    size_t before = s->len;
    if (extra != NULL) deliver(s, extra, strlen(extra));
    if (s->ticks) {
      s->pending += n;
      if (s->len != before || s->dropped) pthread_cond_signal(&s->cv);
      continue;
    }
    for (size_t i = 0; i < n; i++)
      if (!s->filtered || strcmp(s->task, evs[i].id) == 0) deliver(s, evs[i].frame, evs[i].len);
    if (s->len != before || s->dropped) pthread_cond_signal(&s->cv);
  }
  pthread_mutex_unlock(&h->mu);
}

/* Sends each ticking client that saw events since its last tick the
 * count: a page that only re-reads its figures needs no more than that,
 * however busy the channel. */
static void tick(web_hub *h) {
  pthread_mutex_lock(&h->mu);
  for (web_sse *s = h->clients; s != NULL; s = s->next) {
    if (!s->ticks || s->pending == 0) continue;
    char msg[80];
    int n = snprintf(msg, sizeof msg, "event: tick\ndata: {\"events\":%llu}\n\n",
                     (unsigned long long)s->pending);
    s->pending = 0;
    deliver(s, msg, (size_t)n);
    pthread_cond_signal(&s->cv);
  }
  pthread_mutex_unlock(&h->mu);
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
  uint64_t last_tick = rtq__mono_ms();
  event *evs = calloc(BATCH_EVENTS, sizeof *evs);
  if (evs == NULL) {
    rtq_log(RTQ_LOG_ERROR, "out of memory: no live events", NULL);
    return NULL;
  }
  while (!closing(h)) {
    if (sub == NULL) {
      if (rtq_events_subscribe(h->c, &sub) != 0) {
        /* Once per outage, not once a second. */
        if (!lost)
          rtq_log(RTQ_LOG_WARNING, "events subscription failed; retrying every second", "error",
                  rtq_client_errstr(h->c), NULL);
        lost = true;
        pause_ms(h, 1000);
        continue;
      }
      if (lost) rtq_log(RTQ_LOG_INFO, "events subscription open again", NULL);
      if (lost) {
        /* Events were missed while it was down: the pages re-read. */
        pthread_mutex_lock(&h->mu);
        h->st.resets++;
        pthread_mutex_unlock(&h->mu);
        publish(h, NULL, 0, "event: reset\ndata: {}\n\n");
      }
      lost = false;
    }
    size_t n = 0, bytes = 0;
    int rc = 0;
    /* A batch is delivered before any client may drain it: keep it well
     * under a client's queue, or a burst would drop healthy clients. */
    size_t batch_bytes = h->cap / 4 < BATCH_BYTES ? h->cap / 4 : BATCH_BYTES;
    while (n < BATCH_EVENTS && bytes < batch_bytes) {
      char *json = NULL;
      rc = rtq_subscription_next(sub, n == 0 ? READ_WAIT_MS : 0, &json);
      if (rc != 0) break;
      if (frame(json, &evs[n]) == 0) bytes += evs[n++].len;
      free(json);
    }
    if (n > 0) publish(h, evs, n, NULL);
    for (size_t i = 0; i < n; i++) free(evs[i].frame);
    uint64_t now = rtq__mono_ms();
    if (now - last_tick >= TICK_MS) {
      tick(h);
      last_tick = now;
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
  free(evs);
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
  for (web_sse *s = h->clients; s != NULL; s = s->next) pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&h->mu);
}

void web_hub_free(web_hub *h) {
  if (h == NULL) return;
  web_hub_close(h);
  if (h->pump_started) pthread_join(h->pump, NULL);
  /* Streams still attached belong to connections the server has closed
   * by now; it released them. */
  pthread_mutex_destroy(&h->mu);
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
  size_t size = h->cap < RING_START ? h->cap : RING_START;
  char *buf = malloc(size);
  if (s == NULL || buf == NULL) {
    free(s);
    free(buf);
    return RTQ_ENOMEM;
  }
  s->hub = h;
  s->buf = buf;
  s->size = size;
  s->fd = fd;
  s->ticks = ticks;
  if (task != NULL) {
    s->filtered = true;
    snprintf(s->task, sizeof s->task, "%s", task);
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  /* The first bytes tell the browser how soon to reconnect and flush the
   * response headers, so the client knows it is connected. */
  static const char hello[] = "retry: 2000\n: connected\n\n";
  pthread_mutex_lock(&h->mu);
  if (h->closing || h->nclients >= (size_t)h->max_clients) {
    pthread_mutex_unlock(&h->mu);
    pthread_cond_destroy(&s->cv);
    free(buf);
    free(s);
    return RTQ_ERANGE;
  }
  ring_put(s, hello, sizeof hello - 1);
  s->next = h->clients;
  if (h->clients != NULL) h->clients->prev = s;
  h->clients = s;
  h->nclients++;
  pthread_mutex_unlock(&h->mu);
  *out = s;
  return 0;
}

/* Whether the peer closed its end (checked while idle). */
static bool hung_up(int fd) {
  if (fd < 0) return false;
  struct pollfd p = {.fd = fd, .events = POLLRDHUP, .revents = 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

ssize_t web_sse_read(web_sse *s, char *buf, size_t max) {
  web_hub *h = s->hub;
  uint64_t idle_since = rtq__mono_ms();
  pthread_mutex_lock(&h->mu);
  for (;;) {
    if (s->dropped) break;
    if (s->len > 0) {
      size_t n = ring_take(s, buf, max);
      pthread_mutex_unlock(&h->mu);
      return (ssize_t)n;
    }
    if (h->closing) {
      pthread_mutex_unlock(&h->mu);
      return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += HANGUP_POLL_MS / 1000;
    pthread_cond_timedwait(&s->cv, &h->mu, &ts);
    if (s->len > 0 || s->dropped || h->closing) continue;
    pthread_mutex_unlock(&h->mu);
    bool gone = hung_up(s->fd);
    bool ping = rtq__mono_ms() - idle_since >= KEEPALIVE_MS;
    pthread_mutex_lock(&h->mu);
    if (gone) break;
    if (ping && s->len == 0 && max >= 8) {
      pthread_mutex_unlock(&h->mu);
      memcpy(buf, ": ping\n\n", 8);
      return 8;
    }
  }
  pthread_mutex_unlock(&h->mu);
  return -1;
}

void web_sse_release(web_sse *s) {
  if (s == NULL) return;
  web_hub *h = s->hub;
  pthread_mutex_lock(&h->mu);
  if (s->prev != NULL) s->prev->next = s->next;
  else h->clients = s->next;
  if (s->next != NULL) s->next->prev = s->prev;
  h->nclients--;
  pthread_mutex_unlock(&h->mu);
  pthread_cond_destroy(&s->cv);
  bool big = s->size > RING_START;
  free(s->buf);
  free(s);
  /* A lagging stream's queue grew: give the memory back to the system. */
  if (big) malloc_trim(0);
}
