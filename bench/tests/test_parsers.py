"""The readers of the peers' output and of the benchmark's own measurements, on output
captured from the real tools (NetHogs 0.8.7, bandwhich 0.23.1, OpenSnitch 1.5.8)."""
import unittest

from picobench.netlab import wire_delta
from picobench.observers import bandwhich, nethogs, opensnitch
from picobench.observers.refreshes import growth_in_window, max_totals, split_refreshes
from picobench.sections import storage
from picobench.stats import median, percentile, spread

NETHOGS = """Adding local address: 10.251.0.1

Refreshing:
unknown TCP/0/0\t74\t54
/tmp/w/pb-tcpup-1/6073/0\t1000\t20

Refreshing:
/tmp/w/pb-tcpup-1/6073/0\t302846\t302846
unknown TCP/0/0\t74\t54
unknown UDP/0/0\t0\t0
Unknown connection: 10.251.0.1:60338-10.251.0.2:5002

Refreshing:
unknown TCP/0/0\t500\t54
/tmp/w/pb-burst-1/7001/0\t10\t20
/tmp/w/pb-burst-1/7002/0\t30\t40
"""

BANDWHICH = """Refreshing:
process: <1795572864> "pb-udp-1" up/down Bps: 172158/622 connections: 0
process: <1795572864> "<UNKNOWN>" up/down Bps: 28216/120242 connections: 1

Refreshing:
process: <1795572865> "<UNKNOWN>" up/down Bps: 42324/180363 connections: 1
process: <1795572865> "pb-udp-1" up/down Bps: 212286/750 connections: 0
"""

OPENSNITCH = (
    "\x1b[2m[2026-11-25 02:15:25]\x1b[0m \x1b[2m\x1b[30m\x1b[100m DBG \x1b[0m [0] PID found 9558 [948965]\n"
    "\x1b[2m[2026-11-25 02:15:25]\x1b[0m \x1b[2m\x1b[30m\x1b[100m DBG \x1b[0m \x1b[1m\x1b[32m✔\x1b[0m\x1b[0m "
    "\x1b[1m/tmp/xexp/pb-exp1\x1b[0m -> \x1b[1m10.250.0.2\x1b[0m:5001 (\x1b[2m000-allow-all\x1b[0m)\n"
    "\x1b[2m[2026-11-25 02:15:25]\x1b[0m \x1b[2m\x1b[30m\x1b[100m DBG \x1b[0m <== no inodes found, applying default action.\n"
    "\x1b[2m[2026-11-25 02:15:25]\x1b[0m \x1b[2m\x1b[30m\x1b[100m DBG \x1b[0m \x1b[1m\x1b[32m✔\x1b[0m\x1b[0m "
    "\x1b[1m\x1b[0m -> \x1b[1m10.250.0.2\x1b[0m:5003 (\x1b[2m000-allow-all\x1b[0m)\n"
)

BENCH_HISTORY_OUT = """database /tmp/h.db (5 MB), timings in ms over 2 runs each, page cache warm
open + first view: p50 1.3  p95 4.8
every view and window (560 queries): p50 1.4  p95 17.1  max 100.7; over 200 ms at p95: none
filtered (raw rows), busiest executable Text("x"):
filtered: p50 3.0  p95 21.0  max 40.5
"""
BENCH_HISTORY_ERR = "generating 20000 rows over 1 days into /tmp/h.db\ngenerated in 2 s (9500 rows/s)\n"


class NetHogsOutput(unittest.TestCase):
    def test_rows_and_programs_with_slashes(self):
        self.assertEqual(nethogs.parse_row("/tmp/w/pb-x/6073/0\t302846\t302846"), ("/tmp/w/pb-x/6073/0", 302846, 302846))
        self.assertEqual(nethogs.program_of("/tmp/w/pb-x/6073/0"), "/tmp/w/pb-x")
        self.assertIsNone(nethogs.parse_row("Unknown connection: 10.251.0.1:60338-10.251.0.2:5002"))

    def test_cumulative_totals_take_the_largest_and_sum_pids(self):
        rs = split_refreshes(NETHOGS, nethogs.parse_row)
        self.assertEqual(len(rs), 3)
        mine = max_totals(rs, lambda k: nethogs.program_of(k) == "/tmp/w/pb-tcpup-1")
        self.assertEqual(mine, {"/tmp/w/pb-tcpup-1/6073/0": (302846, 302846)})
        burst = max_totals(rs, lambda k: nethogs.program_of(k) == "/tmp/w/pb-burst-1")
        self.assertEqual(sum(s for s, _ in burst.values()), 40)

    def test_growth_of_unknown_traffic_within_a_window(self):
        rs = split_refreshes(NETHOGS, nethogs.parse_row)
        # A window covering only the last refresh: unknown TCP grew 500-74 sent, 0 received.
        start = rs[1].end
        end = rs[2].end
        self.assertEqual(growth_in_window(rs, (start, end), lambda k: k.startswith("unknown ")), 426)
        self.assertEqual(growth_in_window(rs, (0, end), lambda k: k.startswith("unknown ")), 554)


class BandwhichOutput(unittest.TestCase):
    def test_rows(self):
        rs = split_refreshes(BANDWHICH, bandwhich.parse_row)
        self.assertEqual(max_totals(rs, lambda k: k == "pb-udp-1"), {"pb-udp-1": (212286, 750)})
        self.assertEqual(max_totals(rs, lambda k: k == bandwhich.UNKNOWN), {"<UNKNOWN>": (42324, 180363)})


class OpenSnitchLog(unittest.TestCase):
    def test_verdicts_with_and_without_a_path(self):
        v = opensnitch.verdicts(OPENSNITCH)
        self.assertEqual([(p, a, port) for _, p, a, port in v], [("/tmp/xexp/pb-exp1", "10.250.0.2", 5001),
                                                                 ("", "10.250.0.2", 5003)])
        self.assertLess(v[0][0], v[1][0])


class Measurements(unittest.TestCase):
    def test_wire_delta_on_a_veth_and_on_loopback(self):
        before = {"rx_bytes": 0, "rx_packets": 0, "tx_bytes": 0, "tx_packets": 0}
        after = {"rx_bytes": 1514 * 10, "rx_packets": 10, "tx_bytes": 66 * 5, "tx_packets": 5}
        w = wire_delta(before, after)
        self.assertEqual(w["frames"]["up"], 15140)
        self.assertEqual(w["ip"]["up"], 15000)
        self.assertEqual(w["ip"]["down"], 52 * 5)
        lo = wire_delta(before, after, loopback=True)
        self.assertIsNone(lo["frames"]["up"])
        self.assertEqual(lo["frames"]["total"], 330)

    def test_tui_benchmark_output(self):
        r = storage.parse(BENCH_HISTORY_OUT, BENCH_HISTORY_ERR)
        self.assertEqual(r["insert_rows_per_s"], 9500)
        self.assertEqual(r["views_ms"], {"queries": 560, "p50": 1.4, "p95": 17.1, "max": 100.7})
        self.assertEqual(r["open_ms"]["p95"], 4.8)
        self.assertEqual(r["filtered_ms"]["max"], 40.5)

    def test_stats(self):
        self.assertEqual(median([3, 1, 2]), 2)
        self.assertEqual(median([1, 2, 3, 4]), 2.5)
        self.assertIsNone(median([None]))
        self.assertEqual(spread([2, None, 5, 1]), (1, 5))
        self.assertEqual(percentile(list(range(101)), 0.99), 99)


if __name__ == "__main__":
    unittest.main()
