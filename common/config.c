/*
 * config.c - task-manager settings: defaults, set-by-name, environment.
 *
 * One table lists every setting with its type and range, so the flag
 * names, the environment names and the error messages cannot drift apart.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "replicas.h"
#include "rtq/common.h"

typedef enum kind { K_INT, K_BOOL, K_LEVEL, K_URL, K_URL_FILE, K_NS } kind;

typedef struct setting {
  const char *name;
  kind kind;
  size_t offset;
  long min, max; /* K_INT only */
} setting;

#define OFF(f) offsetof(rtq_config, f)

static const setting settings[] = {
    {"max_concurrent_tasks", K_INT, OFF(max_concurrent_tasks), 1, 10000},
    {"default_timeout", K_INT, OFF(default_timeout), 1, 31536000},
    {"task_result_ttl", K_INT, OFF(task_result_ttl), 1, 31536000},
    {"enable_task_history", K_BOOL, OFF(enable_task_history), 0, 0},
    {"log_level", K_LEVEL, OFF(log_level), 0, 0},
    {"cleanup_interval", K_INT, OFF(cleanup_interval), 1, 86400},
    {"max_task_history", K_INT, OFF(max_task_history), 0, 100000000},
    {"redis_url", K_URL, OFF(redis_url), 0, 0},
    /* After redis_url: with both variables set, the file wins. */
    {"redis_url_file", K_URL_FILE, OFF(redis_url_file), 0, 0},
    {"namespace", K_NS, OFF(ns), 0, 0},
    {"wait_replicas", K_INT, OFF(wait_replicas), 0, RTQ_WAIT_REPLICAS_MAX},
    {"wait_timeout", K_INT, OFF(wait_timeout), 1, RTQ_WAIT_TIMEOUT_MAX_MS},
    {"protocol", K_INT, OFF(protocol), 2, 2},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

void rtq_config_defaults(rtq_config *c) {
  memset(c, 0, sizeof *c);
  c->max_concurrent_tasks = 50;
  c->default_timeout = 300;
  c->task_result_ttl = 86400;
  c->enable_task_history = true;
  c->log_level = RTQ_LOG_INFO;
  c->cleanup_interval = 3600;
  c->max_task_history = 10000;
  c->wait_timeout = 1000;
  c->protocol = 2;
  snprintf(c->redis_url, sizeof c->redis_url, "%s", "redis://127.0.0.1:6379/0");
  snprintf(c->ns, sizeof c->ns, "%s", "rtq");
}

static void errf(char *errbuf, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void errf(char *errbuf, size_t errcap, const char *fmt, ...) {
  if (errbuf == NULL || errcap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errcap, fmt, ap);
  va_end(ap);
}

/* A value as it may appear inside an error message: at most 64 bytes, and
 * anything unprintable shown as '?', so a hostile value cannot garble the
 * terminal or a log line. */
static const char *shown(const char *v, char buf[72]) {
  size_t i = 0;
  for (; v[i] != '\0' && i < 64; i++) buf[i] = isprint((unsigned char)v[i]) ? v[i] : '?';
  if (v[i] != '\0') {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

/* Matches "max_concurrent_tasks", "max-concurrent-tasks" and any case. */
static int name_matches(const char *want, const char *given) {
  for (; *want != '\0'; want++, given++) {
    char g = *given == '-' ? '_' : (char)tolower((unsigned char)*given);
    if (g != *want) return 0;
  }
  return *given == '\0';
}

static int parse_long(const char *s, long *out) {
  /* strtol skips leading spaces and takes a sign; a setting is exact. */
  if (!isdigit((unsigned char)s[0]) && !(s[0] == '-' && isdigit((unsigned char)s[1]))) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0') return -1;
  *out = v;
  return 0;
}

static int parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -1;
}

static int ns_valid(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (!(isalnum(ch) && ch < 0x80) && ch != '.' && ch != '_' && ch != '-') return 0;
  }
  return 1;
}

static int apply(rtq_config *c, const setting *s, const char *value, char *errbuf, size_t errcap) {
  char buf[72];
  char *field = (char *)c + s->offset;
  switch (s->kind) {
    case K_INT: {
      long v;
      if (field == (char *)&c->protocol && parse_long(value, &v) == 0 && v == 1) {
        errf(errbuf, errcap, "protocol 1 is no longer supported: this rtq speaks protocol 2 only "
                             "(docs/OPERATIONS.md section 6.1 says how to move a namespace)");
        return RTQ_EINVAL;
      }
      if (parse_long(value, &v) != 0 || v < s->min || v > s->max) {
        errf(errbuf, errcap, "invalid %s \"%s\": expected an integer %ld..%ld", s->name, shown(value, buf),
             s->min, s->max);
        return RTQ_EINVAL;
      }
      *(int *)field = (int)v;
      return 0;
    }
    case K_BOOL:
      if (parse_bool(value, (bool *)field) != 0) {
        errf(errbuf, errcap, "invalid %s \"%s\": expected true/false/1/0/yes/no/on/off", s->name,
             shown(value, buf));
        return RTQ_EINVAL;
      }
      return 0;
    case K_LEVEL:
      if (rtq_log_level_parse(value, (rtq_log_level *)field) != 0) {
        errf(errbuf, errcap, "invalid %s \"%s\": expected DEBUG, INFO, WARNING or ERROR", s->name,
             shown(value, buf));
        return RTQ_EINVAL;
      }
      return 0;
    case K_URL: {
      rtq_redis_url u;
      char why[256];
      if (strlen(value) >= sizeof c->redis_url) {
        errf(errbuf, errcap, "invalid %s: longer than %zu bytes", s->name, sizeof c->redis_url - 1);
        return RTQ_EINVAL;
      }
      /* The URL may hold a password, so the message quotes the parser's
       * reason (which never contains it), not the value. */
      if (rtq_redis_url_parse(value, &u, why, sizeof why) != 0) {
        errf(errbuf, errcap, "invalid %s: %s", s->name, why);
        return RTQ_EINVAL;
      }
      memcpy(field, value, strlen(value) + 1);
      return 0;
    }
    case K_URL_FILE: {
      rtq_redis_url u;
      char url[sizeof c->redis_url], why[256];
      if (strlen(value) >= sizeof c->redis_url_file) {
        errf(errbuf, errcap, "invalid %s: a path longer than %zu bytes", s->name, sizeof c->redis_url_file - 1);
        return RTQ_EINVAL;
      }
      int rc = rtq_config_read_url_file(value, url, sizeof url, why, sizeof why);
      if (rc != 0) {
        errf(errbuf, errcap, "invalid %s: %s", s->name, why);
      } else if (rtq_redis_url_parse(url, &u, why, sizeof why) != 0) {
        /* The parser's reason never quotes the URL. */
        errf(errbuf, errcap, "invalid %s: the URL in %s: %s", s->name, shown(value, buf), why);
        rc = RTQ_EINVAL;
      } else {
        memcpy(c->redis_url, url, strlen(url) + 1);
        memcpy(field, value, strlen(value) + 1);
      }
      memset(url, 0, sizeof url);
      memset(&u, 0, sizeof u);
      return rc;
    }
    case K_NS:
      if (!ns_valid(value)) {
        errf(errbuf, errcap, "invalid %s \"%s\": expected 1..64 characters of A-Z a-z 0-9 . _ -", s->name,
             shown(value, buf));
        return RTQ_EINVAL;
      }
      memcpy(field, value, strlen(value) + 1);
      return 0;
  }
  return RTQ_EINVAL;
}

int rtq_config_set(rtq_config *c, const char *name, const char *value, char *errbuf, size_t errcap) {
  char buf[72];
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (c == NULL || name == NULL || value == NULL) {
    errf(errbuf, errcap, "missing setting name or value");
    return RTQ_EINVAL;
  }
  for (size_t i = 0; i < NSETTINGS; i++) {
    if (name_matches(settings[i].name, name)) return apply(c, &settings[i], value, errbuf, errcap);
  }
  errf(errbuf, errcap, "unknown setting \"%s\"", shown(name, buf));
  return RTQ_ENOTFOUND;
}

static bool listed(const char *name, const char *const *names) {
  for (size_t i = 0; names != NULL && names[i] != NULL; i++)
    if (name_matches(name, names[i])) return true;
  return false;
}

int rtq_config_from_env(rtq_config *c, char *errbuf, size_t errcap) {
  return rtq_config_from_env_except(c, NULL, errbuf, errcap);
}

int rtq_config_from_env_except(rtq_config *c, const char *const *skip, char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  for (size_t i = 0; i < NSETTINGS; i++) {
    if (listed(settings[i].name, skip)) continue;
    char var[64] = "RTQ_";
    size_t n = 4;
    for (const char *p = settings[i].name; *p != '\0' && n < sizeof var - 1; p++)
      var[n++] = (char)toupper((unsigned char)*p);
    var[n] = '\0';
    const char *v = getenv(var);
    if (v == NULL) continue;
    char why[512];
    int rc = apply(c, &settings[i], v, why, sizeof why);
    if (rc != 0) {
      errf(errbuf, errcap, "%s: %s", var, why);
      return rc;
    }
  }
  return 0;
}

/* A sentinel URL's own password sits in its query (url.c). */
#define SENTINEL_PASSWORD "sentinel_password="

/* s with the value of a sentinel_password= parameter shown as "***". */
static void put_query_masked(const char *s, FILE *f) {
  const char *k = strstr(s, SENTINEL_PASSWORD);
  if (k == NULL) {
    fputs(s, f);
    return;
  }
  const char *v = k + strlen(SENTINEL_PASSWORD);
  const char *end = strchr(v, '&');
  fprintf(f, "%.*s***", (int)(v - s), s);
  if (end != NULL) put_query_masked(end, f);
}

/* url with the password of its userinfo shown as "***". A URL that parses
 * ends its authority at the first '/', and its userinfo at the last '@'
 * before that (url.c), so the password lies between them. */
static void print_url(const char *url, FILE *f) {
  const char *p = strstr(url, "://");
  if (p == NULL) {
    put_query_masked(url, f);
    return;
  }
  p += 3;
  const char *end = strchr(p, '/');
  if (end == NULL) end = p + strlen(p);
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@') at = q;
  const char *colon = at != NULL ? memchr(p, ':', (size_t)(at - p)) : NULL;
  if (colon == NULL) {
    put_query_masked(url, f);
    return;
  }
  fprintf(f, "%.*s***", (int)(colon + 1 - url), url);
  put_query_masked(at, f);
}

void rtq_config_print(const rtq_config *c, const char *const *names, FILE *f) {
  for (size_t n = 0; names[n] != NULL; n++) {
    for (size_t i = 0; i < NSETTINGS; i++) {
      const setting *s = &settings[i];
      if (!name_matches(s->name, names[n])) continue;
      const char *field = (const char *)c + s->offset;
      fprintf(f, "%s=", s->name);
      switch (s->kind) {
        case K_INT: fprintf(f, "%d", *(const int *)field); break;
        case K_BOOL: fputs(*(const bool *)field ? "true" : "false", f); break;
        case K_LEVEL: fputs(rtq_log_level_name(*(const rtq_log_level *)field), f); break;
        case K_URL: print_url(field, f); break;
        case K_URL_FILE: fputs(field, f); break;
        case K_NS: fputs(field, f); break;
      }
      fputc('\n', f);
    }
  }
}

void rtq_config_hide_secret(char *arg) {
  char *scheme = strstr(arg, "://");
  if (scheme == NULL) return;
  char *auth = scheme + 3;
  /* The last '@' and the first ':' before it: "user:pass@", whatever the
   * password holds, even in a URL that did not parse ("u:se/cret@h"). */
  char *at = strrchr(auth, '@');
  char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  if (colon != NULL)
    for (char *p = colon + 1; p < at; p++) *p = '*';
  for (char *k = strstr(auth, SENTINEL_PASSWORD); k != NULL; k = strstr(k, SENTINEL_PASSWORD)) {
    k += strlen(SENTINEL_PASSWORD);
    for (; *k != '\0' && *k != '&'; k++) *k = '*';
  }
}

void rtq_config_hide_secrets(int argc, char **argv) {
  for (int i = 1; i < argc; i++) rtq_config_hide_secret(argv[i]);
}

int rtq_config_read_url_file(const char *path, char *out, size_t cap, char *errbuf, size_t errcap) {
  char buf[72];
  if (cap > 0) out[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    errf(errbuf, errcap, "cannot open %s: %s", shown(path, buf), strerror(errno));
    return RTQ_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    errf(errbuf, errcap, "%s is not a regular file", shown(path, buf));
    close(fd);
    return RTQ_EINVAL;
  }
  /* The URL holds the password: a file others may read gives it away. */
  if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0)
    rtq_log(RTQ_LOG_WARNING, "the redis URL file is readable or writable by other users; chmod 600 it", "path",
            shown(path, buf), NULL);
  size_t n = 0;
  ssize_t got = 0;
  while (n < cap && (got = read(fd, out + n, cap - n)) > 0) n += (size_t)got;
  int saved = errno;
  close(fd);
  if (got < 0) {
    errf(errbuf, errcap, "cannot read %s: %s", shown(path, buf), strerror(saved));
    memset(out, 0, cap);
    return RTQ_EIO;
  }
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) n--;
  /* The messages below describe the content, never quote it. */
  const char *bad = n >= cap ? "is too long for a redis URL"
                    : n == 0 ? "is empty"
                    : memchr(out, '\0', n) != NULL ? "holds a NUL byte"
                    : memchr(out, '\n', n) != NULL ? "holds more than one line"
                    : NULL;
  if (bad != NULL) {
    errf(errbuf, errcap, "%s %s", shown(path, buf), bad);
    memset(out, 0, cap);
    return RTQ_EINVAL;
  }
  out[n] = '\0';
  return 0;
}
