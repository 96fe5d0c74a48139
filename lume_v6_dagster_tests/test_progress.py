"""Progress bars read from a run's event log: the models' epochs and the noise fit's grid points."""

from types import SimpleNamespace

from lume_v6_dagster.progress import RunProgress


def _entry(message: str, step: str = "encoder_flow_v6"):
    return SimpleNamespace(user_message=message, dagster_event=None, step_key=step)


def test_each_step_gets_a_bar_for_its_epochs_and_one_for_its_noise_fit():
    progress = RunProgress(instance=None, run_id=lambda: None)
    progress._show(_entry("epoch 3/12: train 0.5000 val 0.6000"))
    progress._show(_entry("noise fit 5/34: jump 0.02, rho 1"))
    progress._show(_entry("SAN epoch 2/8: train 0.1000 val 0.2000", step="san_v6"))
    progress._show(_entry("noise process: fresh every frame"))  # neither: no bar
    progress._show(SimpleNamespace(user_message="epoch 4/12: train 0.4 val 0.5", dagster_event=object(), step_key="encoder_flow_v6"))
    bars = {name: (bar.n, bar.total, bar.unit) for name, bar in progress.bars.items()}
    assert bars == {"encoder_flow_v6": (3, 12, "epoch"), "encoder_flow_v6 noise fit": (5, 34, "point"), "san_v6": (2, 8, "epoch")}
    progress._show(_entry("noise fit 34/34: jump 0.2, rho 1"))
    fit = progress.bars["encoder_flow_v6 noise fit"]
    assert fit.n == 34 and fit.disable  # closed once every point is scored
    progress.close()
