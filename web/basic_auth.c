/*
 * basic_auth.c - the --basic-auth-file users and HTTP Basic credentials.
 *
 * The file holds one "user:hash" per line, as `htpasswd -B`, `openssl
 * passwd -6` or `mkpasswd` write them; blank lines and lines starting with
 * '#' are skipped. Passwords are checked with crypt_r from libxcrypt
 * (Debian's libcrypt), never kept or compared in plain text. Only the
 * strong methods are taken: bcrypt ($2a$, $2b$, $2y$), sha512crypt ($6$),
 * sha256crypt ($5$), yescrypt ($y$, $gy$) and scrypt ($7$); MD5 ($1$,
 * htpasswd's default $apr1$), DES and plain text are refused at start-up.
 *
 * A request for an unknown user runs the hash of the first user all the
 * same and is refused, so the answer takes as long as for a known user
 * with a wrong password, and names are compared in constant time: the
 * timing tells nothing about which users exist.
 *
 * A file that group or other may write is refused (anyone in that group
 * could add a user); one they may read is served with a warning (the
 * hashes can be attacked offline), as mounted secrets often are 0644.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "web.h"

static bool strong_method(const char *hash) {
  static const char *const ok[] = {"$2a$", "$2b$", "$2y$", "$6$", "$5$", "$y$", "$gy$", "$7$"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strncmp(hash, ok[i], strlen(ok[i])) == 0) return true;
  return false;
}

/* crypt_r of password with setting hash into data; NULL when it fails.
 * libxcrypt answers a failure with a string starting with '*'. */
static const char *hash_of(const char *password, const char *hash, struct crypt_data *data) {
  const char *h = crypt_r(password, hash, data);
  return h != NULL && h[0] != '*' ? h : NULL;
}

/* Checks one line "user:hash" and adds it to *u. 0, or -1 with why. */
static int add_user(web_users *u, char *line, const char *path, int lineno,
                    struct crypt_data *data, char *why, size_t wcap) {
  char *colon = strchr(line, ':');
  if (colon == NULL || colon == line) {
    snprintf(why, wcap, "%s line %d: expected user:hash", path, lineno);
    return -1;
  }
  *colon = '\0';
  const char *name = line, *hash = colon + 1;
  size_t nlen = strlen(name), hlen = strlen(hash);
  for (const char *p = name; *p; p++)
    if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
      snprintf(why, wcap, "%s line %d: a user name is printable ASCII without spaces", path,
               lineno);
      return -1;
    }
  if (nlen > WEB_MAX_USER || hlen > WEB_MAX_HASH) {
    snprintf(why, wcap, "%s line %d: user over %d or hash over %d bytes", path, lineno,
             WEB_MAX_USER, WEB_MAX_HASH);
    return -1;
  }
  if (!strong_method(hash) || hash_of("", hash, data) == NULL) {
    snprintf(why, wcap,
             "%s line %d: user %.64s: not a bcrypt, sha-crypt, yescrypt or scrypt hash "
             "(make one with htpasswd -B, openssl passwd -6 or mkpasswd; MD5 and plain text "
             "are refused)",
             path, lineno, name);
    return -1;
  }
  for (size_t i = 0; i < u->n; i++)
    if (strcmp(u->user[i].name, name) == 0) {
      snprintf(why, wcap, "%s line %d: user %.64s is given twice", path, lineno, name);
      return -1;
    }
  if (u->n == WEB_MAX_USERS) {
    snprintf(why, wcap, "%s: more than %d users", path, WEB_MAX_USERS);
    return -1;
  }
  memcpy(u->user[u->n].name, name, nlen + 1);
  memcpy(u->user[u->n].hash, hash, hlen + 1);
  u->n++;
  return 0;
}

int web_basic_load(const char *path, web_users *u, char *why, size_t wcap) {
  memset(u, 0, sizeof *u);
  FILE *f = fopen(path, "r");
  struct stat st;
  if (f == NULL || fstat(fileno(f), &st) != 0) {
    snprintf(why, wcap, "cannot read %s: %s", path, strerror(errno));
    if (f != NULL) fclose(f);
    return -1;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(why, wcap, "%s may be written by group or other users (mode %03o): chmod go-w it",
             path, (unsigned)(st.st_mode & 0777));
    fclose(f);
    return -1;
  }
  if (st.st_mode & (S_IRGRP | S_IROTH))
    rtq_log(RTQ_LOG_WARNING, "the basic-auth file may be read by other users: chmod 600 it",
            "file", path, NULL);
  struct crypt_data *data = calloc(1, sizeof *data);
  char line[WEB_MAX_USER + WEB_MAX_HASH + 8];
  int lineno = 0, rc = data != NULL ? 0 : -1;
  if (data == NULL) snprintf(why, wcap, "out of memory");
  while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
    lineno++;
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n') {
      snprintf(why, wcap, "%s line %d: longer than %zu bytes", path, lineno, sizeof line - 2);
      rc = -1;
      break;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
    line[n] = '\0';
    if (n == 0 || line[0] == '#') continue;
    rc = add_user(u, line, path, lineno, data, why, wcap);
  }
  fclose(f);
  free(data);
  if (rc == 0 && u->n == 0) {
    snprintf(why, wcap, "%s: no user:hash line", path);
    rc = -1;
  }
  return rc;
}

/* Standard base64 (RFC 4648, with padding) into out (cap bytes, NUL
 * added). The length, or -1 for anything else. */
static long base64_decode(const char *s, size_t n, char *out, size_t cap) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (n == 0 || n % 4 != 0 || n / 4 * 3 >= cap) return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    unsigned v = 0;
    int pad = 0;
    for (int j = 0; j < 4; j++) {
      char ch = s[i + j];
      const char *p = ch != '\0' ? strchr(abc, ch) : NULL;
      if (ch == '=' && i + 4 == n && j >= 2 && (j == 3 || s[i + 3] == '=')) {
        pad++;
        v <<= 6;
      } else if (p != NULL && pad == 0) {
        v = (v << 6) | (unsigned)(p - abc);
      } else {
        return -1;
      }
    }
    out[o++] = (char)(v >> 16);
    if (pad < 2) out[o++] = (char)(v >> 8 & 0xff);
    if (pad < 1) out[o++] = (char)(v & 0xff);
  }
  out[o] = '\0';
  return (long)o;
}

int web_basic_check(const web_users *u, const char *credentials) {
  char plain[WEB_MAX_BASIC + 1];
  size_t n = strlen(credentials);
  while (n > 0 && credentials[n - 1] == ' ') n--;
  long len = base64_decode(credentials, n, plain, sizeof plain);
  char *colon = len > 0 ? memchr(plain, ':', (size_t)len) : NULL;
  if (colon == NULL || memchr(plain, '\0', (size_t)len) != NULL) return 400;
  *colon = '\0';
  const char *name = plain, *password = colon + 1;
  size_t nlen = strlen(name);
  int found = -1;
  for (size_t i = 0; i < u->n; i++) {
    bool eq = web_auth_equal(u->user[i].name, strlen(u->user[i].name), name, nlen);
    found = eq ? (int)i : found;
  }
  const char *expected = u->user[found >= 0 ? found : 0].hash;
  struct crypt_data *data = calloc(1, sizeof *data);
  if (data == NULL) return 503;
  const char *h = hash_of(password, expected, data);
  bool ok = h != NULL && web_auth_equal(expected, strlen(expected), h, strlen(h));
  explicit_bzero(data, sizeof *data);
  free(data);
  explicit_bzero(plain, sizeof plain);
  return ok && found >= 0 ? 0 : 401;
}
