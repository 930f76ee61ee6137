"""Sequence cross-entropy with label smoothing and optional masking of impossible tokens."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class TokenStats(NamedTuple):
    """Sums over the non-padded target tokens of a batch (add them up, then divide).

    Attributes
    ----------
    nll_sum : float
        Summed negative log-likelihood of the targets (no smoothing).
    num_tokens : int
        Target tokens, ``<eos>`` included.
    correct_tokens : int
        Tokens whose argmax equals the target (teacher forcing).
    num_words : int
        Curves.
    correct_words : int
        Curves whose every target token is the argmax: the word-level greedy accuracy under teacher
        forcing.
    """

    nll_sum: float
    num_tokens: int
    correct_tokens: int
    num_words: int
    correct_words: int


def sequence_loss(
    logits: Tensor,
    target: Tensor,
    pad_mask: Tensor,
    label_smoothing: float = 0.0,
    allowed: Tensor | None = None,
) -> Tensor:
    """Mean cross-entropy over the non-padded target tokens.

    Parameters
    ----------
    logits : Tensor
        ``(B, L, V)`` decoder outputs (any float dtype; computed in float32).
    target : Tensor
        ``(B, L)`` int64 target ids; padded positions may hold any id.
    pad_mask : Tensor
        ``(B, L)`` bool, ``True`` at padding.
    label_smoothing : float
        ``eps``: the loss is ``(1 - eps) * nll + eps * mean(-log p)`` over the allowed tokens (all
        ``V`` tokens without ``allowed``, as in :func:`torch.nn.functional.cross_entropy`).
    allowed : Tensor, optional
        ``(B, L, V)`` bool, the tokens that may follow each prefix; the others get probability 0.
        The target token is always allowed.

    Returns
    -------
    Tensor
        Scalar float32 loss (0 for a batch without target tokens).
    """
    logits = logits.float()
    safe_target = target.masked_fill(pad_mask, 0).unsqueeze(-1)
    if allowed is not None:
        allowed = allowed.to(logits.device).scatter(-1, safe_target, True)
        logits = logits.masked_fill(~allowed, float("-inf"))
    log_probs = F.log_softmax(logits, dim=-1)
    per_token = -log_probs.gather(-1, safe_target).squeeze(-1)
    if label_smoothing > 0.0:
        if allowed is None:
            smooth = -log_probs.mean(dim=-1)
        else:
            smooth = -log_probs.masked_fill(~allowed, 0.0).sum(-1) / allowed.sum(-1)
        per_token = (1.0 - label_smoothing) * per_token + label_smoothing * smooth
    valid = (~pad_mask).to(per_token.dtype)
    return (per_token * valid).sum() / valid.sum().clamp(min=1.0)


@torch.no_grad()
def token_stats(logits: Tensor, target: Tensor, pad_mask: Tensor) -> TokenStats:
    """Validation sums of one batch: NLL, token accuracy and word accuracy under teacher forcing."""
    logits = logits.float()
    valid = ~pad_mask
    safe_target = target.masked_fill(pad_mask, 0)
    nll = F.cross_entropy(logits.transpose(1, 2), safe_target, reduction="none")
    correct = (logits.argmax(-1) == safe_target) | pad_mask
    return TokenStats(
        nll_sum=float(nll[valid].sum()),
        num_tokens=int(valid.sum()),
        correct_tokens=int((correct & valid).sum()),
        num_words=int(target.shape[0]),
        correct_words=int(correct.all(dim=1).sum()),
    )
