"""The live watchdog (its own issue, next): a `DetectorSuite` observer on the trainer's hooks
(`distill_doctor.trainer.hooks`), live-only probes, actions and the transformers callback."""
