#!/usr/bin/env python3
"""Sizes of the page-cache folios that hold a file's data.

    python3 scripts/folio-sizes.py FILE...      (root: reads /proc/kpageflags)

Maps each FILE read-only, touches every page (so its data is in the page
cache), and reports how many pages sit in order-0 folios and how many large
folios of which size hold the rest, from the compound-page flags the kernel
gives for each physical page.

Why it is here: page-cache re-reads through a FUSE mount run at about a
third of the plain directory's speed on kernel 6.18. To see why, take two
copies of a file, `sync; echo 3 > /proc/sys/vm/drop_caches`, cat one from
the backing directory and the other through the mount, then run this on
both: ext4 holds its copy in folios of 16 KiB to 1 MiB, FUSE holds every
page of its copy in a 4 KiB folio, so each copy to a reader costs a
page-cache lookup per 4 KiB. The kernel decides that per filesystem;
nothing a FUSE daemon sends changes it on that kernel (large folios for
FUSE are a later kernel change).
"""
import collections
import ctypes
import os
import struct
import sys

PAGE = os.sysconf('SC_PAGE_SIZE')
KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16
PM_PRESENT = 1 << 63
PM_PFN_MASK = (1 << 55) - 1

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
PROT_READ, MAP_SHARED = 1, 1


def folio_sizes(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pages = size // PAGE
        if pages == 0:
            return 0, 0, collections.Counter()
        addr = libc.mmap(None, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), 'mmap failed', path)
        try:
            for i in range(pages):
                ctypes.c_ubyte.from_address(addr + i * PAGE).value  # fault it in
            single, large, run = 0, collections.Counter(), 0
            with open('/proc/self/pagemap', 'rb') as pagemap, open('/proc/kpageflags', 'rb') as kpageflags:
                for i in range(pages):
                    pagemap.seek((addr // PAGE + i) * 8)
                    entry = struct.unpack('<Q', pagemap.read(8))[0]
                    if not entry & PM_PRESENT:
                        continue
                    kpageflags.seek((entry & PM_PFN_MASK) * 8)
                    flags = struct.unpack('<Q', kpageflags.read(8))[0]
                    if flags & KPF_COMPOUND_TAIL:
                        run += 1
                        continue
                    if run:
                        large[run] += 1
                    run = 1 if flags & KPF_COMPOUND_HEAD else 0
                    if not run:
                        single += 1
            if run:
                large[run] += 1
            return pages, single, large
        finally:
            libc.munmap(addr, pages * PAGE)
    finally:
        os.close(fd)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    for path in sys.argv[1:]:
        pages, single, large = folio_sizes(path)
        sizes = ', '.join(f'{n} x {p * PAGE // 1024} KiB' for p, n in sorted(large.items())) or 'none'
        print(f'{path}: {pages} pages; in order-0 folios: {single}; large folios: {sizes}')


if __name__ == '__main__':
    main()
