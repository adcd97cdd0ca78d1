/*
 * argv.h - a growable Redis command argument vector. Every command rtq
 * sends is built here and sent with redisCommandArgv/redisAsyncCommandArgv,
 * never with a format string built from data.
 *
 * Each argument is copied into its own allocation (chunks[i] backs argv[i]),
 * so the caller's buffers may go away after an append, and one argument
 * can be replaced without touching the others. A NUL follows every copy,
 * so an argument that holds text can be read as a C string.
 */
#ifndef RTQ_ARGV_H
#define RTQ_ARGV_H

#include <stddef.h>
#include <stdint.h>

/* Storage the caller owns: rtq_argv_init / rtq_argv_destroy. */
typedef struct rtq_argv {
  int argc;
  const char **argv;
  size_t *argvlen;
  int cap;
  char **chunks;     /* copied argument bytes */
  int nchunks;
  int oom;           /* sticky: an append failed */
} rtq_argv;

/* Makes a an empty vector; allocates nothing. */
void rtq_argv_init(rtq_argv *a);
/* Frees everything a holds; a must be init'ed again before reuse. */
void rtq_argv_destroy(rtq_argv *a);
/* Empties a for reuse, keeping its capacity, and clears a->oom. */
void rtq_argv_reset(rtq_argv *a);
/* Appends a copy of len bytes (binary-safe; p may be NULL when len is 0).
 * Returns 0 or RTQ_ENOMEM, also remembered in a->oom; once a->oom is set
 * every append fails until a reset, so a caller may check once at the end. */
int rtq_argv_add(rtq_argv *a, const void *p, size_t len);
/* Drops the last argument (none: does nothing) and clears the sticky OOM,
 * so a caller can roll back a partly appended group and go on. */
void rtq_argv_pop(rtq_argv *a);
/* Appends a C string (without its NUL); s must not be NULL. */
int rtq_argv_add_str(rtq_argv *a, const char *s);
/* Appends a decimal integer. */
int rtq_argv_add_i64(rtq_argv *a, int64_t v);
int rtq_argv_add_u64(rtq_argv *a, uint64_t v);
/* Replaces argument i (0 <= i < argc) with a copy of p. Returns 0,
 * RTQ_EINVAL for a bad index, or RTQ_ENOMEM (argument i is then unchanged). */
int rtq_argv_set(rtq_argv *a, int i, const void *p, size_t len);

/* Allocation seam for fault-injection tests (beanstalkd's falloc): every
 * allocation of this module goes through it. Default: realloc. */
extern void *(*rtq__argv_realloc)(void *ptr, size_t size);

#endif
