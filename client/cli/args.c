/*
 * args.c - command-line parsing, exit codes, error lines and connecting.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "utf8.h"
#include "log.h"

/* With --json, errors are JSON on stderr too. This is the one piece of
 * process-wide state of the tool: error lines are printed from every layer,
 * most of which have no run context, and main sets it once, from a scan of
 * the whole command line, before anything can fail. */
static bool json_errors;

void cli_set_json_errors(bool on) { json_errors = on; }

/* Writes the error line: "rtq: <text>" or {"error":{"code","message"}}.
 * kind is "error" or "warning". */
static void emit(const char *kind, const char *code, const char *fmt, va_list ap) {
  char line[1024];
  vsnprintf(line, sizeof line, fmt, ap);
  /* One line, whatever the detail holds. */
  for (char *p = line; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  if (!json_errors) {
    fprintf(stderr, "rtq: %s\n", line);
    return;
  }
  /* A detail may quote bytes that are not UTF-8 (a bad argument, a cut
   * at 64 bytes): JSON takes them as U+FFFD. */
  char *clean = rtq__utf8_sanitize(line, strlen(line), NULL);
  json_t *o = clean == NULL ? NULL
              : code != NULL ? json_pack("{s:{s:s, s:s}}", kind, "code", code, "message", clean)
                             : json_pack("{s:{s:s}}", kind, "message", clean);
  free(clean);
  char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  /* Out of memory: a fixed object, still JSON. */
  fprintf(stderr, "%s\n", text != NULL ? text : "{\"error\":{\"code\":\"RTQ_ENOMEM\",\"message\":\"out of memory\"}}");
  free(text);
  json_decref(o);
}

void cli_errorf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("error", rtq_err_name(RTQ_EINVAL), fmt, ap);
  va_end(ap);
}

void cli_error_code(const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("error", code, fmt, ap);
  va_end(ap);
}

void cli_warnf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("warning", NULL, fmt, ap);
  va_end(ap);
}

void cli_warn_skipped(const char *notes) {
  while (notes != NULL && *notes != '\0') {
    size_t n = strcspn(notes, "\n");
    cli_warnf("%.*s: left out", (int)n, notes);
    notes += n;
    if (*notes == '\n') notes++;
  }
}

int cli_exit_code(int rc) {
  switch (rc) {
    case 0:
      return CLI_OK;
    case RTQ_EINVAL:
    case RTQ_EJSON:
    case RTQ_ETOOBIG:
    case RTQ_EDEPTH:
    case RTQ_ETYPE:
    case RTQ_ERANGE:
      return CLI_USAGE;
    case RTQ_ENOTFOUND:
      return CLI_NOTFOUND;
    case RTQ_ESTATE:
      return CLI_ENDED;
    case RTQ_ETIMEDOUT:
      return CLI_TIMEOUT;
    case RTQ_EUNVERIFIED:
      return CLI_UNVERIFIED;
    default:
      return CLI_REDIS;
  }
}

int cli_fail(cli *ctx, int rc, const char *what) {
  const char *detail = rtq_client_errstr(ctx->client);
  if (detail[0] == '\0') detail = rtq_strerror(rc);
  cli_error_code(rtq_err_name(rc), "%s: %s", what, detail);
  return cli_exit_code(rc);
}

/* The settings of config.h a client uses, with their global option and
 * its place in the context. */
static const struct global {
  const char *flag;   /* without the dashes */
  const char *setting;
  size_t off;
} globals[] = {
    {"redis", "redis_url", offsetof(cli, redis_url)},
    {"redis-url", "redis_url", offsetof(cli, redis_url)},
    /* After the URL: a file given as well wins. */
    {"redis-url-file", "redis_url_file", offsetof(cli, redis_url_file)},
    {"namespace", "namespace", offsetof(cli, ns)},
    {"log-level", "log_level", offsetof(cli, log_level)},
    {"task-result-ttl", "task_result_ttl", offsetof(cli, task_result_ttl)},
    {"enable-task-history", "enable_task_history", offsetof(cli, enable_task_history)},
    {"wait-replicas", "wait_replicas", offsetof(cli, wait_replicas)},
    {"wait-timeout", "wait_timeout", offsetof(cli, wait_timeout)},
    {"protocol", "protocol", offsetof(cli, protocol)},
    /* Options that are no setting (no RTQ_* variable): the key files. */
    {"signing-key-file", NULL, offsetof(cli, signing_key_file)},
    {"result-keys", NULL, offsetof(cli, result_keys)},
    {"task-keys", NULL, offsetof(cli, task_keys)},
};

