/*
 * routes.c - which handler answers a request, and whether it may.
 *
 *   GET  /, /app.js, /app.css     the page (no token: it asks for one)
 *   GET  /api/info                what the page needs to know first
 *   GET  /api/stats               overview
 *   GET  /api/tasks               list (filters, paging)
 *   GET  /api/tasks/<id>          one task
 *   GET  /api/workers             alive workers
 *   GET  /api/dead                dead letters (offset, limit)
 *   GET  /api/dead/<index>        one dead letter
 *   GET  /api/throughput          completed/failed per minute (minutes, queue)
 *   GET  /api/events              Server-Sent Events (?task=ID, ?ticks=1)
 *   POST /api/tasks/<id>/cancel   actions
 *   POST /api/tasks/<id>/retry
 *   POST /api/queues/<queue>/pause, /resume
 *   POST /api/dead/<index>/requeue  (?id=, ?queue=)
 *   POST /api/dead/requeue        every dead letter that can be (?queue=)
 *   POST /api/dead/purge          (?queue=)
 *   GET  /metrics                 Prometheus
 *
 * Order of the checks: method, Host (without credentials configured),
 * limits, route, credentials (with a token only: everything but the page
 * and /api/info; with basic-auth users: everything, so that the browser
 * asks for the login when it loads the page), then for actions read-only,
 * "no credentials configured", and, for Basic credentials, which a browser
 * sends on its own, that the request comes from this server's page.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "overview.h"
#include "web.h"

/* Answers with a handler and leaves the (void) function. */
#define RET(call) \
  do {            \
    call;         \
    return;       \
  } while (0)

void web_error(web_response *res, int status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  web_json(res, status, json_pack("{s:s}", "error", msg));
}

/* JSON text with <, > and & written as \u escapes (they occur only inside
 * strings), so no byte of a task's text can read as markup even where a
 * response is misread as HTML. Takes s; NULL when out of memory. */
static char *html_safe(char *s) {
  size_t n = 0, extra = 0;
  for (; s[n] != '\0'; n++) extra += s[n] == '<' || s[n] == '>' || s[n] == '&';
  if (extra == 0) return s;
  char *out = malloc(n + extra * 5 + 1);
  if (out != NULL) {
    char *o = out;
    for (const char *p = s; *p; p++) {
      if (*p == '<' || *p == '>' || *p == '&')
        o += sprintf(o, "\\u%04x", (unsigned)*p);
      else
        *o++ = *p;
    }
    *o = '\0';
  }
  free(s);
  return out;
}

void web_json(web_response *res, int status, json_t *v) {
  if (res->body != NULL && !res->body_static) free(res->body);
  res->body = NULL;
  res->body_static = false;
  char *s = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
  json_decref(v);
  if (s != NULL) s = html_safe(s);
  if (s == NULL) {
    static char oom[] = "{\"error\":\"out of memory\"}";
    res->status = 500;
    res->body = oom;
    res->body_static = true;
    res->len = sizeof oom - 1;
  } else {
    res->status = status;
    res->body = s;
    res->len = strlen(s);
  }
  res->content_type = "application/json";
}

const char *web_param_get(const web_request *req, const char *name) {
  for (size_t i = 0; i < req->nparams; i++)
    if (strcmp(req->params[i].name, name) == 0) return req->params[i].value;
  return NULL;
}

static void method_not_allowed(web_response *res, const char *allow) {
  web_error(res, 405, "method not allowed (allowed: %s)", allow);
  res->allow = allow;
}

