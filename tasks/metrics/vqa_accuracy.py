"""The official VQA accuracy, reproduced from the VQA evaluation tool.

Reference: ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` in
github.com/GT-Vision-Lab/VQA (master). Its quirks are kept on purpose, because
published numbers (PAPER.md section 5) were computed with them:

* The prediction is normalised fully (:func:`normalize_answer`); each
  ground-truth answer only gets the punctuation step, and only when the 10
  answers are not all identical. Ground truth is *not* lowercased or stripped.
* Punctuation is deleted rather than replaced by a space whenever the text
  contains any ``digit,digit``, for every punctuation mark, and the space tests
  look at the original text, not the partly cleaned one.
* At most 32 periods are removed: the tool passes ``re.UNICODE`` (= 32) as the
  ``count`` argument of ``re.sub``.

Per question, each of the 10 annotators is left out in turn and the prediction
scores ``min(1, matches among the other 9 / 3)``; the question's accuracy is the
mean of those 10 scores. The tool rounds the final percentage to two decimals
for display; :func:`vqa_accuracy` returns the unrounded value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["CONTRACTIONS", "normalize_answer", "process_punctuation", "question_accuracy", "vqa_accuracy"]

# Punctuation handled by the tool's first step. Absent on purpose: "." (its own
# rule below), "'" (contractions keep it) and ":".
_PUNCTUATION = (
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
)
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
# The tool's pattern is "(?!<=\d)(\.)(?!\d)": the first group was meant as a
# look-behind but is a look-ahead for the literal "<=" before a ".", which can
# never match, so the effective rule is "a period not followed by a digit".
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_MAX_PERIODS_REMOVED = 32  # re.UNICODE passed positionally as re.sub's count
_NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})

# The tool's contraction map: word as typed (apostrophes dropped) -> restored
# form. Kept entry for entry, including the capitalised keys that can never
# match lowercased text and the reversed "somebody'd" -> "somebodyd" entry.
_CONTRACTION_TABLE = """
aint ain't            arent aren't            cant can't
couldve could've      couldnt couldn't        couldn'tve couldn't've
couldnt've couldn't've  didnt didn't          doesnt doesn't
dont don't            hadnt hadn't            hadnt've hadn't've
hadn'tve hadn't've    hasnt hasn't            havent haven't
hed he'd              hed've he'd've          he'dve he'd've
hes he's              howd how'd              howll how'll
hows how's            Id've I'd've            I'dve I'd've
Im I'm                Ive I've                isnt isn't
itd it'd              itd've it'd've          it'dve it'd've
itll it'll            let's let's             maam ma'am
mightnt mightn't      mightnt've mightn't've  mightn'tve mightn't've
mightve might've      mustnt mustn't          mustve must've
neednt needn't        notve not've            oclock o'clock
oughtnt oughtn't      ow's'at 'ow's'at        'ows'at 'ow's'at
'ow'sat 'ow's'at      shant shan't            shed've she'd've
she'dve she'd've      she's she's             shouldve should've
shouldnt shouldn't    shouldnt've shouldn't've  shouldn'tve shouldn't've
somebody'd somebodyd  somebodyd've somebody'd've  somebody'dve somebody'd've
somebodyll somebody'll  somebodys somebody's  someoned someone'd
someoned've someone'd've  someone'dve someone'd've  someonell someone'll
someones someone's    somethingd something'd  somethingd've something'd've
something'dve something'd've  somethingll something'll  thats that's
thered there'd        thered've there'd've    there'dve there'd've
therere there're      theres there's          theyd they'd
theyd've they'd've    they'dve they'd've      theyll they'll
theyre they're        theyve they've          twas 'twas
wasnt wasn't          wed've we'd've          we'dve we'd've
weve we've            werent weren't          whatll what'll
whatre what're        whats what's            whatve what've
whens when's          whered where'd          wheres where's
whereve where've      whod who'd              whod've who'd've
who'dve who'd've      wholl who'll            whos who's
whove who've          whyll why'll            whyre why're
whys why's            wont won't              wouldve would've
wouldnt wouldn't      wouldnt've wouldn't've  wouldn'tve wouldn't've
yall y'all            yall'll y'all'll        y'allll y'all'll
yall'd've y'all'd've  y'alld've y'all'd've    y'all'dve y'all'd've
youd you'd            youd've you'd've        you'dve you'd've
youll you'll          youre you're            youve you've
"""


def _parse_table(table: str) -> dict[str, str]:
    words = table.split()
    return dict(zip(words[0::2], words[1::2], strict=True))


CONTRACTIONS: Mapping[str, str] = _parse_table(_CONTRACTION_TABLE)


def process_punctuation(text: str) -> str:
    """The tool's ``processPunctuation``: the only step ground truth gets."""
    has_digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for p in _PUNCTUATION:
        # Tested on the original text, so an earlier replacement never changes
        # the decision for a later mark.
        touches_space = (p + " ") in text or (" " + p) in text
        out = out.replace(p, "" if touches_space or has_digit_comma else " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_MAX_PERIODS_REMOVED)


def _process_digit_article(text: str) -> str:
    """The tool's ``processDigitArticle``: lowercase, digits, articles, contractions."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(s: str) -> str:
    """Normalise a predicted answer exactly as the official tool does.

    Steps: newlines and tabs become spaces and the ends are stripped;
    punctuation is removed or turned into spaces; periods not followed by a
    digit are dropped; the text is lowercased and split on whitespace; number
    words ``none``/``zero``..``ten`` become digits; articles ``a``/``an``/``the``
    are dropped; contractions are restored (``dont`` -> ``don't``).

    Args:
        s: The raw answer text.

    Returns:
        The normalised answer, words joined by single spaces.
    """
    text = s.replace("\n", " ").replace("\t", " ").strip()
    return _process_digit_article(process_punctuation(text))


def question_accuracy(pred: str, answers: Sequence[str]) -> float:
    """Official accuracy of one prediction against the annotators' raw answers.

    Args:
        pred: The predicted answer, raw (it is normalised here).
        answers: The raw human answers (10 in VQA v2), as stored in the
            official annotation file.

    Returns:
        The mean over annotators of ``min(1, matches among the others / 3)``,
        in [0, 1]: 1, 2, 3 or >= 4 matching annotators give 0.3, 0.6, 0.9, 1.0.

    Raises:
        ValueError: If ``answers`` is empty or a plain string.
    """
    if isinstance(answers, str) or len(answers) == 0:
        raise ValueError(
            f"answers must be a non-empty sequence of annotator answers, but got {answers!r}; "
            "pass the raw answers of the question (10 for VQA v2)."
        )
    resolved = normalize_answer(pred)
    truth = list(answers)
    if len(set(truth)) > 1:  # the tool leaves unanimous answers untouched
        truth = [process_punctuation(a) for a in truth]
    total_matches = sum(a == resolved for a in truth)
    score = 0.0
    for own in truth:
        others_matching = total_matches - (own == resolved)
        score += min(1.0, others_matching / 3)
    return score / len(truth)


def vqa_accuracy(predictions: Mapping[int, str], answers: Mapping[int, Sequence[str]]) -> float:
    """Official VQA accuracy over a set of questions, in percent.

    Like the official tool, every question with ground truth must have a
    prediction and no prediction may name an unknown question.

    Args:
        predictions: question_id -> predicted answer text.
        answers: question_id -> the raw human answers of that question.

    Returns:
        The mean :func:`question_accuracy` over the questions of ``answers``,
        times 100 (unrounded).

    Raises:
        ValueError: If ``answers`` is empty, or the question ids of the two
            mappings differ (the message lists the offending ids).
    """
    if not answers:
        raise ValueError("answers is empty; pass the ground truth of at least one question.")
    missing = sorted(set(answers) - set(predictions))
    unknown = sorted(set(predictions) - set(answers))
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"{len(missing)} question ids have no prediction: {_preview(missing)}")
        if unknown:
            problems.append(f"{len(unknown)} predictions name unknown question ids: {_preview(unknown)}")
        raise ValueError(
            "predictions and answers must cover the same question ids, but "
            + "; ".join(problems)
            + ". Predict every question of the split, or restrict answers to the predicted ids."
        )
    total = sum(question_accuracy(predictions[qid], answers[qid]) for qid in answers)
    return 100.0 * total / len(answers)


def _preview(ids: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")
