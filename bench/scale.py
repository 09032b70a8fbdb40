"""Scale scenario helper for bench/run.sh: create a topic with many partitions, then hold many
idle client connections open (each has completed an ApiVersions exchange, as a real client
does) until stdin closes. Prints `ready` once everything is in place.

    python bench/scale.py 127.0.0.1:19292 scale 10000 1000
"""
import socket
import struct
import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic


def api_versions(sock, correlation):
    client = b"bench-idle"
    # Request header v1: api key 18, version 0, correlation id, client id.
    body = struct.pack(">hhih", 18, 0, correlation, len(client)) + client
    sock.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    recv_exact(sock, size)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("broker closed the connection")
        buf += chunk
    return buf


def main():
    bootstrap, topic, partitions, conns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    host, port = bootstrap.rsplit(":", 1)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    started = time.time()
    fut = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                              operation_timeout=120, request_timeout=120)
    fut[topic].result()
    created = time.time() - started
    socks = []
    for i in range(conns):
        s = socket.create_connection((host, int(port)))
        api_versions(s, i)
        socks.append(s)
    print(f"ready: {partitions} partitions created in {created:.1f} s, {conns} idle connections",
          flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
