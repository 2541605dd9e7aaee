/* Scoring's first pass over every activity, and times back to datetimes, in C.

   For each activity: the position of its person (-1 when unknown), its time in POSIX seconds, and
   the position where its classification key (kind, url, form_name, campaign_name, asset_id) was
   first seen. `scoring.intent.read_activities` does the same in Python and is used when this module
   is not built; a unit test holds the two to the same output.

   At two million activities the Python loop costs seconds: a call through `map` per field, a float
   and two temporary objects per timestamp. Here activities of the exact record class are read
   straight from their slots, and times in UTC are computed from the datetime's fields without
   creating objects. Anything else (another class, another time zone) goes the generic way, with
   the same results.

   `utc_datetimes` is `datetime.fromtimestamp(s, UTC)` for an array of seconds (the time of each
   reason line's latest activity, ~800,000 at that scale), following CPython's own steps. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <structmember.h>

#define N_FIELDS 7 /* person_id, occurred_at, then the five fields of the key */
static const char *FIELD_NAMES[N_FIELDS] = {
    "person_id", "occurred_at", "kind", "url", "form_name", "campaign_name", "asset_id"};
static PyObject *field_names[N_FIELDS];

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* `when.timestamp()`. A UTC datetime within 2**53 microseconds of the epoch (years 1685 to 2255)
   is computed here: microseconds and their quotient by 10**6 are exact and correctly rounded, as
   in CPython. Anything else calls the method. */
static int timestamp_of(PyObject *when, double *out) {
    if (PyDateTime_CheckExact(when) && ((PyDateTime_DateTime *)when)->hastzinfo &&
        ((PyDateTime_DateTime *)when)->tzinfo == PyDateTime_TimeZone_UTC) {
        int64_t days = days_from_civil(PyDateTime_GET_YEAR(when), PyDateTime_GET_MONTH(when),
                                       PyDateTime_GET_DAY(when));
        int64_t us = ((days * 86400 + PyDateTime_DATE_GET_HOUR(when) * 3600 +
                       PyDateTime_DATE_GET_MINUTE(when) * 60 + PyDateTime_DATE_GET_SECOND(when)) *
                      1000000) + PyDateTime_DATE_GET_MICROSECOND(when);
        if (us > -(INT64_C(1) << 53) && us < (INT64_C(1) << 53)) {
            *out = (double)us / 1e6;
            return 0;
        }
    }
    PyObject *seconds = PyObject_CallMethod(when, "timestamp", NULL);
    if (seconds == NULL) return -1;
    *out = PyFloat_AsDouble(seconds);
    Py_DECREF(seconds);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* The slot offset of each field on `cls`; all zero unless `cls` keeps every field in a plain slot. */
static void slot_offsets(PyObject *cls, Py_ssize_t offsets[N_FIELDS]) {
    for (int j = 0; j < N_FIELDS; j++) {
        PyObject *descr = PyObject_GetAttr(cls, field_names[j]);
        offsets[j] = 0;
        if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
            ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX)
            offsets[j] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_XDECREF(descr);
        PyErr_Clear();
        if (offsets[j] == 0) {
            memset(offsets, 0, N_FIELDS * sizeof(Py_ssize_t));
            return;
        }
    }
}

/* Fields `first` to `last - 1` of one activity, as new references: read from its slots when it is
   of the exact record class, else by attribute access. */
static int read_fields(PyObject *activity, PyTypeObject *cls, const Py_ssize_t offsets[N_FIELDS],
                       int first, int last, PyObject *fields[N_FIELDS]) {
    int slots = offsets[0] && Py_TYPE(activity) == cls;
    for (int j = first; j < last; j++) {
        if (!slots) {
            fields[j] = PyObject_GetAttr(activity, field_names[j]);
        } else if ((fields[j] = Py_XNewRef(*(PyObject **)((char *)activity + offsets[j]))) == NULL) {
            PyErr_Format(PyExc_AttributeError, "activity has no %s", FIELD_NAMES[j]);
        }
        if (fields[j] == NULL) {
            for (int i = first; i < j; i++) Py_DECREF(fields[i]);
            return -1;
        }
    }
    return 0;
}

