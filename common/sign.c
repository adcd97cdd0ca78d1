/*
 * sign.c - key files and HMAC-SHA256 signatures (sign.h), through
 * OpenSSL's libcrypto. Secrets never leave this file: errors name the
 * file and line only, and freed keys are wiped.
 */
#include "sign.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "rtq/common.h"

/* A key file is a few lines; anything bigger is not one. */
#define KEY_FILE_MAX 65536

struct rtq_sign_keys {
  int n;
  struct {
    char kid[RTQ_SIGN_KID_MAX + 1];
    unsigned char secret[RTQ_SIGN_SECRET_MAX];
    size_t len;
  } k[RTQ_SIGN_MAX_KEYS];
};

void rtq_sign_keys_free(rtq_sign_keys *k) {
  if (k == NULL) return;
  OPENSSL_cleanse(k, sizeof *k);
  free(k);
}

const char *rtq_sign_kid(const rtq_sign_keys *k) { return k != NULL && k->n > 0 ? k->k[0].kid : ""; }

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int kid_char(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

/* One line "kid:hex" (no newline) into slot i. Returns NULL or why not. */
static const char *parse_line(rtq_sign_keys *k, const char *s, size_t len) {
  const char *colon = memchr(s, ':', len);
  if (colon == NULL) return "expected kid:hex";
  size_t kl = (size_t)(colon - s), hl = len - kl - 1;
  if (kl < 1 || kl > RTQ_SIGN_KID_MAX) return "the key id must be 1..32 characters";
  for (size_t i = 0; i < kl; i++)
    if (!kid_char((unsigned char)s[i])) return "the key id may hold only A-Z a-z 0-9 . _ -";
  if (hl % 2 != 0) return "the secret is not hex (odd length)";
  if (hl / 2 < RTQ_SIGN_SECRET_MIN) return "the secret is shorter than 32 bytes (64 hex digits)";
  if (hl / 2 > RTQ_SIGN_SECRET_MAX) return "the secret is longer than 128 bytes";
  if (k->n == RTQ_SIGN_MAX_KEYS) return "more than 16 keys";
  for (int i = 0; i < k->n; i++)
    if (strlen(k->k[i].kid) == kl && memcmp(k->k[i].kid, s, kl) == 0) return "the key id is listed twice";
  const char *h = colon + 1;
  for (size_t i = 0; i < hl / 2; i++) {
    int a = hexval((unsigned char)h[2 * i]), b = hexval((unsigned char)h[2 * i + 1]);
    if (a < 0 || b < 0) return "the secret is not hex";
    k->k[k->n].secret[i] = (unsigned char)(a * 16 + b);
  }
  memcpy(k->k[k->n].kid, s, kl);
  k->k[k->n].kid[kl] = '\0';
  k->k[k->n].len = hl / 2;
  k->n++;
  return NULL;
}

static int parse(rtq_sign_keys *k, const char *path, const char *buf, size_t len, char *err, size_t cap) {
  size_t at = 0;
  for (int line = 1; at < len; line++) {
    const char *nl = memchr(buf + at, '\n', len - at);
    size_t end = nl != NULL ? (size_t)(nl - buf) : len, l = end - at;
    if (l > 0 && buf[at + l - 1] == '\r') l--;
    while (l > 0 && (buf[at] == ' ' || buf[at] == '\t')) at++, l--;
    while (l > 0 && (buf[at + l - 1] == ' ' || buf[at + l - 1] == '\t')) l--;
    if (l > 0 && buf[at] != '#') {
      const char *why = parse_line(k, buf + at, l);
      if (why != NULL) {
        snprintf(err, cap, "key file %s: line %d: %s", path, line, why);
        return RTQ_EINVAL;
      }
    }
    at = end + 1;
  }
  if (k->n == 0) {
    snprintf(err, cap, "key file %s: no key in it", path);
    return RTQ_EINVAL;
  }
  return 0;
}

int rtq_sign_keys_load(const char *path, rtq_sign_keys **out, char *err, size_t cap) {
  *out = NULL;
  if (path == NULL || *path == '\0') {
    snprintf(err, cap, "key file: no path given");
    return RTQ_EINVAL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    snprintf(err, cap, "key file %s: %s", path, strerror(errno));
    return RTQ_EIO;
  }
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    snprintf(err, cap, "key file %s: %s", path, strerror(errno));
    rc = RTQ_EIO;
  } else if (!S_ISREG(st.st_mode)) {
    snprintf(err, cap, "key file %s: not a regular file", path);
    rc = RTQ_EINVAL;
  } else if ((st.st_mode & 077) != 0) {
    snprintf(err, cap, "key file %s: group or others may access it (mode %03o); chmod 600 it", path,
             (unsigned)(st.st_mode & 0777));
    rc = RTQ_EINVAL;
  } else if (st.st_size > KEY_FILE_MAX) {
    snprintf(err, cap, "key file %s: larger than 64 KiB", path);
    rc = RTQ_EINVAL;
  }
  char *buf = rc == 0 ? malloc(KEY_FILE_MAX + 1) : NULL;
  rtq_sign_keys *k = rc == 0 ? calloc(1, sizeof *k) : NULL;
  if (rc == 0 && (buf == NULL || k == NULL)) {
    snprintf(err, cap, "key file %s: out of memory", path);
    rc = RTQ_ENOMEM;
  }
  size_t len = 0;
  while (rc == 0 && len <= KEY_FILE_MAX) {
    ssize_t got = read(fd, buf + len, KEY_FILE_MAX + 1 - len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      snprintf(err, cap, "key file %s: %s", path, strerror(errno));
      rc = RTQ_EIO;
    }
    if (got <= 0) break;
    len += (size_t)got;
  }
  close(fd);
  if (rc == 0 && len > KEY_FILE_MAX) {
    snprintf(err, cap, "key file %s: larger than 64 KiB", path);
    rc = RTQ_EINVAL;
  }
  if (rc == 0) rc = parse(k, path, buf, len, err, cap);
  if (buf != NULL) OPENSSL_cleanse(buf, KEY_FILE_MAX + 1);
  free(buf);
  if (rc != 0) {
    rtq_sign_keys_free(k);
    return rc;
  }
  *out = k;
  return 0;
}

