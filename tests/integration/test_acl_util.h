/*
 * test_acl_util.h - test_acl2.c's reading of docs/OPERATIONS.md section 3:
 * its ACL lines and the admin's mark, run word for word on the test's
 * redis-server; the users they make, ACL LOG, and the check that a
 * command is refused.
 */
#ifndef RTQ_TEST_ACL_UTIL_H
#define RTQ_TEST_ACL_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "argv.h"
#include "harness.h"

#define ACL_MAX_USERS 8
#define ACL_HEADING "## 3. A Redis user per role"

typedef struct acl_user {
  char name[64];
  char password[128];
  char url[300];
} acl_user;

static acl_user acl_users[ACL_MAX_USERS];
static int acl_nusers;
static rtq_conn *acl_admin;

static const acl_user *user(const char *name) {
  for (int i = 0; i < acl_nusers; i++)
    if (strcmp(acl_users[i].name, name) == 0) return &acl_users[i];
  fail_msg("docs/OPERATIONS.md has no ACL user %s", name);
  return NULL;
}

/* Runs one line of the document (words split on spaces) as the admin and,
 * for "ACL SETUSER", records the user's name and password. */
static void acl_run_line(char *line) {
  bool setuser = strncmp(line, "ACL SETUSER ", 12) == 0;
  acl_user *u = &acl_users[acl_nusers];
  if (setuser) {
    assert_true(acl_nusers < ACL_MAX_USERS);
    memset(u, 0, sizeof *u);
  }
  rtq_argv a;
  rtq_argv_init(&a);
  int word = 0;
  for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w != NULL;
       w = strtok_r(NULL, " \t\r\n", &save), word++) {
    rtq_argv_add_str(&a, w);
    if (setuser && word == 2) snprintf(u->name, sizeof u->name, "%s", w);
    if (setuser && word > 2 && w[0] == '>') snprintf(u->password, sizeof u->password, "%s", w + 1);
  }
  redisReply *r = rtq_test_command_argv(acl_admin, &a);
  if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
    fail_msg("%s %s: %s", a.argv[0], setuser ? u->name : a.argv[1], r->str != NULL ? r->str : "?");
  freeReplyObject(r);
  rtq_argv_destroy(&a);
  if (!setuser) return;
  assert_true(u->password[0] != '\0');
  char url[sizeof u->url];
  snprintf(url, sizeof url, "redis://%s:%s@127.0.0.1:%d/0", u->name, u->password,
           rtq_test_redis_port(rtq_test_redis_default()));
  memcpy(u->url, url, sizeof url);
  acl_nusers++;
}

/* Runs the lines of docs/OPERATIONS.md section 3 (from ACL_HEADING to the
 * next section): its "ACL SETUSER" lines and the admin's "SET" of the
 * namespace's mark. Returns the number of users made. */
static int acl_run_document(void) {
  const char *src = getenv("RTQ_SOURCE_DIR");
  if (src == NULL) fail_msg("RTQ_SOURCE_DIR is not set (run through ctest)");
  char path[512], line[2048];
  snprintf(path, sizeof path, "%s/docs/OPERATIONS.md", src);
  FILE *f = fopen(path, "r");
  if (f == NULL) fail_msg("cannot read %s", path);
  acl_admin = rtq_test_conn();
  bool in = false, seen_heading = false;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, ACL_HEADING, strlen(ACL_HEADING)) == 0) in = seen_heading = true;
    else if (in && strncmp(line, "## ", 3) == 0) in = false;
    if (in && (strncmp(line, "ACL SETUSER ", 12) == 0 || strncmp(line, "SET ", 4) == 0))
      acl_run_line(line);
  }
  fclose(f);
  if (!seen_heading) fail_msg("docs/OPERATIONS.md has no \"%s\" heading", ACL_HEADING);
  return acl_nusers;
}

/* The number of ACL LOG entries other than the CONFIG GET of the eviction
 * check (the roles deliberately do not get it); prints each. */
static int acl_denials(void) {
  redisReply *r = rtq_test_command(acl_admin, "ACL", "LOG", NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  int n = 0;
  for (size_t i = 0; i < r->elements; i++) {
    redisReply *e = r->element[i];
    const char *reason = "?", *object = "?", *username = "?";
    for (size_t j = 0; j + 1 < e->elements; j += 2) {
      const char *k = e->element[j]->str;
      const char *v = e->element[j + 1]->type == REDIS_REPLY_STRING ? e->element[j + 1]->str : "";
      if (strcmp(k, "reason") == 0) reason = v;
      if (strcmp(k, "object") == 0) object = v;
      if (strcmp(k, "username") == 0) username = v;
    }
    if (strcmp(reason, "command") == 0 && strcmp(object, "config|get") == 0) continue;
    fprintf(stderr, "ACL LOG: user %s denied %s %s\n", username, reason, object);
    n++;
  }
  freeReplyObject(r);
  return n;
}

/* Fails the test unless the command (NULL-terminated words) is refused by
 * the ACL. */
static void denied(rtq_conn *c, const char *arg0, ...) __attribute__((sentinel));
static void denied(rtq_conn *c, const char *arg0, ...) {
  const char *words[16];
  size_t n = 0;
  va_list ap;
  va_start(ap, arg0);
  for (const char *w = arg0; w != NULL && n < 16; w = va_arg(ap, const char *)) words[n++] = w;
  va_end(ap);
  rtq_argv a;
  rtq_argv_init(&a);
  for (size_t i = 0; i < n; i++) rtq_argv_add_str(&a, words[i]);
  redisReply *r = rtq_test_command_argv(c, &a);
  rtq_argv_destroy(&a);
  /* Inside a script the refusal is an ERR naming the script's user. */
  if (r->type != REDIS_REPLY_ERROR ||
      (strncmp(r->str, "NOPERM", 6) != 0 && strstr(r->str, "user executing the script can't") == NULL))
    fail_msg("%s %s %s was not refused: %s", words[0], n > 1 ? words[1] : "", n > 2 ? words[2] : "",
             r->type == REDIS_REPLY_ERROR ? r->str : "a reply");
  freeReplyObject(r);
}

#endif
