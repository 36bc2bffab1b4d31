/*
 * tidemark.schemas._blockwrite_reader: the BlockWrite event's Avro body read in C.
 *
 * decode(event, start) -> dict
 *
 * Reads the record body of a BlockWrite event from byte `start` of `event` (any buffer: bytes,
 * memoryview) to its end, with the layout of the schema the codec checks it against
 * (blockwrite_reader.py, FIELDS), in schema field order:
 *
 *     volume                     Avro long length (zigzag, then 7 bits per byte, least
 *                                significant first), then that many bytes of UTF-8
 *     epoch, seq, timestamp,
 *     offset, length             Avro longs
 *     op                         enum index as an Avro long: 0 WRITE, 1 ZERO, 2 TRIM
 *     compression                enum index as an Avro long: 0 NONE, 1 LZ4, 2 ZSTD
 *     data, checksum             Avro long length, then that many bytes (copied into new bytes)
 *     generation                 Avro long
 *
 * Returns the record as fastavro returns it: a dict of those eleven fields, enums as their
 * symbols. Raises ValueError, naming the field, for a long of more than 10 bytes or beyond 64
 * bits, a length that is negative or runs past the end, an enum index out of range (fastavro
 * reads a negative index as a symbol from the end; this refuses it), invalid UTF-8, or bytes left
 * after the last field. It never reads outside the buffer, whatever the bytes. The interpreter
 * lock is held throughout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define VARINT_MAX 10

/* The fields in schema order; FIELD_COUNT last. */
enum { VOLUME, EPOCH, SEQ, TIMESTAMP, OFFSET, LENGTH, OP, COMPRESSION, DATA, CHECKSUM, GENERATION, FIELD_COUNT };

static const char *const FIELD_NAMES[FIELD_COUNT] = {
    "volume", "epoch", "seq", "timestamp", "offset", "length", "op", "compression", "data", "checksum", "generation",
};
static const char *const OP_SYMBOLS[] = {"WRITE", "ZERO", "TRIM"};
static const char *const COMPRESSION_SYMBOLS[] = {"NONE", "LZ4", "ZSTD"};

static PyObject *field_keys[FIELD_COUNT];
static PyObject *op_symbols[3];
static PyObject *compression_symbols[3];

typedef struct {
    const unsigned char *at;
    const unsigned char *end;
} Reader;