static void release_fields(PyObject *fields[N_FIELDS], int first, int last) {
    for (int j = first; j < last; j++) Py_DECREF(fields[j]);
}

/* Activity `i` as a new reference, or NULL with an error when the sequence has shrunk meanwhile. */
static PyObject *next_activity(PyObject *items_owner, Py_ssize_t i) {
    if (i < PySequence_Fast_GET_SIZE(items_owner)) return Py_NewRef(PySequence_Fast_GET_ITEM(items_owner, i));
    PyErr_SetString(PyExc_RuntimeError, "the activities changed size while they were read");
    return NULL;
}

static int writable(Py_buffer *view, Py_ssize_t n, const char *name) {
    if (view->itemsize == 8 && view->len == n * 8 && PyBuffer_IsContiguous(view, 'C')) return 0;
    PyErr_Format(PyExc_ValueError, "%s must be a contiguous buffer of %zd 8-byte items", name, n);
    return -1;
}

static PyObject *read_activities(PyObject *module, PyObject *args) {
    PyObject *activities, *cls, *person_index, *first_seen;
    Py_buffer person = {0}, when = {0}, key = {0};
    if (!PyArg_ParseTuple(args, "OOO!O!w*w*w*:read_activities", &activities, &cls, &PyDict_Type, &person_index,
                          &PyDict_Type, &first_seen, &person, &when, &key))
        return NULL;
    PyObject *result = NULL, *activity = NULL;
    PyObject *items_owner = PySequence_Fast(activities, "activities must be a sequence");
    if (items_owner == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items_owner);
    if (writable(&person, n, "person") || writable(&when, n, "when") || writable(&key, n, "key")) goto done;
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "cls must be the activity record class");
        goto done;
    }
    Py_ssize_t offsets[N_FIELDS];
    slot_offsets(cls, offsets);
    int64_t *person_out = person.buf, *key_out = key.buf;
    double *when_out = when.buf;
    PyObject *fields[N_FIELDS];

    /* Person and time first, key second: two short loops keep fewer cache lines in flight. All
       that is read is held while it is used, and the sequence is looked at again for each activity,
       since a lookup or an attribute of another class may run Python code. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((activity = next_activity(items_owner, i)) == NULL ||
            read_fields(activity, (PyTypeObject *)cls, offsets, 0, 2, fields))
            goto done;
        Py_CLEAR(activity);
        PyObject *found = PyDict_GetItemWithError(person_index, fields[0]);
        person_out[i] = found ? PyLong_AsLongLong(found) : -1;
        int failed = (person_out[i] == -1 && PyErr_Occurred()) || timestamp_of(fields[1], &when_out[i]);
        release_fields(fields, 0, 2);
        if (failed) goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((activity = next_activity(items_owner, i)) == NULL ||
            read_fields(activity, (PyTypeObject *)cls, offsets, 2, N_FIELDS, fields))
            goto done;
        Py_CLEAR(activity);
        PyObject *k = PyTuple_New(N_FIELDS - 2);
        if (k != NULL)
            for (int j = 2; j < N_FIELDS; j++) PyTuple_SET_ITEM(k, j - 2, fields[j]); /* steals */
        else
            release_fields(fields, 2, N_FIELDS);
        if (k == NULL) goto done;
        PyObject *seen = PyDict_GetItemWithError(first_seen, k);
        if (seen != NULL) {
            key_out[i] = PyLong_AsLongLong(seen);
        } else if (!PyErr_Occurred()) {
            PyObject *position = PyLong_FromSsize_t(i);
            if (position == NULL || PyDict_SetItem(first_seen, k, position) < 0) {
                Py_XDECREF(position);
                Py_DECREF(k);
                goto done;
            }
            Py_DECREF(position);
            key_out[i] = i;
        }
        Py_DECREF(k);
        if (PyErr_Occurred()) goto done;
    }
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(activity);
    Py_XDECREF(items_owner);
    PyBuffer_Release(&person);
    PyBuffer_Release(&when);
    PyBuffer_Release(&key);
    return result;
}

