"""resp.py - a minimal blocking Redis client for the bench tools (standard
library only; the tools run under Debian's /usr/bin/python3 without
python3-redis)."""
import socket


class Redis:
    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, int(port)))
        self.f = self.sock.makefile("rb")

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        r = self._read()
        if isinstance(r, RedisError):
            raise r
        return r

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RedisError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError("unexpected reply %r" % line)

    def info(self, section):
        d = {}
        for line in self("INFO", section).decode().splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                d[k] = v
        return d

    def close(self):
        self.sock.close()


class RedisError(Exception):
    pass
