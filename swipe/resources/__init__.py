"""Bundled data: keyboard layouts, lexicons, shipped models and real swipes for evaluation."""

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
REAL_EN_SWIPES = RESOURCES_DIR / "swipes" / "hws_real_en_dev.jsonl"
"""800 real English swipes on layout ``hws_fitted`` (How We Swipe, Leiva et al. 2021, CC BY 4.0):
the evaluation set of the results in the README; never used for training."""
