/* The two inner loops of crm.batch.build_many, in C.

   Scoring builds about a million reason lines and a hundred thousand scorecards per full rescore
   at 100,000 people. In Python each instance costs a call to object.__new__ and each field a call
   to the slot descriptor's __set__ (about 70 ns each, a tenth of a rescore). Here the same two
   steps are a loop each: `new_instances` is object.__new__(cls) n times, `fill_slot` is
   descriptor.__set__(instance, value) for each instance and value. crm/batch.py does the same in
   Python where this module is not built; the unit tests run build_many both ways. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static PyObject *new_instances(PyObject *module, PyObject *args) {
    PyTypeObject *cls;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!n:new_instances", &PyType_Type, &cls, &n)) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must not be negative");
        return NULL;
    }
    PyObject *no_args = PyTuple_New(0), *instances = PyList_New(n);
    if (no_args == NULL || instances == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* object.__new__(cls): cls->tp_new is object's for a class without its own __new__ */
        PyObject *instance = PyBaseObject_Type.tp_new(cls, no_args, NULL);
        if (instance == NULL) goto fail;
        PyList_SET_ITEM(instances, i, instance);
    }
    Py_DECREF(no_args);
    return instances;
fail:
    Py_XDECREF(no_args);
    Py_XDECREF(instances);
    return NULL;
}

static PyObject *fill_slot(PyObject *module, PyObject *args) {
    PyObject *instances, *descriptor, *column;
    if (!PyArg_ParseTuple(args, "O!OO:fill_slot", &PyList_Type, &instances, &descriptor, &column)) return NULL;
    if (!Py_IS_TYPE(descriptor, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)descriptor)->d_member->type != T_OBJECT_EX ||
        (((PyMemberDescrObject *)descriptor)->d_member->flags & READONLY)) {
        PyErr_SetString(PyExc_TypeError, "fill_slot needs the descriptor of a writable slot");
        return NULL;
    }
    PyTypeObject *owner = PyDescr_TYPE(descriptor);
    Py_ssize_t offset = ((PyMemberDescrObject *)descriptor)->d_member->offset;
    PyObject *values = PyObject_GetIter(column);
    if (values == NULL) return NULL;
    /* The list's length is read each time: the column's iterator may run Python code. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(instances); i++) {
        PyObject *instance = Py_NewRef(PyList_GET_ITEM(instances, i));
        PyObject *value = NULL;
        if (!PyObject_TypeCheck(instance, owner)) {
            PyErr_Format(PyExc_TypeError, "instance %zd is a %.100s, not a %.100s", i, Py_TYPE(instance)->tp_name,
                         owner->tp_name);
        } else if ((value = PyIter_Next(values)) == NULL && !PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "the column ends after %zd values", i);
        }
        if (value == NULL) {
            Py_DECREF(instance);
            Py_DECREF(values);
            return NULL;
        }
        PyObject **slot = (PyObject **)((char *)instance + offset);
        PyObject *old = *slot;
        *slot = value; /* the reference PyIter_Next returned */
        Py_XDECREF(old);
        Py_DECREF(instance);
    }
    Py_DECREF(values);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"new_instances", new_instances, METH_VARARGS, "new_instances(cls, n): [object.__new__(cls) for _ in range(n)]"},
    {"fill_slot", fill_slot, METH_VARARGS,
     "fill_slot(instances, descriptor, column): descriptor.__set__(instance, value) for each pair, in order;\n"
     "a ValueError when the column has fewer values than there are instances."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_batch", "The inner loops of crm.batch.build_many.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__batch(void) { return PyModule_Create(&module); }
