/*
 * _speedups.c - rtq.Client.create_task's common case in C (an optional
 * accelerator module, as json has _json; rtq works without it).
 *
 * The case: a str name, a dict of flat values (str, int, float, bool,
 * None) and no options. Here the dict is walked once and its values set
 * on an rtq_args tree, which rtq_create_task packs, instead of Python
 * making a JSON text that librtq parses again. That takes about 0.5 us of
 * interpreter work out of every call, and such work counts several times
 * over in an awaited create: while the caller builds its next call, the
 * Redis server goes idle, and on a virtual machine a server that has gone
 * idle answers the next command later (docs/PERFORMANCE.md, "create_task's
 * C accelerator").
 *
 * Everything else (nested values, options, odd keys, ints outside int64,
 * NaN) answers None and takes the binding's general path, which makes
 * the same checks and raises the same errors as before. So the module
 * decides nothing about validity; it only recognises inputs whose tree
 * is sure to pack to the same msgpack bytes as their JSON text would
 * (tests/test_speedups.py compares the stored bytes of both).
 *
 * It links to nothing: bind() hands it the addresses of the librtq
 * functions the cffi binding loaded (so RTQ_LIBRARY and the library
 * search of _native.py decide, once), kept in the module's state.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* A dict with more keys takes the general path: rtq_args_set_* replaces a
 * key already present, so each set looks at every key set before. */
#define FAST_MAX_KEYS 64
/* At least RTQ_TASK_ID_SIZE; bind() checks the size it is given. */
#define ID_CAP 256

typedef struct rtq_client rtq_client;
typedef struct rtq_args rtq_args;
typedef struct rtq_task_options rtq_task_options;

/* The librtq entry points used here, with the prototypes of rtq/args.h
 * and rtq/client.h (tests/test_abi.py compiles this file against them).
 * The task options pointer is always NULL here. */
typedef struct librtq_fns {
  rtq_args *(*args_new)(void);
  void (*args_free)(rtq_args *a);
  int (*set_strn)(rtq_args *a, const char *key, const char *val, size_t len);
  int (*set_int)(rtq_args *a, const char *key, int64_t val);
  int (*set_double)(rtq_args *a, const char *key, double val);
  int (*set_bool)(rtq_args *a, const char *key, bool val);
  int (*set_nil)(rtq_args *a, const char *key);
  int (*create)(rtq_client *c, const char *name, const rtq_args *args, const rtq_task_options *opts,
                char *id_out, int *created);
} librtq_fns;

static void *address(PyObject *o) {
  void *p = PyLong_AsVoidPtr(o);
  if (p == NULL && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a NULL function address");
  return p;
}

/* bind(args_new, args_free, set_strn, set_int, set_double, set_bool,
 * set_nil, create_task, id_size): the functions' addresses as ints. */
static PyObject *speedups_bind(PyObject *mod, PyObject *const *argv, Py_ssize_t argc) {
  if (argc != 9) {
    PyErr_SetString(PyExc_TypeError, "bind() takes 8 function addresses and the id size");
    return NULL;
  }
  void *p[8];
  for (int i = 0; i < 8; i++)
    if ((p[i] = address(argv[i])) == NULL) return NULL;
  long id_size = PyLong_AsLong(argv[8]);
  if (id_size == -1 && PyErr_Occurred()) return NULL;
  if (id_size < 2 || id_size > ID_CAP) {
    PyErr_Format(PyExc_ValueError, "an id size of %ld is outside 2..%d", id_size, ID_CAP);
    return NULL;
  }
  librtq_fns *f = PyModule_GetState(mod);
  /* Object pointers to function pointers: POSIX guarantees these are the
   * same size and representation (dlsym relies on it). */
  memcpy(&f->args_new, &p[0], sizeof p[0]);
  memcpy(&f->args_free, &p[1], sizeof p[1]);
  memcpy(&f->set_strn, &p[2], sizeof p[2]);
  memcpy(&f->set_int, &p[3], sizeof p[3]);
  memcpy(&f->set_double, &p[4], sizeof p[4]);
  memcpy(&f->set_bool, &p[5], sizeof p[5]);
  memcpy(&f->set_nil, &p[6], sizeof p[6]);
  memcpy(&f->create, &p[7], sizeof p[7]);
  Py_RETURN_NONE;
}

/* The UTF-8 of an exact str with no NUL in it, else NULL with no Python
 * error set (a lone surrogate, which has no UTF-8, included). */
static const char *plain_utf8(PyObject *s, Py_ssize_t *len) {
  if (!PyUnicode_CheckExact(s)) return NULL;
  const char *u = PyUnicode_AsUTF8AndSize(s, len);
  if (u == NULL) {
    PyErr_Clear();
    return NULL;
  }
  return u;
}

enum { SET_OK = 0, SET_NOT_FLAT = 1 };

/* Sets key to v on a. SET_OK, SET_NOT_FLAT (a value the general path
 * must take), or the setter's negative code. */
static int set_value(const librtq_fns *f, rtq_args *a, const char *key, PyObject *v) {
  if (v == Py_None) return f->set_nil(a, key);
  if (v == Py_True || v == Py_False) return f->set_bool(a, key, v == Py_True);
  if (PyLong_CheckExact(v)) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow != 0 || (x == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      return SET_NOT_FLAT;
    }
    return f->set_int(a, key, (int64_t)x);
  }
  if (PyFloat_CheckExact(v)) {
    double d = PyFloat_AS_DOUBLE(v);
    return isfinite(d) ? f->set_double(a, key, d) : SET_NOT_FLAT;
  }
  Py_ssize_t len = 0;
  const char *s = plain_utf8(v, &len);
  return s != NULL ? f->set_strn(a, key, s, (size_t)len) : SET_NOT_FLAT;
}

