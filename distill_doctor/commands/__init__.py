"""One module per `doctor` command: argument parsing and exit codes only; logic lives in the
library and output in `distill_doctor.render`."""
