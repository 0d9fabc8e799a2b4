"""Whole-column conversion to the schema's types with Arrow compute.

`convert_column` returns the converted column and the rows it could not convert with certainty:
a value that does not fit the type, or one whose conversion in Python would differ from Arrow's
(a JSON `1` that a string column keeps as "1", a timestamp Arrow's parser does not know). Only
those rows go through `rescue.convert_record`, which decides them exactly as it always has.
"""

from __future__ import annotations

from collections.abc import Callable

_INT_RE = r"^-?[0-9]{1,18}$"
_FLOAT_RE = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"
_YEAR = r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # 0001-9999, as Python's dates
_DATE_RE = r"^" + _YEAR + r"-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP_RE = (
    r"^" + _YEAR + r"-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
_EXACT = 2**53  # beyond this a JSON integer parsed as a double may have lost digits


def convert_column(col, t: str, out_type, typed: bool, int_literal: Callable | None = None):
    """(column of `out_type`, rows needing the Python path or None).

    `typed`: the Arrow types are the file's own (Parquet); otherwise they were inferred from text
    (JSON), where a double may have been written `1` and a timestamp was a string.
    `int_literal(rows)`: for JSON, which of the given rows hold an integer literal (None: unknown)."""
    import pyarrow as pa

    if col is None or pa.types.is_null(col.type):
        return pa.nulls(len(col) if col is not None else 0, out_type), None
    if col.offset:  # pyarrow 22's if_else breaks on a sliced string array: start at 0
        col = pa.concat_arrays([col])
    convert = _CONVERTERS.get(t)
    if convert is None:  # a type the Python path rescues every value of
        return pa.nulls(len(col), out_type), _valid(col)
    return convert(col, out_type, typed, int_literal)


def _valid(col):
    import pyarrow.compute as pc

    return pc.is_valid(col)


def _not_ok(col, ok):
    """Rows with a value that `ok` does not accept."""
    import pyarrow.compute as pc

    return pc.and_(pc.is_valid(col), pc.invert(pc.fill_null(ok, False)))


