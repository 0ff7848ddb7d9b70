"""Tests of course_lib.ngram: counts, add-k smoothing, the common model(idx) -> logits interface."""

import math

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks import language_modeling as check
from course_lib.lm import document_log_likelihoods
from course_lib.ngram import NGramModel, add_k_log_probs, bigram_counts

END = 4  # the boundary (end-of-text) id of a 5-token vocabulary


def test_bigram_counts():
    counts = bigram_counts([0, 1, 0, 1, 2], 3)
    assert counts.tolist() == [[0, 2, 0], [1, 0, 1], [0, 0, 0]]
    assert bigram_counts([3], 4).sum() == 0
    with pytest.raises(ValueError, match="lie in"):
        bigram_counts([0, 5], 5)


def test_add_k_log_probs_normalise_and_smooth():
    counts = torch.tensor([[3, 1, 0], [0, 0, 0]])
    log_probs = add_k_log_probs(counts, k=1.0)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2))
    assert math.isclose(log_probs[0, 0].exp().item(), 4 / 7, rel_tol=1e-6)
    assert math.isclose(log_probs[1, 2].exp().item(), 1 / 3, rel_tol=1e-6)  # nothing seen: uniform
    assert add_k_log_probs(counts, k=0.0)[0, 2].item() == float("-inf")


def test_bigram_model_matches_the_dense_table():
    doc = [0, 1, 2, 1, 0, 3, END]
    model = NGramModel(2, 5, k=0.5, boundary_id=END).fit([doc])
    table = add_k_log_probs(bigram_counts([END] + doc, 5), k=0.5)  # the document starts after a boundary
    idx = torch.tensor([[END, 0, 1, 2, 3], [1, 1, 1, 0, END]])
    torch.testing.assert_close(model(idx), table[idx])


def test_trigram_probabilities_by_hand():
    model = NGramModel(3, 5, k=1.0, boundary_id=END).fit([[0, 1, 2, END], [0, 1, 3, END]])
    logits = model(torch.tensor([[END, 0, 1]]))
    p = logits.exp()[0]
    assert math.isclose(p[0, 0].item(), (2 + 1) / (2 + 5), rel_tol=1e-6)  # (boundary, boundary) -> 0, twice
    assert math.isclose(p[2, 2].item(), (1 + 1) / (2 + 5), rel_tol=1e-6)  # (0, 1) -> 2 once of twice
    assert math.isclose(p[2, 3].item(), 2 / 7, rel_tol=1e-6)
    unseen = model(torch.tensor([[3, 3]])).exp()[0, 1]
    torch.testing.assert_close(unseen, torch.full((5,), 0.2))
    assert model.num_contexts() == 5


def test_fit_accumulates_and_unigram_ignores_context():
    model = NGramModel(2, 5, boundary_id=END).fit([[0, 1, END]]).fit([[0, 2, END]])
    p = model(torch.tensor([[0]])).exp()[0, 0]
    assert math.isclose(p[1].item(), 2 / 7, rel_tol=1e-6) and math.isclose(p[2].item(), 2 / 7, rel_tol=1e-6)
    unigram = NGramModel(1, 5, k=1.0, boundary_id=END).fit([[0, 0, 1, END]])
    logits = unigram(torch.tensor([[0, 1, 2]]))
    assert torch.equal(logits[0, 0], logits[0, 2])
    assert math.isclose(logits[0, 0, 0].exp().item(), 3 / 9, rel_tol=1e-6)


def test_ngram_log_likelihood_of_documents_through_the_common_interface():
    docs = [[0, 1, 2, END], [2, 2, 1, END]]
    model = NGramModel(2, 5, k=1.0, boundary_id=END).fit(docs)
    direct = []
    for doc in docs:
        logits = model(torch.tensor([[END] + doc[:-1]]))
        direct.append(logits[0].gather(-1, torch.tensor(doc).unsqueeze(-1)).sum().item())
    def summed(**kwargs):
        return [t.sum().item() for t in document_log_likelihoods(model, [d[:-1] for d in docs], END, **kwargs)]

    assert summed() == pytest.approx(direct, rel=1e-6)
    # a bigram model needs one token of context: a tiny sliding window gives the same numbers
    assert summed(context_size=2) == pytest.approx(direct, rel=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0, vocab_size=5), "n >= 1"),
    (dict(n=2, vocab_size=5, k=0), "k > 0"),
    (dict(n=9, vocab_size=1024), "overflow"),
])
def test_bad_arguments_give_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NGramModel(**kwargs)


def test_out_of_range_ids_give_a_clear_error():
    model = NGramModel(2, 5).fit([[0, 1, 4]])
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model(torch.tensor([[0, 7]]))


# The checker of the bigram exercise.

def test_bigram_checker(capsys):
    check.bigram_counts(bigram_counts)
    assert "bigram_counts: 6/6 cases passed" in capsys.readouterr().out

    def transposed(ids, vocab_size):
        return bigram_counts(ids, vocab_size).T

    def skips_last_pair(ids, vocab_size):
        return bigram_counts(ids[:-1], vocab_size)

    for wrong in (transposed, skips_last_pair):
        with pytest.raises(CheckFailed, match="hint"):
            check.bigram_counts(wrong)
