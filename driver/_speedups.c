/* The row path's loops in C: an optional accelerator, built when a C compiler is there.
 *
 * driver/protocol/buffer.py (_rows) and driver/query.py (decode) hold the same loops in
 * Python, and the driver runs on them where this module is not built (Pyodide, a machine
 * without a compiler) or when PGWS_PURE_PYTHON is set. Both forms give the same rows and
 * the same errors; the suite runs them side by side (tests/driver/test_speedups.py).
 * Only what costs per value lives here: the DataRow framing, the loop that calls each
 * column's decoder and makes the Record, and executemany()'s loop that calls each
 * parameter's encoder and frames the row's Bind. The protocol, the codecs and every decision about
 * what a value means stay in Python. bench/rows_bench.py measures both forms.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* driver/protocol/buffer.py MAX_MESSAGE: the server never sends a message this large */
#define MAX_MESSAGE ((1LL << 30) + 1024)
#define MAX_WIDTH 1664 /* Postgres' limit on a row's columns (MaxTupleAttributeNumber) */

static inline uint32_t
be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

PyDoc_STRVAR(read_rows_doc,
"read_rows(buf, pos, rows) -> int\n\n"
"Append to the list ``rows`` a tuple of values (bytes, or None for NULL) for each complete\n"
"DataRow in ``buf`` from ``pos``; return the offset after the last one. It stops at any\n"
"other message and at a row not all in ``buf``. ValueError for a malformed row (the rows\n"
"before it are appended).");

static PyObject *
read_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_CheckExact(args[0]) || !PyList_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "read_rows(buf: bytes, pos: int, rows: list)");
        return NULL;
    }
    PyObject *buf = args[0], *rows = args[2];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(buf);
    Py_ssize_t size = PyBytes_GET_SIZE(buf);
    if (pos < 0 || pos > size) {
        PyErr_SetString(PyExc_ValueError, "read_rows: pos outside the buffer");
        return NULL;
    }
    while (size - pos >= 7 && data[pos] == 'D') {
        long long length = be32(data + pos + 1);
        Py_ssize_t end = pos + 1 + (Py_ssize_t)length;
        if (end > size) {
            if (length > MAX_MESSAGE) {
                PyErr_Format(PyExc_ValueError, "invalid length %lld for a DataRow", length);
                return NULL;
            }
            break; /* the rest has not arrived yet */
        }
        if (length < 6) {
            PyErr_SetString(PyExc_ValueError, "DataRow length does not match its values");
            return NULL;
        }
        Py_ssize_t n = (data[pos + 5] << 8) | data[pos + 6];
        PyObject *row = PyTuple_New(n);
        if (row == NULL)
            return NULL;
        Py_ssize_t p = pos + 7;
        for (Py_ssize_t k = 0; k < n; k++) {
            if (end - p < 4)
                goto mismatch;
            int32_t vsize = (int32_t)be32(data + p);
            p += 4;
            PyObject *value;
            if (vsize >= 0) {
                if (end - p < vsize)
                    goto mismatch;
                value = PyBytes_FromStringAndSize((const char *)data + p, vsize);
                if (value == NULL) {
                    Py_DECREF(row);
                    return NULL;
                }
                p += vsize;
            }
            else if (vsize == -1) {
                value = Py_NewRef(Py_None);
            }
            else {
                Py_DECREF(row);
                PyErr_Format(PyExc_ValueError,
                             "DataRow value length %d: only -1 (NULL) is negative", vsize);
                return NULL;
            }
            PyTuple_SET_ITEM(row, k, value);
        }
        if (p != end)
            goto mismatch;
        /* bytes and None only: no cycle can pass through it. CPython's collector would
           untrack it at its first pass (as it does every such tuple); doing it now spares
           the collector 200k rows to walk in a large result. */
        PyObject_GC_UnTrack(row);
        if (PyList_Append(rows, row) < 0) {
            Py_DECREF(row);
            return NULL;
        }
        Py_DECREF(row);
        pos = end;
        continue;
    mismatch:
        Py_DECREF(row);
        PyErr_SetString(PyExc_ValueError, "DataRow length does not match its values");
        return NULL;
    }
    return PyLong_FromSsize_t(pos);
}

