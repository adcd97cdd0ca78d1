/*
 * test_scripts.c - the script list against its two descriptions: the
 * header comment at the top of each common/lua/<name>.lua and the appendix
 * of docs/PROTOCOL.md ("## 10. Appendix"), which repeats each header in a
 * "### <name>" section's code block. Both files are read at run time from
 * the source tree (RTQ_SOURCE_DIR), so a change to one that is not made to
 * the other fails here, naming the script and the line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime.h"
#include "scripts.h"

#ifndef RTQ_SOURCE_DIR
#error "RTQ_SOURCE_DIR must name the source tree"
#endif

#define MAX_LINES 400

/* A file's lines (or part of it), each malloc'd without its newline. */
typedef struct lines {
  int n;
  char *s[MAX_LINES];
  int at[MAX_LINES]; /* 1-based line number in the file */
} lines;

static void lines_free(lines *l) {
  for (int i = 0; i < l->n; i++) free(l->s[i]);
  l->n = 0;
}

static void lines_add(lines *l, const char *s, int at) {
  if (l->n == MAX_LINES) fail_msg("more than %d lines to compare", MAX_LINES);
  l->s[l->n] = strdup(s);
  assert_non_null(l->s[l->n]);
  l->at[l->n++] = at;
}

static FILE *open_src(const char *rel, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", RTQ_SOURCE_DIR, rel);
  FILE *f = fopen(path, "r");
  if (f == NULL) fail_msg("cannot open %s", path);
  return f;
}

/* Reads one line without its newline into buf; 0 at the end. */
static int read_line(FILE *f, char *buf, size_t cap) {
  if (fgets(buf, (int)cap, f) == NULL) return 0;
  buf[strcspn(buf, "\n")] = '\0';
  return 1;
}

/* The leading comment of common/lua/<name>.lua, "-- " (or "--") removed. */
static void lua_header(const char *name, lines *out, char *path, size_t cap) {
  char rel[128], buf[1024];
  snprintf(rel, sizeof rel, "common/lua/%s.lua", name);
  FILE *f = open_src(rel, path, cap);
  for (int at = 1; read_line(f, buf, sizeof buf) && strncmp(buf, "--", 2) == 0; at++)
    lines_add(out, buf + (buf[2] == ' ' ? 3 : 2), at);
  fclose(f);
}

/* The appendix of docs/PROTOCOL.md: for each "### <name>", the lines of
 * the code block under it. names[i] / blocks[i]; returns the count. */
#define MAX_SECTIONS 32
static int appendix(char names[MAX_SECTIONS][64], lines *blocks, int *name_at, char *path,
                    size_t cap) {
  FILE *f = open_src("docs/PROTOCOL.md", path, cap);
  char buf[1024];
  int n = 0, at = 0;
  bool in_appendix = false, in_block = false;
  while (read_line(f, buf, sizeof buf)) {
    at++;
    if (strncmp(buf, "## ", 3) == 0) {
      in_appendix = strstr(buf, "Appendix") != NULL;
      continue;
    }
    if (!in_appendix) continue;
    if (strncmp(buf, "### ", 4) == 0) {
      if (n == MAX_SECTIONS) fail_msg("more than %d sections in the appendix", MAX_SECTIONS);
      snprintf(names[n], 64, "%.63s", buf + 4);
      name_at[n] = at;
      blocks[n].n = 0;
      n++;
      in_block = false;
    } else if (strncmp(buf, "```", 3) == 0 && n > 0) {
      in_block = !in_block;
    } else if (in_block) {
      lines_add(&blocks[n - 1], buf, at);
    }
  }
  fclose(f);
  return n;
}

static int find_section(char names[MAX_SECTIONS][64], int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0) return i;
  return -1;
}

/* 0 when the header and the block are equal line for line; else prints
 * the first line that differs and returns 1. */
