// PIL-exact image resampling (being written).