static bool is_get(const web_request *req) {
  return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

static void metrics(web_ctx *w, web_response *res) {
  char *text = NULL;
  size_t len = 0;
  if (web_metrics_scrape(w->client, &text, &len) != 0) {
    web_error(res, 500, "out of memory");
    return;
  }
  res->status = 200;
  res->body = text;
  res->len = len;
  res->content_type = WEB_METRICS_CONTENT_TYPE;
}

static void events(web_ctx *w, const web_request *req, web_response *res) {
  const char *task = web_param_get(req, "task");
  const char *ticks = web_param_get(req, "ticks");
  if (task != NULL && rtq_validate_name(task) != 0) {
    web_error(res, 400, "invalid task id");
    return;
  }
  if (ticks != NULL && strcmp(ticks, "1") != 0 && strcmp(ticks, "0") != 0) {
    web_error(res, 400, "ticks must be 0 or 1");
    return;
  }
  int rc = web_hub_attach(w->hub, task, ticks != NULL && ticks[0] == '1', req->sse_fd, &res->sse);
  if (rc != 0) {
    web_error(res, 503, "too many event streams (at most %d)", web_hub_max_clients(w->hub));
    return;
  }
  res->status = 200;
  res->content_type = "text/event-stream";
}

/* Only these query parameters exist; anything else is a typo to report. */
static bool params_known(const web_request *req, const char *const *known) {
  for (size_t i = 0; i < req->nparams; i++) {
    bool ok = false;
    for (size_t k = 0; known[k] != NULL && !ok; k++) ok = strcmp(req->params[i].name, known[k]) == 0;
    if (!ok) return false;
  }
  return true;
}

/* With credentials configured, the request must carry them: 401 without
 * (or with wrong Basic ones), 403 with a wrong token, 400 malformed Basic.
 * *basic (may be NULL): Basic credentials passed. */
static bool authorized(web_ctx *w, const web_request *req, web_response *res, bool *basic) {
  bool b = false;
  if (basic != NULL) *basic = false;
  if (!web_auth_configured(w)) return true;
  int st = web_auth_check(w, req->authorization, &b);
  if (st == 401) {
    web_error(res, 401, "this server needs %s",
              w->users.n == 0       ? "\"Authorization: Bearer <token>\""
              : w->token_len == 0 ? "a user and password (HTTP Basic)"
                                  : "\"Authorization: Bearer <token>\" or a user and password "
                                    "(HTTP Basic)");
    res->www_auth = true;
    res->www_basic = w->users.n > 0;
  } else if (st == 400) {
    web_error(res, 400, "malformed Basic credentials");
  } else if (st == 403) {
    web_error(res, 403, "wrong token");
  } else if (st != 0) {
    web_error(res, 503, "out of memory");
  }
  if (basic != NULL) *basic = b;
  return st == 0;
}

/* Whether an action may run: POST, not read-only, credentials configured
 * (and checked already), and with Basic credentials this server's page
 * asking, not another site's (a browser sends cached Basic credentials
 * with any request, a cross-site form post included). */
static bool action_allowed(web_ctx *w, const web_request *req, bool basic, web_response *res) {
  if (strcmp(req->method, "POST") != 0) {
    method_not_allowed(res, "POST");
    return false;
  }
  if (w->read_only) {
    web_error(res, 403, "this server is read-only");
    return false;
  }
  if (!web_auth_configured(w)) {
    web_error(res, 403, "actions need a token or users: start rtq-web with --auth-token-file or "
                        "--basic-auth-file");
    return false;
  }
  if (basic && !web_same_origin(req)) {
    web_error(res, 403, "cross-site request refused (Origin or Sec-Fetch-Site names another site)");
    return false;
  }
  return true;
}

/* /api/dead/<index>/requeue -> index; -1 when the path is another. */
static int dead_index_path(const char *rest, char index[16]) {
  const char *slash = strchr(rest, '/');
  size_t n = slash != NULL ? (size_t)(slash - rest) : 0;
  if (slash == NULL || strcmp(slash + 1, "requeue") != 0 || n == 0 || n >= 16) return -1;
  memcpy(index, rest, n);
  index[n] = '\0';
  return 0;
}

/* /api/tasks/<id>[/<action>] -> id and action ("" when none). */
static int split_task_path(const char *rest, char id[RTQ_TASK_ID_SIZE], const char **action) {
  const char *slash = strchr(rest, '/');
  size_t n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
  if (n == 0 || n > RTQ_TASK_ID_MAX) return -1;
  memcpy(id, rest, n);
  id[n] = '\0';
  *action = slash != NULL ? slash + 1 : "";
  return rtq_validate_name(id);
}

static void api(web_ctx *w, const web_request *req, web_response *res) {
  static const char *const none[] = {NULL};
  static const char *const list_params[] = {"status", "queue", "name", "limit", "offset", "after", NULL};
  static const char *const event_params[] = {"task", "ticks", NULL};
  const char *p = req->path + 4; /* after "/api" */
  static const char *const page_params[] = {"limit", "offset", NULL};
  static const char *const tp_params[] = {"minutes", "queue", NULL};
  static const char *const dead_params[] = {"queue", "id", NULL};
  char index[16];
  bool dead_one = strncmp(p, "/dead/", 6) == 0 && dead_index_path(p + 6, index) == 0;
  bool dead_all = strcmp(p, "/dead/requeue") == 0 || strcmp(p, "/dead/purge") == 0;
  const char *const *allowed = strcmp(p, "/tasks") == 0    ? list_params
                               : strcmp(p, "/events") == 0 ? event_params
                               : strcmp(p, "/dead") == 0   ? page_params
                               : strcmp(p, "/throughput") == 0 ? tp_params
                               : dead_one || dead_all      ? dead_params
                                                           : none;
  if (!params_known(req, allowed)) {
    web_error(res, 400, "unknown query parameter");
    return;
  }
  bool basic;
  if (strcmp(p, "/info") == 0) {
    if (!is_get(req)) RET(method_not_allowed(res, "GET, HEAD"));
    if (w->users.n > 0 && !authorized(w, req, res, NULL)) return;
    RET(web_api_info(w, res));
  }
  if (!authorized(w, req, res, &basic)) return;
  if (dead_one || dead_all) {
    if (!action_allowed(w, req, basic, res)) return;
    if (dead_all && strcmp(p, "/dead/purge") == 0) RET(web_api_dead_action(w, req, NULL, "purge", res));
    RET(web_api_dead_action(w, req, dead_one ? index : NULL, "requeue", res));
  }
  if (strncmp(p, "/queues/", 8) == 0) {
    char queue[RTQ_TASK_ID_SIZE];
    const char *action;
    /* A queue name follows the same rule as a task id. */
    if (split_task_path(p + 8, queue, &action) != 0) RET(web_error(res, 400, "invalid queue name"));
    if (strcmp(action, "pause") != 0 && strcmp(action, "resume") != 0) RET(web_error(res, 404, "no such action"));
    if (!action_allowed(w, req, basic, res)) return;
    RET(web_api_queue_action(w, queue, action, res));
  }
  if (strncmp(p, "/tasks/", 7) == 0) {
    char id[RTQ_TASK_ID_SIZE];
    const char *action;
    if (split_task_path(p + 7, id, &action) != 0) RET(web_error(res, 400, "invalid task id"));
    if (action[0] == '\0') {
      if (!is_get(req)) RET(method_not_allowed(res, "GET, HEAD"));
      RET(web_api_task(w, id, res));
    }
    if (strcmp(action, "cancel") != 0 && strcmp(action, "retry") != 0)
      RET(web_error(res, 404, "no such action"));
    if (!action_allowed(w, req, basic, res)) return;
    RET(web_api_action(w, id, action, res));
  }
  if (!is_get(req)) RET(method_not_allowed(res, "GET, HEAD"));
  if (strcmp(p, "/stats") == 0) RET(web_api_stats(w, res));
  if (strcmp(p, "/tasks") == 0) RET(web_api_tasks(w, req, res));
  if (strcmp(p, "/workers") == 0) RET(web_api_workers(w, res));
  if (strcmp(p, "/dead") == 0) RET(web_api_dead_list(w, req, res));
  if (strcmp(p, "/throughput") == 0) RET(web_api_throughput(w, req, res));
  if (strncmp(p, "/dead/", 6) == 0) RET(web_api_dead_one(w, p + 6, res));
  if (strcmp(p, "/events") == 0) RET(events(w, req, res));
  web_error(res, 404, "no such endpoint");
}

void web_route(web_ctx *w, const web_request *req, web_response *res) {
  memset(res, 0, sizeof *res);
  bool get = is_get(req), post = strcmp(req->method, "POST") == 0;
  if (!get && !post) RET(method_not_allowed(res, "GET, HEAD, POST"));
  if (!web_auth_configured(w) && !web_host_is_loopback(req->host))
    RET(web_error(res, 403, "Host must name a loopback address (no credentials configured)"));
  if (strlen(req->path) > WEB_MAX_PATH) RET(web_error(res, 414, "path too long"));
  if (req->too_many_params) RET(web_error(res, 400, "more than %d query parameters", WEB_MAX_PARAMS));
  if (req->param_too_long)
    RET(web_error(res, 400, "a query parameter is longer than %d bytes", WEB_MAX_PARAM_VALUE));
  if (req->body_len > WEB_MAX_BODY)
    RET(web_error(res, 413, "request body over %d bytes", WEB_MAX_BODY));

  if (strcmp(req->path, "/api") == 0 || strncmp(req->path, "/api/", 5) == 0)
    RET(api(w, req, res));
  if (strcmp(req->path, "/metrics") == 0) {
    if (!get) RET(method_not_allowed(res, "GET, HEAD"));
    if (!authorized(w, req, res, NULL)) return;
    RET(metrics(w, res));
  }
  const web_asset *a = web_asset_find(strcmp(req->path, "/") == 0 ? "/index.html" : req->path);
  if (a == NULL) RET(web_error(res, 404, "not found"));
  if (!get) RET(method_not_allowed(res, "GET, HEAD"));
  /* With users, the page too: the browser asks for the login here and
   * then sends it with every request of the page. */
  if (w->users.n > 0 && !authorized(w, req, res, NULL)) return;
  res->status = 200;
  res->content_type = a->content_type;
  res->body = (char *)a->data;
  res->len = a->len;
  res->body_static = true;
  res->html = strcmp(a->path, "/index.html") == 0;
}
