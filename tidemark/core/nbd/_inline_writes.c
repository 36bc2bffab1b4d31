/*
 * tidemark.core.nbd._inline_writes: the NBD server's write fast path in C.
 *
 * serve_writes(buffer, start, fd, block_size, export_size, max_length, max_count, intent, submit)
 *     -> (end, replies)
 *
 * Serves the run of plain WRITE requests that starts at `buffer[start]` and returns where the
 * run stopped (`end`, an offset into `buffer`) with the simple replies of the requests it served,
 * concatenated in request order. The caller owns everything else: it parses the request at
 * `end` itself, in Python, whatever the reason the run stopped.
 *
 * A request is served here only when all of these hold (otherwise the run stops before it, and
 * nothing of it has been consumed):
 *   - at least 28 bytes of header: magic u32 | flags u16 | type u16 | handle u64 | offset u64 |
 *     length u32, big-endian, with magic NBD_REQUEST_MAGIC (0x25609513), type NBD_CMD_WRITE (1)
 *     and flags 0 (no FUA: an fsync must not run on the event loop);
 *   - 0 < length <= max_length, offset and length multiples of block_size, and
 *     offset + length <= export_size (errors are the Python path's to answer);
 *   - the whole payload (`length` bytes after the header) is in `buffer`;
 *   - fewer than `max_count` requests were served by this call (it bounds the replies one call
 *     builds; the caller's receive buffer bounds the run).
 *
 * The run is served in four steps, in the order the tracker's contract fixes, each step over all
 * of the run's requests (so Python is called twice per run, not twice per request):
 *   1. intent(ranges): a list of (offset, length), one per request in order; the ranges'
 *      activity-log regions are durable before the image changes. If it raises, the exception
 *      is dropped and the run stops before its first request.
 *   2. pwrite of each payload to `fd` at its offset, in order (with the interpreter lock held: a
 *      page-cache write of a few pages costs less than handing the lock to another thread and
 *      waiting to get it back). At the first that fails, the run is cut before that request.
 *   3. submit(writes): a list of (offset, payload bytes) of the requests written, in order; it
 *      returns how many of them it took, a prefix (0..len). If it raises, the exception is
 *      dropped and none counts as taken; a return that is not such a count raises ValueError.
 *   4. the 16-byte simple reply of each request taken: NBD_SIMPLE_REPLY_MAGIC (0x67446698) u32 |
 *      error 0 u32 | the request's handle, copied byte for byte. `end` follows the last of them.
 * The requests after the last one taken are served again by the Python path, which repeats the
 * same steps one request at a time (an intent and a write of the same bytes are idempotent) and
 * answers the error the same failure raises there; so a failing callback is called again for
 * them. Only exceptions derived from Exception are dropped: any other (KeyboardInterrupt,
 * SystemExit) propagates out of the call, with no reply sent. The caller guarantees that no
 * other write overlaps (no range of the export is held by a write in progress elsewhere) and
 * that the callbacks may be called with the interpreter lock held and return at once (local
 * acknowledgement).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define REQUEST_MAGIC 0x25609513u
#define SIMPLE_REPLY_MAGIC 0x67446698u
#define CMD_WRITE 1u
#define HEADER_SIZE 28
#define REPLY_SIZE 16
#define MAX_COUNT 65536

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint64_t be64(const unsigned char *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

static void put_be32(unsigned char *p, uint32_t value) {
    p[0] = (unsigned char)(value >> 24);
    p[1] = (unsigned char)(value >> 16);
    p[2] = (unsigned char)(value >> 8);
    p[3] = (unsigned char)value;
}

/* 0 when all `length` bytes are written; -1 on any error but EINTR, or a write of nothing. */
static int pwrite_all(int fd, const unsigned char *data, size_t length, uint64_t offset) {
    while (length > 0) {
        ssize_t written = pwrite(fd, data, length, (off_t)offset);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            return -1;
        }
        data += written;
        length -= (size_t)written;
        offset += (uint64_t)written;
    }
    return 0;
}

/* After a failed call: -1 with an Exception dropped, -2 with any other left set (it propagates). */
static int failed(void) {
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return -1;
    }
    return -2;
}

/* callback(argument) -> new reference, or NULL after `failed()` set *outcome (-1 or -2). */
static PyObject *call(PyObject *callback, PyObject *argument, int *outcome) {
    PyObject *result = PyObject_CallOneArg(callback, argument);
    if (result == NULL) {
        *outcome = failed();
    }
    return result;
}

/* Whether the request at `h` (with `available` bytes from it on) is one this path serves. */
static int servable(const unsigned char *h, Py_ssize_t available, unsigned long long block_size,
                    unsigned long long export_size, unsigned long long max_length) {
    if (available < HEADER_SIZE || be32(h) != REQUEST_MAGIC || be16(h + 4) != 0 || be16(h + 6) != CMD_WRITE) {
        return 0;
    }
    uint64_t offset = be64(h + 16);
    uint32_t length = be32(h + 24);
    if (length == 0 || length > max_length || offset % block_size != 0 || length % block_size != 0) {
        return 0;
    }
    if (offset > export_size || length > export_size - offset) {
        return 0;
    }
    return available - HEADER_SIZE >= (Py_ssize_t)length;
}

