/*
 * metrics_server.c - GET /metrics on a socket of its own, for rtq-broker
 * --metrics-listen: a deployment without the dashboard can still be
 * scraped. One libmicrohttpd polling thread; a scrape reads Redis through
 * librtq (web_metrics_scrape), as rtq-web's /metrics does.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "overview.h"

struct web_metrics_server {
  struct MHD_Daemon *d;
  rtq_client *c;
  int fd;
  char url[160];
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
  if (r == NULL) {
    if (mode == MHD_RESPMEM_MUST_FREE) free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  enum MHD_Result ok = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  static char not_found[] = "not found: this server has /metrics only\n";
  static char not_allowed[] = "method not allowed\n";
  web_metrics_server *s = cls;
  if (*con_cls == NULL) {
    *con_cls = s; /* first call: headers only */
    return MHD_YES;
  }
  if (*upload_size > 0) return MHD_NO; /* no body is read: close */
  if (strcmp(url, "/metrics") != 0)
    return reply(conn, 404, "text/plain", not_found, sizeof not_found - 1, MHD_RESPMEM_PERSISTENT);
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return reply(conn, 405, "text/plain", not_allowed, sizeof not_allowed - 1, MHD_RESPMEM_PERSISTENT);
  char *text = NULL;
  size_t len = 0;
  if (web_metrics_scrape(s->c, &text, &len) != 0) return MHD_NO;
  return reply(conn, 200, WEB_METRICS_CONTENT_TYPE, text, len, MHD_RESPMEM_MUST_FREE);
}

int web_metrics_server_start(rtq_client *c, const char *listen, web_metrics_server **out, char *why,
                             size_t wcap) {
  *out = NULL;
  web_metrics_server *s = calloc(1, sizeof *s);
  if (s == NULL) {
    snprintf(why, wcap, "out of memory");
    return -1;
  }
  bool loopback;
  char url[128];
  if (web_listen(listen, &loopback, url, sizeof url, &s->fd, why, wcap) != 0) {
    free(s);
    return -1;
  }
  s->c = c;
  snprintf(s->url, sizeof s->url, "%smetrics", url);
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, handle, s,
                          MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_CONNECTION_LIMIT, 64u,
                          MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                          (size_t)(16 * 1024), MHD_OPTION_END);
  if (s->d == NULL) {
    snprintf(why, wcap, "cannot start the metrics server on %s", listen);
    close(s->fd);
    free(s);
    return -1;
  }
  *out = s;
  return 0;
}

const char *web_metrics_server_url(const web_metrics_server *s) { return s->url; }

void web_metrics_server_stop(web_metrics_server *s) {
  if (s == NULL) return;
  MHD_stop_daemon(s->d);
  close(s->fd);
  free(s);
}
