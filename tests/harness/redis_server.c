/*
 * redis_server.c - a private redis-server per test process.
 *
 * Each server lives in its own mkdtemp dir, which holds its redis.conf,
 * log, stdout capture, unix socket and (for AOF tests) data. Port
 * selection binds 127.0.0.1:0 to learn a free ephemeral port, releases it
 * and starts redis-server there; another process can take the port in
 * between, so a server that dies during start-up is retried on a new port.
 * Ephemeral ports never include 6379, so a system redis is never touched.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "rtq/common.h"

#define START_ATTEMPTS 8
#define STOP_TIMEOUT_MS 5000

struct rtq_test_redis {
  pid_t pid; /* -1 while not running */
  int port;  /* 0: unix socket only */
  int start_timeout_ms;
  bool sentinel; /* started with --sentinel */
  char dir[128];
  char conf[160];
  char log[160];
  char out[160];
  char sock[160];
  char url[64];
  char unix_url[176];
  rtq_test_redis *next; /* registry of live servers, for atexit */
};

static rtq_test_redis *servers;
static rtq_test_redis *default_server;

static void unregister(rtq_test_redis *r) {
  for (rtq_test_redis **p = &servers; *p != NULL; p = &(*p)->next) {
    if (*p == r) {
      *p = r->next;
      return;
    }
  }
}

int rtq__test_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

/* /tmp unless TMPDIR is short enough for a unix socket path under it. */
static const char *tmp_base(void) {
  const char *t = getenv("TMPDIR");
  if (t != NULL && t[0] == '/' && strlen(t) < 60 && strpbrk(t, "\"\\\n ") == NULL) return t;
  return "/tmp";
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP) return rmdir(path);
  return unlink(path);
}

static void remove_dir(const char *dir) {
  if (dir[0] == '\0') return;
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_conf(rtq_test_redis *r, const rtq_test_redis_options *o) {
  FILE *f = fopen(r->conf, "w");
  if (f == NULL) return -1;
  /* Paths are quoted; tmp_base() guarantees no quote or backslash. */
  fprintf(f,
          "# written by the rtq test harness\n"
          "bind 127.0.0.1\n"
          "port %d\n"
          "unixsocket \"%s\"\n"
          "unixsocketperm 700\n"
          "dir \"%s\"\n"
          "logfile \"%s\"\n"
          "daemonize no\n"
          "save \"\"\n"
          "appendonly %s\n"
          "appendfsync always\n"
          "maxmemory-policy %s\n",
          r->port, r->sock, r->dir, r->log, o->appendonly ? "yes" : "no",
          o->maxmemory_policy ? o->maxmemory_policy : "noeviction");
  if (o->maxmemory != NULL) fprintf(f, "maxmemory %s\n", o->maxmemory);
  /* A replica's full sync starts at once: Redis's default waits 5 s for
   * more replicas to share the transfer, which only slows the tests that
   * attach one (and a restarted primary rejoining as a replica). */
  if (!o->sentinel) fprintf(f, "repl-diskless-sync-delay 0\n");
  for (const char *const *l = o->extra_config; l != NULL && *l != NULL; l++) fprintf(f, "%s\n", *l);
  return fclose(f) == 0 ? 0 : -1;
}

/* $env when set, else the first executable `name` on PATH, else NULL.
 * The result is in buf (or is the environment's string). */
static const char *find_binary(const char *env, const char *name, char buf[PATH_MAX]) {
  const char *given = getenv(env);
  if (given != NULL && given[0] != '\0') return given;
  const char *path = getenv("PATH");
  while (path != NULL && *path) {
    const char *end = strchr(path, ':');
    size_t n = end ? (size_t)(end - path) : strlen(path);
    if (n > 0 && snprintf(buf, PATH_MAX, "%.*s/%s", (int)n, path, name) < PATH_MAX && access(buf, X_OK) == 0)
      return buf;
    path = end ? end + 1 : NULL;
  }
  return NULL;
}

static const char *server_binary(void) {
  static char found[PATH_MAX];
  const char *bin = find_binary("RTQ_REDIS_SERVER", "redis-server", found);
  return bin != NULL ? bin : "/usr/bin/redis-server";
}

/* Debian's redis-sentinel package (what a deployment runs) when it is
 * installed, else NULL: redis-server --sentinel is the same program. */
static const char *sentinel_binary(void) {
  static char found[PATH_MAX];
  const char *bin = find_binary("RTQ_REDIS_SENTINEL", "redis-sentinel", found);
  if (bin == NULL && access("/usr/bin/redis-sentinel", X_OK) == 0) bin = "/usr/bin/redis-sentinel";
  return bin;
}

static int file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  char line[1024];
  int found = 0;
  while (!found && fgets(line, sizeof line, f) != NULL) found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

static void print_tail(const char *label, const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  char buf[3000];
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
  }
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  fprintf(stderr, "---- %s (%s) ----\n%s\n---- end ----\n", label, path, buf);
}

