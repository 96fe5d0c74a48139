"""Run the benchmarks, each in its own process (so peak memory is its own); one JSON line each.

  python -m bench                  # every benchmark but full_scale, at the sizes the issue asks
  python -m bench full_scale       # 30 x 15 min through the whole chain (~33 min on 2 cores)
  python -m bench one_step         # the one-step ablation behind docs/one_step.md (~2 h)
  python -m bench --quick          # tiny sizes: checks that every benchmark runs (the test suite)
"""

import subprocess
import sys

import click

QUICK = {
    "simulator": ["--tracks", "2", "--minutes", "0.2"],
    "pairs": ["--counts", "1,2", "--minutes", "0.2"],
    "training": ["--batch", "64", "--steps", "2"],
    "inference": ["--repeats", "20"],
    "sensor": ["--counts", "5,10"],
    "increment": ["--tracks", "2", "--minutes", "0.2"],
    "full_scale": ["--tracks", "10", "--minutes", "0.3", "--profile", "tiny"],  # two tracks per mode: the split needs them
    "two_host": ["--tracks", "2", "--minutes", "0.2", "--chain-tracks", "1", "--no-train"],
    "one_step": ["--tracks", "10", "--minutes", "0.5", "--profile", "tiny", "--variants", "today;ema+warmup+distill8@0.05", "--seeds", "0", "--v5",
                 "--draws", "2"],
}
LONG = ("full_scale", "one_step")  # run by name only: ~33 min and ~2 h here
DEFAULT = [name for name in QUICK if name not in LONG]


@click.command()
@click.argument("names", nargs=-1, type=click.Choice(list(QUICK)))
@click.option("--quick", is_flag=True, help="Tiny sizes, to check that each benchmark runs.")
def main(names: tuple[str, ...], quick: bool) -> None:
    failed = []
    for name in names or DEFAULT:
        args = QUICK[name] if quick else []
        done = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], stdout=subprocess.PIPE, text=True)
        print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "", flush=True)
        if done.returncode:
            failed.append(name)
    if failed:
        raise SystemExit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
