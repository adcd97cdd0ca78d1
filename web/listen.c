/*
 * listen.c - the listening socket of rtq-web and of the broker's
 * /metrics: "HOST:PORT" or "[V6]:PORT" parsed, bound and checked for
 * loopback. Knows nothing of HTTP.
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool addr_is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

/* "host:port" or "[v6]:port" -> host and port strings. */
static int split_listen(const char *spec, char *host, size_t hcap, char *port, size_t pcap) {
  const char *colon;
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (close == NULL || close[1] != ':') return -1;
    if ((size_t)(close - spec - 1) >= hcap) return -1;
    memcpy(host, spec + 1, (size_t)(close - spec - 1));
    host[close - spec - 1] = '\0';
    colon = close + 1;
  } else {
    colon = strrchr(spec, ':');
    if (colon == NULL || (size_t)(colon - spec) >= hcap || colon == spec) return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (strchr(host, ':') != NULL) return -1; /* a bare IPv6 address needs brackets */
  }
  if (strlen(colon + 1) == 0 || strlen(colon + 1) >= pcap) return -1;
  for (const char *p = colon + 1; *p; p++)
    if (*p < '0' || *p > '9') return -1;
  if (atol(colon + 1) > 65535) return -1;
  strcpy(port, colon + 1);
  return 0;
}

int web_listen(const char *spec, bool *loopback, char *url, size_t ucap, int *fd_out,
                    char *why, size_t wcap) {
  char host[256], port[16];
  *fd_out = -1;
  if (split_listen(spec, host, sizeof host, port, sizeof port) != 0) {
    snprintf(why, wcap, "invalid --listen %s: expected HOST:PORT or [IPV6]:PORT", spec);
    return -1;
  }
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0) {
    snprintf(why, wcap, "--listen %s: %s", spec, gai_strerror(gai));
    return -1;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    snprintf(why, wcap, "--listen %s: %s", spec, strerror(errno));
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  *loopback = addr_is_loopback(ai->ai_addr);
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  int bound = 0;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) {
      const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
      bound = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
      bound = ntohs(in6->sin6_port);
    }
  }
  snprintf(url, ucap, ss.ss_family == AF_INET6 ? "http://[%s]:%d/" : "http://%s:%d/", ip, bound);
  *fd_out = fd;
  return 0;
}
