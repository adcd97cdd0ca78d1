/*
 * auth.c - the bearer token, which credentials a request carries, the
 * Origin check of actions, and the Host check.
 *
 * The token is read once from a file (so it is not in argv or the
 * environment, where other users can see it). Requests carry it as
 * "Authorization: Bearer <token>" and never as a cookie, so a page on
 * another site cannot make a browser send it (CSRF). The comparison takes
 * the same time wherever the first difference is.
 *
 * Without a token the server only listens on loopback, and then accepts
 * only Host headers that name a loopback host: a page on another site
 * whose name was made to resolve to 127.0.0.1 (DNS rebinding) sends its
 * own name as Host and is refused.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "web.h"

int web_auth_load(const char *path, char *token, size_t cap, size_t *len, char *why, size_t wcap) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(why, wcap, "cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  size_t n = fread(token, 1, cap, f);
  int more = fgetc(f) != EOF;
  fclose(f);
  if (more || n >= cap) {
    snprintf(why, wcap, "%s: the token is longer than %zu bytes", path, cap - 1);
    return -1;
  }
  token[n] = '\0';
  size_t start = 0;
  while (start < n && isspace((unsigned char)token[start])) start++;
  while (n > start && isspace((unsigned char)token[n - 1])) n--;
  memmove(token, token + start, n - start);
  n -= start;
  token[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (token[i] < 0x21 || token[i] > 0x7e) {
      snprintf(why, wcap, "%s: the token must be printable ASCII without spaces", path);
      return -1;
    }
  if (n < WEB_MIN_TOKEN) {
    snprintf(why, wcap, "%s: the token is shorter than %d characters", path, WEB_MIN_TOKEN);
    return -1;
  }
  *len = n;
  return 0;
}

bool web_auth_equal(const char *expected, size_t elen, const char *given, size_t glen) {
  unsigned diff = elen != glen;
  for (size_t i = 0; i < elen; i++) {
    unsigned char g = i < glen ? (unsigned char)given[i] : 0;
    diff |= (unsigned char)expected[i] ^ g;
  }
  return diff == 0;
}

bool web_auth_configured(const web_ctx *w) { return w->token_len > 0 || w->users.n > 0; }

int web_auth_check(const web_ctx *w, const char *authorization, bool *basic) {
  static const char bearer[] = "Bearer ", basic_scheme[] = "Basic ";
  *basic = false;
  if (authorization == NULL) return 401;
  if (w->users.n > 0 && strncasecmp(authorization, basic_scheme, sizeof basic_scheme - 1) == 0) {
    const char *c = authorization + sizeof basic_scheme - 1;
    while (*c == ' ') c++;
    int st = web_basic_check(&w->users, c);
    *basic = st == 0;
    return st;
  }
  if (w->token_len == 0 || strncasecmp(authorization, bearer, sizeof bearer - 1) != 0) return 401;
  const char *t = authorization + sizeof bearer - 1;
  while (*t == ' ') t++;
  size_t n = strlen(t);
  while (n > 0 && t[n - 1] == ' ') n--;
  return web_auth_equal(w->token, w->token_len, t, n) ? 0 : 403;
}

bool web_same_origin(const web_request *req) {
  const char *site = req->fetch_site;
  if (site != NULL && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0) return false;
  const char *o = req->origin;
  if (o == NULL) return true;
  if (strncasecmp(o, "http://", 7) == 0) o += 7;
  else if (strncasecmp(o, "https://", 8) == 0) o += 8;
  else return false; /* "null" (a sandboxed or file page) included */
  return req->host != NULL && strcasecmp(o, req->host) == 0;
}

bool web_host_is_loopback(const char *host) {
  if (host == NULL) return false;
  char h[128];
  size_t n = strlen(host);
  if (n == 0 || n >= sizeof h) return false;
  memcpy(h, host, n + 1);
  if (h[0] == '[') {
    char *close = strchr(h, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':')) return false;
    *close = '\0';
    return strcmp(h + 1, "::1") == 0;
  }
  char *colon = strchr(h, ':');
  if (colon != NULL) *colon = '\0';
  for (char *p = h; *p; p++) *p = (char)tolower((unsigned char)*p);
  if (strcmp(h, "localhost") == 0) return true;
  unsigned a, b, c, d;
  char extra;
  if (sscanf(h, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4) return false;
  return a == 127 && b < 256 && c < 256 && d < 256;
}