PyDoc_STRVAR(decode_rows_doc,
"decode_rows(raw, cls, decoders) -> list\n\n"
"One ``cls`` per row of the list ``raw`` (tuples of bytes or None), each value through its\n"
"column's decoder, None left None. ``cls`` is a subclass of tuple that is made without\n"
"calling __new__ or __init__ (driver.record.record_class's classes): its rows are filled in\n"
"place, as tuple's own constructor does for a subclass. ValueError for a row that is not a\n"
"tuple of len(decoders) values; a decoder's exception propagates as raised.");

static PyObject *
decode_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyType_Check(args[1])
        || !PyTuple_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "decode_rows(raw: list, cls: type, decoders: tuple)");
        return NULL;
    }
    PyObject *raw = args[0], *decoders = args[2];
    PyTypeObject *cls = (PyTypeObject *)args[1];
    if (!PyType_IsSubtype(cls, &PyTuple_Type) || cls->tp_itemsize != sizeof(PyObject *)) {
        PyErr_SetString(PyExc_TypeError, "decode_rows: cls must be a subclass of tuple");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(decoders);
    if (n > MAX_WIDTH) {
        PyErr_SetString(PyExc_ValueError, "decode_rows: too many columns");
        return NULL;
    }
    PyObject *values[MAX_WIDTH];
    Py_ssize_t count = PyList_GET_SIZE(raw);
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    /* out's slots are NULL until filled: keep it from gc.get_objects() meanwhile (the
       decoders run Python code); each Record is tracked by itself */
    PyObject_GC_UnTrack(out);
    for (Py_ssize_t r = 0; r < count; r++) {
        PyObject *row = PyList_GET_ITEM(raw, r);
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != n) {
            PyErr_Format(PyExc_ValueError, "a row of %zd values, not %zd",
                         PyTuple_Check(row) ? PyTuple_GET_SIZE(row) : (Py_ssize_t)-1, n);
            goto fail;
        }
        Py_ssize_t k = 0;
        for (; k < n; k++) {
            PyObject *v = PyTuple_GET_ITEM(row, k);
            values[k] = v == Py_None ? Py_NewRef(v)
                                     : PyObject_CallOneArg(PyTuple_GET_ITEM(decoders, k), v);
            if (values[k] == NULL)
                break;
        }
        if (k < n) {
            while (k-- > 0)
                Py_DECREF(values[k]);
            goto fail;
        }
        /* tuple_subtype_new's way: allocate the subclass, move the values in */
        PyObject *rec = cls->tp_alloc(cls, n);
        if (rec == NULL) {
            for (k = 0; k < n; k++)
                Py_DECREF(values[k]);
            goto fail;
        }
        int holds_containers = 0;
        for (k = 0; k < n; k++) {
            PyTuple_SET_ITEM(rec, k, values[k]);
            holds_containers |= PyObject_GC_IsTracked(values[k]);
        }
        /* Values the collector does not track (numbers, strings, datetimes, None: most
           rows) cannot make a cycle through the row, so the row is not tracked either, as
           CPython does for such a tuple at its first collection. A large result then costs
           the collector nothing to walk, again and again, while it is being made. */
        if (!holds_containers)
            PyObject_GC_UnTrack(rec);
        PyList_SET_ITEM(out, r, rec);
    }
    PyObject_GC_Track(out);
    return out;
fail:
    Py_DECREF(out); /* list_dealloc skips the NULL slots not yet filled */
    return NULL;
}

PyDoc_STRVAR(bind_row_doc,
"bind_row(fixed, head, tail, encoders, row) -> bytes\n\n"
"One executemany() row's Bind + Execute: b'B', the length word (``fixed`` plus the values'\n"
"bytes), ``head``, each value of the sequence ``row`` as a length word and its encoder's\n"
"str (sent as UTF-8) or bytes (None as NULL), then ``tail``: what\n"
"driver.protocol.frontend.bind_executor() makes of the encoded row. ValueError for a row\n"
"of another length, TypeError for an encoder's result of another type; an encoder's own\n"
"exception propagates as raised.");

