/*
 * server.c - the Redis side of a bench run: the work directory, a private
 * redis-server on a free loopback port (persistence off, noeviction), the
 * bench's own admin connection, and INFO snapshots.
 *
 * The private server is started with posix_spawn and stopped by its pid
 * alone (SHUTDOWN NOSAVE, then SIGTERM, then SIGKILL, each with a
 * deadline). The free port comes from binding port 0 and closing the
 * socket, which leaves a short race with other processes; a server that
 * does not come up is retried on a new port a few times.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

#define START_ATTEMPTS 3
#define READY_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 5000

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

/* Waits up to timeout_ms for pid to exit; true when it did (reaped). */
static bool wait_exit(pid_t pid, int timeout_ms) {
  uint64_t end = rtq__bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
  do {
    int st;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid || (w < 0 && errno == ECHILD)) return true;
    rtq__bench_sleep_us(2000);
  } while (rtq__bench_now_ns() < end);
  return false;
}

static int spawn_server(rtq__bench_redis *r, const rtq__bench_opts *o) {
  char port[16], logfile[300];
  snprintf(port, sizeof port, "%d", r->port);
  snprintf(logfile, sizeof logfile, "%s/redis.log", r->dir);
  const char *argv[] = {o->redis_server, "--port", port, "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--dir", r->dir,
                        "--logfile", logfile, "--daemonize", "no",
                        "--maxmemory-policy", "noeviction", NULL};
  int rc = posix_spawnp(&r->pid, o->redis_server, NULL, NULL, (char **)argv, environ);
  if (rc != 0) {
    fprintf(stderr, "rtq-bench: cannot start %s: %s\n", o->redis_server, strerror(rc));
    r->pid = 0;
    return -1;
  }
  return 0;
}

/* Connects the admin connection, retrying until the server answers or
 * (own server) its process died or the deadline passed. */
static int connect_admin(rtq__bench_redis *r) {
  uint64_t end = rtq__bench_now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
  char err[512] = "";
  rtq_conn_options co = {.url = r->url, .connect_timeout_ms = 1000, .command_timeout_ms = 30000};
  for (;;) {
    if (rtq_conn_new(&co, &r->admin, err, sizeof err) == 0) return 0;
    if (r->own) {
      int st;
      if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
        r->pid = 0;
        break;
      }
    }
    if (rtq__bench_now_ns() >= end) break;
    rtq__bench_sleep_us(10000);
  }
  fprintf(stderr, "rtq-bench: redis at %s did not answer: %s\n", r->url, err);
  return -1;
}

static bool is_loopback(const char *url) {
  rtq_redis_url u;
  char err[256];
  if (rtq_redis_url_parse(url, &u, err, sizeof err) != 0) {
    fprintf(stderr, "rtq-bench: --redis: %s\n", err);
    return false;
  }
  if (u.is_unix || strcmp(u.host, "127.0.0.1") == 0 || strcmp(u.host, "localhost") == 0 ||
      strcmp(u.host, "::1") == 0)
    return true;
  fprintf(stderr, "rtq-bench: --redis must be a loopback server (127.0.0.1, localhost, ::1 "
                  "or a unix socket), not %s\n", u.host);
  return false;
}

