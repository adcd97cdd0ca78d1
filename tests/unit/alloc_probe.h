/* alloc_probe.h - counts heap requests, for tests that prove hostile input
 * causes no large allocation. Included by one test file per binary: it
 * defines malloc/calloc/realloc. Needs <stdbool.h>, <stdint.h>, <stdio.h>
 * and <cmocka.h> before it. */
#ifndef RTQ_TEST_ALLOC_PROBE_H
#define RTQ_TEST_ALLOC_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Allocation probe: counts every heap request the process makes between
 * probe_reset() and the read, including msgpack-c's zone requests from
 * inside libmsgpackc, by the size asked for, even when it then fails.
 *
 * Why it can fail: without the structural check, msgpack_unpack_next()
 * allocates a zone for any input and, for `dd ff 00 00 00`, asks for
 * ~100 GiB up front. The hostile-input tests assert that nothing, or only
 * a bounded amount, was requested, so removing or reordering the check
 * turns them red.
 *
 * Mechanism: a plain build defines malloc/calloc/realloc/free here; they
 * take precedence over libc's for the whole process and forward to glibc's
 * __libc_* entry points. Under ASan the sanitizer owns malloc, so its
 * allocation hook is used instead. Valgrind replaces our malloc too (unless
 * run with --soname-synonyms=somalloc=nouserintercepts); probe_active()
 * notices and the allocation assertions are skipped with a note rather
 * than passing vacuously.
 */
#include <stdbool.h>
#include <stdio.h>

/* volatile: the compiler treats malloc as a builtin that touches no
 * globals, and would otherwise fold reads of these after a direct call. */
static volatile size_t probe_total;   /* bytes requested since probe_reset() */
static volatile size_t probe_largest; /* largest single request since then */

static void probe_note(size_t n) {
  probe_total += n;
  if (n > probe_largest) probe_largest = n;
}

#if defined(__SANITIZE_ADDRESS__)
#define PROBE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PROBE_ASAN 1
#endif
#endif

#ifdef PROBE_ASAN
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *));
static void probe_on_malloc(const volatile void *p, size_t n) {
  (void)p;
  probe_note(n);
}
static void probe_on_free(const volatile void *p) { (void)p; }
static void probe_install(void) {
  __sanitizer_install_malloc_and_free_hooks(probe_on_malloc, probe_on_free);
}
#else
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t k, size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *malloc(size_t n) {
  probe_note(n);
  return __libc_malloc(n);
}
void *calloc(size_t k, size_t n) {
  probe_note(n != 0 && k > SIZE_MAX / n ? SIZE_MAX : k * n);
  return __libc_calloc(k, n);
}
void *realloc(void *p, size_t n) {
  probe_note(n);
  return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
static void probe_install(void) {}
#endif

static void probe_reset(void) {
  probe_total = 0;
  probe_largest = 0;
}

/* True when allocations are seen; checked once with a known request. */
static bool probe_active(void) {
  static int active = -1;
  if (active < 0) {
    probe_install();
    probe_reset();
    void *volatile p = malloc(123457);
    free(p);
    active = probe_largest >= 123457;
    if (!active)
      fprintf(stderr, "note: allocation probe inactive (valgrind?); bounds not asserted\n");
  }
  return active;
}

/* Asserts at most `limit` bytes were requested since probe_reset(). */
#define assert_alloc_at_most(limit)                               \
  do {                                                            \
    if (probe_active()) assert_in_range(probe_total, 0, (limit)); \
  } while (0)

#endif
