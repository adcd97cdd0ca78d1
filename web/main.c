/*
 * main.c - rtq-web: the dashboard, its JSON API, live events and /metrics.
 *
 *   rtq-web [--listen 127.0.0.1:8321] [--redis URL | --redis-url-file FILE] [--namespace NS]
 *           [--protocol N]
 *           [--auth-token-file FILE] [--basic-auth-file FILE] [--read-only] ...
 *
 * Start-up refuses a non-loopback --listen without a token file or a
 * basic-auth file: the API shows task arguments and results, and the
 * actions cancel work.
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hub.h"
#include "history.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "rtq/version.h"
#include "web.h"

static const char usage[] =
    "usage: rtq-web [options]\n"
    "  --listen HOST:PORT        address to serve (default 127.0.0.1:8321; [::1]:PORT for IPv6;\n"
    "                            port 0 picks a free one). Not loopback: needs --auth-token-file\n"
    "                            or --basic-auth-file\n"
    "  --redis URL               redis://[user:pass@]host[:port][/db] or unix:///path (RTQ_REDIS_URL)\n"
    "  --redis-url-file FILE     read that URL from FILE, so no password is in argv\n"
    "                            (RTQ_REDIS_URL_FILE)\n"
    "  --namespace NS            key prefix (RTQ_NAMESPACE; default rtq)\n"
    "  --protocol N              wire protocol: 2, the only one (RTQ_PROTOCOL; 1 is refused)\n"
    "  --result-keys FILE        the workers' key file; a task whose end has no valid\n"
    "                            signature of a key allowed for its status is shown as\n"
    "                            unverified (HTTP 409)\n"
    "  --task-keys FILE          with --result-keys: the producers' key file, which verifies\n"
    "                            the ends producers and the broker sign (cancels, purges,\n"
    "                            timeouts, recoveries)\n"
    "  --auth-token-file FILE    bearer token (at least 16 printable characters) that every\n"
    "                            API request, /metrics and each action must carry\n"
    "  --basic-auth-file FILE    users for HTTP Basic: user:hash lines (htpasswd -B, openssl\n"
    "                            passwd -6, mkpasswd); then the page and every request need\n"
    "                            a login. Refused when group or other may write it\n"
    "  --read-only               no actions (cancel, retry, requeue, purge answer 403)\n"
    "  --max-sse-clients N       event streams at once (default 256)\n"
    "  --sse-buffer BYTES        events queued for a slow stream before it is dropped\n"
    "                            (default 1048576)\n"
    "  --max-connections N       HTTP connections at once (default 512)\n"
    "  --log-level LEVEL         DEBUG, INFO, WARNING, ERROR (default INFO)\n"
    "  --help, --version\n";

static int die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rtq-web: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(see rtq-web --help)\n");
  va_end(ap);
  return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

enum { O_LISTEN = 256, O_REDIS, O_URL_FILE, O_NS, O_PROTO, O_TOKEN, O_BASIC, O_RO, O_SSE, O_BUF, O_CONN, O_LOG, O_HELP,
       O_VERSION, O_RESULT_KEYS, O_TASK_KEYS };

static int parse(int argc, char **argv, web_options *o) {
  static const struct option opts[] = {
      {"listen", required_argument, NULL, O_LISTEN},
      {"redis", required_argument, NULL, O_REDIS},
      {"redis-url-file", required_argument, NULL, O_URL_FILE},
      {"namespace", required_argument, NULL, O_NS},
      {"protocol", required_argument, NULL, O_PROTO},
      {"result-keys", required_argument, NULL, O_RESULT_KEYS},
      {"task-keys", required_argument, NULL, O_TASK_KEYS},
      {"auth-token-file", required_argument, NULL, O_TOKEN},
      {"basic-auth-file", required_argument, NULL, O_BASIC},
      {"read-only", no_argument, NULL, O_RO},
      {"max-sse-clients", required_argument, NULL, O_SSE},
      {"sse-buffer", required_argument, NULL, O_BUF},
      {"max-connections", required_argument, NULL, O_CONN},
      {"log-level", required_argument, NULL, O_LOG},
      {"help", no_argument, NULL, O_HELP},
      {"version", no_argument, NULL, O_VERSION},
      {NULL, 0, NULL, 0}};
  long n;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case O_LISTEN: o->listen = optarg; break;
      case O_REDIS: o->redis_url = optarg; break;
      case O_URL_FILE: o->redis_url_file = optarg; break;
      case O_NS: o->ns = optarg; break;
      case O_PROTO:
        if (parse_long(optarg, 2, 2, &n) != 0)
          return die_usage("invalid --protocol %s (2; protocol 1 is no longer supported)", optarg);
        o->protocol = (int)n;
        break;
      case O_RESULT_KEYS: o->result_keys = optarg; break;
      case O_TASK_KEYS: o->task_keys = optarg; break;
      case O_TOKEN: o->token_file = optarg; break;
      case O_BASIC: o->basic_file = optarg; break;
      case O_RO: o->read_only = true; break;
      case O_SSE:
        if (parse_long(optarg, 1, 10000, &n) != 0) return die_usage("invalid --max-sse-clients %s", optarg);
        o->max_sse_clients = (int)n;
        break;
      case O_BUF:
        if (parse_long(optarg, 4096, 64L << 20, &n) != 0)
          return die_usage("invalid --sse-buffer %s (4096..67108864)", optarg);
        o->sse_buffer = (size_t)n;
        break;
      case O_CONN:
        if (parse_long(optarg, 8, 100000, &n) != 0) return die_usage("invalid --max-connections %s", optarg);
        o->max_connections = (int)n;
        break;
      case O_LOG: {
        rtq_log_level l;
        if (rtq_log_level_parse(optarg, &l) != 0) return die_usage("invalid --log-level %s", optarg);
        rtq_log_set_level(l);
        break;
      }
      case O_HELP: fputs(usage, stdout); return 0;
      case O_VERSION: printf("rtq-web %s\n", RTQ_VERSION_STRING); return 0;
      default: return die_usage("unknown or incomplete option %s", argv[optind - 1]);
    }
  }
  if (optind < argc) return die_usage("unexpected argument %s", argv[optind]);
  return -1;
}

/* Blocks until SIGINT or SIGTERM (blocked in every thread beforehand). */
static void wait_for_signal(const sigset_t *set) {
  int sig = 0;
  sigwait(set, &sig);
  rtq_log(RTQ_LOG_INFO, "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
}

int main(int argc, char **argv) {
  web_options o = {.listen = "127.0.0.1:8321", .max_sse_clients = 256, .sse_buffer = 1024 * 1024,
                   .max_connections = 512};
  int rc = parse(argc, argv, &o);
  if (rc >= 0) return rc;
  if (o.redis_url != NULL && o.redis_url_file != NULL) return die_usage("give --redis or --redis-url-file, not both");
  /* The client is given a copy; the password in argv is overwritten so
   * that ps and /proc/<pid>/cmdline do not show it. */
  static char url_copy[1024];
  if (o.redis_url != NULL) {
    if (strlen(o.redis_url) >= sizeof url_copy) return die_usage("--redis: the URL is too long");
    memcpy(url_copy, o.redis_url, strlen(o.redis_url) + 1);
    o.redis_url = url_copy;
  }
  rtq_config_hide_secrets(argc, argv);

  /* One request or stream thread each: glibc would give each its own
   * malloc arena and keep what they freed. Two arenas keep the RSS near
   * what is in use. */
  mallopt(M_ARENA_MAX, 2);

  static web_ctx w;
  char why[512];
  if (o.token_file != NULL &&
      web_auth_load(o.token_file, w.token, sizeof w.token, &w.token_len, why, sizeof why) != 0) {
    fprintf(stderr, "rtq-web: --auth-token-file %s\n", why);
    return 2;
  }
  if (o.basic_file != NULL && web_basic_load(o.basic_file, &w.users, why, sizeof why) != 0) {
    fprintf(stderr, "rtq-web: --basic-auth-file %s\n", why);
    return 2;
  }
  w.read_only = o.read_only;

  bool loopback = false;
  char url[128];
  int fd;
  if (web_listen(o.listen, &loopback, url, sizeof url, &fd, why, sizeof why) != 0) {
    fprintf(stderr, "rtq-web: %s\n", why);
    return 2;
  }
  if (!loopback && !web_auth_configured(&w)) {
    fprintf(stderr, "rtq-web: --listen %s is not a loopback address: refusing to serve it "
                    "without --auth-token-file or --basic-auth-file\n", o.listen);
    return 2;
  }

  rtq_client_options co;
  memset(&co, 0, sizeof co);
  co.redis_url = o.redis_url;
  co.redis_url_file = o.redis_url_file;
  co.ns = o.ns;
  co.protocol = o.protocol;
  co.result_keys_file = o.result_keys;
  co.task_keys_file = o.task_keys;
  if (rtq_client_new(&co, &w.client) != 0) {
    fprintf(stderr, "rtq-web: %s\n", rtq_client_errstr(NULL));
    return 2;
  }
  const char *env_ns = getenv("RTQ_NAMESPACE");
  w.ns = o.ns != NULL ? o.ns : env_ns != NULL && env_ns[0] != '\0' ? env_ns : "rtq";

  /* Signals go to sigwait here only; every thread started below inherits
   * the mask. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  web_http *http = NULL;
  web_history *history = NULL;
  rc = web_hub_new(w.client, o.max_sse_clients, o.sse_buffer, &w.hub);
  /* A read-only dashboard writes nothing to Redis, not even the throughput
   * history: it can log in as the read-only monitor role. */
  if (rc == 0 && !w.read_only) rc = web_history_start(w.client, &history);
  if (rc == 0) rc = web_http_start(&w, fd, o.max_connections, &http);
  if (rc != 0) {
    fprintf(stderr, "rtq-web: cannot start the server: %s\n", rtq_strerror(rc));
    web_history_stop(history);
    web_hub_free(w.hub);
    rtq_client_free(w.client);
    return 1;
  }
  rtq_log(RTQ_LOG_INFO, "listening", "url", url, "namespace", w.ns, "auth",
          w.token_len > 0 && w.users.n > 0 ? "token+basic"
          : w.users.n > 0                  ? "basic"
          : w.token_len > 0                ? "token"
                                           : "none", "read_only", w.read_only ? "true" : "false", NULL);
  wait_for_signal(&set);
  web_hub_close(w.hub);
  web_http_stop(http);
  web_history_stop(history);
  web_hub_free(w.hub);
  rtq_client_free(w.client);
  return 0;
}
