#!/usr/bin/env python3
"""INVITE -> 200 times of SIP calls over loopback, from the kernel's receive timestamps.

sipp's own response times (-trace_rtt) come from a clock that ticks every 4 ms on this kernel
(CLOCK_MONOTONIC_COARSE, HZ=250), so loadtest/sip.sh also runs this capture: a packet socket on
`lo` (root or CAP_NET_RAW) with a kernel filter for UDP to or from the SIP port, which records
when the first INVITE of each Call-ID reached the server's socket and when the first 200 to that
INVITE reached the caller's. On SIGTERM or SIGINT it writes one line per answered call to OUT:
the time in milliseconds (microsecond precision), and exits.

    sip_rtt.py SIP_PORT OUT
"""

import signal
import socket
import struct
import sys

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
SO_ATTACH_FILTER = 26
PACKET_HOST = 0


def udp_port_filter(port):
    """Classic BPF: IPv4, UDP, unfragmented, source or destination port `port`, to this host."""
    prog = [
        (0x30, 0, 0, 0xFFFFF004),  # ldb pkttype (SKF_AD_OFF + SKF_AD_PKTTYPE)
        (0x15, 0, 12, PACKET_HOST),  # jeq HOST, else drop
        (0x28, 0, 0, 12),  # ldh ethertype
        (0x15, 0, 10, 0x0800),  # jeq IPv4
        (0x30, 0, 0, 23),  # ldb protocol
        (0x15, 0, 8, 17),  # jeq UDP
        (0x28, 0, 0, 20),  # ldh flags/fragment offset
        (0x45, 6, 0, 0x1FFF),  # jset fragment: drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf)
        (0x48, 0, 0, 14),  # ldh [x+14] source port
        (0x15, 2, 0, port),  # jeq port: accept
        (0x48, 0, 0, 16),  # ldh [x+16] destination port
        (0x15, 0, 1, port),  # jeq port: accept, else drop
        (0x06, 0, 0, 0x40000),  # ret accept
        (0x06, 0, 0, 0),  # ret drop
    ]
    code = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    import ctypes

    buf = ctypes.create_string_buffer(code)
    return struct.pack("HL", len(prog), ctypes.addressof(buf)), buf


def header(payload, name):
    for line in payload.split(b"\r\n"):
        if line[: len(name) + 1].lower() == name + b":":
            return line[len(name) + 1 :].strip()
        if not line:
            break
    return None


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind(("lo", 0))
    fprog, _keep = udp_port_filter(port)
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    invites, answers = {}, {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    sock.settimeout(0.2)
    while not stop:
        try:
            data, anc, _, _ = sock.recvmsg(65536, 64)
        except (socket.timeout, InterruptedError):
            continue
        at = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                at = sec + nsec / 1e9
        if at is None:
            continue
        ihl = (data[14] & 0x0F) * 4
        payload = data[14 + ihl + 8 :]
        call_id = header(payload, b"call-id") or header(payload, b"i")
        if call_id is None:
            continue
        if payload.startswith(b"INVITE "):
            invites.setdefault(call_id, at)
        elif payload.startswith(b"SIP/2.0 200") and b"INVITE" in (header(payload, b"cseq") or b""):
            answers.setdefault(call_id, at)
    with open(out, "w") as f:
        for call_id, sent in invites.items():
            if call_id in answers:
                f.write(f"{(answers[call_id] - sent) * 1000:.3f}\n")


if __name__ == "__main__":
    main()
