/*
 * cmd_dead.c - `rtq dead list [--limit N] [--offset N]`, `rtq dead show
 * INDEX`, `rtq dead requeue INDEX|--all [--queue Q]` and `rtq dead purge
 * [--queue Q]`: the dead-letter list, through the library (rtq_dead_*).
 *
 * Index 0 is the newest record; a record dead-lettered meanwhile shifts the
 * others by one, so `show` names the index and the id it found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A letter as a jansson object (new reference; NULL when out of memory). */
static json_t *letter_json(const rtq_dead_letter *d) {
  char *text = NULL;
  if (rtq_dead_letter_to_json(d, &text) != 0) return NULL;
  json_t *v = json_loads(text, JSON_ALLOW_NUL, NULL);
  free(text);
  return v;
}

/* Copies s into a cell of cap bytes, control bytes as spaces, cut with '~'. */
static void cell(char *dst, size_t cap, const char *s, size_t width) {
  size_t j = cli_clean(dst, cap, s, false);
  if (width > 0 && j > width && width < cap) {
    dst[width - 1] = '~';
    dst[width] = '\0';
  }
}

static void print_table(const rtq_dead_letters *l, json_t *const *objs, size_t offset) {
  char at[32], code[24], queue[25], id[33], task[33], reason[160];
  printf("%-5s  %-24s  %-20s  %-16s  %-28s  %-24s  %s\n", "INDEX", "AT", "CODE", "QUEUE", "ID",
         "TASK", "REASON");
  for (size_t i = 0; i < l->count; i++) {
    const rtq_dead_letter *d = &l->letters[i];
    json_t *t = json_object_get(objs[i], "task");
    cell(code, sizeof code, d->code, 20);
    cell(queue, sizeof queue, d->queue, 16);
    cell(id, sizeof id, d->id[0] ? d->id : "-", 28);
    const char *name = json_string_value(json_object_get(t, "name"));
    /* A protocol 2 letter's task is {id, queue}: its name is in its hash. */
    cell(task, sizeof task, !json_is_object(t) ? "<undecodable>" : name != NULL ? name : "-", 24);
    cell(reason, sizeof reason, d->reason, 0);
    printf("%-5llu  %-24s  %-20s  %-16s  %-28s  %-24s  %s\n", (unsigned long long)d->index,
           cli_time(d->at, at), code, queue, id, task, reason);
  }
  if (l->count == 0)
    printf("(no dead letters from index %zu; %llu in all)\n", offset,
           (unsigned long long)l->total);
  else
    printf("(%zu to %zu of %llu; rtq dead show INDEX for one)\n", offset, offset + l->count - 1,
           (unsigned long long)l->total);
}

/* Reads INDEX (0 or more) from word into *index; CLI_USAGE after printing. */
static int parse_index(const char *word, long long *index) {
  char *end = NULL;
  *index = strtoll(word, &end, 10);
  if (word[0] < '0' || word[0] > '9' || *end != '\0' || *index > 1000000000) {
    cli_errorf("invalid INDEX \"%.64s\": expected 0 (the newest) or more", word);
    return CLI_USAGE;
  }
  return CLI_OK;
}

