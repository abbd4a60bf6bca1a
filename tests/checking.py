"""What the cross-layer and real-service test scripts share: checks that
stop at the first one that fails and count the ones that pass."""

passed = 0


def check(cond, what):
    """Raises AssertionError(what) unless cond; counts it otherwise."""
    global passed
    if not cond:
        raise AssertionError(what)
    passed += 1
