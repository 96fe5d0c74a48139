"""LUME Music V6 retrain pipeline: capture -> pairs -> training -> export -> acceptance."""

from lume_v6_dagster import blas

blas.load_for_mlx()  # before any module imports MLX
