# C types for the compiled module (the .py says why); nothing else here
import cython

# every consumed record is validated: its dozen field reads are C calls on a dict
@cython.locals(attributes=dict)
cpdef validate(dict record, now_ms)
