/*
 * url.c - Redis URL parsing (grammar in conn.h).
 *
 * Error messages name the part that is wrong but never quote any of the
 * URL: errbuf ends up in logs, and a malformed URL can put a password in
 * any part ("redis://user:se/cret@h" reads "se" as the port and
 * "cret@h" as the db; "redis://user:secret" reads the password as a port).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "conn.h"
#include "rtq/common.h"

static int fail(char *errbuf, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *errbuf, size_t errcap, const char *fmt, ...) {
  if (errbuf != NULL && errcap > 0) {
    int n = snprintf(errbuf, errcap, "invalid redis URL: ");
    if (n > 0 && (size_t)n < errcap) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(errbuf + n, errcap - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return RTQ_EINVAL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/*
 * Decodes %XX escapes of s[0..n) into out (cap bytes with the NUL).
 * Returns 0; -1 on a malformed escape or a decoded NUL (it would cut the
 * string short and authenticate with something else); -2 when too long.
 */
static int pct_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      c = (char)(hi * 16 + lo);
      if (c == '\0') return -1;
      i += 2;
    }
    if (o + 1 >= cap) return -2;
    out[o++] = c;
  }
  out[o] = '\0';
  return 0;
}

/* Parses a decimal in [lo, hi] from s[0..n): digits only, no sign, no
 * spaces, not empty. */