static int apply_redis_set(rtq__bench_redis *r, const rtq__bench_opts *o) {
  for (int i = 0; i < o->nredis_set; i++) {
    char name[128];
    const char *eq = strchr(o->redis_set[i], '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - o->redis_set[i]), o->redis_set[i]);
    const char *argv[] = {"CONFIG", "SET", name, eq + 1};
    if (rtq__bench_cmd(r, NULL, 4, argv) != 0) return -1;
  }
  return 0;
}

int rtq__bench_redis_start(rtq__bench_redis *r, const rtq__bench_opts *o) {
  memset(r, 0, sizeof *r);
  const char *tmp = getenv("TMPDIR");
  snprintf(r->dir, sizeof r->dir, "%s/rtq-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(r->dir) == NULL) {
    fprintf(stderr, "rtq-bench: cannot make a work directory: %s\n", strerror(errno));
    r->dir[0] = '\0';
    return -1;
  }
  if (o->redis_url != NULL) {
    if (!is_loopback(o->redis_url)) return -1;
    if (o->nredis_set > 0) {
      fprintf(stderr, "rtq-bench: --redis-set applies to the private server only\n");
      return -1;
    }
    snprintf(r->url, sizeof r->url, "%s", o->redis_url);
    return connect_admin(r);
  }
  r->own = true;
  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    if ((r->port = free_port()) < 0) {
      fprintf(stderr, "rtq-bench: no free loopback port: %s\n", strerror(errno));
      return -1;
    }
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
    if (spawn_server(r, o) != 0) return -1;
    if (connect_admin(r) == 0) return apply_redis_set(r, o);
    if (r->pid > 0) {
      kill(r->pid, SIGKILL);
      wait_exit(r->pid, STOP_TIMEOUT_MS);
      r->pid = 0;
    }
  }
  fprintf(stderr, "rtq-bench: redis-server did not start (see %s/redis.log)\n", r->dir);
  return -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

void rtq__bench_redis_stop(rtq__bench_redis *r, bool keep) {
  if (r->own && r->pid > 0) {
    if (r->admin != NULL) {
      const char *argv[] = {"SHUTDOWN", "NOSAVE"};
      redisReply *rep = NULL;
      rtq_argv a;
      rtq_argv_init(&a);
      for (int i = 0; i < 2; i++) rtq_argv_add_str(&a, argv[i]);
      rtq_conn_command(r->admin, &a, &rep); /* no reply: the server is gone */
      if (rep != NULL) freeReplyObject(rep);
      rtq_argv_destroy(&a);
    }
    if (!wait_exit(r->pid, STOP_TIMEOUT_MS)) {
      kill(r->pid, SIGTERM);
      if (!wait_exit(r->pid, STOP_TIMEOUT_MS)) {
        kill(r->pid, SIGKILL);
        wait_exit(r->pid, STOP_TIMEOUT_MS);
      }
    }
    r->pid = 0;
  }
  rtq_conn_free(r->admin);
  r->admin = NULL;
  json_decref(r->own_by_cmd);
  r->own_by_cmd = NULL;
  if (r->dir[0] != '\0') {
    if (keep)
      fprintf(stderr, "rtq-bench: logs kept in %s\n", r->dir);
    else
      nftw(r->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    r->dir[0] = '\0';
  }
}

int rtq__bench_cmd(rtq__bench_redis *r, redisReply **reply, int argc, const char **argv) {
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; i < argc; i++) rtq_argv_add_str(&a, argv[i]);
  redisReply *rep = NULL;
  int rc = rtq_conn_command(r->admin, &a, &rep);
  rtq_argv_destroy(&a);
  r->own_cmds++;
  /* Counted per command name too, so commandstats deltas can drop ours. */
  if (r->own_by_cmd == NULL) r->own_by_cmd = json_object();
  char name[32];
  size_t i;
  for (i = 0; argv[0][i] && i < sizeof name - 1; i++)
    name[i] = (char)(argv[0][i] >= 'A' && argv[0][i] <= 'Z' ? argv[0][i] + 32 : argv[0][i]);
  name[i] = '\0';
  json_int_t prev = json_integer_value(json_object_get(r->own_by_cmd, name));
  json_object_set_new(r->own_by_cmd, name, json_integer(prev + 1));
  if (rc != 0) {
    fprintf(stderr, "rtq-bench: %s: %s\n", argv[0], rtq_conn_errstr(r->admin));
    if (rep != NULL) freeReplyObject(rep);
    rep = NULL;
  }
  if (reply != NULL)
    *reply = rep;
  else if (rep != NULL)
    freeReplyObject(rep);
  return rc;
}

int rtq__bench_flush(rtq__bench_redis *r) {
  if (!r->own) return 0;
  const char *argv[] = {"FLUSHALL", "SYNC"};
  return rtq__bench_cmd(r, NULL, 2, argv);
}

/* Value of "field:" in INFO text, or NULL; *len gets the value length. */
static const char *info_value(const char *text, const char *field, size_t *len) {
  size_t fl = strlen(field);
  for (const char *p = text; p && *p;) {
    if (strncmp(p, field, fl) == 0 && p[fl] == ':') {
      const char *v = p + fl + 1;
      *len = strcspn(v, "\r\n");
      return v;
    }
    p = strchr(p, '\n');
    if (p) p++;
  }
  return NULL;
}

static double info_num(const char *text, const char *field) {
  size_t len;
  const char *v = info_value(text, field, &len);
  return v ? strtod(v, NULL) : 0;
}

/* cmdstat_<name>:calls=N,usec=U,... -> {"<name>": [N, U]} */
static json_t *parse_cmdstats(const char *text) {
  json_t *o = json_object();
  for (const char *p = strstr(text, "cmdstat_"); p; p = strstr(p, "\ncmdstat_")) {
    if (*p == '\n') p++;
    const char *name = p + 8;
    const char *colon = strchr(name, ':');
    if (colon == NULL) break;
    const char *calls = strstr(colon, "calls=");
    const char *usec = strstr(colon, "usec=");
    const char *eol = strchr(colon, '\n');
    if (calls && usec && (!eol || (calls < eol && usec < eol))) {
      char key[64];
      snprintf(key, sizeof key, "%.*s", (int)(colon - name), name);
      json_object_set_new(o, key, json_pack("[ff]", strtod(calls + 6, NULL),
                                            strtod(usec + 5, NULL)));
    }
    p = colon;
  }
  return o;
}

/* syscr/syscw of /proc/<pid>/io: read(2)- and write(2)-like calls. */
static void read_proc_io(pid_t pid, uint64_t *syscr, uint64_t *syscw) {
  char path[64], line[128];
  snprintf(path, sizeof path, "/proc/%ld/io", (long)pid);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, "syscr:", 6) == 0) *syscr = strtoull(line + 6, NULL, 10);
    if (strncmp(line, "syscw:", 6) == 0) *syscw = strtoull(line + 6, NULL, 10);
  }
  if (f) fclose(f);
}

