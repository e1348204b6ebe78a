"""Training from the command line: the LightningCLI of ``fit`` / ``validate`` / ``test`` / ``predict`` and its
one-line messages for config mistakes. The callbacks and loggers it uses are in :mod:`gan_translate.callbacks`
and :mod:`gan_translate.training.loggers` (configs name them by those paths)."""
