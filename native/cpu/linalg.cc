// Linalg kernels (being written).