int rtq__bench_info_take(rtq__bench_redis *r, rtq__bench_info *out) {
  memset(out, 0, sizeof *out);
  if (r->own && r->pid > 0) read_proc_io(r->pid, &out->syscr, &out->syscw);
  out->own_cmds = r->own_cmds;
  out->own_by_cmd = json_deep_copy(r->own_by_cmd ? r->own_by_cmd : json_object());
  redisReply *rep = NULL;
  const char *argv[] = {"INFO", "cpu", "stats", "memory", "commandstats"};
  int rc = rtq__bench_cmd(r, &rep, 5, argv);
  if (rc != 0) return rc;
  if (rep->type == REDIS_REPLY_STRING) {
    out->cpu_s = info_num(rep->str, "used_cpu_user") + info_num(rep->str, "used_cpu_sys");
    out->commands = (uint64_t)info_num(rep->str, "total_commands_processed");
    out->used_memory = (uint64_t)info_num(rep->str, "used_memory");
    out->cmdstats = parse_cmdstats(rep->str);
  }
  freeReplyObject(rep);
  return 0;
}

void rtq__bench_info_destroy(rtq__bench_info *i) {
  json_decref(i->cmdstats);
  json_decref(i->own_by_cmd);
  i->cmdstats = i->own_by_cmd = NULL;
}

static double arr_num(const json_t *o, const char *key, size_t idx) {
  const json_t *a = json_object_get(o, key);
  return a ? json_number_value(json_array_get(a, idx)) : 0;
}

