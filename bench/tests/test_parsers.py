"""The readers of the peers' output and of the benchmark's own measurements, on output
captured from the real tools (NetHogs 0.8.7, bandwhich 0.23.1, OpenSnitch 1.5.8); the
scoring of a tool's numbers against the ground truth; the verdicts against the issue's
targets."""
import tempfile
import unittest
from pathlib import Path
from types import SimpleNamespace

from picobench.netlab import wire_delta
from picobench.observers import bandwhich, nethogs, opensnitch
from picobench.observers.base import Observation, other_lines
from picobench.observers.refreshes import growth_in_window, max_totals, split_refreshes
from picobench.sections import accuracy, capacity, footprint, overhead, sandbox, storage
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


class ToolMessages(unittest.TestCase):
    def test_lines_that_are_not_data_rows(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "nethogs.out"
            out.write_text(NETHOGS + "\nAdding local address: 10.251.0.1\nwaiting for first packet\n")
            lines = other_lines(out, lambda s: s == "Refreshing:" or nethogs.parse_row(s) is not None
                                or s.startswith("Unknown connection"))
            # Each message once, in order; data rows and markers left out.
            self.assertEqual(lines, ["Adding local address: 10.251.0.1", "waiting for first packet"])
            self.assertEqual(other_lines(Path(d) / "missing", lambda s: False), [])


def subject(sent, received, connections=None):
    return SimpleNamespace(sent=sent, received=received, connections=connections)


def trial(wire_up, wire_down, subjects=1):
    w = {"frames": {"up": wire_up, "down": wire_down, "total": wire_up + wire_down},
         "ip": {"up": wire_up, "down": wire_down, "total": wire_up + wire_down}}
    return SimpleNamespace(wire=w, subjects=[None] * subjects)


class Scoring(unittest.TestCase):
    """The accuracy section's judgement of one tool's numbers against the truth."""

    def test_each_tool_is_judged_on_what_it_counts(self):
        s = subject(1_000_000, 0)
        t = trial(1_040_000, 30_000)
        payload_tool = SimpleNamespace(counts="payload")
        cell = accuracy.judge(payload_tool, Observation(seen=True, sent=1_000_000, received=0), s, t)
        self.assertTrue(cell["right"])
        self.assertEqual(cell["ratio"], 1.0)
        self.assertTrue(cell["bytes_ok"])
        frames_tool = SimpleNamespace(counts="frames")
        cell = accuracy.judge(frames_tool, Observation(seen=True, sent=1_040_000, received=30_000), s, t)
        self.assertEqual(cell["ratio"], 1.0)
        self.assertAlmostEqual(cell["payload_ratio"], 1.07)
        # 2% short of the wire is outside the 1% tolerance.
        cell = accuracy.judge(frames_tool, Observation(seen=True, sent=1_018_600, received=30_000), s, t)
        self.assertFalse(cell["bytes_ok"])

    def test_a_tool_without_byte_counts_has_no_ratio(self):
        cell = accuracy.judge(SimpleNamespace(counts=None), Observation(seen=True, connections=3), subject(10, 10, 3),
                              trial(100, 100))
        self.assertNotIn("ratio", cell)
        self.assertEqual(cell["connections"], 3)

    def test_wrong_facts_mean_not_right(self):
        cell = accuracy.judge(SimpleNamespace(counts="payload"),
                              Observation(seen=True, sent=10, received=0, wrong=["protocol [17] (want 6)"]),
                              subject(10, 0), trial(100, 0))
        self.assertFalse(cell["right"])

    def test_summary_over_trials_reports_disagreement_and_silence(self):
        def row(sid, tool, right, r, sent, received):
            return {"scenario": sid, "tools": {tool: {
                "status": "ok", "right": right, "ratio": r, "payload_ratio": r, "bytes_ok": abs(r - 1) <= 0.01,
                "sent": sent, "received": received, "connections": None, "unattributed": 0, "wrong": [],
                "truth": {"sent": 100, "received": 100, "connections": None}}}}
        rows = [row("tcpboth", "nethogs", True, 0.5, 100, 0), row("tcpboth", "nethogs", False, 0.9, 90, 0),
                row("tcpup", "picosnitch", True, 1.0, 100, 100), row("tcpup", "picosnitch", True, 1.0, 100, 100)]
        s = accuracy.summarize(rows, [])
        n = s["tcpboth"]["nethogs"]
        self.assertEqual((n["right"], n["of"]), (1, 2))
        self.assertTrue(n["disagree"])
        self.assertEqual(n["silent"], ["received"])
        self.assertEqual(n["ratio_spread"], (0.5, 0.9))
        self.assertFalse(n["bytes_ok"])
        p = s["tcpup"]["picosnitch"]
        self.assertFalse(p["disagree"])
        self.assertTrue(p["bytes_ok"])
        self.assertEqual(p["payload_ratio_median"], 1.0)

    def test_a_trial_whose_traffic_failed_is_named_not_scored(self):
        ok = {"status": "ok", "right": True, "ratio": 1.0, "payload_ratio": 1.0, "bytes_ok": True, "sent": 1,
              "received": 1, "connections": None, "unattributed": 0, "wrong": [],
              "truth": {"sent": 1, "received": 1, "connections": None}}
        rows = [{"scenario": "udp", "trial": 1, "bulk": False, "error": None, "tools": {"picosnitch": ok}},
                {"scenario": "udp", "trial": 2, "bulk": False, "error": "server: receiving: timed out",
                 "tools": {"picosnitch": {"status": "no traffic", "reason": "server: receiving: timed out"}}}]
        p = accuracy.summarize(rows, [])["udp"]["picosnitch"]
        self.assertEqual((p["right"], p["of"]), (1, 1))
        self.assertEqual(p["failed_trials"], ["trial 2: server: receiving: timed out"])
        (attributed, _) = accuracy.targets({"summary": {"udp": {"picosnitch": p}}, "trials": rows})
        self.assertIn("udp (1 trial(s))", attributed[1])

    def test_a_tool_that_could_not_run_keeps_its_reason(self):
        rows = [{"scenario": "udp", "tools": {"bandwhich": {"status": "unavailable", "reason": "cargo install failed"}}}]
        self.assertEqual(accuracy.summarize(rows, [])["udp"]["bandwhich"],
                         {"status": "unavailable", "reason": "cargo install failed", "failed_trials": []})


class Targets(unittest.TestCase):
    """The verdicts the report prints against the issue's targets."""

    def test_overhead(self):
        s = {"summary": {"picosnitch": {"connect_rate": {"median": 0.975, "spread": (0.95, 0.99)},
                                        "bulk_bytes_per_s": {"median": 0.98, "spread": (0.97, 1.0)}}}}
        (_, _, connect_ok), (_, _, bulk_ok) = overhead.targets(s)
        self.assertTrue(connect_ok)
        self.assertFalse(bulk_ok)
        self.assertIsNone(overhead.targets({"summary": {}})[0][2])

    def test_capacity(self):
        def steps(*xs):
            return [{"achieved": a, "clean": c} for a, c in xs]
        clean = {"highest_clean": 20500, "highest_made": 20500, "steps": steps((20500, True))}
        self.assertTrue(capacity.targets(clean)[0][2])
        # The machine could not make 20,000/s and lost nothing: not measured, not met.
        slow = {"highest_clean": 9000, "highest_made": 9000, "steps": steps((9000, True))}
        self.assertIsNone(capacity.targets(slow)[0][2])
        lossy = {"highest_clean": 9000, "highest_made": 25000, "steps": steps((9000, True), (25000, False))}
        self.assertFalse(capacity.targets(lossy)[0][2])
        self.assertIn("9,000", capacity.targets(lossy)[0][1])

    def test_capacity_says_when_the_history_never_settled(self):
        self.assertEqual(capacity.settled({"settle_seconds": 22.4}), "22.4")
        self.assertEqual(capacity.settled({"settle_seconds": None}), "still changing")
        self.assertEqual(capacity.settled({}), "–")

    def test_footprint(self):
        r = {"phases": [{"pss_kib_max": 20_000, "cpu_percent_of_one_core": 0.5},
                        {"pss_kib_max": 29_000, "cpu_percent_of_one_core": 2.5, "requested_rate": 1000}]}
        (_, pss_text, pss_ok), (_, cpu_text, cpu_ok) = footprint.targets(r)
        self.assertTrue(pss_ok)  # 29,000 KiB is 29.7 MB
        self.assertFalse(cpu_ok)
        self.assertEqual(cpu_text, "2.50%")
        r["phases"][1]["pss_kib_max"] = 29_400  # 30.1 MB
        self.assertFalse(footprint.targets(r)[0][2])


class Sandbox(unittest.TestCase):
    """The cost-of-confinement table: ratios confined/unconfined per round, their median
    and spread."""

    def test_ratios_and_report(self):
        def run(r, cs, us, cc, uc):
            d = {"round": r, "order": ["confined", "unconfined"],
                 "confined": {"startup_s": cs, "cpu_ms_per_1000_connections": cc, "achieved_rate": 1000,
                              "role_uids": ["61338"], "role_seccomp_modes": ["2"]},
                 "unconfined": {"startup_s": us, "cpu_ms_per_1000_connections": uc, "achieved_rate": 1000,
                                "role_uids": ["0"], "role_seccomp_modes": ["0"]}}
            d["startup_ratio"], d["cpu_ratio"] = cs / us, cc / uc
            return d
        runs = [run(1, 1.2, 1.0, 110.0, 100.0), run(2, 1.1, 1.0, 105.0, 100.0), run(3, 1.3, 1.0, 120.0, 100.0)]
        summary = {k: {"confined_median": median([x["confined"][k] for x in runs]),
                       "unconfined_median": median([x["unconfined"][k] for x in runs]),
                       "ratio_median": median([x[rk] for x in runs]), "ratio_spread": spread([x[rk] for x in runs])}
                   for k, rk in [("startup_s", "startup_ratio"), ("cpu_ms_per_1000_connections", "cpu_ratio")]}
        text = sandbox.render({"rounds": 3, "rate": 1000.0, "load_seconds": 20, "runs": runs, "summary": summary})
        self.assertIn("| start-up to READY=1 (s) | 1.200 | 1.000 | 1.200 | 1.100 – 1.300 |", text)
        self.assertIn("| daemon CPU per 1,000 connections (ms) | 110.0 | 100.0 | 1.100 | 1.050 – 1.200 |", text)
        self.assertIn("unconfined ones as uid 0 with seccomp mode 0", text)


if __name__ == "__main__":
    unittest.main()