#define NGLOBALS (sizeof globals / sizeof globals[0])

/* name[0..len) is flag, '_' standing for '-' (--log_level). */
static bool flag_is(const char *flag, const char *name, size_t len) {
  if (strlen(flag) != len) return false;
  for (size_t i = 0; i < len; i++)
    if ((name[i] == '_' ? '-' : name[i]) != flag[i]) return false;
  return true;
}

static const struct global *find_global(const char *name, size_t len) {
  for (size_t i = 0; i < NGLOBALS; i++)
    if (flag_is(globals[i].flag, name, len)) return &globals[i];
  return NULL;
}

int cli_global_words(const char *arg) {
  if (strncmp(arg, "--", 2) != 0) return 0;
  const char *name = arg + 2, *eq = strchr(name, '=');
  size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
  if (flag_is("json", name, len)) return 1;
  if (find_global(name, len) == NULL) return 0;
  return eq != NULL ? 1 : 2;
}

/* Defaults, then the RTQ_* variables of the settings a client uses (only
 * those: a worker's variable in the same environment is not ours to
 * judge), then the global options. The CLI logs warnings and errors only
 * unless asked for more. */
static int resolve(const cli *ctx, rtq_config *cfg) {
  char err[512], var[64];
  rtq_config_defaults(cfg);
  cfg->log_level = RTQ_LOG_WARNING;
  for (size_t i = 0; i < NGLOBALS; i++) {
    const char *s = globals[i].setting;
    if (s == NULL) continue;
    size_t n = 0;
    for (n = 0; s[n] != '\0' && n < 59; n++) var[4 + n] = (char)toupper((unsigned char)s[n]);
    memcpy(var, "RTQ_", 4);
    var[4 + n] = '\0';
    const char *v = getenv(var);
    if (v != NULL && rtq_config_set(cfg, s, v, err, sizeof err) != 0) {
      cli_errorf("%s: %s", var, err);
      return CLI_USAGE;
    }
  }
  for (size_t i = 0; i < NGLOBALS; i++) {
    const char *v = *(const char *const *)((const char *)ctx + globals[i].off);
    if (v != NULL && globals[i].setting != NULL && rtq_config_set(cfg, globals[i].setting, v, err, sizeof err) != 0) {
      cli_errorf("%s", err);
      return CLI_USAGE;
    }
  }
  return CLI_OK;
}

int cli_print_settings(const cli *ctx) {
  static const char *const used[] = {"task_result_ttl", "enable_task_history", "log_level", "redis_url",
                                     "redis_url_file", "namespace", "wait_replicas", "wait_timeout",
                                     "protocol", NULL};
  rtq_config cfg;
  int rc = resolve(ctx, &cfg);
  if (rc == CLI_OK) rtq_config_print(&cfg, used, stdout);
  return rc;
}

int cli_connect(cli *ctx) {
  rtq_config cfg;
  int rc = resolve(ctx, &cfg);
  if (rc != CLI_OK) return rc;
  rtq_log_set_level(cfg.log_level);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = cfg.redis_url;
  o.ns = cfg.ns;
  o.task_result_ttl_s = cfg.task_result_ttl;
  o.history = cfg.enable_task_history ? 1 : -1;
  o.wait_replicas = cfg.wait_replicas > 0 ? cfg.wait_replicas : -1;
  o.wait_timeout_ms = cfg.wait_timeout;
  o.protocol = cfg.protocol;
  o.signing_key_file = ctx->signing_key_file;
  o.result_keys_file = ctx->result_keys;
  o.task_keys_file = ctx->task_keys;
  ctx->wait_replicas_n = cfg.wait_replicas;
  rc = rtq_client_new(&o, &ctx->client);
  if (rc == 0) return CLI_OK;
  const char *detail = rtq_client_errstr(NULL);
  cli_error_code(rtq_err_name(rc), "cannot connect to redis: %s",
                 detail[0] ? detail : rtq_strerror(rc));
  /* A malformed URL or namespace is the user's input; anything else is
   * Redis being unreachable or refusing us. */
  return rc == RTQ_EINVAL ? CLI_USAGE : CLI_REDIS;
}

int cli_wait_replicas(const cli *ctx) { return ctx->wait_replicas_n; }