static int compare(const char *name, const lines *hdr, const lines *b) {
  int m = hdr->n > b->n ? hdr->n : b->n;
  for (int i = 0; i < m; i++) {
    const char *h = i < hdr->n ? hdr->s[i] : "(no line)";
    const char *d = i < b->n ? b->s[i] : "(no line)";
    if (strcmp(h, d) == 0) continue;
    print_error("%s: %s.lua line %d and PROTOCOL.md line %d differ:\n  lua: %s\n  doc: %s\n", name,
                name, i < hdr->n ? hdr->at[i] : 0, i < b->n ? b->at[i] : 0, h, d);
    return 1;
  }
  return 0;
}

static void test_scripts_appendix_matches_lua_headers(void **state) {
  (void)state;
  static char names[MAX_SECTIONS][64];
  static lines blocks[MAX_SECTIONS];
  int name_at[MAX_SECTIONS];
  char doc[512], lua[512];
  int n = appendix(names, blocks, name_at, doc, sizeof doc);
  assert_true(n > 0);
  int errors = 0;
  for (int id = 0; id < RTQ_SCRIPT_COUNT; id++) {
    const char *name = rtq_script_name((rtq_script_id)id);
    lines hdr = {0};
    lua_header(name, &hdr, lua, sizeof lua);
    int s = find_section(names, n, name);
    if (s < 0) {
      print_error("%s: no \"### %s\" section in the appendix of %s\n", name, name, doc);
      errors++;
    } else {
      errors += compare(name, &hdr, &blocks[s]);
    }
    lines_free(&hdr);
  }
  for (int s = 0; s < n; s++) {
    bool known = false;
    for (int id = 0; id < RTQ_SCRIPT_COUNT; id++)
      known = known || strcmp(names[s], rtq_script_name((rtq_script_id)id)) == 0;
    if (!known) {
      print_error("PROTOCOL.md line %d: \"### %s\" names no script in common/lua\n", name_at[s],
                  names[s]);
      errors++;
    }
    lines_free(&blocks[s]);
  }
  if (errors > 0) fail_msg("%d difference(s) between common/lua and %s", errors, doc);
}

/* The comparison itself must be able to fail: a header equals itself, and
 * differs once one of its lines changes or goes. */
static void test_scripts_comparison_sees_a_changed_line(void **state) {
  (void)state;
  lines hdr = {0}, copy = {0};
  char lua[512];
  lua_header("promote", &hdr, lua, sizeof lua);
  assert_true(hdr.n >= 3);
  for (int i = 0; i < hdr.n; i++) lines_add(&copy, hdr.s[i], hdr.at[i]);
  assert_int_equal(compare("promote", &hdr, &copy), 0);
  copy.s[1][0] = copy.s[1][0] == 'x' ? 'y' : 'x';
  assert_int_equal(compare("promote", &hdr, &copy), 1);
  free(copy.s[--copy.n]);
  copy.s[1][0] = hdr.s[1][0];
  assert_int_equal(compare("promote", &hdr, &copy), 1);
  lines_free(&hdr);
  lines_free(&copy);
}

/* finish.lua names the run-time buckets as common/runtime.c does. */
static void test_scripts_finish_run_buckets_match(void **state) {
  (void)state;
  char want[512] = "local RUN_LE = {", path[1024], line[1024];
  for (int i = 0; i < RTQ__RUN_BUCKETS; i++) {
    strcat(want, i > 0 ? ", '" : "'");
    strcat(want, rtq__run_le[i]);
    strcat(want, "'");
  }
  strcat(want, "}");
  FILE *f = open_src("common/lua/finish.lua", path, sizeof path);
  bool found = false;
  while (!found && read_line(f, line, sizeof line)) found = strcmp(line, want) == 0;
  fclose(f);
  if (!found) fail_msg("%s has no line: %s", path, want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scripts_appendix_matches_lua_headers),
      cmocka_unit_test(test_scripts_comparison_sees_a_changed_line),
      cmocka_unit_test(test_scripts_finish_run_buckets_match),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
