"""Writes a Megatron mmap indexed dataset with numpy, independently of llmc/dataset.h (seed_spec §5.3 layout).

Usage: /usr/bin/python3 dev/test/make_numpy_dataset.py PREFIX {uint16|int32} ITEMS_PER_DOC

Item i has size 1 + (i * 7919) % 37 and token k of item i is (i * 131 + k * 17) % 50000; documents group
ITEMS_PER_DOC consecutive items (the last document may hold fewer), so doc_idx = 0, g, 2g, ..., n.
test_dataset.cpp recomputes the same formulas and checks that the C++ reader sees exactly this data.
"""
import struct
import sys

import numpy as np

N_ITEMS = 101


def main():
    prefix, dtype_name, group = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dtype, code = {"uint16": (np.uint16, 8), "int32": (np.int32, 4)}[dtype_name]
    sizes = np.array([1 + (i * 7919) % 37 for i in range(N_ITEMS)], dtype=np.int32)
    items = [np.array([(i * 131 + k * 17) % 50000 for k in range(sizes[i])], dtype=dtype) for i in range(N_ITEMS)]
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(N_ITEMS, dtype=np.int64)
    pointers[1:] = np.cumsum(sizes.astype(np.int64) * itemsize)[:-1]
    doc_idx = np.array(list(range(0, N_ITEMS, group)) + [N_ITEMS], dtype=np.int64)
    with open(prefix + ".bin", "wb") as f:
        for item in items:
            f.write(item.tobytes(order="C"))
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00")
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", code))
        f.write(struct.pack("<Q", N_ITEMS))
        f.write(struct.pack("<Q", len(doc_idx)))
        f.write(sizes.astype("<i4").tobytes(order="C"))
        f.write(pointers.astype("<i8").tobytes(order="C"))
        f.write(doc_idx.astype("<i8").tobytes(order="C"))


if __name__ == "__main__":
    main()
