/*
 * web.h - what rtq-web's files share. Not installed.
 *
 *   main.c      flags, start-up checks, signals
 *   http.c      the only file that knows libmicrohttpd: sockets, request
 *               limits, turning a web_request into a response
 *   routes.c    method/path dispatch, authentication, read-only
 *   api.c       the JSON endpoints, on librtq
 *   overview.c  the figures /api/stats and /metrics share
 *   metrics.c   /metrics in the Prometheus text format
 *   hub.c       one events subscription fanned out to SSE clients
 *   auth.c      the token file, constant-time comparison, Host check
 *   basic_auth.c  the --basic-auth-file users, HTTP Basic credentials
 *   history.c   records the throughput history every 10 s
 *   listen.c    binding --listen (shared with the broker's /metrics)
 *   metrics_server.c  /metrics alone, for rtq-broker --metrics-listen
 *
 * Request handling is plain C on a web_request/web_response pair, so it
 * reads without knowing the HTTP library.
 */
#ifndef RTQ_WEB_H
#define RTQ_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtq/client.h"

/* Request limits (docs/HTTP.md). */
#define WEB_MAX_PATH 1024        /* bytes of the path, query excluded */
#define WEB_MAX_PARAMS 16        /* query parameters */
#define WEB_MAX_PARAM_VALUE 256  /* bytes of one decoded value */
#define WEB_MAX_BODY 4096        /* request body (actions take none) */
#define WEB_MAX_TOKEN 4096
#define WEB_MIN_TOKEN 16
#define WEB_MAX_USERS 64         /* lines of a basic-auth file */
#define WEB_MAX_USER 64          /* bytes of a user name */
#define WEB_MAX_HASH 160         /* bytes of a crypt hash */
#define WEB_MAX_BASIC 512        /* decoded bytes of Basic credentials */

typedef struct web_hub web_hub;

/* Value type: the settings, from the flags. */
typedef struct web_options {
  const char *listen;        /* "127.0.0.1:8321" */
  const char *redis_url;     /* NULL: RTQ_REDIS_URL, else the client default */
  const char *redis_url_file; /* NULL: RTQ_REDIS_URL_FILE; else the URL is read from it */
  const char *ns;            /* NULL: RTQ_NAMESPACE, else "rtq" */
  const char *token_file;    /* NULL: no token */
  const char *basic_file;    /* NULL: no basic-auth users (neither: loopback
                              * only, no actions) */
  bool read_only;
  int max_sse_clients;       /* 256 */
  size_t sse_buffer;         /* bytes queued per SSE client before it is dropped: 1 MiB */
  int max_connections;       /* 512 */
  int protocol;              /* 0: RTQ_PROTOCOL, else 2; only 2 */
  const char *result_keys;   /* NULL; the workers' key file */
  const char *task_keys;     /* NULL; the producers' key file */
} web_options;

/* Value type: the basic-auth file's users, read once at start-up. */
typedef struct web_users {
  size_t n;
  struct {
    char name[WEB_MAX_USER + 1];
    char hash[WEB_MAX_HASH + 1];
  } user[WEB_MAX_USERS];
} web_users;

/* The running server's state, shared by every request thread. Read-only
 * after start-up except through the hub and the client (both thread-safe). */
typedef struct web_ctx {
  rtq_client *client;
  web_hub *hub;
  const char *ns;
  char token[WEB_MAX_TOKEN + 1]; /* "" when none */
  size_t token_len;
  web_users users;               /* n 0 when none */
  bool read_only;
} web_ctx;

typedef struct web_param {
  const char *name;
  const char *value;
} web_param;

/* One request as routes.c sees it. Strings are borrowed for the call. */
typedef struct web_request {
  const char *method;        /* "GET", "HEAD", "POST", ... */
  const char *path;          /* decoded path, no query */
  const char *host;          /* Host header; NULL when absent */
  const char *authorization; /* Authorization header; NULL when absent */
  const char *origin;        /* Origin header; NULL when absent */
  const char *fetch_site;    /* Sec-Fetch-Site header; NULL when absent */
  web_param params[WEB_MAX_PARAMS];
  size_t nparams;
  bool too_many_params;
  bool param_too_long;
  size_t body_len;           /* bytes received */
  int sse_fd;                /* the connection's socket, for SSE hang-up checks */
} web_request;

