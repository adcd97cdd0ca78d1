/*
 * http.c - the HTTP server, on libmicrohttpd; with metrics_server.c the
 * only file that includes <microhttpd.h>.
 *
 * Threading: a pool of HTTP_THREADS threads, each running libmicrohttpd's
 * epoll loop over its share of the connections. A request that reads
 * Redis holds its thread for that read (librtq is blocking), so at most
 * HTTP_THREADS requests are answered at once; an event stream holds no
 * thread at all: when its queue is empty the connection is suspended
 * (MHD_suspend_connection, from the content reader) and the hub resumes
 * it once there is something to send. So 100 streams cost 100 sockets and
 * queues, not 100 threads and their stacks. Connections are capped
 * (max_connections), idle ones close after CONNECTION_TIMEOUT_S (a
 * suspended stream does not time out; the hub pings it every 15 s).
 *
 * Limits enforced here: the header block and request line fit in
 * MEMORY_LIMIT bytes (libmicrohttpd answers 431/414 otherwise); query
 * parameters are counted and measured for routes.c; a Content-Length
 * past WEB_MAX_BODY is answered 413 before the body is read, and a chunked
 * body is counted as it arrives (never kept) and its connection closed
 * once it passes the limit.
 */
#include "http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub.h"
#include "log.h"

#define MEMORY_LIMIT (32 * 1024)
#define CONNECTION_TIMEOUT_S 60
#define THREAD_STACK (512 * 1024)
#define HTTP_THREADS 4
/* The buffer libmicrohttpd allocates with an event stream's response (and
 * calloc touches): a chunked body is written from the connection's memory
 * pool instead, up to MEMORY_LIMIT per write, so a small one saves about
 * 30 KiB of RSS per stream and no write gets smaller. */
#define SSE_BLOCK 1024

struct web_http {
  struct MHD_Daemon *d;
  int fd;
};

/* Per request (con_cls). */
typedef struct req_state {
  size_t body_len;
  bool answered;
} req_state;

/* ----- requests ------------------------------------------------------------- */

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
  (void)kind;
  web_request *req = cls;
  if (req->nparams >= WEB_MAX_PARAMS) {
    req->too_many_params = true;
    return MHD_NO;
  }
  if (value == NULL) value = "";
  if (strlen(key) > 32 || strlen(value) > WEB_MAX_PARAM_VALUE) req->param_too_long = true;
  req->params[req->nparams++] = (web_param){key, value};
  return MHD_YES;
}

/* An event stream's connection, for the hub's waker. */
typedef struct sse_stream {
  web_sse *s;
  struct MHD_Connection *conn;
} sse_stream;

static void sse_suspend(void *arg) { MHD_suspend_connection(((sse_stream *)arg)->conn); }
static void sse_resume(void *arg) { MHD_resume_connection(((sse_stream *)arg)->conn); }

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  ssize_t n = web_sse_read(((sse_stream *)cls)->s, buf, max);
  if (n > 0) return n;
  if (n == WEB_SSE_PARKED) return 0; /* suspended: called again once resumed */
  return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void sse_free(void *cls) {
  sse_stream *st = cls;
  web_sse_release(st->s);
  free(st);
}

static void add_headers(struct MHD_Response *r, const web_response *res) {
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (res->allow != NULL) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, res->allow);
  if (res->www_auth)
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            res->www_basic ? "Basic realm=\"rtq\", charset=\"UTF-8\"" : "Bearer");
  if (res->sse != NULL) MHD_add_response_header(r, "X-Accel-Buffering", "no");
  if (res->html) {
    /* The page's own script and style only: no inline script, no other
     * origin, so even a string that escaped escaping could not run. */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; "
                            "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
  }
}

static enum MHD_Result answer(struct MHD_Connection *conn, web_response *res) {
  struct MHD_Response *r = NULL;
  if (res->sse != NULL) {
    sse_stream *st = malloc(sizeof *st);
    if (st != NULL) {
      *st = (sse_stream){res->sse, conn};
      web_sse_set_waker(res->sse, &(web_sse_waker){sse_suspend, sse_resume, st});
      r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_reader, st, sse_free);
    }
    if (r == NULL) {
      web_sse_release(res->sse);
      free(st);
    }
  } else if (res->body_static) {
    r = MHD_create_response_from_buffer(res->len, res->body, MHD_RESPMEM_PERSISTENT);
  } else {
    r = MHD_create_response_from_buffer(res->len, res->body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) free(res->body);
  }
  if (r == NULL) return MHD_NO;
  add_headers(r, res);
  enum MHD_Result ok = MHD_queue_response(conn, (unsigned)res->status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  web_ctx *w = cls;
  req_state *st = *con_cls;
  web_request req;
  memset(&req, 0, sizeof req);
  req.method = method;
  req.path = url;
  if (st == NULL) {
    if ((st = calloc(1, sizeof *st)) == NULL) return MHD_NO;
    *con_cls = st;
    /* A declared body past the limit is answered before it is read. */
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl == NULL || strtoull(cl, NULL, 10) <= WEB_MAX_BODY) return MHD_YES;
    req.body_len = (size_t)WEB_MAX_BODY + 1;
  } else if (*upload_size > 0) {
    /* Bodies are counted, never kept: no endpoint reads one. A chunked
     * body that grows past the limit closes the connection (the answer
     * can only be queued once the upload is over). */
    st->body_len += *upload_size;
    *upload_size = 0;
    return st->body_len <= WEB_MAX_BODY ? MHD_YES : MHD_NO;
  } else if (st->answered) {
    return MHD_YES;
  } else {
    req.body_len = st->body_len;
  }
  st->answered = true;
  req.host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  req.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  req.origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
  req.fetch_site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, &req);
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  req.sse_fd = ci != NULL ? ci->connect_fd : -1;
  web_response res;
  web_route(w, &req, &res);
  return answer(conn, &res);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  free(*con_cls);
  *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && msg[n - 1] == '\n') msg[--n] = '\0';
  rtq_log(RTQ_LOG_WARNING, "http", "detail", msg, NULL);
}

int web_http_start(web_ctx *w, int fd, int max_connections, web_http **out) {
  *out = NULL;
  web_http *h = calloc(1, sizeof *h);
  if (h == NULL) return RTQ_ENOMEM;
  h->fd = fd;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ERROR_LOG;
  h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                          NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_connections,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_LIMIT,
                          MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
                          MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK,
                          MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
  if (h->d == NULL) {
    free(h);
    return RTQ_EIO;
  }
  *out = h;
  return 0;
}

void web_http_stop(web_http *h) {
  if (h == NULL) return;
  MHD_stop_daemon(h->d);
  close(h->fd);
  free(h);
}