/* PING over a short-lived hiredis connection: 1 once the server serves
 * commands (PONG, or NOAUTH from a server with a password), 0 while it
 * refuses connections or answers LOADING (replaying an AOF). */
static int pings(const rtq_test_redis *r) {
  struct timeval tv = {0, 200000};
  redisContext *ctx = r->port ? redisConnectWithTimeout("127.0.0.1", r->port, tv)
                              : redisConnectUnixWithTimeout(r->sock, tv);
  int ok = 0;
  if (ctx != NULL && ctx->err == 0 && redisSetTimeout(ctx, tv) == REDIS_OK) {
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *rep = redisCommandArgv(ctx, 1, argv, lens);
    ok = rep != NULL && ((rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0) ||
                         (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOAUTH", 6) == 0));
    if (rep != NULL) freeReplyObject(rep);
  }
  if (ctx != NULL) redisFree(ctx);
  return ok;
}

/* Launches redis-server with r->conf and waits for PONG. Returns 0; 1 when
 * the server exited during start-up (maybe a port collision); -1 on a
 * timeout or when it could not be launched. */
static int launch(rtq_test_redis *r) {
  const char *sentinel = r->sentinel ? sentinel_binary() : NULL;
  const char *bin = sentinel != NULL ? sentinel : server_binary();
  const char *argv[] = {bin, r->conf, r->sentinel && sentinel == NULL ? "--sentinel" : NULL, NULL};
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = r->out};
  r->pid = rtq__test_fork_exec(&so, false);
  if (r->pid < 0) return -1;
  uint64_t deadline = rtq_test_now_ms() + (uint64_t)r->start_timeout_ms;
  for (int i = 0;; i++) {
    if (pings(r)) return 0;
    if (rtq_test_wait_exit(r->pid, 0, NULL) == 0) {
      r->pid = -1;
      return 1;
    }
    if (rtq_test_now_ms() >= deadline) {
      fprintf(stderr, "rtq harness: redis-server did not answer PING within %d ms\n", r->start_timeout_ms);
      rtq_test_terminate(r->pid, SIGKILL, 1000, NULL);
      r->pid = -1;
      return -1;
    }
    rtq__test_poll_pause(i);
  }
}

static void set_urls(rtq_test_redis *r) {
  snprintf(r->unix_url, sizeof r->unix_url, "unix://%s", r->sock);
  if (r->port)
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
  else
    r->url[0] = '\0';
}

rtq_test_redis *rtq_test_redis_start(const rtq_test_redis_options *opts) {
  rtq_test_redis_options o = {0};
  if (opts != NULL) o = *opts;
  rtq_test_redis *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->pid = -1;
  r->start_timeout_ms = o.start_timeout_ms > 0 ? o.start_timeout_ms : 10000;
  r->sentinel = o.sentinel;
  snprintf(r->dir, sizeof r->dir, "%s/rtq-test-XXXXXX", tmp_base());
  if (mkdtemp(r->dir) == NULL) {
    fprintf(stderr, "rtq harness: mkdtemp %s: %s\n", r->dir, strerror(errno));
    free(r);
    return NULL;
  }
  snprintf(r->conf, sizeof r->conf, "%s/redis.conf", r->dir);
  snprintf(r->log, sizeof r->log, "%s/redis.log", r->dir);
  snprintf(r->out, sizeof r->out, "%s/redis.out", r->dir);
  snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);

  int rc = 1;
  for (int attempt = 0; attempt < START_ATTEMPTS && rc == 1; attempt++) {
    r->port = o.unix_only ? 0 : rtq__test_free_port();
    unlink(r->log);
    unlink(r->out);
    if (r->port < 0 || write_conf(r, &o) != 0) {
      rc = -1;
      break;
    }
    rc = launch(r);
    /* Only a lost race for the port is worth another try; a bad config
     * or a missing binary fails the same way every time. */
    if (rc == 1 && (o.unix_only || !(file_contains(r->log, "in use") || file_contains(r->out, "in use")))) break;
  }
  if (rc != 0) {
    fprintf(stderr, "rtq harness: could not start %s\n", server_binary());
    print_tail("redis-server output", r->out);
    print_tail("redis-server log", r->log);
    remove_dir(r->dir);
    free(r);
    return NULL;
  }
  set_urls(r);
  r->next = servers;
  servers = r;
  rtq__test_cleanup_register();
  return r;
}