/* Hinnant's civil_from_days: the proleptic Gregorian date `days` after 1970-01-01. */
static void civil_from_days(int64_t days, int *year, int *month, int *day) {
    days += 719468;
    const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const unsigned doe = (unsigned)(days - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

/* CPython's _PyTime_RoundHalfEven. */
static double round_half_even(double x) {
    double rounded = round(x);
    if (fabs(x - rounded) == 0.5) rounded = 2.0 * round(x / 2.0);
    return rounded;
}

static PyObject *utc_datetimes(PyObject *module, PyObject *args) {
    PyObject *array, *result = NULL, *fromtimestamp = NULL;
    Py_buffer view = {0};
    if (!PyArg_ParseTuple(args, "O:utc_datetimes", &array)) return NULL;
    if (PyObject_GetBuffer(array, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (view.itemsize != 8 || view.format == NULL || strcmp(view.format, "d") != 0) {
        PyErr_SetString(PyExc_ValueError, "seconds must be a contiguous float64 buffer");
        goto done;
    }
    Py_ssize_t n = view.len / 8;
    const double *seconds = view.buf;
    if ((result = PyList_New(n)) == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *when = NULL;
        /* as _PyTime_DoubleToDenominator: whole seconds and microseconds rounded half to even */
        double whole, us = round_half_even(modf(seconds[i], &whole) * 1e6);
        if (us >= 1e6) {
            us -= 1e6;
            whole += 1.0;
        } else if (us < 0) {
            us += 1e6;
            whole -= 1.0;
        }
        /* years 1 to 9999 here; anything else (and NaN) goes to the method for its exact error */
        if (whole >= -62135596800.0 && whole <= 253402300799.0) {
            int64_t t = (int64_t)whole, days = (t >= 0 ? t : t - 86399) / 86400, rest = t - days * 86400;
            int year, month, day;
            civil_from_days(days, &year, &month, &day);
            when = PyDateTimeAPI->DateTime_FromDateAndTime(year, month, day, (int)(rest / 3600),
                                                           (int)(rest % 3600 / 60), (int)(rest % 60), (int)us,
                                                           PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
        } else {
            if (fromtimestamp == NULL &&
                (fromtimestamp = PyObject_GetAttrString((PyObject *)PyDateTimeAPI->DateTimeType, "fromtimestamp")) == NULL)
                goto fail;
            when = PyObject_CallFunction(fromtimestamp, "dO", seconds[i], PyDateTime_TimeZone_UTC);
        }
        if (when == NULL) goto fail;
        PyList_SET_ITEM(result, i, when);
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    Py_XDECREF(fromtimestamp);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"read_activities", read_activities, METH_VARARGS,
     "read_activities(activities, cls, person_index, first_seen, person, when, key)\n\n"
     "Fill `person`, `when` and `key` (int64, float64, int64 buffers of len(activities)) as\n"
     "scoring.intent.read_activities does; `first_seen` gets each new key's first position."},
    {"utc_datetimes", utc_datetimes, METH_VARARGS,
     "utc_datetimes(seconds): [datetime.fromtimestamp(s, UTC) for s in seconds], seconds a float64 buffer"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_columns", "Scoring's first pass over activities.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__columns(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    for (int j = 0; j < N_FIELDS; j++)
        if ((field_names[j] = PyUnicode_InternFromString(FIELD_NAMES[j])) == NULL) return NULL;
    return PyModule_Create(&module);
}
