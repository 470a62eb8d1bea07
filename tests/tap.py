"""The Python tests' runner: @test registers a function, main() runs them all
and prints TAP (a failure is reported and the rest still run)."""
import sys

TESTS = []


def test(f):
    TESTS.append(f)
    return f


def main():
    print(f"1..{len(TESTS)}")
    failed = 0
    for i, f in enumerate(TESTS, 1):
        try:
            f()
            print(f"ok {i} - {f.__name__}")
        except Exception as e:  # report and go on
            failed += 1
            print(f"not ok {i} - {f.__name__}: {type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)
