/*
 * tidemark.producers._blockwrite: the BlockWrite event's Avro bytes in C, one allocation per event.
 *
 * encode(prefix, epoch, seq, timestamp, offset, length, op, compression, data, checksum, generation)
 *     -> bytes
 *
 * Returns `prefix` followed by the record body in schema field order (the layout is stated in
 * blockwrite_encoder.py, which calls this and holds the same steps in Python):
 *
 *     prefix                     the single-object marker, fingerprint and volume field, as given
 *     epoch, seq, timestamp,
 *     offset, length             Avro longs: zigzag, then 7 bits per byte, least significant first
 *     op, compression            enum indexes, as Avro longs
 *     data                       Avro long length, then the bytes of any buffer (bytes, memoryview)
 *     checksum                   Avro long length, then the bytes
 *     generation                 Avro long
 *
 * Every integer must fit a signed 64-bit long (OverflowError otherwise), as Avro's long does.
 * The interpreter lock is held throughout: an event of 64 KiB at most is a copy of microseconds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define LONGS 9
#define VARINT_MAX 10

/* Writes the Avro long `value` at `out` (at most 10 bytes); returns the byte count. */
static size_t put_long(unsigned char *out, int64_t value) {
    uint64_t encoded = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    size_t count = 0;
    while (encoded > 0x7F) {
        out[count++] = (unsigned char)((encoded & 0x7F) | 0x80);
        encoded >>= 7;
    }
    out[count++] = (unsigned char)encoded;
    return count;
}

static PyObject *encode(PyObject *module, PyObject *args) {
    Py_buffer prefix, data, checksum;
    long long epoch, seq, timestamp, offset, length, op, compression, generation;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*LLLLLLLy*y*L:encode", &prefix, &epoch, &seq, &timestamp, &offset, &length, &op,
                          &compression, &data, &checksum, &generation)) {
        return NULL;
    }
    /* the longs before `data`, then data's and checksum's lengths and generation, in wire order */
    unsigned char longs[LONGS][VARINT_MAX];
    size_t sizes[LONGS];
    int64_t values[LONGS] = {epoch, seq, timestamp, offset, length, op, compression, (int64_t)data.len,
                             (int64_t)checksum.len};
    Py_ssize_t total = prefix.len + data.len + checksum.len;
    for (int i = 0; i < LONGS; i++) {
        sizes[i] = put_long(longs[i], values[i]);
        total += (Py_ssize_t)sizes[i];
    }
    unsigned char tail[VARINT_MAX];
    size_t tail_size = put_long(tail, generation);
    total += (Py_ssize_t)tail_size;
    PyObject *result = PyBytes_FromStringAndSize(NULL, total);
    if (result != NULL) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        memcpy(out, prefix.buf, (size_t)prefix.len);
        out += prefix.len;
        for (int i = 0; i < LONGS - 1; i++) {
            memcpy(out, longs[i], sizes[i]);
            out += sizes[i];
        }
        memcpy(out, data.buf, (size_t)data.len);
        out += data.len;
        memcpy(out, longs[LONGS - 1], sizes[LONGS - 1]);
        out += sizes[LONGS - 1];
        memcpy(out, checksum.buf, (size_t)checksum.len);
        out += checksum.len;
        memcpy(out, tail, tail_size);
    }
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&data);
    PyBuffer_Release(&checksum);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS,
     "encode(prefix, epoch, seq, timestamp, offset, length, op, compression, data, checksum, generation)"
     " -> bytes: a BlockWrite event's Avro bytes (see the C source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tidemark.producers._blockwrite",
    .m_doc = "The BlockWrite event's Avro bytes in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__blockwrite(void) { return PyModule_Create(&module_definition); }
