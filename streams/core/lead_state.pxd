# C types for the compiled module (the .py says why); nothing else here

# every stage change is packed twice (outbox and recent changes): its fields read with C calls
cpdef bytes _pack(dict change)
cpdef bytes _brief(dict change)