int rtq_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t len, unsigned char out[32]) {
  unsigned int n = 32;
  static const unsigned char none = 0;
  return HMAC(EVP_sha256(), key, (int)key_len, msg != NULL ? msg : &none, len, out, &n) != NULL ? 0 : RTQ_ENOMEM;
}

/* ---- canonical bytes ---- */

typedef struct part {
  const void *p;
  size_t len;
} part;

static part text(const char *s) { return (part){s != NULL ? s : "", s != NULL ? strlen(s) : 0}; }

/* HMAC of the parts joined with NUL bytes, under one key. */
static int mac_parts(const unsigned char *key, size_t klen, const part *ps, int n, unsigned char out[32]) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *h = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
  char sha[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha, 0), OSSL_PARAM_construct_end()};
  static const unsigned char nul = 0;
  int ok = h != NULL && EVP_MAC_init(h, key, klen, params);
  for (int i = 0; ok && i < n; i++) {
    if (i > 0) ok = EVP_MAC_update(h, &nul, 1);
    if (ok && ps[i].len > 0) ok = EVP_MAC_update(h, ps[i].p, ps[i].len);
  }
  size_t olen = 0;
  if (ok) ok = EVP_MAC_final(h, out, &olen, 32) && olen == 32;
  EVP_MAC_CTX_free(h);
  EVP_MAC_free(mac);
  return ok ? 0 : RTQ_ENOMEM;
}

static void hex(const unsigned char *b, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) out[2 * i] = d[b[i] >> 4], out[2 * i + 1] = d[b[i] & 15];
  out[2 * n] = '\0';
}

static int sign_parts(const rtq_sign_keys *k, const part *ps, int n, char *out) {
  out[0] = '\0';
  if (k == NULL || k->n == 0) return RTQ_EINVAL;
  unsigned char mac[32];
  int rc = mac_parts(k->k[0].secret, k->k[0].len, ps, n, mac);
  if (rc != 0) return rc;
  size_t kl = strlen(k->k[0].kid);
  memcpy(out, k->k[0].kid, kl);
  out[kl] = ':';
  hex(mac, 32, out + kl + 1);
  return 0;
}

static int check_parts(const rtq_sign_keys *k, const part *ps, int n, const char *sig) {
  if (k == NULL || sig == NULL) return RTQ_EUNVERIFIED;
  const char *colon = strchr(sig, ':');
  if (colon == NULL || strlen(colon + 1) != 64) return RTQ_EUNVERIFIED;
  size_t kl = (size_t)(colon - sig);
  unsigned char want[32], mac[32];
  for (int i = 0; i < 32; i++) {
    int a = hexval((unsigned char)colon[1 + 2 * i]), b = hexval((unsigned char)colon[2 + 2 * i]);
    if (a < 0 || b < 0) return RTQ_EUNVERIFIED;
    want[i] = (unsigned char)(a * 16 + b);
  }
  for (int i = 0; i < k->n; i++) {
    if (strlen(k->k[i].kid) != kl || memcmp(k->k[i].kid, sig, kl) != 0) continue;
    if (mac_parts(k->k[i].secret, k->k[i].len, ps, n, mac) != 0) return RTQ_EUNVERIFIED;
    return CRYPTO_memcmp(mac, want, 32) == 0 ? 0 : RTQ_EUNVERIFIED;
  }
  return RTQ_EUNVERIFIED;
}

