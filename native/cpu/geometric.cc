// Geometric kernels (being written).
