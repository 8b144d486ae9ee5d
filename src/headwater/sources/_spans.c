/*
 * headwater.sources._spans: spans of a buffer copied into one Arrow string array's buffers.
 *
 * gather(data, starts, ends, offsets, out) -> None
 *
 *   data         the text (any buffer)
 *   starts/ends  int64 per span: data[starts[i]:ends[i]] is span i
 *   offsets      int32, one more than the spans: filled with the Arrow offsets (0, ...)
 *   out          uint8, exactly the spans' total length: filled with their bytes, in order
 *
 * The copy runs without the GIL. Bounds are checked first (ValueError names the span).
 * The compiled twin of `spans.strings`' take over interleaved offsets; the caller checks
 * that the total fits int32 offsets.
 *
 * find(data, byte, out) -> int
 *
 *   the positions of `byte` in data, ascending, written to `out` (int64) as far as it
 *   holds them; returns how many there are (call with an empty `out` to count them).
 *   Sixteen bytes at a time with SSE2 where the compiler has it; without the GIL.
 *   The compiled twin of `np.flatnonzero(data == byte)`.
 *
 * group(code, record, start, end, flag, out_record, out_start, out_end, out_flag, counts)
 *
 *   the rows of four parallel columns (int64, int64, int64, uint8) regrouped by `code`
 *   (int64, 0 <= code < len(counts)): group 0's rows first, each group in its input
 *   order (a stable counting sort); counts gets each group's size. ValueError names a
 *   code out of range. The compiled twin of a stable argsort by code and four takes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static PyObject *gather(PyObject *self, PyObject *args) {
    PyObject *o[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4])) return NULL;
    Py_buffer v[5];
    int got = 0;
    PyObject *result = NULL;
    int writable[5] = {0, 0, 0, 1, 1};
    for (; got < 5; got++) {
        int flags = writable[got] ? PyBUF_WRITABLE : PyBUF_SIMPLE;
        if (PyObject_GetBuffer(o[got], &v[got], flags) < 0) goto done;
    }
    Py_ssize_t n = v[1].len / 8;
    if (v[1].len % 8 || v[2].len != v[1].len || v[3].len != (n + 1) * 4) {
        PyErr_SetString(PyExc_ValueError, "starts, ends (int64) and offsets (int32, n + 1) differ");
        goto done;
    }
    const int64_t *starts = v[1].buf, *ends = v[2].buf;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (starts[i] < 0 || starts[i] > ends[i] || ends[i] > v[0].len) {
            PyErr_Format(PyExc_ValueError, "span %zd: [%lld, %lld) outside %zd bytes", i,
                         (long long)starts[i], (long long)ends[i], v[0].len);
            goto done;
        }
        total += (Py_ssize_t)(ends[i] - starts[i]);
    }
    if (total != v[4].len || total > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "spans hold %zd bytes, out holds %zd", total, v[4].len);
        goto done;
    }
    {
        const uint8_t *data = v[0].buf;
        uint8_t *out = v[4].buf;
        int32_t *offsets = v[3].buf;
        Py_BEGIN_ALLOW_THREADS
        int32_t at = 0;
        offsets[0] = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            int32_t len = (int32_t)(ends[i] - starts[i]);
            memcpy(out + at, data + starts[i], (size_t)len);
            at += len;
            offsets[i + 1] = at;
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    return result;
}

static Py_ssize_t positions(const uint8_t *d, Py_ssize_t n, uint8_t byte, int64_t *out,
                            Py_ssize_t cap) {
    Py_ssize_t k = 0, i = 0;
#if defined(__SSE2__)
    const __m128i needle = _mm_set1_epi8((char)byte);
    for (; i + 16 <= n; i += 16) {
        __m128i block = _mm_loadu_si128((const __m128i *)(d + i));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(block, needle));
        if (cap == 0) {
            k += __builtin_popcount(mask);
            continue;
        }
        while (mask) {
            if (k < cap) out[k] = i + __builtin_ctz(mask);
            k++;
            mask &= mask - 1;
        }
    }
#endif
    for (; i < n; i++) {
        if (d[i] == byte) {
            if (k < cap) out[k] = i;
            k++;
        }
    }
    return k;
}

static PyObject *find(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    int byte;
    if (!PyArg_ParseTuple(args, "y*iw*", &data, &byte, &out)) return NULL;
    PyObject *result = NULL;
    if (byte < 0 || byte > 255 || out.len % 8) {
        PyErr_SetString(PyExc_ValueError, "byte must be 0 to 255 and out int64");
        goto done;
    }
    Py_ssize_t found;
    Py_BEGIN_ALLOW_THREADS
    found = positions(data.buf, data.len, (uint8_t)byte, out.buf, out.len / 8);
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(found);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *group(PyObject *self, PyObject *args) {
    PyObject *o[10];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &o[7], &o[8], &o[9]))
        return NULL;
    Py_buffer v[10];
    int got = 0;
    PyObject *result = NULL;
    /* code, record, start, end, flag; out_record, out_start, out_end, out_flag; counts */
    const int width[10] = {8, 8, 8, 8, 1, 8, 8, 8, 1, 8};
    for (; got < 10; got++) {
        int flags = got >= 5 ? PyBUF_WRITABLE : PyBUF_SIMPLE;
        if (PyObject_GetBuffer(o[got], &v[got], flags) < 0) goto done;
    }
    Py_ssize_t n = v[0].len / 8, groups = v[9].len / 8;
    for (int i = 0; i < 9; i++) {
        if (v[i].len != n * width[i]) {
            PyErr_SetString(PyExc_ValueError, "the columns and their outputs differ in length");
            goto done;
        }
    }
    const int64_t *code = v[0].buf;
    int64_t *counts = v[9].buf;
    memset(counts, 0, (size_t)groups * sizeof(int64_t));
    for (Py_ssize_t i = 0; i < n; i++) {
        if (code[i] < 0 || code[i] >= groups) {
            PyErr_Format(PyExc_ValueError, "row %zd: code %lld outside 0..%zd", i,
                         (long long)code[i], groups - 1);
            goto done;
        }
        counts[code[i]]++;
    }
    {
        int64_t *at = malloc((size_t)(groups ? groups : 1) * sizeof(int64_t));
        if (at == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        int64_t sum = 0;
        for (Py_ssize_t g = 0; g < groups; g++) {
            at[g] = sum;
            sum += counts[g];
        }
        const int64_t *record = v[1].buf, *start = v[2].buf, *end = v[3].buf;
        const uint8_t *flag = v[4].buf;
        int64_t *o_record = v[5].buf, *o_start = v[6].buf, *o_end = v[7].buf;
        uint8_t *o_flag = v[8].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t k = at[code[i]]++;
            o_record[k] = record[i];
            o_start[k] = start[i];
            o_end[k] = end[i];
            o_flag[k] = flag[i];
        }
        Py_END_ALLOW_THREADS
        free(at);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"group", group, METH_VARARGS, "Regroup four parallel columns by a code (stable)."},
    {"gather", gather, METH_VARARGS, "Copy spans of a buffer into Arrow string buffers."},
    {"find", find, METH_VARARGS, "Positions of one byte in a buffer, into an int64 buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_spans",
                                    "spans of a buffer as Arrow string buffers, compiled", -1,
                                    methods};

PyMODINIT_FUNC PyInit__spans(void) { return PyModule_Create(&module); }
