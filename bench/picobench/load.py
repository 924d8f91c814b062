"""Workloads on the lab host's loopback, shared by the overhead, capacity and footprint
sections: connect-and-close as fast as possible, request/response round trips, one
bulk transfer, and a steady rate of new connections spread over several client and
server pairs (one client process paces itself; a couple of them are needed past about
10,000 connections per second on a small machine)."""
import time
from dataclasses import dataclass

from .generator import Generator, finish_started
from .proc import CommandFailed

FOREVER = 10**9


@dataclass
class RateRun:
    requested: float
    seconds: float
    connections: int  # made by the clients (their own count)
    accepted: int  # answered by the servers (their own count)
    sent: int  # client payload bytes (each direction has the same per connection)
    received: int
    elapsed: float  # from the first client's start to the last client's end
    client: Generator
    server: Generator

    @property
    def achieved(self):
        return self.connections / self.elapsed if self.elapsed else 0.0


class Loopback:
    def __init__(self, traffic, workdir, prefix, tag):
        self.traffic = traffic
        self.workdir = workdir
        self.prefix = prefix
        self.tag = tag

    def gen(self, name):
        return Generator(self.traffic, self.workdir, f"{name}-{self.tag}"[:15])

    def connect_rate(self, seconds):
        """New connections per second, each connect, close, nothing sent."""
        server, client = self.gen("po-cs"), self.gen("po-cc")
        srv = server.serve(["tcp-server", "--accepts", FOREVER, "--send", 0], self.prefix)
        try:
            c = client.run(["tcp-client", "--to", f"127.0.0.1:{srv.port}", "--repeat", FOREVER,
                            "--for-ms", int(seconds * 1000)], self.prefix, timeout=seconds + 60)
        finally:
            srv.kill()
        return c["connections"] / c["elapsed_seconds"]

    def round_trips(self, count, size=64):
        """Round-trip times (µs) of `count` requests and answers on one connection."""
        server, client = self.gen("po-rs"), self.gen("po-rc")
        srv = server.serve(["rr-server", "--size", size], self.prefix)
        try:
            c = client.run(["rr-client", "--to", f"127.0.0.1:{srv.port}", "--count", count, "--size", size], self.prefix)
        finally:
            srv.finish(timeout=60)
        return c["round_trip_us"]

    def bulk(self, nbytes):
        """Bytes per second of one transfer of `nbytes` as fast as it goes."""
        server, client = self.gen("po-bs"), self.gen("po-bc")
        srv = server.serve(["tcp-server", "--send", 0], self.prefix)
        try:
            c = client.run(["tcp-client", "--to", f"127.0.0.1:{srv.port}", "--send", nbytes], self.prefix, timeout=300)
        finally:
            srv.finish(timeout=60)
        return nbytes / c["elapsed_seconds"]

    def rate(self, name, rate, seconds, pairs=None, send=100):
        """`rate` new connections per second for `seconds`, over `pairs` client/server
        pairs (one pair per 5,000/s by default), every connection sending and answering
        `send` bytes so both ends are flows with bytes."""
        pairs = pairs or max(1, min(8, int(rate // 5000) + 1))
        n = max(1, int(rate * seconds / pairs))
        server, client = self.gen(f"{name}s"), self.gen(f"{name}c")
        servers = [server.serve(["tcp-server", "--accepts", n, "--send", send], self.prefix) for _ in range(pairs)]
        started = time.monotonic()
        clients = [client.start(["tcp-client", "--to", f"127.0.0.1:{s.port}", "--send", send, "--repeat", n,
                                 "--rate", rate / pairs], self.prefix) for s in servers]
        reports, failures = [], []
        for p in clients:
            try:
                reports.append(finish_started(p, client.name, timeout=seconds * 3 + 60))
            except CommandFailed as e:
                failures.append(str(e))
        elapsed = time.monotonic() - started
        accepted = 0
        for s in servers:
            try:
                accepted += s.finish(timeout=30)["connections"]
            except CommandFailed:
                s.kill()
        if failures:
            raise CommandFailed(f"{len(failures)} of {pairs} load clients failed at {rate:g}/s: {failures[0]}")
        return RateRun(rate, seconds, sum(r["connections"] for r in reports), accepted,
                       sum(r["sent"] for r in reports), sum(r["received"] for r in reports),
                       elapsed, client, server)
