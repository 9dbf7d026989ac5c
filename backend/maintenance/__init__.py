"""Operations: the clock seam, disk-space guard, data-dir checks, ``doctor`` and ``move-data``."""
