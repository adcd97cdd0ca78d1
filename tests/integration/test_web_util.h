/*
 * test_web_util.h - what the rtq-web tests share: starting the real
 * rtq-web and rtq-worker binaries, and a small HTTP/1.1 client on raw
 * sockets (the test is the client; the server under test is
 * libmicrohttpd's).
 *
 * Every read and connect has a deadline; a server that does not answer
 * fails the test instead of hanging it.
 */
#ifndef RTQ_TEST_WEB_UTIL_H
#define RTQ_TEST_WEB_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "rtq/client.h"
#include "test_cli_run.h"

#define WEB_TOKEN "test-token-0123456789abcdef"

typedef struct web_srv {
  pid_t pid;
  int port;
  char log[512];
} web_srv;

/* The port from the "listening url=http://127.0.0.1:PORT/" line; 0 before. */
static inline int web_port_from_log(const char *log) {
  char *text = cli_slurp(log);
  const char *p = strstr(text, "url=http://");
  int port = 0;
  if (p != NULL) {
    const char *colon = strchr(p + 11, ']');
    colon = strchr(colon != NULL ? colon : p + 11, ':');
    if (colon != NULL) port = atoi(colon + 1);
  }
  free(text);
  return port;
}

/* A token file in the server's temp dir; returns its path (static buffer). */
static inline const char *web_token_file(void) {
  static char path[512];
  snprintf(path, sizeof path, "%s/web.token", rtq_test_redis_dir(rtq_test_redis_default()));
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(WEB_TOKEN "\n", f);
  fclose(f);
  return path;
}

/* Spawns rtq-web on 127.0.0.1:0 against the default server with the extra
 * flags (NULL-terminated) and waits until it listens. (asserts) */
static inline void web_start(web_srv *s, const char *const *extra) {
  static int n;
  char bin[512];
  assert_non_null(rtq_test_bin_path("web/rtq-web", bin, sizeof bin));
  memset(s, 0, sizeof *s);
  snprintf(s->log, sizeof s->log, "%s/web-%d.log", rtq_test_redis_dir(rtq_test_redis_default()), n++);
  const char *argv[32] = {bin, "--listen", "127.0.0.1:0", "--redis", rtq_test_redis_url()};
  int k = 5;
  for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
    assert_true(k < 31);
    argv[k++] = extra[i];
  }
  argv[k] = NULL;
  rtq_test_spawn_options o = {.path = bin, .argv = argv, .output_path = s->log};
  s->pid = rtq_test_spawn_ex(&o);
  assert_true(s->pid > 0);
  uint64_t deadline = rtq_test_now_ms() + 10000;
  while ((s->port = web_port_from_log(s->log)) == 0) {
    if (rtq_test_wait_exit(s->pid, 0, NULL) == 0 || rtq_test_now_ms() > deadline) {
      char *text = cli_slurp(s->log);
      fail_msg("rtq-web did not start: %s", text);
    }
    rtq__test_poll_pause(5);
  }
}

/* SIGTERM; asserts a clean exit 0 within 10 s. */
static inline void web_stop(web_srv *s) {
  int status = 0;
  int rc = rtq_test_terminate(s->pid, SIGTERM, 10000, &status);
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char *text = cli_slurp(s->log);
    fail_msg("rtq-web did not stop cleanly (rc %d, status %d): %s", rc, status, text);
  }
}

/* rtq-worker --demo-handlers on the default server. */
static inline pid_t web_worker_start(const char *ns) {
  char bin[512], log[512];
  assert_non_null(rtq_test_bin_path("worker/rtq-worker", bin, sizeof bin));
  snprintf(log, sizeof log, "%s/worker.log", rtq_test_redis_dir(rtq_test_redis_default()));
  const char *argv[] = {bin, "--redis", rtq_test_redis_url(), "--namespace", ns, "--demo-handlers",
                        "--concurrency", "4", "--progress-interval", "50ms", "--shutdown-grace", "1s",
                        NULL};
  rtq_test_spawn_options o = {.path = bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&o);
  assert_true(pid > 0);
  return pid;
}