void rtq__bench_info_delta(json_t *obj, const rtq__bench_info *a, const rtq__bench_info *b,
                           size_t n, bool with_cmdstats) {
  double dn = n ? (double)n : 1;
  uint64_t own = b->own_cmds - a->own_cmds;
  json_object_set_new(obj, "redis_cpu_us_per_task", json_real((b->cpu_s - a->cpu_s) * 1e6 / dn));
  json_object_set_new(obj, "commands_per_task",
                      json_real((double)(b->commands - a->commands - own) / dn));
  if (b->syscr > 0) {
    /* the bench's own commands cost the server about one read and one write each */
    double sys = (double)(b->syscr - a->syscr) + (double)(b->syscw - a->syscw) - 2.0 * (double)own;
    json_object_set_new(obj, "redis_syscalls_per_task", json_real(sys / dn));
  }
  if (!with_cmdstats || b->cmdstats == NULL) return;
  json_t *cs = json_object();
  const char *name;
  json_t *v;
  json_object_foreach(b->cmdstats, name, v) {
    double own_calls = (double)(json_integer_value(json_object_get(b->own_by_cmd, name)) -
                                json_integer_value(json_object_get(a->own_by_cmd, name)));
    double calls = arr_num(b->cmdstats, name, 0) - arr_num(a->cmdstats, name, 0) - own_calls;
    double usec = arr_num(b->cmdstats, name, 1) - arr_num(a->cmdstats, name, 1);
    if (calls < 0.5) continue;
    if (own_calls > 0) usec = usec * calls / (calls + own_calls); /* ours, pro rata */
    json_object_set_new(cs, name, json_pack("{sfsf}", "calls_per_task", calls / dn,
                                            "usec_per_task", usec / dn));
  }
  json_object_set_new(obj, "commandstats", cs);
}

int rtq__bench_info_field(rtq__bench_redis *r, const char *section, const char *field, char *buf,
                          size_t cap) {
  redisReply *rep = NULL;
  const char *argv[] = {"INFO", section};
  buf[0] = '\0';
  int rc = rtq__bench_cmd(r, &rep, 2, argv);
  if (rc != 0) return rc;
  size_t len;
  const char *v = rep->type == REDIS_REPLY_STRING ? info_value(rep->str, field, &len) : NULL;
  if (v != NULL) snprintf(buf, cap, "%.*s", (int)len, v);
  freeReplyObject(rep);
  return v ? 0 : RTQ_ENOTFOUND;
}

void rtq__bench_drop_ns(rtq__bench_redis *r, const char *ns) {
  if (r->own || r->admin == NULL) return; /* the private server is flushed instead */
  /* Every key of the namespace: "{ns}:..." and each queue's "{ns:Q}:..." */
  char pat[RTQ_NS_MAX + 8];
  snprintf(pat, sizeof pat, "{%s[:}]*", ns);
  char cursor[32] = "0";
  uint64_t end = rtq__bench_now_ns() + 60ull * 1000000000u;
  do {
    const char *argv[] = {"SCAN", cursor, "MATCH", pat, "COUNT", "1000"};
    redisReply *rep = NULL;
    if (rtq__bench_cmd(r, &rep, 6, argv) != 0) return;
    bool ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2;
    if (ok) {
      snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
      const redisReply *keys = rep->element[1];
      if (keys->elements > 0) {
        rtq_argv a;
        rtq_argv_init(&a);
        rtq_argv_add_str(&a, "UNLINK");
        for (size_t i = 0; i < keys->elements; i++)
          rtq_argv_add(&a, keys->element[i]->str, keys->element[i]->len);
        rtq_conn_command(r->admin, &a, NULL);
        r->own_cmds++;
        rtq_argv_destroy(&a);
      }
    }
    freeReplyObject(rep);
    if (!ok) return;
  } while (strcmp(cursor, "0") != 0 && rtq__bench_now_ns() < end);
}
