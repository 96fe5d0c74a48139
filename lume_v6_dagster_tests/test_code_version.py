"""The model code version changes with the code that shapes a model, and only with it."""

import shutil

from lume_v6_dagster import code_version


def test_a_one_line_change_to_the_loss_changes_the_version_and_a_report_or_gate_change_only_the_judging_one(tmp_path):
    copy = shutil.copytree(code_version.PACKAGE, tmp_path / "lume_v6_dagster", ignore=shutil.ignore_patterns("__pycache__"))
    assert code_version.digest(copy) == code_version.model_code_version()
    assert code_version.digest(copy, code_version.JUDGING) == code_version.judging_code_version()
    loss = copy / "training" / "flow_training.py"
    loss.write_text(loss.read_text() + "\n# tweak\n")
    changed = code_version.digest(copy)
    assert changed != code_version.model_code_version()
    report = copy / "acceptance" / "report.py"
    report.write_text(report.read_text() + "\n# wording\n")
    assert code_version.digest(copy) == changed
    judging = code_version.digest(copy, code_version.JUDGING)
    gates = copy / "acceptance" / "gates.py"
    gates.write_text(gates.read_text() + "\n# a bound\n")
    assert code_version.digest(copy) == changed and code_version.digest(copy, code_version.JUDGING) != judging
    for name in ("contract.py", "pairs.py", "dataset.py", "models/flow.py"):
        (copy / name).write_text((copy / name).read_text() + "#")
        assert code_version.digest(copy) != changed, name
        changed = code_version.digest(copy)
