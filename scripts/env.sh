# Sourced before every project command (see Makefile): the runtime environment.
# Two-host (LUME_DEPLOYMENT=two-host): a PostgreSQL instance, so a home of its own (README, "Two machines").
if [ "${LUME_DEPLOYMENT:-embedded}" = two-host ]; then instance_yaml=dagster.two-host.yaml; default_home=.dagster-two-host
else instance_yaml=dagster.yaml; default_home=.dagster; fi
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/$default_home}"
# Two hosts: steps' stdout/stderr under the shared artifact root, where Mac4's UI reads what Mac5 printed.
if [ "${LUME_DEPLOYMENT:-embedded}" = two-host ] && [ -n "${LUME_ARTIFACT_ROOT:-}" ]; then
  export LUME_COMPUTE_LOG_DIR="${LUME_COMPUTE_LOG_DIR:-$LUME_ARTIFACT_ROOT/compute-logs}"; fi
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.cache/numba}"  # librosa's JIT compiles once, not per process
# One OpenBLAS thread (numpy's, and MLX's: lume_v6_dagster/blas.py): on 2 cores a second cost more in sync than it gave.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
export PATH="$PWD/.venv/bin:$PATH"
# dagster.yaml is read from DAGSTER_HOME only: give a new instance the project's settings.
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp "$instance_yaml" "$DAGSTER_HOME/dagster.yaml"
