"""Delay and jitter on a lab router's forwarded packets, in place of tc netem.

The kernels the lab runs on (Firecracker guests) have no sch_netem, but they have NFQUEUE: iptables
hands each forwarded packet to this process (metadata only, the packet stays in the kernel), which
gives the verdict ACCEPT once the packet's delay is over. Each queue is one direction of the home's
link. A packet waits `delay ± jitter` (uniform), but never leaves before the one ahead of it in its
queue: jitter as a real link's queue makes it, without reordering, which would make TCP (the relay's
WebSocket) retransmit for nothing. Loss stays with iptables' statistic match (lab/nat.ts).

Runs inside the router's namespace (`ip netns exec`), speaks nfnetlink_queue directly (the standard
library has no binding), prints `ready` once bound and, on SIGTERM, one `stats` line of JSON.
Usage: link-delay.py --queue 1 --queue 2 --delay-ms 50 --jitter-ms 10
"""
import argparse
import errno
import heapq
import json
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
# Packets a queue holds at most (netem's default limit is 1000); past it the kernel drops them.
QUEUE_MAXLEN = 4096


def attr(kind, payload):
    """One netlink attribute, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack('=HH', length, kind) + payload + b'\0' * ((4 - length % 4) % 4)


def message(msg_type, queue, attrs):
    """A nfnetlink_queue request: netlink header, nfgenmsg (AF_UNSPEC, version 0, queue in big endian), attributes."""
    body = struct.pack('=BBH', socket.AF_UNSPEC, 0, socket.htons(queue)) + b''.join(attrs)
    return struct.pack('=IHHII', 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, NLM_F_REQUEST, 0, 0) + body


def parse_attrs(data):
    out = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from('=HH', data, offset)
        if length < 4:
            break
        out[kind & 0x7fff] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--queue', type=int, action='append', required=True)
    parser.add_argument('--delay-ms', type=float, required=True)
    parser.add_argument('--jitter-ms', type=float, default=0)
    args = parser.parse_args()

    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((0, 0))
    for queue in args.queue:
        sock.send(message(NFQNL_MSG_CONFIG, queue, [attr(NFQA_CFG_CMD, struct.pack('!BBH', NFQNL_CFG_CMD_BIND, 0, 0))]))
        sock.send(message(NFQNL_MSG_CONFIG, queue, [attr(NFQA_CFG_PARAMS, struct.pack('!IB', 0, NFQNL_COPY_META))]))
        sock.send(message(NFQNL_MSG_CONFIG, queue, [attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack('!I', QUEUE_MAXLEN))]))
    # The kernel acknowledges errors only (no NLM_F_ACK): a refused bind shows up here.
    readable, _, _ = select.select([sock], [], [], 0.2)
    if readable:
        data = sock.recv(65536)
        _, msg_type, _, _, _ = struct.unpack_from('=IHHII', data)
        if msg_type == NLMSG_ERROR and struct.unpack_from('=i', data, 16)[0] != 0:
            print('nfqueue bind failed', file=sys.stderr, flush=True)
            sys.exit(1)

    delay = args.delay_ms / 1000
    jitter = args.jitter_ms / 1000
    # Per queue: the release time of its last packet (FIFO), and how many packets and seconds of delay it applied.
    last_release = {q: 0.0 for q in args.queue}
    stats = {q: {'packets': 0, 'delaySum': 0.0} for q in args.queue}
    due = []  # heap of (release time, queue, packet id)
    running = True

    def stop(_signum, _frame):
        nonlocal running
        running = False
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print('ready', flush=True)

    while running:
        now = time.monotonic()
        # Release what is due: one batch verdict per queue accepts every packet up to the newest due id.
        release = {}
        while due and due[0][0] <= now:
            _, queue, packet_id = heapq.heappop(due)
            release[queue] = max(release.get(queue, 0), packet_id)
        for queue, packet_id in release.items():
            sock.send(message(NFQNL_MSG_VERDICT_BATCH, queue, [attr(NFQA_VERDICT_HDR, struct.pack('!II', NF_ACCEPT, packet_id))]))
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else 0.5
        try:
            readable, _, _ = select.select([sock], [], [], timeout)
        except InterruptedError:
            continue
        if not readable:
            continue
        try:
            data = sock.recv(1 << 16)
        except OSError as err:
            # ENOBUFS: the kernel dropped notifications; their packets go with the next batch verdict.
            if err.errno == errno.ENOBUFS:
                continue
            raise
        arrived = time.monotonic()
        offset = 0
        while offset + 16 <= len(data):
            length, msg_type, _, _, _ = struct.unpack_from('=IHHII', data, offset)
            if length < 16:
                break
            if msg_type == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                queue = socket.ntohs(struct.unpack_from('=H', data, offset + 18)[0])
                header = parse_attrs(data[offset + 20:offset + length]).get(NFQA_PACKET_HDR)
                if header is not None and queue in last_release:
                    packet_id = struct.unpack_from('!I', header)[0]
                    wait = max(0.0, delay + random.uniform(-jitter, jitter))
                    at = max(arrived + wait, last_release[queue])
                    last_release[queue] = at
                    heapq.heappush(due, (at, queue, packet_id))
                    stats[queue]['packets'] += 1
                    stats[queue]['delaySum'] += at - arrived
            offset += (length + 3) & ~3

    # Whatever is still held goes on its way: the lab is closing this link.
    for queue in args.queue:
        pending = [packet_id for _, q, packet_id in due if q == queue]
        if pending:
            sock.send(message(NFQNL_MSG_VERDICT_BATCH, queue, [attr(NFQA_VERDICT_HDR, struct.pack('!II', NF_ACCEPT, max(pending)))]))
    print('stats ' + json.dumps({str(q): {'packets': s['packets'], 'meanDelayMs': round(1000 * s['delaySum'] / s['packets'], 1) if s['packets'] else None} for q, s in stats.items()}), flush=True)


if __name__ == '__main__':
    main()