/* What a handler answers. body is malloc'd (or static when body_static);
 * sse set means "stream events": http.c attaches the hub client. */
typedef struct web_response {
  int status;
  const char *content_type;
  char *body;
  size_t len;
  bool body_static;
  const char *allow;         /* Allow header of a 405 */
  bool www_auth;             /* WWW-Authenticate on a 401: Bearer, or */
  bool www_basic;            /* Basic (realm "rtq") */
  bool html;                 /* the page: add its Content-Security-Policy */
  struct web_sse *sse;       /* an SSE stream (owned by the hub) */
} web_response;

/* routes.c */
void web_route(web_ctx *w, const web_request *req, web_response *res);
/* A JSON {"error": msg} body with that status. */
void web_error(web_response *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes a jansson value (NULL = out of memory) as the 200 body. */
struct json_t;
void web_json(web_response *res, int status, struct json_t *v);
const char *web_param_get(const web_request *req, const char *name);

/* api.c */
void web_api_stats(web_ctx *w, web_response *res);
void web_api_tasks(web_ctx *w, const web_request *req, web_response *res);
void web_api_task(web_ctx *w, const char *id, web_response *res);
void web_api_workers(web_ctx *w, web_response *res);
void web_api_action(web_ctx *w, const char *id, const char *action, web_response *res);
/* POST /api/queues/<queue>/pause or /resume (action "pause" or "resume"). */
void web_api_queue_action(web_ctx *w, const char *queue, const char *action, web_response *res);
void web_api_info(web_ctx *w, web_response *res);
void web_api_dead_list(web_ctx *w, const web_request *req, web_response *res);
void web_api_dead_one(web_ctx *w, const char *index, web_response *res);
/* POST /api/dead/<index>/requeue (index set; ?id= the task the page saw
 * there, ?queue=), /api/dead/requeue and /api/dead/purge (index NULL;
 * ?queue=). action: "requeue" or "purge". */
void web_api_dead_action(web_ctx *w, const web_request *req, const char *index, const char *action,
                         web_response *res);
void web_api_throughput(web_ctx *w, const web_request *req, web_response *res);
/* The HTTP status for an RTQ_E* code. */
int web_status_of(int rc);

/* auth.c */
/* Reads the token from path (surrounding whitespace trimmed). 0, or -1
 * with a reason in why. */
int web_auth_load(const char *path, char *token, size_t cap, size_t *len, char *why, size_t wcap);
/* Constant-time: the time depends on the expected token's length only. */
bool web_auth_equal(const char *expected, size_t elen, const char *given, size_t glen);
/* Whether the server asks for credentials (a token or basic-auth users). */
bool web_auth_configured(const web_ctx *w);
/* Checks an Authorization header against the token ("Bearer ...") or the
 * basic-auth users ("Basic ..."), whichever are configured. 0 ok (*basic
 * set when Basic credentials passed); 400 malformed Basic credentials; 401
 * none, another scheme, or wrong Basic credentials (a browser asks again);
 * 403 a wrong token; 503 out of memory. */
int web_auth_check(const web_ctx *w, const char *authorization, bool *basic);
/* Whether a mutating request may be a browser's own: an Origin header, when
 * there is one, names the Host (http or https), and Sec-Fetch-Site, when
 * there is one, is same-origin or none. Browsers add both to cross-site
 * requests, and a browser sends cached Basic credentials on its own. */
bool web_same_origin(const web_request *req);

/* basic_auth.c */
/* Reads path ("user:hash" lines). 0, or -1 with a reason in why: unreadable,
 * writable by group or other, a malformed line, a hash method that is weak
 * or unknown, no user. */
int web_basic_load(const char *path, web_users *u, char *why, size_t wcap);
/* credentials: what follows "Basic ". 0 ok; 400 malformed; 401 unknown
 * user or wrong password (the same time either way); 503 out of memory. */
int web_basic_check(const web_users *u, const char *credentials);
/* Whether a Host header names a loopback host (127.0.0.0/8, ::1, localhost). */
bool web_host_is_loopback(const char *host);

/* assets (generated from web/assets/) */
typedef struct web_asset {
  const char *path;
  const char *content_type;
  const unsigned char *data;
  size_t len;
} web_asset;
const web_asset *web_asset_find(const char *path);

#endif