/* ----- a client of the default server -------------------------------------- */

static rtq_client *tw_client;

/* cmocka setup and teardown: a flushed server and a client in namespace rtq. */
static inline int tw_setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  rtq_client_options o = {.redis_url = rtq_test_redis_url(), .ns = "rtq"};
  assert_int_equal(rtq_client_new(&o, &tw_client), 0);
  return 0;
}

static inline int tw_teardown(void **state) {
  (void)state;
  rtq_client_free(tw_client);
  tw_client = NULL;
  return 0;
}

/* Enqueues name on queue (NULL: default) with JSON args, delayed by
 * delay_ms. (asserts) */
static inline void tw_create(const char *name, const char *queue, const char *args_json, uint64_t delay_ms,
                             char id[RTQ_TASK_ID_SIZE]) {
  rtq_args *a = NULL;
  char why[128];
  assert_int_equal(rtq_args_from_json(args_json, &a, why, sizeof why), 0);
  rtq_task_options o = {.queue = queue, .delay_ms = delay_ms};
  assert_int_equal(rtq_create_task(tw_client, name, a, &o, id, NULL), 0);
  rtq_args_free(a);
}

/* ----- HTTP ---------------------------------------------------------------- */

typedef struct http_resp {
  int status;
  char *head;        /* status line and headers */
  char *body;        /* de-chunked, NUL-terminated */
  size_t body_len;
} http_resp;

static inline void http_resp_free(http_resp *r) {
  free(r->head);
  free(r->body);
  memset(r, 0, sizeof *r);
}

static inline int http_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) fail_msg("connect: %s", strerror(errno));
  return fd;
}

static inline void http_send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* the server may close early (413): read its answer */
    p += w;
    n -= (size_t)w;
  }
}

/* Reads what arrives within the deadline until EOF; the caller frees. */
static inline char *http_read_all(int fd, int timeout_ms, size_t *len) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  uint64_t deadline = rtq_test_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    uint64_t now = rtq_test_now_ms();
    if (now >= deadline) fail_msg("no complete HTTP answer within %d ms", timeout_ms);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)(deadline - now)) <= 0) continue;
    if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
    ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Chunked transfer coding -> plain bytes, in place. */
static inline size_t http_dechunk(char *b, size_t n) {
  size_t in = 0, out = 0;
  while (in < n) {
    char *end;
    unsigned long sz = strtoul(b + in, &end, 16);
    char *crlf = strstr(end, "\r\n");
    if (crlf == NULL || sz == 0) break;
    in = (size_t)(crlf - b) + 2;
    if (in + sz > n) sz = n - in;
    memmove(b + out, b + in, sz);
    out += sz;
    in += sz + 2;
  }
  b[out] = '\0';
  return out;
}

/* The value of header name in r->head (a malloc'd copy), NULL if absent. */
static inline char *http_header(const http_resp *r, const char *name) {
  size_t nl = strlen(name);
  for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ') v++;
      const char *e = strstr(v, "\r\n");
      return strndup(v, e != NULL ? (size_t)(e - v) : strlen(v));
    }
  }
  return NULL;
}

/* Sends a raw request (the caller writes every header line; the request
 * must say Connection: close) and parses the answer. (asserts) */
static inline void http_raw(int port, const char *req, size_t len, http_resp *out) {
  memset(out, 0, sizeof *out);
  int fd = http_connect(port);
  http_send_all(fd, req, len);
  size_t n;
  char *buf = http_read_all(fd, 10000, &n);
  close(fd);
  char *sep = strstr(buf, "\r\n\r\n");
  if (sep == NULL || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1)
    fail_msg("not an HTTP answer: %.200s", buf);
  out->head = strndup(buf, (size_t)(sep - buf));
  size_t blen = n - (size_t)(sep + 4 - buf);
  out->body = malloc(blen + 1);
  memcpy(out->body, sep + 4, blen);
  out->body[blen] = '\0';
  out->body_len = blen;
  char *te = http_header(out, "Transfer-Encoding");
  if (te != NULL && strcasecmp(te, "chunked") == 0) out->body_len = http_dechunk(out->body, blen);
  free(te);
  free(buf);
}

