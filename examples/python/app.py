"""A web endpoint that starts a background task and returns at once.

    POST /exports            {"format": "csv", "records": 500}  -> 202 {"id": ...}
    GET  /exports/<id>       -> the task: status, progress, result or error
    POST /exports/<id>/cancel

Run it next to a worker (here the demo handlers stand in for real ones):

    rtq-worker --demo-handlers &
    python3 examples/python/app.py --port 8080
    curl -X POST localhost:8080/exports -d '{"seconds": 3}'

Only the standard library and the rtq package (sdk/python).
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import rtq

MAX_BODY = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    client = None    # one rtq.Client, shared by the server's threads
    task_name = "rtq.sleep"

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _parts(self):
        return [p for p in self.path.split("?", 1)[0].split("/") if p]

    def do_POST(self):  # noqa: N802 - http.server's naming
        parts = self._parts()
        try:
            if parts == ["exports"]:
                n = int(self.headers.get("Content-Length") or 0)
                if n > MAX_BODY:
                    return self._send(413, {"error": "body too large"})
                args = json.loads(self.rfile.read(n) or b"{}")
                if not isinstance(args, dict):
                    return self._send(400, {"error": "the body must be a JSON object"})
                task_id = self.client.create_task(self.task_name, args, queue="default", timeout=600)
                return self._send(202, {"id": task_id, "status_url": f"/exports/{task_id}"})
            if len(parts) == 3 and parts[0] == "exports" and parts[2] == "cancel":
                return self._send(200, {"id": parts[1], "cancel": self.client.cancel_task(parts[1])})
            return self._send(404, {"error": "no such endpoint"})
        except json.JSONDecodeError as e:
            return self._send(400, {"error": f"invalid JSON: {e}"})
        except rtq.NotFound as e:
            return self._send(404, {"error": e.message})
        except rtq.StateError as e:
            return self._send(409, {"error": e.message})
        except rtq.Error as e:
            return self._send(400 if e.code in ("RTQ_EINVAL", "RTQ_ERANGE") else 503,
                              {"error": e.message, "code": e.code})

    def do_GET(self):  # noqa: N802
        parts = self._parts()
        if len(parts) != 2 or parts[0] != "exports":
            return self._send(404, {"error": "no such endpoint"})
        try:
            return self._send(200, self.client.get_task(parts[1]))
        except rtq.NotFound as e:
            return self._send(404, {"error": e.message})
        except rtq.Error as e:
            return self._send(400 if e.code == "RTQ_EINVAL" else 503, {"error": e.message})

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--redis", default=None, help="Redis URL (default: RTQ_REDIS_URL)")
    opts = ap.parse_args()
    Handler.client = rtq.Client(opts.redis)
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        Handler.client.close()


if __name__ == "__main__":
    main()
