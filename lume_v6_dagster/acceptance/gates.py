"""The 9 hard gates (docs/gates.md): each turns measurements into value, threshold, verdict.

Gates are pure functions of their measurements, so each can be driven to FAIL in a test.
"""

from dataclasses import asdict, dataclass

import numpy as np

from lume_v6_dagster import contract
from lume_v6_dagster.acceptance.markup import escape
from lume_v6_dagster.acceptance.thresholds import Thresholds

PASS, FAIL, PENDING = "PASS", "FAIL", "PENDING"


@dataclass(frozen=True)
class Gate:
    number: int
    area: str
    name: str
    measured: str
    threshold: str
    verdict: str

    def as_dict(self) -> dict:
        return asdict(self)


def _verdict(ok: bool) -> str:
    return PASS if ok else FAIL


def coverage(n_tracks: int, cells: np.ndarray, th: Thresholds) -> Gate:
    worst = float(np.min(cells))
    m, e = np.unravel_index(int(np.argmin(cells)), cells.shape)
    return Gate(1, "training", "coverage",
                f"{n_tracks} tracks; smallest cell {worst:.2f} min ({contract.MODES[m]} x {contract.EMOTIONS[e]})",
                f">= {th.min_tracks} tracks; every cell >= {th.min_cell_minutes} min",
                _verdict(n_tracks >= th.min_tracks and worst >= th.min_cell_minutes))


def split_integrity(train: list[str], val: list[str], track_modes: dict[str, int], stats_match_train: bool) -> Gate:
    overlap = sorted(set(train) & set(val))
    every = set(range(len(contract.MODES)))
    missing = {side: sorted(every - {track_modes[t] for t in ids}) for side, ids in (("validated", val), ("trained on", train))}
    problems = ([f"in both: {', '.join(overlap)}"] if overlap else []) + \
               [f"modes not {side}: {', '.join(contract.MODES[m] for m in modes)}" for side, modes in missing.items() if modes] + \
               ([] if stats_match_train else ["statistics differ from training-only statistics"])
    return Gate(2, "training", "split integrity",
                "; ".join(problems) or f"{len(train)} train / {len(val)} val tracks, disjoint, every mode trained on and validated, "
                "stats from train only",
                "disjoint; every mode in training and in validation; no statistic from validation",
                _verdict(not problems))


def encoder_flow(v6_loss: float, v5_loss: float, fd_1step: float, fd_16step: float, fd_1step_v5: float, over_time: dict,
                 th: Thresholds) -> Gate:
    """Cross-track loss and one-step sample quality against the V5 recipe, the one-step path against its own
    16-step sampler, and the shipped frames over time (`measure.over_time`) against the real music: how they
    move, and how far they are from it against the real-vs-real floor (so two equally poor samplers fail)."""
    ratio = fd_1step / fd_16step
    lag_gap = abs(over_time["lag1"] - over_time["lag1_real"])
    floor_ratio = over_time["frame_fd"] / over_time["frame_fd_floor"]
    held = (over_time["change_ratio"] <= th.change_ratio_max and lag_gap <= th.lag1_gap_max
            and over_time["spread_ratio"] >= th.spread_ratio_min and floor_ratio <= th.frame_fd_floor_ratio_max)
    return Gate(3, "training", "encoder + flow cross-track validation",
                f"V6 {v6_loss:.4f} vs V5 {v5_loss:.4f}; FD 1-step {fd_1step:.2f} vs V5 {fd_1step_v5:.2f}, = {ratio:.2f} x 16-step "
                f"{fd_16step:.2f}; over time: FD {over_time['frame_fd']:.2f} = {floor_ratio:.2f} x real-vs-real "
                f"{over_time['frame_fd_floor']:.2f} ({_replayed(over_time)}), change {over_time['change_ratio']:.2f} x real, lag-1 {over_time['lag1']:.3f} vs "
                f"{over_time['lag1_real']:.3f} (gap 90% {over_time['lag1_gap_lo']:+.3f} - {over_time['lag1_gap_hi']:+.3f}), spread {over_time['spread_ratio']:.2f} x real",
                f"V6 <= {th.flow_val_loss_max} and V6 < V5 in loss and FD; FD 1-step <= {th.one_step_fd_ratio_max} x 16-step; "
                f"over time: FD <= {th.frame_fd_floor_ratio_max} x real-vs-real, change <= {th.change_ratio_max} x, "
                f"lag-1 within {th.lag1_gap_max}, spread >= {th.spread_ratio_min} x",
                _verdict(v6_loss <= th.flow_val_loss_max and v6_loss < v5_loss and fd_1step < fd_1step_v5
                         and ratio <= th.one_step_fd_ratio_max and held))


def _replayed(over_time: dict) -> str:
    """What replaying the training music scores (`measure.over_time`): a reference beside the floor, not a bound."""
    fd = over_time["frame_fd_training"]
    if not np.isfinite(fd):
        return "no training track holds a window that long"
    return f"the training music itself: {fd:.2f} = {fd / over_time['frame_fd_floor']:.2f} x"


