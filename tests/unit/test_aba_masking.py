from hypothesis import given
from hypothesis import strategies as st

from finance.aba import check_digit, is_valid_routing_number
from finance.masking import mask_account_number


# Published routing numbers (Federal Reserve E-Payments Routing Directory entries).
def test_known_routing_numbers_pass():
    for routing in ("011000015", "021000021", "091000019", "121000358", "026009593"):
        assert is_valid_routing_number(routing), routing


def test_altered_digit_fails():
    assert not is_valid_routing_number("021000022")
    assert not is_valid_routing_number("091000018")


def test_malformed_routing_numbers_fail():
    for bad in ("", "02100002", "0210000211", "02100002a", "０２１０００００２１", " 21000021"):
        assert not is_valid_routing_number(bad), repr(bad)


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_check_digit_completes_a_valid_number(prefix):
    assert is_valid_routing_number(prefix + check_digit(prefix))


@given(st.text(alphabet="0123456789", min_size=8, max_size=8), st.integers(1, 9))
def test_any_wrong_check_digit_fails(prefix, delta):
    wrong = str((int(check_digit(prefix)) + delta) % 10)
    assert not is_valid_routing_number(prefix + wrong)


def test_mask_keeps_only_last_four():
    assert mask_account_number("123456789012") == "********9012"
    assert mask_account_number("1234") == "****"


@given(st.text(alphabet="0123456789", min_size=5, max_size=17))
def test_mask_never_reveals_more_than_last_four(number):
    masked = mask_account_number(number)
    assert len(masked) == len(number)
    assert masked.endswith(number[-4:])
    assert set(masked[:-4]) == {"*"}
