/*
 * headwater.sources._kvscan: the `key=value` pairs of log lines in one pass over the bytes.
 *
 * The compiled twin of `pairs.scan` (numpy), with the same rules (see pairs.py): it walks
 * each content line once, byte by byte, with the GIL released, and gives every distinct
 * key a code as it first appears, keeping only the first pair of each key in each
 * record. Python (`pairs.scan_native`) allocates every array; this file allocates only
 * its key table. Uses the buffer protocol alone (no numpy headers).
 *
 * scan(data, starts, ends, newlines, record_of_line, kinds, quote, equals, escape,
 *      out_record, out_code, out_vstart, out_vend, out_escaped, line_flags,
 *      key_start, key_end) -> (pairs, keys)
 *
 *   data            bytes of the lines (each ends in a newline)
 *   starts/ends     int64 per line: first byte, end without CR/LF
 *   newlines        int64 per line: position of its newline
 *   record_of_line  int64 per line: record index (non-decreasing), -1: not a content line
 *   kinds           256 bytes: 1 where a byte is a delimiter (quote/equals/escape excepted)
 *   quote, equals   byte values; escape: byte value, or -1 when escapes are not tracked
 *   out_*           int64 (uint8 for out_escaped), one slot per possible pair (the number of
 *                   `equals` bytes in data is enough)
 *   line_flags      uint8 per line, zeroed: bit 0 a quoted value is not closed on it,
 *                   bit 1 it holds at least one pair
 *   key_start/end   int64, capacity for distinct keys: where each key first appears
 *
 * Returns (pairs written, distinct keys), or keys = -1 when there were more distinct keys
 * than key_start holds (the caller then uses the numpy path).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { NONE = 0, BOUND = 1, QUOTE = 2, EQUALS = 3, ESCAPE = 4 };

typedef struct {
    const uint8_t *buf;
    uint8_t cls[256]; /* the kind of each byte value, an escaped quote aside */
    int escape;
} Scanner;

/* The kind of the byte at p: an escaped quote (odd run of escapes before it) is NONE. */
static inline int kind_at(const Scanner *s, Py_ssize_t p, Py_ssize_t line_start) {
    int kind = s->cls[s->buf[p]];
    if (kind == QUOTE && s->escape >= 0) {
        Py_ssize_t run = 0, q = p - 1;
        while (q >= line_start && s->buf[q] == s->escape) {
            run++;
            q--;
        }
        if (run & 1) return NONE;
    }
    return kind;
}

/* Bytes a key may hold (bit 0) and letters (bit 1): A-Z a-z 0-9 _ . @ - */
static uint8_t KEY_BYTES[256];

