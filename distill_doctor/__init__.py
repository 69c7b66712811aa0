"""distill_doctor: a training-health doctor for knowledge-distillation runs.

Importing the package is cheap on purpose: nothing here pulls in torch or transformers, so
`doctor check` and `doctor postmortem` start as fast as a linter should.
"""

__version__ = "0.1.0"


def __getattr__(name: str):  # `from distill_doctor import DoctorCallback`, loaded on demand
    if name == "DoctorCallback":
        from distill_doctor.watchdog.hf_callback import DoctorCallback

        return DoctorCallback
    raise AttributeError(f"module 'distill_doctor' has no attribute {name!r}")


__all__ = ["DoctorCallback", "__version__"]