static PyObject *serve_writes(PyObject *module, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, max_count;
    int fd;
    unsigned long long block_size, export_size, max_length;
    PyObject *intent, *submit;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*niKKKnOO:serve_writes", &view, &start, &fd, &block_size, &export_size,
                          &max_length, &max_count, &intent, &submit)) {
        return NULL;
    }
    if (start < 0 || start > view.len || block_size == 0 || max_count < 0 || max_count > MAX_COUNT) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError,
                            "serve_writes: start %zd must lie in the buffer (%zd bytes), block_size must be "
                            "positive and max_count within 0..%d",
                            start, view.len, MAX_COUNT);
    }
    PyObject *replies = PyBytes_FromStringAndSize(NULL, REPLY_SIZE * (max_count > 0 ? max_count : 1));
    if (replies == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *buffer = (const unsigned char *)view.buf;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(replies);
    Py_ssize_t at = start, count = 0, served = 0;
    int outcome = 0;
    while (count < max_count && servable(buffer + at, view.len - at, block_size, export_size, max_length)) {
        at += HEADER_SIZE + (Py_ssize_t)be32(buffer + at + 24);
        count++;
    }
    PyObject *ranges = count > 0 ? PyList_New(count) : NULL;
    PyObject *writes = count > 0 ? PyList_New(count) : NULL;
    if (count > 0 && (ranges == NULL || writes == NULL)) {
        outcome = failed();
        count = 0;
    }
    at = start;
    for (Py_ssize_t i = 0; i < count; i++) { /* 1. the intent's ranges */
        PyObject *range = Py_BuildValue("(KI)", (unsigned long long)be64(buffer + at + 16), be32(buffer + at + 24));
        if (range == NULL) {
            outcome = failed();
            count = 0;
            break;
        }
        PyList_SET_ITEM(ranges, i, range);
        at += HEADER_SIZE + (Py_ssize_t)be32(buffer + at + 24);
    }
    PyObject *result = count > 0 ? call(intent, ranges, &outcome) : NULL;
    if (result == NULL) {
        count = 0;
    }
    Py_XDECREF(result);
    at = start;
    Py_ssize_t written = 0;
    for (; written < count; written++) { /* 2. the image, then 3.'s list */
        const unsigned char *header = buffer + at;
        uint64_t offset = be64(header + 16);
        uint32_t length = be32(header + 24);
        if (pwrite_all(fd, header + HEADER_SIZE, length, offset) != 0) {
            break;
        }
        PyObject *write = Py_BuildValue("(Ky#)", (unsigned long long)offset, header + HEADER_SIZE, (Py_ssize_t)length);
        if (write == NULL) {
            outcome = failed();
            break;
        }
        PyList_SET_ITEM(writes, written, write);
        at += HEADER_SIZE + (Py_ssize_t)length;
    }
    if (written > 0 && written < count && PyList_SetSlice(writes, written, count, NULL) < 0) {
        outcome = failed();
        written = 0;
    }
    result = written > 0 ? call(submit, writes, &outcome) : NULL;
    if (result != NULL) {
        served = PyLong_AsSsize_t(result);
        Py_DECREF(result);
        if (served < 0 || served > written) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "serve_writes: submit returned %zd for a list of %zd writes", served,
                             written);
            }
            outcome = -2;
            served = 0;
        }
    }
    Py_XDECREF(ranges);
    Py_XDECREF(writes);
    at = start;
    for (Py_ssize_t i = 0; i < served; i++) { /* 4. the replies */
        unsigned char *reply = out + REPLY_SIZE * i;
        put_be32(reply, SIMPLE_REPLY_MAGIC);
        memset(reply + 4, 0, 4);
        memcpy(reply + 8, buffer + at + 8, 8);
        at += HEADER_SIZE + (Py_ssize_t)be32(buffer + at + 24);
    }
    PyBuffer_Release(&view);
    if (outcome == -2) {
        Py_DECREF(replies);
        return NULL;
    }
    if (_PyBytes_Resize(&replies, REPLY_SIZE * served) < 0) {
        return NULL;
    }
    return Py_BuildValue("nN", at, replies);
}

static PyMethodDef methods[] = {
    {"serve_writes", serve_writes, METH_VARARGS,
     "serve_writes(buffer, start, fd, block_size, export_size, max_length, max_count, intent, submit)"
     " -> (end, replies): the run of plain WRITE requests from buffer[start] (see the C source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tidemark.core.nbd._inline_writes",
    .m_doc = "The NBD server's write fast path in C: runs of plain aligned WRITE requests.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__inline_writes(void) { return PyModule_Create(&module_definition); }
