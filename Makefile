# Every target sets up what it needs first (idempotent), so each is one command on a fresh machine.
RUN = . scripts/env.sh &&

.PHONY: setup demo test bench ui

setup:
	@bash scripts/setup.sh

demo: setup  ## simulate captures and run the whole chain through Dagster
	$(RUN) lume-v6 demo $(ARGS)

test: setup  ## the test suite (what CI runs), one worker per core; ARGS="-n 0" runs it in one process
	$(RUN) dagster definitions validate -w workspace.yaml
	$(RUN) pytest -n auto --dist loadfile --no-loadscope-reorder $(ARGS)

bench: setup  ## benchmarks, one JSON line each (ARGS="full_scale" for the 33-minute full chain)
	$(RUN) lume-v6 bench $(ARGS)

ui: setup  ## dagster dev (webserver + daemon: sensor, schedule) on the demo's instance, pools sized from this host
	$(RUN) lume-v6 pools && dagster dev -w workspace.yaml
