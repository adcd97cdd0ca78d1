"""The librtq binding: cffi in ABI mode over the installed shared library.

Nothing here speaks the Redis protocol: every call goes through librtq, so
the key schema, the scripts and the wait logic stay in one place (C).

The declarations below copy the public header (client/include/rtq/client.h,
rtq/args.h, rtq/common.h) for the types and functions the binding uses.
Structs the binding allocates are declared in full, field for field; the
others stay opaque. tests/test_abi.py compiles a C program against the
header and checks every size and offset here against it, so a header
change that is not copied here fails the tests instead of corrupting
memory.

The library is found through, in order: the RTQ_LIBRARY environment
variable (a path), then the system's library search (ldconfig), then
/usr/local/lib.
"""

import ctypes.util
import os

from cffi import FFI

CDEF = """
typedef struct rtq_client rtq_client;
typedef struct rtq_args rtq_args;
typedef struct rtq_task rtq_task;
typedef struct rtq_subscription rtq_subscription;

typedef struct rtq_client_options {
  const char *redis_url;
  const char *ns;
  bool cluster;
  int connect_timeout_ms;
  int command_timeout_ms;
  int pool_size;
  size_t max_payload;
  const char *default_queue;
  int task_result_ttl_s;
  int history;
  int reply_spin_us;
  const char *redis_url_file;
  int wait_replicas;
  int wait_timeout_ms;
  int protocol;
  const char *signing_key_file;
  const char *result_keys_file;
  const char *task_keys_file;
} rtq_client_options;

typedef struct rtq_task_options {
  const char *queue;
  const char *id;
  uint64_t timeout_ms;
  uint64_t result_ttl_s;
  uint64_t delay_ms;
  uint64_t run_at_ms;
  uint32_t max_retries;
  uint64_t retry_backoff_ms;
} rtq_task_options;

typedef struct rtq_task_spec {
  const char *name;
  const rtq_args *args;
  const rtq_task_options *opts;
  int rc;
  int created;
  char id[129];
} rtq_task_spec;

typedef struct rtq_task_filter {
  unsigned statuses;
  const char *queue;
  const char *name;
  size_t limit;
  size_t offset;
  const char *after;
} rtq_task_filter;

typedef struct rtq_task_list {
  size_t count;
  rtq_task **tasks;
  size_t examined;
  bool truncated;
  char next_after[129];
  bool running_hidden;
  char skipped[1024];
} rtq_task_list;

const char *rtq_strerror(int err);
const char *rtq_err_name(int err);

int rtq_args_from_json(const char *json, rtq_args **out, char *errbuf, size_t errcap);
rtq_args *rtq_args_new(void);
void rtq_args_free(rtq_args *a);
int rtq_args_set_strn(rtq_args *a, const char *key, const char *val, size_t len);
int rtq_args_set_int(rtq_args *a, const char *key, int64_t val);
int rtq_args_set_double(rtq_args *a, const char *key, double val);
int rtq_args_set_bool(rtq_args *a, const char *key, bool val);
int rtq_args_set_nil(rtq_args *a, const char *key);

int rtq_client_new(const rtq_client_options *opts, rtq_client **out);
void rtq_client_free(rtq_client *c);
const char *rtq_client_errstr(const rtq_client *c);

int rtq_create_task(rtq_client *c, const char *name, const rtq_args *args,
                    const rtq_task_options *opts, char *id_out, int *created);
int rtq_create_task_json(rtq_client *c, const char *name, const char *args_json,
                         const rtq_task_options *opts, char *id_out, int *created);
int rtq_create_tasks(rtq_client *c, rtq_task_spec *specs, size_t n);
int rtq_get_task(rtq_client *c, const char *id, rtq_task **out);
int rtq_task_to_json(const rtq_task *t, char **json);
void rtq_task_free(rtq_task *t);
int rtq_list_tasks(rtq_client *c, const rtq_task_filter *f, rtq_task_list **out);
void rtq_task_list_free(rtq_task_list *l);
int rtq_cancel_task(rtq_client *c, const char *id, int *requested);
int rtq_wait_for_task(rtq_client *c, const char *id, int64_t timeout_ms, rtq_task **out);
int rtq_retry_task(rtq_client *c, const char *id);

void free(void *p);
"""

ffi = FFI()
ffi.cdef(CDEF)


def _find_library():
    path = os.environ.get("RTQ_LIBRARY")
    if path:
        return path
    found = ctypes.util.find_library("rtq")
    if found:
        return found
    for candidate in ("/usr/local/lib/librtq.so", "/usr/local/lib/librtq.so.0"):
        if os.path.exists(candidate):
            return candidate
    raise ImportError(
        "librtq not found: install rtq (cmake --install) or set RTQ_LIBRARY "
        "to the path of librtq.so"
    )


lib = ffi.dlopen(_find_library())
libc = ffi.dlopen(None)
