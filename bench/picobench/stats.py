"""Small statistics over a handful of trials: no numpy on a bare CI machine."""


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def spread(xs):
    """(min, max) of the values present, or None."""
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else None


def percentile(xs, p):
    """Nearest-rank percentile, p in [0, 1]."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b
