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
 * create_many() does the same for create_tasks: a list or tuple of
 * (name, args) items (or (name, args, None or {}), or {"name", "args"}
 * dicts) with flat args goes to rtq_create_tasks as one array of specs;
 * any other item hands the whole call back.
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
/* A longer create_many() takes the general path (its arrays are
 * allocated here). */
#define FAST_MAX_TASKS 1000000

typedef struct rtq_client rtq_client;
typedef struct rtq_args rtq_args;
typedef struct rtq_task_options rtq_task_options;

/* rtq_task_spec of rtq/client.h, field for field (RTQ_TASK_ID_SIZE is
 * 129). bind() refuses a binding whose spec or id has another size, and
 * tests/test_abi.py checks every offset and the id's size against the
 * header. */
typedef struct spec_abi {
  const char *name;
  const rtq_args *args;
  const rtq_task_options *opts;
  int rc;
  int created;
  char id[129];
} spec_abi;

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
  int (*create_tasks)(rtq_client *c, spec_abi *specs, size_t n);
} librtq_fns;

enum { NFNS = 9 };

static void *address(PyObject *o) {
  void *p = PyLong_AsVoidPtr(o);
  if (p == NULL && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a NULL function address");
  return p;
}

/* bind(args_new, args_free, set_strn, set_int, set_double, set_bool,
 * set_nil, create_task, create_tasks, id_size, spec_size): the functions'
 * addresses as ints, the size of a task id buffer and of rtq_task_spec. */
static PyObject *speedups_bind(PyObject *mod, PyObject *const *argv, Py_ssize_t argc) {
  if (argc != NFNS + 2) {
    PyErr_Format(PyExc_TypeError, "bind() takes %d function addresses, the id size and the spec size", NFNS);
    return NULL;
  }
  void *p[NFNS];
  for (int i = 0; i < NFNS; i++)
    if ((p[i] = address(argv[i])) == NULL) return NULL;
  long id_size = PyLong_AsLong(argv[NFNS]);
  if (id_size == -1 && PyErr_Occurred()) return NULL;
  if (id_size != (long)sizeof(((spec_abi *)0)->id)) {
    PyErr_Format(PyExc_ValueError, "an id size of %ld, not %zu as built", id_size, sizeof(((spec_abi *)0)->id));
    return NULL;
  }
  long spec_size = PyLong_AsLong(argv[NFNS + 1]);
  if (spec_size == -1 && PyErr_Occurred()) return NULL;
  if (spec_size != (long)sizeof(spec_abi)) {
    PyErr_Format(PyExc_ValueError, "a task spec of %ld bytes, not %zu as built", spec_size, sizeof(spec_abi));
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
  memcpy(&f->create_tasks, &p[8], sizeof p[8]);
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

/* As plain_utf8, for a key or a task name, which goes to C as a C string:
 * NULL too when the str holds a NUL. */
static const char *plain_name(PyObject *s) {
  Py_ssize_t len = 0;
  const char *u = plain_utf8(s, &len);
  return u != NULL && strlen(u) == (size_t)len ? u : NULL;
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
    const char *key = plain_name(k);
    if (key == NULL) return SET_NOT_FLAT;
    int rc = set_value(f, a, key, v);
    if (rc != SET_OK) return rc;
  }
  return SET_OK;
}

/* A tree of args (None: an empty map, as create_tasks's general path
 * makes it); NULL when args is not a flat dict, or out of memory (a
 * setter that failed): the call is handed back, and the general path
 * meets the same failure and reports it as it always has. */
static rtq_args *flat_tree(const librtq_fns *f, PyObject *args) {
  if (args != Py_None && (!PyDict_CheckExact(args) || PyDict_GET_SIZE(args) > FAST_MAX_KEYS)) return NULL;
  rtq_args *a = f->args_new();
  if (a != NULL && args != Py_None && set_items(f, a, args) != SET_OK) {
    f->args_free(a);
    a = NULL;
  }
  return a;
}

/* What create() and create_many() check first: want arguments (else
 * TypeError with usage), bind() done, a handle that is not NULL (argv[0],
 * the rtq_client * as an int). Returns the client and sets *f, or NULL
 * with a Python error set. */
static rtq_client *call_start(PyObject *mod, PyObject *const *argv, Py_ssize_t argc, Py_ssize_t want,
                              const char *usage, const librtq_fns **f) {
  if (argc != want) {
    PyErr_SetString(PyExc_TypeError, usage);
    return NULL;
  }
  *f = PyModule_GetState(mod);
  if ((*f)->create == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "rtq._speedups: bind() was not called");
    return NULL;
  }
  rtq_client *c = PyLong_AsVoidPtr(argv[0]);
  if (c == NULL && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a NULL client handle");
  return c;
}

/* create(handle, name, args) -> the new task's id (str); the library's
 * code (a negative int) when it failed, its detail on the handle; None
 * when the call is not the fast case. handle: the rtq_client * as an int. */
static PyObject *speedups_create(PyObject *mod, PyObject *const *argv, Py_ssize_t argc) {
  const librtq_fns *f = NULL;
  rtq_client *c = call_start(mod, argv, argc, 3, "create() takes a handle, a name and a dict", &f);
  if (c == NULL) return NULL;
  /* args None takes the general path: create_task stores no args then. */
  const char *name = plain_name(argv[1]);
  rtq_args *a = name != NULL && PyDict_CheckExact(argv[2]) ? flat_tree(f, argv[2]) : NULL;
  if (a == NULL) Py_RETURN_NONE;
  char id[sizeof(((spec_abi *)0)->id)];
  id[0] = '\0';
  int rc;
  int (*create)(rtq_client *, const char *, const rtq_args *, const rtq_task_options *, char *, int *) = f->create;
  /* name stays valid without the GIL: the caller holds the str, and its
   * UTF-8 is cached on it; the tree holds copies of everything else. */
  Py_BEGIN_ALLOW_THREADS
  rc = create(c, name, a, NULL, id, NULL);
  Py_END_ALLOW_THREADS
  f->args_free(a);
  if (rc != 0) return PyLong_FromLong(rc);
  return PyUnicode_FromString(id);
}

/* An item of create_many's list: its name (borrowed) and args (borrowed;
 * Py_None when absent), or 0 when the general path must take it. */
static int item_parts(PyObject *it, PyObject **name, PyObject **args) {
  *args = Py_None;
  if (PyDict_CheckExact(it)) {
    /* str keys only, so the look-ups below compare str with str and run
     * no __eq__ of the caller's. */
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    if (PyDict_GET_SIZE(it) > 2) return 0;
    while (PyDict_Next(it, &pos, &key, &val))
      if (!PyUnicode_CheckExact(key)) return 0;
    *name = PyDict_GetItemString(it, "name");
    PyObject *a = PyDict_GetItemString(it, "args");
    if (a != NULL) *args = a;
    /* Any other key is an option. */
    return *name != NULL && PyDict_GET_SIZE(it) == 1 + (a != NULL);
  }
  if (!PyTuple_CheckExact(it) && !PyList_CheckExact(it)) return 0;
  Py_ssize_t k = PySequence_Fast_GET_SIZE(it);
  PyObject **v = PySequence_Fast_ITEMS(it);
  if (k < 1 || k > 3) return 0;
  *name = v[0];
  if (k >= 2) *args = v[1];
  return k < 3 || v[2] == Py_None || (PyDict_CheckExact(v[2]) && PyDict_GET_SIZE(v[2]) == 0);
}

/* Frees n specs' trees and drops the references to their names. */
static void release(const librtq_fns *f, spec_abi *specs, PyObject **names, Py_ssize_t n) {
  for (Py_ssize_t i = 0; i < n; i++) {
    f->args_free((rtq_args *)specs[i].args);
    Py_XDECREF(names[i]);
  }
  PyMem_Free(specs);
  PyMem_Free(names);
}

/* create_many(handle, items) -> a list, in order, of each task's id (str)
 * or the library's code for it (a negative int); None when an item is not
 * the fast case (then nothing was sent). items: a list or a tuple, as any
 * other iterable could be consumed only once. */
static PyObject *speedups_create_many(PyObject *mod, PyObject *const *argv, Py_ssize_t argc) {
  const librtq_fns *f = NULL;
  rtq_client *c = call_start(mod, argv, argc, 2, "create_many() takes a handle and a list", &f);
  if (c == NULL) return NULL;
  PyObject *items = argv[1];
  if (!PyList_CheckExact(items) && !PyTuple_CheckExact(items)) Py_RETURN_NONE;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
  if (n == 0 || n > FAST_MAX_TASKS) Py_RETURN_NONE;
  spec_abi *specs = PyMem_Calloc((size_t)n, sizeof *specs);
  PyObject **names = PyMem_Calloc((size_t)n, sizeof *names);
  if (specs == NULL || names == NULL) {
    PyMem_Free(specs);
    PyMem_Free(names);
    Py_RETURN_NONE;
  }
  /* No Python code runs in this walk (as in set_items), so the list
   * cannot change under it. Each name is held, as the list may change
   * once the GIL is released; the trees hold copies of the args. */
  Py_ssize_t built = 0;
  for (; built < n; built++) {
    PyObject *name, *args;
    if (!item_parts(PySequence_Fast_GET_ITEM(items, built), &name, &args)) break;
    const char *cname = plain_name(name);
    if (cname == NULL) break;
    rtq_args *a = flat_tree(f, args);
    if (a == NULL) break;
    Py_INCREF(name);
    names[built] = name;
    specs[built].name = cname;
    specs[built].args = a;
  }
  if (built < n) {
    release(f, specs, names, built);
    Py_RETURN_NONE;
  }
  int (*create_tasks)(rtq_client *, spec_abi *, size_t) = f->create_tasks;
  Py_BEGIN_ALLOW_THREADS
  (void)create_tasks(c, specs, (size_t)n); /* each spec gets its rc */
  Py_END_ALLOW_THREADS
  /* Out of memory here, the tasks are made but their ids are lost to the
   * caller, as on the general path when its list cannot be built. */
  PyObject *out = PyList_New(n);
  for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
    specs[i].id[sizeof specs[i].id - 1] = '\0';
    PyObject *v = specs[i].rc == 0 ? PyUnicode_FromString(specs[i].id) : PyLong_FromLong(specs[i].rc);
    if (v == NULL) Py_CLEAR(out);
    else PyList_SET_ITEM(out, i, v);
  }
  release(f, specs, names, n);
  return out;
}

static PyMethodDef speedups_methods[] = {
    {"bind", (PyCFunction)(void (*)(void))speedups_bind, METH_FASTCALL,
     "bind(args_new, args_free, set_strn, set_int, set_double, set_bool, set_nil, "
     "create_task, create_tasks, id_size, spec_size): librtq's functions, by address"},
    {"create", (PyCFunction)(void (*)(void))speedups_create, METH_FASTCALL,
     "create(handle, name, args) -> id, a negative RTQ_E* code, or None (not the fast case)"},
    {"create_many", (PyCFunction)(void (*)(void))speedups_create_many, METH_FASTCALL,
     "create_many(handle, items) -> [id or negative RTQ_E* code per item], or None (not the fast case)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "rtq._speedups", "create_task's common case in C (see client.py)",
    sizeof(librtq_fns), speedups_methods, NULL, NULL, NULL, NULL,
};

/* The state starts zeroed (CPython clears m_size bytes): create() refuses
 * to run before bind(). */
PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&speedups_module); }