/* Reads an Avro long into `out`; 0 on success, -1 with ValueError set. */
static int get_long(Reader *reader, const char *field, int64_t *out) {
    uint64_t encoded = 0;
    for (int i = 0; i < VARINT_MAX; i++) {
        if (reader->at >= reader->end) {
            PyErr_Format(PyExc_ValueError, "field %s: the event ends inside a long", field);
            return -1;
        }
        unsigned char byte = *reader->at++;
        if (i == VARINT_MAX - 1 && (byte & 0x7E)) { /* the tenth byte holds bit 63 only */
            PyErr_Format(PyExc_ValueError, "field %s: a long beyond 64 bits", field);
            return -1;
        }
        encoded |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (!(byte & 0x80)) {
            *out = (int64_t)(encoded >> 1) ^ -(int64_t)(encoded & 1);
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "field %s: a long of more than %d bytes", field, VARINT_MAX);
    return -1;
}

/* Reads an Avro length and checks the bytes it announces are there; 0 on success, -1 with ValueError set. */
static int get_length(Reader *reader, const char *field, Py_ssize_t *out) {
    int64_t length;
    if (get_long(reader, field, &length) < 0) {
        return -1;
    }
    if (length < 0 || length > reader->end - reader->at) {
        PyErr_Format(PyExc_ValueError, "field %s: length %lld, but %zd bytes are left", field,
                     (long long)length, (Py_ssize_t)(reader->end - reader->at));
        return -1;
    }
    *out = (Py_ssize_t)length;
    return 0;
}

/* Reads an enum index and returns its symbol (a new reference), or NULL with ValueError set. */
static PyObject *get_symbol(Reader *reader, const char *field, PyObject *const *symbols) {
    int64_t index;
    if (get_long(reader, field, &index) < 0) {
        return NULL;
    }
    if (index < 0 || index > 2) {
        PyErr_Format(PyExc_ValueError, "field %s: enum index %lld out of range", field, (long long)index);
        return NULL;
    }
    Py_INCREF(symbols[index]);
    return symbols[index];
}

/* Reads one field into `values[field]`; 0 on success, -1 with an exception set. */
static int get_field(Reader *reader, int field, PyObject **values) {
    const char *name = FIELD_NAMES[field];
    Py_ssize_t length;
    int64_t number;
    switch (field) {
    case VOLUME:
        if (get_length(reader, name, &length) < 0) {
            return -1;
        }
        values[field] = PyUnicode_DecodeUTF8((const char *)reader->at, length, "strict");
        if (values[field] == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) { /* else a MemoryError, kept as it is */
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "field %s: invalid UTF-8", name);
            }
            return -1;
        }
        reader->at += length;
        return 0;
    case OP:
        values[field] = get_symbol(reader, name, op_symbols);
        return values[field] == NULL ? -1 : 0;
    case COMPRESSION:
        values[field] = get_symbol(reader, name, compression_symbols);
        return values[field] == NULL ? -1 : 0;
    case DATA:
    case CHECKSUM:
        if (get_length(reader, name, &length) < 0) {
            return -1;
        }
        values[field] = PyBytes_FromStringAndSize((const char *)reader->at, length);
        reader->at += length;
        return values[field] == NULL ? -1 : 0;
    default:
        if (get_long(reader, name, &number) < 0) {
            return -1;
        }
        values[field] = PyLong_FromLongLong(number);
        return values[field] == NULL ? -1 : 0;
    }
}

static PyObject *decode(PyObject *module, PyObject *args) {
    Py_buffer event;
    Py_ssize_t start;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*n:decode", &event, &start)) {
        return NULL;
    }
    PyObject *values[FIELD_COUNT] = {NULL};
    PyObject *result = NULL;
    if (start < 0 || start > event.len) {
        PyErr_Format(PyExc_ValueError, "BlockWrite body start %zd outside an event of %zd bytes", start, event.len);
        goto done;
    }
    Reader reader = {(const unsigned char *)event.buf + start, (const unsigned char *)event.buf + event.len};
    for (int field = 0; field < FIELD_COUNT; field++) {
        if (get_field(&reader, field, values) < 0) {
            goto done;
        }
    }
    if (reader.at != reader.end) {
        PyErr_Format(PyExc_ValueError, "%zd trailing bytes", (Py_ssize_t)(reader.end - reader.at));
        goto done;
    }
    result = PyDict_New();
    for (int field = 0; result != NULL && field < FIELD_COUNT; field++) {
        if (PyDict_SetItem(result, field_keys[field], values[field]) < 0) {
            Py_CLEAR(result);
        }
    }
done:
    for (int field = 0; field < FIELD_COUNT; field++) {
        Py_XDECREF(values[field]);
    }
    PyBuffer_Release(&event);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(event, start) -> dict: a BlockWrite record body read from byte `start` (see the C source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tidemark.schemas._blockwrite_reader",
    .m_doc = "The BlockWrite event's Avro body read in C.",
    .m_size = -1,
    .m_methods = methods,
};

static int intern_all(PyObject **out, const char *const *names, int count) {
    for (int i = 0; i < count; i++) {
        out[i] = PyUnicode_InternFromString(names[i]);
        if (out[i] == NULL) {
            return -1;
        }
    }
    return 0;
}

PyMODINIT_FUNC PyInit__blockwrite_reader(void) {
    if (intern_all(field_keys, FIELD_NAMES, FIELD_COUNT) < 0 || intern_all(op_symbols, OP_SYMBOLS, 3) < 0 ||
        intern_all(compression_symbols, COMPRESSION_SYMBOLS, 3) < 0) {
        return NULL;
    }
    return PyModule_Create(&module_definition);
}
