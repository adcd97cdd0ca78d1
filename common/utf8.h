/*
 * utf8.h - text that is not UTF-8.
 *
 * Handlers, producers and attackers can put any bytes into an error code,
 * a message, a traceback, a name or a progress message. JSON (events,
 * --json output, the dashboard) and terminals need well-formed text, so
 * every place that turns stored bytes into text runs them through here:
 * a byte that does not start or continue a well-formed sequence becomes
 * U+FFFD, and everything else is kept byte for byte.
 *
 * "Well-formed" is RFC 3629: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. NUL is well-formed UTF-8; the
 * caller decides whether it may appear.
 */
#ifndef RTQ_UTF8_H
#define RTQ_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the well-formed sequence at s[0..n), or 0 when s[0] starts
 * none (n must be > 0). */
size_t rtq__utf8_seq_len(const unsigned char *s, size_t n);

/* True when s[0..n) is well-formed UTF-8. */
bool rtq__utf8_valid(const char *s, size_t n);

/*
 * A malloc'd, NUL-terminated copy of s[0..n) with each ill-formed byte
 * replaced by U+FFFD (EF BF BD); *outlen (may be NULL) gets its length.
 * NULL only when out of memory. s may be NULL when n is 0.
 */
char *rtq__utf8_sanitize(const char *s, size_t n, size_t *outlen);

#endif
