/* errbuf.h - filling a caller's (errbuf, errcap) reason buffer. */
#ifndef RTQ_ERRBUF_H
#define RTQ_ERRBUF_H

#include <stddef.h>

/* Formats a reason into errbuf (may be NULL or errcap 0: nothing written)
 * and returns code, so an error path is one statement:
 *   return rtq__errf(RTQ_EDECODE, errbuf, errcap, "bad %s", what); */
int rtq__errf(int code, char *errbuf, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
