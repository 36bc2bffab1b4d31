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
 * Serving one request, in the order the tracker's contract fixes:
 *   1. intent(offset, length): the range's activity-log regions are durable before the image
 *      changes. If it raises, the exception is dropped and the run stops before the request.
 *   2. pwrite of the payload to `fd` at `offset` (with the interpreter lock held: a page-cache
 *      write of a few pages costs less than handing the lock to another thread and waiting to
 *      get it back). If it fails, the run stops before the request.
 *   3. submit(offset, payload bytes): the write is published. If it raises, the exception is
 *      dropped and the run stops before the request.
 *   4. the 16-byte simple reply: NBD_SIMPLE_REPLY_MAGIC (0x67446698) u32 | error 0 u32 |
 *      the request's handle, copied byte for byte.
 * A request the run stopped at after step 1 or 2 is served again by the Python path, which
 * repeats the same steps (an intent and a write of the same bytes are idempotent) and answers
 * the error the same failure raises there; so a failing callback is called twice for it. Only
 * exceptions derived from Exception are dropped: any other (KeyboardInterrupt, SystemExit)
 * propagates out of the call, with the replies of the run's served requests unsent. The caller guarantees that no other write overlaps
 * (no range of the export is held by a write in progress elsewhere) and that the callbacks may
 * be called with the interpreter lock held and return at once (local acknowledgement).
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

/* callback(offset, second); 0 when it returned, else `failed()`. */
static int call(PyObject *callback, uint64_t offset, PyObject *second) {
    PyObject *first = PyLong_FromUnsignedLongLong(offset);
    if (first == NULL) {
        return failed();
    }
    PyObject *args[2] = {first, second};
    PyObject *result = PyObject_Vectorcall(callback, args, 2, NULL);
    Py_DECREF(first);
    if (result == NULL) {
        return failed();
    }
    Py_DECREF(result);
    return 0;
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
    Py_ssize_t at = start, served = 0;
    int outcome = 0;
    while (served < max_count && servable(buffer + at, view.len - at, block_size, export_size, max_length)) {
        const unsigned char *header = buffer + at;
        uint64_t offset = be64(header + 16);
        uint32_t length = be32(header + 24);
        PyObject *length_object = PyLong_FromUnsignedLong(length);
        if (length_object == NULL) {
            outcome = failed();
            break;
        }
        outcome = call(intent, offset, length_object);
        Py_DECREF(length_object);
        if (outcome != 0 || pwrite_all(fd, header + HEADER_SIZE, length, offset) != 0) {
            break;
        }
        PyObject *payload = PyBytes_FromStringAndSize((const char *)header + HEADER_SIZE, length);
        if (payload == NULL) {
            outcome = failed();
            break;
        }
        outcome = call(submit, offset, payload);
        Py_DECREF(payload);
        if (outcome != 0) {
            break;
        }
        unsigned char *reply = out + REPLY_SIZE * served;
        put_be32(reply, SIMPLE_REPLY_MAGIC);
        memset(reply + 4, 0, 4);
        memcpy(reply + 8, header + 8, 8);
        served++;
        at += HEADER_SIZE + (Py_ssize_t)length;
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