def _keep(col, ok):
    """`col` with the rows `ok` does not accept set to null (so a cast cannot fail on them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.if_else(pc.fill_null(ok, False), col, pa.scalar(None, col.type))


def cast_marking(arr, out_type):
    """Cast, and mark the values that do not cast (halving the array around them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(arr, out_type), pa.array([False] * len(arr))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(arr) == 1:
            return pa.nulls(1, out_type), pa.array([arr.is_valid().to_pylist()[0]])
    half = len(arr) // 2
    (a, fa), (b, fb) = cast_marking(arr.slice(0, half), out_type), cast_marking(arr.slice(half), out_type)
    return pa.concat_arrays([a, b]), pa.concat_arrays([fa, fb])


def _to_string(col, out_type, typed, int_literal):
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = col.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.cast(col, out_type), None
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or (typed and pa.types.is_date32(kind)):
        return pc.cast(col, out_type), None
    if pa.types.is_floating(kind):
        return _float_to_string(col, int_literal)
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_string(kind.value_type):
        return _string_list_to_json(col, out_type)
    return pa.nulls(len(col), out_type), _valid(col)


# Printable ASCII but `"` and `\`: json.dumps writes such a string between quotes as it is.
_PLAIN = r'^[ !#-\[\]-~]*$'


def _string_list_to_json(col, out_type):
    """A list of strings as the JSON text json.dumps writes (`[]`, `["a", "b"]`), column-wise.
    Lists json.dumps would escape or spell otherwise (a null element, a quote, a backslash,
    non-ASCII, control characters) take the Python path."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    plain = pc.fill_null(pc.match_substring_regex(pc.list_flatten(col), _PLAIN), False)
    bad = np.zeros(len(col), dtype=bool)
    bad[pc.list_parent_indices(col).filter(pc.invert(plain)).to_numpy()] = True
    text = pc.binary_join_element_wise('["', pc.binary_join(col, '", "'), '"]', "")
    text = pc.if_else(pc.equal(pc.list_value_length(col), 0), pa.scalar("[]"), text)
    ok = pa.array(~bad)
    return pc.cast(_keep(text, ok), out_type), _not_ok(col, ok)


def _float_to_string(col, int_literal):
    """Python's `str(float)`: shortest digits, `.0` on whole numbers, exponent outside
    [1e-4, 1e16). Arrow prints the same digits; its other spellings take the Python path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    v = pc.cast(col, pa.float64())
    text = pc.cast(v, pa.string())
    size = pc.abs(v)
    fixed = pc.and_(
        pc.match_substring_regex(text, r"^-?[0-9]+(\.[0-9]+)?$"),
        pc.or_(pc.equal(v, 0), pc.and_(pc.greater_equal(size, 1e-4), pc.less(size, 1e16))),
    )
    dotted = pc.match_substring(text, ".")
    as_float = pc.binary_join_element_wise(text, ".0", "")
    if int_literal is None:  # the file's own doubles: every value is a float
        return pc.if_else(dotted, text, as_float), _not_ok(col, fixed)
    whole = pc.fill_null(pc.and_(fixed, pc.invert(dotted)), False)
    literal = int_literal(whole)  # True: written `24`; False: written `24.0`; null: unknown
    small = pc.and_(whole, pc.less(size, float(_EXACT)))
    as_int = pc.cast(pc.cast(_keep(v, small), pa.int64()), pa.string())
    integer = pc.fill_null(literal, False)
    out = pc.if_else(dotted, text, pc.if_else(integer, as_int, as_float))
    ok = pc.and_(fixed, pc.or_(dotted, pc.and_(pc.is_valid(literal), pc.or_(pc.invert(integer), small))))
    return out, _not_ok(col, ok)


def _to_int(col, out_type, typed, int_literal):
    import pyarrow as pa
    import pyarrow.compute as pc

    bits = out_type.bit_width
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    kind = col.type
    if pa.types.is_integer(kind):
        if pa.types.is_unsigned_integer(kind):
            ok = pc.less_equal(col, pa.scalar(hi).cast(kind)) if kind.bit_width >= bits else None
        else:
            ok = pc.and_(pc.greater_equal(col, lo), pc.less_equal(col, hi)) if kind.bit_width > bits else None
        if ok is None:
            return pc.cast(col, out_type), None
        return pc.cast(_keep(col, ok), out_type), _not_ok(col, ok)
    if pa.types.is_floating(kind):
        v = pc.cast(col, pa.float64())
        whole = pc.and_(pc.is_finite(v), pc.equal(pc.floor(v), v))
        ok = pc.and_(whole,
            pc.and_(pc.less(pc.abs(v), float(_EXACT)),
                pc.and_(pc.greater_equal(v, float(lo)), pc.less_equal(v, float(hi)))))
        return pc.cast(_keep(v, ok), out_type, safe=False), _not_ok(col, ok)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        ok = pc.match_substring_regex(col, _INT_RE)
        ints = pc.cast(_keep(col, ok), pa.int64())
        ok = pc.and_(ok, pc.and_(pc.greater_equal(ints, lo), pc.less_equal(ints, hi)))
        return pc.cast(_keep(ints, ok), out_type), _not_ok(col, ok)
    return pa.nulls(len(col), out_type), _valid(col)


def _to_double(col, out_type, typed, int_literal):
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = col.type
    if pa.types.is_integer(kind) or (typed and pa.types.is_floating(kind)):
        return pc.cast(col, out_type, safe=False), None
    if pa.types.is_floating(kind):  # JSON `-0` is the integer 0, `-0.0` the float: Python tells
        negative_zero = pc.equal(pc.divide(1.0, pc.cast(col, pa.float64())), float("-inf"))
        return pc.cast(col, out_type), _not_ok(col, pc.invert(negative_zero))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        ok = pc.match_substring_regex(col, _FLOAT_RE)
        values, failed = cast_marking(_keep(col, ok), out_type)
        return values, _not_ok(col, pc.and_(ok, pc.invert(failed)))
    return pa.nulls(len(col), out_type), _valid(col)


def _to_boolean(col, out_type, typed, int_literal):
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = col.type
    if pa.types.is_boolean(kind):
        return col, None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        lower = pc.ascii_lower(col)
        true = pc.equal(lower, "true")
        ok = pc.or_(true, pc.equal(lower, "false"))
        return _keep(true, ok), _not_ok(col, ok)
    return pa.nulls(len(col), out_type), _valid(col)


def _to_timestamp(col, out_type, typed, int_literal):
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = col.type
    if typed and pa.types.is_timestamp(kind):  # a zone-less timestamp is read as UTC
        return pc.cast(col, out_type, safe=False), None
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return pa.nulls(len(col), out_type), _valid(col)
    ok = pc.match_substring_regex(col, _TIMESTAMP_RE)
    text = pc.replace_substring(_keep(col, ok), " ", "T", max_replacements=1)
    text = pc.if_else(pc.equal(pc.utf8_length(text), 10), pc.binary_join_element_wise(text, "T00:00:00", ""), text)
    zoned = pc.match_substring_regex(text, r"(Z|[+-][0-9]{2}:[0-9]{2})$")
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))
    values, failed = cast_marking(text, out_type)
    return values, _not_ok(col, pc.and_(ok, pc.invert(failed)))


def _to_date(col, out_type, typed, int_literal):
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = col.type
    if typed and pa.types.is_date(kind):
        return pc.cast(col, out_type), None
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return pa.nulls(len(col), out_type), _valid(col)
    ok = pc.match_substring_regex(col, _DATE_RE)
    values, failed = cast_marking(_keep(col, ok), out_type)
    return values, _not_ok(col, pc.and_(ok, pc.invert(failed)))


_CONVERTERS = {
    "string": _to_string, "int": _to_int, "bigint": _to_int, "double": _to_double,
    "boolean": _to_boolean, "timestamp": _to_timestamp, "date": _to_date,
}
