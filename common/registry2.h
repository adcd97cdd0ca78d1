/*
 * registry2.h - protocol 2: the queue registry {ns}:queues as the client
 * and the broker read it (docs/PROTOCOL.md section 2).
 *
 * The set is read with SSCAN pages of RTQ_REGISTRY2_PAGE, never SMEMBERS,
 * so no single call walks a large set while Redis waits; the pages a read
 * takes are bounded too (a set padded with junk costs a bounded read).
 * Only valid names are kept: a member a writer put there that is no name
 * (PROTOCOL.md section 1) could not become a key.
 */
#ifndef RTQ_REGISTRY2_H
#define RTQ_REGISTRY2_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "keys2.h"

/* Queues a read returns at most (the rest wait: *capped). */
#define RTQ_REGISTRY2_MAX 100000
/* SSCAN COUNT of one page. */
#define RTQ_REGISTRY2_PAGE 1000

/*
 * The valid names of {ns}:queues, sorted, each once, at most max. *names
 * is the caller's (rtq_registry2_free; NULL when there are none); *capped
 * (may be NULL) says the read stopped at max names or at its page bound.
 * Returns 0; RTQ_EREDIS when the key is not a set or a reply is not
 * SSCAN's; RTQ_ENOMEM; or the other returns of rtq_conn_command (the
 * connection's reason in rtq_conn_errstr). Nothing is returned on error.
 */
int rtq_registry2_read(rtq_conn *c, const rtq_keys2 *k, size_t max, char ***names, size_t *n, bool *capped);

/* Frees what rtq_registry2_read returned; NULL does nothing. */
void rtq_registry2_free(char **names, size_t n);

/* Appends a copy of s (len bytes, NUL-terminated there) to *v, grown as
 * needed (*cap its room), when it is a valid name; others are skipped.
 * 0 or RTQ_ENOMEM. */
int rtq__names_push(char ***v, size_t *n, size_t *cap, const char *s, size_t len);
/* Sorts v[0..*n) and frees the repeats. */
void rtq__names_sort_unique(char **v, size_t *n);

#endif
