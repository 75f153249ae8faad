"""muxframes: yamux frames for the suite's hand-written carriers (27-mux,
28-reverse).  hdr() makes a 12-byte header; frames() yields each whole
frame a socket receives as (type, flags, stream, length, payload) until
the connection ends or times out."""
import struct


def hdr(t, f, i, n, v=0):
    return struct.pack(">BBHII", v, t, f, i, n)


def frames(s):
    buf = b""
    while True:
        try:
            b = s.recv(65536)
        except OSError:
            return
        if not b:
            return
        buf += b
        while len(buf) >= 12:
            _, t, f, i, n = struct.unpack(">BBHII", buf[:12])
            need = 12 + (n if t == 0 else 0)
            if len(buf) < need:
                break
            yield t, f, i, n, buf[12:need]
            buf = buf[need:]
