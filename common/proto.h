/*
 * proto.h - which wire protocol a namespace speaks, checked at start-up.
 *
 * rtq speaks protocol 2 (docs/PROTOCOL.md). Protocol 1, which older rtq
 * releases spoke, kept its tasks under other keys, so a namespace holding
 * its data must be drained by the old fleet first. This check refuses to
 * mix them in one namespace:
 *
 *   - rtq marks the namespace with {ns}:version = "2". A process that
 *     finds no mark but finds v1 data (the v1 counters, "ns:stats" or, for
 *     a v1 cluster namespace, "{ns}:stats") refuses to start, naming the
 *     upgrade procedure; otherwise it writes the mark (SET NX).
 *   - Protocol 1 processes that read the mark refuse to start.
 *
 * On a redis+cluster:// connection each key goes to its own node.
 */
#ifndef RTQ_PROTO_H
#define RTQ_PROTO_H

#include <stddef.h>

#include "conn.h"

/*
 * Checks namespace ns for protocol 2, and marks it. Returns 0;
 * RTQ_EPROTOCOL with errbuf saying what was found and what to do;
 * RTQ_EINVAL (a bad ns); or the returns of rtq_conn_command, errbuf
 * holding the connection's reason.
 */
int rtq_proto_check(rtq_conn *c, const char *ns, char *errbuf, size_t errcap);

#endif
