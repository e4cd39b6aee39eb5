"""Static summaries clamped to what the Temporal server accepts (its 400-byte limit on the encoded payload)."""

from core.workflow_summary import ELLIPSIS, SUMMARY_BYTES, encoded_size, fit_summary


def test_a_summary_that_fits_is_left_as_it_is():
    assert fit_summary("Sign-up verification for Credit Union") == "Sign-up verification for Credit Union"
    assert fit_summary(None) is None
    exact = "x" * (SUMMARY_BYTES - 2)  # with its two quotes, exactly the limit
    assert fit_summary(exact) == exact


def test_a_long_or_wide_summary_is_cut_at_a_character_with_an_ellipsis():
    for text in ("x" * 1000, "Ω" * 200, "日本の銀行" * 40, 'say "hi" \\ ' * 60, "😀" * 150):
        fitted = fit_summary(text)
        assert fitted is not None and fitted.endswith(ELLIPSIS)
        assert encoded_size(fitted) <= SUMMARY_BYTES
        assert text.startswith(fitted[: -len(ELLIPSIS)])  # a prefix of whole characters
        assert encoded_size(text[: len(fitted)] + ELLIPSIS) > SUMMARY_BYTES  # and the longest one that fits
