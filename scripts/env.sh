# Sourced before every project command (see Makefile): the runtime environment.
# Two-host (LUME_DEPLOYMENT=two-host): a PostgreSQL instance, so a home of its own (README, "Two machines").
if [ "${LUME_DEPLOYMENT:-embedded}" = two-host ]; then instance_yaml=dagster.two-host.yaml; default_home=.dagster-two-host
else instance_yaml=dagster.yaml; default_home=.dagster; fi
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/$default_home}"
# Two hosts: steps' stdout/stderr under the shared artifact root, where Mac4's UI reads what Mac5 printed.
if [ "${LUME_DEPLOYMENT:-embedded}" = two-host ] && [ -n "${LUME_ARTIFACT_ROOT:-}" ]; then
  export LUME_COMPUTE_LOG_DIR="${LUME_COMPUTE_LOG_DIR:-$LUME_ARTIFACT_ROOT/compute-logs}"; fi
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.cache/numba}"  # librosa's JIT compiles once, not per process
# MLX's Linux wheel bundles a slow reference BLAS; preload OpenBLAS (scripts/setup.sh installs it).
for lib in /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 /usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0; do
  # One BLAS thread: on the 2-core box a second one costs more in sync than it gives (bench/training.py).
  if [ -f "$lib" ]; then export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"; case ":${LD_PRELOAD:-}:" in *":$lib:"*) ;; *) export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}";; esac; break; fi
done
export PATH="$PWD/.venv/bin:$PATH"
# dagster.yaml is read from DAGSTER_HOME only: give a new instance the project's settings.
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp "$instance_yaml" "$DAGSTER_HOME/dagster.yaml"
