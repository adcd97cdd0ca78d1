/*
 * envelope.h - the worker's description of a task it runs (rtq_envelope),
 * and the structural msgpack check every reader of stored msgpack runs.
 *
 * Protocol 2 keeps no envelope on the wire: a queue holds task ids, and a
 * claim replies with the task hash's fields (docs/PROTOCOL.md sections 4
 * and 5). The worker gathers what a claim told it into an rtq_envelope,
 * which moves with the job to the task its handler sees.
 */
#ifndef RTQ_ENVELOPE_H
#define RTQ_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "rtq/common.h"

#define RTQ_ENVELOPE_MAX_SIZE_DEFAULT (1024u * 1024u)
#define RTQ_MAX_DEPTH 32

/* Value type: what a claim told the worker about a task. Strings are
 * NUL-terminated copies; args is a msgpack map, its bytes owned by the
 * envelope. */
typedef struct rtq_envelope {
  char id[129];
  char name[129];
  char queue[129];
  char *args;          /* msgpack map bytes (malloc'd) */
  size_t args_len;
  uint64_t timeout_ms; /* the task's own, or the worker's default */
} rtq_envelope;

/* Zeroes e. */
void rtq_envelope_init(rtq_envelope *e);
/* Frees what e owns (args) and zeroes it. */
void rtq_envelope_destroy(rtq_envelope *e);

/* The msgpack empty map (one byte, 0x80): the args of a task given none. */
extern const char rtq__empty_map[1];

/*
 * Structural check of msgpack bytes without allocating: exactly one value,
 * depth <= max_depth, every declared length within the bytes remaining.
 * Returns 0, RTQ_EDECODE or RTQ_EDEPTH; errbuf gets the reason.
 *   1. Depth counts containers: 0 allows only a scalar, 1 a map or array of
 *      scalars. Empty containers count. A negative max_depth is 0; above 64
 *      it is 64.
 *   2. A container of n entries needs n (array) or 2n (map) bytes left, on
 *      top of one byte for every value its enclosing containers still owe.
 *   3. The reserved byte 0xc1 is rejected; ext values are accepted (their
 *      declared length is bounds-checked like str and bin).
 * Run it before msgpack-c's unpacker, which allocates from declared counts.
 */
int rtq_msgpack_check(const void *buf, size_t len, int max_depth, char *errbuf, size_t errcap);

/*
 * A task's args as a worker accepts them for its handlers: what
 * rtq_args_unpack reads, checked without allocating. rtq_msgpack_check
 * with a depth of RTQ_MAX_DEPTH - 1 (the producers' limit), and also
 * RTQ_EDECODE for a top level that is not a map, a map key that is not a
 * string, or an ext value anywhere. Every args rtq_args_pack writes pass.
 */
int rtq__args_check(const void *buf, size_t len, char *errbuf, size_t errcap);

#endif