static void init_key_bytes(void) {
    for (int c = 0; c < 256; c++) {
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        int other = (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' || c == '-';
        KEY_BYTES[c] = (uint8_t)((letter || other) | (letter << 1));
    }
}

static inline int valid_key(const uint8_t *buf, Py_ssize_t a, Py_ssize_t b) {
    int all = 1, letter = 0;
    for (Py_ssize_t i = a; i < b; i++) {
        int bits = KEY_BYTES[buf[i]];
        all &= bits;
        letter |= bits;
    }
    return all & (letter >> 1);
}

typedef struct {
    int64_t *slots; /* code + 1, 0 = empty */
    Py_ssize_t mask;
    int64_t *kstart, *kend, *last_record;
    int64_t *after; /* after[c + 1]: the key that followed key c last time (-1: none yet) */
    Py_ssize_t previous; /* the code of the key found last (-1 at the start) */
    Py_ssize_t count, capacity;
} Keys;

static inline uint64_t hash_bytes(const uint8_t *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static inline int same_bytes(const uint8_t *x, const uint8_t *y, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (x[i] != y[i]) return 0;
    return 1;
}

static inline int is_key(const Keys *k, Py_ssize_t code, const uint8_t *buf, Py_ssize_t a,
                         Py_ssize_t n) {
    return k->kend[code] - k->kstart[code] == n && same_bytes(buf + k->kstart[code], buf + a, n);
}

/* The code of key buf[a:b], added if new; -1 when the table is full. Keys mostly come in
   the same order in every record, so the key that followed the previous one last time is
   tried before the hash table. */
static inline Py_ssize_t key_code(Keys *k, const uint8_t *buf, Py_ssize_t a, Py_ssize_t b) {
    Py_ssize_t n = b - a;
    Py_ssize_t guess = k->after[k->previous + 1];
    if (guess >= 0 && is_key(k, guess, buf, a, n)) return k->previous = guess;
    Py_ssize_t i = (Py_ssize_t)(hash_bytes(buf + a, n) & (uint64_t)k->mask), code;
    for (;;) {
        int64_t slot = k->slots[i];
        if (slot == 0) break;
        code = (Py_ssize_t)slot - 1;
        if (is_key(k, code, buf, a, n)) goto found;
        i = (i + 1) & k->mask;
    }
    if (k->count >= k->capacity) return -1;
    code = k->count++;
    k->kstart[code] = a;
    k->kend[code] = b;
    k->last_record[code] = -1;
    k->after[code + 1] = -1;
    k->slots[i] = code + 1;
found:
    k->after[k->previous + 1] = code;
    return k->previous = code;
}

typedef struct {
    Py_ssize_t lines;
    const int64_t *starts, *ends, *newlines, *record_of_line;
    int64_t *out_record, *out_code, *out_vstart, *out_vend;
    uint8_t *out_escaped, *line_flags;
    Py_ssize_t capacity;
} Job;

/* Scan every content line; returns pairs written, or -1 (key table full), -2 (no room). */
static Py_ssize_t run(const Scanner *s, const Job *j, Keys *keys) {
    Py_ssize_t n = 0;
    for (Py_ssize_t li = 0; li < j->lines; li++) {
        int64_t record = j->record_of_line[li];
        if (record < 0) continue;
        Py_ssize_t start = j->starts[li], end = j->ends[li], nl = j->newlines[li];
        int prev_kind = BOUND, quotes = 0;
        Py_ssize_t prev_pos = start - 1;
        for (Py_ssize_t p = start; p < nl; p++) {
            int kind = kind_at(s, p, start);
            if (kind == NONE) continue;
            if (kind == EQUALS && (quotes & 1) == 0 && prev_kind == BOUND && prev_pos + 1 < p) {
                Py_ssize_t ks = prev_pos + 1, vs = p + 1, ve = nl;
                int escaped = 0;
                /* the next event after `equals` (the newline at the latest) */
                Py_ssize_t q = p + 1;
                int next = BOUND;
                for (; q < nl; q++) {
                    next = kind_at(s, q, start);
                    if (next != NONE) break;
                }
                if (q >= nl) next = BOUND;
                /* where the walk goes on: a visit of the bytes skipped could not change its
                   state (plain bytes; or a quoted value, whose bytes make no pair) */
                Py_ssize_t skip_to = p, skip_pos = p;
                int skip_kind = EQUALS, skip_quotes = 0;
                if (next == QUOTE && q == p + 1) {
                    Py_ssize_t c = q + 1;
                    int esc = 0;
                    for (; c < nl; c++) {
                        int k = kind_at(s, c, start);
                        if (k == QUOTE) break;
                        if (k == ESCAPE) esc = 1;
                    }
                    vs = q + 1;
                    if (c < nl) {
                        ve = c;
                        escaped = esc;
                        skip_to = skip_pos = c; /* as if the quotes had been visited */
                        skip_kind = QUOTE;
                        skip_quotes = 2;
                    } else {
                        ve = end;
                        j->line_flags[li] |= 1;
                    }
                } else if (next == BOUND) {
                    ve = q;
                    skip_to = q - 1; /* plain bytes: no visit changes anything */
                } else {
                    for (q = q + 1; q < nl; q++)
                        if (kind_at(s, q, start) == BOUND) break;
                    ve = q;
                }
                if (ve > end) ve = end;
                if (valid_key(s->buf, ks, p)) {
                    j->line_flags[li] |= 2;
                    Py_ssize_t code = key_code(keys, s->buf, ks, p);
                    if (code < 0) return -1;
                    if (keys->last_record[code] != record) {
                        keys->last_record[code] = record;
                        if (n >= j->capacity) return -2;
                        j->out_record[n] = record;
                        j->out_code[n] = code;
                        j->out_vstart[n] = vs;
                        j->out_vend[n] = ve;
                        j->out_escaped[n] = (uint8_t)escaped;
                        n++;
                    }
                }
                if (skip_to > p) {
                    quotes += skip_quotes;
                    prev_kind = skip_kind;
                    prev_pos = skip_pos;
                    p = skip_to;
                    continue;
                }
            }
            if (kind == QUOTE) quotes++;
            prev_kind = kind;
            prev_pos = p;
        }
    }
    return n;
}

static int get(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize,
               Py_ssize_t min_items, const char *name) {
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : PyBUF_SIMPLE)) < 0) return -1;
    if (view->len % itemsize != 0 || view->len / itemsize < min_items) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, need %zd items of %zd bytes", name,
                     view->len, min_items, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *o[16];
    int quote, equals, escape;
    if (!PyArg_ParseTuple(args, "OOOOOOiiiOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                          &quote, &equals, &escape, &o[6], &o[7], &o[8], &o[9], &o[10], &o[11],
                          &o[12], &o[13]))
        return NULL;
    Py_buffer v[14];
    int got = 0;
    PyObject *result = NULL;
    /* data, starts, ends, newlines, record_of_line, kinds */
    if (get(o[0], &v[0], 0, 1, 0, "data") < 0) goto done;
    got = 1;
    Py_ssize_t lines = 0;
    if (get(o[1], &v[1], 0, 8, 0, "starts") < 0) goto done;
    got = 2;
    lines = v[1].len / 8;
    if (get(o[2], &v[2], 0, 8, lines, "ends") < 0) goto done;
    got = 3;
    if (get(o[3], &v[3], 0, 8, lines, "newlines") < 0) goto done;
    got = 4;
    if (get(o[4], &v[4], 0, 8, lines, "record_of_line") < 0) goto done;
    got = 5;
    if (get(o[5], &v[5], 0, 1, 256, "kinds") < 0) goto done;
    got = 6;
    if (get(o[6], &v[6], 1, 8, 0, "out_record") < 0) goto done;
    got = 7;
    Py_ssize_t capacity = v[6].len / 8;
    if (get(o[7], &v[7], 1, 8, capacity, "out_code") < 0) goto done;
    got = 8;
    if (get(o[8], &v[8], 1, 8, capacity, "out_vstart") < 0) goto done;
    got = 9;
    if (get(o[9], &v[9], 1, 8, capacity, "out_vend") < 0) goto done;
    got = 10;
    if (get(o[10], &v[10], 1, 1, capacity, "out_escaped") < 0) goto done;
    got = 11;
    if (get(o[11], &v[11], 1, 1, lines, "line_flags") < 0) goto done;
    got = 12;
    if (get(o[12], &v[12], 1, 8, 0, "key_start") < 0) goto done;
    got = 13;
    Py_ssize_t key_capacity = v[12].len / 8;
    if (get(o[13], &v[13], 1, 8, key_capacity, "key_end") < 0) goto done;
    got = 14;
    {
        const int64_t *starts = v[1].buf, *ends = v[2].buf, *nls = v[3].buf;
        for (Py_ssize_t i = 0; i < lines; i++) {
            if (starts[i] < 0 || starts[i] > ends[i] || ends[i] > nls[i] || nls[i] >= v[0].len) {
                PyErr_Format(PyExc_ValueError, "line %zd: bounds outside the data", i);
                goto done;
            }
        }
        Py_ssize_t table = 16;
        while (table < 2 * key_capacity) table <<= 1;
        Keys keys = {0};
        keys.slots = calloc((size_t)table, sizeof(int64_t));
        keys.last_record = malloc((size_t)(key_capacity ? key_capacity : 1) * sizeof(int64_t));
        keys.after = malloc((size_t)(key_capacity + 1) * sizeof(int64_t));
        if (keys.slots == NULL || keys.last_record == NULL || keys.after == NULL) {
            free(keys.slots);
            free(keys.last_record);
            free(keys.after);
            PyErr_NoMemory();
            goto done;
        }
        keys.mask = table - 1;
        keys.kstart = v[12].buf;
        keys.kend = v[13].buf;
        keys.capacity = key_capacity;
        keys.after[0] = -1;
        keys.previous = -1;
        Scanner s;
        s.buf = v[0].buf;
        s.escape = escape;
        const uint8_t *kinds = v[5].buf;
        for (int c = 0; c < 256; c++) s.cls[c] = kinds[c] ? BOUND : NONE;
        if (escape >= 0) s.cls[escape] = ESCAPE;
        s.cls[equals] = EQUALS;
        s.cls[quote] = QUOTE;
        Job j = {lines,    starts,   ends,      nls,       v[4].buf, v[6].buf,
                 v[7].buf, v[8].buf, v[9].buf, v[10].buf, v[11].buf, capacity};
        Py_ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = run(&s, &j, &keys);
        Py_END_ALLOW_THREADS
        Py_ssize_t count = keys.count;
        free(keys.slots);
        free(keys.last_record);
        free(keys.after);
        if (n == -2) {
            PyErr_SetString(PyExc_ValueError, "more pairs than the output arrays hold");
            goto done;
        }
        result = n == -1 ? Py_BuildValue("(nn)", (Py_ssize_t)0, (Py_ssize_t)-1)
                         : Py_BuildValue("(nn)", n, count);
    }
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Scan the key=value pairs of content lines (see pairs.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kvscan",
                                    "key=value pairs of log lines, compiled", -1, methods};

PyMODINIT_FUNC PyInit__kvscan(void) {
    init_key_bytes();
    return PyModule_Create(&module);
}
