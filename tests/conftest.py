"""Shared test settings."""

import torch

# The test models are tiny: one thread avoids thread start-up overhead dominating every op, and
# leaves the second core to the subprocesses some tests start.
torch.set_num_threads(1)
