/*
 * ids.h - task and worker ids.
 *
 * A task id is a ULID-style string of 26 Crockford base32 characters:
 *
 *    01JDQ3ZK5V    8X4M2T9QH7R6W1YB
 *   |----------|  |----------------|
 *    48-bit ms      80 random bits
 *    since epoch    from getrandom(2)
 *
 * Ids sort by creation time as plain strings, which keeps listings and
 * debugging simple; 80 random bits make a collision within one millisecond
 * negligible (birthday bound ~2^40 ids per ms).
 */
#ifndef RTQ_IDS_H
#define RTQ_IDS_H

#include <stddef.h>
#include <stdint.h>

#define RTQ_ID_LEN 26

/* The longest worker id rtq_worker_id_new writes, without the NUL. */
#define RTQ_WORKER_ID_MAX 96

/* Writes a new id (27 bytes with the NUL) into out. Returns 0 or RTQ_EIO
 * when getrandom fails (out is then an empty string). Thread-safe. */
int rtq_id_new(char out[RTQ_ID_LEN + 1]);
/* Same, with the time part given (for tests). RTQ_ERANGE when ms does not
 * fit in 48 bits. */
int rtq_id_new_at(char out[RTQ_ID_LEN + 1], uint64_t ms);
/* Fills buf with random bytes from getrandom(2), retrying short reads and
 * EINTR. Returns 0 or RTQ_EIO. Thread-safe. */
int rtq_random_bytes(void *buf, size_t len);
/*
 * A worker id: "<host>-<pid>-<8 random hex>", always a valid name
 * (rtq_validate_name): host bytes outside [A-Za-z0-9._:-] become '-', the
 * host part is capped at 64 bytes, an empty host becomes "host". Writes at
 * most RTQ_WORKER_ID_MAX + 1 bytes. Returns 0, RTQ_ERANGE when cap is too
 * small for the id (out is then ""), or RTQ_EIO.
 */
int rtq_worker_id_new(char *out, size_t cap);
/* The formatting step of rtq_worker_id_new with its inputs given, so tests
 * can feed hostile host names. Same returns, without RTQ_EIO. */
int rtq__worker_id_format(char *out, size_t cap, const char *host, long pid, uint32_t rnd);

#endif
