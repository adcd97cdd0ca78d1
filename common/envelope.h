/*
 * envelope.h - the task envelope: what travels through queue lists.
 *
 * An envelope is a msgpack map with string keys (see docs/PROTOCOL.md):
 *
 *   "v"           uint   format version, RTQ_ENVELOPE_VERSION
 *   "id"          str    task id (validated name)
 *   "name"        str    handler name (validated name)
 *   "queue"       str    queue name (validated name)
 *   "args"        map    keyword arguments (any msgpack map)
 *   "created_at"  uint   ms since the epoch, producer's view (informational)
 *   "timeout"     uint   ms; 0 = the worker's default_timeout
 *   "max_retries" uint   retries after a failure (0 = none)
 *   "attempt"     uint   delivery the envelope was written for (1 = first)
 *   "result_ttl"  uint   s; 0 = the worker's task_result_ttl
 *
 * Unknown keys are ignored when decoding, so adding an optional field does
 * not need a new version.
 *
 * Bump RTQ_ENVELOPE_VERSION when a change would make an older worker
 * misread an envelope: a field changes type or meaning, or a new field must
 * be understood to run the task correctly. Workers reject versions above
 * their own with RTQ_EVERSION (dead-lettered, never run).
 *
 * The byte layout is deterministic for the same input, so the exact bytes
 * can be removed from a processing list with LREM.
 */
#ifndef RTQ_ENVELOPE_H
#define RTQ_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "rtq/common.h"

#define RTQ_ENVELOPE_VERSION 1
#define RTQ_ENVELOPE_MAX_SIZE_DEFAULT (1024u * 1024u)
#define RTQ_MAX_DEPTH 32

/* Value type. Strings are NUL-terminated copies; args is a msgpack map,
 * its bytes owned by the envelope. */
typedef struct rtq_envelope {
  uint32_t version;
  char id[129];
  char name[129];
  char queue[129];
  char *args;          /* msgpack map bytes (malloc'd) */
  size_t args_len;
  uint64_t created_at; /* ms */
  uint64_t timeout_ms;
  uint32_t max_retries;
  uint32_t attempt;
  uint64_t result_ttl_s;
} rtq_envelope;

/* Zeroes e. */
void rtq_envelope_init(rtq_envelope *e);
/* Frees what e owns (args) and zeroes it. */
void rtq_envelope_destroy(rtq_envelope *e);

/*
 * Encodes e as msgpack into a malloc'd *buf. e->args may be NULL (an empty
 * map is written). Validates id, name and queue; RTQ_EINVAL names the bad
 * field in errbuf (may be NULL). Also:
 *   1. e->args must be exactly one msgpack map (rtq_msgpack_check), else
 *      RTQ_EINVAL; nesting deeper than RTQ_MAX_DEPTH - 1 -> RTQ_EDEPTH,
 *      because the envelope map itself is the first level.
 *   2. e->version is not read: the encoder writes RTQ_ENVELOPE_VERSION,
 *      the only layout it knows.
 *   3. Every field is written, in the order listed above, with the shortest
 *      encodings, so equal envelopes give equal bytes.
 * RTQ_ENOMEM leaves *buf NULL.
 */
int rtq_envelope_encode(const rtq_envelope *e, char **buf, size_t *len,
                        char *errbuf, size_t errcap);

/*
 * Decodes buf into e (initialised by the caller; on success the caller owns
 * e's args; args e already owns are freed first). Hard limits, all checked
 * before anything is allocated:
 *   1. len > max_size (0 = 1 MiB default)      -> RTQ_ETOOBIG
 *   2. nesting deeper than RTQ_MAX_DEPTH, the envelope map counting as the
 *      first level                             -> RTQ_EDEPTH
 *   3. a declared str/bin/array/map length past the bytes remaining, a
 *      truncated value, trailing bytes, or a non-map top level -> RTQ_EDECODE
 *   4. a missing or wrongly typed required field, or an invalid id, name or
 *      queue                                    -> RTQ_EDECODE
 *   5. v > RTQ_ENVELOPE_VERSION                 -> RTQ_EVERSION
 * errbuf receives a one-line reason. On error e is left empty. When the id
 * could be read and is valid, it is copied into e->id even on error, so
 * the caller can mark that task failed.
 * Unknown keys are ignored; a known field given twice is RTQ_EDECODE; v of
 * 0 is RTQ_EVERSION; optional fields must be unsigned integers (max_retries
 * and attempt at most UINT32_MAX). e->args receives the canonical msgpack
 * encoding of the args map (ext values inside are kept).
 */
int rtq_envelope_decode(const void *buf, size_t len, size_t max_size, rtq_envelope *e,
                        char *errbuf, size_t errcap);

/* The msgpack empty map (one byte, 0x80): the args of a task given none. */
extern const char rtq__empty_map[1];

/* The error code a task or dead letter gets when its envelope failed
 * rtq_envelope_decode with rc: PAYLOAD_TOO_LARGE, PAYLOAD_TOO_DEEP,
 * UNSUPPORTED_VERSION, else DECODE_ERROR. A static string. */
const char *rtq__decode_code(int rc);

/*
 * The task id from the first bytes of an envelope in the layout that
 * rtq_envelope_encode writes (a map whose first keys are "v", a positive
 * fixint, and "id", a fixstr or str8 holding a valid name), without
 * decoding the rest: what take.lua reads to claim a task before the worker
 * decodes its envelope. Copies it into id and returns 0, or RTQ_EDECODE
 * when the bytes do not start that way. Used to name the task of an
 * envelope that does not decode, whichever way it was taken.
 */
int rtq_envelope_peek_id(const void *buf, size_t len, char id[129]);

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

#endif