void rtq_test_redis_stop(rtq_test_redis *r) {
  if (r == NULL) return;
  if (r->pid > 0) rtq_test_terminate(r->pid, SIGTERM, STOP_TIMEOUT_MS, NULL);
  r->pid = -1;
  remove_dir(r->dir);
  unregister(r);
  if (r == default_server) default_server = NULL;
  free(r);
}

void rtq__test_redis_stop_all(void) {
  while (servers != NULL) rtq_test_redis_stop(servers);
}

int rtq_test_redis_kill9(rtq_test_redis *r) {
  if (r == NULL || r->pid <= 0) return -1;
  rtq_test_terminate(r->pid, SIGKILL, STOP_TIMEOUT_MS, NULL);
  r->pid = -1;
  return 0;
}

int rtq_test_redis_restart(rtq_test_redis *r) {
  if (r == NULL) return -1;
  if (r->pid > 0) rtq_test_terminate(r->pid, SIGTERM, STOP_TIMEOUT_MS, NULL);
  r->pid = -1;
  int rc = launch(r);
  if (rc != 0) {
    fprintf(stderr, "rtq harness: restart of redis-server on port %d failed\n", r->port);
    print_tail("redis-server log", r->log);
    return -1;
  }
  return 0;
}

/* Sends sig and waits (bounded) until waitpid reports the state change
 * asked for by flag (WUNTRACED or WCONTINUED). */
static int signal_and_confirm(rtq_test_redis *r, int sig, int flag) {
  if (r == NULL || r->pid <= 0 || kill(r->pid, sig) != 0) return -1;
  uint64_t deadline = rtq_test_now_ms() + 5000;
  for (int i = 0;; i++) {
    int st;
    pid_t p = waitpid(r->pid, &st, WNOHANG | flag);
    if (p == r->pid) {
      if (WIFEXITED(st) || WIFSIGNALED(st)) {
        r->pid = -1;
        return -1;
      }
      if ((flag == WUNTRACED && WIFSTOPPED(st)) || (flag == WCONTINUED && WIFCONTINUED(st))) return 0;
    }
    if (p < 0 && errno != EINTR) return -1;
    if (rtq_test_now_ms() >= deadline) return -1;
    rtq__test_poll_pause(i);
  }
}

int rtq_test_redis_sigstop(rtq_test_redis *r) { return signal_and_confirm(r, SIGSTOP, WUNTRACED); }
int rtq_test_redis_sigcont(rtq_test_redis *r) { return signal_and_confirm(r, SIGCONT, WCONTINUED); }

const char *rtq_test_redis_url_of(const rtq_test_redis *r) { return r->port ? r->url : r->unix_url; }
const char *rtq_test_redis_unix_url(const rtq_test_redis *r) { return r->unix_url; }
int rtq_test_redis_port(const rtq_test_redis *r) { return r->port; }
pid_t rtq_test_redis_pid(const rtq_test_redis *r) { return r->pid; }
const char *rtq_test_redis_dir(const rtq_test_redis *r) { return r->dir; }

rtq_test_redis *rtq__test_redis_default_or_null(void) {
  if (default_server == NULL) default_server = rtq_test_redis_start(NULL);
  return default_server;
}
