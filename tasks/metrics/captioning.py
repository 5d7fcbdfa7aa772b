"""COCO caption metrics through pycocoevalcap, exactly as ``COCOEvalCap.evaluate`` runs them.

References and predictions are tokenised separately with the Stanford
``PTBTokenizer`` (lowercased, punctuation dropped), then scored with
``Bleu(4)`` (corpus BLEU, "closest" reference length), ``Meteor()`` (METEOR
1.5), ``Rouge()`` (ROUGE-L, beta 1.2) and ``Cider()`` (CIDEr-D, sigma 6, idf
from the evaluated references). Values are pycocoevalcap's raw ones: BLEU,
METEOR and ROUGE-L in [0, 1] and CIDEr in [0, 10]; papers print CIDEr x 100
(e.g. 112.9), see :func:`tasks.metrics.aggregate.reported_score`.

SPICE is never computed: pycocoevalcap downloads Stanford CoreNLP models for
it on first use, which cannot happen offline. It is reported as ``None`` with
the reason under ``SPICE_unavailable``.

The tokenizer and METEOR run Java (``java`` on the PATH); METEOR takes
several seconds to start, so ask only for the metrics you need.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tasks.metrics.exact_match import check_coverage

__all__ = ["CAPTION_METRICS", "SPICE_REASON", "CaptionMetricError", "caption_metrics"]

CAPTION_METRICS: tuple[str, ...] = ("BLEU", "METEOR", "ROUGE-L", "CIDEr")
SPICE_REASON = (
    "SPICE needs the Stanford CoreNLP 3.6.0 models, which pycocoevalcap downloads on first use; "
    "this machine is offline, so SPICE is not computed"
)


class CaptionMetricError(RuntimeError):
    """The caption toolkit could not run (no Java, or a scorer failed)."""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[Any]:
    """Send the Java tools' progress lines (fd 2) to a temp file, kept for error messages."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _tokenize(captions: Mapping[Any, Sequence[str]]) -> dict[Any, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenized = PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})
    # An empty last caption can vanish from the tokenizer's output lines.
    return {k: tokenized.get(k, [""] * len(v)) for k, v in captions.items()}


def _score(name: str, gts: dict, res: dict) -> dict[str, float]:
    if name == "BLEU":
        from pycocoevalcap.bleu.bleu import Bleu

        scores, _ = Bleu(4).compute_score(gts, res, verbose=0)
        return {f"BLEU-{n}": float(s) for n, s in enumerate(scores, start=1)}
    if name == "METEOR":
        from pycocoevalcap.meteor.meteor import Meteor

        meteor = Meteor()
        try:
            score, _ = meteor.compute_score(gts, res)
        finally:
            del meteor  # stops the Java process
        return {"METEOR": float(score)}
    if name == "ROUGE-L":
        from pycocoevalcap.rouge.rouge import Rouge

        return {"ROUGE-L": float(Rouge().compute_score(gts, res)[0])}
    from pycocoevalcap.cider.cider import Cider

    return {"CIDEr": float(Cider().compute_score(gts, res)[0])}


def caption_metrics(
    references: Mapping[int | str, Sequence[str]],
    predictions: Mapping[int | str, str],
    metrics: Sequence[str] = CAPTION_METRICS,
) -> dict[str, float | str | None]:
    """Score predicted captions against references with the COCO caption toolkit.

    Args:
        references: image (or clip) id -> its reference captions.
        predictions: image id -> the one predicted caption.
        metrics: Any of :data:`CAPTION_METRICS`; ``"BLEU"`` gives BLEU-1..4.

    Returns:
        Metric name -> raw pycocoevalcap value, plus ``"SPICE": None`` and
        ``"SPICE_unavailable"``: the reason.

    Raises:
        ValueError: If the ids differ, a reference list is empty, a caption
            is not a string, or a metric name is unknown.
        CaptionMetricError: If Java is missing or a scorer fails.
    """
    unknown = [m for m in metrics if m not in CAPTION_METRICS]
    if unknown:
        raise ValueError(f"unknown caption metrics {unknown}; choose from {list(CAPTION_METRICS)}.")
    check_coverage(predictions, references, "image ids")
    bad = [k for k, refs in references.items() if not refs or not all(isinstance(r, str) for r in refs)]
    bad += [k for k, p in predictions.items() if not isinstance(p, str)]
    if bad:
        raise ValueError(
            f"{len(bad)} image ids have no reference captions or a non-string caption (e.g. {bad[0]!r}); "
            "every image needs at least one reference and one predicted caption string."
        )
    if shutil.which("java") is None:
        raise CaptionMetricError(
            "the COCO caption metrics need Java (the PTB tokenizer and METEOR are Java programs), but "
            "'java' is not on the PATH; install a JRE (e.g. apt-get install default-jre-headless)."
        )
    out: dict[str, float | str | None] = {}
    with _quiet_stderr() as log:
        try:
            gts = _tokenize(references)
            res = {k: v[:1] for k, v in _tokenize({k: [predictions[k]] for k in references}).items()}
            for name in CAPTION_METRICS:
                if name in metrics:
                    out.update(_score(name, gts, res))
        except (OSError, ValueError, AssertionError) as err:
            log.seek(0)
            detail = log.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise CaptionMetricError(f"pycocoevalcap failed ({err!r}) {detail[0]}".strip()) from err
    out["SPICE"] = None
    out["SPICE_unavailable"] = SPICE_REASON
    return out
