import pytest

from flows.build.queries import DuplicateIndex, clean_query

SEED = ("To make life easy, Ruby decided to order an entire pizza for each of her children and she would split one "
        "with her husband. The pizza restaurant charged $10.00 per pizza and $1.00 per topping. She also needed to "
        "add a $5.00 tip. Including tip, how much would the pizza order cost?")


@pytest.mark.parametrize("raw, task, expected", [
    ("Problem 4: Sam has 3 red and 4 blue pens. How many pens does he have?", "gsm8k",
     "Sam has 3 red and 4 blue pens. How many pens does he have?"),
    ("Sam has 3 pens and buys 4 more. How many pens?\nThis problem involves addition.", "gsm8k",
     "Sam has 3 pens and buys 4 more. How many pens?"),
    ("The truck made $2 * 4 + $5 * 3 = $22. How much did it make?", "gsm8k", None),
    ("Answer: Problem 1:\nTo determine the total cost we add.", "gsm8k", None),
    ("To determine the total cost, how many pizzas did Ruby buy?", "gsm8k", None),
    ("Sam has 3 pens and buys 4 more pens today.", "gsm8k", None),  # no question
    ("Find all $x$ such that\n$$x^2 - 5x + 6 = 0.$$", "math", "Find all $x$ such that\n$$x^2 - 5x + 6 = 0.$$"),
    ("Compute $\\boxed{5}$.", "math", None),
    ("Solution: the roots are 2 and 3.", "math", None),
    ("short?", "gsm8k", None),
])
def test_clean_query(raw, task, expected):
    assert clean_query(raw, task) == expected


def test_near_duplicates_include_truncated_and_extended_copies():
    index = DuplicateIndex([SEED])
    assert index.duplicate(SEED.lower().replace(".", " ."))
    assert index.duplicate(SEED[:200])  # truncated copy
    assert index.duplicate(SEED + " Also, how much per child?")  # extended copy
    assert not index.duplicate("A farmer has 12 cows and buys 3 more at the market. How many cows does he have now?")