static int dead_list(cli *ctx, int argc, char **argv) {
  enum { O_LIMIT, O_OFFSET, O_N };
  cli_opt opts[O_N] = {{"limit", OPT_VALUE, NULL}, {"offset", OPT_VALUE, NULL}};
  const char *pos[1];
  int npos;
  long long limit = RTQ_DEAD_DEFAULT_LIMIT, offset = 0;
  int rc = cli_parse(ctx, argc, argv, opts, O_N, pos, 0, &npos);
  if (rc == CLI_OK && opts[O_LIMIT].value != NULL)
    rc = cli_integer("limit", opts[O_LIMIT].value, 1, RTQ_DEAD_MAX_LIMIT, &limit);
  if (rc == CLI_OK && opts[O_OFFSET].value != NULL)
    rc = cli_integer("offset", opts[O_OFFSET].value, 0, 1000000000, &offset);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  rtq_dead_letters *l = NULL;
  int err = rtq_dead_list(ctx->client, (size_t)offset, (size_t)limit, &l);
  if (err != 0) return cli_fail(ctx, err, "dead list");
  json_t *arr = json_array();
  json_t **objs = calloc(l->count + 1, sizeof *objs);
  for (size_t i = 0; arr != NULL && objs != NULL && i < l->count; i++) {
    objs[i] = letter_json(&l->letters[i]);
    if (objs[i] == NULL || json_array_append(arr, objs[i]) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  if (arr == NULL || objs == NULL) {
    cli_error_code(rtq_err_name(RTQ_ENOMEM), "dead list: out of memory");
    rc = CLI_REDIS;
  } else if (ctx->json) {
    rc = cli_print_json(json_pack("{s:I, s:I, s:O}", "total", (json_int_t)l->total, "offset",
                                  (json_int_t)offset, "letters", arr));
  } else {
    print_table(l, objs, (size_t)offset);
  }
  for (size_t i = 0; objs != NULL && i < l->count; i++) json_decref(objs[i]);
  free(objs);
  json_decref(arr);
  rtq_dead_letters_free(l);
  return rc;
}

static int dead_show(cli *ctx, int argc, char **argv) {
  const char *pos[1];
  int npos;
  long long index = 0;
  int rc = cli_parse(ctx, argc, argv, NULL, 0, pos, 1, &npos);
  if (rc == CLI_OK && npos != 1) {
    cli_errorf("dead show needs an INDEX (0 is the newest; see rtq dead list)");
    rc = CLI_USAGE;
  }
  if (rc == CLI_OK) rc = parse_index(pos[0], &index);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  rtq_dead_letter *d = NULL;
  int err = rtq_dead_get(ctx->client, (size_t)index, &d);
  if (err != 0) return cli_fail(ctx, err, "dead show");
  json_t *o = letter_json(d);
  rtq_dead_letter_free(d);
  if (ctx->json || o == NULL) return cli_print_json(o);
  /* For a person: the same object, indented. */
  char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (text == NULL) return cli_print_json(NULL);
  puts(text);
  free(text);
  return CLI_OK;
}

/* A letter that cannot be requeued is a refusal (exit 1, record kept), not
 * a usage or Redis error. */
static int refused(int err) {
  return err == RTQ_ESTATE || err == RTQ_EDECODE || err == RTQ_ETOOBIG || err == RTQ_EVERSION ||
         err == RTQ_EDEPTH;
}

static int dead_requeue(cli *ctx, int argc, char **argv) {
  enum { O_ALL, O_QUEUE, O_N };
  cli_opt opts[O_N] = {{"all", OPT_FLAG, NULL}, {"queue", OPT_VALUE, NULL}};
  const char *pos[1];
  int npos;
  long long index = 0;
  bool all;
  int rc = cli_parse(ctx, argc, argv, opts, O_N, pos, 1, &npos);
  all = opts[O_ALL].value != NULL;
  if (rc == CLI_OK && all == (npos == 1)) {
    cli_errorf("dead requeue needs an INDEX or --all (rtq dead requeue INDEX|--all [--queue Q])");
    rc = CLI_USAGE;
  }
  const char *queue = opts[O_QUEUE].value;
  if (rc == CLI_OK && queue != NULL) rc = cli_name("queue", queue);
  if (rc == CLI_OK && !all) rc = parse_index(pos[0], &index);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  if (!all) {
    char *id = NULL;
    int err = rtq_dead_requeue(ctx->client, (size_t)index, queue, &id);
    if (err != 0) {
      rc = cli_fail(ctx, err, "dead requeue");
      return refused(err) ? CLI_ENDED : rc;
    }
    if (ctx->json)
      rc = cli_print_json(json_pack("{s:I, s:s, s:s}", "index", (json_int_t)index, "id", id,
                                    "status", "pending"));
    else
      printf("requeued: dead letter %lld, task %s is pending again\n", index, id);
    free(id);
    return rc;
  }
  rtq_dead_counts n;
  int err = rtq_dead_requeue_all(ctx->client, queue, &n);
  if (err != 0) return cli_fail(ctx, err, "dead requeue --all");
  if (ctx->json)
    return cli_print_json(json_pack("{s:I, s:I, s:I}", "requeued", (json_int_t)n.done, "refused",
                                    (json_int_t)n.refused, "other_queues", (json_int_t)n.other));
  printf("requeued %llu dead letter(s); %llu kept (cannot be requeued: see rtq dead list)",
         (unsigned long long)n.done, (unsigned long long)n.refused);
  if (queue != NULL) printf("; %llu of other queues left alone", (unsigned long long)n.other);
  printf("\n");
  return CLI_OK;
}

static int dead_purge(cli *ctx, int argc, char **argv) {
  enum { O_QUEUE, O_N };
  cli_opt opts[O_N] = {{"queue", OPT_VALUE, NULL}};
  const char *pos[1];
  int npos;
  int rc = cli_parse(ctx, argc, argv, opts, O_N, pos, 0, &npos);
  const char *queue = opts[O_QUEUE].value;
  if (rc == CLI_OK && queue != NULL) rc = cli_name("queue", queue);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  if (rc != CLI_OK) return rc;
  rtq_dead_counts n;
  int err = rtq_dead_purge(ctx->client, queue, &n);
  if (err != 0) return cli_fail(ctx, err, "dead purge");
  if (ctx->json)
    return cli_print_json(json_pack("{s:I, s:I}", "purged", (json_int_t)n.done, "other_queues",
                                    (json_int_t)n.other));
  printf("purged %llu dead letter(s)", (unsigned long long)n.done);
  if (queue != NULL) printf("; %llu of other queues left alone", (unsigned long long)n.other);
  printf("\n");
  return CLI_OK;
}

int cmd_dead(cli *ctx, int argc, char **argv) {
  /* Global options may stand before the subcommand too (rtq dead --json
   * list): the words up to it are parsed as options only. */
  int i = 0;
  while (i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0')
    i += (strcmp(argv[i], "--redis") == 0 || strcmp(argv[i], "--namespace") == 0) && i + 1 < argc
             ? 2
             : 1;
  if (i > 0) {
    const char *pos[1];
    int npos, rc = cli_parse(ctx, i, argv, NULL, 0, pos, 0, &npos);
    if (rc != CLI_OK) return rc;
    argc -= i;
    argv += i;
  }
  if (argc >= 1 && strcmp(argv[0], "list") == 0) return dead_list(ctx, argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "show") == 0) return dead_show(ctx, argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "requeue") == 0) return dead_requeue(ctx, argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "purge") == 0) return dead_purge(ctx, argc - 1, argv + 1);
  cli_errorf("dead needs list, show, requeue or purge (rtq dead list [--limit N] [--offset N], "
             "rtq dead show INDEX, rtq dead requeue INDEX|--all [--queue Q], "
             "rtq dead purge [--queue Q])");
  return CLI_USAGE;
}
