"""Every option of a choice question has its keys, however many options there are."""

from __future__ import annotations

import pytest

from support import require

require("fastapi", "pip install 'datamill[annotate]'")

from datamill.annotate.templating import option_keys  # noqa: E402


def test_up_to_ten_options_take_one_key_each() -> None:
    assert option_keys(3) == ["1", "2", "3"]
    assert option_keys(10)[-2:] == ["9", "0"]  # 0 is the tenth


@pytest.mark.parametrize("n", [11, 12, 99, 100, 250])
def test_past_ten_every_option_has_a_number_of_equal_width(n: int) -> None:
    keys = option_keys(n)
    assert len(set(keys)) == n and len({len(k) for k in keys}) == 1
    assert keys[0] == "1".zfill(len(str(n))) and keys[-1] == str(n)
    # No key is the start of another, so digits typed one by one never stop short.
    assert not any(a != b and b.startswith(a) for a in keys for b in keys)
