"""統一編號 (business numbers): the Ministry of Finance checksum."""
from __future__ import annotations

_BN_WEIGHTS = (1, 2, 1, 2, 1, 2, 4, 1)


def checksum_ok(number: str) -> bool:
    """The Ministry of Finance rule (since 2023-04-01; it still accepts every older number).

    Multiply the digits by 1,2,1,2,1,2,4,1, add the digits of each product; the
    number is valid when the sum is divisible by 5, or, when the 7th digit is 7,
    when the sum plus 1 is divisible by 5.
    """
    if len(number) != 8 or not number.isdigit():
        return False
    total = 0
    for digit, weight in zip(number, _BN_WEIGHTS):
        product = int(digit) * weight
        total += product // 10 + product % 10
    if total % 5 == 0:
        return True
    return number[6] == "7" and (total + 1) % 5 == 0
