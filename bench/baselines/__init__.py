"""Classic swipe decoders used as baselines: a DTW first-letter matcher and a SHARK2-style
template matcher, with a script that scores them on real swipes (``run_baselines.py``)."""