/* METHOD path with extra header lines (each ending in \r\n; may be NULL)
 * and an optional body. (asserts) */
static inline void http_req(int port, const char *method, const char *path, const char *headers,
                            const char *body, http_resp *out) {
  size_t blen = body != NULL ? strlen(body) : 0;
  size_t cap = strlen(path) + (headers ? strlen(headers) : 0) + blen + 256;
  char *req = malloc(cap);
  int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s", method,
                   path, port, headers != NULL ? headers : "");
  if (body != NULL) n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n", blen);
  n += snprintf(req + n, cap - (size_t)n, "\r\n");
  if (body != NULL) {
    memcpy(req + n, body, blen);
    n += (int)blen;
  }
  http_raw(port, req, (size_t)n, out);
  free(req);
}

static inline void http_get(int port, const char *path, http_resp *out) {
  http_req(port, "GET", path, NULL, NULL, out);
}

/* GET path, expects status, returns the body parsed as JSON. (asserts) */
static inline json_t *http_json(int port, const char *path, const char *headers, int status) {
  http_resp r;
  http_req(port, "GET", path, headers, NULL, &r);
  if (r.status != status) fail_msg("GET %s: %d, wanted %d: %s", path, r.status, status, r.body);
  json_error_t e;
  json_t *v = json_loads(r.body, JSON_DECODE_ANY, &e);
  if (v == NULL) fail_msg("GET %s: not JSON (%s): %s", path, e.text, r.body);
  http_resp_free(&r);
  return v;
}

/* ----- Server-Sent Events ----------------------------------------------------- */

typedef struct sse_conn {
  int fd;
  char *buf;
  size_t len, cap;
} sse_conn;

/* Opens GET path as an event stream, with extra header lines. (asserts) */
static inline void sse_open(sse_conn *s, int port, const char *path, const char *headers) {
  memset(s, 0, sizeof *s);
  s->fd = http_connect(port);
  char req[1024];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n%s\r\n",
                   path, port, headers != NULL ? headers : "");
  http_send_all(s->fd, req, (size_t)n);
  s->cap = 65536;
  s->buf = malloc(s->cap);
  s->buf[0] = '\0';
}

/* Reads until needle appears after byte `from` or timeout_ms passes.
 * Returns whether it appeared; the stream's bytes (chunk framing
 * included) accumulate in s->buf. */
static inline bool sse_wait_for(sse_conn *s, const char *needle, size_t from, int timeout_ms) {
  uint64_t deadline = rtq_test_now_ms() + (uint64_t)timeout_ms;
  size_t nl = strlen(needle);
  for (;;) {
    if (s->len > from && strstr(s->buf + from, needle) != NULL) return true;
    /* Only new bytes (and a needle's length before them) are searched
     * next time: a long stream stays linear. */
    if (s->len > from + nl) from = s->len - nl;
    uint64_t now = rtq_test_now_ms();
    if (now >= deadline) return false;
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, (int)(deadline - now)) <= 0) continue;
    if (s->len + 4097 > s->cap) s->buf = realloc(s->buf, s->cap *= 2);
    ssize_t r = recv(s->fd, s->buf + s->len, s->cap - s->len - 1, 0);
    if (r <= 0) return false;
    s->len += (size_t)r;
    s->buf[s->len] = '\0';
  }
}

static inline void sse_close(sse_conn *s) {
  if (s->fd >= 0) close(s->fd);
  free(s->buf);
  memset(s, 0, sizeof *s);
  s->fd = -1;
}

#endif