static PyObject *
bind_row(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyBytes_CheckExact(args[1]) || !PyBytes_CheckExact(args[2])
        || !PyTuple_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "bind_row(fixed: int, head: bytes, tail: bytes, encoders: tuple, row)");
        return NULL;
    }
    Py_ssize_t fixed = PyLong_AsSsize_t(args[0]);
    if (fixed == -1 && PyErr_Occurred())
        return NULL;
    PyObject *head = args[1], *tail = args[2], *encoders = args[3];
    PyObject *seq = PySequence_Fast(args[4], "a row must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(encoders);
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "a row of %zd values for %zd parameters",
                     PySequence_Fast_GET_SIZE(seq), n);
        Py_DECREF(seq);
        return NULL;
    }
    PyObject *small[16];
    PyObject **encoded = n <= 16 ? small : PyMem_New(PyObject *, n);
    if (encoded == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    Py_ssize_t k = 0, body = 0;
    for (; k < n; k++) {
        PyObject *v = PySequence_Fast_GET_ITEM(seq, k);
        if (v == Py_None) {
            encoded[k] = NULL;
            body += 4;
            continue;
        }
        PyObject *e = PyObject_CallOneArg(PyTuple_GET_ITEM(encoders, k), v);
        if (e == NULL)
            goto done;
        Py_ssize_t size;
        if (PyUnicode_CheckExact(e)) {
            if (PyUnicode_AsUTF8AndSize(e, &size) == NULL) {
                Py_DECREF(e);
                goto done;
            }
        }
        else if (PyBytes_CheckExact(e)) {
            size = PyBytes_GET_SIZE(e);
        }
        else {
            PyErr_Format(PyExc_TypeError, "an encoder returned %.100s, not str or bytes",
                         Py_TYPE(e)->tp_name);
            Py_DECREF(e);
            goto done;
        }
        if (size > INT32_MAX - 4) {
            PyErr_SetString(PyExc_ValueError, "a parameter value over 2 GiB");
            Py_DECREF(e);
            goto done;
        }
        encoded[k] = e;
        body += 4 + size;
    }
    Py_ssize_t hsize = PyBytes_GET_SIZE(head), tsize = PyBytes_GET_SIZE(tail);
    if (fixed + body > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a Bind message over 4 GiB");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, 5 + hsize + body + tsize);
    if (result == NULL)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    uint32_t length = (uint32_t)(fixed + body);
    out[0] = 'B';
    out[1] = length >> 24; out[2] = length >> 16; out[3] = length >> 8; out[4] = length;
    out += 5;
    memcpy(out, PyBytes_AS_STRING(head), hsize);
    out += hsize;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = encoded[i];
        const char *data;
        Py_ssize_t size;
        if (e == NULL) {
            memset(out, 0xff, 4); /* -1: NULL */
            out += 4;
            continue;
        }
        if (PyUnicode_CheckExact(e))
            data = PyUnicode_AsUTF8AndSize(e, &size); /* made above: cannot fail now */
        else {
            data = PyBytes_AS_STRING(e);
            size = PyBytes_GET_SIZE(e);
        }
        out[0] = (uint32_t)size >> 24; out[1] = (uint32_t)size >> 16;
        out[2] = (uint32_t)size >> 8; out[3] = (uint32_t)size;
        memcpy(out + 4, data, size);
        out += 4 + size;
    }
    memcpy(out, PyBytes_AS_STRING(tail), tsize);
done:
    while (k-- > 0)
        Py_XDECREF(encoded[k]);
    if (encoded != small)
        PyMem_Free(encoded);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"read_rows", (PyCFunction)(void (*)(void))read_rows, METH_FASTCALL, read_rows_doc},
    {"decode_rows", (PyCFunction)(void (*)(void))decode_rows, METH_FASTCALL, decode_rows_doc},
    {"bind_row", (PyCFunction)(void (*)(void))bind_row, METH_FASTCALL, bind_row_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "driver._speedups",
    "The row path's per-value loops in C (see driver/_speedups.c).", 0, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
