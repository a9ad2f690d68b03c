"""Problem templates: the raw material of the procedurally generated code suite.

A template is a parametrised Python function-writing task. ``doc`` and ``body`` are
:class:`string.Template` strings: ``$f`` is the function name, each argument slot
(``$x``, ``$s``, ``$xs`` ...) becomes a concrete parameter name drawn from a pool, and
each constant (``$k``, ``$c`` ...) becomes a sampled value. The body is written
without indentation; :mod:`agent.data.problems` indents it.

Each category has templates in three roles (see :class:`Role`):

* ``PUBLIC`` templates only feed the public pretraining corpus, so a base model learns
  Python syntax and the prompt -> body format without learning the private tasks;
* ``PRIVATE`` templates feed organisations' private data, the public transfer set and
  the test set (with disjoint problem instances);
* ``HELD_OUT`` templates appear only in the ``test_novel`` split, measuring whether a
  model solves a template it has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    HELD_OUT = "held_out"


# Argument kinds -> the pool of parameter names a problem may use for them.
ARG_NAMES: dict[str, tuple[str, ...]] = {
    "int": ("x", "n", "num", "value", "y", "m", "a", "b", "z", "amount"),
    "nat": ("n", "x", "num", "count", "m", "size", "steps", "depth", "level", "times"),
    "big": ("n", "x", "num", "count", "m", "size", "steps", "depth", "level", "times"),
    "str": ("s", "text", "word", "name", "line", "msg", "label", "src", "t", "w"),
    "list": ("xs", "nums", "items", "values", "arr", "data", "seq", "lst", "ns", "vals"),
    "nelist": ("xs", "nums", "items", "values", "arr", "data", "seq", "lst", "ns", "vals"),
    "dict": ("d", "table", "counts", "scores", "mapping", "stock", "ages", "prices", "tally", "inv"),
    "words": ("words", "names", "strs", "tokens", "labels", "terms", "parts", "keys", "tags", "ids"),
}

# Extra parameter names and function-name prefixes for documented PRIVATE and HELD_OUT problems
# only (see `agent.data.problems.instantiate`): they widen each category's space of distinct
# prompts well past 1,000 (the largest organisations need that many of one specialty), while
# PUBLIC templates and anonymous code, the pretraining corpus, are drawn exactly as before, so
# the corpus (and every cached base model) does not change.
EXTRA_ARG_NAMES: dict[str, tuple[str, ...]] = {
    "int": ("k", "q", "p", "val", "number", "w"),
    "nat": ("k", "p", "q", "rounds", "width", "limit"),
    "big": ("k", "p", "q", "rounds", "width", "limit"),
    "str": ("u", "string", "phrase", "token", "needle", "chars"),
    "list": ("ys", "row", "elems", "numbers", "series", "batch"),
    "nelist": ("ys", "row", "elems", "numbers", "series", "batch"),
    "dict": ("store", "registry", "weights", "totals", "cache", "ledger"),
    "words": ("elements", "entries", "texts", "titles", "handles", "codes"),
}
NAME_PREFIXES: tuple[str, ...] = ("", "get_", "compute_", "calc_", "find_", "make_")

SMALL_INTS: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8, 9)
CHARS: tuple[str, ...] = ("a", "e", "i", "o", "s", "t", "n", "r")
WORDS: tuple[str, ...] = ("ok", "yes", "no", "hi", "end", "big", "odd", "top")


@dataclass(frozen=True)
class Template:
    """One parametrised task. ``args`` maps slot -> kind of input (a key of :data:`INPUT_KINDS`)."""

    tid: str
    category: str
    role: Role
    names: tuple[str, ...]
    args: tuple[tuple[str, str], ...]
    doc: str
    body: str
    consts: dict[str, tuple[object, ...]] = field(default_factory=dict)


def _t(
    tid: str,
    category: str,
    role: Role,
    names: tuple[str, ...],
    args: tuple[tuple[str, str], ...],
    doc: str,
    body: str,
    **consts: tuple[object, ...],
) -> Template:
    return Template(tid, category, role, names, args, doc, body, dict(consts))


P, V, H = Role.PUBLIC, Role.PRIVATE, Role.HELD_OUT
K = SMALL_INTS

# Input kinds: "int" any small int, "nat" 0..7, "big" 0..999, "str" lowercase word (maybe empty),
# "word" non-empty word, "list" int list (maybe empty), "nelist" non-empty int list,
# "dict" str -> int dict, "words" list of words.
_S = (("s", "str"),)
_X = (("x", "int"),)
_XY = (("x", "int"), ("y", "int"))
_L = (("xs", "list"),)
_NL = (("xs", "nelist"),)
_D = (("d", "dict"),)
_N = (("n", "nat"),)

TEMPLATES: tuple[Template, ...] = (
    # ---------------------------------------------------------------- strings
    _t("str_upper", "strings", P, ("shout", "to_upper"), _S, "Return $s in upper case.", "return $s.upper()"),
    _t(
        "str_strip",
        "strings",
        P,
        ("trim", "strip_text"),
        _S,
        "Return $s without surrounding spaces.",
        "return $s.strip()",
    ),
    _t(
        "str_reverse",
        "strings",
        V,
        ("reverse", "backwards", "flip"),
        _S,
        "Return $s reversed.",
        "return $s[::-1]",
    ),
    _t(
        "str_count",
        "strings",
        V,
        ("count_char", "occurrences", "tally"),
        _S,
        "Return how many times '$c' occurs in $s.",
        "return $s.count('$c')",
        c=CHARS,
    ),
    _t(
        "str_prefix",
        "strings",
        V,
        ("prefix", "head", "first_chars"),
        _S,
        "Return the first $k characters of $s.",
        "return $s[:$k]",
        k=K,
    ),
    _t(
        "str_append",
        "strings",
        V,
        ("append_word", "add_suffix", "extend"),
        _S,
        "Return $s followed by '$w'.",
        "return $s + '$w'",
        w=WORDS,
    ),
    _t(
        "str_replace",
        "strings",
        V,
        ("swap_chars", "replace_char", "substitute"),
        _S,
        "Return $s with every '$c' replaced by '$d'.",
        "return $s.replace('$c', '$d')",
        c=CHARS[:4],
        d=CHARS[4:],
    ),
    _t(
        "str_repeat",
        "strings",
        V,
        ("repeat", "copies", "echo"),
        _S,
        "Return $s repeated $k times.",
        "return $s * $k",
        k=K,
    ),
    _t(
        "str_lenplus",
        "strings",
        H,
        ("length_plus", "size_plus"),
        _S,
        "Return the length of $s plus $k.",
        "return len($s) + $k",
        k=K,
    ),
    # ------------------------------------------------------------- arithmetic
    _t(
        "ar_neg",
        "arithmetic",
        P,
        ("negate", "opposite"),
        _X,
        "Return $x with its sign flipped.",
        "return -$x",
    ),
    _t(
        "ar_half",
        "arithmetic",
        P,
        ("halve", "half_of"),
        _X,
        "Return half of $x, rounded down.",
        "return $x // 2",
    ),
    _t(
        "ar_add",
        "arithmetic",
        V,
        ("add_k", "plus", "increase"),
        _X,
        "Return $x plus $k.",
        "return $x + $k",
        k=K,
    ),
    _t(
        "ar_mul",
        "arithmetic",
        V,
        ("scale", "times", "multiply"),
        _X,
        "Return $x times $k.",
        "return $x * $k",
        k=K,
    ),
    _t(
        "ar_sub",
        "arithmetic",
        V,
        ("minus", "decrease", "subtract"),
        _X,
        "Return $x minus $k.",
        "return $x - $k",
        k=K,
    ),
    _t(
        "ar_sqplus",
        "arithmetic",
        V,
        ("square_plus", "sq_add", "squared_shift"),
        _X,
        "Return the square of $x plus $k.",
        "return $x * $x + $k",
        k=K,
    ),
    _t(
        "ar_mod",
        "arithmetic",
        V,
        ("remainder", "modulo", "mod_k"),
        _X,
        "Return $x modulo $k.",
        "return $x % $k",
        k=K,
    ),
    _t(
        "ar_sumscale",
        "arithmetic",
        V,
        ("scaled_sum", "sum_times", "weighted"),
        _XY,
        "Return $k times the sum of $x and $y.",
        "return $k * ($x + $y)",
        k=K,
    ),
    _t(
        "ar_absdiff",
        "arithmetic",
        H,
        ("distance", "gap"),
        _XY,
        "Return the absolute difference of $x and $y.",
        "return abs($x - $y)",
    ),
    # ------------------------------------------------------------------ lists
    _t(
        "li_len",
        "lists",
        P,
        ("size", "length"),
        _L,
        "Return the number of elements in $xs.",
        "return len($xs)",
    ),
    _t("li_first", "lists", P, ("first", "front"), _NL, "Return the first element of $xs.", "return $xs[0]"),
    _t(
        "li_sum",
        "lists",
        V,
        ("total", "add_all", "list_sum"),
        _L,
        "Return the sum of $xs.",
        "return sum($xs)",
    ),
    _t(
        "li_max",
        "lists",
        V,
        ("largest", "biggest", "max_of"),
        _NL,
        "Return the largest element of $xs.",
        "return max($xs)",
    ),
    _t(
        "li_take",
        "lists",
        V,
        ("take", "first_k", "leading"),
        _L,
        "Return the first $k elements of $xs.",
        "return $xs[:$k]",
        k=(1, 2, 3, 4),
    ),
    _t(
        "li_addeach",
        "lists",
        V,
        ("shift_all", "add_each", "bump"),
        _L,
        "Return a list with $k added to each element of $xs.",
        "return [v + $k for v in $xs]",
        k=K,
    ),
    _t(
        "li_filter",
        "lists",
        V,
        ("keep_above", "filter_big", "above"),
        _L,
        "Return the elements of $xs greater than $k.",
        "return [v for v in $xs if v > $k]",
        k=(0, 1, 2, 3, 4),
    ),
    _t(
        "li_last",
        "lists",
        V,
        ("last", "final", "tail_item"),
        _NL,
        "Return the last element of $xs.",
        "return $xs[-1]",
    ),
    _t(
        "li_counteq",
        "lists",
        H,
        ("count_eq", "matches"),
        _L,
        "Return how many elements of $xs equal $k.",
        "return $xs.count($k)",
        k=(0, 1, 2, 3),
    ),
    # ------------------------------------------------------------------ dicts
    _t(
        "di_len",
        "dicts",
        P,
        ("num_keys", "dict_size"),
        _D,
        "Return the number of keys in $d.",
        "return len($d)",
    ),
    _t(
        "di_values",
        "dicts",
        P,
        ("value_list", "all_values"),
        _D,
        "Return the list of values of $d.",
        "return list($d.values())",
    ),
    _t(
        "di_get",
        "dicts",
        V,
        ("lookup", "get_or", "fetch"),
        _D,
        "Return the value for key '$w' in $d, or $k if it is missing.",
        "return $d.get('$w', $k)",
        w=("a", "b", "c", "d"),
        k=(0, -1, 1, 9),
    ),
    _t(
        "di_keys",
        "dicts",
        V,
        ("sorted_keys", "key_list", "keys_of"),
        _D,
        "Return the sorted list of keys of $d.",
        "return sorted($d)",
    ),
    _t(
        "di_sum",
        "dicts",
        V,
        ("value_sum", "sum_values", "dict_total"),
        _D,
        "Return the sum of the values in $d.",
        "return sum($d.values())",
    ),
    _t(
        "di_has",
        "dicts",
        V,
        ("has_key", "contains_key", "knows"),
        _D,
        "Return True if '$w' is a key of $d.",
        "return '$w' in $d",
        w=("a", "b", "c", "d"),
    ),
    _t(
        "di_bump",
        "dicts",
        V,
        ("bump_values", "raise_all", "inc_values"),
        _D,
        "Return a dict with each value of $d increased by $k.",
        "return {key: v + $k for key, v in $d.items()}",
        k=K,
    ),
    _t(
        "di_argmax",
        "dicts",
        V,
        ("best_key", "top_key", "argmax"),
        _D,
        "Return the key of $d with the largest value.",
        "return max($d, key=$d.get)",
    ),
    _t(
        "di_above",
        "dicts",
        H,
        ("keys_above", "big_keys"),
        _D,
        "Return the sorted keys of $d whose value is greater than $k.",
        "return sorted(key for key in $d if $d[key] > $k)",
        k=(0, 1, 2, 3),
    ),
    # ----------------------------------------------------------- conditionals
    _t(
        "co_iszero",
        "conditionals",
        P,
        ("is_zero", "zero_check"),
        _X,
        "Return True if $x is zero.",
        "return $x == 0",
    ),
    _t(
        "co_min2",
        "conditionals",
        P,
        ("smaller", "min_two"),
        _XY,
        "Return the smaller of $x and $y.",
        "if $x < $y:\n    return $x\nreturn $y",
    ),
    _t(
        "co_sign",
        "conditionals",
        V,
        ("sign", "signum", "polarity"),
        _X,
        "Return 1 if $x is positive, -1 if it is negative, else 0.",
        "if $x > 0:\n    return 1\nif $x < 0:\n    return -1\nreturn 0",
    ),
    _t(
        "co_max2",
        "conditionals",
        V,
        ("larger", "max_two", "bigger"),
        _XY,
        "Return the larger of $x and $y.",
        "if $x > $y:\n    return $x\nreturn $y",
    ),
    _t(
        "co_parity",
        "conditionals",
        V,
        ("parity_word", "even_label", "label"),
        _X,
        "Return '$w' if $x is even, otherwise '$v'.",
        "if $x % 2 == 0:\n    return '$w'\nreturn '$v'",
        w=WORDS[:4],
        v=WORDS[4:],
    ),
    _t(
        "co_above",
        "conditionals",
        V,
        ("above_k", "exceeds", "is_big"),
        _X,
        "Return True if $x is greater than $k.",
        "return $x > $k",
        k=K,
    ),
    _t(
        "co_between",
        "conditionals",
        V,
        ("in_range", "between", "within"),
        _X,
        "Return True if $x is between $a and $b inclusive.",
        "return $a <= $x <= $b",
        a=(-3, -2, -1, 0),
        b=(1, 2, 3, 4),
    ),
    _t(
        "co_floor",
        "conditionals",
        V,
        ("at_least", "floor_k", "lower_bound"),
        _X,
        "Return $x if it is at least $k, otherwise $k.",
        "if $x >= $k:\n    return $x\nreturn $k",
        k=K,
    ),
    _t(
        "co_divis",
        "conditionals",
        H,
        ("fizz", "divisible_word"),
        _X,
        "Return '$w' if $x is divisible by $k, otherwise the empty string.",
        "if $x % $k == 0:\n    return '$w'\nreturn ''",
        w=WORDS,
        k=K,
    ),
    # ------------------------------------------------------------------ loops
    _t(
        "lo_countup",
        "loops",
        P,
        ("count_up", "upto"),
        _N,
        "Return the list of integers from 0 to $n - 1.",
        "out = []\nfor i in range($n):\n    out.append(i)\nreturn out",
    ),
    _t(
        "lo_countstr",
        "loops",
        P,
        ("letters", "char_count"),
        _S,
        "Return the number of characters in $s.",
        "total = 0\nfor ch in $s:\n    total += 1\nreturn total",
    ),
    _t(
        "lo_sumto",
        "loops",
        V,
        ("sum_to", "triangle", "sum_upto"),
        _N,
        "Return the sum of the integers from 1 to $n.",
        "total = 0\nfor i in range(1, $n + 1):\n    total += i\nreturn total",
    ),
    _t(
        "lo_product",
        "loops",
        V,
        ("product", "multiply_all", "prod"),
        _L,
        "Return the product of the elements of $xs.",
        "total = 1\nfor v in $xs:\n    total *= v\nreturn total",
    ),
    _t(
        "lo_countgt",
        "loops",
        V,
        ("count_above", "num_greater", "how_many"),
        _L,
        "Return how many elements of $xs are greater than $k.",
        "total = 0\nfor v in $xs:\n    if v > $k:\n        total += 1\nreturn total",
        k=(0, 1, 2, 3, 4),
    ),
    _t(
        "lo_multiples",
        "loops",
        V,
        ("sum_multiples", "multiples_below", "mult_sum"),
        _N,
        "Return the sum of the multiples of $k below $n.",
        "total = 0\nfor i in range($n):\n    if i % $k == 0:\n        total += i\nreturn total",
        k=K,
    ),
    _t(
        "lo_countdown",
        "loops",
        V,
        ("countdown", "down_from", "descending"),
        _N,
        "Return the list of integers from $n down to 1.",
        "out = []\nfor i in range($n, 0, -1):\n    out.append(i)\nreturn out",
    ),
    _t(
        "lo_vowels",
        "loops",
        V,
        ("vowels", "count_vowels", "num_vowels"),
        _S,
        "Return the number of vowels in $s.",
        "total = 0\nfor ch in $s:\n    if ch in 'aeiou':\n        total += 1\nreturn total",
    ),
    _t(
        "lo_sumsq",
        "loops",
        H,
        ("sum_squares", "square_sum"),
        _N,
        "Return the sum of the squares of the integers from 1 to $n.",
        "total = 0\nfor i in range(1, $n + 1):\n    total += i * i\nreturn total",
    ),
    # -------------------------------------------------------------- recursion
    _t(
        "re_count",
        "recursion",
        P,
        ("rec_len", "count_rec"),
        _L,
        "Return the length of $xs, computed recursively.",
        "if not $xs:\n    return 0\nreturn 1 + $f($xs[1:])",
    ),
    _t(
        "re_zeros",
        "recursion",
        P,
        ("zeros", "rec_zeros"),
        _N,
        "Return a list of $n zeros, built recursively.",
        "if $n == 0:\n    return []\nreturn [0] + $f($n - 1)",
    ),
    _t(
        "re_fact",
        "recursion",
        V,
        ("factorial", "fact", "rec_fact"),
        _N,
        "Return the factorial of $n, computed recursively.",
        "if $n <= 1:\n    return 1\nreturn $n * $f($n - 1)",
    ),
    _t(
        "re_sumto",
        "recursion",
        V,
        ("rec_sum_to", "tri_rec", "sum_down"),
        _N,
        "Return the sum of the integers from 1 to $n, computed recursively.",
        "if $n == 0:\n    return 0\nreturn $n + $f($n - 1)",
    ),
    _t(
        "re_power",
        "recursion",
        V,
        ("power", "pow_rec", "raise_k"),
        _N,
        "Return $k raised to the power $n, computed recursively.",
        "if $n == 0:\n    return 1\nreturn $k * $f($n - 1)",
        k=K,
    ),
    _t(
        "re_fib",
        "recursion",
        V,
        ("fib", "fibonacci", "rec_fib"),
        _N,
        "Return the $n-th Fibonacci number.",
        "if $n < 2:\n    return $n\nreturn $f($n - 1) + $f($n - 2)",
    ),
    _t(
        "re_rev",
        "recursion",
        V,
        ("rec_reverse", "mirror", "rev_rec"),
        _S,
        "Return $s reversed, computed recursively.",
        "if not $s:\n    return ''\nreturn $f($s[1:]) + $s[0]",
    ),
    _t(
        "re_lsum",
        "recursion",
        V,
        ("rec_total", "sum_rec", "list_sum_rec"),
        _L,
        "Return the sum of $xs, computed recursively.",
        "if not $xs:\n    return 0\nreturn $xs[0] + $f($xs[1:])",
    ),
    _t(
        "re_digits",
        "recursion",
        H,
        ("digit_sum", "sum_digits"),
        (("n", "big"),),
        "Return the sum of the digits of $n, computed recursively.",
        "if $n < 10:\n    return $n\nreturn $n % 10 + $f($n // 10)",
    ),
    # ---------------------------------------------------------------- sorting
    _t(
        "so_isin", "sorting", P, ("is_member", "member"), _L, "Return True if 0 is in $xs.", "return 0 in $xs"
    ),
    _t(
        "so_minval",
        "sorting",
        P,
        ("smallest", "min_of"),
        _NL,
        "Return the smallest element of $xs.",
        "return min($xs)",
    ),
    _t(
        "so_asc",
        "sorting",
        V,
        ("sort_up", "ascending", "order"),
        _L,
        "Return $xs sorted in ascending order.",
        "return sorted($xs)",
    ),
    _t(
        "so_desc",
        "sorting",
        V,
        ("sort_down", "descending_order", "rank"),
        _L,
        "Return $xs sorted in descending order.",
        "return sorted($xs, reverse=True)",
    ),
    _t(
        "so_index",
        "sorting",
        V,
        ("find", "index_of", "locate"),
        _L,
        "Return the index of $k in $xs, or -1 if it is absent.",
        "if $k in $xs:\n    return $xs.index($k)\nreturn -1",
        k=(0, 1, 2, 3),
    ),
    _t(
        "so_contains",
        "sorting",
        V,
        ("contains", "has", "includes"),
        _L,
        "Return True if $k is in $xs.",
        "return $k in $xs",
        k=(0, 1, 2, 3),
    ),
    _t(
        "so_ksmall",
        "sorting",
        V,
        ("k_smallest", "lowest", "bottom"),
        _L,
        "Return the $k smallest elements of $xs in ascending order.",
        "return sorted($xs)[:$k]",
        k=(1, 2, 3),
    ),
    _t(
        "so_bylen",
        "sorting",
        V,
        ("by_length", "sort_by_len", "len_order"),
        (("ws", "words"),),
        "Return $ws sorted by length.",
        "return sorted($ws, key=len)",
    ),
    _t(
        "so_argmin",
        "sorting",
        H,
        ("argmin", "min_index"),
        _NL,
        "Return the index of the smallest element of $xs.",
        "return $xs.index(min($xs))",
    ),
)


#: The suite's categories, in the order they first appear above. They are the market's default
#: categories (`market.categories`); the organization layer, which joins the two, checks that.
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(t.category for t in TEMPLATES))


def templates(role: Role | None = None, category: str | None = None) -> list[Template]:
    """Templates filtered by role and/or category, in the fixed declaration order."""
    return [
        t
        for t in TEMPLATES
        if (role is None or t.role == role) and (category is None or t.category == category)
    ]
