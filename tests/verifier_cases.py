r"""Labelled equivalence table for the verifiers package: (category, gold, pred, task, expected).

Symmetric relations are listed once through ``both`` and expanded in both directions. Labels
encode what a careful human grader would decide; false positives matter most.
"""
from __future__ import annotations

Case = tuple[str, str, str, str, bool]


def both(category: str, a: str, b: str, expected: bool, task: str = "math") -> list[Case]:
    return [(category, a, b, task, expected), (category, b, a, task, expected)]


def one(category: str, gold: str, pred: str, expected: bool, task: str = "math") -> list[Case]:
    return [(category, gold, pred, task, expected)]


CASES: list[Case] = []
_add = CASES.extend

# formatting and spacing commands
_add(both("formatting", r"\frac{1}{2}", r"\!\frac{1}{2}", True))
_add(both("formatting", r"3\sqrt{2}", r"3\,\sqrt{2}", True))
_add(both("formatting", r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})", True))
_add(both("formatting", r"\left[ 1, 4 \right)", "[1,4)", True))
_add(both("formatting", r"\displaystyle\frac{3}{4}", r"\frac34", True))
_add(both("formatting", r"x^2 + 1", r"x^{2}+1", True))
_add(both("formatting", r"2 \cdot 3^{4}", r"2\cdot3^4", True))
_add(both("formatting", r"\mathbf{42}", "42", True))
_add(both("formatting", r"\frac{7}{3}", r"\frac{7}{ 3 }", True))
_add(both("formatting", r"\frac{1}{2}", r"\frac{1}{3}", False))
_add(both("formatting", r"\left( 1, 2 \right)", "(1,3)", False))
_add(one("formatting", "5", r"\boxed{5}", True))
_add(one("formatting", "5", r"$5$", True))
_add(one("formatting", "5", r"\(5\)", True))

# thousands separators
_add(both("thousands", "12345", "12,345", True))
_add(both("thousands", "12345", r"12\,345", True))
_add(both("thousands", "12345", "12 345", True))
_add(both("thousands", "1234567", "1,234,567", True))
_add(both("thousands", "10080", "10{,}080", True))
_add(both("thousands", "12345", "12,346", False))
_add(both("thousands", "1000000", "1,000", False))
_add(both("thousands", "1000", "1,000", True, "number"))
_add(both("thousands", "-3", "-3", True, "number"))

# trailing periods
_add(one("trailing_period", "7", "7.", True))
_add(one("trailing_period", r"\frac{1}{2}", r"\frac{1}{2}.", True))
_add(one("trailing_period", "(1,2)", "(1,2).", True))
_add(one("trailing_period", "7", "8.", False))
_add(one("trailing_period", "7", "7. ", True))

# dollars and currency
_add(both("dollars", "18", r"\$18", True))
_add(both("dollars", "18", r"\$18.00", True))
_add(both("dollars", "18.50", r"\$18.5", True))
_add(one("dollars", "18", r"18 dollars", True))
_add(one("dollars", "18", r"\$19", False))
_add(one("dollars", "18", r"$\$18$", True))
_add(one("dollars", "1000", r"\$1,000", True, "number"))
_add(one("dollars", "1000", r"\$1,001", False, "number"))

# units and words in \text{}
_add(one("units", "10", r"10 \text{ cm}", True))
_add(one("units", "10", r"10\text{ inches}", True))
_add(one("units", "36", r"36 \text{ square feet}", True))
_add(one("units", "36", r"36\text{ cm}^2", True))
_add(one("units", "36", r"36 \mbox{ cm}^2", True))
_add(one("units", "5", r"5 \text{ apples}", True))
_add(one("units", r"10\text{ cm}", "10", True))
_add(one("units", "10", r"11 \text{ cm}", False))
_add(one("units", "4", r"4\text{ mph}", True))
_add(one("units", "4", "4 mph", True))
_add(one("units", "12", r"12 \text{ ways}", True))
_add(one("units", "12", r"13 \text{ ways}", False))

# degrees
_add(both("degrees", "30", r"30^\circ", True))
_add(both("degrees", "30", r"30^{\circ}", True))
_add(both("degrees", "120", r"120^\circ", True))
_add(one("degrees", "30", "30°", True))
_add(one("degrees", "30", r"30 \text{ degrees}", True))
_add(one("degrees", "30", r"60^\circ", False))
_add(one("degrees", r"45^\circ", "45", True))

# percent
_add(both("percent", r"50\%", "50", True))
_add(both("percent", r"12.5\%", "12.5", True))
_add(one("percent", r"50\%", "50%", True))
_add(one("percent", r"50\%", r"50 \text{ percent}", True))
_add(both("percent", r"50\%", "51", False))
_add(both("percent", r"25\%", "0.25", False))
_add(both("percent", r"25\%", "25.5", False))

# \frac, \dfrac, \tfrac
_add(both("frac", r"\frac{3}{4}", r"\dfrac{3}{4}", True))
_add(both("frac", r"\frac{3}{4}", r"\tfrac{3}{4}", True))
_add(both("frac", r"\frac{3}{4}", "3/4", True))
_add(both("frac", r"\frac{6}{8}", r"\frac{3}{4}", True))
_add(both("frac", r"-\frac{1}{2}", r"\frac{-1}{2}", True))
_add(both("frac", r"-\frac{1}{2}", r"\frac{1}{-2}", True))
_add(both("frac", r"\frac{3}{4}", r"\frac{4}{3}", False))
_add(both("frac", r"\frac{1}{2}", r"-\frac{1}{2}", False))
_add(both("frac", r"\frac{a}{b}", r"\dfrac{a}{b}", True))
_add(both("frac", r"\frac{x+1}{2}", r"\frac{1}{2}(x+1)", True))

# decimals vs exact fractions
_add(both("decimal", "0.5", r"\frac{1}{2}", True))
_add(both("decimal", "0.25", "1/4", True))
_add(both("decimal", "0.125", r"\frac{1}{8}", True))
_add(both("decimal", "2.5", r"\frac{5}{2}", True))
_add(both("decimal", "-0.75", r"-\frac{3}{4}", True))
_add(both("decimal", ".5", "0.5", True))
_add(both("decimal", "0.50", "0.5", True))
_add(both("decimal", "0.33", r"\frac{1}{3}", False))
_add(both("decimal", "0.333", r"\frac{1}{3}", False))
_add(both("decimal", "0.67", r"\frac{2}{3}", False))
_add(both("decimal", "3.14", r"\pi", False))
_add(both("decimal", "1.41", r"\sqrt{2}", False))
_add(both("decimal", "0.1", "0.01", False))
_add(both("decimal", "2.0", "2", True))

# repeating decimals
_add(both("repeating", r"0.\overline{3}", r"\frac{1}{3}", True))
_add(both("repeating", r"0.\overline{6}", r"\frac{2}{3}", True))
_add(both("repeating", r"0.1\overline{6}", r"\frac{1}{6}", True))
_add(both("repeating", r"0.\overline{142857}", r"\frac{1}{7}", True))
_add(both("repeating", r"1.\overline{27}", r"\frac{14}{11}", True))
_add(both("repeating", r"0.\overline{3}", "0.3", False))
_add(both("repeating", r"0.\overline{3}", "0.33", False))
_add(both("repeating", r"0.\overline{12}", r"\frac{4}{33}", True))
_add(both("repeating", r"0.\overline{12}", r"\frac{12}{100}", False))

