// Color kernels (being written).