def san(val_loss: float, params: int, th: Thresholds) -> Gate:
    lo, hi = th.san_params * (1 - th.san_params_tolerance), th.san_params * (1 + th.san_params_tolerance)
    return Gate(4, "training", "SAN V6 cross-track validation",
                f"loss {val_loss:.4f}; {params:,} parameters",
                f"loss <= {th.san_val_loss_max}; {lo:,.0f}-{hi:,.0f} parameters",
                _verdict(val_loss <= th.san_val_loss_max and lo <= params <= hi))


def conditioning(accuracy: float, distance: np.ndarray, real_distance: np.ndarray, frames: int, real_accuracy: float,
                 th: Thresholds) -> Gate:
    """Mode recovery, and the closest two generated modes against the real validation music's closest two
    (`measure.mode_distances`, normalised units). `real_accuracy`: the classifier on the real validation
    music, what a generator that reproduced the music exactly would score; the pass rule does not use it."""
    closest, real_closest = _closest(distance), _closest(real_distance)
    ratio = closest / real_closest if real_closest > 0 else float("nan")
    return Gate(5, "inference", "conditioning works (mode)",
                f"mode recovered from generated latents {accuracy:.1%} ({frames} validation frames x {len(distance)} modes; "
                f"chance 20%; real music {real_accuracy:.1%}); closest modes FD {closest:.2f} = {ratio:.2f} x the real "
                f"music's closest {real_closest:.2f}",
                f"accuracy >= {th.mode_accuracy_min:.0%}; closest modes >= {th.mode_distance_ratio_min} x the real music's",
                _verdict(accuracy >= th.mode_accuracy_min and ratio >= th.mode_distance_ratio_min))


def _closest(distance: np.ndarray) -> float:
    """The smallest distance between two different modes (NaN entries: a mode absent)."""
    off = distance[~np.eye(len(distance), dtype=bool)]
    off = off[np.isfinite(off)]
    return float(off.min()) if len(off) else float("nan")


def full_dynamics(ratio_latent: float, ratio_controls: float, frames: int, tracks: int, th: Thresholds) -> Gate:
    worst = min(ratio_latent, ratio_controls)
    return Gate(6, "inference", "full 128-D input",
                f"sensitivity dims 64-127 / dims 0-63: latent {ratio_latent:.2f}, controls {ratio_controls:.2f} "
                f"({frames} validation frames from {tracks} tracks)",
                f">= {th.sensitivity_ratio_min} for both",
                _verdict(worst >= th.sensitivity_ratio_min))


def export_parity(reports: list[dict], th: Thresholds) -> Gate:
    """Contract problems, and parity judged here against the threshold (NaN from corrupt weights fails too)."""
    problems = [p for r in reports for p in r["problems"]]
    problems += [f"{r['name']}: {runtime} output differs from the source model by {d:.3g} (> {th.parity_tolerance})"
                 for r in reports for runtime, d in r["parity"].items() if not d <= th.parity_tolerance]
    worst = max((d for r in reports for d in r["parity"].values()), default=float("nan"))
    return Gate(7, "iOS", "export contract + parity",
                "; ".join(problems) if problems else f"{len(reports)} packages match the contract; worst parity {worst:.2e}",
                f"names/shapes/FP32/iOS 17; parity <= {th.parity_tolerance}",
                _verdict(bool(reports) and not problems))


def budget(bundle_mb: float, latency: float, th: Thresholds) -> Gate:
    return Gate(8, "iOS", "on-device budget",
                f"V6 packages {bundle_mb:.1f} MB; {latency:.3f} ms per frame (CPU proxy)",
                f"<= {th.bundle_mb_max} MB; <= {th.latency_ms_max} ms",
                _verdict(bundle_mb <= th.bundle_mb_max and latency <= th.latency_ms_max))


VERDICT = {"pass": PASS, "fail": FAIL, "pending": PENDING}


def listening(record: tuple[str, str]) -> Gate:
    """A person's per-mode sign-off for these packages (`signoff.read_record`: verdict, what it says)."""
    return Gate(9, "subjective", "listening test", record[1],
                "every mode 'pass', signed for these V6 packages (lume-v6 signoff)", VERDICT[record[0]])


def on_device(record: tuple[str, str]) -> Gate:
    """The release plan's iPhone check: V5 live with the Chain 1 fixes, then V6 swapped in, for these packages."""
    return Gate(9, "on-device", "V5 live (Chain 1), then V6 swapped in, on the iPhone", record[1],
                "both steps 'pass', for these V6 packages (lume-v6 signoff --on-device)", VERDICT[record[0]])


def decision(gates: list[Gate], champion_blocks: bool = False) -> tuple[str, bool]:
    """(status, useV6Models): RELEASED when gates 1-8 pass and V6 is no worse than the champion,
    FULLY SHIPPED when both human records (9) pass too."""
    automatic = all(g.verdict == PASS for g in gates if g.number <= 8)
    if not automatic or champion_blocks:
        return "NOT RELEASED", False
    human = [g for g in gates if g.number == 9]
    return ("FULLY SHIPPED" if human and all(g.verdict == PASS for g in human) else "RELEASED"), True


def table(gates: list[Gate]) -> str:
    rows = [f"| {g.number} | {g.area} | {g.name} | {escape(g.measured)} | {g.threshold} | **{g.verdict}** |" for g in gates]
    return "| # | area | gate | measured | threshold | verdict |\n|---|---|---|---|---|---|\n" + "\n".join(rows)
