"""Tests of agreements (companies): the model, the protocol, invitations, the console."""


def any_org_number(first_eight: str) -> str:
    """The first valid organisation number from these eight digits on (the test data's numbers)."""
    from visma_idp.agreements.orgnr import check_digit

    for i in range(100):
        eight = str(int(first_eight) + i)
        digit = check_digit(eight)
        if digit is not None:
            return eight + str(digit)
    raise AssertionError("no valid organisation number")
