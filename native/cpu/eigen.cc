// Symmetric eigensolver (being written).
