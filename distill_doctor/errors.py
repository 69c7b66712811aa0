"""The one exception type that means "the user's input is wrong" (exit code 2, no traceback)."""


class InputError(Exception):
    """Bad input from the user: a missing or malformed file, a wrong value, an unknown key.

    The message is shown as is, so it must say what is wrong and how to put it right.
    """