# mixed numbers
_add(both("mixed", r"2\frac{1}{2}", r"\frac{5}{2}", True))
_add(both("mixed", r"2\frac{1}{2}", "2.5", True))
_add(both("mixed", "2 1/2", r"\frac{5}{2}", True))
_add(both("mixed", r"-1\frac{3}{4}", r"-\frac{7}{4}", True))
_add(both("mixed", r"3\frac{1}{3}", r"\frac{10}{3}", True))
_add(both("mixed", r"2\frac{1}{2}", "1", False))
_add(both("mixed", r"2\frac{1}{2}", r"\frac{3}{2}", False))

# radicals
_add(both("radicals", r"2\sqrt{2}", r"\sqrt{8}", True))
_add(both("radicals", r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", True))
_add(both("radicals", r"3\sqrt{3}", r"\sqrt{27}", True))
_add(both("radicals", r"\sqrt{12}", r"2\sqrt{3}", True))
_add(both("radicals", r"\frac{\sqrt{3}}{3}", r"\frac{1}{\sqrt{3}}", True))
_add(both("radicals", r"\sqrt[3]{16}", r"2\sqrt[3]{2}", True))
_add(both("radicals", r"5+2\sqrt{6}", r"(\sqrt{2}+\sqrt{3})^2", True))
_add(both("radicals", r"2\sqrt{2}", r"\sqrt{6}", False))
_add(both("radicals", r"2\sqrt{2}", r"2\sqrt{3}", False))
_add(both("radicals", r"\sqrt{2}", "1.414", False))
_add(both("radicals", r"\frac{\sqrt{2}}{2}", r"\frac{\sqrt{3}}{2}", False))
_add(both("radicals", r"4\sqrt{2}", r"\sqrt{32}", True))
_add(both("radicals", r"\sqrt2", r"\sqrt{2}", True))

# pi expressions
_add(both("pi", r"2\pi", r"\pi \cdot 2", True))
_add(both("pi", r"\frac{\pi}{2}", r"\frac{1}{2}\pi", True))
_add(both("pi", r"\frac{\pi}{2}", r"0.5\pi", True))
_add(both("pi", r"4\pi", r"4 \pi", True))
_add(both("pi", r"2\pi", "6.28", False))
_add(both("pi", r"\frac{\pi}{3}", r"\frac{\pi}{6}", False))
_add(both("pi", r"9\pi - 18", r"9(\pi-2)", True))
_add(both("pi", r"\frac{4}{3}\pi", r"\frac{4\pi}{3}", True))
_add(both("pi", r"16\pi", r"16", False))

# scientific notation
_add(both("scientific", "1.2e5", "120000", True))
_add(both("scientific", r"1.2\times10^5", "120000", True))
_add(both("scientific", r"1.2 \times 10^{5}", "1.2e5", True))
_add(both("scientific", r"3.5\cdot10^{-3}", "0.0035", True))
_add(both("scientific", "1.2E+05", "120000", True))
_add(both("scientific", r"1.2\times10^5", "12000", False))
_add(both("scientific", "1e-3", "0.001", True))
_add(both("scientific", "1e-3", "0.01", False))

# equations vs values
_add(both("equation", "x=5", "5", True))
_add(both("equation", "y = 2x+3", "2x+3", True))
_add(both("equation", r"x=\frac{1}{2}", "0.5", True))
_add(both("equation", "x=5", "6", False))
_add(both("equation", "x=5", "y=5", False))
_add(both("equation", "k = 7", "7", True))
_add(both("equation", "y=2x+3", "y=3+2x", True))
_add(both("equation", "y=2x+3", "y=2x-3", False))
_add(both("equation", "2x+3y=6", "4x+6y=12", True))
_add(both("equation", "2x+3y=6", "2x+3y=7", False))
_add(both("equation", r"f(x) = x^2", "x^2", True))

# sets and multiple roots (unordered)
_add(both("sets", "1,2", "2,1", True))
_add(both("sets", "1, 2", r"\{1,2\}", True))
_add(both("sets", r"\{1,2\}", r"\{2,1\}", True))
_add(both("sets", "-2, 3", "3, -2", True))
_add(both("sets", "x=1, x=2", "1,2", True))
_add(both("sets", r"x=2 \text{ or } x=-3", "-3,2", True))
_add(both("sets", r"\pm 2", "2,-2", True))
_add(both("sets", r"1 \pm \sqrt{2}", r"1+\sqrt{2}, 1-\sqrt{2}", True))
_add(both("sets", "1,2", "1,2,3", False))
_add(both("sets", "1,2", "1,3", False))
_add(both("sets", "1,2", "(2,1)", False))
_add(both("sets", "1,2", "[1,2]", False))
_add(both("sets", r"\{1,2\}", "(1,2)", False))
_add(both("sets", r"\frac{1}{2}, -3", r"-3, 0.5", True))
_add(both("sets", r"2, 4, 6", r"6, 2, 4", True))
_add(both("sets", r"2, 4, 6", r"2, 4", False))
_add(both("sets", "1,2", "1 and 2", True))

# tuples and points (ordered)
_add(both("tuples", "(1,2)", "(1, 2)", True))
_add(both("tuples", "(1,2)", "(2,1)", False))
_add(both("tuples", "(1,2,3)", "(1,2,3)", True))
_add(both("tuples", "(1,2,3)", "(3,2,1)", False))
_add(both("tuples", r"(3, \frac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)", True))
_add(both("tuples", r"(\frac{1}{2}, 3)", "(0.5, 3)", True))
_add(both("tuples", r"(2\sqrt{2}, 1)", r"(\sqrt{8}, 1)", True))
_add(both("tuples", r"(2\sqrt{2}, 1)", r"(\sqrt{8}, 2)", False))
_add(both("tuples", "(1,2)", "(1,2,3)", False))
_add(both("tuples", "(-1,4)", "(-1, 4)", True))
_add(both("tuples", "(1,2)", "1,2", True))

# intervals (ordered; open vs closed matters)
_add(both("intervals", "[1,2]", "[1, 2]", True))
_add(both("intervals", "(1,2)", "[1,2]", False))
_add(both("intervals", "[1,2)", "[1,2]", False))
_add(both("intervals", "(1,2]", "[1,2)", False))
_add(both("intervals", r"(-\infty, 3]", r"(-\infty,3]", True))
_add(both("intervals", r"(-\infty, 3]", r"(-\infty,3)", False))
_add(both("intervals", r"[2,\infty)", r"[2, \infty)", True))
_add(both("intervals", r"(-\infty,1)\cup(2,\infty)", r"(2,\infty)\cup(-\infty,1)", True))
_add(both("intervals", r"(-\infty,1)\cup(2,\infty)", r"(-\infty,1]\cup(2,\infty)", False))
_add(both("intervals", r"[\frac{1}{2}, 3)", "[0.5, 3)", True))
_add(both("intervals", r"(0,\infty)", r"(0, \infty)", True))
_add(both("intervals", r"(0,\infty)", r"[0, \infty)", False))

# inequalities vs intervals
_add(both("inequality", "x<3", r"(-\infty,3)", True))
_add(both("inequality", r"x \le 3", r"(-\infty,3]", True))
_add(both("inequality", r"x\geq 2", r"[2,\infty)", True))
_add(both("inequality", "x>2", r"(2,\infty)", True))
_add(both("inequality", "1<x<3", "(1,3)", True))
_add(both("inequality", r"1 \le x < 3", "[1,3)", True))
_add(both("inequality", "x<3", r"(-\infty,3]", False))
_add(both("inequality", "x>2", r"[2,\infty)", False))
_add(both("inequality", r"-2 < x \leq 5", "(-2,5]", True))
_add(both("inequality", r"-2 < x \leq 5", "[-2,5]", False))
_add(both("inequality", "3 > x", r"(-\infty,3)", True))

# matrices and vectors
_add(both("matrix", r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{bmatrix}1&2\\3&4\end{bmatrix}", True))
_add(both("matrix", r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{pmatrix}1&3\\2&4\end{pmatrix}", False))
_add(both("matrix", r"\begin{pmatrix}\frac{1}{2}&0\\0&1\end{pmatrix}", r"\begin{pmatrix}0.5&0\\0&1\end{pmatrix}", True))
_add(both("matrix", r"\begin{pmatrix} 2 \\ -1 \end{pmatrix}", r"\begin{pmatrix}2\\-1\end{pmatrix}", True))
_add(both("matrix", r"\begin{pmatrix} 2 \\ -1 \end{pmatrix}", r"\begin{pmatrix}-1\\2\end{pmatrix}", False))
_add(both("matrix", r"\begin{pmatrix} 2 \\ -1 \end{pmatrix}", "(2,-1)", True))
_add(both("matrix", r"\begin{pmatrix}1&2\end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}", False))
_add(both("matrix", r"\begin{pmatrix}\sqrt{8}\\1\end{pmatrix}", r"\begin{pmatrix}2\sqrt{2}\\1\end{pmatrix}", True))
_add(both("matrix", r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{pmatrix}1&2\\3&5\end{pmatrix}", False))

# base-n numbers
_add(both("base", "1011_2", "1011_{2}", True))
_add(both("base", "1011_2", "1011_3", False))
_add(both("base", "1011_2", "1011", True))
_add(both("base", "1011_2", "11", False))
_add(both("base", "1011_2", "1101_2", False))
_add(both("base", "A3_{16}", "a3_{16}", True))
_add(both("base", "314_{6}", "314_6", True))
_add(both("base", "314_{6}", "314_{7}", False))
_add(both("base", "314_{6}", "118", False))
_add(both("base", r"10001_2", r"10001_{(2)}", True))

# multiple-choice letters
_add(both("choice", "A", r"\text{(A)}", True))
_add(both("choice", "(B)", "B", True))
_add(both("choice", "(B)", r"\textbf{(B)}", True))
_add(both("choice", "C", "D", False))
_add(both("choice", "(C)", "(D)", False))
_add(one("choice", "(C)", "The answer is (C).", True))
_add(one("choice", "(C)", "The answer is (D).", False))
_add(both("choice", r"\text{(E)}", "E", True))

# text answers
_add(both("text", r"\text{Monday}", "Monday", True))
_add(both("text", r"\text{Monday}", "monday", True))
_add(both("text", r"\text{Monday}", "Tuesday", False))
_add(both("text", r"\text{odd}", "odd", True))
_add(both("text", r"\text{odd}", "even", False))
_add(both("text", r"\text{odd}", "dod", False))
_add(both("text", r"\text{east}", r"\text{East}", True))
_add(both("text", r"\text{Devon}", r"\text{Evelyn}", False))
_add(both("text", r"\text{yes}", "no", False))

# nested \boxed{}
_add(one("nested_boxed", "5", r"\boxed{\boxed{5}}", True))
_add(one("nested_boxed", r"\frac{1}{2}", r"The answer is $\boxed{\frac{1}{2}}$.", True))
_add(one("nested_boxed", "(1,2)", r"So the point is \boxed{(1,2)}.", True))
_add(one("nested_boxed", r"\{1,2\}", r"We find \boxed{\{1,2\}}", True))
_add(one("nested_boxed", "5", r"\boxed{\boxed{6}}", False))
_add(one("nested_boxed", r"\frac{3}{4}", r"Hence $\boxed{\dfrac{3}{4}}$", True))
_add(one("nested_boxed", r"\sqrt{2}", r"Thus \fbox{$\sqrt{2}$}.", True))

# several boxed answers: the last one counts
_add(one("last_boxed", "5", r"First \boxed{4}. Oops, correcting: \boxed{5}", True))
_add(one("last_boxed", "4", r"First \boxed{4}. Oops, correcting: \boxed{5}", False))
_add(one("last_boxed", "12", "So $\\boxed{10}$ is wrong.\nFinal: $\\boxed{12}$", True))
_add(one("last_boxed", "10", "So $\\boxed{10}$ is wrong.\nFinal: $\\boxed{12}$", False))

# whole responses
_add(one("response", "18", "Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = 18 dollars.\n#### 18", True, "number"))
_add(one("response", "18", "She makes 9 * 2 = 18 dollars a day. The answer is 18.", True, "number"))
_add(one("response", "18", "She makes 9 * 2 = 18 dollars a day. The answer is $18.", True, "number"))
_add(one("response", "18", "She makes 9 * 2 = 18 dollars a day. The answer is 17.", False, "number"))
_add(one("response", "1000", "Total is 1,000 dollars.\n#### 1,000", True, "number"))
_add(one("response", "-3", "The temperature drops to -3.\nThe answer is -3", True, "number"))
_add(one("response", "3", "The temperature drops to -3.\nThe answer is -3", False, "number"))
_add(one("response", r"\frac{1}{2}", "We compute the probability.\nThe final answer is $\\frac{1}{2}$. I hope it is correct.", True))
_add(one("response", "6", "Adding gives $2+4=6$.\nFinal Answer: The final answer is $6$. I hope it is correct.", True))
_add(one("response", "6", "Adding gives 6.\n**Answer:** 6", True))
_add(one("response", "7", "Adding gives 6.\n**Answer:** 6", False))
_add(one("response", "x=5", "Solving, we get $x = 5$, so the answer is $\\boxed{x=5}$.", True))
_add(one("response", "5", "Solving, we get $x = 5$, so the answer is $\\boxed{x=5}$.", True))
_add(one("response", "25", "Step 1: 5*5 = 25\nStep 2: done\nThe answer is: 25", True, "number"))

# no committed final answer: never correct, even when a stray number equals the gold
_add(one("no_answer", "18", "She sells 9 eggs and makes 18 dollars every day at the market.", False, "number"))
_add(one("no_answer", "5", "Let x be the number. Then 2x = 10, so x is 5, I think, but let me check again.", False))
_add(one("no_answer", "5", "We have 5 apples.\nThen we add more apples to get more.", False))
_add(one("no_answer", "5", r"We get \boxed{", False))
_add(one("no_answer", "5", r"So \boxed{5} ... wait, the final box: \boxed{", False))
_add(one("no_answer", "12", "", False))
_add(one("no_answer", "12", "   ", False))
_add(one("no_answer", "12", r"\boxed{}", False))

# algebraic and symbolic expressions
_add(both("symbolic", "x^2-1", "(x-1)(x+1)", True))
_add(both("symbolic", "x^2-1", "(x-1)^2", False))
_add(both("symbolic", r"\frac{x}{2}", "0.5x", True))
_add(both("symbolic", "2^{10}", "1024", True))
_add(both("symbolic", "2^{10}", "1000", False))
_add(both("symbolic", r"\binom{5}{2}", "10", True))
_add(both("symbolic", "5!", "120", True))
_add(both("symbolic", r"\log_2 8", "3", True))
_add(both("symbolic", r"e^{2}", "e^2", True))
_add(both("symbolic", r"\sin(\pi/6)", r"\frac{1}{2}", True))
_add(both("symbolic", "2^{1/2}", r"\sqrt{2}", True))
_add(both("symbolic", r"\frac{1}{x+1}", r"\frac{1}{x}+1", False))
_add(both("symbolic", "a+b", "b+a", True))
_add(both("symbolic", "3a+2b", "3b+2a", False))
_add(both("symbolic", r"\sqrt{x^2}", "x", False))
_add(both("symbolic", r"-\frac{1}{2}x+3", r"3-\frac{x}{2}", True))
_add(both("symbolic", "10^{5}", "100000", True))
_add(both("symbolic", r"6.02\times10^{23}", "6.02e23", True))
_add(both("symbolic", r"\frac{\sqrt{6}}{3}", r"\sqrt{\frac{2}{3}}", True))
_add(both("symbolic", r"\sqrt{50}", r"5\sqrt{2}", True))
_add(both("symbolic", r"\sqrt{50}", r"5\sqrt{3}", False))

# more formatting and units seen in model outputs
_add(both("formatting", r"\left\{ 1, 2 \right\}", r"\{1,2\}", True))
_add(both("formatting", r"\dfrac{\sqrt{3}}{2}", r"\frac{\sqrt3}{2}", True))
_add(both("formatting", r"x \in [1,2]", "[1,2]", True))
_add(one("units", "20", r"20\text{ m/s}", True))
_add(one("units", "9", r"9 \text{ square units}", True))
_add(one("units", "3", r"3\text{ hours}", True))
_add(one("dollars", "5", r"\$5.00", True))
_add(one("dollars", "5", r"5 \text{ dollars}", True))
_add(both("thousands", "1234.5", "1,234.5", True))
_add(both("mixed", r"1\frac{1}{2}", "1.5", True))
_add(both("mixed", r"1 \frac{1}{2}", r"\frac{3}{2}", True))
_add(both("repeating", r"0.\overline{45}", r"\frac{5}{11}", True))
_add(both("repeating", r"0.4\overline{5}", r"\frac{41}{90}", True))
_add(both("repeating", r"0.4\overline{5}", r"\frac{5}{11}", False))
_add(both("intervals", r"\mathbb{R}", r"(-\infty,\infty)", True))
_add(both("inequality", r"-1 \le x \le 1", "[-1,1]", True))
_add(both("inequality", r"x<-1 \text{ or } x>1", r"(-\infty,-1)\cup(1,\infty)", True))
_add(both("inequality", r"x<-1 \text{ or } x>1", r"(-\infty,-1]\cup(1,\infty)", False))
_add(both("equation", r"a=2, b=3", "(2,3)", True))
_add(both("equation", r"a=2, b=3", "(3,2)", False))
_add(both("sets", "x=-1, 1", r"\{-1,1\}", True))
_add(both("base", "10_{16}", "16", False))
_add(both("base", "22_3", "22_{3}", True))
_add(both("choice", "(C)", "(C) 12", True))
_add(both("text", r"\text{Sunday}", "Sunday", True))
_add(both("complex", "1+2i", "2i+1", True))
_add(both("complex", "3-4i", "3+4i", False))
_add(both("scientific", r"2 \times 10^{-3}", "0.002", True))

# GSM8K answers
_add(one("number", "18", "18.00", True, "number"))
_add(one("number", "18", r"\$18", True, "number"))
_add(one("number", "18", "18.5", False, "number"))
_add(one("number", "-3", "−3", True, "number"))
_add(one("number", "1,000", "1000", True, "number"))
_add(one("number", "10000", "10,000", True, "number"))
_add(one("number", "5", "Each box holds 5.\n#### 5", True, "number"))
_add(one("number", "5", "Each box holds 5.\n#### 6", False, "number"))
_add(one("number", "70000", "He made a profit of 200000-130000=$70,000.\n#### 70000", True, "number"))
_add(one("number", "70000", "So the profit is $70,000. The answer is $70,000.", True, "number"))
_add(one("number", "3", "So she needs 3 bolts.\nThe answer is 3 bolts.", True, "number"))


# independent probes written after the first table (kept as regression cases)
_PROBES_MATH = [
 # (gold, pred, expected)
 (r"\frac{1}{4}", "25\\%", False), ("10", "10.0", True), ("10", "10.01", False),
 (r"\$5", "5", True), ("5", "5 \\text{ and } 6", False),
 (r"3 + \sqrt{5}", r"\sqrt{5}+3", True), (r"\frac{3}{\sqrt{5}}", r"\frac{3\sqrt{5}}{5}", True),
 (r"(1, -2)", r"(1,-2)", True), (r"(3,4)", r"\langle 3,4 \rangle", True),
 (r"\{1,2,3\}", r"\{3,2,1\}", True), (r"\{1,2,3\}", r"\{1,2\}", False),
 (r"x^2+y^2=1", r"y^2+x^2=1", True), (r"y=x^2", r"x^2", True),
 (r"x=3", r"x=3", True), (r"x = 3", r"3", True), (r"x=3", r"x = -3", False),
 (r"\text{B}", "B", True), (r"B", r"\text{(B)}", True), (r"B", r"(B) 5", True), ("B","C",False),
 (r"5\sqrt{2}", r"5 \sqrt 2", True), (r"\sqrt{3}/2", r"\frac{\sqrt{3}}{2}", True),
 (r"\frac{9}{4}", r"2.25", True), (r"\frac{9}{4}", r"2\frac{1}{4}", True), (r"\frac{9}{4}", r"2.24", False),
 (r"1.5", "3/2", True), ("0.3", r"\frac{1}{3}", False), (r"-\frac{2}{3}", r"-0.\overline{6}", True),
 ("2", r"x=2", True), ("2", r"x=-2", False), ("2,3", r"x=2, y=3", True),
 (r"(2,3)", r"x=2, y=3", True), (r"(2,3)", r"(x,y)=(2,3)", True),
 (r"\infty", r"\infty", True), (r"-\infty", r"\infty", False),
 (r"\emptyset", r"\varnothing", True), (r"\text{no solution}", r"\text{No solution}", True),
 (r"1", r"\cos 0", True), (r"\frac{\pi}{4}", r"45^\circ", False),
 (r"12", r"12\%", True), (r"0", r"-0", True), (r"\frac{1}{2}", r"\frac{2}{4}", True),
 (r"2^{3}", "8", True), ("8", "2^3", True), ("1000", "10^3", True),
 ("3", "3.0", True), ("3", "3.00001", False), ("100", "1e2", True),
 (r"\frac{1}{3}", r"0.333\ldots", False), (r"a^2+b^2", r"b^2+a^2", True),
 (r"\sqrt{2}", r"2^{0.5}", True), (r"\sqrt[3]{2}", r"2^{1/3}", True),
 (r"3", "three", False), ("5", r"\boxed{5} \text{ apples}", True),
 ("5", "**5**", True), ("5", "5 (five)", False), ("24", "4!", True),
 ("6", r"\binom{4}{2}", True), (r"\frac{5}{2}", "5/2", True), (r"\frac52", r"\frac{5}{2}", True),
 (r"x \in (1,2)", "(1,2)", True), (r"(1,2)", r"\{1,2\}", False),
 ("-3", "- 3", True), ("-3", "3", False), ("x+1", "1+x", True), ("2x", "x2", True),
 (r"\$1.50", r"1.5", True), ("1.50", "1.5", True), ("1,5", "1.5", False),
 ("5", "5,", True), ("-5", "−5", True), ("5", "+5", True),
 (r"\frac{-1}{3}", r"-\frac13", True), (r"\dfrac{1}{3}", "1/3", True),
 (r"2\pi r", r"2 r \pi", True), (r"\pi r^2", r"r^2\pi", True),
]
for _gold, _pred, _expected in _PROBES_MATH:
    _add(one("probe", _gold, _pred, _expected))

_PROBES_RESPONSE = [
 ("5", "The answer is 5 or 6.", "math", False), ("5", "The answer is not 5.", "math", False),
 ("5", "5\n", "math", True), ("5", "\n 5 \n", "math", True),
 ("42", "Final answer: 42", "math", True), ("42", "So, answer = 42", "math", True),
 ("42", "Some reasoning.\n\\[\n\\boxed{42}\n\\]", "math", True),
 ("5", "Therefore the answer is $x = 5$.", "math", True),
 ("18", "The answer is: $18.00", "number", True), ("1000", "#### $1,000", "number", True),
 ("18", "18", "number", True), ("18", "18 dollars", "number", True), ("18", "$18", "number", True),
 ("18", "Janet makes $18.\nThe answer is 18 dollars.", "number", True),
 ("18", "Janet makes $18.", "number", True),  # issue 27: a short statement states its value
 ("18", "The answer is 9 * 2 = 18", "number", True),
 ("5", "I think it's 4. Actually \\boxed{5}. Hmm wait it should be 4 so the answer is 4.", "math", False),  # issue 27: the last commitment wins
 (r"\frac{1}{2}", "The probability is $\\frac{1}{2}$.", "math", True),  # issue 27: short statement
 ("2", r"The answer is \(2\).", "math", True), ("2", "The answer is **2**.", "math", True),
 ("7", "The final answer is 7", "number", True),
 ("7", "Answer: 7\nExplanation: we computed 3+4.", "math", True),
 ("10", "#### 10\nThe answer is 11", "number", False),
 ("3", "So there are 3.", "math", True),  # issue 27: short statement
 (r"\text{(D)}", "The correct option is (D).", "math", False),
 (r"\text{(D)}", "The answer is D.", "math", True),
 ("12", "The answer is $\\boxed{12}$ cm.", "math", True),
 ("1,2", "The roots are $\\boxed{1, 2}$", "math", True),
 ("1,2", "The roots are $\\boxed{1}$ and $\\boxed{2}$", "math", True),  # issue 27: boxes joined by "and"
]
for _gold, _pred, _task, _expected in _PROBES_RESPONSE:
    _add(one("probe_response", _gold, _pred, _expected, _task))



# issue 13: LaTeX thousands separators (1{,}250 and 1,\!250), with look-alike decimals and lists
_add(both("thousands_latex", "1250", r"1{,}250", True))
_add(both("thousands_latex", "1250", r"1,\!250", True))
_add(both("thousands_latex", r"1{,}250", r"1,\!250", True))
_add(both("thousands_latex", "1250000", r"1,\!250,\!000", True))
_add(both("thousands_latex", "10000", r"\$10,\!000", True))
_add(both("thousands_latex", "1250", r"1,\!250", True, "number"))
_add(one("thousands_latex", "1250", r"We add them up. The answer is $1{,}250$.", True, "number"))
_add(one("thousands_latex", "1250", "Adding the two costs.\n#### 1,\\!250", True, "number"))
_add(both("thousands_latex", "1250", "1.250", False))
_add(both("thousands_latex", r"1{,}250", "1.250", False))
_add(both("thousands_latex", r"1,\!250", "1.25", False))
_add(both("thousands_latex", r"1{,}250", "12500", False))
_add(both("thousands_latex", "125", r"1{,}25", False))
_add(one("thousands_latex", "1", r"We add them up. The answer is 1,\!250", False, "number"))
_add(one("thousands_latex", "250", r"We add them up. The answer is 1,\!250", False, "number"))

# issue 13: the same expression with its terms reordered, next to sign and coefficient changes
_add(both("reordered", "a - b", "-b + a", True))
_add(both("reordered", "x-y", "-y+x", True))
_add(both("reordered", "2a - 3b", "-3b + 2a", True))
_add(both("reordered", "a - b + c", "c - b + a", True))
_add(both("reordered", "x^2 - y", "-y + x^2", True))
_add(both("reordered", "a - b", "b - a", False))
_add(both("reordered", "a + b", "a - b", False))
_add(both("reordered", "2a - 3b", "-2a + 3b", False))
_add(both("reordered", "a - b + c", "c - a + b", False))
_add(both("reordered", "a - b", r"\text{a - c}", False))

# issue 13: mixed numbers, and products that only look like them
_add(both("mixed", r"\frac{7}{2}", r"3\frac{1}{2}", True))
_add(both("mixed", r"\frac{7}{2}", r"3\tfrac{1}{2}", True))
_add(both("mixed", r"-\frac{7}{2}", r"-3\frac{1}{2}", True))
_add(one("mixed", r"\frac{7}{2}", "3½", True))
_add(one("mixed", "15.5", "3½", False))
_add(both("mixed", r"\frac{7}{2}", r"-3\frac{1}{2}", False))
_add(both("mixed", r"\frac{3}{2}", r"3\frac{1}{2}", False))
_add(both("mixed", r"\frac{3}{2}", r"3 \cdot \frac{1}{2}", True))
_add(both("mixed", r"\frac{7}{2}", r"3 \cdot \frac{1}{2}", False))
_add(both("mixed", r"\frac{7}{2}", r"3\times\frac{1}{2}", False))
_add(both("mixed", r"\frac{3x}{2}", r"3\frac{x}{2}", True))
_add(both("mixed", r"\frac{7x}{2}", r"3\frac{x}{2}", False))
_add(one("mixed", "3.5", "Half of 7 is 3 1/2.\nThe answer is 3 1/2.", True, "number"))
_add(one("mixed", "3", "Half of 7 is 3 1/2.\nThe answer is 3 1/2.", False, "number"))
_add(one("mixed", "3", "Half of 7 is $3\\frac{1}{2}$. The answer is $3\\frac{1}{2}$.", False, "number"))
_add(one("mixed", "3", "Each gets three quarters.\n#### 3/4", False, "number"))
_add(one("mixed", "2", "Each gets a share. The answer is 2/3 of the cake.", False, "number"))

# issue 13: the real line minus points, written as a set difference or x != a
_R1 = r"(-\infty,1)\cup(1,\infty)"
_add(both("complement", _R1, r"\mathbb{R} \setminus \{1\}", True))
_add(both("complement", _R1, r"\mathbb{R}-\{1\}", True))
_add(both("complement", _R1, r"x \neq 1", True))
_add(both("complement", r"(-\infty,-2)\cup(-2,3)\cup(3,\infty)", r"\mathbb{R}\setminus\{3,-2\}", True))
_add(both("complement", r"(-\infty,\frac{1}{2})\cup(\frac{1}{2},\infty)", r"\mathbb{R}\setminus\{0.5\}", True))
_add(both("complement", _R1, r"\mathbb{R}\setminus\{-1\}", False))
_add(both("complement", r"(-\infty,1]\cup(1,\infty)", r"\mathbb{R}\setminus\{1\}", False))
_add(both("complement", _R1, r"\mathbb{R}\setminus\{1,2\}", False))
_add(both("complement", r"(-\infty,\infty)", r"\mathbb{R}\setminus\{1\}", False))
_add(both("complement", r"\mathbb{R}\setminus\{1\}", r"\{1\}", False))
_add(both("complement", r"x \ne 1", r"x \ne -1", False))


# Whole responses judged with mode="flexible": (category, gold, response, task, expected).
FLEXIBLE_CASES: list[Case] = []
_flex = FLEXIBLE_CASES.extend

_P27 = ("There are 7 equally likely outcomes and 2 of them are favourable, "
        "so the probability is $\\frac{2}{7}$.")
_flex(one("closing_math", r"\frac{2}{7}", _P27, True))
_flex(one("closing_math", "7", _P27, False))
_flex(one("closing_math", "2", _P27, False))
_flex(one("closing_math", r"\frac{3}{7}", _P27, False))
_flex(one("closing_math", r"\frac{2}{7}", "Of the 7 outcomes, 2 are favourable.\nThe probability is \\(\\frac{2}{7}\\).", True))
_flex(one("closing_math", r"\frac{2}{7}", "Of the 14 outcomes, 4 are favourable.\nHence the probability equals $\\dfrac{4}{14}$.", True))
_flex(one("closing_math", r"\frac{2}{7}", "Of the 7 outcomes, 2 are favourable, so the probability is $\\frac{2}{7}$. I hope it is correct.", True))
_flex(one("closing_math", "7", "Of the 7 outcomes, 2 are favourable, so the probability is $\\frac{2}{7}$. I hope it is correct.", False))
_flex(one("closing_math", r"\frac{2}{7}", "Of the 7 outcomes, 2 are favourable, so we can write $P = \\frac{2}{7}$.", True))
_flex(one("closing_math", "12", "The rectangle measures 3 by 4, so its area is 12 square units.", True))
_flex(one("closing_math", "13", "The rectangle measures 3 by 4, so its area is 12 square units.", False))
_flex(one("closing_math", "1024", "Doubling ten times from one, the final amount is $2^{10}$.", True))
_flex(one("closing_math", "10", "Doubling ten times from one, the final amount is $2^{10}$.", False))
_flex(one("closing_math", "2", "Squaring both sides of the equation, we find $x^2$.", False))
_flex(one("closing_math", r"\frac{2}{7}", "There are 7 outcomes in all, so the probability is less than $\\frac{3}{7}$.", False))
_flex(one("closing_gsm8k", "2300", "She earns 1,500 dollars and then 800 more.\nThe total is 2,300 dollars.", True, "number"))
_flex(one("closing_gsm8k", "2300", "She earns 1,500 dollars and then 800 more. The total is $2,300.", True, "number"))
_flex(one("closing_gsm8k", "2300", "She earns $1{,}500$ dollars and then 800 more. The total is $2{,}300$ dollars.", True, "number"))
_flex(one("closing_gsm8k", "2300", "She earns 1,\\!500 dollars and then 800 more. The total is 2,\\!300 dollars.", True, "number"))
_flex(one("closing_gsm8k", "300", "She earns 1,500 dollars and then 800 more. The total is 2{,}300 dollars.", False, "number"))
_flex(one("closing_gsm8k", "300", "She earns 1,500 dollars and then 800 more. The total is 2,\\!300 dollars.", False, "number"))
_flex(one("closing_gsm8k", "2", "She earns 1,500 dollars and then 800 more.\nThe total is 2,300 dollars.", False, "number"))
_flex(one("closing_gsm8k", "2300", "She earns 1,500 dollars and then 800 more. The total is 2.300 dollars.", False, "number"))
_flex(one("closing_gsm8k", "8", "She buys 5 apples and 3 pears, so the total is 8 fruits.", True, "number"))
_flex(one("closing_gsm8k", "5", "She buys 5 apples and 3 pears, so the total is 8 fruits.", False, "number"))
_flex(one("closing_gsm8k", "18", "She sells 9 eggs at 2 dollars each and makes $18 every day.", True, "number"))
_flex(one("closing_gsm8k", "3", "Each of the 4 friends gets an equal part, so each gets 3/4 of a pizza.", False, "number"))

# rational-function identities decided in-process (verifiers.poly), next to near misses
_add(both("polynomial", "(x+1)^2", "x^2+2x+1", True))
_add(both("polynomial", "(x+1)^2", "x^2+x+1", False))
_add(both("polynomial", "(a-b)(a+b)", "a^2-b^2", True))
_add(both("polynomial", "(a-b)^2", "a^2-b^2", False))
_add(both("polynomial", r"\frac{x^2-1}{x-1}", "x+1", True))
_add(both("polynomial", r"\frac{1}{x}+\frac{1}{y}", r"\frac{x+y}{xy}", True))
_add(both("polynomial", r"\frac{1}{x}+\frac{1}{y}", r"\frac{2}{x+y}", False))
_add(both("polynomial", r"0.5x^2", r"\frac{x^2}{2}", True))
_add(both("polynomial", r"0.33x", r"\frac{x}{3}", False))
_add(both("polynomial", r"x^{10}", r"x^{9}x", True))
_add(both("polynomial", r"3x \cdot y", "3yx", True))
_add(both("polynomial", "2f(x)", "2xf", False))
_add(both("polynomial", "2i", "i+i", True))
_add(both("polynomial", "A - B", "a - b", False))
_add(one("short_statement", "0", "So there are 0.", True))  # issue 27: a short statement states its value
_add(one("no_answer", "0", "not 0", False))
_add(one("no_answer", "0", "no 0", False))
_add(one("no_answer", "1", "exp0", False))
_add(one("units", "3", "3xy", False))
_add(one("units", "2", "2ab", False))
_add(one("units", "10", "10 cm", True))
_add(both("polynomial", r"2\pi r + \pi", r"\pi(2r+1)", True))
_add(both("polynomial", r"\frac{\pi}{2} - 1", r"\frac{\pi - 2}{2}", True))
_add(both("polynomial", r"\pi^2", r"9.8696", False))
_add(both("polynomial", r"\frac{22}{7}", r"\pi", False))
_add(both("polynomial", r"\frac{d}{dx}x^2", "x", False))
_add(both("intervals", r"(-\infty, 2)", r"(-\infty, \infty)", False))
_add(both("intervals", r"(2, \infty)", r"(2, 3)", False))


# issue 27: several boxes that together are the answer (only separators between them), next to
# boxes that are steps, a box withdrawn in its own sentence, and a box quoted on its line
_add(one("multi_boxed", r"\{1,2,3\}", r"The solutions are \boxed{1}, \boxed{2}, \boxed{3}.", True))
_add(one("multi_boxed", "(2,2),(6,2)", r"The pairs are $\boxed{(2,2)}$ and $\boxed{(6,2)}$.", True))
_add(one("multi_boxed", r"\boxed{1} red and \boxed{2} blue", r"\boxed{1,2}", True))
_add(one("multi_boxed", "2,3", "So $x = \\boxed{2}$ and $y = \\boxed{3}$.", True))
_add(one("multi_boxed", r"\{-3,3\}", r"Hence $x=\boxed{3}$ or $x=\boxed{-3}$.", True))
_add(one("multi_boxed", "4", r"The answer is \boxed{4}, \boxed{4}.", True))
_add(one("multi_boxed", r"\{1,2,3\}", r"The solutions are \boxed{1}, \boxed{2}.", False))
_add(one("multi_boxed", r"\{1,2\}", r"The solutions are \boxed{1}, \boxed{2}, \boxed{3}.", False))
_add(one("multi_boxed", "3", r"The solutions are \boxed{1}, \boxed{2}, \boxed{3}.", False))
_add(one("multi_boxed", r"\boxed{1} red and \boxed{2} blue", r"\boxed{1,3}", False))
_add(one("multi_boxed", "5", r"First we get $\boxed{4}$, then $\boxed{5}$.", True))
_add(one("multi_boxed", "4,5", r"First we get $\boxed{4}$, then $\boxed{5}$.", False))
_add(one("multi_boxed", "4,5", "The sum is $\\boxed{4}$.\nThe product is $\\boxed{5}$.", False))
_add(one("multi_boxed", "5", r"So $x = \boxed{3}$, so $y = \boxed{5}$.", True))
_add(one("multi_boxed", "3,5", r"So $x = \boxed{3}$, so $y = \boxed{5}$.", False))
_add(one("multi_boxed", "2", "Suppose $x = \\boxed{3}$, which is impossible since $x$ is even. So $x = \\boxed{2}$.", True))
_add(one("multi_boxed", "3", "If $x = \\boxed{3}$ then $x^2 = 9 > 5$, a contradiction.\nSo $x = \\boxed{2}$.", False))
_add(one("multi_boxed", "5", "Then $x = \\boxed{3}$, which is impossible.", False))
_add(one("multi_boxed", "5", "So $x=\\boxed{5}$ (the root $x=-1$ is extraneous).", True))
_add(one("multi_boxed", "5", "So $x=\\boxed{5}$, since $x=-1$ is extraneous.", True))
_add(one("multi_boxed", "7", 'The problem says "put the answer in \\boxed{3}" but we get 7.', False))
_add(one("multi_boxed", "3", 'The problem says "put the answer in \\boxed{3}" but we get 7.', False))

# issue 27: the answer a response commits to last wins (a later answer phrase over an earlier box)
_R255 = "The first sum is $\\boxed{255}$. Adding the second part gives $10{,}200$ more.\nThe final answer is $10,455$."
_add(one("last_commitment", "255", _R255, False))
_add(one("last_commitment", "10455", _R255, True))
_add(one("last_commitment", "7", "We get $\\boxed{7}$.\nChecking: $3+4=7$, so the answer is correct.", True))
_add(one("last_commitment", "7", "We get $\\boxed{7}$. So the answer is $7$ because $3 + 4 = 7$.", True))
_add(one("last_commitment", "8", "We get $\\boxed{7}$. Wait, the answer is $8$.", True))
_add(one("last_commitment", "7", "We get $\\boxed{7}$. Wait, the answer is $8$.", False))
_add(one("last_commitment", "12", "Tom claims the answer is 12, which is wrong.\n#### 15", False, "number"))
_add(one("last_commitment", "15", "Tom claims the answer is 12, which is wrong.\n#### 15", True, "number"))
_add(one("last_commitment", "15", 'So there are 15 apples. #### 15\nNote: the question says "the answer is 12".', True, "number"))
_add(one("last_commitment", "12", 'So there are 15 apples. #### 15\nNote: the question says "the answer is 12".', False, "number"))
_add(one("last_commitment", "12", "So the answer is 12, which is impossible. We retry.", False))

# issue 27: a label on the left of the value (segments, ratios, angles); an expression is not a label
_add(one("labelled", "1", "|AB| = 1", True))
_add(one("labelled", "2", "|AB| = 1", False))
_add(one("labelled", "11:21", "V_1 : V_2 = 11:21", True))
_add(one("labelled", "11:21", "V_1 : V_2 = 21:11", False))
_add(one("labelled", "5", "AB = 5", True))
_add(one("labelled", "5", "AB = 6", False))
_add(one("labelled", r"AB = 5", "5", True))
_add(one("labelled", "30", r"m\angle ABC = 30^\circ", True))
_add(one("labelled", r"\sqrt{2}", r"\overline{AC} = \sqrt{2}", True))
_add(one("labelled", "1", "k = 1", True))
_add(one("labelled", "10", "2x = 10", False))
_add(one("labelled", "5", "x + y = 5", False))
_add(one("labelled", "6", "ab = 6", False))

# issue 27: set and list notation
_add(both("set_notation", "(0,0,0)", "(0;0;0)", True))
_add(both("set_notation", "(1,2,3)", "(1;2;3)", True))
_add(both("set_notation", "(1,2,3)", "(1;3;2)", False))
_add(both("set_notation", "(0.5,1)", "(0,5;1)", False))
_add(both("set_notation", r"\{-3,3\}", "{-3, 3}", True))
_add(both("set_notation", r"\{-3,3\}", "{-3, 4}", False))
_add(both("set_notation", r"\{1,2,3\}", "{1, 2}", False))
_add(both("set_notation", "(1,2)", "{1, 2}", False))
_add(both("set_notation", r"\{-3,3\}", r"\pm 3", True))
_add(both("set_notation", "3", r"\pm 3", False))
_add(both("set_notation", r"\{-3,3\}", r"x = \pm 3", True))
_add(both("set_notation", r"\{-3,3\}", "x=3 or x=-3", True))
_add(both("set_notation", r"\{-3,3\}", r"x = 3 \text{ or } x = -3", True))
_add(both("set_notation", "3", "x=3 or x=-3", False))
_add(both("set_notation", "2,3", "2 or 3", True))
_add(both("set_notation", "2,3", "2 or 4", False))

# issue 27: "Final Answer:" followed by a sentence
_add(one("final_sentence", "34", "So n cannot exceed 34.\nFinal Answer: The largest $n$ is 34.", True))
_add(one("final_sentence", "35", "So n cannot exceed 34.\nFinal Answer: The largest $n$ is 34.", False))
_add(one("final_sentence", r"\frac{2}{7}", "Count the cases.\nFinal Answer: The probability is $\\frac{2}{7}$.", True))
_add(one("final_sentence", "7", "Count the cases.\nFinal Answer: The probability is $\\frac{2}{7}$.", False))
_add(one("final_sentence", "34", "So n cannot exceed 34.\nFinal Answer: The largest $n$ is not 34.", False))
_add(one("final_sentence", "34", "So n is small.\nFinal Answer: The largest $n$ is between 30 and 34.", False))
_add(one("final_sentence", "12", "Final Answer: She has 12 apples.", True, "number"))
_add(one("final_sentence", "12", "Final Answer: She has about 12 apples.", False, "number"))

# issue 27: short statements (fewer than four prose words) are read for the value they end on
_add(one("short_statement", "9", "Answer $ 9 $", True))
_add(one("short_statement", "8", "Answer $ 9 $", False))
_add(one("short_statement", "x<3", "We find that $x < 3$.", True))
_add(one("short_statement", "x>3", "We find that $x < 3$.", False))
_add(one("short_statement", "4096", "The count is $4{,}096$.", True))
_add(one("short_statement", "3", "So there are 3.", True))
_add(one("short_statement", "3", "Not $3$.", False))
_add(one("short_statement", "3", "Is it $3$?", False))
_add(one("short_statement", "3", "Approximately $3$.", False))
_add(one("short_statement", "3", "Between $2$ and $3$.", False))
_add(one("short_statement", "3", "It is 2 or 3.", False))
_add(one("short_statement", "3", "More than $3$.", False))

# issue 27: relations equal after algebra (linear inequalities, line equations)
_add(both("relations", "x<1", "-x>-1", True))
_add(both("relations", "x<1", "x>1", False))
_add(both("relations", "x<1", "-x<-1", False))
_add(both("relations", r"x \le 2", r"2x + 3 \le 7", True))
_add(both("relations", r"x \le 2", r"2x + 3 < 7", False))
_add(both("relations", r"(-\infty, 2]", r"-3x \ge -6", True))
_add(both("relations", r"y = -\frac{1}{2}x + \frac{3}{4}", "2x + 4y - 3 = 0", True))
_add(both("relations", r"y = -\frac{1}{2}x + \frac{3}{2}", "2x + 4y - 3 = 0", False))
_add(both("relations", "y = 2x + 1", "2x - y + 1 = 0", True))
_add(both("relations", "y = 2x + 1", "2x + y + 1 = 0", False))
_add(both("relations", "x = 2", "2x = 4", True))
_add(both("relations", "x = 2", "y = 2", False))
_add(both("relations", "x = 2", "x^2 = 4", False))
_add(both("relations", r"x^2 < 4", "x < 2", False))

# issue 27: formatting and thousands written by LaTeX, with ambiguous look-alikes refused
_add(both("formatting_latex", "125", r"125\textnormal{ miles}", True))
_add(both("formatting_latex", "125", r"126\textnormal{ miles}", False))
_add(both("formatting_latex", "11111100", r"11,\! 111,\! 100", True))
_add(both("formatting_latex", "1111100", r"11,\! 111,\! 100", False))
_add(both("formatting_latex", "1250", r"1,\! 25", False))
_add(both("formatting_latex", "1.5", "1,5", False))
_add(both("formatting_latex", "1.250", "1,250", False))
_add(one("formatting_latex", "11111100", "Adding them up.\n#### 11,\\! 111,\\! 100", True, "number"))

# issue 27, flexible mode: short statements and answer sentences read like strict mode; a response cut
# off before it commits still scores by its last number (lm-eval's flexible-extract, see docs/verifiers.md)
_flex(one("short_statement", "4096", "The count is $4{,}096$.", True))
_flex(one("short_statement", "4097", "The count is $4{,}096$.", False))
_flex(one("last_commitment", "255", _R255, False))
_flex(one("last_commitment", "10455", _R255, True))
_flex(one("truncated", "24", "First, 48 / 2 = 24 cupcakes per class. Then each of the", True, "number"))
_flex(one("truncated", "48", "First, 48 / 2 = 24 cupcakes per class. Then each of the", False, "number"))

# issue 27: more hard negatives written against the rules above
_add(one("short_statement", "5", "x exceeds 5", False))
_add(one("short_statement", "10", "Half of 10", False))
_add(one("short_statement", "5", "AB + BC = 5", False))
_add(one("last_commitment", "7", "We get $\\boxed{7}$.\n\nNote that the answer is in simplest form since 7 is prime.", True))
_add(one("relations", "5", "x = 2 + 3 = 5", False))  # a chain of equalities is refused, true or not
_add(one("relations", "6", "x = 2 + 3 = 6", False))
_add(one("final_sentence", "3", "So $s = 3$.\nFinal Answer: Jane started the garden 3 hours ago.", True))
_add(one("final_sentence", "3", "So $s = 3$.\nFinal Answer: Jane started more than 3 hours ago.", False))
_add(one("final_sentence", "5", "So it is small.\nFinal Answer: The total divided by 5.", False))
_add(both("set_notation", "5", "{5}", False))  # a bare group is opaque (template syntax must never pass)
_add(both("set_notation", "5", "{6}", False))
_add(one("multi_boxed", "3", "So $x = \\boxed{3}$. This is impossible, so we try again.", False))
_add(one("multi_boxed", "5", "So $x = \\boxed{5}$. The other root is extraneous.", True))
_add(one("multi_boxed", "5", "So $x = \\boxed{5}$. This is the only root, since $x = -1$ is extraneous.", True))
_add(one("multi_boxed", "-34+12x", r"We obtain $\boxed{12x-34}$, or $\boxed{-34+12x}$.", True))
_add(one("multi_boxed", "-34+12x", r"We obtain $\boxed{12x-34}$, or $\boxed{-34+13x}$.", False))
_add(one("multi_boxed", r"\frac{2}{5}", r"Hence $x$ must be $\boxed{3}$ or $\boxed{\frac{2}{5}}$.", False))
_add(one("multi_boxed", r"\{3,\frac{2}{5}\}", r"Hence $x$ must be $\boxed{3}$ or $\boxed{\frac{2}{5}}$.", True))
_add(one("multi_boxed", "6", r"The line meets the circles at $\boxed{6}$ points, because it is impossible to meet more.", True))
_add(one("multi_boxed", "6", "We find ``the sum'' is $\\boxed{6}$.", True))
_add(one("last_commitment", "24", "So the sum is $\\boxed{24}$.\n\nChallenge: Is it a coincidence that the answer is 24?", True))
_add(one("last_commitment", "44", "So $17^{-1} \\equiv \\boxed{44} \\pmod{83}$.\n\nWe may check our answer: $17 \\cdot 44 = 748$.", True))
_add(one("last_commitment", "5", "Is the answer 5? Let us see.", False))
_add(one("last_commitment", "2\\sqrt{22}", "This gives $\\boxed{2\\sqrt{22}}$, which cannot be simplified further.", True))
_add(one("last_commitment", "12", "So the answer is 12.\n\nWait, that's wrong. Let me redo the sum.", False, "number"))
_add(one("last_commitment", "12", "So the answer is 12.\n\nWait, let me double-check: 5 + 7 = 12. Yes.", True, "number"))