/* "rtq2" id Q name args to mr rt bo, NUL between (PROTOCOL.md 9). */
static void task_parts(const rtq_sign_task *t, part ps[9]) {
  ps[0] = text("rtq2");
  ps[1] = text(t->id);
  ps[2] = text(t->queue);
  ps[3] = text(t->name);
  ps[4] = (part){t->args, t->args != NULL ? t->args_len : 0};
  ps[5] = text(t->to);
  ps[6] = text(t->mr);
  ps[7] = text(t->rt);
  ps[8] = text(t->bo);
}

static int digest_add(EVP_MD_CTX *s, rtq_sign_bytes b) {
  size_t len = b.p != NULL ? b.len : 0;
  unsigned char n[8];
  for (int i = 0; i < 8; i++) n[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
  return EVP_DigestUpdate(s, n, 8) && (len == 0 || EVP_DigestUpdate(s, b.p, len));
}

/* "rtq2r" id Q attempt status hex(SHA-256 of the outcome's values, each
 * with its length as 8 bytes big-endian before it: the result for
 * completed, else ec em ed et) sg b. */
#define OUTCOME_PARTS 8
static int outcome_parts(const rtq_sign_outcome *o, const char *role, part ps[OUTCOME_PARTS], char dhex[65]) {
  EVP_MD_CTX *s = EVP_MD_CTX_new();
  unsigned char d[32];
  unsigned int dl = 0;
  int ok = s != NULL && EVP_DigestInit_ex(s, EVP_sha256(), NULL);
  if (ok && o->status != NULL && strcmp(o->status, "completed") == 0) {
    ok = digest_add(s, o->r);
  } else if (ok) {
    ok = digest_add(s, o->ec) && digest_add(s, o->em) && digest_add(s, o->ed) && digest_add(s, o->et);
  }
  if (ok) ok = EVP_DigestFinal_ex(s, d, &dl) && dl == 32;
  EVP_MD_CTX_free(s);
  if (!ok) return RTQ_ENOMEM;
  hex(d, 32, dhex);
  ps[0] = text(role);
  ps[1] = text(o->id);
  ps[2] = text(o->queue);
  ps[3] = text(o->attempt);
  ps[4] = text(o->status);
  ps[5] = text(dhex);
  ps[6] = text(o->task_sig);
  ps[7] = text(o->started);
  return 0;
}

int rtq_sign_task_sig(const rtq_sign_keys *k, const rtq_sign_task *t, char *out) {
  part ps[9];
  task_parts(t, ps);
  return sign_parts(k, ps, 9, out);
}

int rtq_sign_task_check(const rtq_sign_keys *k, const rtq_sign_task *t, const char *sig) {
  part ps[9];
  task_parts(t, ps);
  return check_parts(k, ps, 9, sig);
}

static int outcome_sig(const char *role, const rtq_sign_keys *k, const rtq_sign_outcome *o, char *out) {
  part ps[OUTCOME_PARTS];
  char d[65];
  out[0] = '\0';
  int rc = outcome_parts(o, role, ps, d);
  return rc != 0 ? rc : sign_parts(k, ps, OUTCOME_PARTS, out);
}

static int outcome_check(const char *role, const rtq_sign_keys *k, const rtq_sign_outcome *o, const char *sig) {
  part ps[OUTCOME_PARTS];
  char d[65];
  return outcome_parts(o, role, ps, d) != 0 ? RTQ_EUNVERIFIED : check_parts(k, ps, OUTCOME_PARTS, sig);
}

static bool is_completed(const rtq_sign_outcome *o) { return o->status != NULL && strcmp(o->status, "completed") == 0; }

int rtq_sign_outcome_sig(const rtq_sign_keys *k, const rtq_sign_outcome *o, char *out) {
  return outcome_sig("rtq2r", k, o, out);
}

int rtq_sign_outcome_check(const rtq_sign_keys *k, const rtq_sign_outcome *o, const char *sig) {
  return outcome_check("rtq2r", k, o, sig);
}

int rtq_sign_end_sig(const rtq_sign_keys *k, const rtq_sign_outcome *o, char *out) {
  out[0] = '\0';
  return is_completed(o) ? RTQ_EINVAL : outcome_sig("rtq2e", k, o, out);
}

int rtq_sign_end_check(const rtq_sign_keys *k, const rtq_sign_outcome *o, const char *sig) {
  return is_completed(o) ? RTQ_EUNVERIFIED : outcome_check("rtq2e", k, o, sig);
}

int rtq_sign_fixed_end(const rtq_sign_keys *k, const char *id, const char *queue, const char *a,
                       const char *b, const char *sg, const char *status, const char *ec, const char *em,
                       char *out) {
  rtq_sign_outcome o = {.id = id, .queue = queue, .attempt = a, .status = status,
                        .ec = {ec, ec != NULL ? strlen(ec) : 0}, .em = {em, em != NULL ? strlen(em) : 0},
                        .task_sig = sg, .started = b};
  return rtq_sign_end_sig(k, &o, out);
}