static int parse_int(const char *s, size_t n, long lo, long hi, int *out) {
  if (n == 0 || n > 10) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

/* user[:password] in s[0..n). No colon: the whole part is the user. */
static int parse_userinfo(const char *s, size_t n, rtq_redis_url *u, char *errbuf, size_t errcap) {
  const char *colon = memchr(s, ':', n);
  size_t ulen = colon ? (size_t)(colon - s) : n;
  int rc = pct_decode(s, ulen, u->user, sizeof u->user);
  if (rc == -1) return fail(errbuf, errcap, "bad percent-escape in user");
  if (rc == -2) return fail(errbuf, errcap, "user is longer than %zu bytes", sizeof u->user - 1);
  if (colon != NULL) {
    rc = pct_decode(colon + 1, n - ulen - 1, u->password, sizeof u->password);
    if (rc == -1) return fail(errbuf, errcap, "bad percent-escape in password");
    if (rc == -2) return fail(errbuf, errcap, "password is longer than %zu bytes", sizeof u->password - 1);
  }
  return 0;
}

/* host[:port] or [v6addr][:port] in s[0..n). */
static int parse_hostport(const char *s, size_t n, rtq_redis_url *u, char *errbuf, size_t errcap) {
  const char *host = s;
  size_t hlen;
  const char *rest;
  if (n > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (close == NULL) return fail(errbuf, errcap, "IPv6 host is missing its ']'");
    host = s + 1;
    hlen = (size_t)(close - host);
    rest = close + 1;
  } else {
    const char *colon = memchr(s, ':', n);
    hlen = colon ? (size_t)(colon - s) : n;
    rest = s + hlen;
  }
  size_t rlen = n - (size_t)(rest - s);
  if (hlen == 0) return fail(errbuf, errcap, "host is empty");
  if (hlen >= sizeof u->host) return fail(errbuf, errcap, "host is longer than %zu bytes", sizeof u->host - 1);
  for (size_t i = 0; i < hlen; i++) {
    unsigned char c = (unsigned char)host[i];
    if (c <= ' ' || c == 0x7f || c == '%' || c == '@' || c == '/' || c == '?')
      return fail(errbuf, errcap, "host contains a character not allowed in a host name");
  }
  memcpy(u->host, host, hlen);
  u->host[hlen] = '\0';

  if (rlen > 0) {
    if (rest[0] != ':') return fail(errbuf, errcap, "unexpected text after the host");
    if (parse_int(rest + 1, rlen - 1, 1, 65535, &u->port) != 0)
      return fail(errbuf, errcap, "port is not a number 1..65535");
  }
  return 0;
}

static int parse_db(const char *s, size_t n, rtq_redis_url *u, char *errbuf, size_t errcap) {
  if (parse_int(s, n, 0, INT_MAX, &u->db) != 0)
    return fail(errbuf, errcap, "db is not a number 0..%d", INT_MAX);
  return 0;
}

/* Splits an optional "userinfo@" off the authority s[0..n). */
static int split_userinfo(const char **s, size_t *n, rtq_redis_url *u, char *errbuf, size_t errcap) {
  /* The last '@' separates: a password may contain an unescaped '@'. */
  const char *at = NULL;
  for (size_t i = 0; i < *n; i++)
    if ((*s)[i] == '@') at = *s + i;
  if (at == NULL) return 0;
  int rc = parse_userinfo(*s, (size_t)(at - *s), u, errbuf, errcap);
  if (rc != 0) return rc;
  *n -= (size_t)(at + 1 - *s);
  *s = at + 1;
  return 0;
}

static int parse_tcp(const char *p, rtq_redis_url *u, char *errbuf, size_t errcap) {
  if (strchr(p, '?') != NULL || strchr(p, '#') != NULL)
    return fail(errbuf, errcap, "query strings are not supported in redis:// URLs");
  const char *slash = strchr(p, '/');
  size_t alen = slash ? (size_t)(slash - p) : strlen(p);
  /* "user:se/cret@host": the authority ends at the first '/', so the
   * password's tail would be read as the db. Say what happened instead. */
  if (slash != NULL && memchr(p, '@', alen) == NULL && strchr(slash, '@') != NULL)
    return fail(errbuf, errcap, "'@' after the first '/': a '/' in the user or password must be "
                                "percent-encoded (%%2F)");
  const char *auth = p;
  int rc = split_userinfo(&auth, &alen, u, errbuf, errcap);
  if (rc != 0) return rc;
  rc = parse_hostport(auth, alen, u, errbuf, errcap);
  if (rc != 0) return rc;
  if (slash != NULL && slash[1] != '\0') return parse_db(slash + 1, strlen(slash + 1), u, errbuf, errcap);
  return 0;
}

/* Copies every "host[:port]" of the comma-separated list s[0..n) into
 * u->seeds; the first one also into u->host and u->port. */
static int parse_seeds(const char *s, size_t n, int def_port, rtq_redis_url *u, char *errbuf, size_t errcap) {
  u->nseeds = 0;
  for (;;) {
    const char *comma = memchr(s, ',', n);
    size_t len = comma ? (size_t)(comma - s) : n;
    if (u->nseeds == RTQ_URL_MAX_SEEDS) return fail(errbuf, errcap, "more than %d hosts", RTQ_URL_MAX_SEEDS);
    rtq_redis_url one;
    memset(&one, 0, sizeof one);
    one.port = def_port;
    int rc = parse_hostport(s, len, &one, errbuf, errcap);
    if (rc != 0) return rc;
    memcpy(u->seeds[u->nseeds].host, one.host, sizeof one.host);
    u->seeds[u->nseeds].port = one.port;
    u->nseeds++;
    if (comma == NULL) break;
    n -= len + 1;
    s = comma + 1;
  }
  memcpy(u->host, u->seeds[0].host, sizeof u->host);
  u->port = u->seeds[0].port;
  return 0;
}

/* The authority of a multi-host URL: [userinfo@]host[:port][,...]. */
static int parse_multi(const char *p, size_t alen, int def_port, rtq_redis_url *u, char *errbuf, size_t errcap) {
  if (strchr(p, '?') != NULL || strchr(p, '#') != NULL)
    return fail(errbuf, errcap, "query strings are not supported in redis URLs");
  const char *slash = memchr(p, '/', alen);
  if (slash != NULL) alen = (size_t)(slash - p);
  if (slash != NULL && memchr(p, '@', alen) == NULL && strchr(slash, '@') != NULL)
    return fail(errbuf, errcap, "'@' after the first '/': a '/' in the user or password must be "
                                "percent-encoded (%%2F)");
  const char *auth = p;
  int rc = split_userinfo(&auth, &alen, u, errbuf, errcap);
  if (rc != 0) return rc;
  return parse_seeds(auth, alen, def_port, u, errbuf, errcap);
}

/* redis+cluster://[userinfo@]host:port[,host:port...][/0]: a cluster has
 * only db 0. */
static int parse_cluster(const char *p, rtq_redis_url *u, char *errbuf, size_t errcap) {
  u->kind = RTQ_URL_CLUSTER;
  int rc = parse_multi(p, strlen(p), 6379, u, errbuf, errcap);
  if (rc != 0) return rc;
  const char *slash = strchr(p, '/');
  if (slash != NULL && slash[1] != '\0' && strcmp(slash + 1, "0") != 0)
    return fail(errbuf, errcap, "a cluster has only db 0");
  return 0;
}

/* The query of a sentinel URL: sentinel_password=P and sentinel_user=U,
 * joined by '&', each at most once, percent-decoded. */
static int parse_sentinel_query(const char *q, rtq_redis_url *u, char *errbuf, size_t errcap) {
  bool seen_user = false, seen_pass = false;
  while (*q != '\0') {
    const char *amp = strchr(q, '&');
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    const char *eq = memchr(q, '=', n);
    size_t klen = eq ? (size_t)(eq - q) : n;
    char *dst;
    size_t cap;
    bool *seen;
    const char *what;
    if (eq != NULL && klen == 17 && strncmp(q, "sentinel_password", 17) == 0) {
      dst = u->sentinel_password, cap = sizeof u->sentinel_password, seen = &seen_pass, what = "sentinel_password";
    } else if (eq != NULL && klen == 13 && strncmp(q, "sentinel_user", 13) == 0) {
      dst = u->sentinel_user, cap = sizeof u->sentinel_user, seen = &seen_user, what = "sentinel_user";
    } else {
      /* The name only: the value may be a password. */
      return fail(errbuf, errcap, "unknown query parameter \"%.*s\" (sentinel URLs take sentinel_password "
                                  "and sentinel_user)", (int)(klen < 32 ? klen : 32), q);
    }
    if (*seen) return fail(errbuf, errcap, "%s given twice", what);
    *seen = true;
    int rc = pct_decode(eq + 1, n - klen - 1, dst, cap);
    if (rc == -1) return fail(errbuf, errcap, "bad percent-escape in %s", what);
    if (rc == -2) return fail(errbuf, errcap, "%s is longer than %zu bytes", what, cap - 1);
    if (dst[0] == '\0') return fail(errbuf, errcap, "%s is empty", what);
    if (amp == NULL) break;
    q = amp + 1;
  }
  if (seen_user && !seen_pass) return fail(errbuf, errcap, "sentinel_user without sentinel_password");
  return 0;
}

/* redis-sentinel://[userinfo@]host[:port][,...]/MASTER[/db][?query] */
static int parse_sentinel(const char *url, rtq_redis_url *u, char *errbuf, size_t errcap) {
  u->kind = RTQ_URL_SENTINEL;
  if (strchr(url, '#') != NULL) return fail(errbuf, errcap, "fragments are not supported in redis URLs");
  /* Everything before the query, as its own string for the parsers. */
  char p[1024];
  const char *query = strchr(url, '?');
  size_t plen = query ? (size_t)(query - url) : strlen(url);
  if (plen >= sizeof p) return fail(errbuf, errcap, "URL is longer than %zu bytes", sizeof p - 1);
  memcpy(p, url, plen);
  p[plen] = '\0';
  int rc = parse_multi(p, plen, 26379, u, errbuf, errcap);
  if (rc == 0 && query != NULL) rc = parse_sentinel_query(query + 1, u, errbuf, errcap);
  if (rc != 0) return rc;
  const char *name = strchr(p, '/');
  if (name == NULL || name[1] == '\0' || name[1] == '/')
    return fail(errbuf, errcap, "no master name (redis-sentinel://host:port/MASTER_NAME)");
  name++;
  const char *db = strchr(name, '/');
  size_t nlen = db ? (size_t)(db - name) : strlen(name);
  if (nlen >= sizeof u->master) return fail(errbuf, errcap, "master name is longer than %zu bytes", sizeof u->master - 1);
  for (size_t i = 0; i < nlen; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!(c == '-' || c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
      return fail(errbuf, errcap, "master name may hold only letters, digits, '.', '_' and '-'");
  }
  memcpy(u->master, name, nlen);
  u->master[nlen] = '\0';
  if (db != NULL && db[1] != '\0') return parse_db(db + 1, strlen(db + 1), u, errbuf, errcap);
  return 0;
}

/* unix://[userinfo@]/path[?db=N] */
static int parse_unix(const char *p, rtq_redis_url *u, char *errbuf, size_t errcap) {
  u->is_unix = true;
  u->kind = RTQ_URL_UNIX;
  const char *slash = strchr(p, '/');
  if (slash == NULL) return fail(errbuf, errcap, "unix socket path must be absolute (unix:///path)");
  size_t alen = (size_t)(slash - p);
  const char *auth = p;
  int rc = split_userinfo(&auth, &alen, u, errbuf, errcap);
  if (rc != 0) return rc;
  if (alen != 0)
    return fail(errbuf, errcap, "unexpected host in a unix:// URL (use unix:///path)");

  const char *q = strchr(slash, '?');
  size_t plen = q ? (size_t)(q - slash) : strlen(slash);
  /* The kernel's limit, so the error shows here instead of at connect. */
  if (plen >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return fail(errbuf, errcap, "unix socket path is longer than %zu bytes",
                sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
  memcpy(u->path, slash, plen);
  u->path[plen] = '\0';
  if (q != NULL) {
    if (strncmp(q + 1, "db=", 3) != 0)
      return fail(errbuf, errcap, "unknown query (only ?db=N is supported)");
    return parse_db(q + 4, strlen(q + 4), u, errbuf, errcap);
  }
  return 0;
}

int rtq_redis_url_parse(const char *url, rtq_redis_url *out, char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (url == NULL || out == NULL) return fail(errbuf, errcap, "no URL given");
  rtq_redis_url u;
  memset(&u, 0, sizeof u);
  u.port = 6379;

  for (const char *c = url; *c; c++) {
    if ((unsigned char)*c <= ' ' || *c == 0x7f)
      return fail(errbuf, errcap, "contains a space or a control character");
  }
  int rc;
  if (strncasecmp(url, "redis://", 8) == 0) {
    rc = parse_tcp(url + 8, &u, errbuf, errcap);
  } else if (strncasecmp(url, "unix://", 7) == 0) {
    rc = parse_unix(url + 7, &u, errbuf, errcap);
  } else if (strncasecmp(url, "redis+cluster://", 16) == 0) {
    rc = parse_cluster(url + 16, &u, errbuf, errcap);
  } else if (strncasecmp(url, "redis-sentinel://", 17) == 0) {
    rc = parse_sentinel(url + 17, &u, errbuf, errcap);
  } else if (strncasecmp(url, "rediss://", 9) == 0) {
    rc = fail(errbuf, errcap, "TLS (rediss://) is not supported");
  } else {
    rc = fail(errbuf, errcap, "expected redis://host[:port][/db], unix:///path[?db=N], "
                 "redis+cluster://host:port[,host:port...] or redis-sentinel://host[:port][,...]/MASTER");
  }
  if (rc != 0) return rc;
  *out = u;
  return 0;
}

bool rtq_redis_url_is_cluster(const char *url) {
  return url != NULL && strncasecmp(url, "redis+cluster://", 16) == 0;
}
