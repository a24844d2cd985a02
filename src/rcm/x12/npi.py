"""NPI check digit (CMS: Luhn over the 10 digits prefixed with the card issuer id 80840), as the 837 guides
require of every NM109 under qualifier XX."""

from __future__ import annotations

import functools


# A pure function of the text, called for every provider of every intake line (a bulk file names the
# same few NPIs thousands of times).
@functools.lru_cache(maxsize=4096)
def npi_check_digit_valid(npi: str) -> bool:
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed("80840" + npi[:9])):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])
