"""Storage and integrity: canonical objects, keys, signatures, journals, index, verify."""