/* The dict's items onto a; as set_value. No Python code of the caller's
 * runs while the dict is walked (no comparisons, no conversions that call
 * back), so it cannot change under the walk. */
static int set_items(const librtq_fns *f, rtq_args *a, PyObject *dict) {
  PyObject *k, *v;
  Py_ssize_t pos = 0;
  while (PyDict_Next(dict, &pos, &k, &v)) {
    Py_ssize_t klen = 0;
    const char *key = plain_utf8(k, &klen);
    if (key == NULL || strlen(key) != (size_t)klen) return SET_NOT_FLAT;
    int rc = set_value(f, a, key, v);
    if (rc != SET_OK) return rc;
  }
  return SET_OK;
}

/* create(handle, name, args) -> the new task's id (str); the library's
 * code (a negative int) when it failed, its detail on the handle; None
 * when the call is not the fast case. handle: the rtq_client * as an int. */
static PyObject *speedups_create(PyObject *mod, PyObject *const *argv, Py_ssize_t argc) {
  if (argc != 3) {
    PyErr_SetString(PyExc_TypeError, "create() takes a handle, a name and a dict");
    return NULL;
  }
  const librtq_fns *f = PyModule_GetState(mod);
  if (f->create == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "rtq._speedups: bind() was not called");
    return NULL;
  }
  rtq_client *c = PyLong_AsVoidPtr(argv[0]);
  if (c == NULL) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a NULL client handle");
    return NULL;
  }
  PyObject *dict = argv[2];
  Py_ssize_t nlen = 0;
  const char *name = plain_utf8(argv[1], &nlen);
  if (name == NULL || strlen(name) != (size_t)nlen || !PyDict_CheckExact(dict) ||
      PyDict_GET_SIZE(dict) > FAST_MAX_KEYS)
    Py_RETURN_NONE;
  rtq_args *a = f->args_new();
  if (a == NULL) Py_RETURN_NONE; /* out of memory: as a setter below */
  /* A setter that failed (out of memory) hands the call back too: the
   * general path meets the same failure and reports it as it always has. */
  if (set_items(f, a, dict) != SET_OK) {
    f->args_free(a);
    Py_RETURN_NONE;
  }
  char id[ID_CAP];
  id[0] = '\0';
  int rc;
  /* name stays valid without the GIL: the caller holds the str, and its
   * UTF-8 is cached on it; the tree holds copies of everything else. */
  Py_BEGIN_ALLOW_THREADS
  rc = f->create(c, name, a, NULL, id, NULL);
  Py_END_ALLOW_THREADS
  f->args_free(a);
  if (rc != 0) return PyLong_FromLong(rc);
  return PyUnicode_FromString(id);
}

static PyMethodDef speedups_methods[] = {
    {"bind", (PyCFunction)(void (*)(void))speedups_bind, METH_FASTCALL,
     "bind(args_new, args_free, set_strn, set_int, set_double, set_bool, set_nil, "
     "create_task, id_size): librtq's functions, by address"},
    {"create", (PyCFunction)(void (*)(void))speedups_create, METH_FASTCALL,
     "create(handle, name, args) -> id, a negative RTQ_E* code, or None (not the fast case)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "rtq._speedups", "create_task's common case in C (see client.py)",
    sizeof(librtq_fns), speedups_methods, NULL, NULL, NULL, NULL,
};

/* The state starts zeroed (CPython clears m_size bytes): create() refuses
 * to run before bind(). */
PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&speedups_module); }
