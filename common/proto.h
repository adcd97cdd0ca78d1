/*
 * proto.h - which wire protocol a namespace speaks, checked at start-up.
 *
 * Every process of a namespace must speak the same protocol: v1
 * (docs/PROTOCOL.md) and v2 (docs/design/PROTOCOL-v2.md) keep their tasks
 * under different keys, so a v1 worker never sees a v2 producer's tasks.
 * The `protocol` setting (config.h) picks one; this check refuses to mix
 * them in one namespace:
 *
 *   - v2 marks the namespace with {ns}:version = "2". A v2 process that
 *     finds no mark but finds v1 data (the v1 counters, "ns:stats" or, for
 *     a v1 cluster namespace, "{ns}:stats") refuses to start, naming the
 *     upgrade procedure; otherwise it writes the mark (SET NX).
 *   - A v1 process that finds the mark refuses to start.
 *
 * On a redis+cluster:// connection each key goes to its own node.
 */
#ifndef RTQ_PROTO_H
#define RTQ_PROTO_H

#include <stddef.h>

#include "conn.h"

/*
 * Checks (and for v2 marks) namespace ns for protocol 1 or 2. Returns 0;
 * RTQ_EPROTOCOL with errbuf saying what was found and what to do;
 * RTQ_EINVAL (a bad ns or protocol); or the returns of rtq_conn_command,
 * errbuf holding the connection's reason.
 */
int rtq_proto_check(rtq_conn *c, const char *ns, int protocol, char *errbuf, size_t errcap);

#endif
