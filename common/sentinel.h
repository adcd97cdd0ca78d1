/*
 * sentinel.h - finding the primary of a redis-sentinel:// URL.
 *
 * The sentinels are asked in the URL's order with
 * SENTINEL get-master-addr-by-name MASTER; the first that names an address
 * wins. Sentinels are asked without AUTH (the URL's credentials are the
 * data nodes'). A connection to the address then checks ROLE: a node that
 * is not (or no longer) a primary is refused, so a connection made during
 * a failover tries again and asks the sentinels afresh. Every connection
 * failure asks them again too, which is how a +switch-master is followed.
 */
#ifndef RTQ_SENTINEL_H
#define RTQ_SENTINEL_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "conn.h"

/* The primary's address. 0, or RTQ_ECONN (no sentinel reachable, or none
 * knows MASTER) / RTQ_ENOMEM with the reasons in err. Each sentinel gets
 * timeout_ms to connect and answer. */
int rtq__sentinel_resolve(const rtq_redis_url *u, int timeout_ms, rtq_redis_endpoint *out, char *err,
                          size_t cap);

/* 0 when r (a ROLE reply) says master; otherwise RTQ_ECONN with the role
 * named in err. */
int rtq__sentinel_check_role(const redisReply *r, char *err, size_t cap);

#endif