int cli_name(const char *what, const char *s) {
  if (rtq_validate_name(s) == 0) return CLI_OK;
  cli_errorf("invalid %s \"%.64s%s\": expected 1-128 of A-Z a-z 0-9 . _ : -", what, s,
             strlen(s) > 64 ? "..." : "");
  return CLI_USAGE;
}

int cli_duration(const char *opt, const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *ms) {
  long v = 0;
  int rc = rtq_parse_duration_ms(s, (long)min_ms, (long)max_ms, &v);
  if (rc == RTQ_ERANGE) {
    cli_errorf("invalid --%s \"%.64s\": out of range, %llu ms to %.0f days", opt, s,
               (unsigned long long)min_ms, (double)max_ms / 86400000.0);
    return CLI_USAGE;
  }
  if (rc != 0) {
    cli_errorf("invalid --%s \"%.64s\": expected a duration: seconds (30, 1.5) or a number with "
               "a unit (1500ms, 2s, 5m, 1h)", opt, s);
    return CLI_USAGE;
  }
  *ms = (uint64_t)v;
  return CLI_OK;
}

int cli_integer(const char *opt, const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi || s[0] == ' ') {
    cli_errorf("invalid --%s \"%.64s\": expected an integer %lld..%lld", opt, s, lo, hi);
    return CLI_USAGE;
  }
  *out = v;
  return CLI_OK;
}

static cli_opt *find_opt(cli_opt *opts, size_t n, const char *name, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
  return NULL;
}

/* A global option; 1 when name is one (value consumed as needed). */
static int global_opt(cli *ctx, const char *name, size_t len, const char *inline_val,
                      int *i, int argc, char **argv, int *rc) {
  const char **dst = NULL;
  if (len == 4 && strncmp(name, "json", 4) == 0) {
    if (inline_val != NULL) {
      cli_errorf("--json takes no value");
      *rc = CLI_USAGE;
    }
    ctx->json = true;
    return 1;
  }
  const struct global *g = find_global(name, len);
  if (g == NULL) return 0;
  dst = (const char **)((char *)ctx + g->off);
  if (inline_val != NULL) {
    *dst = inline_val;
  } else if (*i + 1 < argc) {
    *dst = argv[++*i];
  } else {
    cli_errorf("--%.*s needs a value", (int)len, name);
    *rc = CLI_USAGE;
    return 1;
  }
  /* The URL is used from a copy, and its password in argv overwritten, so
   * ps and /proc/<pid>/cmdline do not show it while the command runs. (A
   * URL too long for the copy is refused later, unused.) */
  static char url[1024];
  if (g->off == offsetof(cli, redis_url) && strlen(*dst) < sizeof url) {
    snprintf(url, sizeof url, "%s", *dst);
    *dst = url;
    rtq_config_hide_secret(argv[*i]);
  }
  return 1;
}

int cli_parse(cli *ctx, int argc, char **argv, cli_opt *opts, size_t n, const char **pos,
              int maxpos, int *npos) {
  int only_pos = 0, rc = CLI_OK;
  *npos = 0;
  for (int i = 0; i < argc && rc == CLI_OK; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
      if (*npos >= maxpos) {
        cli_errorf("unexpected argument \"%.64s\"", a);
        return CLI_USAGE;
      }
      pos[(*npos)++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (a[1] != '-') {
      cli_errorf("unknown option \"%.64s\"", a);
      return CLI_USAGE;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    const char *inline_val = eq != NULL ? eq + 1 : NULL;
    if (global_opt(ctx, name, len, inline_val, &i, argc, argv, &rc)) continue;
    cli_opt *o = find_opt(opts, n, name, len);
    if (o == NULL) {
      cli_errorf("unknown option \"--%.*s\"", (int)(len > 64 ? 64 : len), name);
      return CLI_USAGE;
    }
    if (o->kind == OPT_FLAG) {
      if (inline_val != NULL) {
        cli_errorf("--%s takes no value", o->name);
        return CLI_USAGE;
      }
      o->value = "";
    } else if (inline_val != NULL) {
      o->value = inline_val;
    } else if (o->kind == OPT_OPTIONAL) {
      o->value = "";
    } else if (i + 1 < argc) {
      o->value = argv[++i];
    } else {
      cli_errorf("--%s needs a value", o->name);
      return CLI_USAGE;
    }
  }
  return rc;
}
